import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import hre from "hardhat";
import { EngineError, createEngine, type Engine, type Submission } from "../../engine";
import { getCalendar } from "../../workflows/calendars";
import { TERMS } from "./projection-helpers";
import {
  BEFORE_CONSUMMATION,
  MANAGED,
  RELAYER,
  approval,
  chainStageStatus,
  newEngine,
  senderOf,
  setUp,
  sleep,
  stageIndex,
  toNextWednesdayMorning,
  waitFor,
  type EngineSetup,
} from "./engine-helpers";

const WAITING_FOR_TIME = 2;
const COMPLETED = 4;

/** Every sign-off before consummation through the engine, at once; resolves when the chain shows them all. */
async function approveBeforeConsummation(engine: Engine, s: EngineSetup): Promise<void> {
  await Promise.all(BEFORE_CONSUMMATION.map(([stage, role]) => engine.approve(approval(s, stage, role))));
  await waitFor(
    "the closing disclosure to complete",
    () => engine.getCase(s.caseId)?.stages[stageIndex(s, "closing-disclosure")].status === "completed",
  );
}

function stageOf(engine: Engine, s: EngineSetup, id: string) {
  return engine.getCase(s.caseId)!.stages[stageIndex(s, id)];
}

describe("engine/createEngine", function () {
  this.timeout(120_000);
  const engines: Engine[] = [];
  afterEach(async function () {
    for (const engine of engines.splice(0)) await engine.stop();
  });
  function started(s: EngineSetup): Promise<Engine> {
    const engine = newEngine(s);
    engines.push(engine);
    return engine.start().then(() => engine);
  }

  describe("config", function () {
    it("refuses a bad value with a message naming it", async function () {
      const s = await setUp();
      expect(() => newEngineWith(s, { escrowAddress: "0x1234" })).to.throw(
        /escrowAddress: must be a 20-byte hex address/,
      );
      expect(() => newEngineWith(s, { relayerKey: "0xabc" })).to.throw(/relayerKey: must be an ethers Wallet/);
      expect(() => newEngineWith(s, { dataDir: undefined })).to.throw(/dataDir: give dataDir or dbFile/);
    });
  });

  describe("a us-purchase case driven only through the engine", function () {
    it("completes it: batched sign-offs, its own advance at the legal moment, and the seller paid without lifting a finger", async function () {
      const s = await setUp();
      await toNextWednesdayMorning();
      const engine = await started(s);
      await approveBeforeConsummation(engine, s);

      // The sign-offs that were ready together went in few transactions, all sent by the relayer.
      const signedOff = await s.d.escrow.queryFilter(s.d.escrow.filters.SignedOff(s.caseId));
      expect(signedOff).to.have.length(BEFORE_CONSUMMATION.length);
      const txs = new Set(signedOff.map((e) => e.transactionHash));
      expect(txs.size).to.be.lessThanOrEqual(2);
      for (const tx of txs) expect(await senderOf(tx)).to.equal(RELAYER.address);

      // The Loan Estimate waiting period: the contract's floor passes before the law's 4 business days.
      const view = engine.projection.viewOf(s.caseId)!;
      const waiting = stageIndex(s, "loan-estimate-waiting-period");
      const contractAt = Date.parse(stageOf(engine, s, "loan-estimate-waiting-period").contractFloor!) / 1000;
      const legal = engine.runtime.guards.of(view.template.templateId)!.legalMomentOf(view.model, waiting) as Date;
      const legalAt = Math.ceil(legal.getTime() / 1000);
      expect(legalAt, "the law's moment is later than the contract's floor").to.be.greaterThan(contractAt + 3600);
      // The runtime's actor holds the projected model.
      expect(engine.runtime.contextOf(s.caseId)!.model).to.deep.equal(view.model);

      await time.increaseTo(contractAt + 60);
      await sleep(1_000);
      expect(await chainStageStatus(s, "loan-estimate-waiting-period"), "advance is possible on chain").to.equal(
        WAITING_FOR_TIME,
      );
      await s.d.escrow.advance.staticCall(s.caseId); // the contract would accept it: the engine holds back for the law
      expect(stageOf(engine, s, "loan-estimate-waiting-period").status).to.equal("waiting");

      // A few seconds before the legal moment, with no block to come: the engine's own timer on the chain clock.
      await time.increaseTo(legalAt - 2);
      await waitFor(
        "the engine's own advance",
        async () => (await chainStageStatus(s, "loan-estimate-waiting-period")) === COMPLETED,
        15_000,
      );
      const [advanced] = await s.d.escrow.queryFilter(s.d.escrow.filters.StageCompleted(s.caseId, waiting));
      const completedAt = (await advanced.getBlock()).timestamp;
      expect(completedAt, "advanced at the legal moment").to.be.within(legalAt, legalAt + 3);
      expect(await senderOf(advanced.transactionHash)).to.equal(RELAYER.address);
      expect(
        engine.relayer.outbox.list().filter((x) => x.idempotencyKey.startsWith(`runtime:advance:${s.caseId}:`)),
      ).to.have.length(1);

      // The rest early where the law allows it, the money from the payers' managed keys.
      await waitFor(
        "the waiting period projected",
        () => stageOf(engine, s, "loan-estimate-waiting-period").status === "completed",
      );
      await engine.approve(approval(s, "funding", "bank"));
      await engine.approve(approval(s, "funding", "lawyer"));
      await engine.approve(approval(s, "recording", "lawyer"));
      engine.deposit({
        caseId: s.caseId,
        role: "buyer",
        principalAddress: MANAGED.buyer.address,
        amount: TERMS.deposit,
      });
      engine.deposit({ caseId: s.caseId, role: "bank", principalAddress: MANAGED.bank.address, amount: TERMS.loan });
      await waitFor("the escrow funded", () => engine.getCase(s.caseId)!.escrow.funded);

      const consummation = engine.projection.viewOf(s.caseId)!;
      const consummationAt = engine.runtime.guards
        .of(consummation.template.templateId)!
        .legalMomentOf(consummation.model, stageIndex(s, "consummation")) as Date;
      await time.increaseTo(Math.ceil(consummationAt.getTime() / 1000));
      await waitFor("the clock seen", () => engine.clock.nowMs() >= consummationAt.getTime());
      const sellerBefore = await ethers.provider.getBalance(MANAGED.seller.address);
      await Promise.all(
        (["buyer", "seller", "lawyer"] as const).map((role) => engine.approve(approval(s, "consummation", role))),
      );

      await waitFor("the case completed", () => engine.getCase(s.caseId)?.status === "completed");
      expect(engine.getCase(s.caseId)!.progress).to.deep.equal({ completed: 12, total: 12 });
      await waitFor(
        "the seller paid",
        async () => (await ethers.provider.getBalance(MANAGED.seller.address)) === sellerBefore + TERMS.price,
      );
      const withdrawn = await s.d.escrow.queryFilter(s.d.escrow.filters.Withdrawn(s.caseId, MANAGED.seller.address));
      expect(withdrawn).to.have.length(1);
      expect(await senderOf(withdrawn[0].transactionHash)).to.equal(RELAYER.address);
      expect(await s.d.escrow.creditOf(s.caseId, MANAGED.seller.address)).to.equal(0n);
      expect(engine.runtime.activeCases()).to.not.include(String(s.caseId));
    });
  });

  describe("approve", function () {
    it("answers a too-early approval of consummation with the exact legal moment, and refuses what the case does not allow", async function () {
      const s = await setUp();
      const engine = await started(s);
      await approveBeforeConsummation(engine, s);

      // The waiting period has not completed: the legal moment is not known yet.
      const early = await engine.approve(approval(s, "consummation", "buyer")).catch((e: unknown) => e);
      expect(early).to.be.instanceOf(EngineError);
      expect((early as EngineError).code).to.equal("TOO_EARLY");
      expect((early as EngineError).details?.availableAt).to.equal(null);

      // Past the waiting period (the engine advances it), consummation waits 3 business days from then.
      const contractAt = Date.parse(stageOf(engine, s, "loan-estimate-waiting-period").contractFloor!) / 1000;
      await time.increaseTo(contractAt + 7 * 86_400);
      await waitFor(
        "the waiting period completed",
        () => stageOf(engine, s, "loan-estimate-waiting-period").status === "completed",
      );
      const unlocked = Math.max(
        ...["closing-disclosure", "loan-estimate-waiting-period"].map(
          (id) => Date.parse(stageOf(engine, s, id).completedAt!) / 1000,
        ),
      );
      const expected = getCalendar("us-federal", "America/New_York").addBusinessDays(new Date(unlocked * 1000), 3);
      const tooEarly = (await engine
        .approve(approval(s, "consummation", "seller"))
        .catch((e: unknown) => e)) as EngineError;
      expect(tooEarly.code).to.equal("TOO_EARLY");
      expect(tooEarly.details?.availableAt).to.equal(expected.toISOString());
      expect(Date.parse(tooEarly.details!.availableAt as string)).to.be.greaterThan(engine.clock.nowMs());

      // The other refusals, each with its code.
      const codeOf = (p: Promise<unknown>) =>
        p.then(
          () => "accepted",
          (e: EngineError) => `${e.code}${e.details?.reason ? `/${e.details.reason}` : ""}`,
        );
      expect(await codeOf(engine.approve({ ...approval(s, "application", "bank"), caseId: 999n }))).to.equal(
        "NOT_FOUND",
      );
      expect(await codeOf(engine.approve(approval(s, "no-such-stage", "bank")))).to.equal("NOT_FOUND");
      expect(await codeOf(engine.approve(approval(s, "title-commitment", "bank")))).to.equal(
        "FORBIDDEN/ROLE_NOT_REQUIRED",
      );
      expect(
        await codeOf(engine.approve({ ...approval(s, "funding", "bank"), principalAddress: MANAGED.buyer.address })),
      ).to.equal("FORBIDDEN/NOT_THE_PARTY");
      expect(await codeOf(engine.approve(approval(s, "application", "bank")))).to.equal("CONFLICT");
      // A signature of someone else's wallet is refused; the party's own is relayed.
      const typed = await engine.typedDataFor(approval(s, "funding", "bank"));
      expect(typed.domain).to.deep.equal({
        name: "MortgageEscrow",
        version: "1",
        chainId: "31337",
        verifyingContract: s.d.address,
      });
      const wrong = await MANAGED.lawyer.signTypedData(typed.domain, typed.types, typed.message);
      expect(await codeOf(engine.approve({ ...approval(s, "funding", "bank"), signature: wrong }))).to.equal(
        "FORBIDDEN/BAD_SIGNATURE",
      );
      const own = await MANAGED.bank.signTypedData(typed.domain, typed.types, typed.message);
      const submission = await engine.approve({ ...approval(s, "funding", "bank"), signature: own });
      expect((submission.payload as { signature: string }).signature).to.equal(own.toLowerCase());
    });
  });

  describe("restart", function () {
    it("fires at restart a timer that fell due while the engine was down (fault 11)", async function () {
      const s = await setUp();
      const first = await started(s);
      await approveBeforeConsummation(first, s);
      const contractAt = Date.parse(stageOf(first, s, "loan-estimate-waiting-period").contractFloor!) / 1000;
      engines.splice(engines.indexOf(first), 1);
      await first.stop();

      await time.increaseTo(contractAt + 7 * 86_400);
      await sleep(300);
      expect(
        await chainStageStatus(s, "loan-estimate-waiting-period"),
        "nobody advanced while the engine was down",
      ).to.equal(WAITING_FOR_TIME);

      const second = await started(s);
      await waitFor(
        "the advance after restart",
        async () => (await chainStageStatus(s, "loan-estimate-waiting-period")) === COMPLETED,
      );
      const completed = await s.d.escrow.queryFilter(
        s.d.escrow.filters.StageCompleted(s.caseId, stageIndex(s, "loan-estimate-waiting-period")),
      );
      expect(completed).to.have.length(1);
      expect(await senderOf(completed[0].transactionHash)).to.equal(RELAYER.address);
      await waitFor("projected", () => stageOf(second, s, "loan-estimate-waiting-period").status === "completed");
      expect(
        second.relayer.outbox.list().filter((x) => x.idempotencyKey.startsWith(`runtime:advance:${s.caseId}:`)),
      ).to.have.length(1);
    });

    it("finishes approvals that were in flight when it stopped, each sign-off exactly once", async function () {
      const s = await setUp();
      const first = await started(s);
      const sentFirst = BEFORE_CONSUMMATION.slice(0, 5);
      const pendingAtStop = BEFORE_CONSUMMATION.slice(5);
      let submitted: Submission[] = [];
      await ethers.provider.send("evm_setAutomine", [false]);
      try {
        submitted = await Promise.all(sentFirst.map(([stage, role]) => first.approve(approval(s, stage, role))));
        await waitFor("the batch sent", () => submitted.every((x) => first.relayer.get(x.id)!.status === "sent"));
        await Promise.all(pendingAtStop.map(([stage, role]) => first.approve(approval(s, stage, role))));
        engines.splice(engines.indexOf(first), 1);
        await first.stop();
        expect(
          await s.d.escrow.queryFilter(s.d.escrow.filters.SignedOff(s.caseId)),
          "nothing mined before the stop",
        ).to.have.length(0);

        const second = await started(s);
        // The same approval again, under its default key, is the same submission, not a second one.
        const again = await second.approve(approval(s, sentFirst[0][0], sentFirst[0][1]));
        expect(again.id).to.equal(submitted[0].id);
        await ethers.provider.send("evm_mine", []);
        await ethers.provider.send("evm_setAutomine", [true]);
        await ethers.provider.send("evm_mine", []);
        await waitFor(
          "every submission settled",
          () =>
            second.relayer.outbox.countUnsettled() === 0 &&
            second.relayer.outbox.list().length === BEFORE_CONSUMMATION.length,
        );
        await waitFor(
          "the closing disclosure completed",
          () => stageOf(second, s, "closing-disclosure").status === "completed",
        );
      } finally {
        await ethers.provider.send("evm_setAutomine", [true]);
      }
      const engine = engines[0];
      expect(engine.relayer.outbox.list().map((x) => x.status)).to.deep.equal(
        BEFORE_CONSUMMATION.map(() => "confirmed"),
      );
      const events = await s.d.escrow.queryFilter(s.d.escrow.filters.SignedOff(s.caseId));
      const seen = events.map((e) => `${e.args.stage}:${e.args.role}`).sort();
      expect(seen).to.deep.equal([...new Set(seen)].sort());
      expect(seen).to.have.length(BEFORE_CONSUMMATION.length);
    });
  });
});

function newEngineWith(s: EngineSetup, override: Record<string, unknown>) {
  return createEngine({
    dataDir: s.dataDir,
    chain: { kind: "in-process", provider: hre.network.provider },
    escrowAddress: s.d.address,
    relayerKey: RELAYER,
    ...override,
  } as Parameters<typeof createEngine>[0]);
}
