import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Interface } from "ethers";
import type { MortgageEscrow, ReentrantPayee } from "../../typechain-types";
import {
  AmendmentKind,
  CaseStatus,
  DAY,
  DEFAULT_TERMS,
  EVIDENCE,
  Role,
  SMALL_PURCHASE,
  getParties,
  proposal,
  registerTemplate,
  type Terms,
} from "./fixtures";
import {
  type CaseParties,
  cancelAll,
  completeExchange,
  depositAs,
  expectSolvent,
  openCaseWith,
  proxyActor,
  send,
  signOffAs,
  walkToRelease,
} from "./attacks.helpers";

/** price < deposit + loan, so the buyer is owed the difference at release as well as the seller the price. */
const TERMS: Terms = {
  price: ethers.parseEther("90"),
  deposit: ethers.parseEther("20"),
  loan: ethers.parseEther("80"),
};
const BUYER_REST = TERMS.deposit + TERMS.loan - TERMS.price;

async function deployWithContractParties() {
  const signers = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [signers.admin.address]);
  const templateId = await registerTemplate(escrow, signers.admin, SMALL_PURCHASE);
  // Each malicious party is owned (and driven) by the EOA that would otherwise hold its role.
  const sellerPayee = await ethers.deployContract("ReentrantPayee", [], {
    signer: signers.seller,
    value: ethers.parseEther("10"),
  });
  const buyerPayee = await ethers.deployContract("ReentrantPayee", [], {
    signer: signers.buyer,
    value: ethers.parseEther("10"),
  });
  const base: CaseParties = {
    Bank: signers.bank,
    Lawyer: signers.lawyer,
    Buyer: signers.buyer,
    Seller: signers.seller,
  };
  const withSeller: CaseParties = { ...base, Seller: await proxyActor(sellerPayee) };
  const withBuyer: CaseParties = { ...base, Buyer: await proxyActor(buyerPayee) };
  return { escrow, templateId, signers, sellerPayee, buyerPayee, base, withSeller, withBuyer };
}

/** The revert data of OpenZeppelin's re-entrancy guard, as the payee records it. */
function reentrantCallError(escrow: MortgageEscrow): string {
  return escrow.interface.encodeErrorResult("ReentrancyGuardReentrantCall", []);
}

async function arm(
  payee: ReentrantPayee,
  escrow: MortgageEscrow,
  fn: string,
  args: unknown[],
  value = 0n,
  bubble = false,
) {
  const data = (escrow.interface as Interface).encodeFunctionData(fn, args);
  await (await payee.arm(await escrow.getAddress(), data, value, bubble)).wait();
}

