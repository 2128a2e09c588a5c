/**
 * What the relayer is asked to do (an intent) and what it keeps about it (a submission).
 */

/**
 * pending: in the outbox, no nonce yet. sent: a nonce and a signed transaction are in the outbox (and were
 * handed to the node, or will be again). mined: in a block, fewer confirmations than required. confirmed: done
 * (including a sign-off that someone else made first). failed: will not happen (a revert, a skipped sign-off,
 * an unusable intent). replaced: a transaction superseded by another for the same nonce (a fee bump), or
 * whose nonce something else used; a submission never ends in it, it returns to `pending` or follows the new
 * transaction.
 */
export type SubmissionStatus = "pending" | "sent" | "mined" | "confirmed" | "failed" | "replaced";

export const SETTLED_STATUSES: readonly SubmissionStatus[] = ["confirmed", "failed"];

/** The EIP-712 `SignOff` message a party signed, JSON-safe (the case id as a decimal string). */
export interface SignOffMessage {
  caseId: string;
  stage: number;
  role: number;
  epoch: number;
  evidence: string;
}

/** A party's signed sign-off, for the relayer's own key to send in a `signOffWithSignatures` batch. */
export interface RelayedSignOffIntent {
  kind: "relayed-sign-off";
  message: SignOffMessage;
  signature: string;
}

/** A call of the escrow from one of the relayer's keys: the relayer's own, or a party's managed key. */
export interface CallIntent {
  kind: "call";
  /** The sending address; its wallet must be one the relayer was given. */
  from: string;
  method: string;
  /** JSON-safe arguments: bigints as decimal strings. */
  args: unknown[];
  /** Wei to send, as a decimal string. */
  value?: string;
}

export type Intent = RelayedSignOffIntent | CallIntent;

export interface SubmissionError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface Submission {
  id: number;
  idempotencyKey: string;
  kind: Intent["kind"];
  sender: string;
  /** The intent as recorded, canonical JSON parsed back. */
  payload: Intent;
  status: SubmissionStatus;
  nonce: number | null;
  /** The signed transaction that currently carries this submission, persisted before it is broadcast. */
  rawTx: string | null;
  txHash: string | null;
  /** Its place in a `signOffWithSignatures` batch. */
  batchIndex: number | null;
  blockNumber: number | null;
  /** Transactions signed or broadcast for it (first send, re-sends, bumps). */
  attempts: number;
  error: SubmissionError | null;
  /** For example that the sign-off was already made by someone else, or why it waits. */
  note: string | null;
  /**
   * The case it is about (decimal): a sign-off's or a case call's, an opening's once the chain has named the
   * case it opened; null otherwise.
   */
  caseId: string | null;
  createdAt: number;
  updatedAt: number;
}

export type TransactionStatus = "sent" | "mined" | "confirmed" | "failed" | "replaced";

/** One signed transaction for a (sender, nonce); a fee bump adds another for the same nonce. */
export interface SentTransaction {
  id: number;
  sender: string;
  nonce: number;
  txHash: string;
  rawTx: string;
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
  status: TransactionStatus;
  blockNumber: number | null;
  createdAt: number;
  updatedAt: number;
}

/** How a mined transaction settles one of the submissions it carried. */
export interface Outcome {
  /** `pending`: the transaction did not apply it, for a reason that passes (its case's opening is being re-sent): it is sent again. */
  status: "confirmed" | "failed" | "pending";
  note?: string;
  error?: SubmissionError;
  /** The case an opening opened, from its `CaseOpened`. */
  openedCaseId?: string;
}
