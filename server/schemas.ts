/**
 * One zod schema per request part (params, query, body) and, for the OpenAPI document, one per answer. The
 * request schemas are the only gate: what passes them is what the handlers see (typed by `z.output`), and
 * what fails them is a 400 with the field errors. The answer schemas describe what the engine returns; they
 * are documentation and are not checked at run time.
 */
import { z } from "zod";
import { AmendmentProgress, CaseProgress, CaseProgressStatus } from "../engine/projection/progress-schema";
import { NextDeadline, WaitingForItem } from "../engine/projection/worklist-facts";
import { SubmissionView } from "../engine/relayer/submission-schema";
import { contractSignatureForm } from "../engine/runtime/signature-form";
import { Address, Amount, CaseParties, CaseTerms, EscrowAmount, PartyAddress, RoleName } from "../engine/value-schemas";

// ------------------------------------------------------------------------------------------ building blocks

export { RoleName, Address, Amount };
export const CaseId = z
  .string()
  .regex(/^\d{1,78}$/, "must be a case id: a decimal integer")
  .describe("A case id (decimal).");
export const StageIdParam = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be a stage id such as "valuation"')
  .describe("A stage's id in its workflow.");
export const Hash32 = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, "must be a 32-byte hex string")
  .describe("32 bytes, 0x-prefixed hex.");
export const Signature = z
  .string()
  .regex(
    /^0x([0-9a-fA-F]{128}|[0-9a-fA-F]{130})$/,
    "must be a 65-byte signature (r, s, v) or a 64-byte EIP-2098 compact one, 0x-prefixed hex",
  )
  .superRefine((signature, ctx) => {
    if (!/^0x([0-9a-fA-F]{128}|[0-9a-fA-F]{130})$/.test(signature)) return;
    try {
      contractSignatureForm(signature);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message, input: signature });
    }
  })
  .describe(
    "An EIP-712 signature by the party's own wallet, 0x-prefixed hex: 65 bytes (r, s, v) with v 27/28 or 0/1, or 64 bytes (EIP-2098 compact). " +
      "The server relays it in the one form the contract takes (65 bytes, v 27/28); a high s (above half the curve order) is refused with 400, as the contract refuses it.",
  );

// ------------------------------------------------------------------------------------------ request parts

export const CaseParams = z.strictObject({ id: CaseId });
export const StageParams = z.strictObject({ id: CaseId, stage: StageIdParam });
export const WorkflowParams = z.strictObject({ id: z.string().min(1).max(80) });
export const SubmissionParams = z.strictObject({ id: z.string().regex(/^\d{1,15}$/, "must be a submission id") });
export const NoQuery = z.object({}).describe("No query parameters.");

export const OpenCaseBody = z.strictObject({
  workflow: z.string().min(1).max(80).describe('A workflow id ("uk-remortgage") or a template id (0x...).'),
  parties: CaseParties,
  terms: CaseTerms.describe(
    "The case's amounts. The rule: price <= deposit + loan (else 400). In a remortgage the price is the redemption amount and the deposit may be zero. Each at most 2^96 - 1.",
  ),
  asset: Address.optional().describe("The ERC-20 held in escrow; ETH when absent."),
});
export type OpenCaseBody = z.output<typeof OpenCaseBody>;

const roleChoice = RoleName.optional().describe(
  "The role to act as, needed only when the caller's address holds more than one role in the case that fits.",
);

export const SignOffBody = z.strictObject({
  evidence: Hash32.optional().describe("Hash of the document and a secret salt; zero when absent."),
  signature: Signature.optional(),
  role: roleChoice,
});
export type SignOffBody = z.output<typeof SignOffBody>;

export const RevokeBody = z.strictObject({ signature: Signature.optional(), role: roleChoice });
export type RevokeBody = z.output<typeof RevokeBody>;

