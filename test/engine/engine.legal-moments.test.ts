/**
 * The law's moments are the API's moments: a us-purchase case whose application comes on Thursday
 * 7 November 2030, 10:00 in New York, the Monday after it Veterans Day, read through the engine's `getCase`
 * on the in-process chain. Each stage's `availableAt` and `deadline` are the legal guard's instants (worked
 * out by hand below), the contract's floor and ceiling sit beside them as `contractFloor`/`contractCeiling`,
 * and the engine's refusals and its own `advance` keep to the same instants.
 *
 * Each test moves the chain to 2030 and back (a snapshot), so the chain's time is left as it was found.
 */
import { expect } from "chai";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineError, type Engine } from "../../engine";
import { deployEscrow, openUsCase } from "./projection-helpers";
import { setBalance } from "./relayer-helpers";
import {
  BEFORE_CONSUMMATION,
  RELAYER,
  approval,
  chainStageStatus,
  newEngine,
  senderOf,
  sleep,
  stageIndex,
  waitFor,
  type EngineSetup,
} from "./engine-helpers";

const COMPLETED = 4;
const WAITING_FOR_TIME = 2;

/** Thursday 7 November 2030, 10:00 EST (UTC-5). */
const APPLICATION_DAY = Date.parse("2030-11-07T15:00:00Z") / 1000;

async function rpc<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
  return (await hre.network.provider.send(method, params)) as T;
}

