/**
 * A case's progress, as `GET /cases/:id` returns it and its event stream sends it: declared once, as zod
 * schemas, so the engine's type (`z.infer`) and the server's OpenAPI document (the descriptions below) are
 * the same shape. `progressOf` (case-view.ts) builds it; it is not parsed at run time.
 */
import { z } from "zod";
import { Address, Amount, IsoTime, RoleName } from "../value-schemas";

export const StageProgressStatus = z
  .enum(["locked", "open", "waiting", "completed", "overdue", "expired", "cancelled"])
  .describe(
    "`waiting` (with `waitingFor: \"time\"`) until the stage's legal moment (`availableAt`), even once the contract's floor has passed.",
  );
export type StageProgressStatus = z.infer<typeof StageProgressStatus>;

export const StageProgress = z.object({
  id: z.string(),
  title: z.string(),
  status: StageProgressStatus,
  waitingFor: z.enum(["time", "funds"]).nullable(),
  requires: z.array(RoleName),
  signedOff: z.array(RoleName),
  availableAt: IsoTime.nullable().describe(
    "The earliest LEGAL moment the stage can complete: the legal guard's exact instant, its waiting time counted in the jurisdiction's calendar and time zone (`timeZone`). Null while it cannot be known yet (a prerequisite is open). For a stage with no legal waiting rule, the contract's moment (`contractFloor`).",
  ),
  deadline: IsoTime.nullable().describe(
    "The LEGAL deadline: the earliest of the stage's own deadline and the long-stop, each to the end of its last (business) day in the jurisdiction's time zone (00:00 local of the day after). Null when none is running.",
  ),
  contractFloor: IsoTime.nullable().describe(
    "The on-chain floor: the earliest moment the contract lets time complete the stage (a business-day wait as its shortest possible span in seconds), as `stageOf` reports it. Null for a stage with no waiting time, or while a prerequisite is open.",
  ),
  contractCeiling: IsoTime.nullable().describe(
    "The on-chain ceiling: the last moment before the contract lets `expire` act on the stage (a business-day or calendar-day deadline as its longest possible span in seconds). Null when no deadline is running.",
  ),
  acceptsSignOffs: z
    .boolean()
    .describe(
      "Whether the API would accept a sign-off of this stage now from a role it requires that has not signed: false while the legal guard would answer TOO_EARLY, when no required role is left to sign, or once the stage or the case has ended.",
    ),
  waitsFor: z
    .string()
    .nullable()
    .describe(
      'Plain words naming what the stage waits for before it accepts sign-offs, e.g. "Closing Disclosure received by the borrower, then 3 business days"; null when the law holds nothing back. The same words as a TOO_EARLY refusal\'s `details.waitsFor`.',
    ),
  completedAt: IsoTime.nullable(),
  tx: z.string().nullable(),
});
export type StageProgress = z.infer<typeof StageProgress>;

const Shares = z.object({ price: Amount, deposit: Amount, loan: Amount });

export const AmendmentChangeProgress = z
  .discriminatedUnion("kind", [
    z.object({
      kind: z.literal("deadline"),
      stage: z.string().describe("The stage whose deadline moves."),
      deadline: z
        .enum(["own", "longStop"])
        .describe("Which of the stage's deadlines: its own, or the case's long-stop on it."),
      to: IsoTime.describe(
        "The agreed moment the deadline moves to, exactly (a deadline given as a date is the end of that day in the case's time zone).",
      ),
    }),
    z.object({
      kind: z.literal("terms"),
      to: Shares.describe("The new price, deposit (the buyer's share) and loan (the bank's share)."),
      from: Shares.describe("The terms when it was proposed."),
    }),
    z.object({
      kind: z.literal("party"),
      role: RoleName,
      to: Address.describe("The new address that takes the role."),
      from: Address.describe("The address that held the role when it was proposed."),
    }),
  ])
  .describe("What the amendment changes.");

