import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  EVERY_PARTY,
  Action,
  CaseStatus,
  DAY,
  DEFAULT_TERMS,
  EVIDENCE,
  Role,
  StageStatus,
  US_PURCHASE,
  getParties,
  openCase,
  registerTemplate,
  roles,
  rule,
  signStage,
  stages,
} from "./fixtures";

/**
 * The long-stop: a deadline on the releasing stage counted from the case's opening, so that a case can always
 * end by time alone. Without it (finding 1 of issue 10) a buyer who deposits early, and a bank that never signs
 * the rate lock from which the funding deadline counts, leave the deposit held for ever.
 */

const RATE_LOCK = 2;
const FUNDING = 9;
const LONG_STOP = 120 * DAY; // US_PURCHASE's funding long-stop

/** A US purchase case in which only the buyer acts: it signs the application and pays its deposit in full. */
async function deployUsCaseWithEarlyDeposit() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const templateId = await registerTemplate(escrow, parties.admin, US_PURCHASE, ethers.id("us-purchase@1"));
  const caseId = await openCase(escrow, parties, templateId);
  const openedAt = BigInt(await time.latest());
  await signStage(escrow, parties, caseId, 0, "Buyer");
  await escrow
    .connect(parties.buyer)
    .deposit(caseId, Role.Buyer, DEFAULT_TERMS.deposit, { value: DEFAULT_TERMS.deposit });
  return { escrow, parties, templateId, caseId, openedAt };
}

/** The escrow alone, to register templates on. */
async function deployEscrow() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  return { escrow, parties };
}

