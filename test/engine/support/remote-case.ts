/**
 * A us-purchase case on a node over JSON-RPC, driven only through engines: the escrow deployed and every
 * compiled template registered with ethers from dev account 0 (the admin), a case opened by its bank, the
 * engines' relayer keys funded, and the walk from the application to the seller paid.
 *
 * The walk takes the party's way to each engine as functions, so the same walk runs with one engine holding
 * every managed key, or with a bank's and a law firm's engine each submitting its own party's sign-offs.
 */
import { expect } from "chai";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BaseWallet, type Wallet, ZeroAddress, id as keccakId, parseEther } from "ethers";
import { createEngine, type Engine } from "../../../engine";
import { createProvider } from "../../../engine/chain/provider";
import { PROJECTION_MIGRATIONS, Projection } from "../../../engine/projection/projection";
import { openDatabase } from "../../../engine/store/database";
import { type CompiledWorkflow, getTemplate, loadTemplates } from "../../../workflows";
import type { RoleName } from "../../../workflows/schema";
import { MortgageEscrow__factory, type MortgageEscrow } from "../../../typechain-types";
import { type Deployment, TERMS, expectMatchesChain } from "../projection-helpers";
import { BEFORE_CONSUMMATION, waitFor } from "../engine-helpers";
import { type NodeProcess, devWallet, fund, increaseTo } from "./node-process";

export const ROLE_INDEX: Record<RoleName, number> = { bank: 0, lawyer: 1, buyer: 2, seller: 3 };

export interface RemoteCase {
  node: NodeProcess;
  escrow: MortgageEscrow;
  address: string;
  fromBlock: number;
  template: CompiledWorkflow;
  /** The dev accounts 1-4, as in the in-process tests. */
  parties: Record<RoleName, Wallet>;
  caseId: bigint;
}

/** Deploys the escrow, registers every compiled template, opens a us-purchase case, funds `relayers`. */
export async function deployCase(node: NodeProcess, relayers: readonly BaseWallet[]): Promise<RemoteCase> {
  const admin = devWallet(0, node.provider);
  const parties = {
    bank: devWallet(1, node.provider),
    lawyer: devWallet(2, node.provider),
    buyer: devWallet(3, node.provider),
    seller: devWallet(4, node.provider),
  };
  const escrow = await new MortgageEscrow__factory(admin).deploy(admin.address);
  const receipt = await escrow.deploymentTransaction()!.wait();
  for (const workflow of loadTemplates()) {
    await (await escrow.registerTemplate(workflow.definitionHash, workflow.stages, workflow.amendmentRules)).wait();
  }
  const template = getTemplate("us-purchase");
  const terms = {
    templateId: template.templateId,
    bank: parties.bank.address,
    lawyer: parties.lawyer.address,
    buyer: parties.buyer.address,
    seller: parties.seller.address,
    asset: ZeroAddress,
    price: TERMS.price,
    deposit: TERMS.deposit,
    loan: TERMS.loan,
  };
  const asBank = escrow.connect(parties.bank);
  const caseId = await asBank.openCase.staticCall(terms);
  await (await asBank.openCase(terms)).wait();
  for (const relayer of relayers) await fund(node, relayer.address, parseEther("10"));
  return {
    node,
    escrow,
    address: await escrow.getAddress(),
    fromBlock: receipt!.blockNumber,
    template,
    parties,
    caseId,
  };
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), "engine-rpc-"));
}

/** An engine over JSON-RPC at `url` (the node, or a proxy in front of it), on its own SQLite file. */
export function rpcEngine(
  c: RemoteCase,
  options: { url: string; relayerKey: BaseWallet; partyKeys: BaseWallet[]; timeoutMs?: number },
): Engine {
  return createEngine({
    dataDir: tempDataDir(),
    chain: { kind: "json-rpc", url: options.url, timeoutMs: options.timeoutMs },
    escrowAddress: c.address,
    relayerKey: options.relayerKey,
    partyKeys: options.partyKeys,
    pollIntervalMs: 100,
    deploymentBlock: c.fromBlock,
    batchWindowMs: 100,
  });
}

