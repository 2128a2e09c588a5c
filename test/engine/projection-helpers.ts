/** Shared set-up for the projection tests: a fresh escrow with the workflows registered, a SQLite file, the chain's view. */
import { expect } from "chai";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createProvider } from "../../engine/chain/provider";
import { openDatabase } from "../../engine/store/database";
import { PROJECTION_MIGRATIONS, Projection, type ProjectionOptions } from "../../engine/projection/projection";
import type { CaseProgress } from "../../engine/projection/case-view";
import { type CompiledWorkflow, getTemplate } from "../../workflows";
import type { MortgageEscrow } from "../../typechain-types";
import {
  EVIDENCE,
  Role,
  type Parties,
  type RoleName,
  type Terms,
  getParties,
  openCase,
  partyFor,
  registerTemplate,
} from "../contracts/fixtures";

export const ROLE: Record<string, RoleName> = { bank: "Bank", lawyer: "Lawyer", buyer: "Buyer", seller: "Seller" };
export const TERMS: Terms = {
  price: ethers.parseEther("90"),
  deposit: ethers.parseEther("20"),
  loan: ethers.parseEther("80"),
};

/** The contract's `StageStatus`, written as the API writes it ("waiting:time" for status waiting, waitingFor time). */
const CHAIN_STATUS = [
  "locked",
  "open",
  "waiting:time",
  "waiting:funds",
  "completed",
  "overdue",
  "expired",
  "cancelled",
];
const CASE_STATUS = ["none", "open", "completed", "expired", "cancelled"];

export interface Deployment {
  escrow: MortgageEscrow;
  parties: Parties;
  address: string;
  fromBlock: number;
  template: CompiledWorkflow;
}

/** A new escrow (so each test reads only its own events) with us-purchase registered. */
export async function deployEscrow(): Promise<Deployment> {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const receipt = await escrow.deploymentTransaction()!.wait();
  const template = getTemplate("us-purchase");
  await registerTemplate(escrow, parties.admin, template.stages, template.definitionHash, template.amendmentRules);
  return { escrow, parties, address: await escrow.getAddress(), fromBlock: receipt!.blockNumber, template };
}

export function openUsCase(d: Deployment, terms: Terms = TERMS): Promise<bigint> {
  return openCase(d.escrow, d.parties, d.template.templateId, terms);
}

/** A fresh SQLite file in a temporary folder. */
export function tempDbFile(): string {
  return join(mkdtempSync(join(tmpdir(), "projection-")), "engine.sqlite");
}

export function newProjection(d: Deployment, file: string, extra: Partial<ProjectionOptions> = {}): Projection {
  return new Projection({
    db: openDatabase(file, PROJECTION_MIGRATIONS),
    provider: createProvider({ kind: "in-process", provider: hre.network.provider }),
    address: d.address,
    fromBlock: d.fromBlock,
    ...extra,
  });
}

export async function rpc<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
  return (await hre.network.provider.send(method, params)) as T;
}

export async function sign(d: Deployment, caseId: bigint, stage: number, role: string): Promise<void> {
  const name = ROLE[role];
  await (await d.escrow.connect(partyFor(d.parties, name)).signOff(caseId, stage, Role[name], EVIDENCE)).wait();
}

export function statusKey(stage: CaseProgress["stages"][number]): string {
  return stage.status === "waiting" ? `waiting:${stage.waitingFor}` : stage.status;
}

/**
 * Asserts that the projected progress agrees with the contract's own views at the latest block's time:
 * each stage's status (`stageOf`), sign-offs, times, the case's status and money, each party's credit.
 */
export async function expectMatchesChain(
  progress: CaseProgress | null,
  d: Deployment,
  caseId: bigint,
  label = "",
): Promise<void> {
  expect(progress, `${label} case ${caseId} is projected`).to.not.equal(null);
  const p = progress as CaseProgress;
  const c = await d.escrow.caseOf(caseId);
  expect(p.status, `${label} case status`).to.equal(CASE_STATUS[Number(c.status)]);
  expect(p.escrow.funded, `${label} funded`).to.equal(c.funded);
  expect(p.escrow.released, `${label} released`).to.equal(c.released);
  expect(p.escrow.paidByBank).to.equal(c.paidByBank.toString());
  expect(p.escrow.paidByBuyer).to.equal(c.paidByBuyer.toString());
  for (const [i, stage] of p.stages.entries()) {
    const view = await d.escrow.stageOf(caseId, i);
    // The law may hold a stage back past the contract's floor: it then reads waiting for time until its legal moment.
    const chainStatus = CHAIN_STATUS[Number(view.status)];
    const heldByLaw = stage.availableAt !== null && Date.parse(stage.availableAt) > (await time.latest()) * 1000;
    const expected =
      heldByLaw && ["open", "waiting:time", "waiting:funds"].includes(chainStatus) ? "waiting:time" : chainStatus;
    expect(statusKey(stage), `${label} stage ${i} ${stage.id}`).to.equal(expected);
    const signed = ["bank", "lawyer", "buyer", "seller"].filter((_, r) => (Number(view.signedOffRoles) >> r) & 1);
    expect(stage.signedOff, `${label} stage ${i} sign-offs`).to.deep.equal(signed);
    expect(stage.contractFloor, `${label} stage ${i} contractFloor`).to.equal(isoOrNull(view.availableAt));
    expect(stage.contractCeiling, `${label} stage ${i} contractCeiling`).to.equal(isoOrNull(view.deadline));
    if (view.completedAt !== 0n)
      expect(stage.completedAt, `${label} stage ${i} completedAt`).to.equal(isoOrNull(view.completedAt));
    if (stage.status === "completed") expect(stage.tx, `${label} stage ${i} tx`).to.match(/^0x[0-9a-f]{64}$/);
  }
  expect(p.progress.completed).to.equal(p.stages.filter((s) => s.status === "completed").length);
  for (const party of Object.values(p.parties)) {
    expect(p.escrow.credits[party] ?? "0", `${label} credit of ${party}`).to.equal(
      (await d.escrow.creditOf(caseId, party)).toString(),
    );
  }
}

function isoOrNull(seconds: bigint): string | null {
  return seconds === 0n ? null : new Date(Number(seconds) * 1000).toISOString();
}

export async function chainNow(): Promise<number> {
  return time.latest();
}
