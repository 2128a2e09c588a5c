/** The engine's public surface: `createEngine(config)` and the types the HTTP server uses. */
export { createEngine, type Engine, type EngineHealth } from "./engine";
export { EngineConfig, parseEngineConfig, type EngineConfigInput } from "./config";
export {
  EngineError,
  ConfigError,
  ContractRevertError,
  ChainUnavailableError,
  ENGINE_ERROR_CODES,
  isEngineErrorCode,
  type EngineErrorCode,
} from "./errors";
export type { ApprovalRequest, RevokeRequest, DepositRequest, PartyRequest, TypedData } from "./runtime/approvals";
export type { CaseProgress, StageProgress } from "./projection/case-view";
export type { AmendmentProgress } from "./projection/progress-schema";
export { WaitingForItem, NextDeadline, worklistFactsOf, type WorklistFacts } from "./projection/worklist-facts";
export type { HistoryEntry, ProgressNotice, ProgressListener } from "./projection/projection";
export type { Submission, SubmissionStatus } from "./relayer/types";
export type { WorkflowSummary, WorkflowStageSummary } from "./workflow-summaries";
export type { OpenCaseRequest } from "./runtime/case-opener";
export type { ConsentRequest, ProposalRequest, ProposedChange } from "./runtime/amendment-requests";
