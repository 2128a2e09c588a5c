/**
 * Gas benchmark of the escrow: `npm run bench:gas` prints a table; `npm run bench:gas -- --json` prints one
 * JSON object. Every figure is the gas used by real transactions on the in-process Hardhat network.
 */
import hre from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse } from "ethers";
import type { MortgageEscrow } from "../../typechain-types";
import {
  DAY,
  DEFAULT_TERMS,
  EVIDENCE,
  Parties,
  Role,
  RoleName,
  US_PURCHASE,
  getParties,
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

/** The US purchase's sign-offs, grouped as the engine sends them: one group per stage, in stage order. */
const US_SIGN_OFFS: Array<Array<[number, RoleName]>> = [
  [[0, "Buyer"], [0, "Bank"]],
  [[1, "Bank"]],
  [[2, "Bank"], [2, "Buyer"]],
  [[3, "Bank"], [4, "Lawyer"], [5, "Bank"]],
  [[6, "Bank"]],
  [[7, "Bank"], [7, "Buyer"]],
  [[8, "Buyer"], [8, "Seller"], [8, "Lawyer"]],
  [[9, "Bank"], [9, "Lawyer"]],
  [[10, "Lawyer"]],
];
const WAIT_BEFORE_GROUP = 7; // stage 8 waits 2 days after stage 7: the engine calls advance after the wait.

interface Walk {
  gas: number;
  transactions: number;
}

async function walkUsPurchase(escrow: MortgageEscrow, parties: Parties, templateId: string, batched: boolean): Promise<Walk> {
  let gas = 0;
  let transactions = 0;
  const count = async (tx: Promise<ContractTransactionResponse>) => {
    gas += await gasOf(tx);
    transactions += 1;
  };
  const caseId = await openCase(escrow, parties, templateId);
  gas += Number((await ethers.provider.getTransactionReceipt(
    (await escrow.queryFilter(escrow.filters.CaseOpened(caseId)))[0].transactionHash,
  ))!.gasUsed);
  transactions += 1;
  await count(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, DEFAULT_TERMS.deposit, { value: DEFAULT_TERMS.deposit }));
  await count(escrow.connect(parties.bank).deposit(caseId, Role.Bank, DEFAULT_TERMS.loan, { value: DEFAULT_TERMS.loan }));
  for (const [index, group] of US_SIGN_OFFS.entries()) {
    if (batched) {
      const items = await Promise.all(group.map(([stage, role]) => signedItem(escrow, parties, caseId, stage, role)));
      await count(escrow.connect(parties.relayer).signOffWithSignatures(items));
    } else {
      for (const [stage, role] of group) {
        await count(escrow.connect(partyFor(parties, role)).signOff(caseId, stage, Role[role], EVIDENCE));
      }
    }
    if (index === WAIT_BEFORE_GROUP - 1) {
      // Stage 8's sign-offs arrive during its waiting time; the engine advances when the time comes.
    }
    if (index === WAIT_BEFORE_GROUP - 1 + 0 && false) await time.increase(0);
    if (group.some(([stage]) => stage === 8)) {
      await time.increase(2 * DAY);
      await count(escrow.advance(caseId));
    }
  }
  await count(escrow.withdrawFor(caseId, parties.seller.address));
  const view = await escrow.caseOf(caseId);
  if (view.status !== 2n) throw new Error(`the US purchase did not complete (status ${view.status})`);
  return { gas, transactions };
}

async function main() {
  const json = process.argv.includes("--json");
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const templateId = await registerTemplate(escrow, parties.admin, US_PURCHASE);
  const terms = { templateId, bank: parties.bank.address, lawyer: parties.lawyer.address, buyer: parties.buyer.address,
    seller: parties.seller.address, asset: ethers.ZeroAddress, ...DEFAULT_TERMS };

  await openCase(escrow, parties, templateId); // the first case pays for the counter's first write
  const openCaseGas = await gasOf(escrow.connect(parties.bank).openCase(terms));
  const caseId = await escrow.caseCount();

  const signOff = await gasOf(escrow.connect(parties.buyer).signOff(caseId, 0, Role.Buyer, EVIDENCE));
  // Stage 0 records its completion time (stage 1's deadline counts from it); stage 1 records none.
  const signOffCompletingClockStage = await gasOf(escrow.connect(parties.bank).signOff(caseId, 0, Role.Bank, EVIDENCE));
  const signOffCompletingStage = await gasOf(escrow.connect(parties.bank).signOff(caseId, 1, Role.Bank, EVIDENCE));

  // Batches of N relayed signatures on one fresh case, on stages still locked (so none completes).
  const batchPairs: Array<[number, RoleName]> = [
    [7, "Bank"], [7, "Buyer"], [8, "Buyer"], [8, "Seller"], [8, "Lawyer"], [9, "Bank"], [9, "Lawyer"], [10, "Lawyer"],
  ];
  const batch: Record<string, number> = {};
  for (const n of [1, 2, 4, 8]) {
    const id = await openCase(escrow, parties, templateId);
    const items = await Promise.all(batchPairs.slice(0, n).map(([s, r]) => signedItem(escrow, parties, id, s, r)));
    batch[n] = await gasOf(escrow.connect(parties.relayer).signOffWithSignatures(items));
  }
  const perExtraSignature = Math.round((batch[8] - batch[1]) / 7);

  // The final sign-off of the releasing stage, on a case walked up to it.
  const releaseCase = await openCase(escrow, parties, templateId);
  await escrow.connect(parties.buyer).deposit(releaseCase, Role.Buyer, DEFAULT_TERMS.deposit, { value: DEFAULT_TERMS.deposit });
  await escrow.connect(parties.bank).deposit(releaseCase, Role.Bank, DEFAULT_TERMS.loan, { value: DEFAULT_TERMS.loan });
  for (const group of US_SIGN_OFFS.slice(0, 7)) {
    for (const [stage, role] of group) await escrow.connect(partyFor(parties, role)).signOff(releaseCase, stage, Role[role], EVIDENCE);
  }
  await time.increase(2 * DAY);
  await escrow.advance(releaseCase);
  await escrow.connect(parties.bank).signOff(releaseCase, 9, Role.Bank, EVIDENCE);
  const finalSignOffWithRelease = await gasOf(escrow.connect(parties.lawyer).signOff(releaseCase, 9, Role.Lawyer, EVIDENCE));

  const usPurchaseDirect = await walkUsPurchase(escrow, parties, templateId, false);
  const usPurchaseBatched = await walkUsPurchase(escrow, parties, templateId, true);

  const result = {
    openCase: openCaseGas,
    signOff,
    signOffCompletingStage,
    signOffCompletingClockStage,
    batch,
    perExtraSignature,
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
    ["final sign-off, releases the escrow", String(finalSignOffWithRelease), "75,000"],
    [`US purchase, direct (${usPurchaseDirect.transactions} tx)`, String(usPurchaseDirect.gas), ""],
    [`US purchase, batched (${usPurchaseBatched.transactions} tx)`, String(usPurchaseBatched.gas), "650,000"],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`${"what".padEnd(width)}  ${"gas".padStart(9)}  ${"goal".padStart(9)}`);
  for (const [name, gas, goal] of rows) console.log(`${name.padEnd(width)}  ${gas.padStart(9)}  ${goal.padStart(9)}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
