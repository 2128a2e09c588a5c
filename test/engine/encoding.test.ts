/**
 * The engine's own encoders and decoders against ethers, the reference: the escrow's events decoded word by
 * word (projection/decode.ts), EIP-1559 transactions signed without ethers' Transaction (relayer/sign-tx.ts),
 * and a batch of relayed sign-offs' calldata written without ethers' ABI coder (relayer/intents.ts).
 */
import { expect } from "chai";
import { Transaction, Wallet, hexlify, randomBytes, type EventFragment, type ParamType } from "ethers";
import { escrowInterface } from "../../engine/chain/escrow";
import { decodeEscrowEvent, decodeWithEthers } from "../../engine/projection/decode";
import { batchCallData } from "../../engine/relayer/intents";
import { signEip1559 } from "../../engine/relayer/sign-tx";
import { seededRandom } from "../support/seeded-random";

describe("engine encodings against ethers", function () {
  it("decodes every escrow event as ethers does (random arguments, edge values)", function () {
    const random = seededRandom(712);
    const bytes = (n: number) => hexlify(Uint8Array.from({ length: n }, () => Math.floor(random() * 256)));
    const valueOf = (p: ParamType, i: number): unknown => {
      if (p.baseType === "tuple") return p.components!.map((c) => valueOf(c, i));
      if (p.baseType === "address") return Wallet.createRandom().address;
      if (p.baseType === "bool") return random() < 0.5;
      const uint = /^uint(\d*)$/.exec(p.baseType);
      if (uint) {
        const bits = Number(uint[1] || 256);
        if (i === 0) return 0n;
        if (i === 1) return (1n << BigInt(bits)) - 1n;
        return BigInt(bytes(bits / 8)) >> BigInt(Math.floor(random() * bits));
      }
      const fixed = /^bytes(\d+)$/.exec(p.baseType);
      if (fixed) return bytes(Number(fixed[1]));
      throw new Error(`no generator for ${p.type}`);
    };
    const events = escrowInterface.fragments.filter((f): f is EventFragment => f.type === "event");
    expect(events.length).to.be.greaterThan(10);
    expect(events.map((e) => e.name)).to.include.members([
      "CancellationVoted",
      "CancellationVoteWithdrawn",
      "CancellationVotesCleared",
    ]);
    for (const event of events) {
      for (let i = 0; i < 10; i++) {
        const { data, topics } = escrowInterface.encodeEventLog(
          event,
          event.inputs.map((p) => valueOf(p, i)),
        );
        const ours = decodeEscrowEvent({ topics, data });
        // The same values, names and key order: what is stored is their JSON.
        expect(JSON.stringify(ours), event.name).to.equal(JSON.stringify(decodeWithEthers({ topics, data })));
      }
    }
    // Not one of the escrow's events; one with data that does not fit its event falls back to ethers (null).
    expect(decodeEscrowEvent({ topics: [bytes(32)], data: "0x" })).to.equal(null);
    const signedOff = escrowInterface.getEvent("SignedOff")!;
    const { topics } = escrowInterface.encodeEventLog(signedOff, [1n, 2n, 1n, bytes(32)]);
    expect(decodeEscrowEvent({ topics, data: "0x1234" })).to.equal(null);
  });

  it("encodes a batch of relayed sign-offs to the calldata ethers' ABI coder gives", function () {
    const random = seededRandom(1271);
    const int = (max: number) => Math.floor(random() * max);
    const bytes = (n: number) => hexlify(Uint8Array.from({ length: n }, () => int(256)));
    for (const count of [0, 1, 2, 5, 64]) {
      const items = Array.from({ length: count }, (_, i) => ({
        kind: "relayed-sign-off" as const,
        message: {
          caseId: i === 0 ? ((1n << 256n) - 1n).toString() : BigInt(bytes(1 + int(31))).toString(),
          stage: i === 1 ? 255 : int(16),
          role: int(4),
          epoch: i === 1 ? 255 : int(3),
          evidence: bytes(32),
        },
        // An EOA's 65 bytes, an empty one, and a contract wallet's of any length.
        signature: i % 3 === 0 ? bytes(65) : i % 3 === 1 ? "0x" : bytes(int(300)),
      }));
      const reference = escrowInterface.encodeFunctionData("signOffWithSignatures", [
        items.map((it) => ({ ...it.message, signature: it.signature })),
      ]);
      expect(batchCallData(items), `${count} items`).to.equal(reference);
    }
    const item = {
      kind: "relayed-sign-off" as const,
      message: { caseId: "1", stage: 256, role: 0, epoch: 0, evidence: bytes(32) },
      signature: bytes(65),
    };
    expect(() => batchCallData([item])).to.throw(/uint8/);
    expect(() => batchCallData([{ ...item, message: { ...item.message, stage: 0 }, signature: "0x123" }])).to.throw(
      /hex bytes/,
    );
  });

  it("signs EIP-1559 transactions to the same bytes and hash as ethers' Transaction", function () {
    const random = seededRandom(1559);
    const int = (max: number) => Math.floor(random() * max);
    for (const size of [0, 1, 20, 55, 56, 57, 300, 25_000]) {
      const wallet = Wallet.createRandom();
      const fields = {
        chainId: BigInt(1 + int(1_000_000)),
        nonce: size % 2 === 0 ? 0 : int(1_000_000),
        maxPriorityFeePerGas: size === 1 ? 0n : BigInt(int(1e12)),
        maxFeePerGas: BigInt(int(1e15)),
        gasLimit: BigInt(21_000 + int(30_000_000)),
        to: Wallet.createRandom().address,
        value: size % 3 === 0 ? 0n : BigInt(hexlify(randomBytes(12))),
        data: hexlify(randomBytes(size)),
      };
      const reference = Transaction.from({ type: 2, ...fields });
      reference.signature = wallet.signingKey.sign(reference.unsignedHash);
      const ours = signEip1559(wallet.signingKey, fields);
      expect(ours.rawTx, `${size} bytes of calldata`).to.equal(reference.serialized);
      expect(ours.txHash).to.equal(reference.hash);
      expect(Transaction.from(ours.rawTx).from).to.equal(wallet.address);
    }
  });
});
