/**
 * Gas benchmark of the escrow: `npm run bench:gas` prints a table; `npm run -s bench:gas -- --json` prints one
 * JSON object. Every figure is the gas used by real transactions on the in-process Hardhat network, on the
 * product's own `us-purchase` template (workflows/templates/us-purchase.json).
 */
import hre from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse } from "ethers";
import type { MortgageEscrow } from "../../typechain-types";
import { getTemplate } from "../../workflows";
import {
  CaseStatus,
  DAY,
  DEFAULT_TERMS,
  EVIDENCE,
  type Parties,
  Role,
  type RoleName,
  caseTerms,
  getParties,
  openCase,
  partyFor,
  registerTemplate,
  roles,
  rule,
  signConsent,
  signedItem,
  proposal,
  AmendmentKind,
} from "../contracts/fixtures";

const { ethers } = hre;
const US = getTemplate("us-purchase");
const stage = (id: string): number => {
  const index = US.stageIndex[id];
  if (index === undefined) throw new Error(`us-purchase has no stage ${id}`);
  return index;
};

type SignOff = [stageId: string, role: RoleName];

/**
 * The US purchase's sign-offs in the phases of shared/reference/mortgage-stages.md. The direct walk sends each
 * sign-off as its own transaction; the batched walk sends each phase as one batch, as the engine does with the
 * approvals that are pending together. The Loan Estimate's waiting period is completed by time alone: the
 * engine calls `advance` when it ends. The closing is scheduled after TRID's three business days, so the
 * parties' sign-offs complete consummation themselves.
 */
const US_PHASES: Array<{ name: string; waitBefore: number; signOffs: SignOff[]; advance?: boolean }> = [
  {
    name: "application, loan estimate, rate lock",
    waitBefore: 0,
    signOffs: [
      ["application", "Buyer"],
      ["application", "Bank"],
      ["loan-estimate", "Bank"],
      ["rate-lock", "Bank"],
      ["rate-lock", "Buyer"],
    ],
  },
  {
    name: "appraisal, title, underwriting, clear to close",
    waitBefore: DAY,
    signOffs: [
      ["appraisal", "Bank"],
      ["title-commitment", "Lawyer"],
      ["underwriting", "Bank"],
      ["clear-to-close", "Bank"],
    ],
  },
  { name: "the Loan Estimate's waiting period ends", waitBefore: 3 * DAY, signOffs: [], advance: true },
  {
    name: "closing disclosure",
    waitBefore: DAY,
    signOffs: [
      ["closing-disclosure", "Bank"],
      ["closing-disclosure", "Buyer"],
    ],
  },
  {
    name: "closing: consummation and funding",
    waitBefore: 3 * DAY,
    signOffs: [
      ["consummation", "Buyer"],
      ["consummation", "Seller"],
      ["consummation", "Lawyer"],
      ["funding", "Bank"],
      ["funding", "Lawyer"],
    ],
  },
  { name: "recording", waitBefore: DAY, signOffs: [["recording", "Lawyer"]] },
];

/**
 * Eight stages that each need the bank, the buyer and the lawyer (one releases, as every template must, with
 * the long-stop every releasing stage needs).
 */
const BATCH_BENCH = Array.from({ length: 8 }, (_, k) =>
  rule({ roles: roles("Bank", "Buyer", "Lawyer"), action: k === 7 ? 2 : 0, longStopSeconds: k === 7 ? 90 * DAY : 0 }),
);

interface Walk {
  gas: number;
  transactions: number;
  /** The same gas split by what the transactions did. */
  breakdown: { openCase: number; deposits: number; signOffs: number; advance: number; payout: number };
}

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<number> {
  const receipt = await (await tx).wait();
  return Number(receipt!.gasUsed);
}

function signDirect(escrow: MortgageEscrow, parties: Parties, caseId: bigint, [id, role]: SignOff) {
  return escrow.connect(partyFor(parties, role)).signOff(caseId, stage(id), Role[role], EVIDENCE);
}