export function approvalOf(c: RemoteCase, stageId: string, role: RoleName) {
  return {
    caseId: c.caseId,
    stageId,
    role,
    principalAddress: c.parties[role].address,
    evidence: keccakId(`${stageId} by ${role}`),
  };
}

/** The party's own wallet signs the typed data the engine hands out; the engine checks it and relays it. */
export async function approveWithOwnWallet(engine: Engine, c: RemoteCase, stageId: string, role: RoleName) {
  const request = approvalOf(c, stageId, role);
  const typed = await engine.typedDataFor(request);
  const signature = await c.parties[role].signTypedData(typed.domain, typed.types, typed.message);
  return engine.approve({ ...request, signature });
}

export function stageStatus(engine: Engine, c: RemoteCase, id: string) {
  return engine.getCase(c.caseId)?.stages[c.template.stageIndex[id]];
}

/** Every (stage, role) that must sign off the case, as "stage:role" of the chain's numbering. */
export function requiredSignOffs(c: RemoteCase): string[] {
  const keys: string[] = [];
  c.template.stages.forEach((rule, stage) => {
    for (let role = 0; role < 4; role++) if ((Number(rule.roles) >> role) & 1) keys.push(`${stage}:${role}`);
  });
  return keys.sort();
}

/** The case's `SignedOff` events as "stage:role", one entry per event (a doubled sign-off shows twice). */
export async function signedOffOnChain(c: RemoteCase): Promise<string[]> {
  const events = await c.escrow.queryFilter(c.escrow.filters.SignedOff(c.caseId), c.fromBlock);
  return events.map((e) => `${e.args.stage}:${e.args.role}`).sort();
}

export interface CaseDrivers {
  /** The engine whose runtime's legal guards and clock the walk reads; every engine is waited for. */
  primary: Engine;
  engines: Engine[];
  approve: (stageId: string, role: RoleName) => Promise<unknown>;
  deposit: (role: "buyer" | "bank", amount: bigint) => unknown;
  /** Runs once the sign-offs before consummation are handed to the engines (fault 9 cuts the line here). */
  afterFirstApprovals?: () => Promise<void>;
}

async function allEngines(
  drivers: CaseDrivers,
  what: string,
  probe: (engine: Engine) => boolean,
  timeoutMs = 60_000,
): Promise<void> {
  try {
    await waitFor(what, () => drivers.engines.every(probe), timeoutMs);
  } catch (error) {
    // What each engine saw and what its relayer still holds: the first thing to read when this times out.
    const state = drivers.engines.map((e, i) => ({
      engine: i,
      stages: e.projection.listCases().map((c) => c.stages.map((s) => `${s.id}:${s.status}`)),
      unsettled: e.relayer.outbox
        .list()
        .filter((x) => x.status !== "confirmed")
        .map((x) => ({ key: x.idempotencyKey, status: x.status, error: x.error })),
      relayer: e.relayer.health().error?.message ?? null,
    }));
    throw new Error(`${(error as Error).message}\n${JSON.stringify(state, null, 1)}`);
  }
}

/**
 * The whole case: the sign-offs before consummation at once, the engines' own advance at the Loan Estimate's
 * legal moment, funding and recording signed early, the deposits, consummation at its legal moment, release
 * and the seller's credit pushed. Resolves when every engine shows the case completed and the seller is paid.
 */
