import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import {
  DEFAULT_TERMS,
  Role,
  SMALL_PURCHASE,
  type Terms,
  caseTerms,
  getParties,
  openCase,
  registerTemplate,
} from "./fixtures";
import { type CaseParties, expectSolvent, liabilities, walkToRelease } from "./attacks.helpers";

const MAX_UINT96 = 2n ** 96n - 1n;
const MAX_UINT128 = 2n ** 128n - 1n;

async function deployEscrow() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const templateId = await registerTemplate(escrow, parties.admin, SMALL_PURCHASE);
  const actors: CaseParties = {
    Bank: parties.bank,
    Lawyer: parties.lawyer,
    Buyer: parties.buyer,
    Seller: parties.seller,
  };
  return { escrow, parties, templateId, actors };
}

async function deployWithTokens() {
  const base = await deployEscrow();
  const escrowAddress = await base.escrow.getAddress();
  const noReturn = await ethers.deployContract("NoReturnToken");
  const falseReturn = await ethers.deployContract("FalseReturnToken");
  const feeOnTransfer = await ethers.deployContract("FeeOnTransferToken");
  for (const payer of [base.parties.bank, base.parties.buyer]) {
    for (const token of [noReturn, falseReturn, feeOnTransfer]) {
      await (await token.mint(payer.address, ethers.parseEther("1000"))).wait();
      await (await token.connect(payer).approve(escrowAddress, ethers.MaxUint256)).wait();
    }
  }
  return { ...base, noReturn, falseReturn, feeOnTransfer };
}

