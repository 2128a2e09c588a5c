/**
 * Fault 12: random crash points. A seeded loop drives several us-purchase cases through a script of
 * approvals, deposits and time jumps, and at random moments kills the engine mid-flight: every JSON-RPC
 * request it has not finished never answers (a request already handed to the node may still take effect,
 * its answer is lost), its timers stop, its store is left as it is, and a new engine is created on the same
 * data folder. At the end every case's on-chain state and its projection equal those of a reference run of
 * the same script without crashes, from the same chain snapshot, and no sign-off, deposit or stage
 * completion happened twice.
 *
 * `CRASH_SEED=<n>` replays a seed's crash schedule (timing still varies); `CRASH_CASES` sets the cases (3).
 */
import { expect } from "chai";
import { seededRandom } from "../support/seeded-random";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineError, createEngine, type Engine } from "../../engine";
import type { RoleName } from "../../workflows/schema";
import { TERMS, expectMatchesChain, openUsCase, rpc, statusKey } from "./projection-helpers";
import { BEFORE_CONSUMMATION, MANAGED, RELAYER, setUp, waitFor, type EngineSetup } from "./engine-helpers";

const SEED = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CASES = Number(process.env.CRASH_CASES ?? 3);
const CRASH_PROBABILITY = 0.3;

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

type Step =
  | { kind: "approve"; caseId: bigint; stage: string; role: RoleName }
  | { kind: "deposit"; caseId: bigint; role: "buyer" | "bank"; amount: bigint }
  | { kind: "time"; to: (engine: Engine) => number }
  | { kind: "barrier"; what: string; done: (engine: Engine) => boolean };

function stageStatus(engine: Engine, caseId: bigint, stage: string): string | undefined {
  return engine.getCase(caseId)?.stages.find((x) => x.id === stage)?.status;
}

/** When a waiting stage may complete, by the contract's floor and by the law's business days (chain seconds). */
function momentOf(engine: Engine, caseId: bigint, stage: string): number {
  const view = engine.projection.viewOf(caseId)!;
  const index = view.template.stages.findIndex((x) => x.id === stage);
  const moment = engine.runtime.guards.advanceMomentOf(view.template.templateId, view.model, index);
  if (moment === null) throw new Error(`case ${caseId}: the moment of ${stage} is not known yet`);
  return moment + 1;
}

/** The script: the same for both runs; only the order of independent steps comes from the seed. */
function scriptFor(caseIds: bigint[], random: () => number): Step[] {
  const all = (check: (engine: Engine, caseId: bigint) => boolean) => (engine: Engine) =>
    caseIds.every((id) => check(engine, id));
  const approvals = (pairs: Array<[string, RoleName]>) =>
    shuffle(
      caseIds.flatMap((caseId) => pairs.map(([stage, role]): Step => ({ kind: "approve", caseId, stage, role }))),
      random,
    );
  return [
    ...approvals(BEFORE_CONSUMMATION),
    {
      kind: "barrier",
      what: "every closing disclosure completed",
      done: all((e, id) => stageStatus(e, id, "closing-disclosure") === "completed"),
    },
    { kind: "time", to: (e) => Math.max(...caseIds.map((id) => momentOf(e, id, "loan-estimate-waiting-period"))) },
    {
      kind: "barrier",
      what: "every waiting period advanced",
      done: all((e, id) => stageStatus(e, id, "loan-estimate-waiting-period") === "completed"),
    },
    ...shuffle(
      [
        ...approvals([
          ["funding", "bank"],
          ["funding", "lawyer"],
          ["recording", "lawyer"],
        ]),
        ...caseIds.flatMap((caseId): Step[] => [
          { kind: "deposit", caseId, role: "buyer", amount: TERMS.deposit },
          { kind: "deposit", caseId, role: "bank", amount: TERMS.loan },
        ]),
      ],
      random,
    ),
    { kind: "barrier", what: "every escrow funded", done: all((e, id) => e.getCase(id)?.escrow.funded === true) },
    { kind: "time", to: (e) => Math.max(...caseIds.map((id) => momentOf(e, id, "consummation"))) },
    ...approvals([
      ["consummation", "buyer"],
      ["consummation", "seller"],
      ["consummation", "lawyer"],
    ]),
    { kind: "barrier", what: "every case completed", done: all((e, id) => e.getCase(id)?.status === "completed") },
  ];
}

