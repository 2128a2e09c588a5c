import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  CaseStatus,
  DAY,
  DEFAULT_ADMIN_ROLE,
  DEFAULT_TERMS,
  EVIDENCE,
  Role,
  caseTerms,
  deployWithCase,
  fundCase,
  signRevocation,
  signStage,
  signedItem,
  walkSmallPurchaseToRelease,
} from "./fixtures";

/** A SMALL_PURCHASE case one sign-off from its release, with the escrow then paused. */
async function deployPausedBeforeRelease() {
  const f = await deployWithCase();
  await walkSmallPurchaseToRelease(f.escrow, f.parties, f.caseId);
  await f.escrow.connect(f.parties.admin).pause();
  return f;
}

/** A fresh SMALL_PURCHASE case with both shares paid in, then the escrow paused. */
async function deployPausedFunded() {
  const f = await deployWithCase();
  await fundCase(f.escrow, f.parties, f.caseId);
  await f.escrow.connect(f.parties.admin).pause();
  return f;
}

async function deployPaused() {
  const f = await deployWithCase();
  await f.escrow.connect(f.parties.admin).pause();
  return f;
}

describe("MortgageEscrow pause", function () {
  describe("pause", function () {
    it("pauses and emits PauseChanged", async function () {
      const { escrow, parties } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.admin).pause())
        .to.emit(escrow, "PauseChanged")
        .withArgs(parties.admin.address, true);
      expect(await escrow.paused()).to.equal(true);
    });

    it("stops opening cases and deposits", async function () {
      const { escrow, parties, templateId, caseId } = await loadFixture(deployPaused);
      await expect(escrow.connect(parties.bank).openCase(caseTerms(parties, templateId))).to.be.revertedWithCustomError(
        escrow,
        "MortgageEscrowPaused",
      );
      await expect(
        escrow.connect(parties.bank).deposit(caseId, Role.Bank, 1n, { value: 1n }),
      ).to.be.revertedWithCustomError(escrow, "MortgageEscrowPaused");
    });

    it("lets sign-offs, relayed sign-offs, revocations and advance go on while paused", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployPaused);
      await expect(escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE))
        .to.emit(escrow, "SignedOff")
        .withArgs(caseId, 0, Role.Buyer, EVIDENCE);
      const signature = await signRevocation(escrow, parties.buyer, { caseId, stage: 0, role: Role.Buyer, epoch: 0 });
      await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, signature))
        .to.emit(escrow, "SignOffRevoked")
        .withArgs(caseId, 0, Role.Buyer, 1);
      const items = [
        await signedItem(escrow, parties, caseId, 0, "Buyer", EVIDENCE, 1),
        await signedItem(escrow, parties, caseId, 0, "Seller"),
      ];
      await expect(escrow.connect(parties.relayer).signOffWithSignatures(items))
        .to.emit(escrow, "StageCompleted")
        .withArgs(caseId, 0);
      await signStage(escrow, parties, caseId, 1, "Lawyer");
      await escrow.connect(parties.lawyer).revokeSignOff(caseId, 1, Role.Lawyer);
      await signStage(escrow, parties, caseId, 1, "Lawyer", "Buyer");
      await time.increase(3 * DAY);
      await expect(escrow.advance(caseId)).to.emit(escrow, "StageCompleted").withArgs(caseId, 1);
    });

    it("lets the release and the withdrawals go on while paused", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployPausedBeforeRelease);
      await expect(escrow.connect(parties.lawyer).signOff(caseId, 2, Role.Lawyer, EVIDENCE))
        .to.emit(escrow, "Credited")
        .withArgs(caseId, parties.seller.address, DEFAULT_TERMS.price);
      expect((await escrow.caseOf(caseId)).released).to.equal(true);
      await expect(escrow.connect(parties.seller).withdraw(caseId)).to.changeEtherBalances(
        [parties.seller, escrow],
        [DEFAULT_TERMS.price, -DEFAULT_TERMS.price],
      );
    });

    it("lets expiry and its refunds go on while paused", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployPausedFunded);
      await time.increase(61 * DAY);
      await expect(escrow.expire(caseId)).to.emit(escrow, "CaseExpired").withArgs(caseId, 2);
      await expect(escrow.connect(parties.stranger).withdrawFor(caseId, parties.bank.address)).to.changeEtherBalances(
        [parties.bank, escrow],
        [DEFAULT_TERMS.loan, -DEFAULT_TERMS.loan],
      );
    });

    it("lets cancellation and its refunds go on while paused", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployPausedFunded);
      for (const p of [parties.bank, parties.lawyer, parties.buyer]) await escrow.connect(p).cancel(caseId);
      await expect(escrow.connect(parties.seller).cancel(caseId)).to.emit(escrow, "CaseCancelled").withArgs(caseId);
      expect((await escrow.caseOf(caseId)).status).to.equal(CaseStatus.Cancelled);
      await expect(escrow.connect(parties.buyer).withdraw(caseId)).to.changeEtherBalances(
        [parties.buyer, escrow],
        [DEFAULT_TERMS.deposit, -DEFAULT_TERMS.deposit],
      );
    });

    it("reverts when already paused", async function () {
      const { escrow, parties } = await loadFixture(deployPaused);
      await expect(escrow.connect(parties.admin).pause())
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowPauseUnchanged")
        .withArgs(true);
    });

    it("reverts when the caller is not the operator", async function () {
      const { escrow, parties } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.bank).pause())
        .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
        .withArgs(parties.bank.address, DEFAULT_ADMIN_ROLE);
    });
  });

  describe("unpause", function () {
    it("resumes opening cases and deposits and emits PauseChanged", async function () {
      const { escrow, parties, templateId, caseId } = await loadFixture(deployPaused);
      await expect(escrow.connect(parties.admin).unpause())
        .to.emit(escrow, "PauseChanged")
        .withArgs(parties.admin.address, false);
      const terms = caseTerms(parties, templateId);
      await expect(escrow.connect(parties.bank).openCase(terms))
        .to.emit(escrow, "CaseOpened")
        .withArgs(caseId + 1n, Object.values(terms));
      await expect(escrow.connect(parties.bank).deposit(caseId, Role.Bank, 1n, { value: 1n }))
        .to.emit(escrow, "Deposited")
        .withArgs(caseId, Role.Bank, parties.bank.address, 1n);
    });

    it("reverts when not paused", async function () {
      const { escrow, parties } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.admin).unpause())
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowPauseUnchanged")
        .withArgs(false);
    });

    it("reverts when the caller is not the operator", async function () {
      const { escrow, parties } = await loadFixture(deployPaused);
      await expect(escrow.connect(parties.stranger).unpause())
        .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
        .withArgs(parties.stranger.address, DEFAULT_ADMIN_ROLE);
    });
  });

  describe("paused", function () {
    it("is false after deployment and follows pause and unpause", async function () {
      const { escrow, parties } = await loadFixture(deployWithCase);
      expect(await escrow.paused()).to.equal(false);
      await escrow.connect(parties.admin).pause();
      expect(await escrow.paused()).to.equal(true);
      await escrow.connect(parties.admin).unpause();
      expect(await escrow.paused()).to.equal(false);
    });
  });
});
