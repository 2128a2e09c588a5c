import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { MortgageEscrow } from "../../typechain-types";
import {
  DEFAULT_TERMS,
  EVIDENCE,
  Role,
  type RoleName,
  SMALL_PURCHASE,
  SkipReason,
  caseTerms,
  deployWithCase,
  openCase,
  registerTemplate,
  signRevocation,
  signSignOff,
  signedItem,
} from "./fixtures";
import {
  type CaseParties,
  compact,
  ecrecoverPrecompile,
  expectSolvent,
  malleate,
  openCaseWith,
  roleBit,
  signSignOffInDomain,
  signedOffIn,
} from "./attacks.helpers";

async function expectNotSignedOff(escrow: MortgageEscrow, caseId: bigint, stage: number, role: number) {
  expect((await escrow.caseOf(caseId)).signedOffRoles & roleBit(stage, role)).to.equal(0n);
}

describe("MortgageEscrow attacks: signatures", function () {
  describe("replay", function () {
    it("rejects a sign-off signed for one case when relayed for another case of the same parties", async function () {
      const { escrow, parties, templateId, caseId } = await loadFixture(deployWithCase);
      const otherCase = await openCase(escrow, parties, templateId);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");

      await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...item, caseId: otherCase }]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(otherCase, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([item]))
        .to.emit(escrow, "SignedOff")
        .withArgs(caseId, 0, Role.Buyer, item.evidence);
      await expectNotSignedOff(escrow, otherCase, 0, Role.Buyer);
    });

    it("rejects a sign-off signed for one stage when relayed for another stage the same role signs", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");

      await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...item, stage: 1 }]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 1, Role.Buyer, 0, SkipReason.InvalidSignature);
      await expectNotSignedOff(escrow, caseId, 1, Role.Buyer);
    });

    it("rejects a sign-off signed for one role when relayed for another role held by the same address", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithCase);
      // The buyer's address is also the case's lawyer: only the role in the signed message separates the two.
      const both: CaseParties = {
        Bank: parties.bank,
        Lawyer: parties.buyer,
        Buyer: parties.buyer,
        Seller: parties.seller,
      };
      const caseId = await openCaseWith(escrow, parties.bank, both, templateId, DEFAULT_TERMS);
      const asLawyer = { caseId, stage: 1, role: Role.Lawyer, epoch: 0, evidence: EVIDENCE };
      const signature = await signSignOff(escrow, parties.buyer, asLawyer);

      await expect(
        escrow.connect(parties.relayer).signOffWithSignatures([{ ...asLawyer, role: Role.Buyer, signature }]),
      )
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 1, Role.Buyer, 0, SkipReason.InvalidSignature);
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...asLawyer, signature }]))
        .to.emit(escrow, "SignedOff")
        .withArgs(caseId, 1, Role.Lawyer, EVIDENCE);
      expect((await escrow.caseOf(caseId)).signedOffRoles).to.equal(roleBit(1, Role.Lawyer));
    });

    it("rejects one party's signature relayed as another party's role", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");

      await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...item, role: Role.Seller }]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Seller, 0, SkipReason.InvalidSignature);
    });

    it("rejects a revocation signature relayed as a sign-off", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const signature = await signRevocation(escrow, parties.buyer, { caseId, stage: 0, role: Role.Buyer, epoch: 0 });

      await expect(
        escrow.signOffWithSignatures([
          { caseId, stage: 0, role: Role.Buyer, epoch: 0, evidence: ethers.ZeroHash, signature },
        ]),
      )
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
    });

    describe("after revocation", function () {
      it("skips a relayed sign-off replayed after its signer revoked it, with reason StaleEpoch", async function () {
        const { escrow, parties, caseId } = await loadFixture(deployWithCase);
        const item = await signedItem(escrow, parties, caseId, 0, "Buyer");
        await (await escrow.connect(parties.relayer).signOffWithSignatures([item])).wait();
        await expect(escrow.connect(parties.buyer).revokeSignOff(caseId, 0, Role.Buyer))
          .to.emit(escrow, "SignOffRevoked")
          .withArgs(caseId, 0, Role.Buyer, 1);

        const replay = escrow.connect(parties.stranger).signOffWithSignatures([item]);
        await expect(replay)
          .to.emit(escrow, "SignOffSkipped")
          .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.StaleEpoch);
        await expect(replay).not.to.emit(escrow, "SignedOff");
        await expectNotSignedOff(escrow, caseId, 0, Role.Buyer);
      });

      it("rejects the revoked signature with its epoch raised to the current one as MortgageEscrowInvalidSignature", async function () {
        const { escrow, parties, caseId } = await loadFixture(deployWithCase);
        const item = await signedItem(escrow, parties, caseId, 0, "Buyer");
        await (await escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE)).wait();
        await (await escrow.connect(parties.buyer).revokeSignOff(caseId, 0, Role.Buyer)).wait();
        expect(await escrow.signOffEpoch(caseId, 0, Role.Buyer)).to.equal(1n);

        await expect(escrow.signOffWithSignatures([{ ...item, epoch: 1 }]))
          .to.emit(escrow, "SignOffSkipped")
          .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
        await expect(escrow.signOffWithSignatures([item]))
          .to.emit(escrow, "SignOffSkipped")
          .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.StaleEpoch);
        await expectNotSignedOff(escrow, caseId, 0, Role.Buyer);
        // A fresh signature at the new epoch is what it takes.
        const fresh = await signedItem(escrow, parties, caseId, 0, "Buyer", EVIDENCE, 1);
        await expect(escrow.signOffWithSignatures([fresh]))
          .to.emit(escrow, "SignedOff")
          .withArgs(caseId, 0, Role.Buyer, EVIDENCE);
      });

      it("rejects a relayed revocation replayed after it was used, with MortgageEscrowWrongEpoch", async function () {
        const { escrow, parties, caseId } = await loadFixture(deployWithCase);
        await (await escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE)).wait();
        const revocation = await signRevocation(escrow, parties.buyer, {
          caseId,
          stage: 0,
          role: Role.Buyer,
          epoch: 0,
        });
        await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, revocation))
          .to.emit(escrow, "SignOffRevoked")
          .withArgs(caseId, 0, Role.Buyer, 1);
        await (await escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE)).wait();

        await expect(escrow.connect(parties.stranger).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, revocation))
          .to.be.revertedWithCustomError(escrow, "MortgageEscrowWrongEpoch")
          .withArgs(caseId, 0, Role.Buyer, 0, 1);
        await expect(escrow.connect(parties.stranger).revokeSignOffWithSignature(caseId, 0, Role.Buyer, 1, revocation))
          .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidSignature")
          .withArgs(0, caseId, 0, Role.Buyer);
        expect((await escrow.caseOf(caseId)).signedOffRoles).to.equal(roleBit(0, Role.Buyer));
      });
    });

    it("rejects a sign-off signed for another deployment of the escrow", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const other = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
      const otherTemplate = await registerTemplate(other, parties.admin, SMALL_PURCHASE);
      const otherCase = await openCase(other, parties, otherTemplate);
      expect(otherCase).to.equal(caseId);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");

      await expect(other.connect(parties.relayer).signOffWithSignatures([item]))
        .to.emit(other, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
      expect(await other.signOffDigest(caseId, 0, Role.Buyer, 0, item.evidence)).not.to.equal(
        await escrow.signOffDigest(caseId, 0, Role.Buyer, 0, item.evidence),
      );
    });

    it("rejects a sign-off signed under another chain id", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const message = { caseId, stage: 0, role: Role.Buyer, epoch: 0, evidence: EVIDENCE };
      const verifyingContract = await escrow.getAddress();
      const { chainId } = await ethers.provider.getNetwork();
      const signature = await signSignOffInDomain(parties.buyer, { chainId: 1n, verifyingContract }, message);

      await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...message, signature }]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
      // The same message under this chain's id is accepted: only the domain differed.
      const here = await signSignOffInDomain(parties.buyer, { chainId, verifyingContract }, message);
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...message, signature: here }]))
        .to.emit(escrow, "SignedOff")
        .withArgs(caseId, 0, Role.Buyer, EVIDENCE);
    });
  });

  describe("malleability", function () {
    it("rejects the high-s twin (s' = n - s, v flipped) of a valid signature, though ecrecover accepts it", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");
      const twin = malleate(item.signature as string);
      const digest = await escrow.signOffDigest(caseId, 0, Role.Buyer, 0, item.evidence);
      expect(await ecrecoverPrecompile(digest, twin)).to.equal(parties.buyer.address);

      await expect(escrow.signOffWithSignatures([{ ...item, signature: twin }]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
      await expectNotSignedOff(escrow, caseId, 0, Role.Buyer);
    });

    it("rejects the high-s twin of a valid revocation signature", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      await (await escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE)).wait();
      const revocation = await signRevocation(escrow, parties.buyer, { caseId, stage: 0, role: Role.Buyer, epoch: 0 });

      await expect(escrow.revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, malleate(revocation)))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidSignature")
        .withArgs(0, caseId, 0, Role.Buyer);
      expect(await escrow.signOffEpoch(caseId, 0, Role.Buyer)).to.equal(0n);
    });

    it("rejects an EIP-2098 compact 64-byte signature that encodes a valid signature", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");
      const short = compact(item.signature as string);
      expect(ethers.dataLength(short)).to.equal(64);
      const digest = await escrow.signOffDigest(caseId, 0, Role.Buyer, 0, item.evidence);
      expect(ethers.recoverAddress(digest, short)).to.equal(parties.buyer.address);

      await expect(escrow.signOffWithSignatures([{ ...item, signature: short }]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
      await (await escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE)).wait();
      const revocation = await signRevocation(escrow, parties.buyer, { caseId, stage: 0, role: Role.Buyer, epoch: 0 });
      await expect(escrow.revokeSignOffWithSignature(caseId, 0, Role.Buyer, 0, compact(revocation)))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidSignature")
        .withArgs(0, caseId, 0, Role.Buyer);
    });

    it("never turns a malleated copy of a valid signature into a second sign-off, before or after a revocation", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 1, "Buyer");
      const twin = { ...item, signature: malleate(item.signature as string) };
      const first = await escrow.connect(parties.relayer).signOffWithSignatures([item]);
      expect(await signedOffIn(escrow, first)).to.deep.equal([[1, Role.Buyer]]);

      const whileSigned = await escrow
        .connect(parties.stranger)
        .signOffWithSignatures([twin, { ...twin, signature: compact(item.signature as string) }]);
      await expect(whileSigned)
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 1, Role.Buyer, 0, SkipReason.AlreadySignedOff);
      await expect(whileSigned)
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 1, Role.Buyer, 1, SkipReason.AlreadySignedOff);
      expect(await signedOffIn(escrow, whileSigned)).to.deep.equal([]);

      await (await escrow.connect(parties.buyer).revokeSignOff(caseId, 1, Role.Buyer)).wait();
      await expect(escrow.signOffWithSignatures([twin]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 1, Role.Buyer, 0, SkipReason.StaleEpoch);
      await expect(escrow.signOffWithSignatures([{ ...twin, epoch: 1 }]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 1, Role.Buyer, 0, SkipReason.InvalidSignature);
      await expectNotSignedOff(escrow, caseId, 1, Role.Buyer);
    });
  });

  describe("invalid signatures", function () {
    const kinds: Array<[string, (valid: string) => string]> = [
      ["65 random bytes", () => ethers.hexlify(ethers.randomBytes(65))],
      ["65 zero bytes", () => ethers.hexlify(new Uint8Array(65))],
      ["a valid r and s with v = 0", (valid) => ethers.concat([ethers.dataSlice(valid, 0, 64), "0x00"])],
      ["a valid r and s with v = 1", (valid) => ethers.concat([ethers.dataSlice(valid, 0, 64), "0x01"])],
      ["a valid signature with a byte appended", (valid) => ethers.concat([valid, "0x1b"])],
      ["a valid signature cut to its first 64 bytes", (valid) => ethers.dataSlice(valid, 0, 64)],
      ["a valid signature cut to 63 bytes", (valid) => ethers.dataSlice(valid, 0, 63)],
      ["an empty signature", () => "0x"],
      ["r = 0 and s = 0 with v = 27", () => ethers.concat([ethers.ZeroHash, ethers.ZeroHash, "0x1b"])],
    ];

    for (const [kind, make] of kinds) {
      it(`skips ${kind} for a role as InvalidSignature`, async function () {
        const { escrow, parties, caseId } = await loadFixture(deployWithCase);
        const item = await signedItem(escrow, parties, caseId, 0, "Buyer");
        await expect(escrow.signOffWithSignatures([{ ...item, signature: make(item.signature as string) }]))
          .to.emit(escrow, "SignOffSkipped")
          .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.InvalidSignature);
        await expectNotSignedOff(escrow, caseId, 0, Role.Buyer);
      });
    }

    it("skips the invalid item at its index and applies the valid items before it in the same transaction", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const good = [
        await signedItem(escrow, parties, caseId, 0, "Buyer"),
        await signedItem(escrow, parties, caseId, 0, "Seller"),
      ];
      const bad = {
        ...(await signedItem(escrow, parties, caseId, 1, "Lawyer")),
        signature: ethers.hexlify(new Uint8Array(65)),
      };

      await expect(escrow.signOffWithSignatures([...good, bad]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 1, Role.Lawyer, 2, SkipReason.InvalidSignature)
        .and.to.emit(escrow, "StageCompleted")
        .withArgs(caseId, 0);
      expect((await escrow.caseOf(caseId)).signedOffRoles).to.equal(roleBit(0, Role.Buyer) | roleBit(0, Role.Seller));
    });

    it("never lets ecrecover's zero result count: no party can be the zero address", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithCase);
      // The all-zero signature recovers to no one (the precompile returns nothing, i.e. address zero)...
      expect(
        await ecrecoverPrecompile(ethers.id("anything"), ethers.concat([ethers.ZeroHash, ethers.ZeroHash, "0x1b"])),
      ).to.equal(null);
      // ...and a case can never name the zero address for any role, so there is no party it could match.
      for (const role of ["Bank", "Lawyer", "Buyer", "Seller"] as RoleName[]) {
        const terms = caseTerms(parties, templateId);
        const key = role.toLowerCase() as "bank" | "lawyer" | "buyer" | "seller";
        await expect(escrow.connect(parties.admin).openCase({ ...terms, [key]: ethers.ZeroAddress }))
          .to.be.revertedWithCustomError(escrow, "MortgageEscrowZeroParty")
          .withArgs(Role[role]);
      }
    });

    it("skips an item for a case that does not exist as CaseNotOpen, whatever its signature, and signs nothing", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const item = await signedItem(escrow, parties, caseId, 0, "Buyer");
      const ghost = caseId + 100n;
      const tx = escrow.signOffWithSignatures([
        { ...item, caseId: ghost, signature: ethers.hexlify(new Uint8Array(65)) },
      ]);
      await expect(tx).to.emit(escrow, "SignOffSkipped").withArgs(ghost, 0, Role.Buyer, 0, SkipReason.CaseNotOpen);
      await expect(tx).not.to.emit(escrow, "SignedOff");
      await expect(escrow.caseOf(ghost))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase")
        .withArgs(ghost);
    });
  });

  describe("ERC-1271 contract wallets", function () {
    async function deployWithWalletSeller() {
      const { escrow, parties, templateId } = await deployWithCase();
      const [, , , , , , , owner] = await ethers.getSigners();
      const wallet = await ethers.deployContract("ERC1271Wallet", [owner.address]);
      const withWallet = {
        Bank: parties.bank,
        Lawyer: parties.lawyer,
        Buyer: parties.buyer,
        Seller: { address: await wallet.getAddress() },
      };
      const caseId = await openCaseWith(escrow, parties.bank, withWallet, templateId, DEFAULT_TERMS);
      return { escrow, parties, owner, wallet, caseId };
    }

    it("applies a relayed sign-off that the wallet's owner signed for the wallet", async function () {
      const { escrow, parties, owner, wallet, caseId } = await loadFixture(deployWithWalletSeller);
      const message = { caseId, stage: 0, role: Role.Seller, epoch: 0, evidence: EVIDENCE };
      const signature = await signSignOff(escrow, owner, message);
      const digest = await escrow.signOffDigest(caseId, 0, Role.Seller, 0, EVIDENCE);
      expect(await wallet.isValidSignature(digest, signature)).to.equal("0x1626ba7e");

      await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...message, signature }]))
        .to.emit(escrow, "SignedOff")
        .withArgs(caseId, 0, Role.Seller, EVIDENCE);
      expect((await escrow.caseOf(caseId)).signedOffRoles).to.equal(roleBit(0, Role.Seller));
    });

    it("rejects a sign-off for the wallet signed by someone other than its owner", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithWalletSeller);
      const message = { caseId, stage: 0, role: Role.Seller, epoch: 0, evidence: EVIDENCE };
      const signature = await signSignOff(escrow, parties.seller, message);

      await expect(escrow.connect(parties.relayer).signOffWithSignatures([{ ...message, signature }]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Seller, 0, SkipReason.InvalidSignature);
      await expectNotSignedOff(escrow, caseId, 0, Role.Seller);
    });

    it("does not make the wallet's owner a party: it cannot sign off directly as the wallet's role", async function () {
      const { escrow, owner, caseId } = await loadFixture(deployWithWalletSeller);
      await expect(escrow.connect(owner).signOff(caseId, 0, Role.Seller, EVIDENCE))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
        .withArgs(caseId, owner.address, Role.Seller);
    });

    it("lets the owner revoke the wallet's sign-off by signature, which voids the earlier signature", async function () {
      const { escrow, parties, owner, caseId } = await loadFixture(deployWithWalletSeller);
      const message = { caseId, stage: 0, role: Role.Seller, epoch: 0, evidence: EVIDENCE };
      const item = { ...message, signature: await signSignOff(escrow, owner, message) };
      await (await escrow.signOffWithSignatures([item])).wait();
      const revocation = await signRevocation(escrow, owner, { caseId, stage: 0, role: Role.Seller, epoch: 0 });
      await expect(escrow.connect(parties.relayer).revokeSignOffWithSignature(caseId, 0, Role.Seller, 0, revocation))
        .to.emit(escrow, "SignOffRevoked")
        .withArgs(caseId, 0, Role.Seller, 1);

      await expect(escrow.signOffWithSignatures([item]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Seller, 0, SkipReason.StaleEpoch);
      await expectNotSignedOff(escrow, caseId, 0, Role.Seller);
    });
  });

  describe("front-running a batch", function () {
    it("applies the rest of a batch whose items 1 and 3 someone relayed first, skipping those two as AlreadySignedOff", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithCase);
      const batch = [
        await signedItem(escrow, parties, caseId, 0, "Buyer"),
        await signedItem(escrow, parties, caseId, 0, "Seller"),
        await signedItem(escrow, parties, caseId, 1, "Lawyer"),
        await signedItem(escrow, parties, caseId, 1, "Buyer"),
      ];
      const frontRun = await escrow.connect(parties.stranger).signOffWithSignatures([batch[1], batch[3]]);
      expect(await signedOffIn(escrow, frontRun)).to.deep.equal([
        [0, Role.Seller],
        [1, Role.Buyer],
      ]);

      const full = await escrow.connect(parties.relayer).signOffWithSignatures(batch);
      await expect(full)
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Seller, 1, SkipReason.AlreadySignedOff);
      await expect(full)
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 1, Role.Buyer, 3, SkipReason.AlreadySignedOff);
      expect(await signedOffIn(escrow, full)).to.deep.equal([
        [0, Role.Buyer],
        [1, Role.Lawyer],
      ]);
      expect((await escrow.caseOf(caseId)).signedOffRoles).to.equal(
        roleBit(0, Role.Buyer) | roleBit(0, Role.Seller) | roleBit(1, Role.Lawyer) | roleBit(1, Role.Buyer),
      );
      // Relaying it all once more changes nothing and still does not revert.
      const again = await escrow.signOffWithSignatures(batch);
      expect(await signedOffIn(escrow, again)).to.deep.equal([]);
      await expectSolvent(escrow, [caseId]);
    });
  });
});