export const TypedDataQuery = z.strictObject({
  purpose: z.enum(["sign-off", "revoke"]).default("sign-off").describe("What the signature will be used for."),
  evidence: Hash32.optional().describe("The evidence hash the sign-off will carry (send the same in the POST)."),
  role: roleChoice,
});

export const DepositBody = z.strictObject({
  amount: Amount.refine((a) => !/^0+$/.test(a), { message: "must be more than zero" }),
  role: z.enum(["bank", "buyer"]).optional().describe("Needed only when the caller is both the bank and the buyer."),
});
export type DepositBody = z.output<typeof DepositBody>;

export const EmptyBody = z.strictObject({}).describe("No fields.");

// ----------------------------------------------------------------------------- amendments

export const AmendmentParams = z.strictObject({
  id: CaseId,
  n: z
    .string()
    .regex(/^[1-9]\d{0,4}$/, "must be an amendment's number in the case: 1 to 65535")
    .transform(Number)
    .refine((n) => n <= 0xffff, { message: "must be an amendment's number in the case: 1 to 65535" })
    .describe("The amendment's number in the case, from 1."),
});

/** An instant with its zone, in whole seconds (the contract keeps seconds). */
const Instant = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.0+)?(Z|[+-]\d{2}:\d{2})$/,
    "must be an ISO 8601 instant in whole seconds with its zone, e.g. 2027-03-14T17:00:00Z",
  )
  .refine((t) => !Number.isNaN(Date.parse(t)), { message: "must be a real moment" });
/** A local date (YYYY-MM-DD) that exists. */
function isLocalDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const day = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(day.getTime()) && day.toISOString().startsWith(text);
}

const proposalCommon = {
  role: roleChoice,
  expiresAt: Instant.optional().describe(
    "The last moment at which a consent counts; 7 days from the chain's now when absent. A proposal not agreed by then lapses, leaving the case as it was.",
  ),
};

export const ProposeAmendmentBody = z
  .discriminatedUnion("kind", [
    z.strictObject({
      kind: z.literal("deadline"),
      stage: StageIdParam.describe("The stage whose deadline moves."),
      deadline: z
        .enum(["own", "longStop"])
        .default("own")
        .describe("Which of its deadlines: its own (completion by a date), or the case's long-stop on it."),
      to: z
        .string()
        .refine((t) => isLocalDate(t) || Instant.safeParse(t).success, {
          message: "must be a date (YYYY-MM-DD) or an ISO 8601 instant in whole seconds with its zone",
        })
        .describe(
          "The new deadline: a date (YYYY-MM-DD), meaning by the end of that day in the case's time zone (00:00 local of the next day), or an exact instant. Later or earlier.",
        ),
      ...proposalCommon,
    }),
    z
      .strictObject({
        kind: z.literal("terms"),
        price: EscrowAmount,
        deposit: EscrowAmount.describe("The buyer's share."),
        loan: EscrowAmount.describe("The bank's share."),
        ...proposalCommon,
      })
      .refine((t) => BigInt(t.price) <= BigInt(t.deposit) + BigInt(t.loan), {
        message: "the price must be at most the deposit plus the loan",
        path: ["price"],
      }),
    z.strictObject({
      kind: z.literal("party"),
      party: RoleName.describe("The role whose address changes."),
      account: PartyAddress.describe("The new address (a key rotation, a new firm)."),
      ...proposalCommon,
    }),
  ])
  .describe(
    "A proposed amendment. Who must consent is the template's rule for its kind, plus whoever it moves money away from or replaces; the proposer's own consent counts at once.",
  );
export type ProposeAmendmentBody = z.output<typeof ProposeAmendmentBody>;

export const ConsentBody = z.strictObject({ signature: Signature.optional(), role: roleChoice });
export const WithdrawConsentBody = z.strictObject({ role: roleChoice });
export const ConsentTypedDataQuery = z.strictObject({ role: roleChoice });

// ----------------------------------------------------------------------------- the worklist (GET /cases)

