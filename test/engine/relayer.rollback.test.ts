/**
 * The relayer after the chain lost blocks it had counted (finding 3 of issue 10): a chain restored from an older
 * save, with openings, deposits and sign-offs from several of the engine's keys among what it lost. What the
 * chain lost is sent again in an order the contract accepts (a case's opening before anything about the case,
 * deposits before what needs the funds), and a transaction the outbox holds as confirmed in a block the chain
 * no longer has is noticed by the relayer itself, whether or not anyone tells it of a rollback.
 *
 * And a sender that cannot pay (finding 5): the submission waiting for it says whose key, what it holds and
 * what it needs.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { mine } from "@nomicfoundation/hardhat-network-helpers";
import type { Relayer } from "../../engine/relayer/relayer";
import type { Submission } from "../../engine/relayer/types";
import { DEFAULT_TERMS, Role, caseTerms, type RoleName } from "../contracts/fixtures";
import {
  chainProvider,
  loadRelayerFixture,
  newRelayer,
  openOutboxDb,
  rpc,
  setBalance,
  signedSignOff,
  tempDbFile,
} from "./relayer-helpers";

type Fixture = Awaited<ReturnType<typeof loadRelayerFixture>>;

const OPEN = 1;

/** What one relayer recorded before the chain lost it: two new cases, their first sign-offs and the buyer's deposit. */
async function workThenLoseIt(fx: Fixture, file: string, options: { tellRollback: boolean }) {
  const saved = await ethers.provider.getBlockNumber();
  const save = await rpc<string>("evm_snapshot");
  const first = newRelayer(openOutboxDb(file), fx);
  const submitted: Submission[] = [];
  const caseIds: bigint[] = [];
  for (const n of [1, 2]) {
    const open = first.submit(
      { kind: "call", from: fx.managed.bank.address, method: "openCase", args: [caseTerms(fx.parties, fx.templateId)] },
      `open-${n}`,
    );
    await first.drain();
    const receipt = await ethers.provider.getTransactionReceipt(first.get(open.id)!.txHash!);
    const opened = receipt!.logs.map((l) => fx.escrow.interface.parseLog(l)).find((p) => p?.name === "CaseOpened")!;
    caseIds.push(opened.args.caseId as bigint);
    submitted.push(open);
  }
  for (const caseId of caseIds) {
    for (const role of ["Buyer", "Seller"] as RoleName[]) {
      submitted.push(
        first.submit(await signedSignOff(fx.escrow, fx.parties, caseId, 0, role), `sign:${caseId}:${role}`),
      );
    }
    submitted.push(
      first.submit(
        {
          kind: "call",
          from: fx.managed.buyer.address,
          method: "deposit",
          args: [caseId, Role.Buyer, DEFAULT_TERMS.deposit],
          value: DEFAULT_TERMS.deposit.toString(),
        },
        `deposit:${caseId}`,
      ),
    );
  }
  await first.drain();
  for (const s of submitted)
    expect(first.get(s.id)!.status, `submission ${s.id} before the loss`).to.equal("confirmed");
  const recordedBlocks = submitted.map((s) => first.get(s.id)!.blockNumber!);
  await first.stop();

  // The chain comes back from the older save: every block since is gone, receipts included.
  await rpc("evm_revert", [save]);
  expect(await ethers.provider.getBlockNumber()).to.equal(saved);
  expect(Math.min(...recordedBlocks), "the outbox counted them in blocks the chain no longer has").to.be.greaterThan(
    saved,
  );
  const second = newRelayer(openOutboxDb(file), fx);
  if (options.tellRollback) {
    second.noticeRollback(saved);
    await second.tick();
  }
  return { second, submitted, caseIds };
}

async function expectAllLandedOnce(
  fx: Fixture,
  relayer: Relayer,
  submitted: Submission[],
  caseIds: bigint[],
): Promise<void> {
  for (const s of submitted) {
    const now = relayer.get(s.id)!;
    expect(
      { id: s.id, status: now.status, error: now.error },
      `submission ${s.id} (${s.idempotencyKey})`,
    ).to.deep.equal({ id: s.id, status: "confirmed", error: null });
    expect(
      await ethers.provider.getTransactionReceipt(now.txHash!),
      `${s.idempotencyKey}: its receipt is on the chain`,
    ).to.not.equal(null);
  }
  for (const caseId of caseIds) {
    const c = await fx.escrow.caseOf(caseId);
    expect(Number(c.status), `case ${caseId} open on chain`).to.equal(OPEN);
    expect(c.paidByBuyer, `case ${caseId}: the deposit, once`).to.equal(DEFAULT_TERMS.deposit);
    const signed = (await fx.escrow.queryFilter(fx.escrow.filters.SignedOff(caseId)))
      .map((e) => Number(e.args.role))
      .sort();
    expect(signed, `case ${caseId}: each sign-off once`).to.deep.equal([Role.Buyer, Role.Seller].sort());
  }
}

