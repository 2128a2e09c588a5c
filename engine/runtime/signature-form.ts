/**
 * The one form of an ECDSA signature the escrow takes: 65 bytes, r then s then v, with v 27 or 28 and s in
 * the lower half of the curve order (EIP-2; OpenZeppelin's `ECDSA.tryRecover` refuses anything else). Wallets
 * also write v as 0/1, and EIP-2098 packs a signature in 64 bytes; both say exactly the same thing, so they
 * are rewritten into the contract's form. A high s is refused rather than flipped: it is malleated, not
 * just written differently, and no wallet makes one. Each refusal says why, as a 400.
 */
import { getBytes, hexlify, isHexString } from "ethers";
import { EngineError } from "../errors";

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = SECP256K1_N >> 1n;

/** `signature` in the contract's form (65 bytes, v = 27/28, low s), or INVALID_REQUEST saying why not. */
export function contractSignatureForm(signature: string): string {
  if (!isHexString(signature)) throw refused("a signature is 0x-prefixed hex", { form: "not hex" });
  const bytes = getBytes(signature);
  let r: Uint8Array;
  let s: Uint8Array;
  let v: number;
  if (bytes.length === 65) {
    r = bytes.slice(0, 32);
    s = bytes.slice(32, 64);
    v = bytes[64];
    if (v === 0 || v === 1) v += 27;
    if (v !== 27 && v !== 28)
      throw refused(`the signature's v is ${bytes[64]}: it must be 27 or 28 (or 0 or 1)`, {
        form: "65 bytes",
        v: bytes[64],
      });
  } else if (bytes.length === 64) {
    // EIP-2098: the top bit of the second word is y-parity, the rest is s.
    r = bytes.slice(0, 32);
    s = bytes.slice(32, 64);
    v = 27 + (s[0] >> 7);
    s[0] &= 0x7f;
  } else {
    throw refused(`the signature is ${bytes.length} bytes: it must be 65 (r, s, v) or 64 (EIP-2098 compact)`, {
      form: `${bytes.length} bytes`,
    });
  }
  const rValue = BigInt(hexlify(r));
  const sValue = BigInt(hexlify(s));
  if (rValue === 0n || rValue >= SECP256K1_N || sValue === 0n)
    throw refused("the signature's r or s is out of range", { form: "out of range" });
  if (sValue > HALF_N) {
    throw refused(
      "the signature has a high s (above half the curve order): the contract refuses it (EIP-2); a wallet writes s as n - s with v flipped",
      { form: "high s" },
    );
  }
  return hexlify(new Uint8Array([...r, ...s, v]));
}

function refused(message: string, details: Record<string, unknown>): EngineError {
  return new EngineError("INVALID_REQUEST", message, {
    details: { field: "signature", reason: "SIGNATURE_FORM", ...details },
  });
}