/** Whether the instant's date and time exist (Date.parse takes 30 February for 2 March). */
function isRealMoment(text: string): boolean {
  // Refinements run after a failed format check too: a text that is not an instant at all is simply not one.
  const parts = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(text);
  if (!parts) return false;
  const [, y, mo, d, h, mi, sec] = parts.map(Number);
  const day = new Date(Date.UTC(y, mo - 1, d));
  return (
    day.getUTCMonth() === mo - 1 &&
    day.getUTCDate() === d &&
    h < 24 &&
    mi < 60 &&
    (Number.isNaN(sec) || sec < 60) &&
    !Number.isNaN(Date.parse(text))
  );
}

/** An instant in a query string; a "+" of the zone that arrived as a space (an unencoded "+") is read as "+". */
const QueryInstant = z
  .string()
  .transform((t) => t.replace(/ (\d{2}:\d{2})$/, "+$1"))
  .pipe(
    z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/, {
        message: "must be an ISO 8601 instant with its zone, e.g. 2027-03-14T17:00:00Z",
        abort: true,
      })
      .refine(isRealMoment, { message: "must be a real moment" })
      .transform((t) => Date.parse(t)),
  );

/** One value or several, repeated (`status=open&status=expired`) or comma-separated (`status=open,expired`). */
const OneOrMore = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v) => [...new Set((Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")))].sort())
    .pipe(z.array(item).min(1));

/** A single query value: a repeated parameter is an error, not a silent pick. */
const Single = <T extends z.ZodType<unknown, string>>(item: T) => z.string({ error: "must be given once" }).pipe(item);

export const WORKLIST_MAX_LIMIT = 200;

export const WorklistQuery = z
  .strictObject({
    awaiting: Single(z.enum(["me"]))
      .optional()
      .describe(
        "`me`: only cases where the caller's sign-off (of a stage that takes it now and is not locked) or consent (to an open amendment) is awaited. Not for the operator (400): it is a party to none.",
      ),
    role: Single(RoleName)
      .optional()
      .describe("Only cases where the caller holds this role. Not for the operator (400)."),
    status: OneOrMore(CaseProgressStatus)
      .optional()
      .describe('One or more case statuses, repeated or comma-separated: "open,expired".'),
    workflow: Single(z.string().min(1).max(80))
      .optional()
      .describe('Only cases of this workflow: its id ("uk-remortgage") or a template id (0x...).'),
    deadlineBefore: Single(QueryInstant)
      .optional()
      .describe(
        'Only cases whose next legal deadline is before this instant (ISO 8601 with its zone; encode a "+" as %2B).',
      ),
    deadlineWithinBusinessDays: Single(
      z
        .string()
        .regex(/^\d{1,2}$/, "must be a whole number of business days from 1 to 30")
        .transform(Number)
        .refine((n) => n >= 1 && n <= 30, { message: "must be a whole number of business days from 1 to 30" }),
    )
      .optional()
      .describe(
        "Only cases at risk: their next legal deadline comes before the start of the Nth business day from now, counted in each case's own jurisdiction calendar (its holidays skipped).",
      ),
    openedAfter: Single(QueryInstant).optional().describe("Only cases opened after this instant."),
    openedBefore: Single(QueryInstant).optional().describe("Only cases opened before this instant."),
    limit: Single(
      z
        .string()
        .regex(/^\d{1,3}$/, `must be a whole number from 1 to ${WORKLIST_MAX_LIMIT}`)
        .transform(Number)
        .refine((n) => n >= 1 && n <= WORKLIST_MAX_LIMIT, {
          message: `must be a whole number from 1 to ${WORKLIST_MAX_LIMIT}`,
        }),
    )
      .optional()
      .describe(`How many cases a page holds: 1 to ${WORKLIST_MAX_LIMIT}, default 50.`),
    cursor: Single(z.string().min(1).max(400))
      .optional()
      .describe("The previous page's `nextCursor`, with the same filters."),
  })
  .describe("The worklist's filters and paging; all optional.");
export type WorklistQuery = z.output<typeof WorklistQuery>;

export const ClockBody = z.strictObject({
  seconds: z
    .number()
    .int()
    .positive()
    .max(10 * 365 * 86_400)
    .describe("How far to move the embedded chain's clock forward."),
});

export const IdempotencyKeyHeader = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, "must be 1 to 255 visible ASCII characters")
  .describe("The same key with the same body gives the same answer and one effect.");

// ------------------------------------------------------------------------------------------ answers (documentation)

export const ErrorResponse = z.object({
  error: z.object({
    code: z
      .string()
      .describe(
        "VALIDATION_FAILED, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, CONFLICT, TOO_EARLY, IDEMPOTENCY_CONFLICT, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, RATE_LIMITED, CHAIN_UNAVAILABLE, RELAYER_OUT_OF_FUNDS, TIMEOUT, ...",
      ),
    message: z.string(),
    details: z
      .unknown()
      .optional()
      .describe(
        "For VALIDATION_FAILED the field errors; for TOO_EARLY `availableAt` (the stage's legal moment, ISO time, or null while it cannot be known yet) and `waitsFor` (plain words, the same as the stage's `waitsFor`).",
      ),
  }),
});

export const HealthReason = z
  .object({
    source: z
      .enum(["relayer", "projection", "chain"])
      .describe(
        "relayer: a sender cannot pay, or its last RPC call failed; projection: the last poll of the chain failed; chain: it did not answer",
      ),
    code: z.string().describe("RELAYER_OUT_OF_FUNDS, CHAIN_UNAVAILABLE, ..."),
    message: z.string(),
    address: z.string().optional().describe("RELAYER_OUT_OF_FUNDS: the key that cannot pay"),
    balance: z.string().optional().describe("RELAYER_OUT_OF_FUNDS: what it holds (wei)"),
    needed: z
      .string()
      .optional()
      .describe("RELAYER_OUT_OF_FUNDS: what its next transaction needs (wei): gas x max fee, plus the value"),
  })
  .describe("One reason the server is degraded.");
export type HealthReason = z.infer<typeof HealthReason>;

export const HealthResponse = z.object({
  status: z.enum(["ok", "degraded"]).describe("`degraded` exactly when `reasons` is not empty"),
  chainId: z.string().nullable(),
  blockNumber: z.number().int().nullable(),
  contract: z.string(),
  checkpoint: z.number().int().describe("The latest block the engine has read."),
  reasons: z.array(HealthReason),
  runtime: z
    .object({
      actors: z.number().int().describe("Case actors running: one per open case."),
      timers: z.number().int().describe("Wake-ups set on the engine's chain scheduler."),
      restored: z.number().int().describe("Actors restored from their persisted snapshot at start."),
      rebuilt: z
        .number()
        .int()
        .describe(
          "Actors rebuilt from the chain: no snapshot, one of another machine version, or one that disagreed with the chain.",
        ),
      resynced: z
        .number()
        .int()
        .describe(
          "Times an actor's model came out different from the projection's and took it (expected 0 but after a reorganisation).",
        ),
    })
    .describe("The engine's durable case actors."),
});

const StageOfWorkflow = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string().nullable(),
  roles: z.array(RoleName).describe("The roles that must each sign off."),
  prerequisites: z.array(z.string()),
  waitingPeriod: z.string().nullable().describe('As the definition writes it, e.g. "3 business days".'),
  deadline: z.object({ within: z.string(), from: z.string() }).nullable(),
  action: z.enum(["none", "require-funding", "release"]),
  binding: z.boolean(),
});