async function deposits(
  escrow: MortgageEscrow,
  parties: Parties,
  caseId: bigint,
): Promise<ContractTransactionResponse[]> {
  return [
    await escrow
      .connect(parties.buyer)
      .deposit(caseId, Role.Buyer, DEFAULT_TERMS.deposit, { value: DEFAULT_TERMS.deposit }),
    await escrow.connect(parties.bank).deposit(caseId, Role.Bank, DEFAULT_TERMS.loan, { value: DEFAULT_TERMS.loan }),
  ];
}

/** Open, both deposits, every sign-off, and the push of the seller's credit: the whole case, every transaction. */
async function walkUsPurchase(
  escrow: MortgageEscrow,
  parties: Parties,
  templateId: string,
  batched: boolean,
): Promise<Walk> {
  const breakdown = { openCase: 0, deposits: 0, signOffs: 0, advance: 0, payout: 0 };
  let transactions = 0;
  const count = async (kind: keyof typeof breakdown, tx: Promise<ContractTransactionResponse>) => {
    breakdown[kind] += await gasOf(tx);
    transactions += 1;
  };
  const caseId = (await escrow.caseCount()) + 1n;
  await count("openCase", escrow.connect(parties.bank).openCase(caseTerms(parties, templateId)));
  for (const tx of await deposits(escrow, parties, caseId)) await count("deposits", Promise.resolve(tx));
  for (const phase of US_PHASES) {
    if (phase.waitBefore) await time.increase(phase.waitBefore);
    if (phase.advance) await count("advance", escrow.advance(caseId));
    if (phase.signOffs.length === 0) continue;
    if (batched) {
      const items = await Promise.all(
        phase.signOffs.map(([id, role]) => signedItem(escrow, parties, caseId, stage(id), role)),
      );
      await count("signOffs", escrow.connect(parties.relayer).signOffWithSignatures(items));
    } else {
      for (const signOff of phase.signOffs) await count("signOffs", signDirect(escrow, parties, caseId, signOff));
    }
  }
  await count("payout", escrow.withdrawFor(caseId, parties.seller.address));
  const view = await escrow.caseOf(caseId);
  if (view.status !== BigInt(CaseStatus.Completed))
    throw new Error(`the US purchase did not complete (status ${view.status})`);
  const gas = Object.values(breakdown).reduce((a, b) => a + b, 0);
  return { gas, transactions, breakdown };
}