/** The in-process chain through a switch: once killed, no request of this engine is answered any more. */
function killableChain() {
  let dead = false;
  const never = new Promise<never>(() => {});
  const inner = hre.network.provider;
  const provider = {
    async request(args: { method: string; params?: unknown[] | object }): Promise<unknown> {
      if (dead) return never;
      const answer = await inner.request(args as { method: string; params?: unknown[] });
      return dead ? never : answer;
    },
  };
  return { provider, kill: () => void (dead = true) };
}

class Killed extends Error {}

/** One engine at a time on the data folder; `crash()` abandons it mid-flight and starts the next one. */
class Harness {
  engine!: Engine;
  crashes = 0;
  private kill: () => void = () => {};
  private death: { promise: Promise<never>; reject: (e: Error) => void } = deferredDeath();
  private restarting: Promise<void> = Promise.resolve();

  constructor(
    private readonly s: EngineSetup,
    private readonly dataDir: string,
  ) {}

  async open(): Promise<void> {
    const chain = killableChain();
    const engine = createEngine({
      dataDir: this.dataDir,
      chain: { kind: "in-process", provider: chain.provider },
      escrowAddress: this.s.d.address,
      relayerKey: RELAYER,
      partyKeys: Object.values(MANAGED),
      pollIntervalMs: 50,
      deploymentBlock: this.s.d.fromBlock,
      batchWindowMs: 50,
    });
    await engine.start();
    this.kill = chain.kill;
    this.death = deferredDeath();
    this.engine = engine;
  }

  /** Kills the engine where it stands (its stop() is not awaited: its loops hang on the dead chain) and opens a new one. */
  crash(): Promise<void> {
    this.restarting = this.restarting.then(async () => {
      this.crashes += 1;
      this.kill();
      void this.engine.stop();
      this.death.reject(new Killed());
      await this.open();
    });
    return this.restarting;
  }

  /** Runs `work` on the live engine; if the engine is killed first, runs it again on the next one. */
  async run<T>(work: (engine: Engine) => T | Promise<T>): Promise<T> {
    for (;;) {
      await this.restarting;
      try {
        return await Promise.race([Promise.resolve().then(() => work(this.engine)), this.death.promise]);
      } catch (error) {
        if (error instanceof Killed) continue;
        throw error;
      }
    }
  }

  async close(): Promise<void> {
    await this.restarting;
    await this.engine.stop();
  }
}

function deferredDeath() {
  let reject!: (e: Error) => void;
  const promise = new Promise<never>((_, r) => (reject = r));
  promise.catch(() => {});
  return { promise, reject };
}

/** Drives the script; with `random`, schedules a crash before a step with CRASH_PROBABILITY, a few ms into it. */
async function drive(
  s: EngineSetup,
  caseIds: bigint[],
  script: Step[],
  random?: () => number,
): Promise<{ crashes: number; engine: Harness }> {
  const harness = new Harness(s, mkdtempSync(join(tmpdir(), "engine-crash-")));
  await harness.open();
  const crashes: Promise<void>[] = [];
  for (const [n, step] of script.entries()) {
    if (random && random() < CRASH_PROBABILITY) {
      const delay = Math.floor(random() * 120);
      crashes.push(new Promise((resolve) => setTimeout(() => resolve(harness.crash()), delay)));
    }
    switch (step.kind) {
      case "approve":
        await harness.run((engine) =>
          engine
            .approve({
              caseId: step.caseId,
              stageId: step.stage,
              role: step.role,
              principalAddress: MANAGED[step.role].address,
              evidence: ethers.id(`${step.stage} by ${step.role}`),
            })
            .catch((error: unknown) => {
              // Already signed on chain (an earlier engine's try landed): the same approval, done.
              if (error instanceof EngineError && error.code === "CONFLICT") return null;
              throw error;
            }),
        );
        break;
      case "deposit":
        await harness.run((engine) =>
          engine.deposit({
            caseId: step.caseId,
            role: step.role,
            principalAddress: MANAGED[step.role].address,
            amount: step.amount,
            idempotencyKey: `script:${n}:deposit:${step.caseId}:${step.role}`,
          }),
        );
        break;
      case "time": {
        const target = await harness.run((engine) => step.to(engine));
        await time.increaseTo(Math.max(target, (await time.latest()) + 1));
        await harness.run((engine) =>
          waitFor("the engine's clock at the new time", () => engine.clock.nowSeconds() >= target),
        );
        break;
      }
      case "barrier":
        await waitFor(step.what, () => step.done(harness.engine), 60_000);
        break;
    }
  }
  await Promise.all(crashes);
  await waitFor(
    "every seller paid and the outbox settled",
    async () => {
      const e = harness.engine;
      if (e.relayer.outbox.countUnsettled() !== 0) return false;
      for (const id of caseIds) if ((await s.d.escrow.creditOf(id, MANAGED.seller.address)) !== 0n) return false;
      return true;
    },
    60_000,
  );
  await waitFor(
    "the projection at the head",
    async () => harness.engine.projection.log.checkpoint().number === (await ethers.provider.getBlockNumber()),
  );
  return { crashes: harness.crashes, engine: harness };
}

