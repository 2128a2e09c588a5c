/**
 * Shared parts of the relayer tests: a deployed escrow with cases, the relayer's own funded key, the
 * parties' managed keys (the Hardhat accounts' keys), a real SQLite file in a temp folder, and a provider
 * wrapper that injects faults into one JSON-RPC method.
 */
import hre, { ethers } from "hardhat";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HDNodeWallet, Wallet, toQuantity, type Eip1193Provider, type Provider } from "ethers";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { createProvider } from "../../engine/chain/provider";
import { openDatabase, type Db } from "../../engine/store/database";
import { OUTBOX_MIGRATIONS } from "../../engine/relayer/outbox";
import { Relayer, type RelayerOptions } from "../../engine/relayer/relayer";
import type { RelayedSignOffIntent } from "../../engine/relayer/types";
import {
  Role,
  US_PURCHASE,
  deployWithCase,
  openCase,
  registerTemplate,
  signSignOff,
  partyFor,
  type Parties,
  type RoleName,
} from "../contracts/fixtures";
import type { MortgageEscrow } from "../../typechain-types";

/** Hardhat's default accounts come from this phrase: the parties' "managed keys" in these tests. */
const HARDHAT_PHRASE = "test test test test test test test test test test test junk";

export function hardhatWallet(index: number): HDNodeWallet {
  return HDNodeWallet.fromPhrase(HARDHAT_PHRASE, undefined, `m/44'/60'/0'/0/${index}`);
}

/** The relayer's own key: fixed, so the fixture's snapshot holds its balance and nonce. */
export const RELAYER_KEY = ethers.id("the relayer key of the relayer tests");

export async function rpc<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
  return (await hre.network.provider.send(method, params)) as T;
}

export async function setBalance(address: string, wei: bigint): Promise<void> {
  await rpc("hardhat_setBalance", [address, toQuantity(wei)]);
}

/** The escrow with one SMALL_PURCHASE case, a funded relayer key, and the parties' managed keys. */
export async function relayerFixture() {
  const base = await deployWithCase();
  const relayerWallet = new Wallet(RELAYER_KEY);
  await setBalance(relayerWallet.address, ethers.parseEther("10"));
  const managed = {
    bank: hardhatWallet(1),
    lawyer: hardhatWallet(2),
    buyer: hardhatWallet(3),
    seller: hardhatWallet(4),
  };
  return { ...base, escrowAddress: await base.escrow.getAddress(), relayerWallet, managed };
}

/** As `relayerFixture`, plus US_PURCHASE cases with enough distinct sign-offs for `count` approvals. */
export async function manyCasesFixture() {
  const base = await relayerFixture();
  const usTemplate = await registerTemplate(base.escrow, base.parties.admin, US_PURCHASE, ethers.id("us-purchase@1"));
  const caseIds: bigint[] = [];
  for (let i = 0; i < 12; i++) caseIds.push(await openCase(base.escrow, base.parties, usTemplate));
  return { ...base, usTemplate, caseIds };
}

export function loadRelayerFixture() {
  return loadFixture(relayerFixture);
}

/** A fresh SQLite file in its own temp folder. */
export function tempDbFile(): string {
  return join(mkdtempSync(join(tmpdir(), "relayer-test-")), "engine.sqlite");
}

export function openOutboxDb(file: string): Db {
  return openDatabase(file, OUTBOX_MIGRATIONS);
}

export type RpcHook = (
  args: { method: string; params?: unknown[] },
  forward: () => Promise<unknown>,
) => Promise<unknown>;

/** The in-process chain through ethers, with `hook` in front of every request (to lose or delay answers). */
export function chainProvider(hook?: RpcHook): Provider {
  const inner = hre.network.provider as unknown as Eip1193Provider;
  const outer: Eip1193Provider = {
    request: (args) => {
      const forward = () => inner.request(args);
      return hook ? (hook(args as { method: string; params?: unknown[] }, forward) as Promise<unknown>) : forward();
    },
  };
  return createProvider({ kind: "in-process", provider: outer });
}

export function newRelayer(
  db: Db,
  fx: Awaited<ReturnType<typeof relayerFixture>>,
  options: Partial<RelayerOptions> = {},
): Relayer {
  return new Relayer({
    db,
    provider: options.provider ?? chainProvider(),
    wallets: { relayer: fx.relayerWallet, parties: Object.values(fx.managed) },
    escrowAddress: fx.escrowAddress,
    batchWindowMs: 0,
    ...options,
    timings: {
      pollIntervalMs: 20,
      sendTimeoutMs: 2_000,
      underpricedPolls: 2,
      backoffBaseMs: 10,
      backoffMaxMs: 100,
      ...options.timings,
    },
  });
}

/** A party's EIP-712 sign-off as the API would hand it to the relayer. */
export async function signedSignOff(
  escrow: MortgageEscrow,
  parties: Parties,
  caseId: bigint,
  stage: number,
  role: RoleName,
  evidence = ethers.id(`evidence ${caseId} ${stage} ${role}`),
  epoch = 0,
): Promise<RelayedSignOffIntent> {
  const message = { caseId, stage, role: Role[role], epoch, evidence };
  const signature = await signSignOff(escrow, partyFor(parties, role), message);
  return { kind: "relayed-sign-off", message: { ...message, caseId: caseId.toString() }, signature };
}

/** The `SignedOff` events of a case on chain (a sign-off applied twice would show twice). */
export async function signedOffEvents(escrow: MortgageEscrow, caseId: bigint) {
  return escrow.queryFilter(escrow.filters.SignedOff(caseId));
}

export async function chainNonce(address: string): Promise<number> {
  return ethers.provider.getTransactionCount(address, "latest");
}

export async function withAutomineOff<T>(body: () => Promise<T>): Promise<T> {
  await rpc("evm_setAutomine", [false]);
  try {
    return await body();
  } finally {
    await rpc("evm_setAutomine", [true]);
  }
}
