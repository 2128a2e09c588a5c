import { expect } from "chai";
import { SIGN_OFF_TYPES, escrowDomain } from "../../engine/chain/typed-data";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractTransactionResponse } from "ethers";
import type { Interface } from "ethers";
import type { IMortgageEscrow, MortgageEscrow, ReentrantPayee, RevertingPayee } from "../../typechain-types";
import { CaseStatus, DAY, EVIDENCE, Role, type RoleName, type Terms } from "./fixtures";

/** secp256k1's group order: `s` and `n - s` are both valid for the same message and key. */
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** A contract party that acts in the escrow as itself through `call(target, data)`. */
export type ProxyContract = ReentrantPayee | RevertingPayee;

/** A party: an EOA signer, or a contract that forwards calls made by its owner. */
export type Actor = HardhatEthersSigner | { address: string; via: ProxyContract };

export async function proxyActor(contract: ProxyContract): Promise<Actor> {
  return { address: await contract.getAddress(), via: contract };
}

export type CaseParties = Record<RoleName, Actor>;

/** Sends `fn(args)` to the escrow as `actor` (directly, or through the contract party's `call`). */
export async function send(
  escrow: MortgageEscrow,
  actor: Actor,
  fn: string,
  args: unknown[],
  value = 0n,
): Promise<ContractTransactionResponse> {
  if ("via" in actor) {
    const data = (escrow.interface as Interface).encodeFunctionData(fn, args);
    return actor.via.call(await escrow.getAddress(), data, { value });
  }
  const connected = escrow.connect(actor) as unknown as Record<
    string,
    (...a: unknown[]) => Promise<ContractTransactionResponse>
  >;
  return connected[fn](...args, { value });
}

/** Whoever holds each role: only the addresses matter when a case is opened. */
export type PartyAddresses = Record<RoleName, { address: string }>;

export function termsFor(parties: PartyAddresses, templateId: string, terms: Terms): IMortgageEscrow.CaseTermsStruct {
  return {
    templateId,
    bank: parties.Bank.address,
    lawyer: parties.Lawyer.address,
    buyer: parties.Buyer.address,
    seller: parties.Seller.address,
    asset: terms.asset ?? ethers.ZeroAddress,
    price: terms.price,
    deposit: terms.deposit,
    loan: terms.loan,
  };
}

/** Opens a case with arbitrary party addresses, as `opener` (the bank or the operator); returns its id. */
export async function openCaseWith(
  escrow: MortgageEscrow,
  opener: HardhatEthersSigner,
  parties: PartyAddresses,
  templateId: string,
  terms: Terms,
): Promise<bigint> {
  const t = termsFor(parties, templateId, terms);
  const id = await escrow.connect(opener).openCase.staticCall(t);
  await (await escrow.connect(opener).openCase(t)).wait();
  return id;
}

export async function signOffAs(
  escrow: MortgageEscrow,
  parties: CaseParties,
  caseId: bigint,
  stage: number,
  ...names: RoleName[]
) {
  for (const name of names)
    await (await send(escrow, parties[name], "signOff", [caseId, stage, Role[name], EVIDENCE])).wait();
}

/** Pays `amount` as `payer` (ETH, or a token the payer has approved). */
export async function depositAs(
  escrow: MortgageEscrow,
  parties: CaseParties,
  caseId: bigint,
  payer: "Bank" | "Buyer",
  amount: bigint,
  eth = true,
) {
  await (await send(escrow, parties[payer], "deposit", [caseId, Role[payer], amount], eth ? amount : 0n)).wait();
}

/** SMALL_PURCHASE stages 0 and 1 complete (1 is binding): what every path to release or binding refund needs. */
export async function completeExchange(escrow: MortgageEscrow, parties: CaseParties, caseId: bigint) {
  await signOffAs(escrow, parties, caseId, 0, "Buyer", "Seller");
  await signOffAs(escrow, parties, caseId, 1, "Lawyer", "Buyer");
  await time.increase(3 * DAY);
  await (await escrow.advance(caseId)).wait();
}

/** Walks a SMALL_PURCHASE ETH case to its release (stage 2 completes, the seller is credited the price). */
export async function walkToRelease(
  escrow: MortgageEscrow,
  parties: CaseParties,
  caseId: bigint,
  terms: Terms,
  eth = true,
) {
  await completeExchange(escrow, parties, caseId);
  if (terms.deposit > 0n) await depositAs(escrow, parties, caseId, "Buyer", terms.deposit, eth);
  if (terms.loan > 0n) await depositAs(escrow, parties, caseId, "Bank", terms.loan, eth);
  await signOffAs(escrow, parties, caseId, 2, "Bank", "Lawyer");
  expect((await escrow.caseOf(caseId)).released).to.equal(true);
}

