/**
 * Finding 2 of issue 10, the relayer's side: a party that is a hostile ERC-1271 contract wallet (it reverts,
 * answers no, burns its gas, or answers a 1 MB blob) has its relayed sign-off batched with honest ones. The
 * contract skips it (`SignOffSkipped(..., InvalidSignature)`); the relayer fails that one submission with
 * SIGN_OFF_INVALID_SIGNATURE and a message naming the wallet's address, and the honest ones land in the same
 * transaction. Real wallets (contracts/test/HostileERC1271Wallets.sol) on the in-process chain.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { DEFAULT_TERMS } from "../contracts/fixtures";
import { openCaseWith } from "../contracts/attacks.helpers";
import { newRelayer, openOutboxDb, relayerFixture, signedSignOff, tempDbFile } from "./relayer-helpers";

const HOSTILE: Array<[string, string, unknown[]]> = [
  ["reverts", "RevertingERC1271Wallet", []],
  ["answers false", "WrongMagicERC1271Wallet", [ethers.ZeroHash]],
  ["burns all the gas it is given", "GasBurningERC1271Wallet", []],
  ["answers 1 MB (a return-data bomb)", "SizedAnswerERC1271Wallet", [1 << 20]],
];

describe("Relayer: a hostile contract wallet in a batch (finding 2)", function () {
  for (const [what, contract, args] of HOSTILE) {
    it(`fails only the sign-off of a wallet that ${what}, naming it, and lands the honest ones in the same transaction`, async function () {
      const fx = await loadFixture(relayerFixture);
      const wallet = await ethers.deployContract(contract, args);
      const walletAddress = await wallet.getAddress();
      const p = fx.parties;
      const caseId = await openCaseWith(
        fx.escrow,
        p.bank,
        { Bank: p.bank, Lawyer: p.lawyer, Buyer: { address: walletAddress }, Seller: p.seller },
        fx.templateId,
        DEFAULT_TERMS,
      );
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);

      // The wallet's item carries the buyer's EOA signature: only the wallet could vouch for it, and it will not.
      const seller = relayer.submit(await signedSignOff(fx.escrow, p, caseId, 0, "Seller"), "seller");
      const hostile = relayer.submit(await signedSignOff(fx.escrow, p, caseId, 0, "Buyer"), "wallet");
      const elsewhere = relayer.submit(await signedSignOff(fx.escrow, p, fx.caseId, 0, "Buyer"), "other case");
      await relayer.drain();

      const [s, h, e] = [seller, hostile, elsewhere].map((x) => relayer.get(x.id)!);
      expect(h.status).to.equal("failed");
      expect(h.error?.code).to.equal("SIGN_OFF_INVALID_SIGNATURE");
      expect(h.error?.message)
        .to.include(walletAddress)
        .and.include("buyer")
        .and.match(/wallet refused it or could not verify it/);
      expect(h.error?.details).to.deep.include({
        reason: "InvalidSignature",
        party: walletAddress,
        caseId: caseId.toString(),
        stage: 0,
        role: "buyer",
      });
      expect([s.status, e.status], "the honest ones landed").to.deep.equal(["confirmed", "confirmed"]);
      expect(new Set([s.txHash, h.txHash, e.txHash]).size, "one transaction for all three").to.equal(1);
      const signed = await fx.escrow.queryFilter(
        fx.escrow.filters.SignedOff(),
        (await ethers.provider.getTransactionReceipt(s.txHash!))!.blockNumber,
      );
      expect(signed.map((x) => `${x.args.caseId}:${x.args.role}`).sort()).to.deep.equal(
        [`${caseId}:3`, `${fx.caseId}:2`].sort(),
      );
    });
  }

  it("fails an item the contract cannot even decode (a role past the enum) on its own, and sends the rest", async function () {
    const fx = await loadFixture(relayerFixture);
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
    const honest = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "honest");
    const good = await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Seller");
    const undecodable = relayer.submit({ ...good, message: { ...good.message, role: 9 } }, "role 9");
    await relayer.drain();
    const [a, b] = [honest, undecodable].map((x) => relayer.get(x.id)!);
    expect(a.status).to.equal("confirmed");
    expect(b.status).to.equal("failed");
    expect(b.nonce, "refused at estimation: no nonce").to.equal(null);
    expect(b.error?.code).to.equal("CONTRACT_REVERTED");
  });

  it("fails a sign-off for a role the stage does not require with SIGN_OFF_ROLE_NOT_REQUIRED, the rest landing beside it", async function () {
    const fx = await loadFixture(relayerFixture);
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
    const honest = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "honest");
    const notRequired = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Bank"), "bank");
    await relayer.drain();
    const [a, b] = [honest, notRequired].map((x) => relayer.get(x.id)!);
    expect(a.status).to.equal("confirmed");
    expect(b.status).to.equal("failed");
    expect(b.error?.code).to.equal("SIGN_OFF_ROLE_NOT_REQUIRED");
    expect(b.error?.message).to.include("bank");
    expect(a.txHash).to.equal(b.txHash);
  });
});