describe("Relayer: a chain restored from an older save", function () {
  this.timeout(60_000);

  it("re-sends what the chain lost from every key in causal order: openings first, nothing skipped as CaseNotOpen", async function () {
    const fx = await loadRelayerFixture();
    const { second, submitted, caseIds } = await workThenLoseIt(fx, tempDbFile(), { tellRollback: true });
    await second.drain();
    await expectAllLandedOnce(fx, second, submitted, caseIds);
    await second.stop();
  });

  it("notices by itself that transactions it counted confirmed are in blocks above the chain's head, and sends them again", async function () {
    const fx = await loadRelayerFixture();
    const { second, submitted, caseIds } = await workThenLoseIt(fx, tempDbFile(), { tellRollback: false });
    await second.drain();
    await expectAllLandedOnce(fx, second, submitted, caseIds);
    await second.stop();
  });

  it("notices at start that a confirmed transaction's receipt is gone although the chain has grown past its block again", async function () {
    const fx = await loadRelayerFixture();
    const file = tempDbFile();
    const save = await rpc<string>("evm_snapshot");
    const first = newRelayer(openOutboxDb(file), fx);
    const s = first.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "sign");
    await first.drain();
    const block = first.get(s.id)!.blockNumber!;
    await first.stop();
    await rpc("evm_revert", [save]);
    await mine(3); // other blocks, without it, at and above its height
    expect(await ethers.provider.getBlockNumber()).to.be.greaterThan(block);

    const second = newRelayer(openOutboxDb(file), fx);
    await second.drain();
    const again = second.get(s.id)!;
    expect(again.status).to.equal("confirmed");
    expect(await ethers.provider.getTransactionReceipt(again.txHash!), "sent again and mined").to.not.equal(null);
    expect(await fx.escrow.queryFilter(fx.escrow.filters.SignedOff(fx.caseId))).to.have.length(1);
    await second.stop();
  });
});

describe("Relayer: a transaction the chain lost and mined again lower down", function () {
  it("watches the block it is in now, and stops looking for it once that block is below the head", async function () {
    const fx = await loadRelayerFixture();
    const file = tempDbFile();
    const save = await rpc<string>("evm_snapshot");
    await mine(5);
    const first = newRelayer(openOutboxDb(file), fx);
    const s = first.submit(await signedSignOff(fx.escrow, fx.parties, fx.caseId, 0, "Buyer"), "sign");
    await first.drain();
    const recorded = first.get(s.id)!;
    await first.stop();
    await rpc("evm_revert", [save]);
    await rpc("eth_sendRawTransaction", [recorded.rawTx]); // someone else's node had it: mined again, lower
    const minedAt = (await ethers.provider.getTransactionReceipt(recorded.txHash!))!.blockNumber;
    expect(minedAt).to.be.lessThan(recorded.blockNumber!);

    let receiptsAsked = 0;
    const provider = chainProvider((args, forward) => {
      if (args.method === "eth_getTransactionReceipt") receiptsAsked += 1;
      return forward();
    });
    const second = newRelayer(openOutboxDb(file), fx, { provider });
    await second.drain();
    expect(second.get(s.id)!).to.deep.include({ status: "confirmed", blockNumber: minedAt, txHash: recorded.txHash });
    receiptsAsked = 0;
    for (let i = 0; i < 3; i++) await second.tick();
    expect(receiptsAsked, "nothing in flight, nothing lost: no receipt asked").to.equal(0);
    expect(await fx.escrow.queryFilter(fx.escrow.filters.SignedOff(fx.caseId))).to.have.length(1);
    await second.stop();
  });
});

