import { expect } from "chai";
import { REVOKE_TYPES, SIGN_OFF_TYPES, escrowDomain } from "../../engine/chain/typed-data";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import {
  CaseStatus,
  DEFAULT_TERMS,
  EVIDENCE,
  Role,
  SkipReason,
  StageStatus,
  US_PURCHASE,
  caseTerms,
  deployWithCascadeCase,
  deployWithCase,
  fundCase,
  openCase,
  registerTemplate,
  roles,
  signRevocation,
  signSignOff,
  signStage,
  signedItem,
} from "./fixtures";

const OPEN_ONLY = 1 << CaseStatus.Open;

/** A SMALL_PURCHASE case that all four parties have cancelled. */
async function deployWithCancelledCase() {
  const f = await deployWithCase();
  for (const p of [f.parties.bank, f.parties.lawyer, f.parties.buyer, f.parties.seller])
    await f.escrow.connect(p).cancel(f.caseId);
  return f;
}

/** A SMALL_PURCHASE case whose stage 0 has completed. */
async function deployWithStageZeroCompleted() {
  const f = await deployWithCase();
  await signStage(f.escrow, f.parties, f.caseId, 0, "Buyer", "Seller");
  return f;
}

/** A case of the 11-stage US purchase, to reach stages whose revocation counters sit in the second word. */
async function deployWithUsCase() {
  const f = await deployWithCase();
  const usTemplate = await registerTemplate(f.escrow, f.parties.admin, US_PURCHASE, ethers.id("us-purchase@1"));
  const usCase = await openCase(f.escrow, f.parties, usTemplate);
  return { ...f, usCase };
}

/** A contract wallet owned by the lawyer's key, named as the lawyer of a new SMALL_PURCHASE case. */
async function deployWithContractWalletLawyer() {
  const f = await deployWithCase();
  const wallet = await ethers.deployContract("ERC1271Wallet", [f.parties.lawyer.address]);
  const terms = { ...caseTerms(f.parties, f.templateId), lawyer: await wallet.getAddress() };
  await f.escrow.connect(f.parties.bank).openCase(terms);
  return { ...f, wallet, walletCase: f.caseId + 1n };
}

