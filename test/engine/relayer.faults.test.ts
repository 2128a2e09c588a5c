/**
 * The relayer's fault tests (the list): each breaks one thing on a real in-process chain with a real
 * SQLite file, and checks that every approval lands on chain exactly once.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, mine } from "@nomicfoundation/hardhat-network-helpers";
import { Transaction } from "ethers";
import { EngineError } from "../../engine/errors";
import { IdempotencyConflictError } from "../../engine/relayer/outbox";
import { RelayerOutOfFundsError } from "../../engine/relayer/errors";
import type { Submission } from "../../engine/relayer/types";
import {
  chainNonce,
  chainProvider,
  loadRelayerFixture,
  manyCasesFixture,
  newRelayer,
  openOutboxDb,
  rpc,
  setBalance,
  signedOffEvents,
  signedSignOff,
  tempDbFile,
  withAutomineOff,
} from "./relayer-helpers";
import { US_PURCHASE } from "../contracts/fixtures";

describe("Relayer under faults", function () {
  afterEach(async function () {
    await rpc("evm_setAutomine", [true]);
  });

  it("1. a crash after the outbox write, before broadcast: a new relayer on the same file makes exactly one sign-off", async function () {
    const fx = await loadRelayerFixture();
    const file = tempDbFile();
    const db = openOutboxDb(file);
    const first = newRelayer(db, fx);
    first.start();
    const s = first.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "approval");
    await first.stop(); // the process dies right after the outbox write
    db.close();
    expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(0);

    const restarted = newRelayer(openOutboxDb(file), fx);
    expect(restarted.get(s.id)!.status).to.equal("pending");
    expect(restarted.submit(s.payload, "approval").id).to.equal(s.id);
    await restarted.drain();
    expect(restarted.get(s.id)!.status).to.equal("confirmed");
    expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(1);
    expect(await chainNonce(fx.relayerWallet.address)).to.equal(1);
  });

  it("1b. a crash after signing, before the broadcast reached the node: the restart sends the stored bytes, not a new signature", async function () {
    const fx = await loadRelayerFixture();
    const file = tempDbFile();
    const db = openOutboxDb(file);
    const crashing = newRelayer(db, fx, {
      provider: chainProvider(async (args, forward) => {
        if (args.method === "eth_sendRawTransaction") throw new Error("process killed");
        return forward();
      }),
    });
    const s = crashing.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "approval");
    await crashing.tick().catch(() => undefined);
    const stored = crashing.get(s.id)!;
    expect(stored.status).to.equal("sent");
    expect(stored.rawTx).to.be.a("string");
    expect(Transaction.from(stored.rawTx!).hash).to.equal(stored.txHash);
    db.close();

    const restarted = newRelayer(openOutboxDb(file), fx);
    await restarted.drain();
    const done = restarted.get(s.id)!;
    expect(done.status).to.equal("confirmed");
    expect(done.txHash).to.equal(stored.txHash);
    expect(restarted.outbox.transactions()).to.have.length(1);
    expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(1);
  });

  it("3. the same approval twice within a millisecond, and the same key twice: one transaction; another payload under a key is refused", async function () {
    const fx = await loadRelayerFixture();
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
    const intent = await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer");
    const started = performance.now();
    const a = relayer.submit(intent, "approval-a");
    const b = relayer.submit(intent, "approval-b"); // the same approval under a second key
    const again = relayer.submit({ ...intent }, "approval-a");
    expect(performance.now() - started).to.be.lessThan(50);
    expect(again.id).to.equal(a.id);
    expect(b.id).to.not.equal(a.id);

    const other = await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Seller");
    let refused: unknown;
    try {
      relayer.submit(other, "approval-a");
    } catch (error) {
      refused = error;
    }
    expect(refused).to.be.instanceOf(IdempotencyConflictError);
    expect((refused as EngineError).code).to.equal("IDEMPOTENCY_CONFLICT");

    await relayer.drain();
    expect(relayer.get(a.id)!.status).to.equal("confirmed");
    expect(relayer.get(b.id)!.status).to.equal("confirmed");
    expect(relayer.get(a.id)!.txHash).to.equal(relayer.get(b.id)!.txHash);
    expect(relayer.outbox.list()).to.have.length(2);
    expect(relayer.outbox.transactions()).to.have.length(1);
    expect(await chainNonce(fx.relayerWallet.address)).to.equal(1);
    expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(1);
  });

  it("4. a dropped transaction is re-sent (the same bytes) and makes one sign-off", async function () {
    const fx = await loadRelayerFixture();
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
    const s = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "approval");
    await withAutomineOff(async () => {
      await relayer.tick();
      const sent = relayer.get(s.id)!;
      expect(sent.status).to.equal("sent");
      expect(await rpc("hardhat_dropTransaction", [sent.txHash])).to.equal(true);
      expect(await ethers.provider.getTransaction(sent.txHash!)).to.equal(null);
      await relayer.tick(); // the node lacks it and the nonce is unused: re-broadcast
      expect(await ethers.provider.getTransaction(sent.txHash!)).to.not.equal(null);
      await mine(1);
    });
    await relayer.drain();
    const done = relayer.get(s.id)!;
    expect(done.status).to.equal("confirmed");
    expect(done.attempts).to.equal(2);
    expect(relayer.outbox.transactions()).to.have.length(1);
    expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(1);
  });

  it("5. an underpriced transaction is replaced with both fees raised by at least 10% and mined", async function () {
    const fx = await loadRelayerFixture();
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx, { feeBumpPercent: 10 });
    const s = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "approval");
    await withAutomineOff(async () => {
      await relayer.tick();
      const [first] = relayer.outbox.transactions();
      await rpc("hardhat_setNextBlockBaseFeePerGas", [ethers.toQuantity(first.maxFeePerGas + 1n)]);
      for (let i = 0; i < 3; i++) await relayer.tick();
      expect(relayer.outbox.transactions()).to.have.length(2);
      await mine(1);
    });
    await relayer.drain();

    const [first, second] = relayer.outbox.transactions();
    expect(first.status).to.equal("replaced");
    expect(second.status).to.equal("confirmed");
    expect(second.nonce).to.equal(first.nonce);
    const done = relayer.get(s.id)!;
    expect(done.status).to.equal("confirmed");
    expect(done.txHash).to.equal(second.txHash);
    const mined = await ethers.provider.getTransaction(done.txHash!);
    expect(mined!.maxFeePerGas! * 100n).to.be.gte(first.maxFeePerGas * 110n);
    expect(mined!.maxPriorityFeePerGas! * 100n).to.be.gte(first.maxPriorityFeePerGas * 110n);
    expect(await ethers.provider.getTransactionReceipt(first.txHash)).to.equal(null);
    expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(1);
  });

  it("6. a nonce gap (n dropped while n+1 waits) is filled", async function () {
    const fx = await loadRelayerFixture();
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
    let a: Submission;
    let b: Submission;
    await withAutomineOff(async () => {
      a = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "a");
      await relayer.tick();
      b = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Seller"), "b");
      await relayer.tick();
      expect([relayer.get(a.id)!.nonce, relayer.get(b.id)!.nonce]).to.deep.equal([0, 1]);
      await rpc("hardhat_dropTransaction", [relayer.get(a.id)!.txHash]);
      await mine(1);
      expect(await chainNonce(fx.relayerWallet.address)).to.equal(0); // n+1 cannot go before n
      await relayer.tick();
      await mine(1);
    });
    await relayer.drain();
    expect(relayer.get(a!.id)!.status).to.equal("confirmed");
    expect(relayer.get(b!.id)!.status).to.equal("confirmed");
    expect(await chainNonce(fx.relayerWallet.address)).to.equal(2);
    expect(relayer.outbox.transactions().map((t) => t.nonce)).to.deep.equal([0, 1]);
    expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(2);
  });

  it("7. 200 approvals at once through one relayer key: contiguous nonces, none lost, none doubled, few transactions", async function () {
    const fx = await loadFixture(manyCasesFixture);
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx, { batchWindowMs: 25, maxBatchSize: 64 });
    const roleNames = ["Bank", "Lawyer", "Buyer", "Seller"] as const;
    const intents = [];
    for (const caseId of fx.caseIds) {
      for (let stage = 0; stage < US_PURCHASE.length; stage++) {
        for (let role = 0; role < 4; role++) {
          if ((Number(US_PURCHASE[stage].roles) & (1 << role)) === 0) continue;
          if (intents.length < 200)
            intents.push(await signedSignOff(fx.escrow, fx.parties, caseId, stage, roleNames[role]));
        }
      }
    }
    expect(intents).to.have.length(200);
    const startNonce = await chainNonce(fx.relayerWallet.address); // the fixture may run on a used chain
    relayer.start();
    let settled = 0;
    const all = new Promise<void>((resolve) =>
      relayer.on("settled", () => {
        if (++settled === 200) resolve();
      }),
    );
    try {
      const ids = intents.map((intent, i) => relayer.submit(intent, `approval-${i}`).id);
      expect(new Set(ids).size).to.equal(200);
      await all;
    } finally {
      await relayer.stop();
    }

    const subs = relayer.outbox.list();
    expect(subs).to.have.length(200);
    expect(subs.every((s) => s.status === "confirmed" && s.note === null)).to.equal(true);
    const txs = relayer.outbox.transactions();
    expect(txs.length).to.equal(4); // 64 + 64 + 64 + 8
    expect(txs.map((t) => t.nonce)).to.deep.equal([0, 1, 2, 3].map((i) => startNonce + i));
    expect(await chainNonce(fx.relayerWallet.address)).to.equal(startNonce + 4);
    let onChain = 0;
    for (const caseId of fx.caseIds) onChain += (await signedOffEvents(fx.escrow, caseId)).length;
    expect(onChain).to.equal(200);
  });

  it("10. out of funds: pauses with a clear error, consumes no nonce, resumes when funded", async function () {
    const fx = await loadRelayerFixture();
    await setBalance(fx.relayerWallet.address, 1000n);
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
    const events: string[] = [];
    relayer.on("paused", (e) => events.push(`paused ${e.code}`));
    relayer.on("resumed", (address) => events.push(`resumed ${address}`));
    const s = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "approval");

    await relayer.tick();
    const health = relayer.health();
    expect(health.paused).to.equal(true);
    expect(health.error).to.be.instanceOf(RelayerOutOfFundsError);
    expect(health.error!.code).to.equal("RELAYER_OUT_OF_FUNDS");
    expect(health.error!.message).to.contain(fx.relayerWallet.address);
    expect(health.error!.message).to.match(/holds 1000 wei .*short by \d+ wei/);
    expect(relayer.get(s.id)!.status).to.equal("pending");
    expect(relayer.get(s.id)!.nonce).to.equal(null);
    expect(relayer.outbox.nextNonce(fx.relayerWallet.address)).to.equal(0);
    expect(relayer.outbox.transactions()).to.have.length(0);
    let drainError: unknown;
    await relayer.drain({ timeoutMs: 2_000 }).catch((e) => (drainError = e));
    expect(drainError).to.be.instanceOf(RelayerOutOfFundsError);

    await setBalance(fx.relayerWallet.address, ethers.parseEther("1"));
    await relayer.drain();
    expect(relayer.health().paused).to.equal(false);
    expect(relayer.get(s.id)!.status).to.equal("confirmed");
    expect(relayer.get(s.id)!.nonce).to.equal(0);
    expect(events).to.deep.equal(["paused RELAYER_OUT_OF_FUNDS", `resumed ${fx.relayerWallet.address}`]);
    expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(1);
  });

  it("10b. the node refusing a send for lack of funds gives the nonce back, and the relayer resumes when funded", async function () {
    const fx = await loadRelayerFixture();
    let drained = false;
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx, {
      provider: chainProvider(async (args, forward) => {
        if (args.method === "eth_sendRawTransaction" && !drained) {
          drained = true; // the balance goes between our check and the node's
          await setBalance(fx.relayerWallet.address, 0n);
        }
        return forward();
      }),
    });
    const s = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "approval");
    await relayer.tick();
    expect(relayer.health().error?.code).to.equal("RELAYER_OUT_OF_FUNDS");
    expect(relayer.get(s.id)!.status).to.equal("pending");
    expect(relayer.outbox.nextNonce(fx.relayerWallet.address)).to.equal(0);
    expect(relayer.outbox.transactions().map((t) => t.status)).to.deep.equal(["replaced"]);

    await setBalance(fx.relayerWallet.address, ethers.parseEther("1"));
    await relayer.drain();
    expect(relayer.get(s.id)!.status).to.equal("confirmed");
    expect(relayer.get(s.id)!.nonce).to.equal(0);
    expect(await chainNonce(fx.relayerWallet.address)).to.equal(1);
  });

  it("a send whose answer is lost is reconciled by hash and nonce, never signed again", async function () {
    const fx = await loadRelayerFixture();
    let lost = 0;
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx, {
      timings: { sendTimeoutMs: 200 },
      provider: chainProvider(async (args, forward) => {
        if (args.method === "eth_sendRawTransaction" && lost < 2) {
          lost += 1;
          await forward(); // the node took it...
          return new Promise(() => undefined); // ...and the answer never comes
        }
        return forward();
      }),
    });
    const a = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "a");
    let error: unknown;
    await relayer.tick().catch((e) => (error = e));
    expect((error as EngineError).code).to.equal("CHAIN_UNAVAILABLE");
    expect(relayer.get(a.id)!.status).to.equal("sent");
    await relayer.drain();
    expect(relayer.get(a.id)!.status).to.equal("confirmed");
    expect(relayer.get(a.id)!.attempts).to.equal(1);
    expect(relayer.outbox.transactions()).to.have.length(1);
    expect(await signedOffEvents(fx.escrow, fx.caseId)).to.have.length(1);
  });

  it("backs off with jitter on RPC errors and carries on when the node answers again", async function () {
    const fx = await loadRelayerFixture();
    let failures = 3;
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx, {
      provider: chainProvider(async (args, forward) => {
        // The balance is asked before each send (a batch of sign-offs is not estimated).
        if (args.method === "eth_getBalance" && failures > 0) {
          failures -= 1;
          throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" });
        }
        return forward();
      }),
    });
    const retries: number[] = [];
    relayer.on("retrying", (e, n) => {
      expect(e.code).to.equal("CHAIN_UNAVAILABLE");
      retries.push(n);
    });
    const settled = new Promise<Submission>((resolve) => relayer.once("settled", resolve));
    relayer.start();
    try {
      relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "a");
      expect((await settled).status).to.equal("confirmed");
    } finally {
      await relayer.stop();
    }
    expect(retries).to.deep.equal([1, 2, 3]);
    expect(relayer.health().error).to.equal(null);
  });

  it("a sign-off the party makes itself while the batch waits in the pool is recorded as done", async function () {
    const fx = await loadRelayerFixture();
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
    const s = relayer.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "a");
    await withAutomineOff(async () => {
      await relayer.tick();
      // The party's own transaction pays a higher tip, so the block puts it first.
      await fx.escrow.connect(fx.parties.buyer).signOff(fx.caseId, 0, 2, ethers.id("direct"), {
        maxPriorityFeePerGas: ethers.parseUnits("50", "gwei"),
        maxFeePerGas: ethers.parseUnits("100", "gwei"),
      });
      await mine(1);
    });
    await relayer.drain();
    const done = relayer.get(s.id)!;
    expect(done.status).to.equal("confirmed");
    expect(done.note).to.match(/someone else/);
    const events = await signedOffEvents(fx.escrow, fx.caseId);
    expect(events).to.have.length(1);
    expect(events[0].args.evidence).to.equal(ethers.id("direct"));
  });
});
