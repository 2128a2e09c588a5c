/**
 * The runtime's paths that the whole-case test does not walk, end to end through the engine on the
 * in-process chain: its own `expire` when a deadline passes unmet, an `advance` that comes too early and is
 * tried again, and the parties' revoke, cancel (every party's vote) and withdraw.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { EngineError, type Engine } from "../../engine";
import type { RoleName } from "../../workflows/schema";
import { getTemplate } from "../../workflows";
import { registerTemplate } from "../contracts/fixtures";
import { TERMS } from "./projection-helpers";
import {
  MANAGED,
  RELAYER,
  approval,
  chainStageStatus,
  newEngine,
  senderOf,
  setUp,
  sleep,
  stageIndex,
  waitFor,
  type EngineSetup,
} from "./engine-helpers";

const ROLES: RoleName[] = ["bank", "lawyer", "buyer", "seller"];
const COMPLETED = 4;
const EXPIRED = 6;

function settledOk(engine: Engine, id: number): boolean {
  const s = engine.submission(id);
  if (s?.status === "failed") throw new Error(`submission ${id} failed: ${JSON.stringify(s.error)}`);
  return s?.status === "confirmed";
}

async function refusalOf(promise: Promise<unknown>): Promise<EngineError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, "refused").to.be.instanceOf(EngineError);
  return error as EngineError;
}

/** Both payers' shares in, through the engine, from their managed keys. */
function fund(engine: Engine, s: EngineSetup): Promise<void> {
  return fundCase(engine, String(s.caseId));
}

const UK = getTemplate("uk-purchase");

/** uk-purchase registered on the setup's escrow, and a case of it opened through the engine by the bank. */
async function openUkCase(engine: Engine, s: EngineSetup): Promise<string> {
  await registerTemplate(s.d.escrow, s.d.parties.admin, UK.stages, UK.definitionHash, UK.amendmentRules);
  const opened = await engine.openCase({
    principalAddress: MANAGED.bank.address,
    workflow: "uk-purchase",
    parties: {
      bank: MANAGED.bank.address,
      lawyer: MANAGED.lawyer.address,
      buyer: MANAGED.buyer.address,
      seller: MANAGED.seller.address,
    },
    terms: { price: TERMS.price.toString(), deposit: TERMS.deposit.toString(), loan: TERMS.loan.toString() },
  });
  return opened.id;
}

/** Every sign-off of the uk-purchase stages named, through the engine, at once (none of them has a legal wait). */
async function signUk(engine: Engine, caseId: string, stages: string[]): Promise<void> {
  const submissions = await Promise.all(
    UK.details
      .filter((d) => stages.includes(d.id))
      .flatMap((d) =>
        d.signedBy.map((role) =>
          engine.approve({ caseId, stageId: d.id, role, principalAddress: MANAGED[role].address }),
        ),
      ),
  );
  await waitFor("the sign-offs confirmed", () => submissions.every((x) => settledOk(engine, x.id)));
}

async function fundCase(engine: Engine, caseId: string): Promise<void> {
  const buyer = engine.deposit({
    caseId,
    role: "buyer",
    principalAddress: MANAGED.buyer.address,
    amount: TERMS.deposit,
  });
  const bank = engine.deposit({ caseId, role: "bank", principalAddress: MANAGED.bank.address, amount: TERMS.loan });
  await waitFor("both deposits", () => settledOk(engine, buyer.id) && settledOk(engine, bank.id));
  await waitFor("the escrow funded", () => engine.getCase(caseId)!.escrow.funded);
}

