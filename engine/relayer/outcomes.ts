/**
 * What a mined transaction means for each submission it carried. Business code sees outcomes, never a
 * receipt: a batch's `SignOffSkipped` events name the items that did not apply, and why.
 */
/** What is read of a receipt's log. */
export interface ReceiptLog {
  address: string;
  topics: readonly string[];
  data: string;
}
import { CONSENT_SKIP_REASONS } from "../../workflows/case-amendments";
import { escrowInterface, parseEscrowLog } from "../chain/escrow";
import { ContractRevertError, type EngineError } from "../errors";
import type { Outcome, Submission, SubmissionError } from "./types";

/** `IMortgageEscrow.SkipReason`, by its number. */
const SKIP_REASONS = ["AlreadySignedOff", "StaleEpoch", "CaseNotOpen", "InvalidSignature", "RoleNotRequired"] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/** The role names by `IMortgageEscrow.Role`. */
const ROLES = ["bank", "lawyer", "buyer", "seller"] as const;

/** ethers hashes an event's signature again at every `topicHash`: once here. */
const SIGN_OFF_SKIPPED_TOPIC = escrowInterface.getEvent("SignOffSkipped")!.topicHash;
const CASE_OPENED_TOPIC = escrowInterface.getEvent("CaseOpened")!.topicHash;
const CONSENT_SKIPPED_TOPIC = escrowInterface.getEvent("AmendmentConsentSkipped")!.topicHash;

export const DONE_BY_SOMEONE_ELSE = "already signed off by someone else: nothing left to do";

