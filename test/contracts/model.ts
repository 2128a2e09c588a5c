/**
 * An independent, executable model of the MortgageEscrow rules (IMortgageEscrow NatSpec and DESIGN.md,
 * "The contract"), for the property-based test. It is written from the rules, not from the Solidity:
 * plain arrays and numbers, no bit packing, and completion as a fixpoint ("a stage completes at the first
 * moment that all of its criteria hold") rather than the contract's forward pass.
 *
 * Every operation takes the block time it runs at and either applies its effect and returns `ok`, or leaves the
 * model untouched and returns the list of every rule it violates (as the contract's custom error names), so a
 * test can check that the chain's revert is one of them without depending on the order the contract checks in.
 *
 * One thing the rules leave open: a stage that time alone made ready (its waiting time passed since the last
 * transaction) completes in `advance`; whether another transaction of the case that happens to run the
 * completion also picks it up is not specified. Such "pending" stages are optional for every transaction but
 * `advance`: the model asks an oracle (the chain's answer) and then checks that everything they unlock cascades.
 */

export const ROLE_NAMES = ["Bank", "Lawyer", "Buyer", "Seller"] as const;
export const BANK = 0;
export const LAWYER = 1;
export const BUYER = 2;
export const SELLER = 3;
export const ALL_ROLES = 0b1111;

export enum MAction {
  None = 0,
  RequireFunding = 1,
  Release = 2,
}

export enum MStatus {
  None = 0,
  Open = 1,
  Completed = 2,
  Expired = 3,
  Cancelled = 4,
}

export enum MSkip {
  AlreadySignedOff = 0,
  StaleEpoch = 1,
  CaseNotOpen = 2,
  InvalidSignature = 3,
  RoleNotRequired = 4,
}

export interface MRule {
  roles: number;
  prerequisites: number;
  waitSeconds: number;
  deadlineSeconds: number;
  deadlineAnchor: number;
  action: MAction;
  binding: boolean;
  longStopSeconds: number;
}

export interface MTemplate {
  id: string;
  rules: MRule[];
}

export interface MTerms {
  templateId: string;
  parties: [string, string, string, string]; // bank, lawyer, buyer, seller
  price: bigint;
  deposit: bigint;
  loan: bigint;
}

export interface MStage {
  signed: number; // role mask signed off (and not revoked)
  epochs: number[]; // per role: revocation count
  completedAt: number | undefined; // undefined while not completed
  overdue: boolean;
}

export interface MCase {
  id: bigint;
  rules: MRule[];
  templateId: string;
  parties: [string, string, string, string];
  price: bigint;
  deposit: bigint;
  loan: bigint;
  openedAt: number;
  status: MStatus;
  released: boolean;
  paidByBank: bigint;
  paidByBuyer: bigint;
  cancelVotes: number; // role mask
  stages: MStage[];
  deposited: bigint; // everything ever paid in
  withdrawn: bigint; // everything ever paid out
}

export type Outcome<T = undefined> = { ok: true; value: T } | { ok: false; errors: string[] };

/** For a relayed sign-off: what happened to each item. */
export type ItemOutcome = { applied: true } | { applied: false; reason: MSkip };

/** Which optional (pending) stages the chain completed in the transaction. */
export type Oracle = (caseId: bigint, stage: number) => boolean;

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
const fail = (errors: string[]): Outcome<never> => ({ ok: false, errors });

const lower = (a: string) => a.toLowerCase();

export class EscrowModel {
  readonly admin: string;
  /** The escrow's own address: no payout may go there. */
  readonly escrow: string;
  paused = false;
  readonly templates = new Map<string, MRule[]>();
  cases: MCase[] = [];
  /** `${caseId}:${address}` -> amount the payee may withdraw. */
  credits = new Map<string, bigint>();

  constructor(admin: string, templates: MTemplate[], escrow: string) {
    this.admin = lower(admin);
    this.escrow = lower(escrow);
    for (const t of templates) this.templates.set(t.id, t.rules);
  }

  caseOf(id: bigint): MCase | undefined {
    return id >= 1n && id <= BigInt(this.cases.length) ? this.cases[Number(id) - 1] : undefined;
  }

  creditOf(id: bigint, payee: string): bigint {
    return this.credits.get(`${id}:${lower(payee)}`) ?? 0n;
  }

