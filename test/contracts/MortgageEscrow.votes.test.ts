import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  CaseStatus,
  DAY,
  DEFAULT_TERMS,
  Role,
  caseTerms,
  deployWithCase,
  deployWithTemplate,
  signStage,
} from "./fixtures";

/**
 * Cancel votes (finding 6 of issue 10): a party may take its vote back, and a vote cast before a binding stage
 * (when cancelling refunded the buyer) does not count after it (when cancelling pays the buyer's deposit to
 * the seller). SMALL_PURCHASE's stage 1 (exchange) is binding.
 */

const OPEN_ONLY = 1 << CaseStatus.Open;

/** The seller voted to cancel while stage 0 was open; the buyer has paid its deposit. */
async function deployWithEarlySellerVote() {
  const f = await deployWithCase();
  await f.escrow.connect(f.parties.seller).cancel(f.caseId);
  await f.escrow
    .connect(f.parties.buyer)
    .deposit(f.caseId, Role.Buyer, DEFAULT_TERMS.deposit, { value: DEFAULT_TERMS.deposit });
  return f;
}

/** Completes SMALL_PURCHASE's stages 0 and then 1 (binding, three days after 0) by the parties' sign-offs. */
async function completeExchange(f: Awaited<ReturnType<typeof deployWithCase>>) {
  await signStage(f.escrow, f.parties, f.caseId, 0, "Buyer", "Seller");
  await time.increase(3 * DAY);
  await signStage(f.escrow, f.parties, f.caseId, 1, "Lawyer");
  return f.escrow.connect(f.parties.buyer).signOff(f.caseId, 1, Role.Buyer, "0x" + "11".repeat(32));
}

