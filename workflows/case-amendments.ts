/**
 * Amendments by consent, as pure functions over a case's model: which proposals the contract takes, why it
 * would refuse a consent, and what an amendment does in the transaction of its last required consent. Each
 * mirrors `MortgageEscrow` (`proposeAmendment`, `_consentRefusal`, `_applyAmendment`), and the differential
 * test shows that they agree with it at every step.
 *
 * The model holds neither addresses nor amounts, so what needs them is the chain's word, carried by the
 * events that feed the model: who must consent (`AmendmentProposed.required`: a terms change's mandatory
 * consents depend on the old and new amounts), and whether the escrow is funded under new terms (as the
 * `FUNDED` event is the chain's word on deposits). A replaced party changes nothing the model holds.
 */
import {
  type AmendmentModel,
  type CaseModel,
  MAX_TIME,
  anchoredDeadlineOf,
  completeReadyStages,
  dependentsOf,
  fundingCandidates,
  isCompleted,
  isFullySigned,
  longStopOf,
} from "./case-rules";
import type { StageRule } from "./compile";

/** `IMortgageEscrow.ConsentSkipReason`, in its order: why a consent was skipped (or refused). */
export const CONSENT_SKIP_REASONS = [
  "CaseNotOpen",
  "UnknownAmendment",
  "AlreadyApplied",
  "Superseded",
  "Expired",
  "AlreadyReleased",
  "RoleNotRequired",
  "AlreadyConsented",
  "StaleEpoch",
  "InvalidSignature",
] as const;
export type ConsentSkipReason = (typeof CONSENT_SKIP_REASONS)[number];

/** The most deadlines of a template that amendments can move (`CaseExtraStateLib.DEADLINE_SLOTS`). */
export const MAX_DEADLINE_SLOTS = 6;
/** The most amendments a case may have proposed (a 16-bit counter). */
export const MAX_AMENDMENTS = 0xffff;

const BUYER = 2;

/** What a proposal changes. Amounts are integers in the asset's smallest unit. */
export type AmendmentContent =
  | { kind: "deadline"; stage: number; longStop: boolean; at: number }
  | { kind: "terms"; price: bigint; deposit: bigint; loan: bigint }
  | { kind: "party"; party: number };

export interface Proposal {
  /** The proposer's role: its consent counts at once where it is required. */
  proposer: number;
  expiresAt: number;
  content: AmendmentContent;
  /** Who must consent, as the chain computed it (`AmendmentProposed.required`). */
  required: number;
}

/**
 * The contract's numbering of a template's deadlines: in stage order, each stage's own deadline before its
 * long-stop, 1 to 6; 0 for a deadline past the sixth (or none), which no amendment can move.
 */
export function deadlineSlotOf(rules: readonly StageRule[], stage: number, longStop: boolean): number {
  let slots = 0;
  for (let s = 0; s < rules.length; s++) {
    const own = rules[s].deadlineSeconds !== 0 && slots < MAX_DEADLINE_SLOTS ? ++slots : 0;
    const stop = rules[s].longStopSeconds !== 0 && slots < MAX_DEADLINE_SLOTS ? ++slots : 0;
    if (s === stage) return longStop ? stop : own;
  }
  return 0;
}

/**
 * Why the contract would refuse the proposal at `at` (the error's name, or the tag of
 * `MortgageEscrowInvalidAmendment`), or null. Who may propose (the role's own party) is the chain's to check,
 * and so are the checks that need addresses (the zero address; the party's own address).
 */
export function proposalRefusalOf(model: CaseModel, proposal: Omit<Proposal, "required">, at: number): string | null {
  if (model.status !== "open") return "MortgageEscrowUnexpectedCaseStatus";
  if (proposal.expiresAt <= at) return "expiry not in the future";
  if ((model.amendments?.length ?? 0) >= MAX_AMENDMENTS) return "MortgageEscrowTooManyAmendments";
  const content = proposal.content;
  if (content.kind === "deadline") {
    if (content.stage >= model.rules.length) return "MortgageEscrowUnknownStage";
    if (isCompleted(model, content.stage)) return "MortgageEscrowStageAlreadyCompleted";
    if (content.at === 0) return "zero deadline";
    if (deadlineSlotOf(model.rules, content.stage, content.longStop) === 0) return "no movable deadline";
  } else if (content.kind === "terms") {
    if (model.released) return "MortgageEscrowAlreadyReleased";
    if (content.price > content.deposit + content.loan) return "MortgageEscrowPriceExceedsShares";
  }
  return null;
}

/**
 * Whether a deadline move needs the buyer's consent whatever the template says: one earlier than the deadline
 * now (or from a deadline not yet running) before the release, since an expiry after a binding stage pays the
 * buyer's deposit to the seller.
 */
export function deadlineMoveNeedsTheBuyer(model: CaseModel, stage: number, longStop: boolean, at: number): boolean {
  if (model.released) return false;
  const current = longStop ? longStopOf(model, stage) : anchoredDeadlineOf(model, stage);
  return current === null || at < current;
}

