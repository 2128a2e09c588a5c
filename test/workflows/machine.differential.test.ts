/**
 * Differential test of the case machine against MortgageEscrow on the in-process Hardhat network: both are
 * fed the same transactions (the machine as events carrying the block's time) and after every transaction
 * they must agree on every stage (status, sign-offs, availableAt, deadline, completedAt) and on the case
 * (status, released, funded, completed and overdue stages, cancellation votes). A transaction that reverts
 * on chain must leave the machine's state unchanged, and one that succeeds must change it. And money is
 * conserved at every step: what the payers paid in is what the escrow holds of them plus what was credited
 * (a share an amendment shrank), and once the case is released or ended, exactly what was credited.
 *
 * (a) every shortest path of each template's graph (./machine-paths.ts) is replayed on chain: the paths share
 *     prefixes, so the tree they form is walked depth first with a chain snapshot at each branch;
 * (b) seeded random walks: direct and relayed sign-offs (stale, duplicate, forged and not-required items
 *     included: each skipped with the contract's reason, none reverting the batch), revocations, partial and
 *     full deposits, time jumps (random, and aimed at availableAt and deadlines +-1 s), advance, expire,
 *     cancellation votes and their withdrawal (a party holding two roles, a stranger), many of which revert;
 * (c) the cases the issue is about: a party goes silent and the long-stop expires the case, every deposit
 *     then withdrawn; votes cast before a binding stage cleared by it; votes withdrawn; times past 2106;
 * (d) amendments (issue 13), in the walks and step by step in each template: proposals of each kind (some the
 *     contract refuses), consents direct and relayed (stale after a withdrawal, forged, replayed on another
 *     case, version or kind: each skipped with the contract's reason), withdrawals, expiry and supersession;
 *     after each step the chain's `amendmentOf` must agree with the machine's record of every amendment.
 *
 * MACHINE_WALKS (default 24) and MACHINE_WALK_STEPS (default 60) raise the search; MACHINE_WALK_SEED (default
 * 20250601) picks the walks; a failure prints the seed, the walk and every step taken.
 */
import { expect } from "chai";
import { seededRandom } from "../support/seeded-random";
import hre, { ethers } from "hardhat";
import type { Interface } from "ethers";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { initialTransition, transition } from "xstate";
import type { IMortgageEscrow, MortgageEscrow } from "../../typechain-types";
import { EVIDENCE, getParties, signConsent, signRevocation, signSignOff } from "../contracts/fixtures";
import {
  type AmendmentContent,
  CONSENT_SKIP_REASONS,
  consentRefusalOf,
  deadlineSlotOf,
  requiredConsentsOf,
} from "../../workflows/case-amendments";
import { AMENDMENT_KINDS, ROLE_NAMES } from "../../workflows/schema";
import { type CompiledWorkflow, compileWorkflow, getTemplate } from "../../workflows";
import { type CaseMachine, type ContractEvent as CaseEvent, caseMachineOfWorkflow } from "../../workflows/machine";
import {
  type CaseModel,
  MAX_TIME,
  SKIP_REASONS,
  anchoredDeadlineOf,
  longStopOf,
  availableAt,
  deadlineOf,
  indexesOf,
  isCompleted,
  prerequisitesComplete,
  signOffSkipOf,
  stageStatus,
} from "../../workflows/case-rules";
import { type CasePath, type CaseSnapshot, TEMPLATE_IDS, eventsOf, exploreCase, serializeCase } from "./machine-paths";
import { smallPurchase } from "./helpers";

const WALKS = Number(process.env.MACHINE_WALKS ?? 24);
/** How often the walks propose, consent (directly and relayed) and withdraw a consent. */
const AMEND = { propose: 2, consent: 3, relayConsent: 2, withdrawConsent: 1 };
const WALK_STEPS = Number(process.env.MACHINE_WALK_STEPS ?? 60);
const WALK_SEED = Number(process.env.MACHINE_WALK_SEED ?? 20250601);
const GAS = 3_000_000;
const DAY = 86_400;
const ROLE_COUNT = 4;

const STAGE_STATUS = [
  "locked",
  "open",
  "waiting-for-time",
  "waiting-for-funds",
  "completed",
  "overdue",
  "expired",
  "cancelled",
] as const;
const CASE_STATUS = ["none", "open", "completed", "expired", "cancelled"] as const;

/**
 * A definition that the three templates leave out: a deadline counted from the opening, a stage that time alone
 * completes, a funding stage that binds, and stages after the release with deadlines and a waiting time.
 */
const EXTRAS = compileWorkflow({
  ...smallPurchase(),
  id: "machine-extras",
  longStop: { within: "45 days", basis: "the differential test's figure" },
  stages: [
    {
      id: "agreement",
      title: "Sale agreed",
      signedBy: ["buyer", "seller"],
      deadline: { within: "20 days", from: "opening" },
    },
    { id: "cooling-off", title: "Cooling off", signedBy: [], after: ["agreement"], wait: "2 days" },
    {
      id: "funding",
      title: "Funding",
      signedBy: ["bank"],
      after: ["cooling-off"],
      action: "require-funding",
      binding: true,
    },
    {
      id: "completion",
      title: "Completion",
      signedBy: ["bank", "lawyer"],
      after: ["funding"],
      action: "release",
      deadline: { within: "30 days", from: "funding" },
    },
    {
      id: "settling",
      title: "Settling",
      signedBy: [],
      after: ["completion"],
      wait: "1 days",
      deadline: { within: "5 days", from: "completion" },
    },
    {
      id: "registration",
      title: "Registration",
      signedBy: ["lawyer"],
      after: ["agreement"],
      deadline: { within: "40 days", from: "opening" },
    },
  ],
});

const TERMS: Record<string, { price: bigint; deposit: bigint; loan: bigint }> = {
  "us-purchase": { price: 100_000n, deposit: 20_000n, loan: 80_000n },
  "uk-purchase": { price: 300_000n, deposit: 30_000n, loan: 270_000n },
  "uk-remortgage": { price: 150_000n, deposit: 0n, loan: 150_000n },
  "machine-extras": { price: 90_000n, deposit: 25_000n, loan: 75_000n },
};

function templateOf(id: string): CompiledWorkflow {
  return id === EXTRAS.workflow.id ? EXTRAS : getTemplate(id);
}

async function deployWithTemplates() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  for (const t of [...TEMPLATE_IDS.map((id) => getTemplate(id)), EXTRAS]) {
    await (await escrow.connect(parties.admin).registerTemplate(t.definitionHash, t.stages, t.amendmentRules)).wait();
    expect(await escrow.isTemplateRegistered(t.templateId)).to.equal(true);
  }
  return { escrow, parties };
}

// ---------------------------------------------------------------- reading the chain

/**
 * Reads caseOf and every stageOf in one eth_call: the call creates no contract but runs init code that makes
 * each static call and returns the block time it ran at, a success flag per call and the results. Thirteen
 * separate calls would cost most of this test's time.
 */
class CaseReader {
  private readonly code: string;
  private readonly layout: { flag: number; offset: number; size: number }[] = [];

  constructor(
    private readonly escrow: MortgageEscrow,
    readonly target: string,
    caseId: bigint,
    stageCount: number,
  ) {
    const calls = [
      { data: escrow.interface.encodeFunctionData("caseOf", [caseId]), size: 23 * 32 },
      ...Array.from({ length: stageCount }, (_, s) => ({
        data: escrow.interface.encodeFunctionData("stageOf", [caseId, s]),
        size: 6 * 32,
      })),
    ];
    const push2 = (n: number) => `61${n.toString(16).padStart(4, "0")}`;
    let out = 32 * (1 + calls.length); // word 0: the time; then one success flag per call
    for (let i = 0; i < calls.length; i++) {
      this.layout.push({ flag: 32 * (1 + i), offset: out, size: calls[i].size });
      out += calls[i].size;
    }
    const scratch = out;
    const perCall = 49;
    const programLength = perCall * calls.length + 12;
    let program = "";
    let dataOffset = programLength;
    calls.forEach((call, i) => {
      const length = (call.data.length - 2) / 2;
      const { flag, offset, size } = this.layout[i];
      program += push2(length) + push2(dataOffset) + push2(scratch) + "39"; // CODECOPY(scratch, dataOffset, length)
      // STATICCALL(gas, target, scratch, length, offset, size); MSTORE(flag, success)
      program +=
        push2(size) +
        push2(offset) +
        push2(length) +
        push2(scratch) +
        "73" +
        target.slice(2).toLowerCase() +
        "5a" +
        "fa" +
        push2(flag) +
        "52";
      dataOffset += length;
    });
    program += "42" + push2(0) + "52"; // MSTORE(0, TIMESTAMP)
    program += push2(out) + push2(0) + "f3"; // RETURN(0, out)
    if (program.length / 2 !== programLength)
      throw new Error(`reader program is ${program.length / 2} bytes, expected ${programLength}`);
    this.code = `0x${program}${calls.map((c) => c.data.slice(2)).join("")}`;
  }

