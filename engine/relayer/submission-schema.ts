/**
 * What the relayer is asked to do (an intent), what it keeps about it (a submission) and what the API shows of
 * a submission: declared once, as zod schemas, so the engine's types (`z.infer`) and the server's OpenAPI
 * document (the descriptions below) are the same shape. The outbox builds these records from its rows; they
 * are not parsed at run time.
 */
import { z } from "zod";
import { IsoTime } from "../value-schemas";

export const SubmissionStatus = z
  .enum(["pending", "sent", "mined", "confirmed", "failed", "replaced"])
  .describe(
    "pending: in the outbox, no nonce yet. sent: a nonce and a signed transaction are in the outbox (and were handed to the node, or will be again). " +
      "mined: in a block, fewer confirmations than required. confirmed: done (including a sign-off that someone else made first). " +
      "failed: will not happen (a revert, a skipped sign-off, an unusable intent). replaced: a transaction superseded by another for the same nonce (a fee bump), " +
      "or whose nonce something else used; a submission never ends in it, it returns to `pending` or follows the new transaction.",
  );
export type SubmissionStatus = z.infer<typeof SubmissionStatus>;

/** A signed transaction's status: a submission's, less `pending` (a transaction exists once it is signed). */
export const TransactionStatus = SubmissionStatus.exclude(["pending"]);
export type TransactionStatus = z.infer<typeof TransactionStatus>;

/** The EIP-712 `SignOff` message a party signed, JSON-safe (the case id as a decimal string). */
export const SignOffMessage = z.object({
  caseId: z.string(),
  stage: z.number().int(),
  role: z.number().int(),
  epoch: z.number().int(),
  evidence: z.string(),
});
export type SignOffMessage = z.infer<typeof SignOffMessage>;

/** A party's signed sign-off, for the relayer's own key to send in a `signOffWithSignatures` batch. */
export const RelayedSignOffIntent = z.object({
  kind: z.literal("relayed-sign-off"),
  message: SignOffMessage,
  signature: z.string(),
});
export type RelayedSignOffIntent = z.infer<typeof RelayedSignOffIntent>;

/** A call of the escrow from one of the relayer's keys: the relayer's own, or a party's managed key. */
export const CallIntent = z.object({
  kind: z.literal("call"),
  from: z.string().describe("The sending address; its wallet must be one the relayer was given."),
  method: z.string(),
  args: z.array(z.unknown()).describe("JSON-safe arguments: bigints as decimal strings."),
  value: z.string().optional().describe("Wei to send, as a decimal string."),
});
export type CallIntent = z.infer<typeof CallIntent>;

export const Intent = z.discriminatedUnion("kind", [RelayedSignOffIntent, CallIntent]);
export type Intent = z.infer<typeof Intent>;

export const SubmissionError = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type SubmissionError = z.infer<typeof SubmissionError>;

export const Submission = z.object({
  id: z.number().int(),
  idempotencyKey: z.string(),
  kind: z.union([RelayedSignOffIntent.shape.kind, CallIntent.shape.kind]),
  sender: z.string(),
  payload: Intent.describe("The intent as recorded, canonical JSON parsed back."),
  status: SubmissionStatus,
  nonce: z.number().int().nullable(),
  rawTx: z
    .string()
    .nullable()
    .describe("The signed transaction that currently carries this submission, persisted before it is broadcast."),
  txHash: z.string().nullable(),
  batchIndex: z.number().int().nullable().describe("Its place in a `signOffWithSignatures` batch."),
  blockNumber: z.number().int().nullable(),
  attempts: z.number().int().describe("Transactions signed or broadcast for it (first send, re-sends, bumps)."),
  error: SubmissionError.nullable(),
  note: z
    .string()
    .nullable()
    .describe("For example that the sign-off was already made by someone else, or why it waits."),
  caseId: z
    .string()
    .nullable()
    .describe(
      "The case it is about (decimal): a sign-off's or a case call's, an opening's once the chain has named the case it opened; null otherwise.",
    ),
  /** Milliseconds since the epoch. */
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type Submission = z.infer<typeof Submission>;

/** What the API shows of a submission: its state, not its signed transaction or payload. */
export const SubmissionView = z.object({
  id: Submission.shape.id,
  kind: z
    .string()
    .describe(
      '"sign-off" for a sign-off, else the escrow function it calls ("revokeSignOff", "deposit", "withdraw", "cancel", ...).',
    ),
  status: Submission.shape.status,
  txHash: Submission.shape.txHash,
  blockNumber: Submission.shape.blockNumber,
  error: SubmissionError.pick({ code: true, message: true }).nullable(),
  note: Submission.shape.note,
  createdAt: IsoTime,
  updatedAt: IsoTime,
});
export type SubmissionView = z.infer<typeof SubmissionView>;

export function submissionView(s: Submission): SubmissionView {
  return {
    id: s.id,
    kind: s.payload.kind === "call" ? s.payload.method : "sign-off",
    status: s.status,
    txHash: s.txHash,
    blockNumber: s.blockNumber,
    error: s.error ? { code: s.error.code, message: s.error.message } : null,
    note: s.note,
    createdAt: new Date(s.createdAt).toISOString(),
    updatedAt: new Date(s.updatedAt).toISOString(),
  };
}