  /** ETH the contract must hold: the deposits of cases not yet released or ended, plus every unpaid credit. */
  heldBalance(): bigint {
    let sum = 0n;
    for (const c of this.cases) if (c.status === MStatus.Open && !c.released) sum += c.paidByBank + c.paidByBuyer;
    for (const v of this.credits.values()) sum += v;
    return sum;
  }

  // -------------------------------------------------------------- derived facts

  static funded(c: MCase): boolean {
    return c.paidByBank >= c.loan && c.paidByBuyer >= c.deposit;
  }

  static completed(c: MCase, s: number): boolean {
    return c.stages[s].completedAt !== undefined;
  }

  static prerequisitesDone(c: MCase, s: number): boolean {
    const p = c.rules[s].prerequisites;
    for (let i = 0; i < c.rules.length; i++) if (p & (1 << i) && !EscrowModel.completed(c, i)) return false;
    return true;
  }

  /** When the waiting time starts: the last prerequisite's completion, or the opening. */
  static unlockedAt(c: MCase, s: number): number {
    let at = c.openedAt;
    const p = c.rules[s].prerequisites;
    for (let i = 0; i < c.rules.length; i++) if (p & (1 << i)) at = Math.max(at, c.stages[i].completedAt ?? at);
    return at;
  }

  /** The earliest time the stage may complete by time, once its prerequisites are done. */
  static availableAt(c: MCase, s: number): number | undefined {
    if (!EscrowModel.prerequisitesDone(c, s)) return undefined;
    return EscrowModel.unlockedAt(c, s) + c.rules[s].waitSeconds;
  }

  /**
   * The stage's effective deadline: the earliest of those running, its long-stop (from the opening) and its
   * deadline once its anchor has happened; undefined while none runs.
   */
  static deadline(c: MCase, s: number): number | undefined {
    const r = c.rules[s];
    const running: number[] = [];
    if (r.longStopSeconds !== 0) running.push(c.openedAt + r.longStopSeconds);
    if (r.deadlineSeconds !== 0) {
      const anchorAt = r.deadlineAnchor === 0 ? c.openedAt : c.stages[r.deadlineAnchor - 1].completedAt;
      if (anchorAt !== undefined) running.push(anchorAt + r.deadlineSeconds);
    }
    return running.length === 0 ? undefined : Math.min(...running);
  }

  static pastDeadline(c: MCase, s: number, now: number): boolean {
    const d = EscrowModel.deadline(c, s);
    return d !== undefined && now > d;
  }

  /** Every completion criterion of the stage holds at `now`. */
  static ready(c: MCase, s: number, now: number): boolean {
    const r = c.rules[s];
    if (EscrowModel.completed(c, s)) return false;
    if ((c.stages[s].signed & r.roles) !== r.roles) return false;
    if (!EscrowModel.prerequisitesDone(c, s)) return false;
    if (now < EscrowModel.unlockedAt(c, s) + r.waitSeconds) return false;
    if (r.action !== MAction.None && !EscrowModel.funded(c)) return false;
    if (!c.released && EscrowModel.pastDeadline(c, s, now)) return false;
    return true;
  }

  static pending(c: MCase, now: number): Set<number> {
    const set = new Set<number>();
    if (c.status !== MStatus.Open) return set;
    for (let s = 0; s < c.rules.length; s++) if (EscrowModel.ready(c, s, now)) set.add(s);
    return set;
  }

  // ----------------------------------------------------------------- internals

  private credit(id: bigint, payee: string, amount: bigint): void {
    if (amount === 0n) return;
    const key = `${id}:${lower(payee)}`;
    this.credits.set(key, (this.credits.get(key) ?? 0n) + amount);
  }

  /**
   * Completes, until nothing changes, every stage whose criteria all hold at `now`. A stage that was already
   * ready before this transaction's effect (`pendingBefore`) completes only if `optional` says so (the chain's
   * choice); every other ready stage must. Returns how many completed.
   */
  private settle(c: MCase, now: number, pendingBefore: Set<number>, optional: Oracle | undefined): number {
    let count = 0;
    for (let changed = true; changed && c.status === MStatus.Open;) {
      changed = false;
      for (let s = 0; s < c.rules.length; s++) {
        if (!EscrowModel.ready(c, s, now)) continue;
        if (optional && pendingBefore.has(s) && !optional(c.id, s)) continue;
        this.completeStage(c, s, now);
        count++;
        changed = true;
      }
    }
    return count;
  }