describe("MortgageEscrow attacks: re-entrancy", function () {
  describe("release", function () {
    it("completing the releasing stage only credits, so a malicious seller is paid nothing it could re-enter from", async function () {
      const { escrow, templateId, signers, sellerPayee, withSeller } = await loadFixture(deployWithContractParties);
      const caseId = await openCaseWith(escrow, signers.bank, withSeller, templateId, TERMS);
      await completeExchange(escrow, withSeller, caseId);
      await depositAs(escrow, withSeller, caseId, "Buyer", TERMS.deposit);
      await depositAs(escrow, withSeller, caseId, "Bank", TERMS.loan);
      await signOffAs(escrow, withSeller, caseId, 2, "Bank");
      await arm(sellerPayee, escrow, "withdraw", [caseId]);

      const release = escrow.connect(signers.lawyer).signOff(caseId, 2, Role.Lawyer, EVIDENCE);
      await expect(release).to.emit(escrow, "StageCompleted").withArgs(caseId, 2);
      await expect(release)
        .to.emit(escrow, "Credited")
        .withArgs(caseId, await sellerPayee.getAddress(), TERMS.price);
      await expect(release).to.changeEtherBalances([escrow, sellerPayee], [0n, 0n]);
      expect(await sellerPayee.reentries()).to.equal(0n);
      expect(await escrow.creditOf(caseId, await sellerPayee.getAddress())).to.equal(TERMS.price);
      await expectSolvent(escrow, [caseId]);
    });
  });

  describe("withdraw", function () {
    it("a seller re-entering withdraw while pushed its price is paid once and its re-entered call fails", async function () {
      const { escrow, templateId, signers, sellerPayee, withSeller } = await loadFixture(deployWithContractParties);
      const caseId = await openCaseWith(escrow, signers.bank, withSeller, templateId, TERMS);
      await walkToRelease(escrow, withSeller, caseId, TERMS);
      const seller = await sellerPayee.getAddress();
      await arm(sellerPayee, escrow, "withdraw", [caseId]);

      const push = escrow.connect(signers.relayer).withdrawFor(caseId, seller);
      await expect(push).to.emit(escrow, "Withdrawn").withArgs(caseId, seller, seller, TERMS.price);
      await expect(push).to.emit(sellerPayee, "Reentered").withArgs(false, reentrantCallError(escrow));
      await expect(push).to.changeEtherBalances([escrow, sellerPayee], [-TERMS.price, TERMS.price]);
      expect(await sellerPayee.reentries()).to.equal(1n);
      expect(await escrow.creditOf(caseId, seller)).to.equal(0n);
      await expect(escrow.withdrawFor(caseId, seller))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToWithdraw")
        .withArgs(caseId, seller);
      await expectSolvent(escrow, [caseId]);
      expect(await ethers.provider.getBalance(await escrow.getAddress())).to.equal(BUYER_REST);
    });

    it("a seller re-entering withdrawFor on itself while withdrawing is paid once", async function () {
      const { escrow, templateId, signers, sellerPayee, withSeller } = await loadFixture(deployWithContractParties);
      const caseId = await openCaseWith(escrow, signers.bank, withSeller, templateId, TERMS);
      await walkToRelease(escrow, withSeller, caseId, TERMS);
      const seller = await sellerPayee.getAddress();
      await arm(sellerPayee, escrow, "withdrawFor", [caseId, seller]);

      const withdraw = send(escrow, withSeller.Seller, "withdraw", [caseId]);
      await expect(withdraw).to.emit(sellerPayee, "Reentered").withArgs(false, reentrantCallError(escrow));
      await expect(withdraw).to.changeEtherBalances([escrow, sellerPayee], [-TERMS.price, TERMS.price]);
      expect(await sellerPayee.received()).to.equal(TERMS.price);
      expect(await escrow.creditOf(caseId, seller)).to.equal(0n);
      await expectSolvent(escrow, [caseId]);
    });

    it("a seller owed in two cases cannot collect the second inside the payout of the first, and collects it once afterwards", async function () {
      const { escrow, templateId, signers, sellerPayee, withSeller } = await loadFixture(deployWithContractParties);
      const first = await openCaseWith(escrow, signers.bank, withSeller, templateId, TERMS);
      const second = await openCaseWith(escrow, signers.bank, withSeller, templateId, TERMS);
      await walkToRelease(escrow, withSeller, first, TERMS);
      await walkToRelease(escrow, withSeller, second, TERMS);
      const seller = await sellerPayee.getAddress();
      await arm(sellerPayee, escrow, "withdraw", [second]);

      const push = escrow.withdrawFor(first, seller);
      await expect(push).to.emit(sellerPayee, "Reentered").withArgs(false, reentrantCallError(escrow));
      await expect(push).to.changeEtherBalance(sellerPayee, TERMS.price);
      expect(await escrow.creditOf(second, seller)).to.equal(TERMS.price);
      await expectSolvent(escrow, [first, second]);

      await expect(escrow.withdrawFor(second, seller)).to.changeEtherBalance(sellerPayee, TERMS.price);
      expect(await sellerPayee.received()).to.equal(2n * TERMS.price);
      await expectSolvent(escrow, [first, second]);
    });

    it("a seller that lets its failed re-entry revert loses only its own payout, whose credit stays until it behaves", async function () {
      const { escrow, templateId, signers, sellerPayee, withSeller } = await loadFixture(deployWithContractParties);
      const caseId = await openCaseWith(escrow, signers.bank, withSeller, templateId, TERMS);
      await walkToRelease(escrow, withSeller, caseId, TERMS);
      const seller = await sellerPayee.getAddress();
      await arm(sellerPayee, escrow, "withdraw", [caseId], 0n, true);

      await expect(escrow.withdrawFor(caseId, seller)).to.be.revertedWithCustomError(
        escrow,
        "ReentrancyGuardReentrantCall",
      );
      expect(await escrow.creditOf(caseId, seller)).to.equal(TERMS.price);
      await expect(send(escrow, withSeller.Buyer, "withdraw", [caseId])).to.changeEtherBalance(
        signers.buyer,
        BUYER_REST,
      );
      await expectSolvent(escrow, [caseId]);

      await (await sellerPayee.disarm()).wait();
      await expect(escrow.withdrawFor(caseId, seller)).to.changeEtherBalance(sellerPayee, TERMS.price);
      await expectSolvent(escrow, [caseId]);
      expect(await ethers.provider.getBalance(await escrow.getAddress())).to.equal(0n);
    });

    it("a buyer re-entering deposit while being refunded cannot pay in during its payout", async function () {
      const { escrow, templateId, signers, buyerPayee, withBuyer } = await loadFixture(deployWithContractParties);
      const refunded = await openCaseWith(escrow, signers.bank, withBuyer, templateId, TERMS);
      const other = await openCaseWith(escrow, signers.bank, withBuyer, templateId, TERMS);
      await depositAs(escrow, withBuyer, refunded, "Buyer", TERMS.deposit);
      await cancelAll(escrow, withBuyer, refunded);
      const buyer = await buyerPayee.getAddress();
      expect(await escrow.creditOf(refunded, buyer)).to.equal(TERMS.deposit);
      const oneEther = ethers.parseEther("1");
      await arm(buyerPayee, escrow, "deposit", [other, Role.Buyer, oneEther], oneEther);

      const withdraw = send(escrow, withBuyer.Buyer, "withdraw", [refunded]);
      await expect(withdraw).to.emit(buyerPayee, "Reentered").withArgs(false, reentrantCallError(escrow));
      await expect(withdraw).to.changeEtherBalances([escrow, buyerPayee], [-TERMS.deposit, TERMS.deposit]);
      expect((await escrow.caseOf(other)).paidByBuyer).to.equal(0n);
      expect(await escrow.creditOf(refunded, buyer)).to.equal(0n);
      await expectSolvent(escrow, [refunded, other]);
    });

    it("a buyer re-entering signOff while being paid is refused, and its payout still arrives once", async function () {
      // Every function that changes a case is guarded, so a payee cannot act on any case mid-payout.
      const { escrow, templateId, signers, buyerPayee, withBuyer } = await loadFixture(deployWithContractParties);
      const refunded = await openCaseWith(escrow, signers.bank, withBuyer, templateId, TERMS);
      const other = await openCaseWith(escrow, signers.bank, withBuyer, templateId, TERMS);
      await depositAs(escrow, withBuyer, refunded, "Buyer", TERMS.deposit);
      await cancelAll(escrow, withBuyer, refunded);
      await arm(buyerPayee, escrow, "signOff", [other, 0, Role.Buyer, EVIDENCE]);

      const withdraw = send(escrow, withBuyer.Buyer, "withdraw", [refunded]);
      await expect(withdraw).to.emit(buyerPayee, "Reentered").withArgs(false, reentrantCallError(escrow));
      await expect(withdraw).not.to.emit(escrow, "SignedOff");
      await expect(withdraw).to.changeEtherBalances([escrow, buyerPayee], [-TERMS.deposit, TERMS.deposit]);
      expect((await escrow.caseOf(other)).signedOffRoles).to.equal(0n);
      await expect(send(escrow, withBuyer.Buyer, "withdraw", [refunded]))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToWithdraw")
        .withArgs(refunded, await buyerPayee.getAddress());
      await expectSolvent(escrow, [refunded, other]);
    });

    it("every function that changes a case refuses a payee that re-enters it while being paid", async function () {
      // The guard runs before anything else, so any arguments of the right types show it.
      const { escrow, templateId, signers, buyerPayee, withBuyer } = await loadFixture(deployWithContractParties);
      const refunded = await openCaseWith(escrow, signers.bank, withBuyer, templateId, TERMS);
      const other = await openCaseWith(escrow, signers.bank, withBuyer, templateId, TERMS);
      const payee = await buyerPayee.getAddress();
      const reentries: Array<[string, unknown[]]> = [
        ["signOff", [other, 0, Role.Buyer, EVIDENCE]],
        ["signOffWithSignatures", [[]]],
        ["revokeSignOff", [other, 0, Role.Buyer]],
        ["revokeSignOffWithSignature", [other, 0, Role.Buyer, 0, "0x"]],
        ["advance", [other]],
        ["deposit", [other, Role.Buyer, 1n]],
        ["expire", [other]],
        ["cancel", [other]],
        ["withdrawCancelVote", [other]],
        ["withdraw", [refunded]],
        ["withdrawTo", [refunded, payee]],
        ["withdrawFor", [refunded, payee]],
      ];
      // One payout per attempt: refill the buyer's credit by cancelling a fresh case each time.
      for (const [fn, args] of reentries) {
        const caseId = await openCaseWith(escrow, signers.bank, withBuyer, templateId, TERMS);
        await depositAs(escrow, withBuyer, caseId, "Buyer", TERMS.deposit);
        await cancelAll(escrow, withBuyer, caseId);
        await arm(buyerPayee, escrow, fn, args);
        const withdraw = send(escrow, withBuyer.Buyer, "withdraw", [caseId]);
        await expect(withdraw, fn).to.emit(buyerPayee, "Reentered").withArgs(false, reentrantCallError(escrow));
        await expect(withdraw, fn).to.changeEtherBalances([escrow, buyerPayee], [-TERMS.deposit, TERMS.deposit]);
      }
      await expectSolvent(escrow, [refunded, other]);
    });

    it("a buyer re-entering withdraw for its rest after release is paid its rest once", async function () {
      const { escrow, templateId, signers, buyerPayee, withBuyer } = await loadFixture(deployWithContractParties);
      const caseId = await openCaseWith(escrow, signers.bank, withBuyer, templateId, TERMS);
      await walkToRelease(escrow, withBuyer, caseId, TERMS);
      await arm(buyerPayee, escrow, "withdraw", [caseId]);

      const push = escrow.connect(signers.stranger).withdrawFor(caseId, await buyerPayee.getAddress());
      await expect(push).to.emit(buyerPayee, "Reentered").withArgs(false, reentrantCallError(escrow));
      await expect(push).to.changeEtherBalances([escrow, buyerPayee], [-BUYER_REST, BUYER_REST]);
      await expectSolvent(escrow, [caseId]);
      expect(await escrow.creditOf(caseId, signers.seller.address)).to.equal(TERMS.price);
    });
  });

  describe("a payee that rejects ETH", function () {
    async function deployWithRevertingSeller() {
      const signers = await getParties();
      const escrow = await ethers.deployContract("MortgageEscrow", [signers.admin.address]);
      const templateId = await registerTemplate(escrow, signers.admin, SMALL_PURCHASE);
      const sellerContract = await ethers.deployContract("RevertingPayee", [], { signer: signers.seller });
      const parties: CaseParties = {
        Bank: signers.bank,
        Lawyer: signers.lawyer,
        Buyer: signers.buyer,
        Seller: await proxyActor(sellerContract),
      };
      return { escrow, templateId, signers, sellerContract, parties };
    }

    it("blocks no one else after release: the buyer and the bank withdraw, and the seller's credit stays claimable", async function () {
      const { escrow, templateId, signers, sellerContract, parties } = await loadFixture(deployWithRevertingSeller);
      const caseId = await openCaseWith(escrow, signers.bank, parties, templateId, TERMS);
      const overpaid = ethers.parseEther("1");
      await completeExchange(escrow, parties, caseId);
      await depositAs(escrow, parties, caseId, "Buyer", TERMS.deposit);
      await depositAs(escrow, parties, caseId, "Bank", TERMS.loan + overpaid);
      await signOffAs(escrow, parties, caseId, 2, "Bank", "Lawyer");
      const seller = await sellerContract.getAddress();

      await expect(escrow.withdrawFor(caseId, seller))
        .to.be.revertedWithCustomError(sellerContract, "RevertingPayeeRejected")
        .withArgs(TERMS.price);
      await expect(escrow.connect(signers.buyer).withdraw(caseId)).to.changeEtherBalance(signers.buyer, BUYER_REST);
      await expect(escrow.connect(signers.relayer).withdrawFor(caseId, signers.bank.address)).to.changeEtherBalance(
        signers.bank,
        overpaid,
      );
      expect(await escrow.creditOf(caseId, seller)).to.equal(TERMS.price);
      await expectSolvent(escrow, [caseId]);
      expect(await ethers.provider.getBalance(await escrow.getAddress())).to.equal(TERMS.price);

      await (await sellerContract.setAccepting(true)).wait();
      await expect(escrow.withdrawFor(caseId, seller)).to.changeEtherBalances(
        [escrow, sellerContract],
        [-TERMS.price, TERMS.price],
      );
      await expectSolvent(escrow, [caseId]);
    });

    it("lets a payee that can never take ETH send its own credit to another address, and no one else", async function () {
      const { escrow, templateId, signers, sellerContract, parties } = await loadFixture(deployWithRevertingSeller);
      const caseId = await openCaseWith(escrow, signers.bank, parties, templateId, TERMS);
      await completeExchange(escrow, parties, caseId);
      await depositAs(escrow, parties, caseId, "Buyer", TERMS.deposit);
      await depositAs(escrow, parties, caseId, "Bank", TERMS.loan);
      await signOffAs(escrow, parties, caseId, 2, "Bank", "Lawyer");
      const seller = await sellerContract.getAddress();
      const treasury = signers.stranger.address;

      // A stranger calling withdrawTo moves only its own (empty) credit.
      await expect(escrow.connect(signers.stranger).withdrawTo(caseId, treasury))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToWithdraw")
        .withArgs(caseId, treasury);
      const redirect = send(escrow, parties.Seller, "withdrawTo", [caseId, treasury]);
      await expect(redirect).to.emit(escrow, "Withdrawn").withArgs(caseId, seller, treasury, TERMS.price);
      await expect(redirect).to.changeEtherBalances([escrow, signers.stranger], [-TERMS.price, TERMS.price]);
      expect(await escrow.creditOf(caseId, seller)).to.equal(0n);
      await expectSolvent(escrow, [caseId]);
    });

    it("blocks no one else after a cancellation past the binding stage: the bank takes its refund back", async function () {
      const { escrow, templateId, signers, sellerContract, parties } = await loadFixture(deployWithRevertingSeller);
      const caseId = await openCaseWith(escrow, signers.bank, parties, templateId, TERMS);
      await completeExchange(escrow, parties, caseId);
      await depositAs(escrow, parties, caseId, "Buyer", TERMS.deposit);
      await depositAs(escrow, parties, caseId, "Bank", TERMS.loan);
      await cancelAll(escrow, parties, caseId);
      const seller = await sellerContract.getAddress();

      expect(await escrow.creditOf(caseId, seller)).to.equal(TERMS.deposit);
      await expect(escrow.withdrawFor(caseId, seller))
        .to.be.revertedWithCustomError(sellerContract, "RevertingPayeeRejected")
        .withArgs(TERMS.deposit);
      await expect(escrow.connect(signers.bank).withdraw(caseId)).to.changeEtherBalance(signers.bank, TERMS.loan);
      expect(await escrow.creditOf(caseId, seller)).to.equal(TERMS.deposit);
      await expectSolvent(escrow, [caseId]);
    });
  });

  describe("a token that calls the payer back before it moves the tokens (ERC-777 style)", function () {
    // Found by these tests: `deposit` calls the token, and a token that calls the payer back mid-transfer let
    // the payer cancel its own case inside its deposit, which then went on accounting for a case that had
    // ended (a double credit that drained another case, or a deposit credited to no one). Every function that
    // changes a case is now `nonReentrant`, so the call back into the escrow fails and the deposit stays whole.
    async function deployWithHookedToken() {
      const signers = await getParties();
      const [, , , , , , , attackerLawyer, attackerSeller] = await ethers.getSigners();
      const escrow = await ethers.deployContract("MortgageEscrow", [signers.admin.address]);
      const templateId = await registerTemplate(escrow, signers.admin, SMALL_PURCHASE);
      const token = await ethers.deployContract("CallbackToken");
      const escrowAddress = await escrow.getAddress();

      // An honest case holding the same token.
      const honest: CaseParties = {
        Bank: signers.bank,
        Lawyer: signers.lawyer,
        Buyer: signers.buyer,
        Seller: signers.seller,
      };
      const terms: Terms = { ...DEFAULT_TERMS, asset: await token.getAddress() };
      const victimCase = await openCaseWith(escrow, signers.bank, honest, templateId, terms);
      for (const payer of [signers.bank, signers.buyer]) {
        await token.mint(payer.address, ethers.parseEther("1000"));
        await token.connect(payer).approve(escrowAddress, ethers.MaxUint256);
      }
      await depositAs(escrow, honest, victimCase, "Buyer", terms.deposit, false);
      await depositAs(escrow, honest, victimCase, "Bank", terms.loan, false);

      // The attacker's case: it is the bank (so it may open it) and controls every other party.
      const attackerBank = signers.stranger;
      const hookedBuyer = await ethers.deployContract("ReentrantPayee", [], { signer: attackerBank });
      const attacker: CaseParties = {
        Bank: attackerBank,
        Lawyer: attackerLawyer,
        Buyer: await proxyActor(hookedBuyer),
        Seller: attackerSeller,
      };
      const attackCase = await openCaseWith(escrow, attackerBank, attacker, templateId, terms);
      await token.mint(attackerBank.address, terms.loan);
      await token.connect(attackerBank).approve(escrowAddress, ethers.MaxUint256);
      await token.mint(await hookedBuyer.getAddress(), terms.deposit);
      const tokenAddress = await token.getAddress();
      await (
        await hookedBuyer.call(
          tokenAddress,
          token.interface.encodeFunctionData("approve", [escrowAddress, ethers.MaxUint256]),
        )
      ).wait();
      await (await hookedBuyer.call(tokenAddress, token.interface.encodeFunctionData("registerSenderHook"))).wait();
      return { escrow, token, terms, signers, victimCase, attackCase, attacker, hookedBuyer };
    }

    it("refuses a cancellation cast from inside the last deposit, so the case releases once and pays out only what came in", async function () {
      const { escrow, token, terms, signers, victimCase, attackCase, attacker, hookedBuyer } =
        await loadFixture(deployWithHookedToken);
      // Exchange done, the bank's loan in, stage 2 (release) fully signed and waiting for the buyer's funds;
      // three of four cancellation votes in.
      await completeExchange(escrow, attacker, attackCase);
      await depositAs(escrow, attacker, attackCase, "Bank", terms.loan, false);
      await signOffAs(escrow, attacker, attackCase, 2, "Bank", "Lawyer");
      for (const name of ["Bank", "Lawyer", "Seller"] as const)
        await (await send(escrow, attacker[name], "cancel", [attackCase])).wait();
      await arm(hookedBuyer, escrow, "cancel", [attackCase]);

      // The token calls the buyer back before moving the tokens; its last cancellation vote re-enters the
      // escrow and is refused by the guard, so the deposit funds the case and the release happens once.
      const guardError = escrow.interface.encodeErrorResult("ReentrancyGuardReentrantCall", []);
      const lastDeposit = send(escrow, attacker.Buyer, "deposit", [attackCase, Role.Buyer, terms.deposit]);
      await expect(lastDeposit).to.emit(hookedBuyer, "Reentered").withArgs(false, guardError);
      await expect(lastDeposit).not.to.emit(escrow, "CaseCancelled");
      await expect(lastDeposit).to.emit(escrow, "StageCompleted").withArgs(attackCase, 2);
      await expect(lastDeposit).to.emit(escrow, "Credited").withArgs(attackCase, attacker.Seller.address, terms.price);

      const c = await escrow.caseOf(attackCase);
      expect(c.status).to.equal(CaseStatus.Open);
      expect(c.released).to.equal(true);
      const paidIn = terms.deposit + terms.loan;
      const credited =
        (await escrow.creditOf(attackCase, attacker.Bank.address)) +
        (await escrow.creditOf(attackCase, attacker.Seller.address));
      expect(credited).to.equal(paidIn);
      await expectSolvent(escrow, [victimCase, attackCase]);

      // The honest case in the same token is still paid in full.
      await (await escrow.withdrawFor(attackCase, attacker.Seller.address)).wait();
      await cancelAll(
        escrow,
        { Bank: signers.bank, Lawyer: signers.lawyer, Buyer: signers.buyer, Seller: signers.seller },
        victimCase,
      );
      await expect(escrow.withdrawFor(victimCase, signers.bank.address)).to.changeTokenBalance(
        token,
        signers.bank,
        terms.loan,
      );
      await expectSolvent(escrow, [victimCase, attackCase]);
    });

    it("refuses an amendment proposed, consented to, relayed or withdrawn from inside a deposit", async function () {
      const { escrow, attackCase, attacker, hookedBuyer } = await loadFixture(deployWithHookedToken);
      const guardError = escrow.interface.encodeErrorResult("ReentrancyGuardReentrantCall", []);
      const terms = proposal({
        kind: AmendmentKind.Terms,
        expiresAt: (await time.latest()) + DAY,
        price: 1n,
        deposit: 1n,
      });
      for (const [fn, args] of [
        ["proposeAmendment", [attackCase, Role.Buyer, terms]],
        ["consentToAmendment", [attackCase, 1, Role.Buyer]],
        ["consentToAmendmentsWithSignatures", [[]]],
        ["withdrawAmendmentConsent", [attackCase, 1, Role.Buyer]],
      ] as const) {
        await arm(hookedBuyer, escrow, fn, [...args]);
        const deposit = send(escrow, attacker.Buyer, "deposit", [attackCase, Role.Buyer, 1n]);
        await expect(deposit, fn).to.emit(hookedBuyer, "Reentered").withArgs(false, guardError);
      }
      expect((await escrow.caseOf(attackCase)).amendmentCount).to.equal(0);
    });

    it("refuses a cancellation cast from inside a partial deposit, so the deposit stays owed to its payer", async function () {
      const { escrow, terms, victimCase, attackCase, attacker, hookedBuyer } = await loadFixture(deployWithHookedToken);
      for (const name of ["Bank", "Lawyer", "Seller"] as const)
        await (await send(escrow, attacker[name], "cancel", [attackCase])).wait();
      await arm(hookedBuyer, escrow, "cancel", [attackCase]);
      const part = terms.deposit / 2n; // short of the share: the case does not become funded

      const guardError = escrow.interface.encodeErrorResult("ReentrancyGuardReentrantCall", []);
      const deposit = send(escrow, attacker.Buyer, "deposit", [attackCase, Role.Buyer, part]);
      await expect(deposit).to.emit(hookedBuyer, "Reentered").withArgs(false, guardError);
      await expect(deposit).not.to.emit(escrow, "CaseCancelled");
      const c = await escrow.caseOf(attackCase);
      expect(c.status).to.equal(CaseStatus.Open);
      expect(c.paidByBuyer).to.equal(part);
      await expectSolvent(escrow, [victimCase, attackCase]);

      // The buyer's last vote, cast normally, cancels the case and credits its deposit back.
      await (await hookedBuyer.disarm()).wait();
      await (await send(escrow, attacker.Buyer, "cancel", [attackCase])).wait();
      expect(await escrow.creditOf(attackCase, await hookedBuyer.getAddress())).to.equal(part);
      await expectSolvent(escrow, [victimCase, attackCase]);
    });
  });
});