  async read() {
    const result = (await hre.network.provider.request({
      method: "eth_call",
      params: [{ data: this.code, gas: "0x1c9c380" }, "latest"],
    })) as string;
    const word = (at: number) => `0x${result.slice(2 + at * 2, 2 + (at + 32) * 2)}`;
    for (const { flag } of this.layout) expect(BigInt(word(flag)), "a view call reverted").to.equal(1n);
    const [caseLayout, ...stageLayouts] = this.layout;
    // Every field of CaseView and StageView is static: field k is the k-th word of the result.
    const field = (l: { offset: number }, k: number) => BigInt(word(l.offset + 32 * k));
    const c = (k: number) => field(caseLayout, k);
    return {
      now: Number(BigInt(word(0))),
      /** What the escrow holds of the case's payers (paidByBank + paidByBuyer), for the money check. */
      paid: c(19) + c(20),
      view: {
        status: CASE_STATUS[Number(c(1))] as string,
        released: c(2) === 1n,
        funded: c(3) === 1n,
        completedStages: Number(c(5)),
        overdueStages: Number(c(6)),
        cancelVotes: Number(c(7)),
        termsVersion: Number(c(21)),
        amendmentCount: Number(c(22)),
        signedOffRoles: c(9).toString(2),
        stages: stageLayouts.map((l) => ({
          status: STAGE_STATUS[Number(field(l, 0))] as string,
          signedOffRoles: Number(field(l, 2)),
          availableAt: Number(field(l, 3)),
          deadline: Number(field(l, 4)),
          completedAt: Number(field(l, 5)),
        })),
      },
    };
  }
}

type CaseView = Awaited<ReturnType<CaseReader["read"]>>["view"];

/**
 * The machine's state in the shape of the chain's views, at `now`. `completedAt` the contract keeps only for
 * the stages whose time a later rule needs (which ones is its own business): where it shows one, the machine
 * must have completed the stage at that very time.
 */
function machineView(snapshot: CaseSnapshot, now: number, chain: CaseView): CaseView {
  const { model } = snapshot.context;
  const mask = (bits: boolean[]) => bits.reduce((m, bit, i) => (bit ? m | (1 << i) : m), 0);
  return {
    status: String(snapshot.value),
    released: model.released,
    funded: model.funded,
    completedStages: mask(model.rules.map((_, s) => isCompleted(model, s))),
    overdueStages: mask(model.overdue),
    cancelVotes: model.cancelVotes,
    termsVersion: model.termsVersion ?? 0,
    amendmentCount: model.amendments?.length ?? 0,
    signedOffRoles: model.signedOff
      .reduce((m, roles, s) => m | (BigInt(roles) << BigInt(s * ROLE_COUNT)), 0n)
      .toString(2),
    stages: model.rules.map((rule, s) => ({
      status: stageStatus(model, s, now),
      signedOffRoles: model.signedOff[s],
      // The views' 32-bit fields read a time past early 2106 as the largest they hold.
      availableAt: rule.waitSeconds !== 0 ? Math.min(availableAt(model, s) ?? 0, MAX_TIME) : 0,
      deadline: Math.min(deadlineOf(model, s) ?? 0, MAX_TIME),
      completedAt: chain.stages[s]?.completedAt !== 0 ? (model.completedAt[s] ?? 0) : 0,
    })),
  };
}

/** Where two views differ, as "stages[1].status: machine open, chain locked". */
function differences(machine: unknown, chain: unknown, path = ""): string[] {
  if (typeof machine === "object" && machine !== null && typeof chain === "object" && chain !== null) {
    const keys = new Set([...Object.keys(machine), ...Object.keys(chain)]);
    return [...keys].flatMap((k) =>
      differences(
        (machine as Record<string, unknown>)[k],
        (chain as Record<string, unknown>)[k],
        Array.isArray(machine) ? `${path}[${k}]` : path ? `${path}.${k}` : k,
      ),
    );
  }
  return machine === chain ? [] : [`${path}: machine ${String(machine)}, chain ${String(chain)}`];
}

// ---------------------------------------------------------------- one case, on chain and in the machine

interface Outcome {
  reverted: boolean;
  error?: string;
  logs: { topics: string[]; data: string }[];
}

class Twin {
  snapshot: CaseSnapshot;
  private readonly machine: CaseMachine;
  /** What was done, for the message of a failure. */
  readonly log: string[] = [];
  /** The time of the latest block, set by this twin. */
  expectedTime: number | null = null;
  readonly address: string;
  header = "";
  transactions = 0;
  comparisons = 0;
  /** Everything the case's payers paid in, and everything credited to anyone, from the events. */
  deposited = 0n;
  credited = 0n;
  reverts = 0;

  constructor(
    readonly escrow: MortgageEscrow,
    readonly caseId: bigint,
    readonly template: CompiledWorkflow,
    readonly holders: HardhatEthersSigner[],
    readonly reader: CaseReader,
    /** Someone who holds no role: sends advance, expire and relayed batches. */
    readonly anyone: string,
    openedAt: number,
    funded: boolean,
  ) {
    this.address = reader.target;
    // The engine's machine of this workflow: its law included, as each case's actor runs it.
    this.machine = caseMachineOfWorkflow(template);
    [this.snapshot] = initialTransition(this.machine, { workflow: template, openedAt, funded });
  }

  static async open(
    escrow: MortgageEscrow,
    template: CompiledWorkflow,
    holders: HardhatEthersSigner[],
    anyone: HardhatEthersSigner,
    terms: { price: bigint; deposit: bigint; loan: bigint },
    openedAt: number,
  ): Promise<Twin> {
    const [bank, lawyer, buyer, seller] = holders.map((h) => h.address);
    const caseTerms = {
      templateId: template.templateId,
      bank,
      lawyer,
      buyer,
      seller,
      asset: ethers.ZeroAddress,
      ...terms,
    };
    const caseId = await escrow.connect(holders[0]).openCase.staticCall(caseTerms);
    await time.setNextBlockTimestamp(openedAt);
    await (await escrow.connect(holders[0]).openCase(caseTerms)).wait();
    const reader = new CaseReader(escrow, await escrow.getAddress(), caseId, template.stages.length);
    const twin = new Twin(
      escrow,
      caseId,
      template,
      holders,
      reader,
      anyone.address,
      openedAt,
      terms.deposit === 0n && terms.loan === 0n,
    );
    twin.expectedTime = openedAt;
    await twin.compare("opened");
    return twin;
  }

  get model(): CaseModel {
    return this.snapshot.context.model;
  }

  /** The mask of the roles `signer` holds in the case. */
  rolesOf(signer: HardhatEthersSigner): number {
    return this.holders.reduce((mask, h, role) => (h.address === signer.address ? mask | (1 << role) : mask), 0);
  }

  /** Sends a transaction in a block of time `at` (mined even if it reverts). */
  /**
   * Sends `method(...args)` from `from` in a block of time `at`, mined even if it reverts (the gas is given, so
   * nothing is estimated first). Straight to the provider: ethers' contract wrapper costs several times more.
   */
  async send(what: string, at: number, from: string, method: string, args: unknown[], value = 0n): Promise<Outcome> {
    this.log.push(`@${at} ${what}`);
    this.expectedTime = at;
    const provider = hre.network.provider;
    await provider.request({ method: "evm_setNextBlockTimestamp", params: [at] });
    const data = (this.escrow.interface as Interface).encodeFunctionData(method, args);
    const transaction = {
      from,
      to: this.address,
      data,
      value: `0x${value.toString(16)}`,
      gas: `0x${GAS.toString(16)}`,
    };
    let outcome: Outcome;
    try {
      const hash = await provider.request({ method: "eth_sendTransaction", params: [transaction] });
      const receipt = (await provider.request({ method: "eth_getTransactionReceipt", params: [hash] })) as {
        status: string;
        logs: Outcome["logs"];
      };
      expect(receipt.status).to.equal("0x1");
      outcome = { reverted: false, logs: receipt.logs };
    } catch (error) {
      const revertData = (error as { data?: string }).data;
      const parsed = typeof revertData === "string" ? this.escrow.interface.parseError(revertData) : null;
      if (!parsed) throw error;
      outcome = { reverted: true, error: parsed.name, logs: [] };
      this.reverts++;
      this.log.push(`  reverted: ${parsed.name}`);
    }
    this.transactions++;
    for (const e of this.eventsOf(outcome)) {
      if (BigInt(e.args.caseId ?? -1) !== this.caseId) continue;
      if (e.name === "Deposited") this.deposited += BigInt(e.args.amount);
      if (e.name === "Credited") this.credited += BigInt(e.args.amount);
    }
    return outcome;
  }

  /** The events of a transaction that succeeded, by name. */
  eventsOf(outcome: Outcome) {
    return outcome.logs.map((log) => this.escrow.interface.parseLog(log)).filter((e) => e !== null);
  }