  private completeStage(c: MCase, s: number, now: number): void {
    c.stages[s].completedAt = now;
    if (c.rules[s].action === MAction.Release) {
      // The seller gets the price, the buyer the rest of the two shares, each payer its over-payment.
      c.released = true;
      this.credit(c.id, c.parties[SELLER], c.price);
      this.credit(c.id, c.parties[BANK], c.paidByBank - c.loan);
      this.credit(c.id, c.parties[BUYER], c.paidByBuyer + c.loan - c.price);
    }
    // A vote cast while cancelling refunded the buyer does not count once cancelling pays the seller.
    if (c.rules[s].binding) c.cancelVotes = 0;
    if (c.stages.every((st) => st.completedAt !== undefined)) c.status = MStatus.Completed;
  }

  /** Ends the case before release: deposits back, but after a binding stage the buyer's share to the seller. */
  private endWithRefunds(c: MCase, status: MStatus): void {
    c.status = status;
    this.credit(c.id, c.parties[BANK], c.paidByBank);
    const bindingDone = c.rules.some((r, s) => r.binding && EscrowModel.completed(c, s));
    const toSeller = bindingDone ? (c.paidByBuyer < c.deposit ? c.paidByBuyer : c.deposit) : 0n;
    this.credit(c.id, c.parties[SELLER], toSeller);
    this.credit(c.id, c.parties[BUYER], c.paidByBuyer - toSeller);
  }

  /** The errors of an operation that needs the case to exist and be open. */
  private openErrors(id: bigint): string[] {
    const c = this.caseOf(id);
    if (!c) return ["MortgageEscrowUnknownCase"];
    if (c.status !== MStatus.Open) return ["MortgageEscrowUnexpectedCaseStatus"];
    return [];
  }

  private roleRequired(c: MCase, stage: number, role: number): boolean {
    return stage < c.rules.length && (c.rules[stage].roles & (1 << role)) !== 0;
  }

  // ---------------------------------------------------------------- operations

  openCase(now: number, sender: string, t: MTerms): Outcome<bigint> {
    const errors: string[] = [];
    if (this.paused) errors.push("MortgageEscrowPaused");
    if (lower(sender) !== lower(t.parties[BANK]) && lower(sender) !== this.admin)
      errors.push("MortgageEscrowUnauthorizedOpener");
    const rules = this.templates.get(t.templateId);
    if (!rules) errors.push("MortgageEscrowUnknownTemplate");
    if (t.parties.some((p) => BigInt(p) === 0n)) errors.push("MortgageEscrowZeroParty");
    if (t.price > t.deposit + t.loan) errors.push("MortgageEscrowPriceExceedsShares");
    if (errors.length || !rules) return fail(errors);
    const id = BigInt(this.cases.length + 1);
    this.cases.push({
      id,
      rules,
      templateId: t.templateId,
      parties: [...t.parties],
      price: t.price,
      deposit: t.deposit,
      loan: t.loan,
      openedAt: now,
      status: MStatus.Open,
      released: false,
      paidByBank: 0n,
      paidByBuyer: 0n,
      cancelVotes: 0,
      stages: rules.map(() => ({ signed: 0, epochs: [0, 0, 0, 0], completedAt: undefined, overdue: false })),
      deposited: 0n,
      withdrawn: 0n,
    });
    return ok(id);
  }

  signOff(now: number, sender: string, id: bigint, stage: number, role: number, optional?: Oracle): Outcome {
    const errors = this.openErrors(id);
    const c = this.caseOf(id);
    if (c) {
      if (lower(c.parties[role]) !== lower(sender)) errors.push("MortgageEscrowUnauthorizedParty");
      if (!this.roleRequired(c, stage, role)) errors.push("MortgageEscrowRoleNotRequired");
      else if (c.stages[stage].signed & (1 << role)) errors.push("MortgageEscrowAlreadySignedOff");
    }
    if (errors.length || !c) return fail(errors);
    this.applySignOff(c, now, stage, role, optional);
    return ok(undefined);
  }

  private applySignOff(c: MCase, now: number, stage: number, role: number, optional?: Oracle): void {
    const pendingBefore = EscrowModel.pending(c, now);
    c.stages[stage].signed |= 1 << role;
    this.settle(c, now, pendingBefore, optional ?? (() => false));
  }

