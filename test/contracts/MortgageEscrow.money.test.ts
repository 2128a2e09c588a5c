import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  CaseStatus,
  DAY,
  DEFAULT_TERMS,
  EVIDENCE,
  Role,
  type Terms,
  caseTerms,
  deployWithCase,
  deployWithTemplate,
  deployWithTokenCase,
  fundCase,
  openCase,
  signStage,
  walkSmallPurchaseToRelease,
} from "./fixtures";

const OPEN_ONLY = 1 << CaseStatus.Open;

/**
 * `Withdrawn`'s exact arguments under either version of the interface: the committed one,
 * `(caseId, payee, amount)`, or the one in progress that adds where the money went, `(caseId, payee, to, amount)`.
 */
const { price: PRICE, deposit: DEPOSIT, loan: LOAN } = DEFAULT_TERMS;
const ether = (n: string) => ethers.parseEther(n);

/** SMALL_PURCHASE walked to the release: stages 0-2 complete, stage 3 (registration) open. */
async function deployReleased() {
  const f = await deployWithCase();
  await walkSmallPurchaseToRelease(f.escrow, f.parties, f.caseId);
  await signStage(f.escrow, f.parties, f.caseId, 2, "Lawyer");
  return { ...f, releasedAt: await time.latest() };
}

/** SMALL_PURCHASE with binding stage 1 complete, nothing paid in yet, all of stage 2 signed: it waits for funds. */
async function deployBoundAwaitingFunds() {
  const f = await deployWithCase();
  await signStage(f.escrow, f.parties, f.caseId, 0, "Buyer", "Seller");
  await signStage(f.escrow, f.parties, f.caseId, 1, "Lawyer", "Buyer");
  await time.increase(3 * DAY);
  await f.escrow.advance(f.caseId);
  await signStage(f.escrow, f.parties, f.caseId, 2, "Bank", "Lawyer");
  return f;
}

/** SMALL_PURCHASE with stage 0 complete (not binding) and both shares paid in full. */
async function deployFundedBeforeBinding() {
  const f = await deployWithCase();
  await signStage(f.escrow, f.parties, f.caseId, 0, "Buyer", "Seller");
  await fundCase(f.escrow, f.parties, f.caseId);
  return f;
}

/** Opens a SMALL_PURCHASE case with `terms`, pays `paid`, and signs everything up to the release (exclusive). */
async function releaseWith(terms: Terms, paid: { buyer: bigint; bank: bigint }) {
  const f = await deployWithTemplate();
  const caseId = await openCase(f.escrow, f.parties, f.templateId, terms);
  await signStage(f.escrow, f.parties, caseId, 0, "Buyer", "Seller");
  await signStage(f.escrow, f.parties, caseId, 1, "Lawyer", "Buyer");
  await time.increase(3 * DAY);
  await f.escrow.advance(caseId);
  await f.escrow.connect(f.parties.buyer).deposit(caseId, Role.Buyer, paid.buyer, { value: paid.buyer });
  await f.escrow.connect(f.parties.bank).deposit(caseId, Role.Bank, paid.bank, { value: paid.bank });
  await signStage(f.escrow, f.parties, caseId, 2, "Bank");
  return { ...f, caseId, release: () => f.escrow.connect(f.parties.lawyer).signOff(caseId, 2, Role.Lawyer, EVIDENCE) };
}

const BELOW_SHARES = { price: ether("90"), deposit: ether("20"), loan: ether("80") };

/** Both payers overpay by 5 ether on the default terms. */
function deployOverpaidBeforeRelease() {
  return releaseWith(DEFAULT_TERMS, { buyer: ether("25"), bank: ether("85") });
}

/** The price (90) is below deposit + loan (100); both pay exactly their shares. */
function deployBelowSharesBeforeRelease() {
  return releaseWith(BELOW_SHARES, { buyer: ether("20"), bank: ether("80") });
}

/** The price is below the shares and both payers overpay (buyer by 2, bank by 1). */
function deployBelowSharesOverpaidBeforeRelease() {
  return releaseWith(BELOW_SHARES, { buyer: ether("22"), bank: ether("81") });
}

