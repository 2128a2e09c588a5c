/**
 * The EIP-712 messages that parties sign off chain, exactly as `MortgageEscrow` hashes them
 * (`SIGN_OFF_TYPEHASH`, `REVOKE_TYPEHASH`, domain "MortgageEscrow" version "1"). The contract's tests check
 * `signOffDigest` and `revocationDigest` against these, so a change on either side fails there.
 */
import type { TypedDataDomain, TypedDataField } from "ethers";

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

export function escrowDomain(chainId: bigint | number, verifyingContract: string): TypedDataDomain {
  return { name: "MortgageEscrow", version: "1", chainId, verifyingContract };
}