export const AmendmentStatus = z
  .enum(["open", "applied", "expired", "superseded", "closed"])
  .describe(
    "open: collecting consents. applied: its last required consent came and the terms changed. expired: past `expiresAt` before it applied. " +
      "superseded: another amendment applied first, so it amends terms that are no longer the case's. closed: the case ended before it applied.",
  );

export const AmendmentProgress = z.object({
  number: z.number().int().describe("Its number in the case, from 1 (the path's `{n}`)."),
  kind: z.enum(["deadline", "terms", "party"]),
  status: AmendmentStatus,
  change: AmendmentChangeProgress,
  proposedBy: RoleName,
  proposedAt: IsoTime,
  expiresAt: IsoTime.describe("The last moment at which a consent counts."),
  version: z.number().int().describe("The terms version it amends; it makes version + 1 when it applies."),
  requires: z
    .array(RoleName)
    .describe(
      "Whose consent it needs: the template's rule for its kind, plus whoever it moves money away from or replaces (the contract's rule).",
    ),
  consented: z.array(RoleName),
  awaiting: z.array(RoleName).describe("Required consents not given yet (empty once it is not open)."),
  appliedAt: IsoTime.nullable(),
  tx: z.string().describe("The transaction that proposed it."),
  appliedTx: z.string().nullable(),
  replacedTermsHash: z
    .string()
    .nullable()
    .describe(
      "Once applied: the hash of the terms version it replaced, a link in the chain of versions anyone can follow from the events.",
    ),
});
export type AmendmentProgress = z.infer<typeof AmendmentProgress>;

/**
 * "opening": the case was opened (and answered) but the chain lost its opening (a reorganisation, a node
 * restored from an older save); the engine is sending it again, and `opening` says so. The others are the
 * contract's (`CaseStatus` in workflows/case-rules.ts).
 */
export const CaseProgressStatus = z.enum(["open", "completed", "expired", "cancelled", "opening"]);
export type CaseProgressStatus = z.infer<typeof CaseProgressStatus>;

export const CaseProgress = z.object({
  id: z.string(),
  workflow: z.object({
    id: z.string().nullable(),
    version: z.number().nullable(),
    title: z.string().nullable(),
    templateId: z.string(),
  }),
  timeZone: z
    .string()
    .describe(
      'The jurisdiction\'s IANA time zone ("America/New_York", "Europe/London"), whose local dates the legal moments count in; "UTC" for a template that no workflow here compiles to.',
    ),
  status: CaseProgressStatus,
  opening: z
    .object({ submissionId: z.number().int(), note: z.string() })
    .optional()
    .describe(
      'Only with status "opening": the chain lost the case\'s opening (a reorganisation, a node restored from an older save) and the engine is sending it again',
    ),
  openedAt: IsoTime.describe("When the case was opened: its opening block's time."),
  parties: z.object({ bank: z.string(), lawyer: z.string(), buyer: z.string(), seller: z.string() }),
  terms: z.object({ price: Amount, deposit: Amount, loan: Amount }),
  /** The ERC-20 held in escrow; the zero address for ETH. */
  asset: z.string(),
  escrow: z.object({
    paidByBank: Amount,
    paidByBuyer: Amount,
    funded: z.boolean(),
    released: z.boolean(),
    credits: z.record(z.string(), Amount),
  }),
  cancelVotes: z
    .array(RoleName)
    .describe(
      "The roles whose vote to cancel stands (POST and DELETE /cases/{id}/cancellation); the last of the four cancels the case.",
    ),
  progress: z.object({ completed: z.number().int(), total: z.number().int() }),
  stages: z.array(StageProgress),
  termsVersion: z.number().int().describe("The terms version: 0 as opened, raised by each amendment that applies."),
  amendments: z.array(AmendmentProgress).describe("Every amendment proposed, in order."),
  updatedAt: z.object({ block: z.number().int(), time: z.string() }),
});
export type CaseProgress = z.infer<typeof CaseProgress>;
