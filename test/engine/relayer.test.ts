import { expect } from "chai";
import { ethers } from "hardhat";
import { mine } from "@nomicfoundation/hardhat-network-helpers";
import { Relayer } from "../../engine/relayer/relayer";
import type { Submission } from "../../engine/relayer/types";
import { DEFAULT_TERMS, Role, signStage } from "../contracts/fixtures";
import {
  chainNonce,
  chainProvider,
  loadRelayerFixture,
  newRelayer,
  openOutboxDb,
  signedOffEvents,
  signedSignOff,
  tempDbFile,
} from "./relayer-helpers";

describe("Relayer", function () {
  describe("submit", function () {
    it("relays a party's signed sign-off and settles it confirmed, with the evidence on chain", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
      const settled: Submission[] = [];
      relayer.on("settled", (s) => settled.push(s));
      const intent = await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer");

      const submission = relayer.submit(intent, "approval-1");
      expect(submission.status).to.equal("pending");
      await relayer.drain();

      const done = relayer.get(submission.id)!;
      expect(done.status).to.equal("confirmed");
      expect(done.nonce).to.equal(0);
      expect(done.note).to.equal(null);
      expect(settled.map((s) => s.id)).to.deep.equal([submission.id]);
      const events = await signedOffEvents(fx.escrow, fx.caseId);
      expect(events).to.have.length(1);
      expect(events[0].args.role).to.equal(BigInt(Role.Buyer));
      expect(events[0].args.evidence).to.equal(intent.message.evidence);
      expect(events[0].transactionHash).to.equal(done.txHash);
    });

    it("sends a party's call from its managed key", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
      const s = relayer.submit(
        {
          kind: "call",
          from: fx.managed.buyer.address,
          method: "deposit",
          args: [fx.caseId, Role.Buyer, DEFAULT_TERMS.deposit],
          value: DEFAULT_TERMS.deposit.toString(),
        },
        "deposit-1",
      );
      expect(s.sender).to.equal(fx.managed.buyer.address);
      await relayer.drain();
      expect(relayer.get(s.id)!.status).to.equal("confirmed");
      expect((await fx.escrow.caseOf(fx.caseId)).paidByBuyer).to.equal(DEFAULT_TERMS.deposit);
    });

    it("refuses a call from an address it holds no key for", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
      expect(() =>
        relayer.submit({ kind: "call", from: fx.parties.stranger.address, method: "advance", args: [1] }, "k"),
      ).to.throw(/holds no key/);
    });
  });

  describe("batching", function () {
    it("packs the sign-offs pending in one window into one signOffWithSignatures transaction", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx, { batchWindowMs: 30 });
      const intents = [
        await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"),
        await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Seller"),
        await signedSignOff(fx.escrow, fx.parties, fx.caseId, 1, "Lawyer"),
      ];
      const ids = intents.map((intent, i) => relayer.submit(intent, `k${i}`).id);
      await relayer.drain();

      const subs = ids.map((id) => relayer.get(id)!);
      expect(new Set(subs.map((s) => s.txHash)).size).to.equal(1);
      expect(subs.map((s) => s.batchIndex)).to.deep.equal([0, 1, 2]);
      expect(subs.every((s) => s.status === "confirmed")).to.equal(true);
      expect(await chainNonce(fx.relayerWallet.address)).to.equal(1);
      expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(3);
      expect((await fx.escrow.stageOf(fx.caseId, 0)).status).to.equal(4n); // Completed
    });

    it("sends a batch on its gas allowance, unestimated; one that runs out of it is sent again, estimated, and lands", async function () {
      const fx = await loadRelayerFixture();
      let estimates = 0;
      const provider = chainProvider(async (args, forward) => {
        if (args.method === "eth_estimateGas") estimates += 1;
        return forward();
      });
      // No gas for the items themselves: the first batch runs out of gas on chain.
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx, { batchWindowMs: 30, signOffItemGas: 0n, provider });
      const intents = [
        await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"),
        await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Seller"),
        await signedSignOff(fx.escrow, fx.parties, fx.caseId, 1, "Lawyer"),
      ];
      const ids = intents.map((intent, i) => relayer.submit(intent, `k${i}`).id);
      await relayer.drain();

      expect(ids.map((id) => relayer.get(id)!.status)).to.deep.equal(["confirmed", "confirmed", "confirmed"]);
      const txs = relayer.outbox.transactions();
      expect(txs.map((t) => [t.nonce, t.status])).to.deep.equal([
        [0, "failed"],
        [1, "confirmed"],
      ]);
      expect(estimates, "only the batch sent again").to.equal(1);
      expect(await chainNonce(fx.relayerWallet.address)).to.equal(2);
      expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(3);
    });

    it("fails only the item whose signature is invalid (SignOffSkipped InvalidSignature) and lands the rest in the same transaction", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
      const good = await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer");
      const forged = { ...(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Seller")) };
      forged.signature = good.signature; // the buyer's signature offered as the seller's
      const a = relayer.submit(good, "good");
      const b = relayer.submit(forged, "forged");
      await relayer.drain();

      expect(relayer.get(a.id)!.status).to.equal("confirmed");
      const failed = relayer.get(b.id)!;
      expect(failed.status).to.equal("failed");
      expect(failed.txHash, "carried by the same transaction").to.equal(relayer.get(a.id)!.txHash);
      expect(failed.error!.code).to.equal("SIGN_OFF_INVALID_SIGNATURE");
      expect(failed.error!.message).to.include(fx.parties.seller.address).and.include("seller");
      expect(await chainNonce(fx.relayerWallet.address)).to.equal(1);
    });
  });

  describe("outcomes", function () {
    it("records a sign-off the party already made directly as done (SignOffSkipped AlreadySignedOff)", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
      const intent = await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer");
      await signStage(fx.escrow, fx.parties, fx.caseId, 0, "Buyer");
      const s = relayer.submit(intent, "late");
      await relayer.drain();

      const done = relayer.get(s.id)!;
      expect(done.status).to.equal("confirmed");
      expect(done.note).to.match(/someone else/);
      expect(done.error).to.equal(null);
      const receipt = await ethers.provider.getTransactionReceipt(done.txHash!);
      const skipped = receipt!.logs
        .map((l) => fx.escrow.interface.parseLog(l))
        .filter((l) => l?.name === "SignOffSkipped");
      expect(skipped).to.have.length(1);
      expect(skipped[0]!.args.reason).to.equal(0n);
      expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(1);
    });

    it("records a direct call refused with MortgageEscrowAlreadySignedOff as done, using no nonce", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
      await signStage(fx.escrow, fx.parties, fx.caseId, 0, "Buyer");
      const before = await chainNonce(fx.managed.buyer.address);
      const s = relayer.submit(
        {
          kind: "call",
          from: fx.managed.buyer.address,
          method: "signOff",
          args: [fx.caseId, 0, Role.Buyer, ethers.id("doc")],
        },
        "direct",
      );
      await relayer.drain();
      const done = relayer.get(s.id)!;
      expect(done.status).to.equal("confirmed");
      expect(done.note).to.match(/someone else/);
      expect(done.nonce).to.equal(null);
      expect(await chainNonce(fx.managed.buyer.address)).to.equal(before);
    });

    it("fails a call with the decoded custom error's name and arguments, using no nonce", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
      const s = relayer.submit(
        {
          kind: "call",
          from: fx.managed.buyer.address,
          method: "deposit",
          args: [fx.caseId, Role.Buyer, 5],
          value: "4",
        },
        "bad-deposit",
      );
      await relayer.drain();
      const failed = relayer.get(s.id)!;
      expect(failed.status).to.equal("failed");
      expect(failed.error!.code).to.equal("CONTRACT_REVERTED");
      expect(failed.error!.details).to.deep.equal({ error: "MortgageEscrowInvalidDeposit", args: ["5", "4"] });
      expect(failed.nonce).to.equal(null);
      expect(relayer.outbox.nextNonce(fx.managed.buyer.address)).to.equal(await chainNonce(fx.managed.buyer.address));
    });

    it("fails a relayed sign-off for a case that is not open (SignOffSkipped CaseNotOpen)", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
      await fx.escrow.connect(fx.parties.bank).cancel(fx.caseId);
      await fx.escrow.connect(fx.parties.lawyer).cancel(fx.caseId);
      await fx.escrow.connect(fx.parties.buyer).cancel(fx.caseId);
      const intent = await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Seller");
      await fx.escrow.connect(fx.parties.seller).cancel(fx.caseId);
      const s = relayer.submit(intent, "too-late");
      await relayer.drain();
      const failed = relayer.get(s.id)!;
      expect(failed.status).to.equal("failed");
      expect(failed.error!.code).to.equal("SIGN_OFF_CASE_NOT_OPEN");
      expect(failed.txHash).to.be.a("string");
    });

    it("fails a sign-off whose signer revoked since signing (SignOffSkipped StaleEpoch)", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
      const stale = await signedSignOff(fx.escrow, fx.parties, fx.caseId, 1, "Lawyer");
      await signStage(fx.escrow, fx.parties, fx.caseId, 1, "Lawyer");
      await fx.escrow.connect(fx.parties.lawyer).revokeSignOff(fx.caseId, 1, Role.Lawyer);
      const s = relayer.submit(stale, "stale");
      await relayer.drain();
      const failed = relayer.get(s.id)!;
      expect(failed.status).to.equal("failed");
      expect(failed.error!.code).to.equal("SIGN_OFF_STALE_EPOCH");
    });
  });

  describe("confirmations", function () {
    it("keeps a transaction mined until it has the configured confirmations, then confirms it", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx, { confirmations: 3 });
      const s = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "c");
      await relayer.tick();
      await relayer.tick();
      expect(relayer.get(s.id)!.status).to.equal("mined");
      await mine(1);
      await relayer.tick();
      expect(relayer.get(s.id)!.status).to.equal("mined");
      await mine(1);
      await relayer.tick();
      const done = relayer.get(s.id)!;
      expect(done.status).to.equal("confirmed");
      expect(done.blockNumber).to.equal((await ethers.provider.getBlockNumber()) - 2);
    });
  });

  describe("nonces", function () {
    it("starts from the chain's count when the key was used before", async function () {
      const fx = await loadRelayerFixture();
      const signer = fx.relayerWallet.connect(ethers.provider);
      await (await signer.sendTransaction({ to: fx.parties.stranger.address, value: 1n })).wait();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
      const s = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "n");
      await relayer.drain();
      expect(relayer.get(s.id)!.nonce).to.equal(1);
      expect(relayer.get(s.id)!.status).to.equal("confirmed");
    });
  });

  describe("start and stop", function () {
    it("settles submissions from its worker loop and reports settled events", async function () {
      const fx = await loadRelayerFixture();
      const relayer = newRelayer(openOutboxDb(tempDbFile()), fx, { batchWindowMs: 10 });
      relayer.start();
      try {
        const settled = new Promise<Submission>((resolve) => relayer.once("settled", resolve));
        const s = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "loop");
        const done = await settled;
        expect(done.id).to.equal(s.id);
        expect(done.status).to.equal("confirmed");
        expect(relayer.health().running).to.equal(true);
      } finally {
        await relayer.stop();
      }
      expect(relayer.health().running).to.equal(false);
      expect(relayer).to.be.instanceOf(Relayer);
    });
  });
});
