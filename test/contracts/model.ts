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
 *
 * Amendments (IMortgageEscrow's `proposeAmendment` and `AmendmentRules` NatSpec, DESIGN.md "Amendments") are
 * kept as plain records: who must consent, who has, each role's withdrawal count, and the terms version each
 * amends; the rules for who must consent and what applying does are written out in `proposeAmendment` and
 * `applyAmendment` below. Consent refusals are returned as every reason that applies, not the first.
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

/** Who must consent to each kind (role masks), and which stages a terms change re-opens (a stage mask). */
export interface MAmendmentRules {
  deadlineConsent: number;
  termsConsent: number;
  partyConsent: number;
  reopenedByTerms: number;
}

/** The safe default: every party consents to every kind; nothing re-opens. */
export const EVERY_PARTY_RULES: MAmendmentRules = {
  deadlineConsent: ALL_ROLES,
  termsConsent: ALL_ROLES,
  partyConsent: ALL_ROLES,
  reopenedByTerms: 0,
};

export interface MTemplate {
  id: string;
  rules: MRule[];
  amendments?: MAmendmentRules;
}

export enum MKind {
  Deadline = 0,
  Terms = 1,
  Party = 2,
}

/** `ConsentSkipReason`, as the interface numbers it. */
export enum MConsentSkip {
  CaseNotOpen = 0,
  UnknownAmendment = 1,
  AlreadyApplied = 2,
  Superseded = 3,
  Expired = 4,
  AlreadyReleased = 5,
  RoleNotRequired = 6,
  AlreadyConsented = 7,
  StaleEpoch = 8,
  InvalidSignature = 9,
}

/** A proposal as sent: the fields its kind does not use are zero unless a test sets one on purpose. */
export interface MProposal {
  kind: MKind;
  expiresAt: number;
  stage: number;
  longStop: boolean;
  deadline: number;
  price: bigint;
  deposit: bigint;
  loan: bigint;
  party: number;
  account: string;
}

export interface MAmendment {
  proposal: MProposal;
  version: number; // the terms version it amends
  required: number; // role mask
  consents: number; // role mask
  epochs: number[]; // per role: withdrawal count
  applied: boolean;
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
  amendmentRules: MAmendmentRules;
  termsVersion: number;
  amendments: MAmendment[]; // id n at index n - 1
  /** Per stage: whether its own deadline and its long-stop can be moved (the first six, in stage order). */
  movable: { own: boolean; longStop: boolean }[];
  /** Per stage: a moved own deadline, a moved long-stop (absolute times); undefined while not moved. */
  movedOwn: (number | undefined)[];
  movedLongStop: (number | undefined)[];
  /** Every address that has been a party of the case (credits stay with the address they were made to). */
  partyHistory: string[];
}

export type Outcome<T = undefined> = { ok: true; value: T } | { ok: false; errors: string[] };

/** For a relayed sign-off: what happened to each item. */
export type ItemOutcome = { applied: true } | { applied: false; reason: MSkip };

/** For a relayed consent: applied (counted), or skipped for any one of `reasons`. */
export type ConsentOutcome = { counted: true } | { counted: false; reasons: MConsentSkip[] };

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
  readonly amendmentRules = new Map<string, MAmendmentRules>();
  cases: MCase[] = [];
  /** `${caseId}:${address}` -> amount the payee may withdraw. */
  credits = new Map<string, bigint>();

  constructor(admin: string, templates: MTemplate[], escrow: string) {
    this.admin = lower(admin);
    this.escrow = lower(escrow);
    for (const t of templates) {
      this.templates.set(t.id, t.rules);
      this.amendmentRules.set(t.id, t.amendments ?? EVERY_PARTY_RULES);
    }
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
    const running = [EscrowModel.longStop(c, s), EscrowModel.ownDeadline(c, s)].filter(
      (t): t is number => t !== undefined,
    );
    return running.length === 0 ? undefined : Math.min(...running);
  }

  /** The stage's long-stop: an agreed time once moved, else counted from the opening; undefined if it has none. */
  static longStop(c: MCase, s: number): number | undefined {
    const r = c.rules[s];
    if (r.longStopSeconds === 0) return undefined;
    return c.movedLongStop[s] ?? c.openedAt + r.longStopSeconds;
  }

  /**
   * The stage's own deadline, while it runs: an agreed time once moved (running from then on, anchor or not),
   * else counted from its anchor once the anchor has happened (the opening, or the anchor stage completing).
   */
  static ownDeadline(c: MCase, s: number): number | undefined {
    const r = c.rules[s];
    if (r.deadlineSeconds === 0) return undefined;
    if (c.movedOwn[s] !== undefined) return c.movedOwn[s];
    const anchorAt = r.deadlineAnchor === 0 ? c.openedAt : c.stages[r.deadlineAnchor - 1].completedAt;
    return anchorAt === undefined ? undefined : anchorAt + r.deadlineSeconds;
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
      amendmentRules: this.amendmentRules.get(t.templateId) ?? EVERY_PARTY_RULES,
      termsVersion: 0,
      amendments: [],
      movable: EscrowModel.movableDeadlines(rules),
      movedOwn: rules.map(() => undefined),
      movedLongStop: rules.map(() => undefined),
      partyHistory: [...new Set(t.parties.map(lower))],
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

  // ---------------------------------------------------------------- amendments

  /**
   * Deadlines are numbered for amendments in stage order, each stage's own before its long-stop; only the
   * first six have a number, so a seventh and later ones cannot be moved.
   */
  static movableDeadlines(rules: MRule[]): { own: boolean; longStop: boolean }[] {
    let numbered = 0;
    return rules.map((r) => {
      const own = r.deadlineSeconds !== 0 && numbered < 6;
      if (own) numbered++;
      const longStop = r.longStopSeconds !== 0 && numbered < 6;
      if (longStop) numbered++;
      return { own, longStop };
    });
  }

  amendmentOf(id: bigint, n: number): MAmendment | undefined {
    const c = this.caseOf(id);
    return c && n >= 1 && n <= c.amendments.length ? c.amendments[n - 1] : undefined;
  }

  /**
   * Proposes an amendment as `role`. Who must consent: the template's roles for the kind, and whatever the
   * template says, each party the change takes money from or replaces: a Party change, the replaced party; a
   * Terms change, the bank if the loan grows, the seller if the price falls, the buyer if the deposit grows or
   * what it pays in the end (price less loan) grows; a Deadline moved earlier (or one not yet running given a
   * time) before the release, the buyer (an expiry after a binding stage pays its deposit to the seller). The
   * proposer's consent counts at once where it is required, and if it is the only one the amendment applies.
   */
  proposeAmendment(
    now: number,
    sender: string,
    id: bigint,
    role: number,
    p: MProposal,
    optional?: Oracle,
  ): Outcome<number> {
    const errors = this.openErrors(id);
    const c = this.caseOf(id);
    if (c && lower(c.parties[role]) !== lower(sender)) errors.push("MortgageEscrowUnauthorizedParty");
    if (p.expiresAt <= now) errors.push("MortgageEscrowInvalidAmendment");
    let required = 0;
    if (c && p.kind === MKind.Deadline) {
      if (p.price !== 0n || p.deposit !== 0n || p.loan !== 0n || p.party !== 0 || BigInt(p.account) !== 0n)
        errors.push("MortgageEscrowInvalidAmendment");
      if (p.stage >= c.rules.length) errors.push("MortgageEscrowUnknownStage");
      else {
        if (EscrowModel.completed(c, p.stage)) errors.push("MortgageEscrowStageAlreadyCompleted");
        if (p.deadline === 0) errors.push("MortgageEscrowInvalidAmendment");
        const movable = p.longStop ? c.movable[p.stage].longStop : c.movable[p.stage].own;
        if (!movable) errors.push("MortgageEscrowInvalidAmendment");
        const current = p.longStop ? EscrowModel.longStop(c, p.stage) : EscrowModel.ownDeadline(c, p.stage);
        if (!c.released && (current === undefined || p.deadline < current)) required |= 1 << BUYER;
      }
      required |= c.amendmentRules.deadlineConsent;
    } else if (c && p.kind === MKind.Terms) {
      if (p.stage !== 0 || p.longStop || p.deadline !== 0 || p.party !== 0 || BigInt(p.account) !== 0n)
        errors.push("MortgageEscrowInvalidAmendment");
      if (c.released) errors.push("MortgageEscrowAlreadyReleased");
      if (p.price > p.deposit + p.loan) errors.push("MortgageEscrowPriceExceedsShares");
      if (p.loan > c.loan) required |= 1 << BANK;
      if (p.price < c.price) required |= 1 << SELLER;
      if (p.deposit > c.deposit || p.price - p.loan > c.price - c.loan) required |= 1 << BUYER;
      required |= c.amendmentRules.termsConsent;
    } else if (c) {
      if (p.stage !== 0 || p.longStop || p.deadline !== 0 || p.price !== 0n || p.deposit !== 0n || p.loan !== 0n)
        errors.push("MortgageEscrowInvalidAmendment");
      if (BigInt(p.account) === 0n) errors.push("MortgageEscrowZeroParty");
      else if (lower(p.account) === lower(c.parties[p.party])) errors.push("MortgageEscrowInvalidAmendment");
      required = (1 << p.party) | c.amendmentRules.partyConsent;
    }
    if (errors.length || !c) return fail(errors);
    const own = 1 << role;
    const a: MAmendment = {
      proposal: { ...p },
      version: c.termsVersion,
      required,
      consents: required & own,
      epochs: [0, 0, 0, 0],
      applied: false,
    };
    c.amendments.push(a);
    if (a.consents === a.required) this.applyAmendment(c, a, now, optional);
    return ok(c.amendments.length);
  }

  /** Every reason the role's consent to amendment `n` cannot count now (empty: it can). */
  private consentRefusals(c: MCase | undefined, n: number, role: number, now: number): MConsentSkip[] {
    if (!c || c.status !== MStatus.Open) return [MConsentSkip.CaseNotOpen];
    const a = n >= 1 && n <= c.amendments.length ? c.amendments[n - 1] : undefined;
    if (!a) return [MConsentSkip.UnknownAmendment];
    const reasons: MConsentSkip[] = [];
    if (a.applied) reasons.push(MConsentSkip.AlreadyApplied);
    // Any other amendment applying raises the version, so one not applied is then superseded.
    else if (a.version !== c.termsVersion) reasons.push(MConsentSkip.Superseded);
    if (now > a.proposal.expiresAt) reasons.push(MConsentSkip.Expired);
    if (a.proposal.kind === MKind.Terms && c.released) reasons.push(MConsentSkip.AlreadyReleased);
    if (!(a.required & (1 << role))) reasons.push(MConsentSkip.RoleNotRequired);
    else if (a.consents & (1 << role)) reasons.push(MConsentSkip.AlreadyConsented);
    return reasons;
  }

  private recordConsent(c: MCase, a: MAmendment, role: number, now: number, optional?: Oracle): void {
    a.consents |= 1 << role;
    if (a.consents === a.required) this.applyAmendment(c, a, now, optional);
  }

  /** A direct consent: the sender must be the role's party; a refusal reverts with its reason. */
  consentToAmendment(now: number, sender: string, id: bigint, n: number, role: number, optional?: Oracle): Outcome {
    const errors = this.openErrors(id);
    const c = this.caseOf(id);
    if (c && lower(c.parties[role]) !== lower(sender)) errors.push("MortgageEscrowUnauthorizedParty");
    if (c && c.status === MStatus.Open)
      for (const r of this.consentRefusals(c, n, role, now)) errors.push(`MortgageEscrowConsentRefused:${r}`);
    if (errors.length || !c) return fail(errors);
    this.recordConsent(c, c.amendments[n - 1], role, now, optional);
    return ok(undefined);
  }

  /**
   * Relayed consents, in order; nothing reverts the batch. `valid` says whether the signature is the role's
   * party's over this amendment's kind and version (a hostile wallet's never is). The epoch is checked once
   * nothing else refuses the item, the signature last.
   */
  consentWithSignatures(
    now: number,
    items: { caseId: bigint; amendment: number; role: number; epoch: number; valid: boolean }[],
    optional?: Oracle,
  ): Outcome<ConsentOutcome[]> {
    const outcomes: ConsentOutcome[] = [];
    for (const item of items) {
      const c = this.caseOf(item.caseId);
      const reasons = this.consentRefusals(c, item.amendment, item.role, now);
      if (reasons.length === 0) {
        const a = c!.amendments[item.amendment - 1];
        if (item.epoch !== a.epochs[item.role]) reasons.push(MConsentSkip.StaleEpoch);
        else if (!item.valid) reasons.push(MConsentSkip.InvalidSignature);
      }
      if (reasons.length > 0) {
        outcomes.push({ counted: false, reasons });
        continue;
      }
      this.recordConsent(c!, c!.amendments[item.amendment - 1], item.role, now, optional);
      outcomes.push({ counted: true });
    }
    return ok(outcomes);
  }

  /** Withdraws the role's standing consent (even to an expired or superseded amendment) until it applies. */
  withdrawAmendmentConsent(now: number, sender: string, id: bigint, n: number, role: number): Outcome {
    const errors = this.openErrors(id);
    const c = this.caseOf(id);
    if (c && lower(c.parties[role]) !== lower(sender)) errors.push("MortgageEscrowUnauthorizedParty");
    const a = this.amendmentOf(id, n);
    if (c && !a) errors.push(`MortgageEscrowConsentRefused:${MConsentSkip.UnknownAmendment}`);
    if (a?.applied) errors.push(`MortgageEscrowConsentRefused:${MConsentSkip.AlreadyApplied}`);
    if (a && !(a.consents & (1 << role))) errors.push("MortgageEscrowNotConsented");
    if (a && a.epochs[role] === 15) errors.push("MortgageEscrowTooManyWithdrawals");
    if (errors.length || !c || !a) return fail(errors);
    a.consents &= ~(1 << role);
    a.epochs[role] += 1;
    return ok(undefined);
  }

  /**
   * Applies a fully consented amendment: the terms version rises (which supersedes every other proposal), then
   * the change. A deadline takes its agreed time. A party's address changes (its sign-offs and votes stay the
   * role's; its credits stay with the old address). A terms change re-opens the template's stages for it that
   * have completed while no stage depending on them has (sign-offs cleared, each required role's epoch raised),
   * sets the amounts, credits each payer what it has paid beyond its new share (and counts it paid only up to
   * that share); a grown share leaves the escrow waiting for the difference.
   */
  private applyAmendment(c: MCase, a: MAmendment, now: number, optional?: Oracle): void {
    const pendingBefore = EscrowModel.pending(c, now);
    a.applied = true;
    c.termsVersion += 1;
    const p = a.proposal;
    if (p.kind === MKind.Deadline) {
      if (p.longStop) c.movedLongStop[p.stage] = p.deadline;
      else c.movedOwn[p.stage] = p.deadline;
    } else if (p.kind === MKind.Party) {
      c.parties[p.party] = p.account;
      if (!c.partyHistory.includes(lower(p.account))) c.partyHistory.push(lower(p.account));
    } else {
      this.reopenForTerms(c);
      c.price = p.price;
      c.deposit = p.deposit;
      c.loan = p.loan;
      if (c.paidByBank > c.loan) {
        this.credit(c.id, c.parties[BANK], c.paidByBank - c.loan);
        c.paidByBank = c.loan;
      }
      if (c.paidByBuyer > c.deposit) {
        this.credit(c.id, c.parties[BUYER], c.paidByBuyer - c.deposit);
        c.paidByBuyer = c.deposit;
      }
    }
    this.settle(c, now, pendingBefore, optional ?? (() => false));
  }

  /** A stage depends on another if that one is its prerequisite, directly or through other stages. */
  private static dependsOn(c: MCase, s: number, on: number): boolean {
    const p = c.rules[s].prerequisites;
    for (let i = 0; i < c.rules.length; i++)
      if (p & (1 << i) && (i === on || EscrowModel.dependsOn(c, i, on))) return true;
    return false;
  }

  private reopenForTerms(c: MCase): void {
    const completedBefore = c.stages.map((st) => st.completedAt !== undefined);
    for (let s = 0; s < c.rules.length; s++) {
      if (!(c.amendmentRules.reopenedByTerms & (1 << s)) || !completedBefore[s]) continue;
      if (c.rules.some((_, d) => completedBefore[d] && EscrowModel.dependsOn(c, d, s))) continue;
      const st = c.stages[s];
      st.completedAt = undefined;
      st.signed = 0;
      for (let role = 0; role < 4; role++) if (c.rules[s].roles & (1 << role)) st.epochs[role] += 1;
    }
  }

  /** What the escrow owes for the case: its shares still held (open, not released) and its unpaid credits. */
  owedFor(c: MCase): bigint {
    let sum = c.status === MStatus.Open && !c.released ? c.paidByBank + c.paidByBuyer : 0n;
    for (const [key, v] of this.credits) if (key.startsWith(`${c.id}:`)) sum += v;
    return sum;
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
