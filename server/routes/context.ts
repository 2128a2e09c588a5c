/**
 * What the routes are given: the part of the engine the server calls (named here so the server's needs are
 * in one place, and a test may hand in less than a whole engine), the principals, the server's records.
 */
import type { Logger } from "pino";
import type { Engine } from "../../engine";
import type { PrincipalStore } from "../auth/principals";
import type { IdempotencyStore } from "../idempotency";
import type { ProgressCache } from "../progress-cache";
import type { Worklist } from "../worklist";
import type { SubmissionOwners } from "../store";

/** The engine as the server uses it; `createEngine` returns one. */
export type ServerEngine = Pick<
  Engine,
  | "health"
  | "clock"
  | "workflows"
  | "workflow"
  | "openCase"
  | "getCase"
  | "listCases"
  | "caseIds"
  | "historyOf"
  | "subscribe"
  | "approve"
  | "typedDataFor"
  | "revoke"
  | "deposit"
  | "withdraw"
  | "cancel"
  | "withdrawCancelVote"
  | "proposeAmendment"
  | "consentToAmendment"
  | "withdrawAmendmentConsent"
  | "consentTypedData"
  | "submission"
  | "increaseTime"
  | "projection"
>;

export interface RouteContext {
  engine: ServerEngine;
  principals: PrincipalStore;
  idempotency: IdempotencyStore;
  owners: SubmissionOwners;
  progress: ProgressCache;
  worklist: Worklist;
  logger: Logger;
  devClock: boolean;
  /** Writes the embedded chain's state to disk (see AppOptions.saveChain); null elsewhere. */
  saveChain: (() => Promise<void>) | null;
}
