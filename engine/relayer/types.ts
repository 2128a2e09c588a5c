/**
 * What the relayer is asked to do (an intent), what it keeps about it (a submission), and its transactions.
 * Intents and submissions are declared in zod (submission-schema.ts), where the server takes the API's view
 * of a submission from; these are the relayer's own records beside them.
 */
import type { SubmissionError, TransactionStatus } from "./submission-schema";

export type {
  CallIntent,
  Intent,
  RelayedSignOffIntent,
  SignOffMessage,
  Submission,
  SubmissionError,
  SubmissionStatus,
  TransactionStatus,
} from "./submission-schema";

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