describe("MortgageEscrow cancel votes", function () {
  describe("a binding stage's completion", function () {
    it("clears the votes cast before it, emitting CancellationVotesCleared", async function () {
      const f = await loadFixture(deployWithEarlySellerVote);
      const tx = completeExchange(f);

      await expect(tx).to.emit(f.escrow, "StageCompleted").withArgs(f.caseId, 1);
      await expect(tx).to.emit(f.escrow, "CancellationVotesCleared").withArgs(f.caseId, 1);
      expect((await f.escrow.caseOf(f.caseId)).cancelVotes).to.equal(0n);
    });

    it("does not let a vote cast before it count toward a cancellation that pays the buyer's deposit to the seller", async function () {
      const f = await loadFixture(deployWithEarlySellerVote);
      await completeExchange(f);
      for (const p of [f.parties.bank, f.parties.lawyer, f.parties.buyer]) await f.escrow.connect(p).cancel(f.caseId);

      const v = await f.escrow.caseOf(f.caseId);
      expect([v.status, v.cancelVotes]).to.deep.equal([
        BigInt(CaseStatus.Open),
        BigInt((1 << Role.Bank) | (1 << Role.Lawyer) | (1 << Role.Buyer)),
      ]);
      expect(await f.escrow.creditOf(f.caseId, f.parties.seller.address)).to.equal(0n);
      // The seller must vote again, after the binding stage, for the cancellation to happen.
      await expect(f.escrow.connect(f.parties.seller).cancel(f.caseId))
        .to.emit(f.escrow, "CaseCancelled")
        .withArgs(f.caseId)
        .and.to.emit(f.escrow, "Credited")
        .withArgs(f.caseId, f.parties.seller.address, DEFAULT_TERMS.deposit);
    });

    it("emits no CancellationVotesCleared when no vote stood", async function () {
      const f = await loadFixture(deployWithCase);
      await expect(completeExchange(f))
        .to.emit(f.escrow, "StageCompleted")
        .withArgs(f.caseId, 1)
        .and.not.to.emit(f.escrow, "CancellationVotesCleared");
    });

    it("leaves the votes when a stage that is not binding completes", async function () {
      const f = await loadFixture(deployWithEarlySellerVote);
      await expect(signStage(f.escrow, f.parties, f.caseId, 0, "Buyer", "Seller")).not.to.be.reverted;
      expect((await f.escrow.caseOf(f.caseId)).cancelVotes).to.equal(BigInt(1 << Role.Seller));
    });
  });

  describe("withdrawCancelVote", function () {
    it("withdraws the caller's vote, emitting CancellationVoteWithdrawn, so that the others' votes no longer cancel", async function () {
      const f = await loadFixture(deployWithEarlySellerVote);
      await expect(f.escrow.connect(f.parties.seller).withdrawCancelVote(f.caseId))
        .to.emit(f.escrow, "CancellationVoteWithdrawn")
        .withArgs(f.caseId, Role.Seller);
      for (const p of [f.parties.bank, f.parties.lawyer, f.parties.buyer]) await f.escrow.connect(p).cancel(f.caseId);

      const v = await f.escrow.caseOf(f.caseId);
      expect([v.status, v.cancelVotes]).to.deep.equal([
        BigInt(CaseStatus.Open),
        BigInt((1 << Role.Bank) | (1 << Role.Lawyer) | (1 << Role.Buyer)),
      ]);
    });

    it("lets the party vote again after withdrawing", async function () {
      const f = await loadFixture(deployWithEarlySellerVote);
      await f.escrow.connect(f.parties.seller).withdrawCancelVote(f.caseId);
      await expect(f.escrow.connect(f.parties.seller).cancel(f.caseId))
        .to.emit(f.escrow, "CancellationVoted")
        .withArgs(f.caseId, Role.Seller);
    });

    it("withdraws the vote of every role the caller holds, and only those", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      await escrow
        .connect(parties.bank)
        .openCase({ ...caseTerms(parties, templateId), seller: parties.lawyer.address });
      const caseId = await escrow.caseCount();
      await escrow.connect(parties.lawyer).cancel(caseId);
      await escrow.connect(parties.bank).cancel(caseId);

      const tx = escrow.connect(parties.lawyer).withdrawCancelVote(caseId);
      await expect(tx).to.emit(escrow, "CancellationVoteWithdrawn").withArgs(caseId, Role.Lawyer);
      await expect(tx).to.emit(escrow, "CancellationVoteWithdrawn").withArgs(caseId, Role.Seller);
      expect((await escrow.caseOf(caseId)).cancelVotes).to.equal(BigInt(1 << Role.Bank));
    });

    it("reverts with NotVoted when none of the caller's roles has a vote standing", async function () {
      const f = await loadFixture(deployWithEarlySellerVote);
      await expect(f.escrow.connect(f.parties.buyer).withdrawCancelVote(f.caseId))
        .to.be.revertedWithCustomError(f.escrow, "MortgageEscrowNotVoted")
        .withArgs(f.caseId, f.parties.buyer.address);
    });

    it("reverts with NotAParty for a stranger", async function () {
      const f = await loadFixture(deployWithEarlySellerVote);
      await expect(f.escrow.connect(f.parties.stranger).withdrawCancelVote(f.caseId))
        .to.be.revertedWithCustomError(f.escrow, "MortgageEscrowNotAParty")
        .withArgs(f.caseId, f.parties.stranger.address);
    });

    it("reverts once the case is cancelled", async function () {
      const f = await loadFixture(deployWithEarlySellerVote);
      for (const p of [f.parties.bank, f.parties.lawyer, f.parties.buyer]) await f.escrow.connect(p).cancel(f.caseId);
      await expect(f.escrow.connect(f.parties.seller).withdrawCancelVote(f.caseId))
        .to.be.revertedWithCustomError(f.escrow, "MortgageEscrowUnexpectedCaseStatus")
        .withArgs(f.caseId, CaseStatus.Cancelled, OPEN_ONLY);
    });

    it("reverts for an unknown case", async function () {
      const f = await loadFixture(deployWithCase);
      await expect(f.escrow.connect(f.parties.seller).withdrawCancelVote(9n))
        .to.be.revertedWithCustomError(f.escrow, "MortgageEscrowUnknownCase")
        .withArgs(9n);
    });
  });
});