  /** Feeds the machine; returns whether it took the event (its state changed). */
  feed(event: CaseEvent): boolean {
    const before = serializeCase(this.snapshot);
    [this.snapshot] = transition(this.machine, this.snapshot, event);
    const taken = serializeCase(this.snapshot) !== before;
    const shown = JSON.stringify(event, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v));
    this.log.push(`  machine ${taken ? "took" : "ignored"} ${shown}`);
    return taken;
  }

  /** Feeds `event` for a transaction whose whole effect it is: taken exactly when the transaction succeeded. */
  feedFor(outcome: Outcome, event: CaseEvent): void {
    expect(
      this.feed(event),
      `${this.failure()}\nthe machine takes ${event.type} iff the chain did not revert`,
    ).to.equal(!outcome.reverted);
  }

  async compare(what: string): Promise<void> {
    const { now, view, paid } = await this.reader.read();
    // Money is conserved: while the case is open and not released, what came in is what the escrow holds of
    // its payers plus what was credited back (a share an amendment shrank); once released or ended, every
    // unit that came in has been credited to someone, once.
    const held = view.status === "open" && !view.released ? paid : 0n;
    expect(this.deposited, `${this.failure()}\nafter ${what}: money in = held + credited`).to.equal(
      held + this.credited,
    );
    this.comparisons++;
    if (this.expectedTime !== null)
      expect(now, "the views run at the time of the latest block").to.equal(this.expectedTime);
    const mirrored = machineView(this.snapshot, now, view);
    // chai's deep equality costs milliseconds on objects this size; it is only needed to show a difference.
    if (JSON.stringify(mirrored) !== JSON.stringify(view)) {
      expect(
        mirrored,
        `${this.failure()}\nafter ${what}, at ${now}: ${differences(mirrored, view).join("; ")}`,
      ).to.deep.equal(view);
    }
    expect(this.model.status, "the machine's state is its model's status").to.equal(this.snapshot.value);
    await this.compareAmendments(what);
  }

  /** Each amendment as the chain records it against the machine's: version, who must and who did consent. */
  async compareAmendments(what: string): Promise<void> {
    const amendments = this.model.amendments ?? [];
    for (let n = 1; n <= amendments.length; n++) {
      const chain = await this.escrow.amendmentOf(this.caseId, n);
      const mine = amendments[n - 1];
      const theirs = {
        kind: AMENDMENT_KINDS[Number(chain.proposal.kind)],
        version: Number(chain.version),
        required: Number(chain.required),
        consents: Number(chain.consents),
        applied: chain.applied,
      };
      const ours = {
        kind: mine.kind,
        version: mine.version,
        required: mine.required,
        consents: mine.consents,
        applied: mine.applied,
      };
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
        expect(ours, `${this.failure()}\nafter ${what}: amendment ${n}`).to.deep.equal(theirs);
      }
    }
  }

  failure(): string {
    return [this.header, ...this.log.slice(-40)].join("\n");
  }

  // --- the transactions, each with its machine event

  async signOff(at: number, stage: number, role: number): Promise<Outcome> {
    const outcome = await this.send(`signOff(${stage}, ${role})`, at, this.holders[role].address, "signOff", [
      this.caseId,
      stage,
      role,
      EVIDENCE,
    ]);
    this.feedFor(outcome, { type: "SIGN_OFF", stage, role, at });
    return outcome;
  }

  async revoke(at: number, stage: number, role: number, relayed: boolean): Promise<Outcome> {
    let outcome: Outcome;
    if (relayed) {
      const epoch = Number(await this.escrow.signOffEpoch(this.caseId, stage, role));
      const signature = await signRevocation(this.escrow, this.holders[role], {
        caseId: this.caseId,
        stage,
        role,
        epoch,
      });
      outcome = await this.send(
        `revokeSignOffWithSignature(${stage}, ${role}, epoch ${epoch})`,
        at,
        this.anyone,
        "revokeSignOffWithSignature",
        [this.caseId, stage, role, epoch, signature],
      );
    } else {
      outcome = await this.send(`revokeSignOff(${stage}, ${role})`, at, this.holders[role].address, "revokeSignOff", [
        this.caseId,
        stage,
        role,
      ]);
    }
    this.feedFor(outcome, { type: "REVOKE", stage, role, at });
    return outcome;
  }

  /** A deposit: the machine hears FUNDED only from the one that funds the escrow. */
  async deposit(at: number, role: number, amount: bigint): Promise<Outcome> {
    const outcome = await this.send(
      `deposit(${role}, ${amount})`,
      at,
      this.holders[role].address,
      "deposit",
      [this.caseId, role, amount],
      amount,
    );
    const funds = this.eventsOf(outcome).some((e) => e.name === "EscrowFunded");
    if (funds) this.feedFor(outcome, { type: "FUNDED", at });
    else this.log.push("  (no event: the escrow is not newly funded)");
    return outcome;
  }

  async advance(at: number): Promise<Outcome> {
    const outcome = await this.send("advance()", at, this.anyone, "advance", [this.caseId]);
    this.feedFor(outcome, { type: "ADVANCE", at });
    return outcome;
  }

  async expire(at: number): Promise<Outcome> {
    const outcome = await this.send("expire()", at, this.anyone, "expire", [this.caseId]);
    this.feedFor(outcome, { type: "EXPIRE", at });
    return outcome;
  }

  async cancel(at: number, voter: HardhatEthersSigner): Promise<Outcome> {
    const roles = this.rolesOf(voter);
    const outcome = await this.send(`cancel() by roles ${roles.toString(2)}`, at, voter.address, "cancel", [
      this.caseId,
    ]);
    this.feedFor(outcome, { type: "CANCEL_VOTE", roles, at });
    return outcome;
  }

  async withdrawVote(at: number, voter: HardhatEthersSigner): Promise<Outcome> {
    const roles = this.rolesOf(voter);
    const outcome = await this.send(
      `withdrawCancelVote() by roles ${roles.toString(2)}`,
      at,
      voter.address,
      "withdrawCancelVote",
      [this.caseId],
    );
    this.feedFor(outcome, { type: "WITHDRAW_CANCEL_VOTE", roles, at });
    return outcome;
  }

  /**
   * Relays signed sign-offs in one batch, which no item reverts. Item by item, in order, the skip reason the
   * model gives (`signOffSkipOf`: case not open, role not required, already signed off) must be the chain's,
   * and the machine must ignore the item; past those, a stale epoch is the relayer's to know, a forged
   * signature must be skipped as `InvalidSignature`, and every other item applied, the machine taking it.
   * Returns the outcome and the chain's reason for each item ("applied" or a `SkipReason` name).
   */
  async relay(
    at: number,
    items: IMortgageEscrow.SignedSignOffStruct[],
    forged: ReadonlySet<number> = new Set(),
  ): Promise<Outcome & { results: string[] }> {
    const what = items
      .map((i, k) => `(${i.stage}, ${i.role}, epoch ${i.epoch}${forged.has(k) ? ", forged" : ""})`)
      .join(" ");
    const outcome = await this.send(`signOffWithSignatures ${what}`, at, this.anyone, "signOffWithSignatures", [items]);
    expect(outcome.reverted, `${this.failure()}\nno item reverts a batch`).to.equal(false);
    const skipped = new Map<number, string>();
    for (const e of this.eventsOf(outcome)) {
      if (e.name === "SignOffSkipped") {
        expect(Number(e.args.caseId)).to.equal(Number(this.caseId));
        skipped.set(Number(e.args.index), SKIP_REASONS[Number(e.args.reason)]);
      }
    }
    const results = items.map((item, index) => {
      const stage = Number(item.stage);
      const role = Number(item.role);
      const event: CaseEvent = { type: "SIGN_OFF", stage, role, at };
      const result = skipped.get(index) ?? "applied";
      const expected = signOffSkipOf(this.model, stage, role);
      const context = `${this.failure()}\nitem ${index} (${stage}, ${role}): ${result}`;
      if (expected !== null) {
        expect(result, context).to.equal(expected);
        expect(this.feed(event), context).to.equal(false);
      } else if (result === "StaleEpoch") {
        this.log.push(`  item ${index} skipped: stale epoch`);
      } else {
        // A forged item is not the party's sign-off: the machine never hears of it.
        expect(result, context).to.equal(forged.has(index) ? "InvalidSignature" : "applied");
        if (result === "applied") expect(this.feed(event), context).to.equal(true);
      }
      return result;
    });
    return { ...outcome, results };
  }

  /** A relayed item signed by the role's holder, or, given `forger`, by someone else: a signature not the party's. */
  async signedItem(
    stage: number,
    role: number,
    epoch: number,
    forger?: HardhatEthersSigner,
  ): Promise<IMortgageEscrow.SignedSignOffStruct> {
    const evidence = ethers.id(`evidence ${stage} ${role} ${epoch}`);
    const message = { caseId: this.caseId, stage, role, epoch, evidence };
    return { ...message, signature: await signSignOff(this.escrow, forger ?? this.holders[role], message) };
  }

  // --- amendments

  /** The withdrawal count of each (amendment, role), as the relayer keeps it: a relayed consent carries it. */
  readonly consentEpochs = new Map<string, number>();

  epochOf(amendment: number, role: number): number {
    return this.consentEpochs.get(`${amendment}/${role}`) ?? 0;
  }

  /** Whether the escrow is funded after a transaction, by its events (a terms change may fund or unfund it). */
  fundedAfter(outcome: Outcome): boolean {
    const names = this.eventsOf(outcome).map((e) => e.name);
    if (names.includes("EscrowNoLongerFunded")) return false;
    if (names.includes("EscrowFunded")) return true;
    return this.model.funded;
  }

  /** Takes the new address of a replaced party from the events: the twin then signs with its signer. */
  followReplacements(outcome: Outcome): void {
    for (const e of this.eventsOf(outcome)) {
      if (e.name !== "PartyReplaced") continue;
      const signer = this.spareSigners.find((h) => h.address === e.args.account);
      expect(signer, "the new party is one of the twin's signers").to.not.equal(undefined);
      this.holders[Number(e.args.role)] = signer!;
    }
  }

  /** Signers that may become a party by a replacement. */
  spareSigners: HardhatEthersSigner[] = [];

  async propose(at: number, role: number, content: AmendmentContent, expiresAt: number): Promise<Outcome> {
    const p = {
      kind: AMENDMENT_KINDS.indexOf(content.kind),
      expiresAt,
      stage: content.kind === "deadline" ? content.stage : 0,
      longStop: content.kind === "deadline" ? content.longStop : false,
      deadline: content.kind === "deadline" ? content.at : 0,
      price: content.kind === "terms" ? content.price : 0n,
      deposit: content.kind === "terms" ? content.deposit : 0n,
      loan: content.kind === "terms" ? content.loan : 0n,
      party: content.kind === "party" ? content.party : 0,
      account:
        content.kind === "party"
          ? this.spareSigners[this.replacements++ % this.spareSigners.length].address
          : ethers.ZeroAddress,
    };
    const outcome = await this.send(
      `proposeAmendment(${role}, ${JSON.stringify(content, (_, v) => (typeof v === "bigint" ? String(v) : v))}, expires ${expiresAt})`,
      at,
      this.holders[role].address,
      "proposeAmendment",
      [this.caseId, role, p],
    );
    const proposed = this.eventsOf(outcome).find((e) => e.name === "AmendmentProposed");
    const required = proposed ? Number(proposed.args.required) : 0xf;
    if (proposed && content.kind !== "terms") {
      const rules = this.template.amendmentRules;
      const consentRoles = content.kind === "deadline" ? rules.deadlineConsent : rules.partyConsent;
      expect(required, `${this.failure()}\nthe roles a ${content.kind} amendment needs`).to.equal(
        requiredConsentsOf(this.model, consentRoles, content),
      );
    }
    this.feedFor(outcome, {
      type: "PROPOSE_AMENDMENT",
      proposal: { proposer: role, expiresAt, content, required },
      at,
      funded: this.fundedAfter(outcome),
    });
    this.followReplacements(outcome);
    return outcome;
  }
  private replacements = 0;

  async consent(at: number, amendment: number, role: number): Promise<Outcome> {
    const outcome = await this.send(
      `consentToAmendment(${amendment}, ${role})`,
      at,
      this.holders[role].address,
      "consentToAmendment",
      [this.caseId, amendment, role],
    );
    if (outcome.reverted && outcome.error === "MortgageEscrowConsentRefused") {
      this.log.push(`  expected refusal: ${consentRefusalOf(this.model, amendment, role, at)}`);
    }
    this.feedFor(outcome, { type: "CONSENT", amendment, role, at, funded: this.fundedAfter(outcome) });
    this.followReplacements(outcome);
    return outcome;
  }

  async withdrawConsent(at: number, amendment: number, role: number): Promise<Outcome> {
    const outcome = await this.send(
      `withdrawAmendmentConsent(${amendment}, ${role})`,
      at,
      this.holders[role].address,
      "withdrawAmendmentConsent",
      [this.caseId, amendment, role],
    );
    this.feedFor(outcome, { type: "WITHDRAW_CONSENT", amendment, role, at });
    if (!outcome.reverted) this.consentEpochs.set(`${amendment}/${role}`, this.epochOf(amendment, role) + 1);
    return outcome;
  }

  /** A relayed consent signed by the role's holder, or by `forger`; for `epoch`, or the current one. */
  async signedConsent(
    amendment: number,
    role: number,
    options: { forger?: HardhatEthersSigner; epoch?: number; caseId?: bigint; version?: number; kind?: number } = {},
  ): Promise<IMortgageEscrow.SignedConsentStruct> {
    const a = this.model.amendments?.[amendment - 1];
    const epoch = options.epoch ?? this.epochOf(amendment, role);
    const message = {
      caseId: options.caseId ?? this.caseId,
      amendment,
      kind: options.kind ?? (a ? AMENDMENT_KINDS.indexOf(a.kind) : 0),
      version: options.version ?? a?.version ?? 0,
      role,
      epoch,
    };
    const signature = await signConsent(this.escrow, options.forger ?? this.holders[role], message);
    return { caseId: this.caseId, amendment, role, epoch, signature };
  }

  /**
   * Relays consents in one batch, which no item reverts. Item by item the model's reason
   * (`consentRefusalOf`), then the epoch the twin keeps, then the signature, must be the chain's; the machine
   * takes exactly the items applied. `invalid`: the items whose signature is not the party's for this message.
   */
  async relayConsents(
    at: number,
    items: IMortgageEscrow.SignedConsentStruct[],
    invalid: ReadonlySet<number> = new Set(),
  ): Promise<Outcome & { results: string[] }> {
    const what = items
      .map((i, k) => `(${i.amendment}, ${i.role}, epoch ${i.epoch}${invalid.has(k) ? ", invalid" : ""})`)
      .join(" ");
    const outcome = await this.send(
      `consentToAmendmentsWithSignatures ${what}`,
      at,
      this.anyone,
      "consentToAmendmentsWithSignatures",
      [items],
    );
    expect(outcome.reverted, `${this.failure()}\nno item reverts a batch`).to.equal(false);
    const skipped = new Map<number, string>();
    for (const e of this.eventsOf(outcome)) {
      if (e.name === "AmendmentConsentSkipped")
        skipped.set(Number(e.args.index), CONSENT_SKIP_REASONS[Number(e.args.reason)]);
    }
    const funded = this.fundedAfter(outcome);
    const results = items.map((item, index) => {
      const amendment = Number(item.amendment);
      const role = Number(item.role);
      const result = skipped.get(index) ?? "applied";
      const context = `${this.failure()}\nconsent item ${index} (${amendment}, ${role}): ${result}`;
      const expected =
        consentRefusalOf(this.model, amendment, role, at) ??
        (Number(item.epoch) !== this.epochOf(amendment, role)
          ? "StaleEpoch"
          : invalid.has(index)
            ? "InvalidSignature"
            : null);
      expect(result, context).to.equal(expected ?? "applied");
      // A stale or forged consent is not the party's: the machine never hears of it, as of such a sign-off.
      if (result === "StaleEpoch" || result === "InvalidSignature") this.log.push(`  item ${index}: ${result}`);
      else expect(this.feed({ type: "CONSENT", amendment, role, at, funded }), context).to.equal(expected === null);
      return result;
    });
    this.followReplacements(outcome);
    return { ...outcome, results };
  }

  /** Mines an empty block at `at`: time alone changes what the views say. */
  async waitUntil(at: number): Promise<void> {
    this.log.push(`@${at} (time passes)`);
    this.expectedTime = at;
    await time.increaseTo(at);
  }
}