async function main() {
  const json = process.argv.includes("--json");
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const templateId = await registerTemplate(escrow, parties.admin, US.stages, US.definitionHash, US.amendmentRules);

  await openCase(escrow, parties, templateId); // the first case pays for the counter's first write
  const openCaseGas = await gasOf(escrow.connect(parties.bank).openCase(caseTerms(parties, templateId)));
  const caseId = await escrow.caseCount();

  const signOff = await gasOf(signDirect(escrow, parties, caseId, ["application", "Buyer"]));
  // The application's completion time is recorded (the Loan Estimate's deadline counts from it); the
  // appraisal's is not.
  const signOffCompletingClockStage = await gasOf(signDirect(escrow, parties, caseId, ["application", "Bank"]));
  for (const s of [
    ["loan-estimate", "Bank"],
    ["rate-lock", "Bank"],
    ["rate-lock", "Buyer"],
  ] as SignOff[]) {
    await signDirect(escrow, parties, caseId, s);
  }
  const signOffCompletingStage = await gasOf(signDirect(escrow, parties, caseId, ["appraisal", "Bank"]));

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
  const usPairs: SignOff[] = [
    ["closing-disclosure", "Bank"],
    ["closing-disclosure", "Buyer"],
    ["consummation", "Buyer"],
    ["consummation", "Seller"],
    ["consummation", "Lawyer"],
    ["funding", "Bank"],
    ["funding", "Lawyer"],
    ["recording", "Lawyer"],
  ];
  const usItems = await Promise.all(usPairs.map(([id, r]) => signedItem(escrow, parties, usBatchCase, stage(id), r)));
  const usPurchaseBatchOf8 = await gasOf(escrow.connect(parties.relayer).signOffWithSignatures(usItems));

  // The final sign-off of the releasing stage (funding), on a case walked up to it.
  const releaseCase = await openCase(escrow, parties, templateId);
  await deposits(escrow, parties, releaseCase);
  for (const phase of US_PHASES.slice(0, 5)) {
    if (phase.waitBefore) await time.increase(phase.waitBefore);
    if (phase.advance) await escrow.advance(releaseCase);
    for (const signOff of phase.signOffs) {
      if (signOff[0] === "funding" && signOff[1] === "Lawyer") continue;
      await signDirect(escrow, parties, releaseCase, signOff);
    }
  }
  const finalSignOffWithRelease = await gasOf(signDirect(escrow, parties, releaseCase, ["funding", "Lawyer"]));
  if (!(await escrow.caseOf(releaseCase)).released) throw new Error("the final sign-off did not release the escrow");

  // Amendments (issue 13): the closing's long-stop moved a week later, which the bank proposes and the buyer and
  // the seller consent to (us-purchase's deadline rule). The buyer's consent applies nothing; the seller's is
  // the last, and moves the deadline.
  const amendedCase = await openCase(escrow, parties, templateId);
  const funding = stage("funding");
  const longStop = Number((await escrow.stageOf(amendedCase, funding)).deadline);
  const expiresAt = (await time.latest()) + 7 * DAY;
  const move = proposal({
    kind: AmendmentKind.Deadline,
    expiresAt,
    stage: funding,
    longStop: true,
    deadline: longStop + 7 * DAY,
  });
  const proposeAmendment = await gasOf(escrow.connect(parties.bank).proposeAmendment(amendedCase, Role.Bank, move));
  const consentApplyingNothing = await gasOf(
    escrow.connect(parties.buyer).consentToAmendment(amendedCase, 1, Role.Buyer),
  );
  const consentMovingADeadline = await gasOf(
    escrow.connect(parties.seller).consentToAmendment(amendedCase, 1, Role.Seller),
  );
  if ((await escrow.stageOf(amendedCase, funding)).deadline !== BigInt(longStop + 7 * DAY))
    throw new Error("the applying consent did not move the deadline");
  // The same two consents relayed, each alone in its batch, on a second case.
  const relayedCase = await openCase(escrow, parties, templateId);
  await escrow.connect(parties.bank).proposeAmendment(relayedCase, Role.Bank, move);
  const relayedConsent = async (signer: Parties["buyer"], role: number) => {
    const message = { caseId: relayedCase, amendment: 1, kind: AmendmentKind.Deadline, version: 0, role, epoch: 0 };
    const signature = await signConsent(escrow, signer, message);
    return gasOf(
      escrow
        .connect(parties.relayer)
        .consentToAmendmentsWithSignatures([{ caseId: relayedCase, amendment: 1, role, epoch: 0, signature }]),
    );
  };
  const relayedConsentApplyingNothing = await relayedConsent(parties.buyer, Role.Buyer);
  const relayedConsentMovingADeadline = await relayedConsent(parties.seller, Role.Seller);

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
    proposeAmendment,
    consentApplyingNothing,
    consentMovingADeadline,
    relayedConsentApplyingNothing,
    relayedConsentMovingADeadline,
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
    ["propose an amendment (a deadline move)", String(proposeAmendment), ""],
    ["consent, applies nothing", String(consentApplyingNothing), "37,000"],
    ["consent, applies a deadline move", String(consentMovingADeadline), "50,000"],
    ["  ... relayed alone: applies nothing", String(relayedConsentApplyingNothing), ""],
    ["  ... relayed alone: applies a deadline move", String(relayedConsentMovingADeadline), ""],
    [`US purchase, direct (${usPurchaseDirect.transactions} tx)`, String(usPurchaseDirect.gas), ""],
    [`US purchase, batched (${usPurchaseBatched.transactions} tx)`, String(usPurchaseBatched.gas), "650,000"],
    ...(["openCase", "deposits", "signOffs", "advance", "payout"] as const).map((kind): [string, string, string] => [
      `  ${kind} (direct / batched)`,
      `${usPurchaseDirect.breakdown[kind]} / ${usPurchaseBatched.breakdown[kind]}`,
      "",
    ]),
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const gasWidth = Math.max(9, ...rows.map(([, gas]) => gas.length));
  console.log(`${"what".padEnd(width)}  ${"gas".padStart(gasWidth)}  ${"goal".padStart(9)}`);
  for (const [name, gas, goal] of rows)
    console.log(`${name.padEnd(width)}  ${gas.padStart(gasWidth)}  ${goal.padStart(9)}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
