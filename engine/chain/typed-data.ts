/**
 * The EIP-712 messages that parties sign off chain, exactly as `MortgageEscrow` hashes them
 * (`SIGN_OFF_TYPEHASH`, `REVOKE_TYPEHASH`, `CONSENT_TYPEHASH`, domain "MortgageEscrow" version "1"). The contract's tests check
 * `signOffDigest` and `revocationDigest` against these, so a change on either side fails there.
 */
import { TypedDataEncoder, keccak256, toUtf8Bytes, type TypedDataDomain, type TypedDataField } from "ethers";

export const SIGN_OFF_TYPES: Record<string, TypedDataField[]> = {
  SignOff: [
    { name: "caseId", type: "uint256" },
    { name: "stage", type: "uint8" },
    { name: "role", type: "uint8" },
    { name: "epoch", type: "uint8" },
    { name: "evidence", type: "bytes32" },
  ],
};

export const REVOKE_TYPES: Record<string, TypedDataField[]> = {
  RevokeSignOff: [
    { name: "caseId", type: "uint256" },
    { name: "stage", type: "uint8" },
    { name: "role", type: "uint8" },
    { name: "epoch", type: "uint8" },
  ],
};

/** `CONSENT_TYPEHASH`: a party's consent to an amendment, for the terms version and kind it amends. */
export const CONSENT_TYPES: Record<string, TypedDataField[]> = {
  Consent: [
    { name: "caseId", type: "uint256" },
    { name: "amendment", type: "uint32" },
    { name: "kind", type: "uint8" },
    { name: "version", type: "uint16" },
    { name: "role", type: "uint8" },
    { name: "epoch", type: "uint8" },
  ],
};

export function escrowDomain(chainId: bigint | number, verifyingContract: string): TypedDataDomain {
  return { name: "MortgageEscrow", version: "1", chainId, verifyingContract };
}

const SIGN_OFF_TYPEHASH = keccak256(
  toUtf8Bytes("SignOff(uint256 caseId,uint8 stage,uint8 role,uint8 epoch,bytes32 evidence)"),
);

/** The domain separator of the escrow's EIP-712 domain: computed once per engine, not per signature. */
export function escrowDomainSeparator(chainId: bigint | number, verifyingContract: string): string {
  return TypedDataEncoder.hashDomain(escrowDomain(chainId, verifyingContract));
}

function word(value: bigint | number): string {
  return BigInt(value).toString(16).padStart(64, "0");
}

/**
 * The EIP-712 digest of a `SignOff` message, as `TypedDataEncoder.hash(domain, SIGN_OFF_TYPES, message)` gives
 * it (and the contract's `signOffDigest`), from a precomputed domain separator: the struct is five 32-byte
 * words, so it is encoded by hand instead of walking the types for every signature.
 */
export function signOffDigest(
  domainSeparator: string,
  m: { caseId: string | bigint; stage: number; role: number; epoch: number; evidence: string },
): string {
  const evidence = m.evidence.toLowerCase();
  if (!/^0x[0-9a-f]{64}$/.test(evidence)) throw new TypeError("the evidence must be 32 bytes of hex");
  for (const [name, v] of [
    ["stage", m.stage],
    ["role", m.role],
    ["epoch", m.epoch],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`${name} must be a uint8, not ${v}`);
  }
  const caseId = BigInt(m.caseId);
  if (caseId < 0n || caseId >= 1n << 256n) throw new RangeError("caseId must be a uint256");
  const structHash = keccak256(
    `${SIGN_OFF_TYPEHASH}${word(caseId)}${word(m.stage)}${word(m.role)}${word(m.epoch)}${evidence.slice(2)}`,
  );
  return keccak256(`0x1901${domainSeparator.slice(2)}${structHash.slice(2)}`);
}
