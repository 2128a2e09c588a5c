import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { CaseStatus, DAY, DEFAULT_TERMS, EVIDENCE, Role, deployWithCase, signedItem } from "./fixtures";

describe("MortgageEscrow smoke", function () {
  it("walks the small purchase to completion and pays the seller", async function () {
    const { escrow, parties, caseId } = await loadFixture(deployWithCase);
    const { bank, lawyer, buyer, seller } = parties;
    await escrow.connect(buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE);
    await expect(escrow.connect(seller).signOff(caseId, 0, Role.Seller, EVIDENCE))
      .to.emit(escrow, "StageCompleted")
      .withArgs(caseId, 0);
    const items = [
      await signedItem(escrow, parties, caseId, 1, "Lawyer"),
      await signedItem(escrow, parties, caseId, 1, "Buyer"),
    ];
    await escrow.connect(parties.relayer).signOffWithSignatures(items);
    await expect(escrow.advance(caseId)).to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToAdvance");
    await time.increase(3 * DAY);
    await expect(escrow.advance(caseId)).to.emit(escrow, "StageCompleted").withArgs(caseId, 1);
    await escrow.connect(buyer).deposit(caseId, Role.Buyer, DEFAULT_TERMS.deposit, { value: DEFAULT_TERMS.deposit });
    await escrow.connect(bank).deposit(caseId, Role.Bank, DEFAULT_TERMS.loan, { value: DEFAULT_TERMS.loan });
    await escrow.connect(bank).signOff(caseId, 2, Role.Bank, EVIDENCE);
    await expect(escrow.connect(lawyer).signOff(caseId, 2, Role.Lawyer, EVIDENCE))
      .to.emit(escrow, "Credited")
      .withArgs(caseId, seller.address, DEFAULT_TERMS.price);
    await expect(escrow.connect(lawyer).signOff(caseId, 3, Role.Lawyer, EVIDENCE))
      .to.emit(escrow, "CaseCompleted")
      .withArgs(caseId);
    expect((await escrow.caseOf(caseId)).status).to.equal(CaseStatus.Completed);
    await expect(escrow.withdrawFor(caseId, seller.address)).to.changeEtherBalance(seller, DEFAULT_TERMS.price);
    expect(await ethers.provider.getBalance(await escrow.getAddress())).to.equal(0n);
  });
});
