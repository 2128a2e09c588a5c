/**
 * Signs an EIP-1559 (type 2) transaction: the same bytes and hash as ethers' `Transaction` signed with the
 * same key (checked in the relayer tests), without its cost. ethers turns the calldata from hex to bytes and
 * back several times (RLP, unsigned hash, serialised form, hash), byte by byte in JavaScript; a batch of 64
 * sign-offs is about 25 kB of calldata, and that was tens of milliseconds of a blocked event loop per batch.
 * Here the calldata is decoded once (Buffer) and RLP-encoded by concatenation.
 */
import { keccak256, type SigningKey } from "ethers";

export interface Eip1559Fields {
  chainId: bigint;
  nonce: number;
  maxPriorityFeePerGas: bigint;
  maxFeePerGas: bigint;
  gasLimit: bigint;
  to: string;
  value: bigint;
  /** Hex, with 0x. */
  data: string;
}

function hexBytes(hex: string): Buffer {
  if (!/^0x([0-9a-fA-F]{2})*$/.test(hex)) throw new TypeError(`not hex bytes: ${hex.slice(0, 20)}...`);
  return Buffer.from(hex.slice(2), "hex");
}

function integer(value: bigint | number): Buffer {
  const v = BigInt(value);
  if (v < 0n) throw new RangeError("negative integer");
  if (v === 0n) return Buffer.alloc(0);
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, "hex");
}

function lengthPrefix(length: number, short: number, long: number): Buffer {
  if (length < 56) return Buffer.from([short + length]);
  const len = integer(length);
  return Buffer.concat([Buffer.from([long + len.length]), len]);
}

type Rlp = Buffer | Rlp[];

function rlp(item: Rlp): Buffer {
  if (Array.isArray(item)) {
    const payload = Buffer.concat(item.map(rlp));
    return Buffer.concat([lengthPrefix(payload.length, 0xc0, 0xf7), payload]);
  }
  if (item.length === 1 && item[0] < 0x80) return item;
  return Buffer.concat([lengthPrefix(item.length, 0x80, 0xb7), item]);
}

/** The signed transaction's raw bytes (hex) and hash. */
export function signEip1559(key: SigningKey, tx: Eip1559Fields): { rawTx: string; txHash: string } {
  const to = hexBytes(tx.to);
  if (to.length !== 20) throw new TypeError("to must be a 20-byte address");
  const fields: Rlp[] = [
    integer(tx.chainId),
    integer(tx.nonce),
    integer(tx.maxPriorityFeePerGas),
    integer(tx.maxFeePerGas),
    integer(tx.gasLimit),
    to,
    integer(tx.value),
    hexBytes(tx.data),
    [],
  ];
  const unsigned = Buffer.concat([Buffer.from([2]), rlp(fields)]);
  const signature = key.sign(keccak256(unsigned));
  const signed = Buffer.concat([
    Buffer.from([2]),
    rlp([...fields, integer(signature.yParity), integer(BigInt(signature.r)), integer(BigInt(signature.s))]),
  ]);
  return { rawTx: `0x${signed.toString("hex")}`, txHash: keccak256(signed) };
}
