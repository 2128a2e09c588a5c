/**
 * Shared set-up for the engine tests: a fresh escrow with us-purchase registered, a case opened by its bank,
 * the relayer's funded key, the parties' managed keys (the Hardhat accounts' keys), and an engine on a real
 * SQLite file in a temp folder, on the in-process chain.
 */
import { expect } from "chai";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet } from "ethers";
import { createEngine, type Engine } from "../../engine";
import type { RoleName } from "../../workflows/schema";
import { deployEscrow, openUsCase, type Deployment } from "./projection-helpers";
import { hardhatWallet, setBalance } from "./relayer-helpers";

export const RELAYER = new Wallet(ethers.id("the relayer key of the engine tests"));
export const MANAGED = {
  bank: hardhatWallet(1),
  lawyer: hardhatWallet(2),
  buyer: hardhatWallet(3),
  seller: hardhatWallet(4),
};

export interface EngineSetup {
  d: Deployment;
  caseId: bigint;
  dataDir: string;
}

export async function setUp(): Promise<EngineSetup> {
  const d = await deployEscrow();
  for (const role of ["bank", "lawyer", "buyer", "seller"] as const) {
    expect(MANAGED[role].address, `the managed key of the ${role}`).to.equal(d.parties[role].address);
  }
  await setBalance(RELAYER.address, ethers.parseEther("10"));
  const caseId = await openUsCase(d);
  return { d, caseId, dataDir: mkdtempSync(join(tmpdir(), "engine-test-")) };
}

export function newEngine(s: EngineSetup): Engine {
  return createEngine({
    dataDir: s.dataDir,
    chain: { kind: "in-process", provider: hre.network.provider },
    escrowAddress: s.d.address,
    relayerKey: RELAYER,
    partyKeys: Object.values(MANAGED),
    pollIntervalMs: 50,
    deploymentBlock: s.d.fromBlock,
    batchWindowMs: 100,
  });
}

export function approval(s: EngineSetup, stageId: string, role: RoleName) {
  return {
    caseId: s.caseId,
    stageId,
    role,
    principalAddress: MANAGED[role].address,
    evidence: ethers.id(`${stageId} by ${role}`),
  };
}

/** The sign-offs from the application to the Closing Disclosure, every one through `engine.approve`. */
export const BEFORE_CONSUMMATION: Array<[string, RoleName]> = [
  ["application", "buyer"],
  ["application", "bank"],
  ["loan-estimate", "bank"],
  ["rate-lock", "bank"],
  ["rate-lock", "buyer"],
  ["appraisal", "bank"],
  ["title-commitment", "lawyer"],
  ["underwriting", "bank"],
  ["clear-to-close", "bank"],
  ["closing-disclosure", "bank"],
  ["closing-disclosure", "buyer"],
];

export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  timeoutMs = 20_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Moves the chain to the next Wednesday, 10:00 in New York (15:00 UTC), at least a day from now. */
export async function toNextWednesdayMorning(): Promise<number> {
  const now = new Date(((await time.latest()) + 86_400) * 1000);
  const days = (3 - now.getUTCDay() + 7) % 7 || 7;
  const target = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + days, 15, 0, 0) / 1000;
  await time.increaseTo(target);
  return target;
}

export function stageIndex(s: EngineSetup, id: string): number {
  return s.d.template.stageIndex[id];
}

export async function chainStageStatus(s: EngineSetup, id: string): Promise<number> {
  return Number((await s.d.escrow.stageOf(s.caseId, stageIndex(s, id))).status);
}

/** Who sent a transaction. */
export async function senderOf(txHash: string): Promise<string> {
  const tx = await ethers.provider.getTransaction(txHash);
  return tx!.from;
}