  /**
   * A batch of relayed sign-offs, applied in order. `signer` is the address that signed each item (a party
   * that is a contract wallet refusing everything never matches it). Nothing reverts the batch: a finished (or
   * unknown) case, a role the stage does not require, an applied sign-off, a stale epoch or a signature not by
   * the role's party skip the item.
   */
  signOffWithSignatures(
    now: number,
    items: { caseId: bigint; stage: number; role: number; epoch: number; signer: string }[],
    optional?: Oracle,
  ): Outcome<ItemOutcome[]> {
    const outcomes: ItemOutcome[] = [];
    for (const item of items) {
      const c = this.caseOf(item.caseId);
      if (!c || c.status !== MStatus.Open) {
        outcomes.push({ applied: false, reason: MSkip.CaseNotOpen });
        continue;
      }
      if (!this.roleRequired(c, item.stage, item.role)) {
        outcomes.push({ applied: false, reason: MSkip.RoleNotRequired });
        continue;
      }
      const st = c.stages[item.stage];
      if (st.signed & (1 << item.role)) {
        outcomes.push({ applied: false, reason: MSkip.AlreadySignedOff });
        continue;
      }
      if (item.epoch !== st.epochs[item.role]) {
        outcomes.push({ applied: false, reason: MSkip.StaleEpoch });
        continue;
      }
      if (lower(item.signer) !== lower(c.parties[item.role])) {
        outcomes.push({ applied: false, reason: MSkip.InvalidSignature });
        continue;
      }
      this.applySignOff(c, now, item.stage, item.role, optional);
      outcomes.push({ applied: true });
    }
    return ok(outcomes);
  }

  /** Revokes a sign-off, directly (`signer` undefined: the sender must be the party) or relayed with a signature. */
  revokeSignOff(
    now: number,
    sender: string,
    id: bigint,
    stage: number,
    role: number,
    relayed?: { epoch: number; signer: string },
    optional?: Oracle,
  ): Outcome {
    const errors = this.openErrors(id);
    const c = this.caseOf(id);
    if (c) {
      const epoch = stage < c.rules.length ? c.stages[stage].epochs[role] : 0;
      if (relayed) {
        if (relayed.epoch !== epoch) errors.push("MortgageEscrowWrongEpoch");
        if (lower(relayed.signer) !== lower(c.parties[role])) errors.push("MortgageEscrowInvalidSignature");
      } else if (lower(sender) !== lower(c.parties[role])) errors.push("MortgageEscrowUnauthorizedParty");
      if (!this.roleRequired(c, stage, role)) errors.push("MortgageEscrowRoleNotRequired");
      else {
        if (EscrowModel.completed(c, stage)) errors.push("MortgageEscrowStageAlreadyCompleted");
        if (!(c.stages[stage].signed & (1 << role))) errors.push("MortgageEscrowNotSignedOff");
        if (epoch === 255) errors.push("MortgageEscrowTooManyRevocations");
      }
    }
    if (errors.length || !c) return fail(errors);
    const pendingBefore = EscrowModel.pending(c, now);
    c.stages[stage].signed &= ~(1 << role);
    c.stages[stage].epochs[role] += 1;
    this.settle(c, now, pendingBefore, optional ?? (() => false));
    return ok(undefined);
  }

  /** Completes every stage ready now; reverts if there is none. */
  advance(now: number, id: bigint): Outcome<number> {
    const errors = this.openErrors(id);
    const c = this.caseOf(id);
    if (errors.length || !c) return fail(errors);
    const n = this.settle(c, now, new Set(), undefined);
    if (n === 0) return fail(["MortgageEscrowNothingToAdvance"]);
    return ok(n);
  }

  deposit(
    now: number,
    sender: string,
    id: bigint,
    payer: number,
    amount: bigint,
    value: bigint,
    optional?: Oracle,
  ): Outcome {
    const errors = this.openErrors(id);
    if (this.paused) errors.push("MortgageEscrowPaused");
    const c = this.caseOf(id);
    if (payer !== BANK && payer !== BUYER) errors.push("MortgageEscrowNotAPayer");
    if (c) {
      if (lower(c.parties[payer]) !== lower(sender)) errors.push("MortgageEscrowUnauthorizedParty");
      if (c.released) errors.push("MortgageEscrowAlreadyReleased");
    }
    if (amount === 0n || value !== amount) errors.push("MortgageEscrowInvalidDeposit");
    if (errors.length || !c) return fail(errors);
    const pendingBefore = EscrowModel.pending(c, now);
    if (payer === BANK) c.paidByBank += amount;
    else c.paidByBuyer += amount;
    c.deposited += amount;
    this.settle(c, now, pendingBefore, optional ?? (() => false));
    return ok(undefined);
  }

