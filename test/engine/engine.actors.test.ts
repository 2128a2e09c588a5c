/**
 * The runtime's durable actors (engine/runtime/runtime.ts): one XState actor per open case, fed the case's
 * transactions, its parties' approvals and the chain clock, persisted after each change and restored at a
 * restart, where a snapshot is used only if the running machine wrote it and its model is the chain's.
 */
import { expect } from "chai";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import Database from "better-sqlite3";
import { join } from "node:path";
import type { Engine } from "../../engine";
import { getTemplate } from "../../workflows";
import { createLegalGuard } from "../../workflows/legal-guard";
import {
  BEFORE_CONSUMMATION,
  MANAGED,
  approval,
  chainStageStatus,
  newEngine,
  setUp,
  sleep,
  waitFor,
  type EngineSetup,
} from "./engine-helpers";

const WAITING_FOR_TIME = 2;
const COMPLETED = 4;

describe("engine: the durable case actors", function () {
  this.timeout(120_000);
  const engines: Engine[] = [];
  afterEach(async function () {
    for (const engine of engines.splice(0)) await engine.stop();
  });
  async function started(s: EngineSetup): Promise<Engine> {
    const engine = newEngine(s);
    engines.push(engine);
    await engine.start();
    return engine;
  }
  async function stopped(engine: Engine): Promise<void> {
    engines.splice(engines.indexOf(engine), 1);
    await engine.stop();
  }
  /** The snapshot rows the runtime persisted, read from the SQLite file itself. */
  function snapshotRows(s: EngineSetup): Array<{ case_id: string; machine_version: string; snapshot: string }> {
    const db = new Database(join(s.dataDir, "engine.sqlite"), { readonly: true });
    try {
      return db.prepare("SELECT case_id, machine_version, snapshot FROM runtime_case_snapshots").all() as never;
    } finally {
      db.close();
    }
  }
  function rewriteSnapshot(s: EngineSetup, caseId: bigint, set: { machine_version?: string; snapshot?: string }): void {
    const db = new Database(join(s.dataDir, "engine.sqlite"));
    try {
      for (const [column, value] of Object.entries(set)) {
        db.prepare(`UPDATE runtime_case_snapshots SET ${column} = ? WHERE case_id = ?`).run(value, String(caseId));
      }
    } finally {
      db.close();
    }
  }
  async function signedUpToTheWait(engine: Engine, s: EngineSetup): Promise<number> {
    await Promise.all(BEFORE_CONSUMMATION.slice(0, 3).map(([stage, role]) => engine.approve(approval(s, stage, role))));
    const waiting = engine.getCase(s.caseId)!.stages.find((x) => x.id === "loan-estimate-waiting-period")!;
    await waitFor(
      "the loan estimate's wait started",
      () => engine.getCase(s.caseId)!.stages.find((x) => x.id === "loan-estimate-waiting-period")!.availableAt,
    );
    return Date.parse(engine.getCase(s.caseId)!.stages.find((x) => x.id === waiting.id)!.availableAt!) / 1000;
  }

  it("feeds one actor the case's transactions from its opening: never rebuilt, and its model is the projection's after each block", async function () {
    const s = await setUp();
    const engine = await started(s);
    // The case was opened before the engine started: its actor is rebuilt from the projection once.
    expect(engine.runtime.stats()).to.deep.include({ actors: 1, restored: 0, rebuilt: 1, resynced: 0 });
    await Promise.all(BEFORE_CONSUMMATION.map(([stage, role]) => engine.approve(approval(s, stage, role))));
    await waitFor(
      "the closing disclosure completed",
      () => engine.getCase(s.caseId)!.stages.find((x) => x.id === "closing-disclosure")!.status === "completed",
    );
    expect(engine.runtime.contextOf(s.caseId)!.model).to.deep.equal(engine.projection.viewOf(s.caseId)!.model);
    // Every block was fed as the machine's events, none taken from the projection instead.
    expect(engine.runtime.stats()).to.deep.include({ actors: 1, restored: 0, rebuilt: 1, resynced: 0 });
    const row = snapshotRows(s).find((r) => r.case_id === String(s.caseId))!;
    expect(JSON.parse(row.snapshot).context.model.signedOff).to.deep.equal(
      engine.projection.viewOf(s.caseId)!.model.signedOff,
    );
  });

  it("restores each open case's actor from its snapshot at a restart, its clock where it stood", async function () {
    const s = await setUp();
    const first = await started(s);
    await signedUpToTheWait(first, s);
    const before = first.runtime.contextOf(s.caseId)!;
    await stopped(first);

    const second = await started(s);
    expect(second.runtime.stats()).to.deep.include({ actors: 1, restored: 1, rebuilt: 0, resynced: 0 });
    expect(second.runtime.contextOf(s.caseId)!.model).to.deep.equal(before.model);
  });

  it("fires a timer of a restored actor at its moment: XState does not restore delays, the chain clock re-arms them", async function () {
    const s = await setUp();
    const first = await started(s);
    const availableAt = await signedUpToTheWait(first, s);
    await stopped(first);

    const second = await started(s);
    expect(second.runtime.stats().restored).to.equal(1);
    await time.increaseTo(availableAt + 1);
    await waitFor(
      "the loan estimate's wait advanced",
      async () => (await chainStageStatus(s, "loan-estimate-waiting-period")) === COMPLETED,
    );
    expect(
      second.relayer.outbox.list().filter((x) => x.idempotencyKey === `runtime:advance:${s.caseId}:${availableAt}`),
    ).to.have.length(1);
  });

  for (const [what, damage] of [
    ["was written by another version of the machine", { machine_version: "an-older-machine" }],
    ["is not JSON", { snapshot: "{ this is not json" }],
    ["holds a model that is not the chain's", { snapshot: "model" }],
  ] as const) {
    it(`rebuilds from the chain an actor whose snapshot ${what}, never trusting it; its timers still fire`, async function () {
      const s = await setUp();
      const first = await started(s);
      const availableAt = await signedUpToTheWait(first, s);
      const stored = snapshotRows(s).find((r) => r.case_id === String(s.caseId))!;
      await stopped(first);
      if ("snapshot" in damage && damage.snapshot === "model") {
        const snapshot = JSON.parse(stored.snapshot);
        snapshot.context.model.signedOff = snapshot.context.model.signedOff.map(() => 0);
        rewriteSnapshot(s, s.caseId, { snapshot: JSON.stringify(snapshot) });
      } else {
        rewriteSnapshot(s, s.caseId, damage);
      }

      const second = await started(s);
      expect(second.runtime.stats()).to.deep.include({ actors: 1, restored: 0, rebuilt: 1, resynced: 0 });
      expect(second.runtime.contextOf(s.caseId)!.model).to.deep.equal(second.projection.viewOf(s.caseId)!.model);
      expect(await chainStageStatus(s, "loan-estimate-waiting-period")).to.equal(WAITING_FOR_TIME);
      await time.increaseTo(availableAt + 1);
      await waitFor(
        "the loan estimate's wait advanced",
        async () => (await chainStageStatus(s, "loan-estimate-waiting-period")) === COMPLETED,
      );
      // The rebuilt actor's snapshot is the running machine's again.
      await sleep(50);
      const row = snapshotRows(s).find((r) => r.case_id === String(s.caseId))!;
      expect(row.machine_version).to.not.equal("an-older-machine");
      expect(() => JSON.parse(row.snapshot)).to.not.throw();
    });
  }

  it("fires what a dev clock moved forward made due on the one scheduler, with no actor rebuilt", async function () {
    const s = await setUp();
    const engine = await started(s);
    const availableAt = await signedUpToTheWait(engine, s);
    const { restored, rebuilt, resynced } = engine.runtime.stats();
    await engine.increaseTime(availableAt - (await time.latest()) + 1);
    await waitFor(
      "the loan estimate's wait advanced",
      async () => (await chainStageStatus(s, "loan-estimate-waiting-period")) === COMPLETED,
    );
    expect(engine.runtime.stats()).to.deep.include({ restored, rebuilt, resynced, actors: 1 });
  });

  it("restores an actor whose model holds amendments (an applied deadline move, an open change of terms), and rebuilds one whose consents were tampered with", async function () {
    const s = await setUp();
    const caseId = String(s.caseId);
    const first = await started(s);
    const settle = async (engine: Engine, submission: { id: number }) =>
      waitFor(`submission ${submission.id} confirmed`, () => engine.submission(submission.id)?.status === "confirmed");
    // The funding deadline (60 days from the rate lock, not locked yet) moves to a date before the long-stop.
    const longStop = first.getCase(caseId)!.stages.find((x) => x.id === "funding")!.deadline!;
    const date = new Date(Date.parse(longStop) - 10 * 86_400_000).toISOString().slice(0, 10);
    const proposal = {
      caseId,
      role: "bank" as const,
      principalAddress: MANAGED.bank.address,
      change: { kind: "deadline" as const, stage: "funding", to: date },
    };
    await settle(first, first.proposeAmendment(proposal));
    await waitFor("the proposal", () => first.getCase(caseId)!.amendments.length === 1);
    for (const role of ["buyer", "seller"] as const)
      await settle(
        first,
        await first.consentToAmendment({ caseId, amendment: 1, role, principalAddress: MANAGED[role].address }),
      );
    await waitFor("the deadline moved", () => first.getCase(caseId)!.termsVersion === 1);
    const terms = {
      kind: "terms" as const,
      price: "850000000000000000",
      deposit: "50000000000000000",
      loan: "800000000000000000",
    };
    await settle(first, first.proposeAmendment({ ...proposal, change: terms }));
    await settle(
      first,
      await first.consentToAmendment({ caseId, amendment: 2, role: "buyer", principalAddress: MANAGED.buyer.address }),
    );
    await waitFor("the buyer's consent", () => first.getCase(caseId)!.amendments[1]?.consented.includes("buyer"));
    const json = (x: unknown) => JSON.parse(JSON.stringify(x));
    expect(json(first.runtime.contextOf(caseId)!.model)).to.deep.equal(json(first.projection.viewOf(caseId)!.model));
    expect(first.runtime.stats().resynced, "the actor worked the amendments out as the chain did").to.equal(0);
    expect(first.getCase(caseId)!.stages.find((x) => x.id === "funding")!.deadline).to.equal(
      createLegalGuard(getTemplate("us-purchase")).endOfLocalDate(date).toISOString(),
    );
    await sleep(50);
    await stopped(first);

    const second = await started(s);
    expect(second.runtime.stats()).to.deep.include({ actors: 1, restored: 1, rebuilt: 0, resynced: 0 });
    for (const role of ["lawyer", "seller"] as const)
      await settle(
        second,
        await second.consentToAmendment({ caseId, amendment: 2, role, principalAddress: MANAGED[role].address }),
      );
    await waitFor("the new terms", () => second.getCase(caseId)!.termsVersion === 2);
    expect(second.getCase(caseId)!.terms.price).to.equal(terms.price);
    expect(second.runtime.stats().resynced).to.equal(0);
    await sleep(50);
    await stopped(second);

    const stored = JSON.parse(snapshotRows(s).find((r) => r.case_id === caseId)!.snapshot);
    stored.context.model.amendments[1].consents = 0;
    rewriteSnapshot(s, s.caseId, { snapshot: JSON.stringify(stored) });
    const third = await started(s);
    expect(third.runtime.stats()).to.deep.include({ actors: 1, restored: 0, rebuilt: 1, resynced: 0 });
    expect(json(third.runtime.contextOf(caseId)!.model)).to.deep.equal(json(third.projection.viewOf(caseId)!.model));
  });

  it("stops a finished case's actor and deletes its snapshot", async function () {
    const s = await setUp();
    const engine = await started(s);
    await sleep(50);
    expect(snapshotRows(s).map((r) => r.case_id)).to.include(String(s.caseId));
    for (const role of ["bank", "lawyer", "buyer", "seller"] as const) {
      await engine.cancel({ caseId: s.caseId, principalAddress: MANAGED[role].address });
    }
    await waitFor("the case cancelled", () => engine.getCase(s.caseId)!.status === "cancelled");
    await waitFor("the actor stopped", () => !engine.runtime.activeCases().includes(String(s.caseId)));
    await sleep(50);
    expect(snapshotRows(s).map((r) => r.case_id)).to.not.include(String(s.caseId));
  });
});