describe("MortgageEscrow long-stop", function () {
  describe("expire", function () {
    it("refunds an early deposit by time alone when the bank never signs the stage the funding deadline counts from", async function () {
      const { escrow, parties, caseId, openedAt } = await loadFixture(deployUsCaseWithEarlyDeposit);
      await time.increaseTo(openedAt + BigInt(LONG_STOP) + 1n);

      await expect(escrow.connect(parties.stranger).expire(caseId))
        .to.emit(escrow, "CaseExpired")
        .withArgs(caseId, FUNDING)
        .and.to.emit(escrow, "Credited")
        .withArgs(caseId, parties.buyer.address, DEFAULT_TERMS.deposit);
      expect((await escrow.caseOf(caseId)).status).to.equal(CaseStatus.Expired);
      await expect(escrow.connect(parties.buyer).withdraw(caseId)).to.changeEtherBalances(
        [parties.buyer, escrow],
        [DEFAULT_TERMS.deposit, -DEFAULT_TERMS.deposit],
      );
    });

    it("says NothingToExpire until the long-stop has passed", async function () {
      const { escrow, parties, caseId, openedAt } = await loadFixture(deployUsCaseWithEarlyDeposit);
      await time.setNextBlockTimestamp(openedAt + BigInt(LONG_STOP)); // the expiry's own block: not yet past it

      await expect(escrow.connect(parties.stranger).expire(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToExpire")
        .withArgs(caseId);
    });

    it("expires at the anchored deadline when it comes before the long-stop", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployUsCaseWithEarlyDeposit);
      await signStage(escrow, parties, caseId, 0, "Bank");
      await signStage(escrow, parties, caseId, 1, "Bank");
      await signStage(escrow, parties, caseId, RATE_LOCK, "Bank", "Buyer");
      const anchoredDeadline = (await escrow.stageOf(caseId, FUNDING)).deadline;
      await time.increaseTo(anchoredDeadline + 1n);

      await expect(escrow.expire(caseId)).to.emit(escrow, "CaseExpired").withArgs(caseId, FUNDING);
    });
  });

  describe("stageOf", function () {
    it("reports the long-stop as the deadline while the anchor has not completed", async function () {
      const { escrow, caseId, openedAt } = await loadFixture(deployUsCaseWithEarlyDeposit);
      expect((await escrow.stageOf(caseId, FUNDING)).deadline).to.equal(openedAt + BigInt(LONG_STOP));
    });

    it("reports the anchored deadline once it runs and is the earlier one", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployUsCaseWithEarlyDeposit);
      await signStage(escrow, parties, caseId, 0, "Bank");
      await signStage(escrow, parties, caseId, 1, "Bank");
      await signStage(escrow, parties, caseId, RATE_LOCK, "Bank", "Buyer");
      const rateLockedAt = BigInt(await time.latest());

      expect((await escrow.stageOf(caseId, FUNDING)).deadline).to.equal(rateLockedAt + 60n * BigInt(DAY));
    });

    it("keeps the long-stop as the deadline when the anchored one would come later", async function () {
      const { escrow, parties, caseId, openedAt } = await loadFixture(deployUsCaseWithEarlyDeposit);
      await time.increase(70 * DAY); // a rate lock signed 70 days in: its 60 days run past the 120-day long-stop
      await signStage(escrow, parties, caseId, 0, "Bank");
      await signStage(escrow, parties, caseId, 1, "Bank");
      await signStage(escrow, parties, caseId, RATE_LOCK, "Bank", "Buyer");

      const view = await escrow.stageOf(caseId, FUNDING);
      expect(view.deadline).to.equal(openedAt + BigInt(LONG_STOP));
      expect(view.status).to.equal(StageStatus.Locked);
    });

    it("marks the releasing stage Overdue once its long-stop passes", async function () {
      const { escrow, caseId, openedAt } = await loadFixture(deployUsCaseWithEarlyDeposit);
      await time.increaseTo(openedAt + BigInt(LONG_STOP) + 1n);
      expect((await escrow.stageOf(caseId, FUNDING)).status).to.equal(StageStatus.Overdue);
    });
  });

  describe("registerTemplate", function () {
    it("refuses a template whose releasing stage's only deadline counts from an earlier stage", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const withoutLongStop = US_PURCHASE.map((r, i) => (i === FUNDING ? { ...r, longStopSeconds: 0 } : r));

      await expect(escrow.connect(parties.admin).registerTemplate(ethers.id("us"), withoutLongStop, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNoLongStop")
        .withArgs(FUNDING);
    });

    it("refuses a template whose releasing stage has no deadline at all, naming that stage", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const noDeadline = [
        rule({ roles: roles("Bank") }),
        rule({ roles: roles("Lawyer"), prerequisites: stages(0), action: Action.Release }),
      ];

      await expect(escrow.connect(parties.admin).registerTemplate(ethers.id("x"), noDeadline, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNoLongStop")
        .withArgs(1);
    });

    it("accepts a releasing stage whose deadline counts from the opening, with no long-stop", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const fromOpening = [rule({ roles: roles("Lawyer"), action: Action.Release, deadlineSeconds: 30 * DAY })];

      await expect(escrow.connect(parties.admin).registerTemplate(ethers.id("x"), fromOpening, EVERY_PARTY)).to.emit(
        escrow,
        "TemplateRegistered",
      );
    });

    it("accepts a releasing stage with a long-stop and no other deadline, and returns it from templateStages", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const longStopOnly = [rule({ roles: roles("Lawyer"), action: Action.Release, longStopSeconds: 30 * DAY })];
      const id = await registerTemplate(escrow, parties.admin, longStopOnly);

      expect((await escrow.templateStages(id))[0].longStopSeconds).to.equal(30 * DAY);
    });
  });

  describe("a long-stop on a stage that does not release", function () {
    it("expires the case when that stage misses it before the release", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const template = [
        rule({ roles: roles("Bank"), longStopSeconds: 5 * DAY }),
        rule({ roles: roles("Lawyer"), prerequisites: stages(0), action: Action.Release, deadlineSeconds: 30 * DAY }),
      ];
      const id = await registerTemplate(escrow, parties.admin, template);
      const caseId = await openCase(escrow, parties, id);
      await time.increase(5 * DAY + 1);

      await expect(escrow.expire(caseId)).to.emit(escrow, "CaseExpired").withArgs(caseId, 0);
    });

    it("only marks the stage overdue when it misses it after the release", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const template = [
        rule({ roles: roles("Lawyer"), action: Action.Release, deadlineSeconds: 30 * DAY }),
        rule({ roles: roles("Bank"), prerequisites: stages(0), longStopSeconds: 5 * DAY }),
      ];
      const id = await registerTemplate(escrow, parties.admin, template);
      const caseId = await openCase(escrow, parties, id, { price: 0n, deposit: 0n, loan: 0n });
      await escrow.connect(parties.lawyer).signOff(caseId, 0, Role.Lawyer, EVIDENCE);
      await time.increase(5 * DAY + 1);

      await expect(escrow.expire(caseId)).to.emit(escrow, "StageOverdue").withArgs(caseId, 1);
      await expect(escrow.connect(parties.bank).signOff(caseId, 1, Role.Bank, EVIDENCE))
        .to.emit(escrow, "CaseCompleted")
        .withArgs(caseId);
    });
  });
});
