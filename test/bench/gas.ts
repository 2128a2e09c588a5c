/**
 * Gas benchmark of the escrow: `npm run bench:gas` prints a table; `npm run bench:gas -- --json` prints one
 * JSON object. Every figure is the gas used by real transactions on the in-process Hardhat network.
 */
import hre from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse } from "ethers";
import type { MortgageEscrow } from "../../typechain-types";
import {
  CaseStatus,
  DAY,
  caseTerms,
  DEFAULT_TERMS,
  EVIDENCE,
  Parties,
  Role,
  RoleName,
  US_PURCHASE,
  getParties,
  rule,
  roles,
  openCase,
  partyFor,
  registerTemplate,
  signedItem,
} from "../contracts/fixtures";

const { ethers } = hre;

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<number> {
  const receipt = await (await tx).wait();
  return Number(receipt!.gasUsed);
}

/**
 * The US purchase's sign-offs in the phases of shared/reference/mortgage-stages.md. The direct walk sends each
 * sign-off as its own transaction; the batched walk sends each phase as one batch, as the engine does with the
 * approvals that are pending together. Consummation is signed at the closing, which is scheduled after the
 * Closing Disclosure's waiting time, so no `advance` is needed.
 */
const US_PHASES: Array<{ name: string; waitBefore: number; signOffs: Array<[number, RoleName]> }> = [
  { name: "application, loan estimate, rate lock", waitBefore: 0, signOffs: [[0, "Buyer"], [0, "Bank"], [1, "Bank"], [2, "Bank"], [2, "Buyer"]] },
  { name: "appraisal, title, underwriting, clear to close", waitBefore: 0, signOffs: [[3, "Bank"], [4, "Lawyer"], [5, "Bank"], [6, "Bank"]] },
  { name: "closing disclosure", waitBefore: 0, signOffs: [[7, "Bank"], [7, "Buyer"]] },
  { name: "closing: consummation and funding", waitBefore: 2 * DAY, signOffs: [[8, "Buyer"], [8, "Seller"], [8, "Lawyer"], [9, "Bank"], [9, "Lawyer"]] },
  { name: "recording", waitBefore: 0, signOffs: [[10, "Lawyer"]] },
];

interface Walk {
  gas: number;
  transactions: number;
  /** The same gas split by what the transactions did. */
  breakdown: { openCase: number; deposits: number; signOffs: number; payout: number };
}

/** Open, both deposits, every sign-off, and the push of the seller's credit: the whole case, every transaction. */
async function walkUsPurchase(escrow: MortgageEscrow, parties: Parties, templateId: string, batched: boolean): Promise<Walk> {
  const breakdown = { openCase: 0, deposits: 0, signOffs: 0, payout: 0 };
  let transactions = 0;
  const count = async (kind: keyof typeof breakdown, tx: Promise<ContractTransactionResponse>) => {
    breakdown[kind] += await gasOf(tx);
    transactions += 1;
  };
  const terms = caseTerms(parties, templateId);
  const caseId = (await escrow.caseCount()) + 1n;
  await count("openCase", escrow.connect(parties.bank).openCase(terms));
  await count("deposits", escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEFAULT_TERMS.deposit, { value: DEFAULT_TERMS.deposit }));
  await count("deposits", escrow.connect(parties.bank).deposit(caseId, Role.Bank, DEFAULT_TERMS.loan, { value: DEFAULT_TERMS.loan }));
  for (const phase of US_PHASES) {
    if (phase.waitBefore) await time.increase(phase.waitBefore);
    if (batched) {
      const items = await Promise.all(phase.signOffs.map(([stage, role]) => signedItem(escrow, parties, caseId, stage, role)));
      await count("signOffs", escrow.connect(parties.relayer).signOffWithSignatures(items));
    } else {
      for (const [stage, role] of phase.signOffs) {
        await count("signOffs", escrow.connect(partyFor(parties, role)).signOff(caseId, stage, Role[role], EVIDENCE));
      }
    }
  }
  await count("payout", escrow.withdrawFor(caseId, parties.seller.address));
  const view = await escrow.caseOf(caseId);
  if (view.status !== BigInt(CaseStatus.Completed)) throw new Error(`the US purchase did not complete (status ${view.status})`);
  const gas = breakdown.openCase + breakdown.deposits + breakdown.signOffs + breakdown.payout;
  return { gas, transactions, breakdown };
}

/** Eight stages that each need the bank, the buyer and the lawyer (one releases, as every template must). */
const BATCH_BENCH = Array.from({ length: 8 }, (_, k) =>
  rule({ roles: roles("Bank", "Buyer", "Lawyer"), action: k === 7 ? 2 : 0 }),
);

/** Everything but the lawyer's sign-off of funding (stage 9), which the benchmark measures on its own. */
function stage9Last(signOffs: Array<[number, RoleName]>): number {
  const i = signOffs.findIndex(([stage, role]) => stage === 9 && role === "Lawyer");
  return i === -1 ? signOffs.length : i;
}

