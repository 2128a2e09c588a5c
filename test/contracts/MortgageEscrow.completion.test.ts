import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  Action,
  CaseStatus,
  DAY,
  EVIDENCE,
  Role,
  StageStatus,
  deployWithCascadeCase,
  deployWithCase,
  fundCase,
  getParties,
  openCase,
  registerTemplate,
  roles,
  rule,
  signStage,
  stages,
  walkSmallPurchaseToRelease,
} from "./fixtures";

/** SMALL_PURCHASE with stage 0 completed and stage 1 fully signed: stage 1 waits 3 days for time alone. */
async function deployWaitingForTime() {
  const f = await deployWithCase();
  await signStage(f.escrow, f.parties, f.caseId, 0, "Buyer", "Seller");
  const stageZeroDoneAt = await time.latest();
  await signStage(f.escrow, f.parties, f.caseId, 1, "Lawyer", "Buyer");
  return { ...f, stageZeroDoneAt, availableAt: stageZeroDoneAt + 3 * DAY };
}

/** SMALL_PURCHASE released at `releasedAt`: stages 0-2 complete, stage 3 (registration) open. */
async function deployReleased() {
  const f = await deployWithCase();
  await walkSmallPurchaseToRelease(f.escrow, f.parties, f.caseId);
  await signStage(f.escrow, f.parties, f.caseId, 2, "Lawyer");
  return { ...f, releasedAt: await time.latest() };
}

/** CASCADE with stages 0-3 complete and released; stage 4 waits 2 days after stage 3. */
async function deployCascadeReleased() {
  const f = await deployWithCascadeCase();
  await fundCase(f.escrow, f.parties, f.caseId);
  await signStage(f.escrow, f.parties, f.caseId, 3, "Lawyer");
  await signStage(f.escrow, f.parties, f.caseId, 0, "Buyer");
  await signStage(f.escrow, f.parties, f.caseId, 1, "Seller");
  return { ...f, stageThreeDoneAt: await time.latest() };
}

/**
 * Seven stages: stage i > 0 waits a day after stage i - 1 and must complete within two days of it, so each
 * needs two kept times (stage i - 1's completion, its own wait's start): all twelve clocks a case has.
 * Every stage is the lawyer's; the last one releases. All are signed off (while locked) and funded up front.
 */
async function deployClockChain() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  // Each later stage needs two kept times (its anchor's completion and its wait's start): 6 of them use all 12.
  const count = Number(await escrow.MAX_CLOCKS()) / 2 + 1;
  const chain = Array.from({ length: count }, (_, i) =>
    rule({
      roles: roles("Lawyer"),
      prerequisites: i === 0 ? 0 : stages(i - 1),
      waitSeconds: i === 0 ? 0 : DAY,
      deadlineSeconds: i === 0 ? 0 : 2 * DAY,
      deadlineAnchor: i, // stage i - 1 + 1
      action: i === count - 1 ? Action.Release : Action.None,
      longStopSeconds: i === count - 1 ? 365 * DAY : 0,
    }),
  );
  const templateId = await registerTemplate(escrow, parties.admin, chain, ethers.id("clock-chain@1"));
  const caseId = await openCase(escrow, parties, templateId);
  await fundCase(escrow, parties, caseId);
  for (let i = count - 1; i >= 1; i--) await escrow.connect(parties.lawyer).signOff(caseId, i, Role.Lawyer, EVIDENCE);
  return { escrow, parties, caseId, count };
}

/** 0 buyer, 1 seller, 2 lawyer one day after both 0 and 1 (releases; a year's long-stop). */
async function deployTwoPrerequisites() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const rules = [
    rule({ roles: roles("Buyer") }),
    rule({ roles: roles("Seller") }),
    rule({
      roles: roles("Lawyer"),
      prerequisites: stages(0, 1),
      waitSeconds: DAY,
      action: Action.Release,
      longStopSeconds: 365 * DAY,
    }),
  ];
  const templateId = await registerTemplate(escrow, parties.admin, rules, ethers.id("two-prerequisites@1"));
  const caseId = await openCase(escrow, parties, templateId, { price: 0n, deposit: 0n, loan: 0n });
  return { escrow, parties, caseId };
}

