import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { BaseContract } from "ethers";
import type { MortgageEscrow } from "../../typechain-types";
import { DEFAULT_TERMS, EVIDENCE, Role, SkipReason, deployWithCase, signSignOff, signedItem } from "./fixtures";
import { openCaseWith, roleBit } from "./attacks.helpers";

/**
 * Finding 2 of issue 10: one hostile ERC-1271 party sank a whole relayed batch (its `isValidSignature` reverted,
 * refused, burned all the gas or answered a huge blob, and OpenZeppelin's check forwards all gas and copies all
 * the answer). Each wallet here is the buyer of a case; a batch relays the seller's and the lawyer's honest
 * sign-offs around the wallet's: the honest ones must land in the same transaction, the wallet's be skipped.
 */

/** A gas limit a relayer would give a three-item batch: far below what a copied 1 MB answer costs. */
const BATCH_GAS_LIMIT = 1_000_000n;
const MAGIC = "0x1626ba7e";
/** SignatureVerifier.ERC1271_GAS_STIPEND (internal there: a public getter would cost every sign-off gas). */
const ERC1271_GAS_STIPEND = 150_000n;

const HOSTILE: Array<[string, string, unknown[]]> = [
  ["a wallet whose isValidSignature reverts", "RevertingERC1271Wallet", []],
  ["a wallet that answers false (zero)", "WrongMagicERC1271Wallet", [ethers.ZeroHash]],
  ["a wallet that answers a wrong magic value", "WrongMagicERC1271Wallet", [ethers.zeroPadBytes("0xffffffff", 32)]],
  [
    "a wallet that answers the magic value with dirty padding",
    "WrongMagicERC1271Wallet",
    [ethers.zeroPadBytes("0x1626ba7e01", 32)],
  ],
  ["a wallet that burns all the gas it is given", "GasBurningERC1271Wallet", []],
  ["a wallet that answers 1 MB (a return-data bomb)", "SizedAnswerERC1271Wallet", [1 << 20]],
  ["a wallet that answers the magic value in 4 bytes (short data)", "SizedAnswerERC1271Wallet", [4]],
  ["a wallet that answers nothing", "SizedAnswerERC1271Wallet", [0]],
];

/** A SMALL_PURCHASE case whose buyer is the contract `wallet`, beside the default case of `deployWithCase`. */
async function caseWithWalletBuyer(wallet: BaseContract) {
  const f = await deployWithCase();
  const parties = {
    Bank: f.parties.bank,
    Lawyer: f.parties.lawyer,
    Buyer: { address: await wallet.getAddress() },
    Seller: f.parties.seller,
  };
  const caseId = await openCaseWith(f.escrow, f.parties.bank, parties, f.templateId, DEFAULT_TERMS);
  return { ...f, caseId, wallet };
}

/** The wallet's item: signed by the buyer's EOA key, which is not the wallet, so only the wallet can vouch. */
async function walletItem(
  escrow: MortgageEscrow,
  signer: Parameters<typeof signSignOff>[1],
  caseId: bigint,
  stage: number,
) {
  const message = { caseId, stage, role: Role.Buyer, epoch: 0, evidence: EVIDENCE };
  return { ...message, signature: await signSignOff(escrow, signer, message) };
}