/** What must come out the same, crashes or not: the contract's views and the projection, without timestamps. */
async function outcome(s: EngineSetup, engine: Engine, caseIds: bigint[]) {
  const cases = [];
  for (const id of caseIds) {
    const c = await s.d.escrow.caseOf(id);
    const stages = [];
    for (let i = 0; i < s.d.template.stages.length; i++) {
      const v = await s.d.escrow.stageOf(id, i);
      stages.push({ status: Number(v.status), required: Number(v.requiredRoles), signed: Number(v.signedOffRoles) });
    }
    const p = engine.getCase(id)!;
    cases.push({
      chain: {
        status: Number(c.status),
        funded: c.funded,
        released: c.released,
        paidByBank: c.paidByBank.toString(),
        paidByBuyer: c.paidByBuyer.toString(),
        sellerCredit: (await s.d.escrow.creditOf(id, MANAGED.seller.address)).toString(),
        stages,
      },
      projection: {
        status: p.status,
        progress: p.progress,
        escrow: {
          funded: p.escrow.funded,
          released: p.escrow.released,
          paidByBank: p.escrow.paidByBank,
          paidByBuyer: p.escrow.paidByBuyer,
        },
        stages: p.stages.map((x) => ({ id: x.id, status: statusKey(x), signedOff: x.signedOff })),
      },
    });
  }
  return cases;
}

/** Each (case, stage, role) sign-off, (case, payer) deposit and (case, stage) completion at most once on chain. */
async function expectNothingTwice(s: EngineSetup, caseIds: bigint[]): Promise<void> {
  const e = s.d.escrow;
  for (const id of caseIds) {
    const keys = {
      signOffs: (await e.queryFilter(e.filters.SignedOff(id))).map((x) => `${x.args.stage}:${x.args.role}`),
      deposits: (await e.queryFilter(e.filters.Deposited(id))).map((x) => `${x.args.payer}`),
      completions: (await e.queryFilter(e.filters.StageCompleted(id))).map((x) => `${x.args.stage}`),
      withdrawals: (await e.queryFilter(e.filters.Withdrawn(id))).map((x) => x.args.payee),
    };
    for (const [what, list] of Object.entries(keys)) {
      expect(list, `case ${id}: no ${what} twice`).to.deep.equal([...new Set(list)]);
    }
    expect(keys.signOffs, `case ${id}: every sign-off`).to.have.length(BEFORE_CONSUMMATION.length + 6);
    expect(keys.deposits).to.have.length(2);
  }
}

describe("engine: random crash points (fault 12)", function () {
  this.timeout(180_000);
  afterEach(async function () {
    await rpc("evm_setAutomine", [true]);
  });

  it(`ends every case, on chain and in the projection, as a run without crashes does (seed ${SEED}, ${CASES} cases)`, async function () {
    console.log(`      fault 12: CRASH_SEED=${SEED} CRASH_CASES=${CASES}`);
    const s = await setUp();
    const caseIds = [s.caseId];
    for (let i = 1; i < CASES; i++) caseIds.push(await openUsCase(s.d));
    const start = await rpc<string>("evm_snapshot");

    // The reference: the same script, no crashes.
    const script = scriptFor(caseIds, seededRandom(SEED));
    const reference = await drive(s, caseIds, script);
    const expected = await outcome(s, reference.engine.engine, caseIds);
    for (const id of caseIds) await expectMatchesChain(reference.engine.engine.getCase(id), s.d, id, "reference");
    await expectNothingTwice(s, caseIds);
    await reference.engine.close();
    expect(expected.every((c) => c.projection.status === "completed")).to.equal(true);

    // The same script from the same chain state, with crashes.
    await rpc("evm_revert", [start]);
    const crashing = await drive(s, caseIds, script, seededRandom(SEED ^ 0x5eed));
    console.log(`      fault 12: ${crashing.crashes} crashes`);
    const actual = await outcome(s, crashing.engine.engine, caseIds);
    for (const id of caseIds) await expectMatchesChain(crashing.engine.engine.getCase(id), s.d, id, "after crashes");
    await expectNothingTwice(s, caseIds);
    await crashing.engine.close();
    expect(crashing.crashes, "the seed crashed the engine at least once").to.be.greaterThan(0);
    expect(actual).to.deep.equal(expected);
  });
});