describe("MortgageEscrow completion", function () {
  describe("advance", function () {
    it("reverts when the waiting time has not passed", async function () {
      const { escrow, caseId, availableAt } = await loadFixture(deployWaitingForTime);
      await time.setNextBlockTimestamp(availableAt - 1);
      await expect(escrow.advance(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToAdvance")
        .withArgs(caseId);
    });

    it("completes a stage at the exact moment its waiting time ends, whoever calls", async function () {
      const { escrow, parties, caseId, availableAt } = await loadFixture(deployWaitingForTime);
      await time.setNextBlockTimestamp(availableAt);
      await expect(escrow.connect(parties.stranger).advance(caseId))
        .to.emit(escrow, "StageCompleted")
        .withArgs(caseId, 1);
    });

    it("cascades into a later stage that was waiting only on the one that time completed", async function () {
      const { escrow, parties, caseId, availableAt } = await loadFixture(deployWaitingForTime);
      await fundCase(escrow, parties, caseId);
      await signStage(escrow, parties, caseId, 2, "Bank", "Lawyer");
      await time.increaseTo(availableAt);
      const tx = escrow.advance(caseId);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 1);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 2);
      await expect(tx)
        .to.emit(escrow, "Credited")
        .withArgs(caseId, parties.seller.address, (await escrow.caseOf(caseId)).price);
      expect((await escrow.caseOf(caseId)).released).to.equal(true);
    });

    it("completes a role-less stage after its waiting time and with it the case", async function () {
      const { escrow, caseId, stageThreeDoneAt } = await loadFixture(deployCascadeReleased);
      await time.setNextBlockTimestamp(stageThreeDoneAt + 2 * DAY);
      const tx = escrow.advance(caseId);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 4);
      await expect(tx).to.emit(escrow, "CaseCompleted").withArgs(caseId);
      expect((await escrow.caseOf(caseId)).status).to.equal(CaseStatus.Completed);
    });

    it("does not complete a stage whose deadline passed before the release", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWaitingForTime);
      const { openedAt } = await escrow.caseOf(caseId);
      await fundCase(escrow, parties, caseId);
      await signStage(escrow, parties, caseId, 2, "Bank", "Lawyer");
      await time.setNextBlockTimestamp(Number(openedAt) + 60 * DAY + 1);
      const tx = escrow.advance(caseId);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 1);
      await expect(tx).not.to.emit(escrow, "Credited");
      expect((await escrow.caseOf(caseId)).released).to.equal(false);
      await expect(escrow.advance(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToAdvance")
        .withArgs(caseId);
    });

    it("still completes a stage at the very second of its deadline", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWaitingForTime);
      const { openedAt } = await escrow.caseOf(caseId);
      await fundCase(escrow, parties, caseId);
      await signStage(escrow, parties, caseId, 2, "Bank", "Lawyer");
      await time.setNextBlockTimestamp(Number(openedAt) + 60 * DAY);
      await expect(escrow.advance(caseId)).to.emit(escrow, "StageCompleted").withArgs(caseId, 2);
    });

    it("completes a stage whose wait counts from every clock a template may use", async function () {
      const { escrow, parties, caseId, count } = await loadFixture(deployClockChain);
      await escrow.connect(parties.lawyer).signOff(caseId, 0, Role.Lawyer, EVIDENCE);
      let previous = await time.latest();
      for (let i = 1; i < count; i++) {
        const stage = await escrow.stageOf(caseId, i);
        expect((await escrow.stageOf(caseId, i - 1)).completedAt, `stage ${i - 1} completedAt`).to.equal(previous);
        expect([stage.availableAt, stage.deadline], `stage ${i} availableAt, deadline`).to.deep.equal([
          BigInt(previous + DAY),
          BigInt(previous + 2 * DAY),
        ]);
        await time.setNextBlockTimestamp(previous + DAY - 1);
        await expect(escrow.advance(caseId))
          .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToAdvance")
          .withArgs(caseId);
        await time.setNextBlockTimestamp(previous + DAY + 7);
        await expect(escrow.advance(caseId)).to.emit(escrow, "StageCompleted").withArgs(caseId, i);
        previous = await time.latest();
      }
      expect((await escrow.caseOf(caseId)).status).to.equal(CaseStatus.Completed);
    });

    it("counts the waiting time from the last prerequisite to complete", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployTwoPrerequisites);
      await signStage(escrow, parties, caseId, 2, "Lawyer");
      await signStage(escrow, parties, caseId, 1, "Seller");
      await time.increase(5 * DAY);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      const lastDoneAt = await time.latest();
      expect((await escrow.stageOf(caseId, 2)).availableAt).to.equal(lastDoneAt + DAY);
      await time.setNextBlockTimestamp(lastDoneAt + DAY - 1);
      await expect(escrow.advance(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToAdvance")
        .withArgs(caseId);
      await expect(escrow.advance(caseId)).to.emit(escrow, "CaseCompleted").withArgs(caseId);
    });

    it("reverts on a case that has completed", async function () {
      const { escrow, caseId } = await loadFixture(deployCascadeReleased);
      await time.increase(2 * DAY);
      await escrow.advance(caseId);
      await expect(escrow.advance(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnexpectedCaseStatus")
        .withArgs(caseId, CaseStatus.Completed, 1 << CaseStatus.Open);
    });

    it("reverts for an unknown case", async function () {
      const { escrow } = await loadFixture(deployWithCase);
      await expect(escrow.advance(99n))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase")
        .withArgs(99n);
    });
  });

  describe("stageOf", function () {
    it("shows a stage awaiting sign-offs as Open and one behind a prerequisite as Locked", async function () {
      const { escrow, caseId } = await loadFixture(deployWithCase);
      const { openedAt } = await escrow.caseOf(caseId);
      const zero = await escrow.stageOf(caseId, 0);
      expect(zero.status).to.equal(StageStatus.Open);
      expect(zero.requiredRoles).to.equal(roles("Buyer", "Seller"));
      expect(zero.signedOffRoles).to.equal(0);
      expect([zero.availableAt, zero.deadline, zero.completedAt]).to.deep.equal([0n, 0n, 0n]);
      const one = await escrow.stageOf(caseId, 1);
      expect(one.status).to.equal(StageStatus.Locked);
      expect(one.availableAt).to.equal(0); // a prerequisite is still open
      const two = await escrow.stageOf(caseId, 2);
      expect(two.status).to.equal(StageStatus.Locked);
      expect(two.deadline).to.equal(openedAt + BigInt(60 * DAY)); // counted from the opening
      expect((await escrow.stageOf(caseId, 3)).deadline).to.equal(0); // its anchor stage has not completed
    });

    it("shows a signed stage inside its waiting time as WaitingForTime with availableAt", async function () {
      const { escrow, caseId, stageZeroDoneAt, availableAt } = await loadFixture(deployWaitingForTime);
      const zero = await escrow.stageOf(caseId, 0);
      expect(zero.status).to.equal(StageStatus.Completed);
      // Only deadline anchors' completion times are kept on chain (StageCompleted's block has every one).
      expect(zero.completedAt).to.equal(0);
      expect(stageZeroDoneAt).to.be.greaterThan(0);
      const one = await escrow.stageOf(caseId, 1);
      expect(one.status).to.equal(StageStatus.WaitingForTime);
      expect(one.availableAt).to.equal(availableAt);
      expect(one.signedOffRoles).to.equal(roles("Lawyer", "Buyer"));
    });

    it("keeps WaitingForTime once the time has come until a transaction completes the stage", async function () {
      const { escrow, caseId, availableAt } = await loadFixture(deployWaitingForTime);
      await time.increaseTo(availableAt + 1);
      expect((await escrow.stageOf(caseId, 1)).status).to.equal(StageStatus.WaitingForTime);
      await escrow.advance(caseId);
      const one = await escrow.stageOf(caseId, 1);
      expect(one.status).to.equal(StageStatus.Completed);
      expect(one.completedAt).to.equal(0); // no later rule needs stage 1's completion time
    });

    it("shows a stage past its deadline before the release as Overdue, until expire ends the case", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWaitingForTime);
      await time.increase(3 * DAY);
      await escrow.advance(caseId);
      await signStage(escrow, parties, caseId, 2, "Bank", "Lawyer");
      const { deadline } = await escrow.stageOf(caseId, 2);
      expect(deadline).to.be.greaterThan(0);
      await time.increaseTo(Number(deadline) + 1);
      expect((await escrow.stageOf(caseId, 2)).status).to.equal(StageStatus.Overdue);
      await expect(escrow.advance(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToAdvance")
        .withArgs(caseId);
      await expect(escrow.expire(caseId)).to.emit(escrow, "CaseExpired").withArgs(caseId, 2);
      expect((await escrow.stageOf(caseId, 2)).status).to.equal(StageStatus.Expired);
    });

    it("shows a signed releasing stage without the money as WaitingForFunds", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWaitingForTime);
      await time.increase(3 * DAY);
      await escrow.advance(caseId);
      await signStage(escrow, parties, caseId, 2, "Bank", "Lawyer");
      expect((await escrow.stageOf(caseId, 2)).status).to.equal(StageStatus.WaitingForFunds);
      await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, 1n, { value: 1n });
      expect((await escrow.stageOf(caseId, 2)).status).to.equal(StageStatus.WaitingForFunds);
    });

    it("records the releasing stage's completion time and counts the next deadline from it", async function () {
      const { escrow, caseId, releasedAt } = await loadFixture(deployReleased);
      const two = await escrow.stageOf(caseId, 2);
      expect(two.status).to.equal(StageStatus.Completed);
      expect(two.completedAt).to.equal(releasedAt);
      const three = await escrow.stageOf(caseId, 3);
      expect(three.status).to.equal(StageStatus.Open);
      expect(three.deadline).to.equal(releasedAt + 14 * DAY);
    });

    it("shows a stage whose deadline passed after the release as Overdue", async function () {
      const { escrow, caseId, releasedAt } = await loadFixture(deployReleased);
      await time.increaseTo(releasedAt + 14 * DAY + 1);
      expect((await escrow.stageOf(caseId, 3)).status).to.equal(StageStatus.Overdue);
      await escrow.expire(caseId);
      expect((await escrow.stageOf(caseId, 3)).status).to.equal(StageStatus.Overdue);
    });

    it("shows the unfinished stages of an expired case as Expired and the finished ones as Completed", async function () {
      const { escrow, caseId } = await loadFixture(deployWaitingForTime);
      await time.increase(61 * DAY);
      await escrow.expire(caseId);
      expect((await escrow.stageOf(caseId, 0)).status).to.equal(StageStatus.Completed);
      expect((await escrow.stageOf(caseId, 1)).status).to.equal(StageStatus.Expired);
      expect((await escrow.stageOf(caseId, 3)).status).to.equal(StageStatus.Expired);
    });

    it("shows the unfinished stages of a cancelled case as Cancelled", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWaitingForTime);
      for (const p of [parties.bank, parties.lawyer, parties.buyer, parties.seller])
        await escrow.connect(p).cancel(caseId);
      expect((await escrow.stageOf(caseId, 0)).status).to.equal(StageStatus.Completed);
      expect((await escrow.stageOf(caseId, 1)).status).to.equal(StageStatus.Cancelled);
    });

    it("reverts for a stage the template does not have", async function () {
      const { escrow, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.stageOf(caseId, 4))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownStage")
        .withArgs(caseId, 4);
    });

    it("reverts for an unknown case", async function () {
      const { escrow } = await loadFixture(deployWithCase);
      await expect(escrow.stageOf(5n, 0))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase")
        .withArgs(5n);
    });

    it("reports the signed-off roles of a stage that is still locked", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await escrow.connect(parties.lawyer).signOff(caseId, 3, Role.Lawyer, EVIDENCE);
      const three = await escrow.stageOf(caseId, 3);
      expect(three.status).to.equal(StageStatus.Locked);
      expect(three.signedOffRoles).to.equal(roles("Lawyer"));
    });
  });
});