export async function walkUsPurchase(c: RemoteCase, drivers: CaseDrivers): Promise<void> {
  const { primary } = drivers;
  const stage = (id: string) => c.template.stageIndex[id];
  const chainStatus = async (id: string) => Number((await c.escrow.stageOf(c.caseId, stage(id))).status);

  const approvals = Promise.all(BEFORE_CONSUMMATION.map(([stageId, role]) => drivers.approve(stageId, role)));
  if (drivers.afterFirstApprovals) await drivers.afterFirstApprovals();
  await approvals;
  await allEngines(
    drivers,
    "the closing disclosure completed",
    (e) => stageStatus(e, c, "closing-disclosure")?.status === "completed",
  );

  // The Loan Estimate's waiting period: the engine holds back for the law's moment, then advances by itself.
  const view = primary.projection.viewOf(c.caseId)!;
  const waiting = stage("loan-estimate-waiting-period");
  const legal = primary.runtime.guards.of(view.template.templateId)!.legalMomentOf(view.model, waiting) as Date;
  const legalAt = Math.ceil(legal.getTime() / 1000);
  await increaseTo(c.node, legalAt - 2);
  await waitFor(
    "the engine's own advance",
    async () => (await chainStatus("loan-estimate-waiting-period")) === 4,
    30_000,
  );
  const [advanced] = await c.escrow.queryFilter(c.escrow.filters.StageCompleted(c.caseId, waiting), c.fromBlock);
  expect((await advanced.getBlock()).timestamp, "advanced at the legal moment").to.be.within(legalAt, legalAt + 5);
  await allEngines(
    drivers,
    "the waiting period projected",
    (e) => stageStatus(e, c, "loan-estimate-waiting-period")?.status === "completed",
  );

  await Promise.all([
    drivers.approve("funding", "bank"),
    drivers.approve("funding", "lawyer"),
    drivers.approve("recording", "lawyer"),
  ]);
  drivers.deposit("buyer", TERMS.deposit);
  drivers.deposit("bank", TERMS.loan);
  await allEngines(drivers, "the escrow funded", (e) => e.getCase(c.caseId)?.escrow.funded === true);

  const consummation = primary.projection.viewOf(c.caseId)!;
  const consummationAt = primary.runtime.guards
    .of(consummation.template.templateId)!
    .legalMomentOf(consummation.model, stage("consummation")) as Date;
  await increaseTo(c.node, Math.ceil(consummationAt.getTime() / 1000));
  await allEngines(drivers, "the clock seen", (e) => e.clock.nowMs() >= consummationAt.getTime());
  const sellerBefore = await c.node.provider.getBalance(c.parties.seller.address);
  await Promise.all((["buyer", "seller", "lawyer"] as const).map((role) => drivers.approve("consummation", role)));

  await allEngines(drivers, "the case completed", (e) => e.getCase(c.caseId)?.status === "completed");
  await waitFor(
    "the seller paid",
    async () => (await c.node.provider.getBalance(c.parties.seller.address)) === sellerBefore + TERMS.price,
    30_000,
  );
  expect(await c.escrow.creditOf(c.caseId, c.parties.seller.address)).to.equal(0n);
}

/** A projection built from the chain alone, on a new SQLite file: what every engine's projection must equal. */
export async function freshProjection(c: RemoteCase): Promise<Projection> {
  const projection = new Projection({
    db: openDatabase(join(tempDataDir(), "fresh.sqlite"), PROJECTION_MIGRATIONS),
    provider: createProvider({ kind: "json-rpc", url: c.node.url }),
    address: c.address,
    fromBlock: c.fromBlock,
  });
  await projection.poll();
  return projection;
}

/**
 * The engine's projection of the case equals a fresh one from the chain (at the same moment), and both agree
 * with the contract's own views (`stageOf`, `caseOf`, `creditOf`).
 */
export async function expectProjectionMatchesChain(engine: Engine, c: RemoteCase, label: string): Promise<void> {
  const fresh = await freshProjection(c);
  try {
    const now = (await c.node.provider.getBlock("latest"))!.timestamp;
    await waitFor(
      `${label} at the chain's head`,
      async () => engine.projection.log.checkpoint().number >= (await c.node.provider.getBlockNumber()),
    );
    expect(
      engine.projection.getCase(c.caseId, now),
      `${label} equals a projection rebuilt from the chain`,
    ).to.deep.equal(fresh.getCase(c.caseId, now));
    expect(engine.historyOf(c.caseId), `${label} history`).to.deep.equal(fresh.historyOf(c.caseId));
    // Only the escrow is read there; the parties of the in-process deployment are not needed.
    await expectMatchesChain(
      engine.projection.getCase(c.caseId, now),
      { escrow: c.escrow } as unknown as Deployment,
      c.caseId,
      label,
    );
  } finally {
    fresh.log.db.close();
  }
}