/** The roles a deadline move or a party replacement needs: the template's, and the contract's own rule's. */
export function requiredConsentsOf(
  model: CaseModel,
  consentRoles: number,
  content: Exclude<AmendmentContent, { kind: "terms" }>,
): number {
  if (content.kind === "party") return consentRoles | (1 << content.party);
  return (
    consentRoles | (deadlineMoveNeedsTheBuyer(model, content.stage, content.longStop, content.at) ? 1 << BUYER : 0)
  );
}

export function amendmentOf(model: CaseModel, amendment: number): AmendmentModel | undefined {
  return model.amendments?.[amendment - 1];
}

/**
 * Why the contract would not count `role`'s consent to `amendment` at `at`, checked in its order; null if it
 * would (for a relayed one, the epoch and the signature aside: the relayer's to know).
 */
export function consentRefusalOf(
  model: CaseModel,
  amendment: number,
  role: number,
  at: number,
): ConsentSkipReason | null {
  if (model.status !== "open") return "CaseNotOpen";
  const a = amendmentOf(model, amendment);
  if (!a) return "UnknownAmendment";
  if (a.applied) return "AlreadyApplied";
  if (a.version !== (model.termsVersion ?? 0)) return "Superseded";
  if (at > a.expiresAt) return "Expired";
  if (a.kind === "terms" && model.released) return "AlreadyReleased";
  if (((a.required >> role) & 1) === 0) return "RoleNotRequired";
  if ((a.consents >> role) & 1) return "AlreadyConsented";
  return null;
}

/** Whether `withdrawAmendmentConsent` takes `role`'s withdrawal: a consent standing, not applied yet. */
export function mayWithdrawConsent(model: CaseModel, amendment: number, role: number): boolean {
  const a = amendmentOf(model, amendment);
  return model.status === "open" && a !== undefined && !a.applied && ((a.consents >> role) & 1) === 1;
}

/** What applying an amendment did: the stages it re-opened and the stages it completed, in order. */
export interface Applied {
  reopened: number[];
  completed: number[];
}

/**
 * Records a proposal the contract took (mutates `model`); with the proposer's consent the last one required,
 * it applies at once. `funded`: for a terms change, whether the escrow is funded under the new terms.
 */
export function recordProposal(model: CaseModel, proposal: Proposal, at: number, funded?: boolean): Applied | null {
  const c = proposal.content;
  const own = (1 << proposal.proposer) & proposal.required;
  const record: AmendmentModel = {
    kind: c.kind,
    version: model.termsVersion ?? 0,
    expiresAt: proposal.expiresAt,
    required: proposal.required,
    consents: own,
    applied: false,
    deadline: c.kind === "deadline" ? { stage: c.stage, longStop: c.longStop, at: c.at } : undefined,
  };
  model.amendments = [...(model.amendments ?? []), record];
  return own !== 0 && own === proposal.required ? applyAmendment(model, model.amendments.length, at, funded) : null;
}

/** Records a consent the contract counted (mutates `model`); the last one required applies the amendment. */
export function recordConsent(
  model: CaseModel,
  amendment: number,
  role: number,
  at: number,
  funded?: boolean,
): Applied | null {
  const a = amendmentOf(model, amendment)!;
  a.consents |= 1 << role;
  return a.consents === a.required ? applyAmendment(model, amendment, at, funded) : null;
}

export function recordWithdrawal(model: CaseModel, amendment: number, role: number): void {
  amendmentOf(model, amendment)!.consents &= ~(1 << role);
}

/**
 * `_applyAmendment`: raises the terms version (which supersedes every other proposal) and makes the change.
 * A moved deadline may let its own stage complete now; a terms change re-opens the template's stages for it
 * and, if the escrow is now funded and was not, completes the funding stages that waited.
 */
function applyAmendment(model: CaseModel, amendment: number, at: number, funded?: boolean): Applied {
  const a = amendmentOf(model, amendment)!;
  a.applied = true;
  model.termsVersion = (model.termsVersion ?? 0) + 1;
  if (a.kind === "deadline") {
    const { stage, longStop, at: time } = a.deadline!;
    const moved = (model.movedDeadlines ??= model.rules.map(() => ({ own: null, longStop: null })));
    moved[stage] = { ...moved[stage], [longStop ? "longStop" : "own"]: Math.min(time, MAX_TIME) };
    const ready = !isCompleted(model, stage) && isFullySigned(model, stage);
    return { reopened: [], completed: ready ? completeReadyStages(model, at, [stage]) : [] };
  }
  if (a.kind === "party") return { reopened: [], completed: [] };
  const reopened = reopenStages(model);
  const wasFunded = model.funded;
  model.funded = funded ?? model.funded;
  const completed = model.funded && !wasFunded ? completeReadyStages(model, at, fundingCandidates(model)) : [];
  return { reopened, completed };
}

/** The contract's `_reopenStages`: each stage to re-open that has completed while no stage after it has. */
function reopenStages(model: CaseModel): number[] {
  const reopened: number[] = [];
  const mask = model.reopenedByTerms ?? 0;
  for (let s = 0; mask >> s !== 0; s++) {
    if (((mask >> s) & 1) === 0 || !isCompleted(model, s)) continue;
    if (dependentsOf(model, s).some((d) => isCompleted(model, d))) continue;
    model.completedAt[s] = null;
    model.signedOff[s] = 0;
    reopened.push(s);
  }
  return reopened;
}