describe("MortgageEscrow sign-offs", function () {
  describe("signOff", function () {
    it("records the sign-off and emits SignedOff with the evidence", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE))
        .to.emit(escrow, "SignedOff")
        .withArgs(caseId, 0, Role.Buyer, EVIDENCE);
      const stage = await escrow.stageOf(caseId, 0);
      expect(stage.signedOffRoles).to.equal(roles("Buyer"));
      expect(stage.status).to.equal(StageStatus.Open);
    });

    it("does not complete the stage while another required role has not signed off", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE)).not.to.emit(
        escrow,
        "StageCompleted",
      );
      expect((await escrow.caseOf(caseId)).completedStages).to.equal(0);
    });

    it("completes the stage in the same transaction as its last sign-off", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE);
      await expect(escrow.connect(parties.seller).signOff(caseId, 0, Role.Seller, EVIDENCE))
        .to.emit(escrow, "StageCompleted")
        .withArgs(caseId, 0);
      expect((await escrow.stageOf(caseId, 0)).status).to.equal(StageStatus.Completed);
    });

    it("accepts a sign-off while the stage is still locked", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.bank).signOff(caseId, 2, Role.Bank, EVIDENCE))
        .to.emit(escrow, "SignedOff")
        .withArgs(caseId, 2, Role.Bank, EVIDENCE);
      const stage = await escrow.stageOf(caseId, 2);
      expect(stage.status).to.equal(StageStatus.Locked);
      expect(stage.signedOffRoles).to.equal(roles("Bank"));
    });

    it("cascades through later stages that were waiting only on it, releasing the escrow on the way", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCascadeCase);
      await fundCase(escrow, parties, caseId);
      await signStage(escrow, parties, caseId, 3, "Lawyer"); // while locked
      await signStage(escrow, parties, caseId, 0, "Buyer");
      const tx = escrow.connect(parties.seller).signOff(caseId, 1, Role.Seller, EVIDENCE);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 1);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 2);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 3);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.seller.address, DEFAULT_TERMS.price);
      // Stage 4 waits two days after stage 3: the cascade stops there.
      await expect(tx).not.to.emit(escrow, "CaseCompleted");
      const v = await escrow.caseOf(caseId);
      expect([v.completedStages, v.released]).to.deep.equal([0b01111n, true]);
    });

    it("stops the cascade at a stage still missing a sign-off", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCascadeCase);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      const tx = escrow.connect(parties.seller).signOff(caseId, 1, Role.Seller, EVIDENCE);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 2);
      await expect(tx).not.to.emit(escrow, "Credited");
      expect((await escrow.stageOf(caseId, 3)).status).to.equal(StageStatus.Open);
      expect((await escrow.caseOf(caseId)).released).to.equal(false);
    });

    it("credits the seller the price when its sign-off completes the releasing stage", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCascadeCase);
      await fundCase(escrow, parties, caseId);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      await signStage(escrow, parties, caseId, 1, "Seller");
      const tx = escrow.connect(parties.lawyer).signOff(caseId, 3, Role.Lawyer, EVIDENCE);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 3);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.seller.address, DEFAULT_TERMS.price);
      expect((await escrow.caseOf(caseId)).released).to.equal(true);
    });

    it("reverts when a lawyer signs off the bank's stage as the bank", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.lawyer).signOff(caseId, 2, Role.Bank, EVIDENCE))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
        .withArgs(caseId, parties.lawyer.address, Role.Bank);
    });

    it("reverts when a party signs off a stage that does not require its role", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.lawyer).signOff(caseId, 0, Role.Lawyer, EVIDENCE))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowRoleNotRequired")
        .withArgs(caseId, 0, Role.Lawyer);
    });

    it("reverts with RoleNotRequired for a stage the template does not have", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.lawyer).signOff(caseId, 9, Role.Lawyer, EVIDENCE))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowRoleNotRequired")
        .withArgs(caseId, 9, Role.Lawyer);
      await expect(escrow.connect(parties.lawyer).signOff(caseId, 200, Role.Lawyer, EVIDENCE))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowRoleNotRequired")
        .withArgs(caseId, 200, Role.Lawyer);
    });

    it("reverts when the role has already signed off", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      await expect(escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowAlreadySignedOff")
        .withArgs(caseId, 0, Role.Buyer);
    });

    it("reverts with AlreadySignedOff on a completed stage", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithStageZeroCompleted);
      await expect(escrow.connect(parties.seller).signOff(caseId, 0, Role.Seller, EVIDENCE))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowAlreadySignedOff")
        .withArgs(caseId, 0, Role.Seller);
    });

    it("reverts when the case has been cancelled", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCancelledCase);
      await expect(escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnexpectedCaseStatus")
        .withArgs(caseId, CaseStatus.Cancelled, OPEN_ONLY);
    });

    it("reverts for an unknown case", async function () {
      const { escrow, parties } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.buyer).signOff(42n, 0, Role.Buyer, EVIDENCE))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase")
        .withArgs(42n);
    });
  });

  describe("signOffWithSignatures", function () {
    it("applies sign-offs signed off chain and relayed by anyone, completing the stage", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const buyerItem = await signedItem(escrow, parties, caseId, 0, "Buyer");
      const sellerItem = await signedItem(escrow, parties, caseId, 0, "Seller");
      const tx = escrow.connect(parties.relayer).signOffWithSignatures([buyerItem, sellerItem]);
      await expect(tx).to.emit(escrow, "SignedOff").withArgs(caseId, 0, Role.Buyer, buyerItem.evidence);
      await expect(tx).to.emit(escrow, "SignedOff").withArgs(caseId, 0, Role.Seller, sellerItem.evidence);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 0);
    });

    it("accepts a relayed sign-off of a locked stage", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 3, "Lawyer");
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([item]))
        .to.emit(escrow, "SignedOff")
        .withArgs(caseId, 3, Role.Lawyer, item.evidence);
      expect((await escrow.stageOf(caseId, 3)).signedOffRoles).to.equal(roles("Lawyer"));
    });

    it("skips an item that is already applied instead of reverting", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");
      const tx = escrow.connect(parties.relayer).signOffWithSignatures([item, item]);
      await expect(tx).to.emit(escrow, "SignedOff").withArgs(caseId, 0, Role.Buyer, item.evidence);
      await expect(tx)
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 1, SkipReason.AlreadySignedOff);
    });

    it("skips a sign-off that the party already made directly", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");
      await signStage(escrow, parties, caseId, 0, "Buyer");
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([item]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.AlreadySignedOff)
        .and.not.to.emit(escrow, "SignedOff");
    });

    it("skips a signature made before the signer revoked, so it can never be replayed", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const stale = await signedItem(escrow, parties, caseId, 0, "Buyer");
      await escrow.connect(parties.relayer).signOffWithSignatures([stale]);
      await escrow.connect(parties.buyer).revokeSignOff(caseId, 0, Role.Buyer);
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([stale]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.StaleEpoch)
        .and.not.to.emit(escrow, "SignedOff");
      expect((await escrow.stageOf(caseId, 0)).signedOffRoles).to.equal(0);
    });

    it("applies a new signature that carries the epoch after a revocation", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      await escrow.connect(parties.buyer).revokeSignOff(caseId, 0, Role.Buyer);
      const fresh = await signedItem(escrow, parties, caseId, 0, "Buyer", EVIDENCE, 1);
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([fresh]))
        .to.emit(escrow, "SignedOff")
        .withArgs(caseId, 0, Role.Buyer, EVIDENCE);
    });

    it("skips items for a case that is no longer open", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCancelledCase);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([item]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.CaseNotOpen);
    });

    it("skips items for a case that does not exist", async function () {
      const { escrow, parties } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, 99n, 0, "Buyer");
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([item]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(99n, 0, Role.Buyer, 0, SkipReason.CaseNotOpen);
    });

    it("skips an item whose signature is not the role's party's, with its index, and applies the rest", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const good = await signedItem(escrow, parties, caseId, 0, "Buyer");
      const message = { caseId, stage: 0, role: Role.Seller, epoch: 0, evidence: EVIDENCE };
      const forged = { ...message, signature: await signSignOff(escrow, parties.stranger, message) };
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([good, forged]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Seller, 1, SkipReason.InvalidSignature);
      expect((await escrow.stageOf(caseId, 0)).signedOffRoles).to.equal(1 << Role.Buyer);
    });

    it("skips, as InvalidSignature, an item whose relayed evidence differs from the signed one", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = {
        ...(await signedItem(escrow, parties, caseId, 0, "Buyer")),
        evidence: ethers.id("another document"),
      };
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([item]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
    });

    it("skips, as RoleNotRequired, an item naming a role that the stage does not require, and applies the rest", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 0, "Bank");
      const honest = await signedItem(escrow, parties, caseId, 0, "Buyer");
      const tx = escrow.connect(parties.relayer).signOffWithSignatures([item, honest]);
      await expect(tx).to.emit(escrow, "SignOffSkipped").withArgs(caseId, 0, Role.Bank, 0, SkipReason.RoleNotRequired);
      await expect(tx).to.emit(escrow, "SignedOff").withArgs(caseId, 0, Role.Buyer, honest.evidence);
    });

    it("skips, as RoleNotRequired, an item for a stage the template does not have", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const beyondTemplate = await signedItem(escrow, parties, caseId, 4, "Lawyer");
      const beyondMask = await signedItem(escrow, parties, caseId, 200, "Lawyer");
      const tx = escrow.connect(parties.relayer).signOffWithSignatures([beyondTemplate, beyondMask]);
      await expect(tx)
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 4, Role.Lawyer, 0, SkipReason.RoleNotRequired);
      await expect(tx)
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 200, Role.Lawyer, 1, SkipReason.RoleNotRequired);
    });

    it("accepts an ERC-1271 contract wallet's signature", async function () {
      const { escrow, parties, walletCase } = await loadFixture(deployWithContractWalletLawyer);
      // The wallet's owner key signs the same EIP-712 message; the wallet vouches for it.
      const message = { caseId: walletCase, stage: 3, role: Role.Lawyer, epoch: 0, evidence: EVIDENCE };
      const signature = await signSignOff(escrow, parties.lawyer, message);
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...message, signature }]))
        .to.emit(escrow, "SignedOff")
        .withArgs(walletCase, 3, Role.Lawyer, EVIDENCE);
    });

    it("skips, as InvalidSignature, a signature that the contract wallet does not vouch for", async function () {
      const { escrow, parties, walletCase } = await loadFixture(deployWithContractWalletLawyer);
      const message = { caseId: walletCase, stage: 3, role: Role.Lawyer, epoch: 0, evidence: EVIDENCE };
      const signature = await signSignOff(escrow, parties.stranger, message);
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...message, signature }]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(walletCase, 3, Role.Lawyer, 0, SkipReason.InvalidSignature);
    });

    it("does nothing for an empty batch", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([])).not.to.emit(escrow, "SignedOff");
      expect((await escrow.caseOf(caseId)).signedOffRoles).to.equal(0);
    });
  });

  describe("revokeSignOff", function () {
    it("clears the sign-off, bumps the epoch and emits SignOffRevoked", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      await expect(escrow.connect(parties.buyer).revokeSignOff(caseId, 0, Role.Buyer))
        .to.emit(escrow, "SignOffRevoked")
        .withArgs(caseId, 0, Role.Buyer, 1);
      expect((await escrow.stageOf(caseId, 0)).signedOffRoles).to.equal(0);
      expect(await escrow.signOffEpoch(caseId, 0, Role.Buyer)).to.equal(1);
    });

    it("revokes a sign-off of a locked stage", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await signStage(escrow, parties, caseId, 2, "Bank");
      await expect(escrow.connect(parties.bank).revokeSignOff(caseId, 2, Role.Bank))
        .to.emit(escrow, "SignOffRevoked")
        .withArgs(caseId, 2, Role.Bank, 1);
    });

    it("means the stage needs that sign-off again before it completes", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      await escrow.connect(parties.buyer).revokeSignOff(caseId, 0, Role.Buyer);
      await expect(escrow.connect(parties.seller).signOff(caseId, 0, Role.Seller, EVIDENCE)).not.to.emit(
        escrow,
        "StageCompleted",
      );
      await expect(escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE))
        .to.emit(escrow, "StageCompleted")
        .withArgs(caseId, 0);
    });

    it("reverts once the stage has completed", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithStageZeroCompleted);
      await expect(escrow.connect(parties.buyer).revokeSignOff(caseId, 0, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowStageAlreadyCompleted")
        .withArgs(caseId, 0);
    });

    it("reverts when the role has not signed off", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.buyer).revokeSignOff(caseId, 0, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNotSignedOff")
        .withArgs(caseId, 0, Role.Buyer);
    });

    it("reverts when the caller is not the role's party", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      await expect(escrow.connect(parties.seller).revokeSignOff(caseId, 0, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
        .withArgs(caseId, parties.seller.address, Role.Buyer);
    });

    it("reverts when the stage does not require the role", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.bank).revokeSignOff(caseId, 0, Role.Bank))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowRoleNotRequired")
        .withArgs(caseId, 0, Role.Bank);
    });

    it("reverts when the case has been cancelled", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCancelledCase);
      await expect(escrow.connect(parties.buyer).revokeSignOff(caseId, 0, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnexpectedCaseStatus")
        .withArgs(caseId, CaseStatus.Cancelled, OPEN_ONLY);
    });

    it("reverts for an unknown case", async function () {
      const { escrow, parties } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.buyer).revokeSignOff(7n, 0, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase")
        .withArgs(7n);
    });

    it("reverts after 255 revocations of the same stage and role", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const buyer = escrow.connect(parties.buyer);
      for (let i = 0; i < 255; i++) {
        await buyer.signOff(caseId, 0, Role.Buyer, EVIDENCE);
        await buyer.revokeSignOff(caseId, 0, Role.Buyer);
      }
      expect(await escrow.signOffEpoch(caseId, 0, Role.Buyer)).to.equal(255);
      await buyer.signOff(caseId, 0, Role.Buyer, EVIDENCE);
      await expect(buyer.revokeSignOff(caseId, 0, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowTooManyRevocations")
        .withArgs(caseId, 0, Role.Buyer);
      // The sign-off stands and the other roles' counters are untouched.
      expect((await escrow.stageOf(caseId, 0)).signedOffRoles).to.equal(roles("Buyer"));
      expect(await escrow.signOffEpoch(caseId, 0, Role.Seller)).to.equal(0);
    });
  });

  describe("revokeSignOffWithSignature", function () {
    it("revokes with a signature relayed by anyone", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      const signature = await signRevocation(escrow, parties.buyer, { caseId, stage: 0, role: Role.Buyer, epoch: 0 });
      await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, signature))
        .to.emit(escrow, "SignOffRevoked")
        .withArgs(caseId, 0, Role.Buyer, 1);
      expect((await escrow.stageOf(caseId, 0)).signedOffRoles).to.equal(0);
    });

    it("reverts when the signature names an epoch other than the current one", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      const signature = await signRevocation(escrow, parties.buyer, { caseId, stage: 0, role: Role.Buyer, epoch: 3 });
      await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 3, signature))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowWrongEpoch")
        .withArgs(caseId, 0, Role.Buyer, 3, 0);
    });

    it("cannot replay a revocation after the party signs off again", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      const signature = await signRevocation(escrow, parties.buyer, { caseId, stage: 0, role: Role.Buyer, epoch: 0 });
      await escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, signature);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, signature))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowWrongEpoch")
        .withArgs(caseId, 0, Role.Buyer, 0, 1);
    });

    it("reverts when someone other than the role's party signed", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      const signature = await signRevocation(escrow, parties.seller, { caseId, stage: 0, role: Role.Buyer, epoch: 0 });
      await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, signature))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidSignature")
        .withArgs(0, caseId, 0, Role.Buyer);
    });

    it("reverts when a sign-off signature is presented as a revocation", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");
      await escrow.connect(parties.relayer).signOffWithSignatures([item]);
      await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, item.signature))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidSignature")
        .withArgs(0, caseId, 0, Role.Buyer);
    });

    it("reverts once the stage has completed", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithStageZeroCompleted);
      const signature = await signRevocation(escrow, parties.buyer, { caseId, stage: 0, role: Role.Buyer, epoch: 0 });
      await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, signature))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowStageAlreadyCompleted")
        .withArgs(caseId, 0);
    });

    it("reverts when the role has not signed off", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const signature = await signRevocation(escrow, parties.buyer, { caseId, stage: 0, role: Role.Buyer, epoch: 0 });
      await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, signature))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNotSignedOff")
        .withArgs(caseId, 0, Role.Buyer);
    });

    it("reverts when the case has been cancelled", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCancelledCase);
      const signature = await signRevocation(escrow, parties.buyer, { caseId, stage: 0, role: Role.Buyer, epoch: 0 });
      await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, signature))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnexpectedCaseStatus")
        .withArgs(caseId, CaseStatus.Cancelled, OPEN_ONLY);
    });
  });

  describe("signOffEpoch", function () {
    it("starts at zero and counts revocations per stage and role", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      expect(await escrow.signOffEpoch(caseId, 1, Role.Lawyer)).to.equal(0);
      for (let i = 0; i < 2; i++) {
        await signStage(escrow, parties, caseId, 1, "Lawyer");
        await escrow.connect(parties.lawyer).revokeSignOff(caseId, 1, Role.Lawyer);
      }
      expect(await escrow.signOffEpoch(caseId, 1, Role.Lawyer)).to.equal(2);
      expect(await escrow.signOffEpoch(caseId, 1, Role.Buyer)).to.equal(0);
      expect(await escrow.signOffEpoch(caseId, 3, Role.Lawyer)).to.equal(0);
    });

    it("keeps stages 8 and above apart from stages 0 to 7", async function () {
      const { escrow, parties, usCase } = await loadFixture(deployWithUsCase);
      await signStage(escrow, parties, usCase, 9, "Lawyer");
      await escrow.connect(parties.lawyer).revokeSignOff(usCase, 9, Role.Lawyer);
      expect(await escrow.signOffEpoch(usCase, 9, Role.Lawyer)).to.equal(1);
      expect(await escrow.signOffEpoch(usCase, 1, Role.Lawyer)).to.equal(0);
      expect(await escrow.signOffEpoch(usCase, 8, Role.Lawyer)).to.equal(0);
    });
  });

  describe("signOffDigest", function () {
    it("is the EIP-712 hash of the SignOff message under the MortgageEscrow domain", async function () {
      const { escrow, caseId } = await loadFixture(deployWithCase);
      const { chainId } = await ethers.provider.getNetwork();
      // The engine's typed data (what parties' wallets sign) must hash as the contract does.
      const domain = escrowDomain(chainId, await escrow.getAddress());
      const message = { caseId, stage: 2, role: Role.Bank, epoch: 5, evidence: EVIDENCE };
      expect(await escrow.signOffDigest(caseId, 2, Role.Bank, 5, EVIDENCE)).to.equal(
        ethers.TypedDataEncoder.hash(domain, SIGN_OFF_TYPES, message),
      );
    });
  });

  describe("revocationDigest", function () {
    it("is the EIP-712 hash of the RevokeSignOff message under the MortgageEscrow domain", async function () {
      const { escrow, caseId } = await loadFixture(deployWithCase);
      const { chainId } = await ethers.provider.getNetwork();
      const domain = escrowDomain(chainId, await escrow.getAddress());
      const message = { caseId, stage: 1, role: Role.Lawyer, epoch: 2 };
      expect(await escrow.revocationDigest(caseId, 1, Role.Lawyer, 2)).to.equal(
        ethers.TypedDataEncoder.hash(domain, REVOKE_TYPES, message),
      );
    });
  });
});