// ---------------------------------------------------------------- (a) the graph's paths

interface PathNode {
  event?: CaseEvent;
  children: Map<string, PathNode>;
  /** The state the graph reached at the end of this path. */
  reached?: CaseSnapshot;
}

function pathTree(paths: CasePath[]): PathNode {
  const root: PathNode = { children: new Map() };
  for (const path of paths) {
    let node = root;
    for (const event of eventsOf(path)) {
      const key = JSON.stringify(event);
      let child = node.children.get(key);
      if (!child) node.children.set(key, (child = { event: event as CaseEvent, children: new Map() }));
      node = child;
    }
    node.reached = path.state;
  }
  return root;
}

/**
 * Replays one event of the graph as the transactions that make it. A chain needs each block later than the
 * last, so the i-th transaction of a path runs at its event's time plus i seconds (the graph's events share
 * their times); waiting times and deadlines are counted from when things happened on the chain, so the shift
 * never turns an aimed advance or expire into a revert.
 */
async function replayEvent(
  twin: Twin,
  event: CaseEvent,
  shift: number,
  terms: { deposit: bigint; loan: bigint },
): Promise<number> {
  let outcomes: Outcome[] = [];
  const at = () => event.at + ++shift;
  switch (event.type) {
    case "SIGN_OFF":
      outcomes = [await twin.signOff(at(), event.stage, event.role)];
      break;
    case "FUNDED":
      if (terms.deposit > 0n) {
        outcomes.push(await twin.deposit(at(), 2, terms.deposit));
        await twin.compare("the buyer's deposit");
      }
      outcomes.push(await twin.deposit(at(), 0, terms.loan));
      expect(twin.model.funded, "the last share funds the escrow").to.equal(true);
      break;
    case "ADVANCE":
      outcomes = [await twin.advance(at())];
      break;
    case "EXPIRE":
      outcomes = [await twin.expire(at())];
      break;
    case "CANCEL_VOTE":
      for (const role of indexesOf(event.roles)) {
        outcomes.push(await twin.cancel(at(), twin.holders[role]));
        if (role !== 3) await twin.compare(`the vote of role ${role}`);
      }
      break;
    case "WITHDRAW_CANCEL_VOTE":
      for (const role of indexesOf(event.roles)) outcomes.push(await twin.withdrawVote(at(), twin.holders[role]));
      break;
    default:
      throw new Error(`no transaction for ${JSON.stringify(event)}`);
  }
  for (const outcome of outcomes) expect(outcome.reverted, twin.failure()).to.equal(false);
  await twin.compare(JSON.stringify(event));
  return shift;
}