async function main() {
  const json = process.argv.includes("--json");
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const templateId = await registerTemplate(escrow, parties.admin, US_PURCHASE);
  const terms = caseTerms(parties, templateId);

  await openCase(escrow, parties, templateId); // the first case pays for the counter's first write
  const openCaseGas = await gasOf(escrow.connect(parties.bank).openCase(terms));
  const caseId = await escrow.caseCount();

  const signOff = await gasOf(escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE));
  // Stage 0 records its completion time (stage 1's deadline counts from it); stage 1 records none.
  const signOffCompletingClockStage = await gasOf(escrow.connect(parties.bank).signOff(caseId, 0, Role.Bank, EVIDENCE));
  const signOffCompletingStage = await gasOf(escrow.connect(parties.bank).signOff(caseId, 1, Role.Bank, EVIDENCE));

  // The marginal cost of a relayed signature: N sign-offs by the bank and the buyer on one case, none of them
  // the last a stage needs (each stage of BATCH_BENCH also needs the lawyer), so nothing else is read.
  const batchTemplate = await registerTemplate(escrow, parties.admin, BATCH_BENCH, ethers.id("batch-bench"));
  const batch: Record<string, number> = {};
  for (const n of [1, 2, 4, 8]) {
    const id = await openCase(escrow, parties, batchTemplate);
    const pairs = Array.from({ length: n }, (_, k): [number, RoleName] => [k >> 1, k % 2 === 0 ? "Bank" : "Buyer"]);
    const items = await Promise.all(pairs.map(([s, r]) => signedItem(escrow, parties, id, s, r)));
    batch[n] = await gasOf(escrow.connect(parties.relayer).signOffWithSignatures(items));
  }
  const perExtraSignature = Math.round((batch[8] - batch[1]) / 7);
  // The same on the US purchase: 8 sign-offs from all four parties, four of them the last their (still
  // locked) stage needs, so each of those also reads the stage's rule.
  const usBatchCase = await openCase(escrow, parties, templateId);
  const usPairs: Array<[number, RoleName]> = [
    [7, "Bank"], [7, "Buyer"], [8, "Buyer"], [8, "Seller"], [8, "Lawyer"], [9, "Bank"], [9, "Lawyer"], [10, "Lawyer"],
  ];
  const usItems = await Promise.all(usPairs.map(([s, r]) => signedItem(escrow, parties, usBatchCase, s, r)));
  const usPurchaseBatchOf8 = await gasOf(escrow.connect(parties.relayer).signOffWithSignatures(usItems));

  // The final sign-off of the releasing stage, on a case walked up to it.
  const releaseCase = await openCase(escrow, parties, templateId);
  await escrow.connect(parties.buyer).deposit(releaseCase, Role.Buyer, DEFAULT_TERMS.deposit, { value: DEFAULT_TERMS.deposit });
  await escrow.connect(parties.bank).deposit(releaseCase, Role.Bank, DEFAULT_TERMS.loan, { value: DEFAULT_TERMS.loan });
  for (const phase of US_PHASES.slice(0, 4)) {
    if (phase.waitBefore) await time.increase(phase.waitBefore);
    for (const [stage, role] of phase.signOffs.slice(0, stage9Last(phase.signOffs))) {
      await escrow.connect(partyFor(parties, role)).signOff(releaseCase, stage, Role[role], EVIDENCE);
    }
  }
  const finalSignOffWithRelease = await gasOf(escrow.connect(parties.lawyer).signOff(releaseCase, 9, Role.Lawyer, EVIDENCE));
  if (!(await escrow.caseOf(releaseCase)).released) throw new Error("the final sign-off did not release the escrow");

  const usPurchaseDirect = await walkUsPurchase(escrow, parties, templateId, false);
  const usPurchaseBatched = await walkUsPurchase(escrow, parties, templateId, true);

  const result = {
    openCase: openCaseGas,
    signOff,
    signOffCompletingStage,
    signOffCompletingClockStage,
    batch,
    perExtraSignature,
    usPurchaseBatchOf8,
    finalSignOffWithRelease,
    usPurchaseDirect,
    usPurchaseBatched,
  };
  if (json) {
    console.log(JSON.stringify(result));
    return;
  }
  const rows: Array<[string, string, string]> = [
    ["open a case (ETH)", String(openCaseGas), "150,000"],
    ["direct sign-off, completes nothing", String(signOff), "34,000"],
    ["direct sign-off, completes a stage", String(signOffCompletingStage), "42,000"],
    ["  ... a stage whose time is recorded", String(signOffCompletingClockStage), ""],
    ...[1, 2, 4, 8].map((n): [string, string, string] => [`batch of ${n} relayed signatures`, String(batch[n]), ""]),
    ["each extra signature in a batch", String(perExtraSignature), "12,000"],
    ["batch of 8 mixed US purchase sign-offs", String(usPurchaseBatchOf8), ""],
    ["final sign-off, releases the escrow", String(finalSignOffWithRelease), "75,000"],
    [`US purchase, direct (${usPurchaseDirect.transactions} tx)`, String(usPurchaseDirect.gas), ""],
    [`US purchase, batched (${usPurchaseBatched.transactions} tx)`, String(usPurchaseBatched.gas), "650,000"],
    ...(["openCase", "deposits", "signOffs", "payout"] as const).map((kind): [string, string, string] => [
      `  ${kind} (direct / batched)`,
      `${usPurchaseDirect.breakdown[kind]} / ${usPurchaseBatched.breakdown[kind]}`,
      "",
    ]),
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const gasWidth = Math.max(9, ...rows.map(([, gas]) => gas.length));
  console.log(`${"what".padEnd(width)}  ${"gas".padStart(gasWidth)}  ${"goal".padStart(9)}`);
  for (const [name, gas, goal] of rows) console.log(`${name.padEnd(width)}  ${gas.padStart(gasWidth)}  ${goal.padStart(9)}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
