import { expect } from "chai";
import { ethers } from "ethers";
import { EngineError } from "../../engine/errors";
import { backoffDelay } from "../../engine/relayer/backoff";
import { bumpedFees, raiseBy } from "../../engine/relayer/fees";
import { IdempotencyConflictError, Outbox } from "../../engine/relayer/outbox";
import type { Intent } from "../../engine/relayer/types";
import { openOutboxDb, tempDbFile } from "./relayer-helpers";

const SENDER = "0x000000000000000000000000000000000000bEEF";
const intent = (stage: number): Intent => ({
  kind: "relayed-sign-off",
  message: { caseId: "1", stage, role: 2, epoch: 0, evidence: ethers.id("doc") },
  signature: "0x1234",
});
const signed = (nonce: number) => ({
  rawTx: `0xraw${nonce}`,
  txHash: ethers.id(`tx ${nonce}`),
  maxFeePerGas: 10n,
  maxPriorityFeePerGas: 1n,
});

describe("Outbox", function () {
  describe("record", function () {
    it("keeps a submission in the SQLite file across a reopen, pending with its payload", function () {
      const file = tempDbFile();
      const db = openOutboxDb(file);
      const { submission, created } = new Outbox(db).record({ idempotencyKey: "k", sender: SENDER, intent: intent(0) });
      expect(created).to.equal(true);
      db.close();
      const reopened = new Outbox(openOutboxDb(file)).getByKey("k")!;
      expect(reopened).to.deep.equal(submission);
      expect(reopened.status).to.equal("pending");
      expect(reopened.payload).to.deep.equal(intent(0));
    });

    it("returns the existing submission for the same key and payload, whatever the key order", function () {
      const outbox = new Outbox(openOutboxDb(tempDbFile()));
      const first = outbox.record({ idempotencyKey: "k", sender: SENDER, intent: intent(0) }).submission;
      const reordered = {
        signature: "0x1234",
        message: { evidence: ethers.id("doc"), epoch: 0, role: 2, stage: 0, caseId: "1" },
        kind: "relayed-sign-off",
      } as Intent;
      const again = outbox.record({ idempotencyKey: "k", sender: SENDER, intent: reordered });
      expect(again.created).to.equal(false);
      expect(again.submission.id).to.equal(first.id);
      expect(outbox.list()).to.have.length(1);
    });

    it("refuses the same key with a different payload with IDEMPOTENCY_CONFLICT", function () {
      const outbox = new Outbox(openOutboxDb(tempDbFile()));
      outbox.record({ idempotencyKey: "k", sender: SENDER, intent: intent(0) });
      const attempt = () => outbox.record({ idempotencyKey: "k", sender: SENDER, intent: intent(1) });
      expect(attempt).to.throw(IdempotencyConflictError);
      try {
        attempt();
      } catch (error) {
        expect(error).to.be.instanceOf(EngineError);
        expect((error as EngineError).code).to.equal("IDEMPOTENCY_CONFLICT");
      }
      expect(outbox.list()).to.have.length(1);
    });
  });

  describe("assign", function () {
    it("gives contiguous nonces and stores the signed transaction with the submission", function () {
      const outbox = new Outbox(openOutboxDb(tempDbFile()));
      outbox.initNonce(SENDER, 7);
      const a = outbox.record({ idempotencyKey: "a", sender: SENDER, intent: intent(0) }).submission;
      const b = outbox.record({ idempotencyKey: "b", sender: SENDER, intent: intent(1) }).submission;
      const ta = outbox.assign(SENDER, [{ submissionId: a.id, batchIndex: 0 }], signed);
      const tb = outbox.assign(SENDER, [{ submissionId: b.id, batchIndex: 0 }], signed);
      expect([ta.nonce, tb.nonce]).to.deep.equal([7, 8]);
      expect(outbox.nextNonce(SENDER)).to.equal(9);
      const sa = outbox.get(a.id)!;
      expect(sa).to.include({ status: "sent", nonce: 7, rawTx: "0xraw7", txHash: ta.txHash, attempts: 1 });
    });

    it("consumes no nonce and leaves the submission pending when signing fails", function () {
      const outbox = new Outbox(openOutboxDb(tempDbFile()));
      outbox.initNonce(SENDER, 0);
      const a = outbox.record({ idempotencyKey: "a", sender: SENDER, intent: intent(0) }).submission;
      expect(() =>
        outbox.assign(SENDER, [{ submissionId: a.id, batchIndex: 0 }], () => {
          throw new Error("crash while signing");
        }),
      ).to.throw("crash while signing");
      expect(outbox.nextNonce(SENDER)).to.equal(0);
      expect(outbox.get(a.id)!.status).to.equal("pending");
      expect(outbox.transactions()).to.have.length(0);
    });

    it("never moves the counter behind the chain or behind what it gave out", function () {
      const outbox = new Outbox(openOutboxDb(tempDbFile()));
      expect(outbox.initNonce(SENDER, 3)).to.equal(3);
      expect(outbox.initNonce(SENDER, 1)).to.equal(3);
      expect(outbox.initNonce(SENDER, 5)).to.equal(5);
    });
  });

  describe("replace", function () {
    it("marks the previous transaction replaced and moves the submission to the new one, same nonce", function () {
      const outbox = new Outbox(openOutboxDb(tempDbFile()));
      outbox.initNonce(SENDER, 0);
      const a = outbox.record({ idempotencyKey: "a", sender: SENDER, intent: intent(0) }).submission;
      const first = outbox.assign(SENDER, [{ submissionId: a.id, batchIndex: 0 }], signed);
      const second = outbox.replace(first, {
        rawTx: "0xbumped",
        txHash: ethers.id("bumped"),
        maxFeePerGas: 11n,
        maxPriorityFeePerGas: 2n,
      });
      expect(second.nonce).to.equal(first.nonce);
      expect(outbox.transactionsForNonce(SENDER, 0).map((t) => t.status)).to.deep.equal(["sent", "replaced"]);
      expect(outbox.get(a.id)).to.include({ txHash: second.txHash, rawTx: "0xbumped", attempts: 2 });
    });
  });
});

describe("backoffDelay", function () {
  it("grows exponentially, stays within half and all of the capped delay, and is capped", function () {
    const options = { baseMs: 100, maxMs: 1_000 };
    expect(backoffDelay(0, options)).to.equal(0);
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, options, () => 0))).to.deep.equal([50, 100, 200, 400, 500]);
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, options, () => 1))).to.deep.equal([100, 200, 400, 800, 1_000]);
    const jittered = new Set(Array.from({ length: 20 }, () => backoffDelay(3, options)));
    expect(jittered.size).to.be.greaterThan(1);
  });
});

describe("bumpedFees", function () {
  it("raises both fees by at least the percentage, and to at least what a fresh transaction offers", function () {
    const bumped = bumpedFees({ maxFeePerGas: 100n, maxPriorityFeePerGas: 10n }, 10, 10n, 1n);
    expect(bumped).to.deep.equal({ maxFeePerGas: 110n, maxPriorityFeePerGas: 11n });
    const priced = bumpedFees({ maxFeePerGas: 100n, maxPriorityFeePerGas: 10n }, 10, 200n, 1n);
    expect(priced.maxFeePerGas).to.equal(411n);
    expect(raiseBy(1n, 10)).to.equal(2n);
    expect(() => bumpedFees({ maxFeePerGas: 1n, maxPriorityFeePerGas: 1n }, 9, 0n, 0n)).to.throw(RangeError);
  });
});