/** Every party of every case must vote; the last vote cancels. */
export async function cancelAll(escrow: MortgageEscrow, parties: CaseParties, caseId: bigint) {
  for (const name of ["Bank", "Lawyer", "Buyer", "Seller"] as RoleName[]) {
    await (await send(escrow, parties[name], "cancel", [caseId])).wait();
  }
  expect((await escrow.caseOf(caseId)).status).to.equal(CaseStatus.Cancelled);
}

/**
 * What the escrow owes in each asset: every party's credit in every case, plus what was paid into cases that
 * have neither released nor ended (their money is held, not yet credited to anyone).
 */
export async function liabilities(escrow: MortgageEscrow, caseIds: bigint[]): Promise<Map<string, bigint>> {
  const owed = new Map<string, bigint>();
  for (const caseId of caseIds) {
    const c = await escrow.caseOf(caseId);
    let total = 0n;
    for (const payee of new Set(c.parties)) total += await escrow.creditOf(caseId, payee);
    if (c.status === BigInt(CaseStatus.Open) && !c.released) total += c.paidByBank + c.paidByBuyer;
    owed.set(c.asset, (owed.get(c.asset) ?? 0n) + total);
  }
  return owed;
}

async function holding(escrow: MortgageEscrow, asset: string): Promise<bigint> {
  const at = await escrow.getAddress();
  if (asset === ethers.ZeroAddress) return ethers.provider.getBalance(at);
  const token = new ethers.Contract(asset, ["function balanceOf(address) view returns (uint256)"], ethers.provider);
  return token.balanceOf(at) as Promise<bigint>;
}

/**
 * Asserts that the escrow's balance of every asset covers the sum of what it owes in it (`exact`: equals it,
 * when nothing else was ever sent to the escrow). `caseIds` must be every case that holds the asset.
 */
export async function expectSolvent(escrow: MortgageEscrow, caseIds: bigint[], exact = true) {
  for (const [asset, owed] of await liabilities(escrow, caseIds)) {
    const held = await holding(escrow, asset);
    if (exact) expect(held, `escrow's ${asset} balance against what it owes`).to.equal(owed);
    else expect(held, `escrow's ${asset} balance against what it owes`).to.be.gte(owed);
  }
}

/** Splits a 65-byte signature. */
export function splitSignature(signature: string): { r: string; s: bigint; v: number } {
  const bytes = ethers.getBytes(signature);
  expect(bytes.length).to.equal(65);
  return { r: ethers.hexlify(bytes.slice(0, 32)), s: BigInt(ethers.hexlify(bytes.slice(32, 64))), v: bytes[64] };
}

/** The other valid signature of the same message by the same key: s' = n - s, v flipped (27 <-> 28). */
export function malleate(signature: string): string {
  const { r, s, v } = splitSignature(signature);
  return ethers.concat([r, ethers.toBeHex(SECP256K1_N - s, 32), ethers.toBeHex(v === 27 ? 28 : 27, 1)]);
}

/** EIP-2098 compact form: r, then yParity in the top bit of s. */
export function compact(signature: string): string {
  const { r, s, v } = splitSignature(signature);
  return ethers.concat([r, ethers.toBeHex(s | (BigInt(v - 27) << 255n), 32)]);
}

/** What the ecrecover precompile returns for (digest, v, r, s): the signer, or null where it recovers nothing. */
export async function ecrecoverPrecompile(digest: string, signature: string): Promise<string | null> {
  const { r, s, v } = splitSignature(signature);
  const data = ethers.concat([digest, ethers.toBeHex(v, 32), r, ethers.toBeHex(s, 32)]);
  const out = await ethers.provider.call({ to: "0x0000000000000000000000000000000000000001", data });
  return out === "0x" ? null : ethers.getAddress(ethers.dataSlice(out, 12));
}

/** Signs a sign-off under an arbitrary EIP-712 domain (another chain id, another contract). */
export async function signSignOffInDomain(
  signer: HardhatEthersSigner,
  domain: { chainId: bigint; verifyingContract: string; name?: string; version?: string },
  message: { caseId: bigint; stage: number; role: number; epoch: number; evidence: string },
): Promise<string> {
  return signer.signTypedData(
    { ...escrowDomain(domain.chainId, domain.verifyingContract), ...domain },
    SIGN_OFF_TYPES,
    message,
  );
}

/** The SignedOff events that a transaction emitted, as (stage, role) pairs. */
export async function signedOffIn(
  escrow: MortgageEscrow,
  tx: ContractTransactionResponse,
): Promise<Array<[number, number]>> {
  const receipt = await tx.wait();
  const pairs: Array<[number, number]> = [];
  for (const log of receipt!.logs) {
    const parsed = escrow.interface.parseLog(log);
    if (parsed?.name === "SignedOff") pairs.push([Number(parsed.args.stage), Number(parsed.args.role)]);
  }
  return pairs;
}

/** The bit of (stage, role) in `caseOf().signedOffRoles`. */
export function roleBit(stage: number, role: number): bigint {
  return 1n << BigInt(stage * 4 + role);
}