describe("engine: the runtime's other paths", function () {
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

  describe("expire", function () {
    it("expires the case by itself the second a deadline passes unmet, with no block to wake it, and credits each payer back", async function () {
      const s = await setUp();
      const engine = await started(s);
      await fund(engine, s);
      await engine.approve(approval(s, "application", "buyer"));
      await engine.approve(approval(s, "application", "bank"));
      const loanEstimate = () => engine.getCase(s.caseId)!.stages[stageIndex(s, "loan-estimate")];
      await waitFor(
        "the loan estimate open, its deadline set",
        () => loanEstimate().status === "open" && loanEstimate().contractCeiling !== null,
      );
      const deadline = Date.parse(loanEstimate().contractCeiling!) / 1000;

      // A few seconds before the deadline; no block comes after this one unless the engine sends one.
      await time.increaseTo(deadline - 2);
      await sleep(500);
      expect(engine.getCase(s.caseId)!.status, "not yet").to.equal("open");
      await waitFor("the engine's own expire", () => engine.getCase(s.caseId)!.status === "expired", 15_000);

      const [expired] = await s.d.escrow.queryFilter(s.d.escrow.filters.CaseExpired(s.caseId));
      expect(Number(expired.args.stage)).to.equal(stageIndex(s, "loan-estimate"));
      expect((await expired.getBlock()).timestamp, "just past the deadline").to.be.within(deadline + 1, deadline + 4);
      expect(await senderOf(expired.transactionHash)).to.equal(RELAYER.address);
      expect(await chainStageStatus(s, "loan-estimate")).to.equal(EXPIRED);
      const progress = engine.getCase(s.caseId)!;
      expect(progress.stages[stageIndex(s, "loan-estimate")].status).to.equal("expired");
      expect(progress.escrow.credits[MANAGED.buyer.address]).to.equal(TERMS.deposit.toString());
      expect(progress.escrow.credits[MANAGED.bank.address]).to.equal(TERMS.loan.toString());
      expect(engine.runtime.activeCases(), "no actor for a finished case").to.not.include(String(s.caseId));
      await waitFor("the expire confirmed", () =>
        engine.relayer.outbox
          .list()
          .some((x) => x.idempotencyKey.startsWith(`runtime:expire:${s.caseId}:`) && x.status === "confirmed"),
      );
      const expires = engine.relayer.outbox
        .list()
        .filter((x) => x.idempotencyKey.startsWith(`runtime:expire:${s.caseId}:`));
      expect(
        expires.map((x) => x.status),
        "one expire, sent once",
      ).to.deep.equal(["confirmed"]);
    });

    it("expires at once when the dev clock is moved past the deadline (increaseTime), and each payer withdraws its credit", async function () {
      const s = await setUp();
      const engine = await started(s);
      await fund(engine, s);
      await engine.approve(approval(s, "application", "buyer"));
      await engine.approve(approval(s, "application", "bank"));
      await waitFor(
        "the application completed",
        () => engine.getCase(s.caseId)!.stages[stageIndex(s, "application")].status === "completed",
      );

      await engine.increaseTime(30 * 86_400);
      await waitFor("expired", () => engine.getCase(s.caseId)!.status === "expired", 5_000);

      const buyerBefore = await ethers.provider.getBalance(MANAGED.buyer.address);
      const withdrawal = engine.withdraw({ caseId: s.caseId, principalAddress: MANAGED.buyer.address });
      await waitFor("the buyer's withdrawal", () => settledOk(engine, withdrawal.id));
      const receipt = await ethers.provider.getTransactionReceipt(engine.submission(withdrawal.id)!.txHash!);
      const gas = receipt!.gasUsed * receipt!.gasPrice;
      expect(await ethers.provider.getBalance(MANAGED.buyer.address)).to.equal(buyerBefore + TERMS.deposit - gas);
      await waitFor(
        "the credit gone",
        () =>
          !engine.getCase(s.caseId)!.escrow.credits[MANAGED.buyer.address] ||
          engine.getCase(s.caseId)!.escrow.credits[MANAGED.buyer.address] === "0",
      );
      expect(
        (
          await refusalOf(
            Promise.resolve().then(() =>
              engine.withdraw({ caseId: s.caseId, principalAddress: MANAGED.buyer.address }),
            ),
          )
        ).code,
      ).to.equal("CONFLICT");
      expect(await s.d.escrow.creditOf(s.caseId, MANAGED.bank.address)).to.equal(TERMS.loan);
    });
  });

  describe("advance too early", function () {
    it("tries a refused advance again until the chain's time has come, then the stage completes", async function () {
      const s = await setUp();
      const engine = await started(s);
      for (const [stage, role] of [
        ["application", "buyer"],
        ["application", "bank"],
        ["loan-estimate", "bank"],
      ] as const)
        await engine.approve(approval(s, stage, role));
      const waiting = stageIndex(s, "loan-estimate-waiting-period");
      await waitFor(
        "the waiting period waiting for time",
        () => engine.getCase(s.caseId)!.stages[waiting].waitingFor === "time",
      );
      const view = engine.projection.viewOf(s.caseId)!;
      const contractAt = Date.parse(engine.getCase(s.caseId)!.stages[waiting].contractFloor!) / 1000;
      const legalAt = engine.runtime.guards.advanceMomentOf(view.template.templateId, view.model, waiting)!;

      // The chain 4 s short of the contract's moment; the engine's clock (as if it had misread the chain)
      // past the law's, so it sends advance: the contract refuses it until its own moment comes.
      await time.increaseTo(contractAt - 4);
      await waitFor("the engine saw the block", () => Math.abs(engine.clock.nowSeconds() - (contractAt - 4)) <= 1);
      engine.clock.observeBlock(1_000_000, legalAt + 2);
      engine.runtime.clockObserved();

      await waitFor(
        "the stage completed on chain",
        async () => (await chainStageStatus(s, "loan-estimate-waiting-period")) === COMPLETED,
        20_000,
      );
      await waitFor("the last advance confirmed", () =>
        engine.relayer.outbox
          .list()
          .some((x) => x.idempotencyKey.startsWith(`runtime:advance:${s.caseId}:`) && x.status === "confirmed"),
      );
      const advances = engine.relayer.outbox
        .list()
        .filter((x) => x.idempotencyKey.startsWith(`runtime:advance:${s.caseId}:`));
      expect(advances[0].status, "the first try was refused").to.equal("failed");
      expect(advances[0].error?.details?.error).to.equal("MortgageEscrowNothingToAdvance");
      expect(advances.length, "tried again").to.be.greaterThan(1);
      expect(advances.at(-1)!.status).to.equal("confirmed");
      expect(advances.slice(1).every((a) => a.idempotencyKey.startsWith(advances[0].idempotencyKey + "#"))).to.equal(
        true,
      );
      const [completed] = await s.d.escrow.queryFilter(s.d.escrow.filters.StageCompleted(s.caseId, waiting));
      expect((await completed.getBlock()).timestamp).to.be.at.least(contractAt);
    });
    it("keeps trying while the chain lags more than a few seconds behind (a chain whose blocks come every 12 s), rather than giving up for good", async function () {
      const s = await setUp();
      const engine = await started(s);
      for (const [stage, role] of [
        ["application", "buyer"],
        ["application", "bank"],
        ["loan-estimate", "bank"],
      ] as const)
        await engine.approve(approval(s, stage, role));
      const waiting = stageIndex(s, "loan-estimate-waiting-period");
      await waitFor(
        "the waiting period waiting for time",
        () => engine.getCase(s.caseId)!.stages[waiting].waitingFor === "time",
      );
      const view = engine.projection.viewOf(s.caseId)!;
      const contractAt = Date.parse(engine.getCase(s.caseId)!.stages[waiting].contractFloor!) / 1000;
      const legalAt = engine.runtime.guards.advanceMomentOf(view.template.templateId, view.model, waiting)!;

      await time.increaseTo(contractAt - 13);
      await waitFor("the engine saw the block", () => Math.abs(engine.clock.nowSeconds() - (contractAt - 13)) <= 1);
      engine.clock.observeBlock(1_000_000, legalAt + 2);
      engine.runtime.clockObserved();

      await waitFor(
        "the stage completed on chain",
        async () => (await chainStageStatus(s, "loan-estimate-waiting-period")) === COMPLETED,
        45_000,
      );
      const advances = engine.relayer.outbox
        .list()
        .filter((x) => x.idempotencyKey.startsWith(`runtime:advance:${s.caseId}:`));
      expect(advances.filter((a) => a.status === "failed").length, "refused while the chain lagged").to.be.greaterThan(
        1,
      );
    });
  });

  describe("a start on an idle chain", function () {
    it("reads the chain's clock as it is now, not as the last block (long ago) had it: a deadline that passed meanwhile expires at once", async function () {
      const s = await setUp();
      const first = await started(s);
      await first.approve(approval(s, "application", "buyer"));
      await first.approve(approval(s, "application", "bank"));
      const loanEstimate = () => first.getCase(s.caseId)!.stages[stageIndex(s, "loan-estimate")];
      await waitFor(
        "the loan estimate's deadline set",
        () => loanEstimate().status === "open" && loanEstimate().contractCeiling !== null,
      );
      const deadline = Date.parse(loanEstimate().contractCeiling!) / 1000;
      await first.stop();
      engines.splice(0);

      // The last block 3 s before the deadline; then 5 s pass with no block at all.
      await time.increaseTo(deadline - 3);
      await sleep(5_000);
      const pending = await ethers.provider.send("eth_getBlockByNumber", ["pending", false]);
      const engine = await started(s);
      expect(engine.clock.nowSeconds(), "the chain's clock now, not the last block's").to.be.at.least(
        Number(pending.timestamp),
      );
      expect(
        engine.getCase(s.caseId)!.stages[stageIndex(s, "loan-estimate")].status,
        "shown as missed already",
      ).to.equal("overdue");
      const startedAt = Date.now();
      await waitFor("expired", () => engine.getCase(s.caseId)!.status === "expired", 5_000);
      expect(Date.now() - startedAt, "at once").to.be.below(1_500);
    });
  });

  describe("revoke", function () {
    it("revokes a sign-off from the managed key and with the party's own signature; the old signature is void, a new one signs again", async function () {
      const s = await setUp();
      const engine = await started(s);
      const application = stageIndex(s, "application");
      const signedOff = () => engine.getCase(s.caseId)!.stages[application].signedOff;

      const first = await engine.approve(approval(s, "application", "buyer"));
      await waitFor("signed", () => settledOk(engine, first.id));
      await waitFor("projected", () => signedOff().includes("buyer"));
      const revoked = await engine.revoke({
        caseId: s.caseId,
        stageId: "application",
        role: "buyer",
        principalAddress: MANAGED.buyer.address,
      });
      await waitFor("revoked", () => settledOk(engine, revoked.id));
      expect(await senderOf(engine.submission(revoked.id)!.txHash!), "from the buyer's managed key").to.equal(
        MANAGED.buyer.address,
      );
      await waitFor("the revocation projected", () => !signedOff().includes("buyer"));
      expect(await s.d.escrow.signOffEpoch(s.caseId, application, 2)).to.equal(1n);
      expect(
        (
          await refusalOf(
            engine.revoke({
              caseId: s.caseId,
              stageId: "application",
              role: "buyer",
              principalAddress: MANAGED.buyer.address,
            }),
          )
        ).code,
      ).to.equal("CONFLICT");

      // The first signature is void; the engine signs anew under the new epoch.
      const second = await engine.approve(approval(s, "application", "buyer"));
      expect(second.id).to.not.equal(first.id);
      await waitFor("signed again", () => settledOk(engine, second.id));
      await waitFor("projected again", () => signedOff().includes("buyer"));

      // Revoked with the party's own wallet: typed data, signed off chain, relayed by the relayer.
      const typed = await engine.typedDataFor({
        caseId: s.caseId,
        stageId: "application",
        role: "buyer",
        principalAddress: MANAGED.buyer.address,
        purpose: "revoke",
      });
      expect(typed.primaryType).to.equal("RevokeSignOff");
      const signature = await MANAGED.buyer.signTypedData(typed.domain, typed.types, typed.message);
      const relayed = await engine.revoke({
        caseId: s.caseId,
        stageId: "application",
        role: "buyer",
        principalAddress: MANAGED.buyer.address,
        signature,
      });
      await waitFor("revoked by signature", () => settledOk(engine, relayed.id));
      expect(await senderOf(engine.submission(relayed.id)!.txHash!)).to.equal(RELAYER.address);
      await waitFor("projected", () => !signedOff().includes("buyer"));
      expect(await s.d.escrow.signOffEpoch(s.caseId, application, 2)).to.equal(2n);

      // Once the stage completes there is nothing to revoke.
      for (const role of ["buyer", "bank"] as const) await engine.approve(approval(s, "application", role));
      await waitFor(
        "the application completed",
        () => engine.getCase(s.caseId)!.stages[application].status === "completed",
      );
      expect(
        (
          await refusalOf(
            engine.revoke({
              caseId: s.caseId,
              stageId: "application",
              role: "bank",
              principalAddress: MANAGED.bank.address,
            }),
          )
        ).message,
      ).to.match(/already completed/);
    });
  });

  describe("cancel", function () {
    it("cancels only on the last party's vote, credits each payer back, and each withdraws", async function () {
      const s = await setUp();
      const engine = await started(s);
      await fund(engine, s);
      for (const [i, role] of ROLES.entries()) {
        const vote = engine.cancel({ caseId: s.caseId, principalAddress: MANAGED[role].address });
        await waitFor(`the ${role}'s vote`, () => settledOk(engine, vote.id));
        expect(await senderOf(engine.submission(vote.id)!.txHash!)).to.equal(MANAGED[role].address);
        if (i < ROLES.length - 1) {
          expect(engine.getCase(s.caseId)!.status, `open after the ${role}'s vote`).to.equal("open");
          // The same vote again is the same submission: one vote.
          expect(engine.cancel({ caseId: s.caseId, principalAddress: MANAGED[role].address }).id).to.equal(vote.id);
        }
      }
      await waitFor("cancelled", () => engine.getCase(s.caseId)!.status === "cancelled");
      const progress = engine.getCase(s.caseId)!;
      expect(progress.stages.every((st) => st.status === "cancelled" || st.status === "completed")).to.equal(true);
      expect(progress.escrow.credits[MANAGED.buyer.address]).to.equal(TERMS.deposit.toString());
      expect(progress.escrow.credits[MANAGED.bank.address]).to.equal(TERMS.loan.toString());
      expect((await s.d.escrow.queryFilter(s.d.escrow.filters.CancellationVoted(s.caseId))).length).to.equal(4);
      expect(
        (
          await refusalOf(
            Promise.resolve().then(() => engine.cancel({ caseId: s.caseId, principalAddress: MANAGED.buyer.address })),
          )
        ).code,
      ).to.equal("CONFLICT");

      const withdrawals = (["buyer", "bank"] as const).map((role) =>
        engine.withdraw({ caseId: s.caseId, principalAddress: MANAGED[role].address }),
      );
      await waitFor("both withdrawals", () => withdrawals.every((w) => settledOk(engine, w.id)));
      expect(await s.d.escrow.creditOf(s.caseId, MANAGED.buyer.address)).to.equal(0n);
      expect(await s.d.escrow.creditOf(s.caseId, MANAGED.bank.address)).to.equal(0n);
      const withdrawn = await s.d.escrow.queryFilter(s.d.escrow.filters.Withdrawn(s.caseId));
      expect(withdrawn.map((w) => [w.args.payee, w.args.amount])).to.have.deep.members([
        [MANAGED.buyer.address, TERMS.deposit],
        [MANAGED.bank.address, TERMS.loan],
      ]);
      // A stranger to the case may do neither.
      expect(
        (
          await refusalOf(
            Promise.resolve().then(() => engine.withdraw({ caseId: s.caseId, principalAddress: RELAYER.address })),
          )
        ).code,
      ).to.equal("FORBIDDEN");
    });
  });

  describe("uk-purchase: a deadline after the release, and a cancellation after the binding exchange", function () {
    it("marks a missed post-release deadline overdue (no money moves, the case stays open), and the late sign-offs still complete it", async function () {
      const s = await setUp();
      const engine = await started(s);
      const caseId = await openUkCase(engine, s);
      const before = UK.details.map((d) => d.id).filter((id) => !["stamp-duty", "registration"].includes(id));
      await signUk(engine, caseId, before);
      await fundCase(engine, caseId);
      await waitFor("released", () => engine.getCase(caseId)!.escrow.released);
      const stampDuty = UK.stageIndex["stamp-duty"];
      // The seller's credit was pushed to it right after the release.
      await waitFor("the seller paid", async () => (await s.d.escrow.creditOf(caseId, MANAGED.seller.address)) === 0n);
      await waitFor(
        "the payment projected",
        () => engine.getCase(caseId)!.escrow.credits[MANAGED.seller.address] === undefined,
      );
      const credits = { ...engine.getCase(caseId)!.escrow.credits };

      // The deadline as compiled: the law's 14 days, rounded up to the end of the day (and a clock change).
      const deadline = Date.parse(engine.getCase(caseId)!.stages[stampDuty].contractCeiling!) / 1000;
      await engine.increaseTime(deadline - (await time.latest()) + 5);
      expect(engine.getCase(caseId)!.stages[stampDuty].status, "overdue as the chain's stageOf says at once").to.equal(
        "overdue",
      );
      // The engine's own expire records it on chain.
      const overdue = await waitFor(
        "StageOverdue",
        async () => {
          const events = await s.d.escrow.queryFilter(s.d.escrow.filters.StageOverdue(caseId));
          return events.length > 0 ? events : null;
        },
        5_000,
      );
      expect(overdue.map((e) => Number(e.args.stage))).to.deep.equal([stampDuty]);
      expect(await senderOf(overdue[0].transactionHash)).to.equal(RELAYER.address);
      const progress = engine.getCase(caseId)!;
      expect(progress.status).to.equal("open");
      expect(progress.escrow.credits, "no money moved").to.deep.equal(credits);
      expect(engine.runtime.activeCases()).to.include(caseId);

      await signUk(engine, caseId, ["stamp-duty", "registration"]);
      await waitFor("completed", () => engine.getCase(caseId)!.status === "completed");
      await sleep(500);
      const expires = engine.relayer.outbox
        .list()
        .filter((x) => x.idempotencyKey.startsWith(`runtime:expire:${caseId}:`));
      expect(
        expires.map((x) => x.status),
        "one expire for the one missed deadline, none after",
      ).to.deep.equal(["confirmed"]);
    });

    it("cancels after the exchange: the buyer's deposit goes to the seller, the bank's loan back to the bank", async function () {
      const s = await setUp();
      const engine = await started(s);
      const caseId = await openUkCase(engine, s);
      await signUk(engine, caseId, [
        "offer-accepted",
        "conveyancers-instructed",
        "mortgage-offer",
        "searches-and-enquiries",
        "contract-signed",
        "exchange",
      ]);
      await fundCase(engine, caseId);
      await waitFor("exchanged", () => engine.getCase(caseId)!.stages[UK.stageIndex.exchange].status === "completed");
      const votes = ROLES.map((role) => engine.cancel({ caseId, principalAddress: MANAGED[role].address }));
      await waitFor("the votes", () => votes.every((v) => settledOk(engine, v.id)));
      await waitFor("cancelled", () => engine.getCase(caseId)!.status === "cancelled");
      const credits = engine.getCase(caseId)!.escrow.credits;
      expect(credits[MANAGED.seller.address]).to.equal(TERMS.deposit.toString());
      expect(credits[MANAGED.bank.address]).to.equal(TERMS.loan.toString());
      expect(credits[MANAGED.buyer.address] ?? "0").to.equal("0");
      expect(await s.d.escrow.creditOf(caseId, MANAGED.seller.address)).to.equal(TERMS.deposit);

      const withdrawal = engine.withdraw({ caseId, principalAddress: MANAGED.seller.address });
      await waitFor("the seller's withdrawal", () => settledOk(engine, withdrawal.id));
      expect(await s.d.escrow.creditOf(caseId, MANAGED.seller.address)).to.equal(0n);
      expect(
        (
          await refusalOf(
            Promise.resolve().then(() => engine.withdraw({ caseId, principalAddress: MANAGED.buyer.address })),
          )
        ).code,
      ).to.equal("CONFLICT");
    });
  });
});