export function errorOf(error: EngineError): SubmissionError {
  return { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
}

/** A sign-off's revert that means the sign-off is there already, so the submission is done. */
export function isAlreadySignedOff(error: EngineError): boolean {
  return error instanceof ContractRevertError && error.errorName === "MortgageEscrowAlreadySignedOff";
}

/** The outcome of each submission in a successful transaction, from its `SignOffSkipped` events. */
export function outcomesOfSuccess(
  escrowAddress: string,
  logs: readonly ReceiptLog[],
  carried: readonly Submission[],
): Map<number, Outcome> {
  const skipped = new Map<number, (typeof SKIP_REASONS)[number]>();
  const escrow = escrowAddress.toLowerCase();
  for (const log of logs) {
    if (log.topics[0] !== SIGN_OFF_SKIPPED_TOPIC || log.address.toLowerCase() !== escrow) continue;
    const parsed = parseEscrowLog(log);
    if (!parsed) continue;
    skipped.set(Number(parsed.args.index), SKIP_REASONS[Number(parsed.args.reason)] ?? "CaseNotOpen");
  }
  const outcomes = new Map<number, Outcome>();
  const opened = openedCaseIds(escrowAddress, logs, carried);
  for (const s of carried) {
    const openedCaseId = opened.get(s.id);
    if (openedCaseId !== undefined) {
      outcomes.set(s.id, { status: "confirmed", openedCaseId });
      continue;
    }
    if (s.payload.kind === "call" && s.payload.method === "consentToAmendmentsWithSignatures") {
      outcomes.set(s.id, consentOutcome(escrowAddress, logs));
      continue;
    }
    const reason = s.batchIndex === null ? undefined : skipped.get(s.batchIndex);
    if (reason === undefined) outcomes.set(s.id, { status: "confirmed" });
    else if (reason === "AlreadySignedOff") outcomes.set(s.id, { status: "confirmed", note: DONE_BY_SOMEONE_ELSE });
    else outcomes.set(s.id, { status: "failed", error: skipError(reason, s) });
  }
  return outcomes;
}

/**
 * Why a relayed sign-off was skipped, as a submission's error. `party`: the address that holds the role in the
 * case, to name whose signature did not verify (the relayer reads it from the chain when it can).
 */
export function skipError(
  reason: Exclude<SkipReason, "AlreadySignedOff">,
  s: Submission,
  party?: string,
): SubmissionError {
  const m = s.payload.kind === "relayed-sign-off" ? s.payload.message : null;
  const role = m ? (ROLES[m.role] ?? `role ${m.role}`) : "signer";
  const where = m ? `stage ${m.stage} of case ${m.caseId}` : "the stage";
  const details = {
    reason,
    index: s.batchIndex,
    ...(m ? { caseId: m.caseId, stage: m.stage, role } : {}),
    ...(party ? { party } : {}),
  };
  switch (reason) {
    case "StaleEpoch":
      return {
        code: "SIGN_OFF_STALE_EPOCH",
        message: "the signer revoked after signing: this signature is void, sign again",
        details,
      };
    case "CaseNotOpen":
      return {
        code: "SIGN_OFF_CASE_NOT_OPEN",
        message: "the case is not open (finished, or unknown): the sign-off was not applied",
        details,
      };
    case "InvalidSignature":
      return {
        code: "SIGN_OFF_INVALID_SIGNATURE",
        message:
          `the signature of the ${role}${party ? ` (${party})` : ""} for ${where} does not verify: not that address's own key's, or its ` +
          "contract wallet refused it or could not verify it (it reverted, answered no, or ran out of its gas); the other sign-offs " +
          "of the batch were applied; sign again with the party's key or wallet",
        details,
      };
    case "RoleNotRequired":
      return {
        code: "SIGN_OFF_ROLE_NOT_REQUIRED",
        message: `${where} does not require the ${role}'s sign-off (or the case has no such stage): nothing was applied`,
        details,
      };
  }
}

/**
 * A relayed consent's outcome: its transaction carries that one consent, so an `AmendmentConsentSkipped` in it
 * is its own. A consent someone else already gave counts as done, as a sign-off does.
 */
function consentOutcome(escrowAddress: string, logs: readonly ReceiptLog[]): Outcome {
  const escrow = escrowAddress.toLowerCase();
  const log = logs.find((l) => l.topics[0] === CONSENT_SKIPPED_TOPIC && l.address.toLowerCase() === escrow);
  const parsed = log && parseEscrowLog(log);
  if (!parsed) return { status: "confirmed" };
  const reason = CONSENT_SKIP_REASONS[Number(parsed.args.reason)] ?? "CaseNotOpen";
  if (reason === "AlreadyConsented") return { status: "confirmed", note: "already consented: nothing left to do" };
  const words: Record<string, string> = {
    StaleEpoch: "the signer withdrew a consent after signing: this signature is void, sign again",
    InvalidSignature: "the signature does not verify for the party (its key, or its contract wallet, refused it)",
    Superseded: "another amendment applied first: this one amends terms that are no longer the case's",
    Expired: "the amendment expired before the consent was mined",
  };
  return {
    status: "failed",
    error: {
      code: `CONSENT_${reason.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()}`,
      message: words[reason] ?? `the consent was not counted: ${reason}`,
      details: {
        reason,
        caseId: BigInt(parsed.args.caseId).toString(),
        amendment: Number(parsed.args.amendment),
        role: ROLES[Number(parsed.args.role)],
      },
    },
  };
}

/** The case each opening among `carried` opened, from the `CaseOpened` of its transaction's logs. */
export function openedCaseIds(
  escrowAddress: string,
  logs: readonly ReceiptLog[],
  carried: readonly Submission[],
): Map<number, string> {
  const opening = carried.find((s) => s.payload.kind === "call" && s.payload.method === "openCase");
  if (!opening) return new Map();
  const escrow = escrowAddress.toLowerCase();
  const log = logs.find((l) => l.topics[0] === CASE_OPENED_TOPIC && l.address.toLowerCase() === escrow);
  return log ? new Map([[opening.id, BigInt(log.topics[1]).toString()]]) : new Map();
}

/** The outcome of every submission in a transaction that reverted with `error`. */
export function outcomesOfRevert(error: EngineError, carried: readonly Submission[]): Map<number, Outcome> {
  const outcome: Outcome = isAlreadySignedOff(error)
    ? { status: "confirmed", note: DONE_BY_SOMEONE_ELSE }
    : { status: "failed", error: errorOf(error) };
  return new Map(carried.map((s) => [s.id, outcome]));
}