// ---------------------------------------------------------------- (b) random walks

class Choices {
  constructor(readonly random: () => number) {}
  int(max: number): number {
    return Math.floor(this.random() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  weighted<T extends string>(weights: Record<T, number>): T {
    const entries = Object.entries(weights) as [T, number][];
    let r = this.random() * entries.reduce((sum, [, w]) => sum + w, 0);
    for (const [key, w] of entries) if ((r -= w) < 0) return key;
    return entries[entries.length - 1][0];
  }
}

async function runWalk(seed: number, walk: number, tally: Map<string, number>): Promise<Twin> {
  const choose = new Choices(seededRandom(seed ^ Math.imul(walk + 1, 0x9e3779b1)));
  const { escrow, parties } = await loadFixture(deployWithTemplates);
  const template = templateOf(choose.pick([...TEMPLATE_IDS, EXTRAS.workflow.id]));
  const terms = TERMS[template.workflow.id];
  const holders = [parties.bank, parties.lawyer, parties.buyer, parties.seller];
  if (choose.chance(0.35)) {
    // One address holds two roles: its cancel votes for both, its sign-offs name one role each.
    const first = choose.int(ROLE_COUNT);
    const second = (first + 1 + choose.int(ROLE_COUNT - 1)) % ROLE_COUNT;
    holders[second] = holders[first];
  }
  const opened = (await time.latest()) + 10;
  const twin = await Twin.open(escrow, template, holders, parties.relayer, terms, opened);
  twin.spareSigners = (await ethers.getSigners()).slice(10, 16);
  twin.header = `seed ${seed} (MACHINE_WALK_SEED), walk ${walk}: ${template.workflow.id}, holders ${holders.map((h) => h.address.slice(0, 6)).join(" ")}`;
  const rules = template.stages;
  const stageCount = rules.length;
  /** Signed items kept for relaying later, stale ones included. */
  const signed: IMortgageEscrow.SignedSignOffStruct[] = [];
  const count = (what: string) => tally.set(what, (tally.get(what) ?? 0) + 1);

  /** A time ahead of the chain's: a little later, or aimed at a moment that matters +-1 s. */
  const nextTime = async (aims: number[], aimed: number): Promise<number> => {
    const latest = await time.latest();
    const ahead = aims.filter((t) => t > latest);
    if (ahead.length > 0 && choose.chance(aimed)) return choose.pick(ahead);
    return latest + 1 + (choose.chance(steady ? 0.03 : 0.1) ? choose.int(3 * DAY) : choose.int(600));
  };
  /** The moments around which the contract's answers change: availableAt and deadlines (missed 1 s after). */
  const moments = (which: "ready" | "deadline" | "both"): number[] => {
    const m = twin.model;
    const points: number[] = [];
    for (let s = 0; s < stageCount; s++) {
      const ready = rules[s].waitSeconds !== 0 && !isCompleted(m, s) ? availableAt(m, s) : null;
      const deadline = isCompleted(m, s) ? null : deadlineOf(m, s);
      if (ready !== null && which !== "deadline") points.push(ready - 1, ready, ready + 1);
      if (deadline !== null && which !== "ready") points.push(deadline, deadline + 1, deadline + 2);
    }
    return points;
  };
  /** A (stage, role) that the case awaits, or any at all (a role not required, a stage beyond the template). */
  const signable = (smart: boolean): [number, number] => {
    const m = twin.model;
    const awaited: [number, number][] = [];
    const unlocked: [number, number][] = [];
    for (let s = 0; s < stageCount; s++) {
      for (let r = 0; r < ROLE_COUNT; r++) {
        if (!(((rules[s].roles & ~m.signedOff[s]) >> r) & 1)) continue;
        awaited.push([s, r]);
        if (prerequisitesComplete(m, s)) unlocked.push([s, r]);
      }
    }
    if (smart && unlocked.length > 0 && choose.chance(0.75)) return choose.pick(unlocked);
    if (smart && awaited.length > 0) return choose.pick(awaited);
    return [choose.int(stageCount + 1), choose.int(ROLE_COUNT)];
  };
  const revocable = (): [number, number] => {
    const m = twin.model;
    const candidates: [number, number][] = [];
    for (let s = 0; s < stageCount; s++) {
      for (let r = 0; r < ROLE_COUNT; r++) if ((m.signedOff[s] >> r) & 1) candidates.push([s, r]);
    }
    return candidates.length > 0 && choose.chance(0.8)
      ? choose.pick(candidates)
      : [choose.int(stageCount), choose.int(ROLE_COUNT)];
  };

  /** Signed consents kept for relaying later (stale or applied ones included), and whether each is the party's. */
  const signedConsents: Array<{
    item: IMortgageEscrow.SignedConsentStruct;
    /** Signed by someone else, or for another case. */
    bad: boolean;
    /** The kind and version the message named: the proposal's, or a guess for one not proposed yet. */
    kind: number;
    version: number;
  }> = [];
  /** Whether a kept signature is not the party's for its amendment as the case holds it now. */
  const invalidNow = (kept: (typeof signedConsents)[number]): boolean => {
    const a = twin.model.amendments?.[Number(kept.item.amendment) - 1];
    return (
      kept.bad || (a !== undefined && (AMENDMENT_KINDS.indexOf(a.kind) !== kept.kind || a.version !== kept.version))
    );
  };
  /** A proposal's content: mostly one the contract takes, sometimes not (a deadline it cannot move, a price too high). */
  const amendmentContent = async (): Promise<AmendmentContent> => {
    const kind = choose.weighted({ deadline: 5, terms: 3, party: 2 });
    if (kind === "deadline") {
      const movable: Array<[number, boolean]> = [];
      for (let s = 0; s < stageCount; s++)
        for (const longStop of [false, true]) if (deadlineSlotOf(rules, s, longStop) !== 0) movable.push([s, longStop]);
      const [stage, longStop] =
        movable.length > 0 && choose.chance(0.9)
          ? choose.pick(movable)
          : [choose.int(stageCount + 1), choose.chance(0.5)];
      const m = twin.model;
      const current = stage < stageCount ? (longStop ? longStopOf(m, stage) : anchoredDeadlineOf(m, stage)) : null;
      const base = current ?? (await time.latest());
      return { kind, stage, longStop, at: Math.max(1, base + (choose.chance(0.6) ? 1 : -1) * choose.int(20 * DAY)) };
    }
    if (kind === "terms") {
      const c = await escrow.caseOf(twin.caseId);
      const jiggle = (v: bigint) => {
        const d = BigInt(choose.int(5_000));
        return choose.chance(0.5) ? v + d : v > d ? v - d : 0n;
      };
      const deposit = jiggle(c.deposit);
      const loan = jiggle(c.loan);
      const price = choose.chance(0.1)
        ? deposit + loan + 1n
        : [jiggle(c.price), deposit + loan].sort((a, b) => (a < b ? -1 : 1))[0];
      return { kind, price, deposit, loan };
    }
    return { kind, party: choose.int(ROLE_COUNT) };
  };
  /** An amendment and a role: mostly an open one and a role it still needs; sometimes anything. */
  const consentTarget = (): [number, number] => {
    const list = twin.model.amendments ?? [];
    const open = list.map((a, i) => [a, i + 1] as const).filter(([a]) => !a.applied);
    if (open.length > 0 && choose.chance(0.85)) {
      const [a, id] = choose.pick(open);
      const missing = indexesOf(a.required & ~a.consents);
      return [id, missing.length > 0 && choose.chance(0.8) ? choose.pick(missing) : choose.int(ROLE_COUNT)];
    }
    return [1 + choose.int(list.length + 1), choose.int(ROLE_COUNT)];
  };
  const withdrawTarget = (): [number, number] => {
    const list = twin.model.amendments ?? [];
    const standing: Array<[number, number]> = [];
    list.forEach((a, i) => {
      if (!a.applied) for (const r of indexesOf(a.consents)) standing.push([i + 1, r]);
    });
    return standing.length > 0 && choose.chance(0.8) ? choose.pick(standing) : consentTarget();
  };

  /** Half the walks press on towards completion; the others wander, and expire or cancel more often. */
  const steady = walk % 2 === 0;
  let stepsAfterTheEnd = 0;
  for (let step = 0; step < WALK_STEPS && stepsAfterTheEnd < 3; step++) {
    if (twin.snapshot.status === "done") stepsAfterTheEnd++;
    const kind = choose.weighted(
      steady
        ? {
            sign: 12,
            relay: 4,
            revoke: 2,
            deposit: 3,
            time: 3,
            advance: 3,
            expire: 1,
            cancel: 2,
            withdraw: 1,
            ...AMEND,
          }
        : {
            sign: 9,
            relay: 3,
            revoke: 3,
            deposit: 3,
            time: 3,
            advance: 3,
            expire: 2,
            cancel: 3,
            withdraw: 2,
            ...AMEND,
          },
    );
    const at =
      kind === "advance"
        ? await nextTime(moments("ready"), 0.6)
        : kind === "expire"
          ? await nextTime(moments("deadline"), 0.5)
          : await nextTime(moments(steady ? "ready" : "both"), kind === "time" ? 0.6 : 0.1);
    let outcome: Outcome | undefined;
    switch (kind) {
      case "sign": {
        const [stage, role] = signable(choose.chance(0.8));
        outcome = await twin.signOff(at, stage, role);
        break;
      }
      case "relay": {
        const items: IMortgageEscrow.SignedSignOffStruct[] = [];
        const forged = new Set<number>();
        for (let n = 1 + choose.int(3); n > 0; n--) {
          if (signed.length > 0 && choose.chance(0.3)) {
            items.push(choose.pick(signed)); // possibly stale, possibly applied already
            continue;
          }
          const [stage, role] = signable(choose.chance(0.85));
          const epoch = stage < stageCount ? Number(await escrow.signOffEpoch(twin.caseId, stage, role)) : 0;
          if (choose.chance(0.15)) {
            // Signed by someone who holds no role: the batch skips it and carries on.
            forged.add(items.length);
            items.push(await twin.signedItem(stage, role, epoch, parties.stranger));
            continue;
          }
          const item = await twin.signedItem(stage, role, epoch);
          signed.push(item);
          items.push(item);
        }
        if (choose.chance(0.2)) {
          if (forged.has(0)) forged.add(items.length);
          items.push(items[0]); // the same item twice in one batch
        }
        const relayed = await twin.relay(at, items, forged);
        for (const result of relayed.results) count(`relay item ${result}`);
        outcome = relayed;
        break;
      }
      case "revoke": {
        const [stage, role] = revocable();
        outcome = await twin.revoke(at, stage, role, choose.chance(0.3));
        break;
      }
      case "deposit": {
        const role = choose.chance(0.5) ? 0 : 2;
        const c = await escrow.caseOf(twin.caseId);
        // The shares as the terms stand now: an amendment may have changed them.
        const share = role === 0 ? c.loan : c.deposit;
        const remaining = share - (role === 0 ? c.paidByBank : c.paidByBuyer);
        const amount =
          remaining > 1n && choose.chance(0.4)
            ? 1n + BigInt(choose.int(Number(remaining - 1n)))
            : remaining > 0n
              ? remaining + (choose.chance(0.1) ? 7n : 0n)
              : 1n;
        outcome = await twin.deposit(at, role, amount);
        break;
      }
      case "time":
        await twin.waitUntil(at);
        break;
      case "advance":
        outcome = await twin.advance(at);
        break;
      case "expire":
        outcome = await twin.expire(at);
        break;
      case "cancel": {
        const voter = choose.chance(0.1) ? parties.stranger : choose.pick(holders);
        outcome = await twin.cancel(at, voter);
        break;
      }
      case "propose": {
        const content = await amendmentContent();
        const expiresAt =
          at + (choose.chance(0.2) ? choose.int(3_600) : choose.int(5 * DAY)) + (choose.chance(0.05) ? -at : 1);
        outcome = await twin.propose(at, choose.int(ROLE_COUNT), content, Math.max(0, expiresAt));
        if (twin.eventsOf(outcome).some((e) => e.name === "AmendmentApplied"))
          count(`amendment applied (${content.kind})`);
        break;
      }
      case "consent": {
        const [amendment, role] = consentTarget();
        outcome = await twin.consent(at, amendment, role);
        for (const e of twin.eventsOf(outcome)) if (e.name === "AmendmentApplied") count("amendment applied");
        if (twin.eventsOf(outcome).some((e) => e.name === "StageReopened")) count("stage reopened");
        break;
      }
      case "relayConsent": {
        const items: IMortgageEscrow.SignedConsentStruct[] = [];
        const invalid = new Set<number>();
        for (let n = 1 + choose.int(3); n > 0; n--) {
          if (signedConsents.length > 0 && choose.chance(0.25)) {
            const kept = choose.pick(signedConsents); // possibly stale, applied or superseded
            if (invalidNow(kept)) invalid.add(items.length);
            items.push(kept.item);
            continue;
          }
          const [amendment, role] = consentTarget();
          const trick = choose.weighted({
            none: 12,
            forged: 2,
            otherCase: 1,
            otherVersion: 1,
            otherKind: 1,
            staleEpoch: 1,
          });
          const epoch = twin.epochOf(amendment, role);
          const a = twin.model.amendments?.[amendment - 1];
          const kind = (a ? AMENDMENT_KINDS.indexOf(a.kind) : 0) + (trick === "otherKind" ? 1 : 0);
          const version = (a?.version ?? twin.model.termsVersion ?? 0) + (trick === "otherVersion" ? 1 : 0);
          const item = await twin.signedConsent(amendment, role, {
            forger: trick === "forged" ? parties.stranger : undefined,
            caseId: trick === "otherCase" ? twin.caseId + 1n : undefined,
            version,
            kind: kind % 3,
            epoch: trick === "staleEpoch" && epoch > 0 ? epoch - 1 : undefined,
          });
          const kept = { item, bad: trick === "forged" || trick === "otherCase", kind: kind % 3, version };
          if (invalidNow(kept)) invalid.add(items.length);
          signedConsents.push(kept);
          items.push(item);
        }
        const relayed = await twin.relayConsents(at, items, invalid);
        for (const result of relayed.results) count(`consent item ${result}`);
        for (const e of twin.eventsOf(relayed)) if (e.name === "AmendmentApplied") count("amendment applied");
        outcome = relayed;
        break;
      }
      case "withdrawConsent": {
        const [amendment, role] = withdrawTarget();
        outcome = await twin.withdrawConsent(at, amendment, role);
        break;
      }
      case "withdraw": {
        // Mostly a voter whose vote stands; sometimes one with none, or a stranger.
        const voters = holders.filter((h) => (twin.rolesOf(h) & twin.model.cancelVotes) !== 0);
        const voter =
          voters.length > 0 && choose.chance(0.7)
            ? choose.pick(voters)
            : choose.chance(0.2)
              ? parties.stranger
              : choose.pick(holders);
        outcome = await twin.withdrawVote(at, voter);
        break;
      }
    }
    if (outcome && twin.eventsOf(outcome).some((e) => e.name === "CancellationVotesCleared"))
      count("votes cleared by a binding stage");
    count(`${kind}${outcome ? (outcome.reverted ? ` reverted (${outcome.error})` : " succeeded") : ""}`);
    await twin.compare(kind);
  }
  count(`walk ended ${twin.snapshot.value}`);
  return twin;
}

// ---------------------------------------------------------------- the tests

describe("workflows/machine against MortgageEscrow", function () {
  this.timeout(300_000);

  describe("the shortest paths of each template's graph, replayed on chain", function () {
    for (const id of TEMPLATE_IDS) {
      it(`agrees with the contract at every step of every path of ${id}`, async function () {
        const { escrow, parties } = await loadFixture(deployWithTemplates);
        const template = getTemplate(id);
        const terms = TERMS[id];
        const holders = [parties.bank, parties.lawyer, parties.buyer, parties.seller];
        const openedAt = (await time.latest()) + 10;
        const root = await Twin.open(escrow, template, holders, parties.relayer, terms, openedAt);
        root.header = `${id}: a shortest path`;
        const graph = exploreCase({ workflow: template, openedAt });
        const tree = pathTree(graph.paths);
        let replayedPaths = 0;
        const ends = new Map<string, number>();

        const visit = async (node: PathNode, snapshot: CaseSnapshot, shift: number, trail: string[]): Promise<void> => {
          if (node.reached) {
            replayedPaths++;
            expect(snapshot.value, `${trail.join(" -> ")}: the replay ends where the graph's path does`).to.equal(
              node.reached.value,
            );
            ends.set(String(snapshot.value), (ends.get(String(snapshot.value)) ?? 0) + 1);
          }
          for (const child of node.children.values()) {
            const chainSnapshot = await hre.network.provider.send("evm_snapshot", []);
            const logged = root.log.length;
            const money = [root.deposited, root.credited];
            root.snapshot = snapshot;
            const event = child.event as CaseEvent;
            const nextShift = await replayEvent(root, event, shift, terms);
            await visit(child, root.snapshot, nextShift, [
              ...trail,
              event.type === "SIGN_OFF" ? `SIGN_OFF ${event.stage}/${event.role}` : event.type,
            ]);
            root.log.length = logged;
            [root.deposited, root.credited] = money;
            expect(await hre.network.provider.send("evm_revert", [chainSnapshot])).to.equal(true);
          }
        };
        await visit(tree, root.snapshot, 0, []);

        expect(replayedPaths).to.equal(graph.paths.length);
        expect(ends.get("completed"), "paths that complete the case").to.be.greaterThan(0);
        expect(ends.get("expired"), "paths that expire it").to.be.greaterThan(0);
        expect(ends.get("cancelled"), "paths that cancel it").to.be.greaterThan(0);
        console.log(
          `      ${id}: ${replayedPaths} paths (${JSON.stringify(Object.fromEntries(ends))}), ${root.transactions} transactions, ${root.comparisons} comparisons`,
        );
      });
    }
  });

  describe("a party that goes silent", function () {
    for (const id of TEMPLATE_IDS) {
      it(`cannot hold ${id}'s deposits: the long-stop expires the case, and every payer withdraws its deposit`, async function () {
        const { escrow, parties } = await loadFixture(deployWithTemplates);
        const template = getTemplate(id);
        const terms = TERMS[id];
        const holders = [parties.bank, parties.lawyer, parties.buyer, parties.seller];
        const openedAt = (await time.latest()) + 10;
        const twin = await Twin.open(escrow, template, holders, parties.relayer, terms, openedAt);
        twin.header = `${id}: the party that signs the release's anchor goes silent`;
        const release = template.details.find((d) => d.action === "release")!;
        const silentStage = release.rule.deadlineAnchor - 1;
        expect(silentStage, "the release's own deadline counts from a stage").to.be.at.least(0);
        let at = openedAt;
        // Everyone pays in, and the parties sign the stages before the anchor's; then its signer goes silent.
        if (terms.deposit > 0n) expect((await twin.deposit(++at, 2, terms.deposit)).reverted).to.equal(false);
        expect((await twin.deposit(++at, 0, terms.loan)).reverted).to.equal(false);
        for (const stage of template.details) {
          if (stage.index >= silentStage) break;
          for (const role of stage.signedBy)
            await twin.signOff(++at, stage.index, ["bank", "lawyer", "buyer", "seller"].indexOf(role));
          await twin.compare(`the sign-offs of ${stage.id}`);
        }
        expect(isCompleted(twin.model, silentStage)).to.equal(false);
        const longStop = openedAt + release.rule.longStopSeconds;
        expect(deadlineOf(twin.model, release.index), "the long-stop is the release's running deadline").to.equal(
          longStop,
        );
        const expireAt = async (t: number) => {
          const outcome = await twin.expire(t);
          await twin.compare(`expire at ${t}`);
          return outcome;
        };
        expect((await expireAt(longStop)).error).to.equal("MortgageEscrowNothingToExpire");
        const expired = await expireAt(longStop + 1);
        expect(expired.reverted).to.equal(false);
        expect(twin.snapshot.value).to.equal("expired");
        expect(twin.eventsOf(expired).map((e) => e.name)).to.include("CaseExpired");
        // Nothing binding has completed: each payer gets back what it paid in.
        for (const [payer, amount] of [
          [parties.buyer, terms.deposit],
          [parties.bank, terms.loan],
        ] as const) {
          expect(await escrow.creditOf(twin.caseId, payer.address)).to.equal(amount);
          if (amount > 0n)
            await expect(escrow.connect(payer).withdraw(twin.caseId)).to.changeEtherBalance(payer, amount);
        }
      });
    }
  });

  describe("cancel votes", function () {
    it("clears, on chain as in the machine, the votes cast before exchange binds the buyer's deposit", async function () {
      const { escrow, parties } = await loadFixture(deployWithTemplates);
      const template = getTemplate("uk-purchase");
      const holders = [parties.bank, parties.lawyer, parties.buyer, parties.seller];
      const openedAt = (await time.latest()) + 10;
      const twin = await Twin.open(escrow, template, holders, parties.relayer, TERMS["uk-purchase"], openedAt);
      twin.header = "uk-purchase: votes before exchange";
      let at = openedAt;
      const exchange = template.stageIndex["exchange"];
      for (const stage of template.details.slice(0, exchange)) {
        for (const role of stage.signedBy)
          await twin.signOff(++at, stage.index, ["bank", "lawyer", "buyer", "seller"].indexOf(role));
      }
      for (const voter of [parties.bank, parties.lawyer, parties.seller])
        expect((await twin.cancel(++at, voter)).reverted).to.equal(false);
      await twin.compare("three votes");
      expect(twin.model.cancelVotes).to.equal(0b1011);
      await twin.signOff(++at, exchange, 1);
      await twin.signOff(++at, exchange, 2);
      const binding = await twin.signOff(++at, exchange, 3);
      const names = twin.eventsOf(binding).map((e) => e.name);
      expect(names).to.include("CancellationVotesCleared");
      await twin.compare("exchange");
      expect(twin.model.cancelVotes).to.equal(0);
      // The buyer's vote no longer completes a cancellation: the others must vote again, knowing it pays the seller.
      expect((await twin.cancel(++at, parties.buyer)).reverted).to.equal(false);
      await twin.compare("the buyer's vote after exchange");
      expect(twin.snapshot.value).to.equal("open");
    });

    it("lets a party holding two roles withdraw both votes, and a stranger or a party with no vote standing withdraw none", async function () {
      const { escrow, parties } = await loadFixture(deployWithTemplates);
      const template = getTemplate("us-purchase");
      const holders = [parties.bank, parties.lawyer, parties.buyer, parties.bank];
      const twin = await Twin.open(
        escrow,
        template,
        holders,
        parties.relayer,
        TERMS["us-purchase"],
        (await time.latest()) + 10,
      );
      twin.header = "us-purchase: the bank also holds the seller's role";
      let at = await time.latest();
      expect((await twin.cancel(++at, parties.bank)).reverted).to.equal(false);
      expect((await twin.cancel(++at, parties.lawyer)).reverted).to.equal(false);
      await twin.compare("votes");
      expect((await twin.withdrawVote(++at, parties.stranger)).error).to.equal("MortgageEscrowNotAParty");
      expect((await twin.withdrawVote(++at, parties.buyer)).error).to.equal("MortgageEscrowNotVoted");
      const withdrawn = await twin.withdrawVote(++at, parties.bank);
      expect(
        twin
          .eventsOf(withdrawn)
          .filter((e) => e.name === "CancellationVoteWithdrawn")
          .map((e) => Number(e.args.role)),
      ).to.deep.equal([0, 3]);
      await twin.compare("the bank's withdrawal");
      expect(twin.model.cancelVotes).to.equal(0b0010);
      expect((await twin.cancel(++at, parties.buyer)).reverted).to.equal(false);
      await twin.compare("the buyer's vote");
      expect(twin.snapshot.value).to.equal("open");
    });
  });

  describe("amendments", function () {
    for (const id of TEMPLATE_IDS) {
      it(`agrees with the contract on ${id}'s proposals, consents (direct and relayed), withdrawals, expiry and supersession`, async function () {
        const { escrow, parties } = await loadFixture(deployWithTemplates);
        const template = getTemplate(id);
        const holders = [parties.bank, parties.lawyer, parties.buyer, parties.seller];
        const openedAt = (await time.latest()) + 10;
        const twin = await Twin.open(escrow, template, holders, parties.relayer, TERMS[id], openedAt);
        twin.spareSigners = (await ethers.getSigners()).slice(10, 16);
        twin.header = `${id}: amendments step by step`;
        let at = openedAt;
        const ok = (outcome: Outcome) => expect(outcome.reverted, twin.failure()).to.equal(false);
        const release = template.details.find((d) => d.action === "release")!;
        const longStop = longStopOf(twin.model, release.index)!;
        const move = (by: number): AmendmentContent => ({
          kind: "deadline",
          stage: release.index,
          longStop: true,
          at: longStop + by,
        });

        // The long-stop a week later, and a competing proposal a week earlier (which needs the buyer too).
        ok(await twin.propose(++at, 0, move(7 * DAY), at + 3 * DAY));
        ok(await twin.propose(++at, 0, move(-7 * DAY), at + 3 * DAY));
        const first = twin.model.amendments![0];
        const others = indexesOf(first.required & ~first.consents);
        expect(others.length, "a deadline move needs someone besides the bank").to.be.greaterThan(0);
        // A consent, withdrawn: the signature made before the withdrawal is void.
        ok(await twin.consent(++at, 1, others[0]));
        ok(await twin.withdrawConsent(++at, 1, others[0]));
        const tricks = [
          await twin.signedConsent(1, others[0], { epoch: 0 }),
          await twin.signedConsent(1, others[0], { forger: parties.stranger }),
          await twin.signedConsent(1, others[0], { caseId: twin.caseId + 1n }),
          await twin.signedConsent(1, others[0], { version: 1 }),
          await twin.signedConsent(1, others[0], { kind: 1 }),
        ];
        const tricked = await twin.relayConsents(++at, tricks, new Set([1, 2, 3, 4]));
        expect(tricked.results).to.deep.equal([
          "StaleEpoch",
          "InvalidSignature",
          "InvalidSignature",
          "InvalidSignature",
          "InvalidSignature",
        ]);
        // Every consent the first needs, relayed in one batch: it applies, and supersedes the second.
        const all = await twin.relayConsents(++at, await Promise.all(others.map((r) => twin.signedConsent(1, r))));
        expect(all.results.every((r) => r === "applied")).to.equal(true);
        expect(twin.model.termsVersion).to.equal(1);
        expect(longStopOf(twin.model, release.index)).to.equal(longStop + 7 * DAY);
        const second = twin.model.amendments![1];
        const stale = await twin.consent(++at, 2, indexesOf(second.required & ~second.consents)[0]);
        expect(stale.error).to.equal("MortgageEscrowConsentRefused");

        // A change of terms that expires before its last consent leaves the case as it was.
        const terms = {
          kind: "terms" as const,
          price: TERMS[id].price,
          deposit: TERMS[id].deposit + 1n,
          loan: TERMS[id].loan,
        };
        ok(await twin.propose(++at, 0, terms, at + 600));
        await twin.waitUntil(at + 700);
        at += 700;
        const late = await twin.consent(++at, 3, 2);
        expect(late.error).to.equal("MortgageEscrowConsentRefused");
        await twin.compare("a consent after the expiry");

        // The stages signed up to the release's prerequisites, the shares paid; then a change of terms applies.
        for (const stage of template.details) {
          if (stage.index >= release.index || stage.signedBy.length === 0 || stage.rule.waitSeconds !== 0) continue;
          if (indexesOf(stage.rule.prerequisites).some((p) => template.stages[p].waitSeconds !== 0)) continue;
          for (const role of stage.signedBy) await twin.signOff(++at, stage.index, ROLE_NAMES.indexOf(role));
        }
        if (TERMS[id].deposit > 0n) ok(await twin.deposit(++at, 2, TERMS[id].deposit));
        ok(await twin.deposit(++at, 0, TERMS[id].loan));
        const before = twin.model.completedAt.map((t) => t !== null);
        ok(await twin.propose(++at, 0, terms, at + DAY));
        for (const r of indexesOf(twin.model.amendments![3].required & ~twin.model.amendments![3].consents))
          ok(await twin.consent(++at, 4, r));
        expect(twin.model.termsVersion).to.equal(2);
        expect(twin.model.funded, "the buyer's share grew: the escrow waits for the difference").to.equal(false);
        const reopened = template.amendmentRules.reopenedByTerms;
        for (const s of indexesOf(reopened))
          if (before[s]) expect(isCompleted(twin.model, s), `stage ${s} re-opened`).to.equal(false);
        ok(await twin.deposit(++at, 2, 1n));
        expect(twin.model.funded).to.equal(true);

        // The seller replaced: the new address takes the role, and signs as it.
        ok(await twin.propose(++at, 3, { kind: "party", party: 3 }, at + DAY));
        for (const r of indexesOf(twin.model.amendments![4].required & ~twin.model.amendments![4].consents))
          ok(await twin.consent(++at, 5, r));
        expect(twin.holders[3].address).to.equal(twin.spareSigners[0].address);
        expect(await escrow.caseOf(twin.caseId).then((c) => c.parties[3])).to.equal(twin.spareSigners[0].address);
        await twin.compare("after the amendments");
      });
    }
  });

  describe("seeded random walks", function () {
    it(`agrees with the contract at every step of ${WALKS} walks of ${WALK_STEPS} steps (seed ${WALK_SEED})`, async function () {
      const tally = new Map<string, number>();
      let transactions = 0;
      let comparisons = 0;
      let reverts = 0;
      for (let walk = 0; walk < WALKS; walk++) {
        const twin = await runWalk(WALK_SEED, walk, tally);
        transactions += twin.transactions;
        comparisons += twin.comparisons;
        reverts += twin.reverts;
      }
      console.log(
        `      ${WALKS} walks: ${transactions} transactions (${reverts} reverted), ${comparisons} comparisons`,
      );
      console.log(
        `      ${[...tally]
          .sort()
          .map(([k, v]) => `${k}: ${v}`)
          .join("; ")}`,
      );
      // The walks must reach what they are for, or they prove little.
      for (const must of [
        "sign succeeded",
        "relay succeeded",
        "revoke succeeded",
        "deposit succeeded",
        "advance succeeded",
        "cancel succeeded",
        "withdraw succeeded",
        "relay item applied",
        "relay item InvalidSignature",
        "relay item RoleNotRequired",
        "relay item AlreadySignedOff",
        "votes cleared by a binding stage",
        "propose succeeded",
        "consent succeeded",
        "amendment applied",
        "withdrawConsent succeeded",
        "consent item applied",
        "consent item InvalidSignature",
        "consent item Superseded",
        "consent item Expired",
      ]) {
        expect(tally.get(must) ?? 0, must).to.be.greaterThan(0);
      }
      for (const must of [
        "sign reverted",
        "revoke reverted",
        "advance reverted",
        "expire reverted",
        "cancel reverted",
        "withdraw reverted",
      ]) {
        expect(
          [...tally.keys()].some((k) => k.startsWith(must)),
          must,
        ).to.equal(true);
      }
      expect(reverts).to.be.greaterThan(0);
    });
  });

  describe("times past early 2106", function () {
    it("refuses a completion that must keep a time past 2^32 - 1, as the machine does, and takes what keeps no time", async function () {
      const { escrow, parties } = await loadFixture(deployWithTemplates);
      // The chain's clock must come back before 2106 for the suites that run after this one.
      const beforeTheTest = await hre.network.provider.send("evm_snapshot", []);
      try {
        await pastTheLastTime(escrow, parties);
      } finally {
        expect(await hre.network.provider.send("evm_revert", [beforeTheTest])).to.equal(true);
      }
      expect(await time.latest()).to.be.below(MAX_TIME - 2 * DAY);
    });
  });
});

/**
 * A case of machine-extras opened two days before 2^32 - 1: the completion that must keep a time past it
 * reverts on chain and is ignored by the machine; a revocation, which keeps no time, goes through.
 */
async function pastTheLastTime(escrow: MortgageEscrow, parties: Awaited<ReturnType<typeof getParties>>): Promise<void> {
  const holders = [parties.bank, parties.lawyer, parties.buyer, parties.seller];
  const openedAt = MAX_TIME - 2 * DAY;
  const twin = await Twin.open(escrow, EXTRAS, holders, parties.relayer, TERMS["machine-extras"], openedAt);
  twin.header = "machine-extras, opened two days before 2^32 - 1";
  const agreement = EXTRAS.stageIndex["agreement"];
  await twin.signOff(MAX_TIME - DAY, agreement, 2);
  // The seller's sign-off would complete the agreement, which starts the cooling-off's waiting time: a time
  // the contract keeps, in 32 bits.
  const late = await twin.signOff(MAX_TIME + 1, agreement, 3);
  expect(late.error).to.equal("MortgageEscrowTimeOverflow");
  await twin.compare("the seller's sign-off past 2^32 - 1");
  expect(twin.model.signedOff[agreement]).to.equal(0b0100);
  // The views read the deadlines past 2106 as the largest time they hold.
  expect(deadlineOf(twin.model, EXTRAS.stageIndex["registration"])).to.be.greaterThan(MAX_TIME);
  expect((await twin.revoke(MAX_TIME + 2, agreement, 2, false)).reverted).to.equal(false);
  await twin.compare("a revocation past 2^32 - 1");
}