  /** Before the release: ends the case if a deadline passed. After it: marks such stages overdue. */
  expire(now: number, id: bigint): Outcome<"expired" | "overdue"> {
    const errors = this.openErrors(id);
    const c = this.caseOf(id);
    if (errors.length || !c) return fail(errors);
    const missed = c.rules
      .map((_, s) => s)
      .filter((s) => !EscrowModel.completed(c, s) && !c.stages[s].overdue && EscrowModel.pastDeadline(c, s, now));
    if (missed.length === 0) return fail(["MortgageEscrowNothingToExpire"]);
    if (!c.released) {
      this.endWithRefunds(c, MStatus.Expired);
      return ok("expired");
    }
    for (const s of missed) c.stages[s].overdue = true;
    return ok("overdue");
  }

  /** The sender's vote to cancel, for every role it holds; the fourth role's vote cancels. */
  cancel(now: number, sender: string, id: bigint): Outcome<boolean> {
    const errors = this.openErrors(id);
    const c = this.caseOf(id);
    if (c) {
      if (c.released) errors.push("MortgageEscrowAlreadyReleased");
      const held = c.parties.reduce((m, p, r) => (lower(p) === lower(sender) ? m | (1 << r) : m), 0);
      if (held === 0) errors.push("MortgageEscrowNotAParty");
      else if ((c.cancelVotes | held) === c.cancelVotes) errors.push("MortgageEscrowAlreadyVoted");
    }
    if (errors.length || !c) return fail(errors);
    c.cancelVotes |= c.parties.reduce((m, p, r) => (lower(p) === lower(sender) ? m | (1 << r) : m), 0);
    if (c.cancelVotes === ALL_ROLES) {
      this.endWithRefunds(c, MStatus.Cancelled);
      return ok(true);
    }
    return ok(false);
  }

  /** The sender withdraws its vote to cancel, for every role it holds that voted. */
  withdrawCancelVote(now: number, sender: string, id: bigint): Outcome {
    const errors = this.openErrors(id);
    const c = this.caseOf(id);
    if (c) {
      const held = c.parties.reduce((m, p, r) => (lower(p) === lower(sender) ? m | (1 << r) : m), 0);
      if (held === 0) errors.push("MortgageEscrowNotAParty");
      else if ((c.cancelVotes & held) === 0) errors.push("MortgageEscrowNotVoted");
    }
    if (errors.length || !c) return fail(errors);
    c.cancelVotes &= ~c.parties.reduce((m, p, r) => (lower(p) === lower(sender) ? m | (1 << r) : m), 0);
    return ok(undefined);
  }

  /**
   * Pays the payee's whole credit out, to itself or to `to` (works in every status and while paused); never
   * to the zero address or the escrow itself (the cases here hold ETH, so there is no token to refuse).
   */
  withdraw(now: number, id: bigint, payee: string, to: string = payee): Outcome<bigint> {
    const amount = this.creditOf(id, payee);
    const errors: string[] = [];
    if (amount === 0n) errors.push("MortgageEscrowNothingToWithdraw");
    if (BigInt(to) === 0n) errors.push("MortgageEscrowZeroRecipient");
    else if (lower(to) === this.escrow) errors.push("MortgageEscrowInvalidRecipient");
    if (errors.length) return fail(errors);
    this.credits.delete(`${id}:${lower(payee)}`);
    const c = this.caseOf(id);
    if (c) c.withdrawn += amount;
    return ok(amount);
  }

  setPaused(now: number, sender: string, value: boolean): Outcome {
    const errors: string[] = [];
    if (lower(sender) !== this.admin) errors.push("AccessControlUnauthorizedAccount");
    if (this.paused === value) errors.push("MortgageEscrowPauseUnchanged");
    if (errors.length) return fail(errors);
    this.paused = value;
    return ok(undefined);
  }

  // ------------------------------------------------------------------- views

  static completedMask(c: MCase): number {
    return c.stages.reduce((m, st, s) => (st.completedAt !== undefined ? m | (1 << s) : m), 0);
  }

  static overdueMask(c: MCase): number {
    return c.stages.reduce((m, st, s) => (st.overdue ? m | (1 << s) : m), 0);
  }

  static signedMask(c: MCase): bigint {
    return c.stages.reduce((m, st, s) => m | (BigInt(st.signed) << BigInt(4 * s)), 0n);
  }
}