async function cancelByAll(f: Awaited<ReturnType<typeof deployWithCase>>) {
  const { bank, lawyer, buyer, seller } = f.parties;
  for (const p of [bank, lawyer, buyer]) await f.escrow.connect(p).cancel(f.caseId);
  return f.escrow.connect(seller).cancel(f.caseId);
}

describe("MortgageEscrow money", function () {
  describe("deposit", function () {
    it("takes the buyer's ETH and emits Deposited", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const tx = escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEPOSIT, { value: DEPOSIT });
      await expect(tx).to.emit(escrow, "Deposited").withArgs(caseId, Role.Buyer, parties.buyer.address, DEPOSIT);
      await expect(tx).to.changeEtherBalances([parties.buyer, escrow], [-DEPOSIT, DEPOSIT]);
      expect((await escrow.caseOf(caseId)).paidByBuyer).to.equal(DEPOSIT);
    });

    it("adds up part payments and funds the escrow only when both shares are in full", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await escrow.connect(parties.bank).deposit(caseId, Role.Bank, LOAN, { value: LOAN });
      await expect(
        escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, ether("5"), { value: ether("5") }),
      ).not.to.emit(escrow, "EscrowFunded");
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, ether("15"), { value: ether("15") }))
        .to.emit(escrow, "EscrowFunded")
        .withArgs(caseId);
      const v = await escrow.caseOf(caseId);
      expect([v.funded, v.paidByBuyer, v.paidByBank]).to.deep.equal([true, DEPOSIT, LOAN]);
    });

    it("accepts an overpayment after funding without funding again", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployFundedBeforeBinding);
      await expect(escrow.connect(parties.bank).deposit(caseId, Role.Bank, 7n, { value: 7n }))
        .to.emit(escrow, "Deposited")
        .withArgs(caseId, Role.Bank, parties.bank.address, 7n)
        .and.not.to.emit(escrow, "EscrowFunded");
      expect((await escrow.caseOf(caseId)).paidByBank).to.equal(LOAN + 7n);
    });

    it("completes the releasing stage in the same transaction as the deposit that funds the escrow", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployBoundAwaitingFunds);
      await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEPOSIT, { value: DEPOSIT });
      const tx = escrow.connect(parties.bank).deposit(caseId, Role.Bank, LOAN, { value: LOAN });
      await expect(tx).to.emit(escrow, "EscrowFunded").withArgs(caseId);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 2);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.seller.address, PRICE);
      expect((await escrow.caseOf(caseId)).released).to.equal(true);
    });

    it("takes an ERC-20 deposit by transferFrom and counts what arrived", async function () {
      const { escrow, parties, caseId, token } = await loadFixture(deployWithTokenCase);
      const tx = escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEPOSIT);
      await expect(tx).to.emit(escrow, "Deposited").withArgs(caseId, Role.Buyer, parties.buyer.address, DEPOSIT);
      await expect(tx).to.changeTokenBalances(token, [parties.buyer, escrow], [-DEPOSIT, DEPOSIT]);
    });

    it("reverts when ETH is sent with an ERC-20 deposit", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithTokenCase);
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEPOSIT, { value: 1n }))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidDeposit")
        .withArgs(DEPOSIT, 1n);
    });

    it("reverts when an ERC-20 payer's running total overflows 128 bits", async function () {
      const { escrow, parties, caseId, token } = await loadFixture(deployWithTokenCase);
      const huge = 2n ** 128n;
      await token.mint(parties.buyer.address, huge);
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, huge))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowAmountTooLarge")
        .withArgs(huge, 2n ** 128n - 1n);
    });

    it("reverts when the amount is zero", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, 0n))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidDeposit")
        .withArgs(0n, 0n);
    });

    it("reverts when the ETH sent does not match the amount", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, 10n, { value: 9n }))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidDeposit")
        .withArgs(10n, 9n);
    });

    it("reverts when the lawyer or the seller tries to pay in", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.lawyer).deposit(caseId, Role.Lawyer, 1n, { value: 1n }))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNotAPayer")
        .withArgs(Role.Lawyer);
      await expect(escrow.connect(parties.seller).deposit(caseId, Role.Seller, 1n, { value: 1n }))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNotAPayer")
        .withArgs(Role.Seller);
    });

    it("reverts when the caller is not the payer's party", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.bank).deposit(caseId, Role.Buyer, 1n, { value: 1n }))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
        .withArgs(caseId, parties.bank.address, Role.Buyer);
    });

    it("reverts after the release", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, 1n, { value: 1n }))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowAlreadyReleased")
        .withArgs(caseId);
    });

    it("reverts on an expired case", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await time.increase(61 * DAY);
      await escrow.expire(caseId);
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, 1n, { value: 1n }))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnexpectedCaseStatus")
        .withArgs(caseId, CaseStatus.Expired, OPEN_ONLY);
    });

    it("reverts for an unknown case", async function () {
      const { escrow, parties } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.buyer).deposit(3n, Role.Buyer, 1n, { value: 1n }))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase")
        .withArgs(3n);
    });

    it("reverts while paused", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await escrow.connect(parties.admin).pause();
      await expect(
        escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, 1n, { value: 1n }),
      ).to.be.revertedWithCustomError(escrow, "MortgageEscrowPaused");
    });
  });

  describe("creditOf", function () {
    it("is zero before the release and the price for the seller after it", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(0n);
      await walkSmallPurchaseToRelease(escrow, parties, caseId);
      await signStage(escrow, parties, caseId, 2, "Lawyer");
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(PRICE);
      expect(await escrow.creditOf(caseId, parties.buyer.address)).to.equal(0n);
      expect(await escrow.creditOf(caseId, parties.bank.address)).to.equal(0n);
    });

    it("credits each payer its overpayment at the release", async function () {
      const { escrow, parties, caseId, release } = await loadFixture(deployOverpaidBeforeRelease);
      const tx = release();
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.seller.address, PRICE);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.buyer.address, ether("5"));
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.bank.address, ether("5"));
      expect(await escrow.creditOf(caseId, parties.buyer.address)).to.equal(ether("5"));
      expect(await escrow.creditOf(caseId, parties.bank.address)).to.equal(ether("5"));
    });

    it("credits the buyer deposit plus loan minus price when the price is below the two shares", async function () {
      const { escrow, parties, caseId, release } = await loadFixture(deployBelowSharesBeforeRelease);
      const tx = release();
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.seller.address, ether("90"));
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.buyer.address, ether("10"));
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(ether("90"));
      expect(await escrow.creditOf(caseId, parties.buyer.address)).to.equal(ether("10"));
      expect(await escrow.creditOf(caseId, parties.bank.address)).to.equal(0n);
    });

    it("adds the buyer's overpayment to its rest of the shares and pays out every wei paid in", async function () {
      const { escrow, parties, caseId, release } = await loadFixture(deployBelowSharesOverpaidBeforeRelease);
      await release();
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(ether("90"));
      expect(await escrow.creditOf(caseId, parties.buyer.address)).to.equal(ether("12"));
      expect(await escrow.creditOf(caseId, parties.bank.address)).to.equal(ether("1"));
      for (const p of [parties.seller, parties.buyer, parties.bank]) await escrow.withdrawFor(caseId, p.address);
      expect(await ethers.provider.getBalance(await escrow.getAddress())).to.equal(0n);
    });

    it("keeps credits per case", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(PRICE);
      expect(await escrow.creditOf(caseId + 1n, parties.seller.address)).to.equal(0n);
    });
  });

  describe("expire", function () {
    it("reverts when no deadline has passed", async function () {
      const { escrow, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.expire(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToExpire")
        .withArgs(caseId);
    });

    it("reverts at the very second of the deadline and expires the case one second later", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const { openedAt } = await escrow.caseOf(caseId);
      await time.setNextBlockTimestamp(Number(openedAt) + 60 * DAY);
      await expect(escrow.expire(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToExpire")
        .withArgs(caseId);
      await time.setNextBlockTimestamp(Number(openedAt) + 60 * DAY + 1);
      await expect(escrow.connect(parties.stranger).expire(caseId)).to.emit(escrow, "CaseExpired").withArgs(caseId, 2);
      expect((await escrow.caseOf(caseId)).status).to.equal(CaseStatus.Expired);
    });

    it("credits every deposit back to its payer before a binding stage, moving no ETH itself", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployFundedBeforeBinding);
      await time.increase(61 * DAY);
      const tx = escrow.expire(caseId);
      await expect(tx).to.emit(escrow, "CaseExpired").withArgs(caseId, 2);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.bank.address, LOAN);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.buyer.address, DEPOSIT);
      await expect(tx).to.changeEtherBalance(escrow, 0n);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(0n);
    });

    it("credits the buyer's deposit up to its share to the seller after a binding stage", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployBoundAwaitingFunds);
      await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, ether("25"), { value: ether("25") });
      await escrow.connect(parties.bank).deposit(caseId, Role.Bank, ether("30"), { value: ether("30") });
      await time.increase(61 * DAY);
      const tx = escrow.expire(caseId);
      await expect(tx).to.emit(escrow, "CaseExpired").withArgs(caseId, 2);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.seller.address, DEPOSIT);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.buyer.address, ether("5"));
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.bank.address, ether("30"));
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(DEPOSIT);
    });

    it("credits the seller only what the buyer paid when it paid less than its share", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployBoundAwaitingFunds);
      await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, ether("8"), { value: ether("8") });
      await time.increase(61 * DAY);
      await expect(escrow.expire(caseId))
        .to.emit(escrow, "Credited")
        .withArgs(caseId, parties.seller.address, ether("8"));
      expect(await escrow.creditOf(caseId, parties.buyer.address)).to.equal(0n);
      expect(await escrow.creditOf(caseId, parties.bank.address)).to.equal(0n);
    });

    it("marks a stage overdue after the release, from its anchor stage's completion, and moves no money", async function () {
      const { escrow, parties, caseId, releasedAt } = await loadFixture(deployReleased);
      await time.setNextBlockTimestamp(releasedAt + 14 * DAY);
      await expect(escrow.expire(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToExpire")
        .withArgs(caseId);
      await time.setNextBlockTimestamp(releasedAt + 14 * DAY + 1);
      const tx = escrow.expire(caseId);
      await expect(tx).to.emit(escrow, "StageOverdue").withArgs(caseId, 3);
      await expect(tx).not.to.emit(escrow, "CaseExpired");
      await expect(tx).not.to.emit(escrow, "Credited");
      await expect(tx).to.changeEtherBalance(escrow, 0n);
      const v = await escrow.caseOf(caseId);
      expect([v.status, v.overdueStages]).to.deep.equal([BigInt(CaseStatus.Open), 1n << 3n]);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(PRICE);
    });

    it("reverts a second time for a stage already marked overdue, which can still complete", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      await time.increase(15 * DAY);
      await escrow.expire(caseId);
      await expect(escrow.expire(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToExpire")
        .withArgs(caseId);
      const tx = escrow.connect(parties.lawyer).signOff(caseId, 3, Role.Lawyer, EVIDENCE);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 3);
      await expect(tx).to.emit(escrow, "CaseCompleted").withArgs(caseId);
    });

    it("reverts on a case that has already expired", async function () {
      const { escrow, caseId } = await loadFixture(deployWithCase);
      await time.increase(61 * DAY);
      await escrow.expire(caseId);
      await expect(escrow.expire(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnexpectedCaseStatus")
        .withArgs(caseId, CaseStatus.Expired, OPEN_ONLY);
    });

    it("reverts for an unknown case", async function () {
      const { escrow } = await loadFixture(deployWithCase);
      await expect(escrow.expire(8n)).to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase").withArgs(8n);
    });
  });

  describe("cancel", function () {
    it("records each party's vote without cancelling until the last", async function () {
      const f = await loadFixture(deployWithCase);
      const { escrow, parties, caseId } = f;
      await expect(escrow.connect(parties.buyer).cancel(caseId))
        .to.emit(escrow, "CancellationVoted")
        .withArgs(caseId, Role.Buyer)
        .and.not.to.emit(escrow, "CaseCancelled");
      await escrow.connect(parties.bank).cancel(caseId);
      const v = await escrow.caseOf(caseId);
      expect([v.status, v.cancelVotes]).to.deep.equal([
        BigInt(CaseStatus.Open),
        BigInt((1 << Role.Buyer) | (1 << Role.Bank)),
      ]);
    });

    it("cancels on the last vote and credits every deposit back", async function () {
      const f = await loadFixture(deployFundedBeforeBinding);
      const { escrow, parties, caseId } = f;
      const tx = cancelByAll(f);
      await expect(tx).to.emit(escrow, "CancellationVoted").withArgs(caseId, Role.Seller);
      await expect(tx).to.emit(escrow, "CaseCancelled").withArgs(caseId);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.bank.address, LOAN);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.buyer.address, DEPOSIT);
      expect((await escrow.caseOf(caseId)).status).to.equal(CaseStatus.Cancelled);
      await expect(escrow.connect(parties.buyer).withdraw(caseId)).to.changeEtherBalances(
        [parties.buyer, escrow],
        [DEPOSIT, -DEPOSIT],
      );
    });

    it("pays the buyer's deposit to the seller when cancelled after a binding stage", async function () {
      const f = await loadFixture(deployBoundAwaitingFunds);
      const { escrow, parties, caseId } = f;
      await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEPOSIT, { value: DEPOSIT });
      const tx = cancelByAll(f);
      await expect(tx).to.emit(escrow, "Credited").withArgs(caseId, parties.seller.address, DEPOSIT);
      expect(await escrow.creditOf(caseId, parties.buyer.address)).to.equal(0n);
    });

    it("counts one call as a vote for every role the caller holds", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithTemplate);
      const terms = { ...caseTerms(parties, templateId), seller: parties.lawyer.address };
      await escrow.connect(parties.bank).openCase(terms);
      const caseId = await escrow.caseCount();
      const tx = escrow.connect(parties.lawyer).cancel(caseId);
      await expect(tx).to.emit(escrow, "CancellationVoted").withArgs(caseId, Role.Lawyer);
      await expect(tx).to.emit(escrow, "CancellationVoted").withArgs(caseId, Role.Seller);
      expect((await escrow.caseOf(caseId)).cancelVotes).to.equal((1 << Role.Lawyer) | (1 << Role.Seller));
      await escrow.connect(parties.bank).cancel(caseId);
      await expect(escrow.connect(parties.buyer).cancel(caseId)).to.emit(escrow, "CaseCancelled").withArgs(caseId);
    });

    it("reverts when the caller has already voted", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await escrow.connect(parties.lawyer).cancel(caseId);
      await expect(escrow.connect(parties.lawyer).cancel(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowAlreadyVoted")
        .withArgs(caseId, parties.lawyer.address);
    });

    it("reverts when the caller is not a party", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.stranger).cancel(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNotAParty")
        .withArgs(caseId, parties.stranger.address);
    });

    it("reverts after the release", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      await expect(escrow.connect(parties.buyer).cancel(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowAlreadyReleased")
        .withArgs(caseId);
    });

    it("reverts on a case that has been cancelled", async function () {
      const f = await loadFixture(deployWithCase);
      await cancelByAll(f);
      await expect(f.escrow.connect(f.parties.buyer).cancel(f.caseId))
        .to.be.revertedWithCustomError(f.escrow, "MortgageEscrowUnexpectedCaseStatus")
        .withArgs(f.caseId, CaseStatus.Cancelled, OPEN_ONLY);
    });

    it("reverts for an unknown case", async function () {
      const { escrow, parties } = await loadFixture(deployWithCase);
      await expect(escrow.connect(parties.buyer).cancel(4n))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase")
        .withArgs(4n);
    });
  });

  describe("withdraw", function () {
    it("pays the caller its whole credit and emits Withdrawn", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      const tx = escrow.connect(parties.seller).withdraw(caseId);
      await expect(tx)
        .to.emit(escrow, "Withdrawn")
        .withArgs(caseId, parties.seller.address, parties.seller.address, PRICE);
      await expect(tx).to.changeEtherBalances([parties.seller, escrow], [PRICE, -PRICE]);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(0n);
    });

    it("reverts when the caller has nothing to withdraw, including a second time", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      await expect(escrow.connect(parties.buyer).withdraw(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToWithdraw")
        .withArgs(caseId, parties.buyer.address);
      await escrow.connect(parties.seller).withdraw(caseId);
      await expect(escrow.connect(parties.seller).withdraw(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToWithdraw")
        .withArgs(caseId, parties.seller.address);
    });

    it("pays out an ERC-20 credit in the case's token", async function () {
      const { escrow, parties, caseId, token } = await loadFixture(deployWithTokenCase);
      await signStage(escrow, parties, caseId, 0, "Buyer", "Seller");
      await signStage(escrow, parties, caseId, 1, "Lawyer", "Buyer");
      await time.increase(3 * DAY);
      await escrow.advance(caseId);
      await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEPOSIT);
      await escrow.connect(parties.bank).deposit(caseId, Role.Bank, LOAN);
      await signStage(escrow, parties, caseId, 2, "Bank", "Lawyer");
      const tx = escrow.connect(parties.seller).withdraw(caseId);
      await expect(tx)
        .to.emit(escrow, "Withdrawn")
        .withArgs(caseId, parties.seller.address, parties.seller.address, PRICE);
      await expect(tx).to.changeTokenBalances(token, [parties.seller, escrow], [PRICE, -PRICE]);
    });

    it("refunds an ERC-20 deposit after the case expires", async function () {
      const { escrow, parties, caseId, token } = await loadFixture(deployWithTokenCase);
      await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEPOSIT);
      await time.increase(61 * DAY);
      await escrow.expire(caseId);
      await expect(escrow.connect(parties.buyer).withdraw(caseId)).to.changeTokenBalances(
        token,
        [parties.buyer, escrow],
        [DEPOSIT, -DEPOSIT],
      );
    });
  });

  describe("withdrawTo", function () {
    it("pays the caller's whole credit to the address it names", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      const tx = escrow.connect(parties.seller).withdrawTo(caseId, parties.stranger.address);
      await expect(tx)
        .to.emit(escrow, "Withdrawn")
        .withArgs(caseId, parties.seller.address, parties.stranger.address, PRICE);
      await expect(tx).to.changeEtherBalances([parties.stranger, parties.seller, escrow], [PRICE, 0n, -PRICE]);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(0n);
    });

    it("reverts when the recipient is the zero address, where the money would be lost", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      await expect(escrow.connect(parties.seller).withdrawTo(caseId, ethers.ZeroAddress)).to.be.revertedWithCustomError(
        escrow,
        "MortgageEscrowZeroRecipient",
      );
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(PRICE);
    });

    it("reverts when the recipient is the escrow itself, where the ETH would be credited to no one", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      const self = await escrow.getAddress();
      await expect(escrow.connect(parties.seller).withdrawTo(caseId, self))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidRecipient")
        .withArgs(caseId, self);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(PRICE);
    });

    it("reverts when the recipient is the case's token contract, where the tokens would be lost", async function () {
      const { escrow, parties, caseId, token } = await loadFixture(deployWithTokenCase);
      await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEPOSIT);
      for (const p of [parties.bank, parties.lawyer, parties.buyer, parties.seller])
        await escrow.connect(p).cancel(caseId);
      const tokenAddress = await token.getAddress();

      await expect(escrow.connect(parties.buyer).withdrawTo(caseId, tokenAddress))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidRecipient")
        .withArgs(caseId, tokenAddress);
      expect(await escrow.creditOf(caseId, parties.buyer.address)).to.equal(DEPOSIT);
      expect(await token.balanceOf(await escrow.getAddress())).to.equal(DEPOSIT);
    });

    it("reverts when the caller has nothing to withdraw", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      await expect(escrow.connect(parties.stranger).withdrawTo(caseId, parties.stranger.address))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToWithdraw")
        .withArgs(caseId, parties.stranger.address);
    });
  });

  describe("withdrawFor", function () {
    it("pays the payee, not the caller", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      const tx = escrow.connect(parties.stranger).withdrawFor(caseId, parties.seller.address);
      await expect(tx)
        .to.emit(escrow, "Withdrawn")
        .withArgs(caseId, parties.seller.address, parties.seller.address, PRICE);
      await expect(tx).to.changeEtherBalances([parties.seller, parties.stranger, escrow], [PRICE, 0n, -PRICE]);
    });

    it("reverts when the payee has nothing to withdraw", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployReleased);
      await expect(escrow.connect(parties.seller).withdrawFor(caseId, parties.stranger.address))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToWithdraw")
        .withArgs(caseId, parties.stranger.address);
    });
  });
});