describe("MortgageEscrow attacks: hostile contract wallets in a relayed batch", function () {
  for (const [what, contract, args] of HOSTILE) {
    it(`skips ${what} as InvalidSignature and applies the honest items beside it`, async function () {
      const deploy = async () => caseWithWalletBuyer(await ethers.deployContract(contract, args));
      const { escrow, parties, caseId } = await loadFixture(deploy);
      const batch = [
        await signedItem(escrow, parties, caseId, 0, "Seller"),
        await walletItem(escrow, parties.buyer, caseId, 0),
        await signedItem(escrow, parties, caseId, 1, "Lawyer"),
      ];

      const tx = escrow.connect(parties.relayer).signOffWithSignatures(batch, { gasLimit: BATCH_GAS_LIMIT });
      await expect(tx)
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 1, SkipReason.InvalidSignature);
      await expect(tx).to.emit(escrow, "SignedOff").withArgs(caseId, 0, Role.Seller, batch[0].evidence);
      await expect(tx).to.emit(escrow, "SignedOff").withArgs(caseId, 1, Role.Lawyer, batch[2].evidence);
      expect((await escrow.caseOf(caseId)).signedOffRoles).to.equal(roleBit(0, Role.Seller) | roleBit(1, Role.Lawyer));
    });
  }

  it("costs the batch at most the stipend for a wallet that burns its gas", async function () {
    // Two cases alike but for their buyer: one burns every unit of gas it is given, one refuses at once.
    // The same item for each takes the same path through the escrow, so the difference is what the wallet used.
    const deploy = async () => {
      const f = await caseWithWalletBuyer(await ethers.deployContract("GasBurningERC1271Wallet"));
      const refuser = await ethers.deployContract("WrongMagicERC1271Wallet", [ethers.ZeroHash]);
      const parties = {
        Bank: f.parties.bank,
        Lawyer: f.parties.lawyer,
        Buyer: { address: await refuser.getAddress() },
        Seller: f.parties.seller,
      };
      const refuserCase = await openCaseWith(f.escrow, f.parties.bank, parties, f.templateId, DEFAULT_TERMS);
      return { ...f, refuserCase };
    };
    const { escrow, parties, caseId, refuserCase } = await loadFixture(deploy);
    const gasOf = async (id: bigint) => {
      const tx = await escrow
        .connect(parties.relayer)
        .signOffWithSignatures([await walletItem(escrow, parties.buyer, id, 0)]);
      await expect(tx).to.emit(escrow, "SignOffSkipped").withArgs(id, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
      return (await tx.wait())!.gasUsed;
    };

    const burned = (await gasOf(caseId)) - (await gasOf(refuserCase));
    expect(burned).to.be.lessThanOrEqual(ERC1271_GAS_STIPEND);
    expect(burned).to.be.greaterThan(ERC1271_GAS_STIPEND - 2_000n);
  });

  it("applies a wallet's sign-off answered with the magic value and 64 KB more, without paying to copy them", async function () {
    const deploy = async () => caseWithWalletBuyer(await ethers.deployContract("SizedAnswerERC1271Wallet", [1 << 16]));
    const { escrow, parties, caseId, wallet } = await loadFixture(deploy);
    const item = await walletItem(escrow, parties.buyer, caseId, 0);
    const digest = await escrow.signOffDigest(caseId, 0, Role.Buyer, 0, EVIDENCE);
    const walletAlone = await ethers.provider.estimateGas({
      to: await wallet.getAddress(),
      data: wallet.interface.encodeFunctionData("isValidSignature", [digest, item.signature]),
    });

    const tx = await escrow.connect(parties.relayer).signOffWithSignatures([item]);
    await expect(tx).to.emit(escrow, "SignedOff").withArgs(caseId, 0, Role.Buyer, EVIDENCE);
    // Copying 64 KB back would cost the escrow about 14,000 gas of memory on top of the wallet's own.
    const used = (await tx.wait())!.gasUsed;
    expect(used).to.be.lessThan(walletAlone + 40_000n);
  });

  it("skips an EOA party's wrong ECDSA signature as InvalidSignature, asking no wallet", async function () {
    const { escrow, parties, caseId } = await loadFixture(deployWithCase);
    const byStranger = { caseId, stage: 0, role: Role.Buyer, epoch: 0, evidence: EVIDENCE };
    const signature = await signSignOff(escrow, parties.stranger, byStranger);
    const honest = await signedItem(escrow, parties, caseId, 0, "Seller");

    const tx = escrow.connect(parties.relayer).signOffWithSignatures([{ ...byStranger, signature }, honest]);
    await expect(tx).to.emit(escrow, "SignOffSkipped").withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
    await expect(tx).to.emit(escrow, "SignedOff").withArgs(caseId, 0, Role.Seller, honest.evidence);
  });

  it("skips an EOA party's signature that is not 65 bytes as InvalidSignature", async function () {
    const { escrow, parties, caseId } = await loadFixture(deployWithCase);
    const item = await signedItem(escrow, parties, caseId, 0, "Buyer");

    await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...item, signature: "0x1234" }]))
      .to.emit(escrow, "SignOffSkipped")
      .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature)
      .and.not.to.emit(escrow, "SignedOff");
  });
});

describe("SignatureVerifier: the ERC-1271 gas stipend", function () {
  /** A Safe-shaped wallet with `owners` owners (threshold: all of them) as the buyer of a case. */
  async function deploySafeLikeBuyer(ownerCount: number) {
    const keys = Array.from({ length: ownerCount }, () => ethers.Wallet.createRandom());
    keys.sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1));
    const singleton = await ethers.deployContract("SafeLikeSingleton");
    const handler = await ethers.deployContract("SafeLikeFallbackHandler");
    const proxy = await ethers.deployContract("SafeLikeProxy", [await singleton.getAddress()]);
    const safe = singleton.attach(await proxy.getAddress()) as typeof singleton;
    await safe.setup(
      keys.map((k) => k.address),
      ownerCount,
      await handler.getAddress(),
    );
    const f = await caseWithWalletBuyer(safe);
    const digest = await f.escrow.signOffDigest(f.caseId, 0, Role.Buyer, 0, EVIDENCE);
    const messageHash = await handler.messageHash(await safe.getAddress(), digest);
    const signature = ethers.concat(keys.map((k) => k.signingKey.sign(messageHash).serialized));
    const item = { caseId: f.caseId, stage: 0, role: Role.Buyer, epoch: 0, evidence: EVIDENCE, signature };
    return { ...f, safe, item, digest };
  }

  const deployTenOwners = () => deploySafeLikeBuyer(10);
  const deployThirtyOwners = () => deploySafeLikeBuyer(30);

  it("verifies a Safe-shaped wallet's ten owner signatures within the stipend, with a third of it to spare", async function () {
    const { escrow, parties, caseId, safe, item, digest } = await loadFixture(deployTenOwners);
    const isValid = new ethers.Interface(["function isValidSignature(bytes32,bytes) view returns (bytes4)"]);
    const data = isValid.encodeFunctionData("isValidSignature", [digest, item.signature]);
    expect(await ethers.provider.call({ to: await safe.getAddress(), data })).to.equal(ethers.zeroPadBytes(MAGIC, 32));
    // What the wallet's answer costs, less the transaction's base cost and its call data: the gas it needs.
    const total = await ethers.provider.estimateGas({ to: await safe.getAddress(), data });
    const calldataGas = BigInt(ethers.getBytes(data).reduce((sum, byte) => sum + (byte === 0 ? 4 : 16), 0));
    const needed = total - 21_000n - calldataGas;
    const stipend = ERC1271_GAS_STIPEND;
    expect(needed * 3n).to.be.lessThan(stipend * 2n);

    await expect(escrow.connect(parties.relayer).signOffWithSignatures([item]))
      .to.emit(escrow, "SignedOff")
      .withArgs(caseId, 0, Role.Buyer, EVIDENCE);
  });

  it("skips a Safe-shaped wallet whose thirty owner signatures cost more than the stipend", async function () {
    const { escrow, parties, caseId, item } = await loadFixture(deployThirtyOwners);

    await expect(escrow.connect(parties.relayer).signOffWithSignatures([item]))
      .to.emit(escrow, "SignOffSkipped")
      .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
  });
});
