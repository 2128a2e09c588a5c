import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  CaseStatus,
  DEFAULT_TERMS,
  SMALL_PURCHASE,
  caseTerms,
  deployWithCase,
  deployWithTemplate,
  deployWithTokenCase,
  roles,
  templateIdOf,
} from "./fixtures";

describe("MortgageEscrow cases", function () {
  describe("openCase", function () {
    it("opens a case as its bank and numbers cases from 1", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      const terms = caseTerms(parties, templateId);
      expect(await escrow.connect(parties.bank).openCase.staticCall(terms)).to.equal(1n);
      await escrow.connect(parties.bank).openCase(terms);
      expect(await escrow.connect(parties.bank).openCase.staticCall(terms)).to.equal(2n);
    });

    it("emits CaseOpened with the case id and the terms", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      const terms = caseTerms(parties, templateId);
      await expect(escrow.connect(parties.bank).openCase(terms))
        .to.emit(escrow, "CaseOpened")
        .withArgs(1n, [
          templateId,
          parties.bank.address,
          parties.lawyer.address,
          parties.buyer.address,
          parties.seller.address,
          ethers.ZeroAddress,
          DEFAULT_TERMS.price,
          DEFAULT_TERMS.deposit,
          DEFAULT_TERMS.loan,
        ]);
    });

    it("lets the operator open a case for a bank", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      const terms = caseTerms(parties, templateId);
      await expect(escrow.connect(parties.admin).openCase(terms))
        .to.emit(escrow, "CaseOpened")
        .withArgs(1n, Object.values(terms));
      expect((await escrow.caseOf(1n)).parties[0]).to.equal(parties.bank.address);
    });

    it("accepts a price equal to deposit plus loan", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      const terms = caseTerms(parties, templateId, { price: 100n, deposit: 40n, loan: 60n });
      await expect(escrow.connect(parties.bank).openCase(terms))
        .to.emit(escrow, "CaseOpened")
        .withArgs(1n, Object.values(terms));
    });

    it("opens a case with nothing to pay in as already funded", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      await escrow.connect(parties.bank).openCase(caseTerms(parties, templateId, { price: 0n, deposit: 0n, loan: 0n }));
      expect((await escrow.caseOf(1n)).funded).to.equal(true);
    });

    it("opens a remortgage with a zero deposit as not yet funded", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      await escrow
        .connect(parties.bank)
        .openCase(caseTerms(parties, templateId, { price: 50n, deposit: 0n, loan: 50n }));
      expect((await escrow.caseOf(1n)).funded).to.equal(false);
    });

    it("reverts when someone other than the case's bank or the operator opens it", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      await expect(escrow.connect(parties.lawyer).openCase(caseTerms(parties, templateId)))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedOpener")
        .withArgs(parties.lawyer.address);
    });

    it("reverts when the template is not registered", async function () {
      const { escrow, parties } = await loadFixture(deployWithTemplate);
      const unknown = templateIdOf(ethers.id("never registered"), SMALL_PURCHASE);
      await expect(escrow.connect(parties.bank).openCase(caseTerms(parties, unknown)))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownTemplate")
        .withArgs(unknown);
    });

    for (const [index, field] of (["bank", "lawyer", "buyer", "seller"] as const).entries()) {
      it(`reverts when the ${field} is the zero address`, async function () {
        const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
        const terms = { ...caseTerms(parties, templateId), [field]: ethers.ZeroAddress };
        await expect(escrow.connect(parties.admin).openCase(terms))
          .to.be.revertedWithCustomError(escrow, "MortgageEscrowZeroParty")
          .withArgs(index);
      });
    }

    it("reverts when the price exceeds deposit plus loan", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      const terms = caseTerms(parties, templateId, { price: 101n, deposit: 40n, loan: 60n });
      await expect(escrow.connect(parties.bank).openCase(terms))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowPriceExceedsShares")
        .withArgs(101n, 40n, 60n);
    });

    it("reverts while paused, even for the operator", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      await escrow.connect(parties.admin).pause();
      await expect(
        escrow.connect(parties.admin).openCase(caseTerms(parties, templateId)),
      ).to.be.revertedWithCustomError(escrow, "MortgageEscrowPaused");
      await expect(escrow.connect(parties.bank).openCase(caseTerms(parties, templateId))).to.be.revertedWithCustomError(
        escrow,
        "MortgageEscrowPaused",
      );
    });
  });

  describe("caseOf", function () {
    it("returns the whole state of a newly opened case", async function () {
      const { escrow, parties, templateId, caseId } = await loadFixture(deployWithCase);
      const v = await escrow.caseOf(caseId);
      expect(v.templateId).to.equal(templateId);
      expect(v.status).to.equal(CaseStatus.Open);
      expect(v.released).to.equal(false);
      expect(v.funded).to.equal(false);
      expect(v.stageCount).to.equal(4);
      expect(v.completedStages).to.equal(0);
      expect(v.overdueStages).to.equal(0);
      expect(v.cancelVotes).to.equal(0);
      const required = SMALL_PURCHASE.reduce((mask, r, i) => mask | (BigInt(r.roles) << BigInt(4 * i)), 0n);
      expect(v.requiredRoles).to.equal(required);
      expect(v.requiredRoles).to.equal(
        BigInt(roles("Buyer", "Seller")) |
          (BigInt(roles("Lawyer", "Buyer")) << 4n) |
          (BigInt(roles("Bank", "Lawyer")) << 8n) |
          (BigInt(roles("Lawyer")) << 12n),
      );
      expect(v.signedOffRoles).to.equal(0);
      expect(v.openedAt).to.equal(await time.latest());
      expect([...v.parties]).to.deep.equal([
        parties.bank.address,
        parties.lawyer.address,
        parties.buyer.address,
        parties.seller.address,
      ]);
      expect(v.asset).to.equal(ethers.ZeroAddress);
      expect(v.price).to.equal(DEFAULT_TERMS.price);
      expect(v.deposit).to.equal(DEFAULT_TERMS.deposit);
      expect(v.loan).to.equal(DEFAULT_TERMS.loan);
      expect(v.paidByBank).to.equal(0);
      expect(v.paidByBuyer).to.equal(0);
    });

    it("returns the token of an ERC-20 case", async function () {
      const { escrow, caseId, token } = await loadFixture(deployWithTokenCase);
      expect((await escrow.caseOf(caseId)).asset).to.equal(await token.getAddress());
    });

    it("reverts for case 0 and for a case id beyond the last", async function () {
      const { escrow, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.caseOf(0n)).to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase").withArgs(0n);
      await expect(escrow.caseOf(caseId + 1n))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase")
        .withArgs(caseId + 1n);
    });
  });

  describe("caseCount", function () {
    it("counts the cases opened", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      expect(await escrow.caseCount()).to.equal(0n);
      await escrow.connect(parties.bank).openCase(caseTerms(parties, templateId));
      await escrow.connect(parties.admin).openCase(caseTerms(parties, templateId));
      expect(await escrow.caseCount()).to.equal(2n);
    });

    it("does not count a case whose opening reverted", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      await expect(escrow.connect(parties.stranger).openCase(caseTerms(parties, templateId)))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedOpener")
        .withArgs(parties.stranger.address);
      expect(await escrow.caseCount()).to.equal(0n);
    });
  });
});