describe("Relayer: a case whose opening the chain lost unnoticed", function () {
  /** An opening confirmed, then lost with the chain, which grows past its block again: the outbox still says confirmed. */
  async function openedThenLost(fx: Fixture, relayer: Relayer) {
    const save = await rpc<string>("evm_snapshot");
    const open = relayer.submit(
      { kind: "call", from: fx.managed.bank.address, method: "openCase", args: [caseTerms(fx.parties, fx.templateId)] },
      "open",
    );
    await relayer.drain();
    const opened = relayer.get(open.id)!;
    expect(opened.status).to.equal("confirmed");
    await rpc("evm_revert", [save]);
    await mine(3);
    expect(await ethers.provider.getBlockNumber()).to.be.greaterThan(opened.blockNumber!);
    expect(relayer.get(open.id)!.status, "the outbox has not noticed").to.equal("confirmed");
    const receipt = await ethers.provider.getTransactionReceipt(opened.txHash!);
    expect(receipt, "the receipt is gone with the chain").to.equal(null);
    return { open, caseId: (await fx.escrow.caseCount()) + 1n };
  }

  it("retries a sign-off skipped as CaseNotOpen once the opening it holds is sent again and lands, never failing it", async function () {
    const fx = await loadRelayerFixture();
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
    await relayer.drain(); // the start-up check is behind it: only the skip can tell
    const { open, caseId } = await openedThenLost(fx, relayer);
    const settled: Submission[] = [];
    relayer.on("settled", (x) => settled.push(x));
    const sign = relayer.submit(await signedSignOff(fx.escrow, fx.parties, caseId, 0, "Buyer"), "sign");
    await relayer.drain();

    expect(
      settled.filter((x) => x.id === sign.id).map((x) => x.status),
      "settled once, confirmed",
    ).to.deep.equal(["confirmed"]);
    expect(relayer.get(sign.id)!.attempts, "sent twice: skipped, then applied").to.equal(2);
    expect(relayer.get(open.id)!.status).to.equal("confirmed");
    expect(Number((await fx.escrow.caseOf(caseId)).status)).to.equal(OPEN);
    expect(await fx.escrow.queryFilter(fx.escrow.filters.SignedOff(caseId))).to.have.length(1);
  });

  it("keeps a deposit refused for an unknown case pending while the opening it holds is sent again, then sends it", async function () {
    const fx = await loadRelayerFixture();
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
    await relayer.drain();
    const { caseId } = await openedThenLost(fx, relayer);
    const deposit = relayer.submit(
      {
        kind: "call",
        from: fx.managed.buyer.address,
        method: "deposit",
        args: [caseId, Role.Buyer, DEFAULT_TERMS.deposit],
        value: DEFAULT_TERMS.deposit.toString(),
      },
      "deposit",
    );
    await relayer.drain();
    expect(relayer.get(deposit.id)!.status).to.equal("confirmed");
    expect((await fx.escrow.caseOf(caseId)).paidByBuyer).to.equal(DEFAULT_TERMS.deposit);
  });
});

describe("Relayer: a key that cannot pay (finding 5)", function () {
  it("keeps the submission pending with an error naming the key, its balance and what it needs, and sends it once funded", async function () {
    const fx = await loadRelayerFixture();
    const buyer = fx.managed.buyer.address;
    const balance = ethers.parseEther("1");
    await setBalance(buyer, balance);
    const relayer = newRelayer(openOutboxDb(tempDbFile()), fx);
    const s = relayer.submit(
      {
        kind: "call",
        from: buyer,
        method: "deposit",
        args: [fx.caseId, Role.Buyer, DEFAULT_TERMS.deposit],
        value: DEFAULT_TERMS.deposit.toString(),
      },
      "deposit",
    );
    let paused: unknown;
    await relayer.drain().catch((e: unknown) => (paused = e));
    expect(paused, "drain reports the sender paused").to.have.property("code", "RELAYER_OUT_OF_FUNDS");

    const waiting = relayer.get(s.id)!;
    expect(waiting.status).to.equal("pending");
    expect(waiting.error?.code).to.equal("RELAYER_OUT_OF_FUNDS");
    expect(waiting.error?.details).to.deep.include({ address: buyer, balance: balance.toString() });
    expect(BigInt(String(waiting.error?.details?.needed))).to.be.at.least(DEFAULT_TERMS.deposit);
    expect(waiting.note)
      .to.include(buyer)
      .and.include(balance.toString())
      .and.include(String(waiting.error?.details?.needed));

    await setBalance(buyer, ethers.parseEther("100"));
    await relayer.drain();
    const done = relayer.get(s.id)!;
    expect(done.status).to.equal("confirmed");
    expect(done.error).to.equal(null);
    expect(done.note).to.equal(null);
    expect((await fx.escrow.caseOf(fx.caseId)).paidByBuyer).to.equal(DEFAULT_TERMS.deposit);
  });
});