describe("engine: the law's moments as the case's moments (us-purchase, a Thursday application)", function () {
  this.timeout(120_000);
  let engine: Engine | undefined;
  let snapshot: string;

  beforeEach(async function () {
    snapshot = await rpc<string>("evm_snapshot");
  });
  afterEach(async function () {
    await engine?.stop();
    engine = undefined;
    await rpc("evm_revert", [snapshot]);
  });

  /** A fresh escrow, the chain moved to the application's Thursday, the case opened then, an engine on it. */
  async function caseOnThursday(): Promise<{ s: EngineSetup; engine: Engine }> {
    const d = await deployEscrow();
    await setBalance(RELAYER.address, ethers.parseEther("10"));
    expect(await time.latest(), "the chain is still before the test's Thursday").to.be.below(APPLICATION_DAY - 120);
    await time.increaseTo(APPLICATION_DAY - 60);
    const caseId = await openUsCase(d);
    const s = { d, caseId, dataDir: mkdtempSync(join(tmpdir(), "engine-legal-")) };
    engine = newEngine(s);
    await engine.start();
    return { s, engine };
  }

  function stageOf(e: Engine, s: EngineSetup, id: string) {
    return e.getCase(s.caseId)!.stages[stageIndex(s, id)];
  }

  async function signBeforeConsummation(e: Engine, s: EngineSetup): Promise<void> {
    await Promise.all(BEFORE_CONSUMMATION.map(([stage, role]) => e.approve(approval(s, stage, role))));
    await waitFor("the closing disclosure completed", () => stageOf(e, s, "closing-disclosure").status === "completed");
  }

  it("gives the Loan Estimate TRID's deadline, the end of the 3rd business day, and the long-stop its legal day, with the contract's ceilings beside them", async function () {
    const { s, engine: e } = await caseOnThursday();
    expect(e.getCase(s.caseId)!.timeZone).to.equal("America/New_York");
    // The long-stop alone (no rate lock yet): 90 days from Thu 7 Nov 2030 are 30 Nov (23), 31 Dec (54),
    // 31 Jan (85), 5 Feb (90); the end of 5 Feb is 6 Feb 00:00 EST.
    const funding = stageOf(e, s, "funding");
    expect(funding.deadline).to.equal("2031-02-06T05:00:00.000Z");
    const opened = await s.d.escrow.caseOf(s.caseId);
    expect(funding.contractCeiling).to.equal(
      new Date(
        (Number(opened.openedAt) + s.d.template.stages[stageIndex(s, "funding")].longStopSeconds) * 1000,
      ).toISOString(),
    );

    await e.approve(approval(s, "application", "buyer"));
    await e.approve(approval(s, "application", "bank"));
    await waitFor("the application completed", () => stageOf(e, s, "application").status === "completed");
    const applied = Date.parse(stageOf(e, s, "application").completedAt!) / 1000;
    expect(new Date(applied * 1000).toISOString().slice(0, 10), "applied on the Thursday").to.equal("2030-11-07");

    // Fri 8 (1), Sat 9 (2), Sun 10 no, Mon 11 Veterans Day no, Tue 12 (3): due by the end of Tuesday,
    // Wed 13 Nov 00:00 EST = 05:00 UTC. The contract's ceiling is the longest such span, days later.
    const loanEstimate = stageOf(e, s, "loan-estimate");
    expect(loanEstimate.deadline).to.equal("2030-11-13T05:00:00.000Z");
    const ceiling = applied + s.d.template.stages[stageIndex(s, "loan-estimate")].deadlineSeconds;
    expect(loanEstimate.contractCeiling).to.equal(new Date(ceiling * 1000).toISOString());
    expect(Date.parse(loanEstimate.contractCeiling!)).to.be.greaterThan(Date.parse(loanEstimate.deadline!));
    expect(loanEstimate.acceptsSignOffs, "a stage with no waiting rule accepts sign-offs").to.equal(true);
    expect(loanEstimate.waitsFor).to.equal(null);
    expect(
      e
        .getCase(s.caseId)!
        .stages.every(
          (st) => st.contractFloor === null || st.id === "loan-estimate-waiting-period" || st.id === "consummation",
        ),
    ).to.equal(true);
  });

  it("shows the Loan Estimate waiting period available at the law's moment, waiting until then, and advances at that moment", async function () {
    const { s, engine: e } = await caseOnThursday();
    await signBeforeConsummation(e, s);
    const waiting = stageOf(e, s, "loan-estimate-waiting-period");
    // The Loan Estimate on Thursday: Fri 8 (1), Sat 9 (2), Sun no, Mon 11 Veterans Day no, Tue 12 (3),
    // Wed 13 (4): from Wed 13 Nov 00:00 EST.
    expect(waiting.availableAt).to.equal("2030-11-13T05:00:00.000Z");
    expect(waiting.status).to.equal("waiting");
    expect(waiting.waitingFor).to.equal("time");
    expect(Date.parse(waiting.contractFloor!), "the contract's floor, days sooner").to.be.below(
      Date.parse("2030-11-11T05:00:00Z"),
    );
    expect(waiting.acceptsSignOffs, "no role signs it").to.equal(false);
    expect(waiting.waitsFor).to.match(/^4 business days from Loan Estimate delivered/);
    // Consummation cannot know its moment yet, and says what it waits for.
    const consummation = stageOf(e, s, "consummation");
    expect(consummation.availableAt).to.equal(null);
    expect(consummation.acceptsSignOffs).to.equal(false);
    expect(consummation.waitsFor).to.equal(
      "Seven business days since the Loan Estimate, less the three that consummation waits, then 3 business days",
    );
    // The rate lock's 60 days run now and end sooner than the long-stop: Nov 30 (23), Dec 31 (54), Jan 6 (60).
    expect(stageOf(e, s, "funding").deadline).to.equal("2031-01-07T05:00:00.000Z");

    // Past the contract's floor the stage still reads waiting, and the engine holds back.
    await time.increaseTo(Date.parse(waiting.contractFloor!) / 1000 + 60);
    await sleep(1_000);
    expect(await chainStageStatus(s, "loan-estimate-waiting-period"), "the contract would let it complete").to.equal(
      WAITING_FOR_TIME,
    );
    expect(stageOf(e, s, "loan-estimate-waiting-period").status).to.equal("waiting");
    expect(stageOf(e, s, "loan-estimate-waiting-period").availableAt).to.equal("2030-11-13T05:00:00.000Z");

    const legalAt = Date.parse(waiting.availableAt!) / 1000;
    await time.increaseTo(legalAt - 2);
    await waitFor(
      "the engine's own advance",
      async () => (await chainStageStatus(s, "loan-estimate-waiting-period")) === COMPLETED,
      15_000,
    );
    const [advanced] = await s.d.escrow.queryFilter(
      s.d.escrow.filters.StageCompleted(s.caseId, stageIndex(s, "loan-estimate-waiting-period")),
    );
    expect((await advanced.getBlock()).timestamp, "at the legal moment, not before").to.be.within(legalAt, legalAt + 3);
    expect(await senderOf(advanced.transactionHash)).to.equal(RELAYER.address);
  });

  it("shows consummation available at the instant the lawyer's sign-off is first accepted, and the refusal before it says what it waits for", async function () {
    const { s, engine: e } = await caseOnThursday();
    await signBeforeConsummation(e, s);
    await time.increaseTo(Date.parse("2030-11-13T05:00:00Z") / 1000 - 2);
    await waitFor(
      "the waiting period projected",
      () => stageOf(e, s, "loan-estimate-waiting-period").status === "completed",
      15_000,
    );

    // From Wed 13 Nov: Thu 14 (1), Fri 15 (2), Sat 16 (3, TRID counts Saturdays): Sat 16 Nov 00:00 EST.
    const consummation = stageOf(e, s, "consummation");
    expect(consummation.availableAt).to.equal("2030-11-16T05:00:00.000Z");
    expect(consummation.status).to.equal("waiting");
    expect(consummation.waitingFor).to.equal("time");
    expect(consummation.acceptsSignOffs).to.equal(false);
    expect(Date.parse(consummation.contractFloor!)).to.be.below(Date.parse(consummation.availableAt!));
    expect(consummation.waitsFor).to.match(/^3 business days from Seven business days since the Loan Estimate/);

    const availableAt = Date.parse(consummation.availableAt!) / 1000;
    await time.increaseTo(availableAt - 5);
    await waitFor("the engine saw the block", () => e.clock.nowSeconds() >= availableAt - 5);
    const early = await e.approve(approval(s, "consummation", "lawyer")).catch((error: unknown) => error);
    expect(early).to.be.instanceOf(EngineError);
    expect((early as EngineError).code).to.equal("TOO_EARLY");
    expect((early as EngineError).details).to.deep.include({
      availableAt: consummation.availableAt,
      waitsFor: stageOf(e, s, "consummation").waitsFor,
    });

    // No chain event marks the moment: the engine publishes the progress again then, for the event stream.
    const published: Array<{ acceptsSignOffs: boolean; status: string }> = [];
    const unsubscribe = e.subscribe((notice) => {
      const st = notice.progress?.stages[stageIndex(s, "consummation")];
      if (notice.caseId === String(s.caseId) && st)
        published.push({ acceptsSignOffs: st.acceptsSignOffs, status: st.status });
    });
    // No block comes: the chain's clock runs on, and the engine's own timer publishes at the moment.
    await waitFor(
      "the progress published at the moment",
      () => published.some((p) => p.acceptsSignOffs && p.status === "open"),
      15_000,
    );
    unsubscribe();
    expect(e.clock.nowMs(), "not before the moment").to.be.at.least(availableAt * 1000);
    expect(
      published.filter((p) => p.acceptsSignOffs),
      "one publish at the moment",
    ).to.have.length(1);
    expect(stageOf(e, s, "consummation").acceptsSignOffs).to.equal(true);
    expect(stageOf(e, s, "consummation").status).to.equal("open");
    expect(stageOf(e, s, "consummation").waitsFor).to.equal(null);
    const accepted = await e.approve(approval(s, "consummation", "lawyer"));
    expect(accepted.status).to.not.equal("failed");
  });
});