export const WorkflowResponse = z.object({
  id: z.string(),
  version: z.number().int(),
  jurisdiction: z.string(),
  title: z.string(),
  description: z.string().nullable(),
  roleTitles: z.record(RoleName, z.string()),
  templateId: z.string(),
  registered: z.boolean().describe("Whether the template is registered on the chain the server follows."),
  stages: z.array(StageOfWorkflow),
  amendments: z
    .object({
      deadline: z
        .array(RoleName)
        .describe("Whose consent a deadline move needs (the buyer's too for one earlier, whatever this says)."),
      terms: z
        .array(RoleName)
        .describe("Whose consent a change of price, deposit and loan needs (also whoever it moves money away from)."),
      party: z.array(RoleName).describe("Whose consent a party's replacement needs (also the replaced party's)."),
      reopenedByTerms: z
        .array(z.string())
        .describe(
          "The stages a change of terms re-opens for new sign-offs, if they have completed and no stage after them has.",
        ),
      basis: z.string().nullable().describe("The legal basis of these rules, as the workflow definition states it."),
    })
    .describe("The workflow's rules for amendments by consent."),
});
export const WorkflowListResponse = z.object({ workflows: z.array(WorkflowResponse) });

export const CaseProgressResponse = CaseProgress;
export const WorklistItem = CaseProgress.extend({
  waitingFor: z
    .array(WaitingForItem)
    .describe(
      "What the case waits for now and from whom: each stage's missing sign-offs, each open amendment's missing consents.",
    ),
  nextDeadline: NextDeadline,
}).describe("A case's whole progress (as GET /cases/{id}), with what it waits for and its next legal deadline.");
export const CaseListResponse = z.object({
  cases: z.array(WorklistItem).describe("By next legal deadline, soonest first (cases with none last), then by id."),
  nextCursor: z
    .string()
    .nullable()
    .describe("Pass as `cursor` (with the same filters) for the next page; null on the last page."),
});