describe("MortgageEscrow attacks: tokens and amounts", function () {
  describe("ERC-20s that do not follow the standard", function () {
    it("takes deposits in a token whose transfers return nothing (like USDT) and pays them out", async function () {
      const { escrow, parties, templateId, actors, noReturn } = await loadFixture(deployWithTokens);
      const terms: Terms = { ...DEFAULT_TERMS, asset: await noReturn.getAddress() };
      const caseId = await openCase(escrow, parties, templateId, terms);

      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, terms.deposit))
        .to.emit(escrow, "Deposited")
        .withArgs(caseId, Role.Buyer, parties.buyer.address, terms.deposit);
      await expectSolvent(escrow, [caseId]);
      await walkToRelease(escrow, actors, caseId, { ...terms, deposit: 0n }, false);
      await expectSolvent(escrow, [caseId]);
      const before = await noReturn.balanceOf(parties.seller.address);
      await expect(escrow.withdrawFor(caseId, parties.seller.address))
        .to.emit(escrow, "Withdrawn")
        .withArgs(caseId, parties.seller.address, parties.seller.address, terms.price);
      expect((await noReturn.balanceOf(parties.seller.address)) - before).to.equal(terms.price);
      expect(await noReturn.balanceOf(await escrow.getAddress())).to.equal(0n);
      await expectSolvent(escrow, [caseId]);
    });

    it("reverts a deposit in a token whose transferFrom returns false with SafeERC20FailedOperation, crediting nothing", async function () {
      const { escrow, parties, templateId, falseReturn } = await loadFixture(deployWithTokens);
      const token = await falseReturn.getAddress();
      const caseId = await openCase(escrow, parties, templateId, { ...DEFAULT_TERMS, asset: token });
      await (await falseReturn.setFailing(true)).wait();

      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEFAULT_TERMS.deposit))
        .to.be.revertedWithCustomError(escrow, "SafeERC20FailedOperation")
        .withArgs(token);
      expect((await escrow.caseOf(caseId)).paidByBuyer).to.equal(0n);
      await expectSolvent(escrow, [caseId]);
    });

    it("reverts a payout in a token whose transfer returns false with SafeERC20FailedOperation, keeping the credit", async function () {
      const { escrow, parties, templateId, actors, falseReturn } = await loadFixture(deployWithTokens);
      const token = await falseReturn.getAddress();
      const terms: Terms = { ...DEFAULT_TERMS, asset: token };
      const caseId = await openCase(escrow, parties, templateId, terms);
      await walkToRelease(escrow, actors, caseId, terms, false);
      await (await falseReturn.setFailing(true)).wait();

      await expect(escrow.withdrawFor(caseId, parties.seller.address))
        .to.be.revertedWithCustomError(escrow, "SafeERC20FailedOperation")
        .withArgs(token);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(terms.price);
      await expectSolvent(escrow, [caseId]);
      await (await falseReturn.setFailing(false)).wait();
      await expect(escrow.withdrawFor(caseId, parties.seller.address))
        .to.emit(escrow, "Withdrawn")
        .withArgs(caseId, parties.seller.address, parties.seller.address, terms.price);
    });

    it("credits a fee-on-transfer token with only what arrived, and never owes more than it holds", async function () {
      const { escrow, parties, templateId, actors, feeOnTransfer } = await loadFixture(deployWithTokens);
      const terms: Terms = { ...DEFAULT_TERMS, asset: await feeOnTransfer.getAddress() };
      const caseId = await openCase(escrow, parties, templateId, terms);
      const net = async (amount: bigint) => amount - (await feeOnTransfer.feeOf(amount));
      const escrowAddress = await escrow.getAddress();

      const arrived = await net(terms.deposit);
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, terms.deposit))
        .to.emit(escrow, "Deposited")
        .withArgs(caseId, Role.Buyer, parties.buyer.address, arrived);
      expect((await escrow.caseOf(caseId)).paidByBuyer).to.equal(arrived);
      expect(await feeOnTransfer.balanceOf(escrowAddress)).to.equal(arrived);
      await expectSolvent(escrow, [caseId]);

      // The full nominal amount is not the full share once the fee is taken: the case is not funded yet.
      await expect(escrow.connect(parties.bank).deposit(caseId, Role.Bank, terms.loan)).not.to.emit(
        escrow,
        "EscrowFunded",
      );
      expect((await escrow.caseOf(caseId)).funded).to.equal(false);
      await expectSolvent(escrow, [caseId]);

      const topUp = ethers.parseEther("1");
      await (await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, topUp)).wait();
      await expect(escrow.connect(parties.bank).deposit(caseId, Role.Bank, topUp))
        .to.emit(escrow, "EscrowFunded")
        .withArgs(caseId);
      const c = await escrow.caseOf(caseId);
      expect(c.paidByBuyer).to.equal(arrived + (await net(topUp)));
      expect(c.paidByBank).to.equal((await net(terms.loan)) + (await net(topUp)));
      expect(await feeOnTransfer.balanceOf(escrowAddress)).to.equal(c.paidByBuyer + c.paidByBank);
      await expectSolvent(escrow, [caseId]);

      await walkToRelease(escrow, actors, caseId, { ...terms, deposit: 0n, loan: 0n }, false);
      await expectSolvent(escrow, [caseId]);
      for (const payee of [parties.seller, parties.buyer, parties.bank]) {
        await (await escrow.withdrawFor(caseId, payee.address)).wait();
        await expectSolvent(escrow, [caseId]);
      }
      expect(await feeOnTransfer.balanceOf(escrowAddress)).to.equal(0n);
    });
  });

  describe("amounts wider than the fields that hold them", function () {
    it("opens a case whose price, deposit and loan are each exactly 2^96 - 1", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployEscrow);
      const caseId = await openCase(escrow, parties, templateId, {
        price: MAX_UINT96,
        deposit: MAX_UINT96,
        loan: MAX_UINT96,
      });
      const c = await escrow.caseOf(caseId);
      expect([c.price, c.deposit, c.loan]).to.deep.equal([MAX_UINT96, MAX_UINT96, MAX_UINT96]);
    });

    it("cannot even encode 2^96 as a price: ethers refuses", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployEscrow);
      const terms = { ...caseTerms(parties, templateId), price: MAX_UINT96 + 1n };
      expect(() => escrow.interface.encodeFunctionData("openCase", [terms])).to.throw(/value out-of-bounds|overflow/);
    });

    for (const [field, word] of [
      ["price", 6],
      ["deposit", 7],
      ["loan", 8],
    ] as const) {
      it(`reverts hand-made calldata whose ${field} has a bit above the 96th set, where the same call at 2^96 - 1 succeeds`, async function () {
        const { escrow, parties, templateId } = await loadFixture(deployEscrow);
        const terms = { ...caseTerms(parties, templateId), price: MAX_UINT96, deposit: MAX_UINT96, loan: MAX_UINT96 };
        const valid = escrow.interface.encodeFunctionData("openCase", [terms]);
        // CaseTerms is all static: the selector, then one 32-byte word per field in declaration order.
        const offset = 4 + word * 32;
        const wide = ethers.concat([
          ethers.dataSlice(valid, 0, offset),
          ethers.toBeHex(MAX_UINT96 + 1n, 32),
          ethers.dataSlice(valid, offset + 32),
        ]);
        expect(ethers.dataLength(wide)).to.equal(ethers.dataLength(valid));
        const to = await escrow.getAddress();

        await expect(parties.bank.sendTransaction({ to, data: wide })).to.be.revertedWithoutReason();
        expect(await escrow.caseCount()).to.equal(0n);
        await (await parties.bank.sendTransaction({ to, data: valid })).wait();
        expect(await escrow.caseCount()).to.equal(1n);
      });
    }

    it("reverts a deposit that would take a payer's total past 2^128 - 1 with MortgageEscrowAmountTooLarge", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployEscrow);
      const token = await ethers.deployContract("MockERC20", ["Huge", "HUGE"]);
      const escrowAddress = await escrow.getAddress();
      for (const payer of [parties.bank, parties.buyer]) {
        await (await token.mint(payer.address, 2n ** 130n)).wait();
        await (await token.connect(payer).approve(escrowAddress, ethers.MaxUint256)).wait();
      }
      const terms: Terms = { price: 2n, deposit: 1n, loan: 1n, asset: await token.getAddress() };
      const caseId = await openCase(escrow, parties, templateId, terms);

      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, MAX_UINT128 + 1n))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowAmountTooLarge")
        .withArgs(MAX_UINT128 + 1n, MAX_UINT128);
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, MAX_UINT128))
        .to.emit(escrow, "Deposited")
        .withArgs(caseId, Role.Buyer, parties.buyer.address, MAX_UINT128);
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, 1n))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowAmountTooLarge")
        .withArgs(MAX_UINT128 + 1n, MAX_UINT128);
      await expect(escrow.connect(parties.bank).deposit(caseId, Role.Bank, 2n ** 129n))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowAmountTooLarge")
        .withArgs(2n ** 129n, MAX_UINT128);

      const c = await escrow.caseOf(caseId);
      expect([c.paidByBuyer, c.paidByBank]).to.deep.equal([MAX_UINT128, 0n]);
      expect(await token.balanceOf(escrowAddress)).to.equal(MAX_UINT128);
      await expectSolvent(escrow, [caseId]);
      expect((await liabilities(escrow, [caseId])).get(await token.getAddress())).to.equal(MAX_UINT128);
    });
  });
});
