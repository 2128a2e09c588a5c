import { z } from "zod";
import { parseDuration } from "./duration";

/**
 * The shape of a workflow definition: data that a bank or a law firm reads and changes without touching code.
 * This file checks the shape only (types, names, formats); `validate.ts` checks the meaning (references,
 * cycles, the contract's limits, deadlines that could never be met).
 */

/** The four parties of a case, in the contract's `Role` order (bank = 0 ... seller = 3). */
export const ROLE_NAMES = ["bank", "lawyer", "buyer", "seller"] as const;

export const RoleName = z.enum(ROLE_NAMES, {
  error: (issue) => `unknown role ${JSON.stringify(issue.input)} (the roles are ${ROLE_NAMES.join(", ")})`,
});
export type RoleName = z.infer<typeof RoleName>;

/** The word a deadline uses to count from the case's opening; no stage may take it as its id. */
export const OPENING = "opening";

export const StageId = z
  .string()
  .regex(
    /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/,
    'a stage id is lower-case words joined by hyphens, such as "closing-disclosure"',
  )
  .refine((id) => id !== OPENING, {
    message: `"${OPENING}" is reserved for deadlines that count from the case's opening`,
  });

/** A span of time as people write it: "3 business days", "30 working days", "180 days", "2 weeks", "12 hours". */
export const DurationText = z.string().superRefine((text, ctx) => {
  const parsed = parseDuration(text);
  if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.message });
});

/** "within 14 days from completion": the stage must complete by then, or the case expires (before release). */
export const Deadline = z.strictObject({
  within: DurationText,
  /** "opening" or the id of the stage whose completion starts the count. */
  from: z.string().min(1),
});
export type Deadline = z.infer<typeof Deadline>;

/**
 * The case's long-stop: the moment, counted from the opening, after which a case that has not released its
 * funds expires and every deposit goes back, whoever stopped acting. It goes on chain as the releasing
 * stage's second deadline (`longStopSeconds`), at its ceiling like any other deadline. `basis` says which
 * practice the figure comes from and its source, for the parties and for whoever changes it.
 */
export const LongStop = z.strictObject({
  within: DurationText,
  basis: z.string().min(1),
});
export type LongStop = z.infer<typeof LongStop>;

export const STAGE_ACTIONS = ["none", "require-funding", "release"] as const;

export const Stage = z.strictObject({
  id: StageId,
  title: z.string().min(1),
  description: z.string().optional(),
  /** The roles that must each sign off; empty for a stage that time alone completes (it needs `after` and `wait`). */
  signedBy: z.array(RoleName),
  /** The stages that must complete first. */
  after: z.array(z.string()).default([]),
  /** The least time between the completion of the LAST of `after` (or the opening, if none) and this stage's. */
  wait: DurationText.optional(),
  deadline: Deadline.optional(),
  /** require-funding: also waits for the escrow to be funded; release: as that, and pays the seller (exactly one). */
  action: z.enum(STAGE_ACTIONS).default("none"),
  /** Once this stage completes, a cancelled or expired case pays the buyer's deposit to the seller (exchange). */
  binding: z.boolean().default(false),
});
export type Stage = z.infer<typeof Stage>;

/** The kinds of amendment, as `IMortgageEscrow.AmendmentKind` numbers them. */
export const AMENDMENT_KINDS = ["deadline", "terms", "party"] as const;
export type AmendmentKindName = (typeof AMENDMENT_KINDS)[number];

/** Who must consent to one kind of amendment: a set of roles, never empty. */
const ConsentRoles = z
  .array(RoleName)
  .min(1, { message: "an amendment needs someone's consent: name at least one role" });

/**
 * Who must consent to each kind of amendment, and what a change of terms re-opens: data the parties agree to,
 * like the stages. A kind left out needs every party's consent (the safe default). Whatever these say, the
 * contract also asks the consent of each party an amendment moves money away from or replaces (see
 * workflows/README.md, "Amendments"). `basis` says which rule of law or practice the figures come from.
 */
export const Amendments = z.strictObject({
  /** Moving a stage's deadline or the long-stop, later or earlier. */
  deadline: ConsentRoles.optional(),
  /** Changing price, deposit and loan (before the release). */
  terms: ConsentRoles.optional(),
  /** Replacing a party's address. */
  party: ConsentRoles.optional(),
  /**
   * The stages that a change of terms re-opens, if they have completed and no stage after them has: their
   * sign-offs are cleared, and the waiting times counted from them start again when they complete again
   * (a corrected Closing Disclosure and its new three business days, Regulation Z 1026.19(f)(2)(ii)).
   */
  reopenedByTerms: z.array(z.string()).default([]),
  basis: z.string().min(1).optional(),
});
export type Amendments = z.infer<typeof Amendments>;

export const JURISDICTIONS = ["US", "England and Wales"] as const;
export const CALENDAR_NAMES = ["us-federal", "england-and-wales"] as const;
export type CalendarName = (typeof CALENDAR_NAMES)[number];

/** The calendar each jurisdiction's legal time rules count in. */
export const CALENDAR_OF_JURISDICTION: Record<(typeof JURISDICTIONS)[number], CalendarName> = {
  US: "us-federal",
  "England and Wales": "england-and-wales",
};

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export const Workflow = z.strictObject({
  id: StageId,
  version: z.number().int().positive(),
  jurisdiction: z.enum(JURISDICTIONS),
  calendar: z.enum(CALENDAR_NAMES),
  /** An IANA zone; the calendar's own zone when absent. */
  timeZone: z.string().refine(isTimeZone, { message: "not an IANA time zone" }).optional(),
  title: z.string().min(1),
  description: z.string().optional(),
  /** What each party is called in this workflow (in a remortgage the seller is the lender being paid off). */
  roles: z.strictObject({
    bank: z.string().min(1),
    lawyer: z.string().min(1),
    buyer: z.string().min(1),
    seller: z.string().min(1),
  }),
  /** Required unless the releasing stage has a deadline counted from the opening (see `validate.ts`). */
  longStop: LongStop.optional(),
  /** Who must consent to amendments; every party, for every kind, when absent. */
  amendments: Amendments.optional(),
  stages: z.array(Stage).min(1),
});
/** A definition as parsed: defaults filled. */
export type Workflow = z.infer<typeof Workflow>;
/** A definition as written: `after`, `action` and `binding` may be left out. */
export type WorkflowInput = z.input<typeof Workflow>;