/** GET /cases/:id and its event stream: the progress, with its parties by the names the server knows them by. */
export const CaseViewResponse = CaseProgress.extend({
  names: z
    .partialRecord(RoleName, z.string())
    .describe(
      "Role -> the display name of the principal holding that role's address (the oldest active one, of that role first); a role no principal holds is left out.",
    ),
});

export const DisplayResponse = z.object({
  currency: z
    .object({
      code: z.string().describe("The operator's display currency (DISPLAY_CURRENCY), such as GBP."),
      perEth: z.string().describe("What one whole ETH is worth in it (DISPLAY_RATE), a decimal string."),
      indicative: z.literal(true).describe("Set by the operator, not a market price: indicative only."),
    })
    .nullable()
    .describe("null when the operator set none: amounts in the asset's unit alone. Token amounts are not converted."),
});

export const TypicalDurationsResponse = z.object({
  workflow: z.string(),
  summary: z.string().describe("The workflow's typical length, in words, with its source."),
  stages: z.record(
    z.string(),
    z.object({
      days: z.number().describe("Calendar days from the moment the stage can start to its completion."),
      source: z.string().describe("Where the figure comes from."),
    }),
  ),
});

export const HistoryResponse = z.object({
  caseId: z.string(),
  events: z.array(
    z.object({
      event: z.string(),
      args: z.record(z.string(), z.unknown()),
      block: z.number().int(),
      blockHash: z.string(),
      logIndex: z.number().int(),
      time: z.string(),
      tx: z.string(),
    }),
  ),
});

export const TypedDataResponse = z.object({
  domain: z.object({ name: z.string(), version: z.string(), chainId: z.string(), verifyingContract: z.string() }),
  types: z.record(z.string(), z.array(z.object({ name: z.string(), type: z.string() }))),
  primaryType: z.enum(["SignOff", "RevokeSignOff", "Consent"]),
  message: z.record(z.string(), z.union([z.string(), z.number()])),
});

export const SubmissionResponse = SubmissionView;

export const AmendmentResponse = AmendmentProgress;
export const AmendmentListResponse = z.object({
  caseId: z.string(),
  termsVersion: CaseProgress.shape.termsVersion,
  amendments: z.array(AmendmentProgress),
});

export const MeResponse = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(["operator", "bank", "lawyer", "buyer", "seller"]),
  address: z.string(),
});

export const ClockResponse = z.object({ now: z.string() });
