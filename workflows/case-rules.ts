/**
 * The contract's rules for one case, as pure functions over a small model of its state. The XState machine
 * uses them for its guards and actions, the engine for its read model, and the differential test shows
 * that they agree with `MortgageEscrow` at every step. Each function mirrors the contract's function of
 * the same purpose; where the contract makes a choice (a single forward pass, the pass on a sign-off
 * starting at its own stage) this file makes the same one, and says so.
 *
 * Times are chain seconds (block timestamps), as the contract sees them.
 */
import type { StageRule } from "./compile";

export const ROLE_COUNT = 4;

/** The largest time the contract's packed 32-bit time fields hold (early 2106): `MortgageEscrow.MAX_TIME`. */
export const MAX_TIME = 2 ** 32 - 1;

/**
 * `MortgageEscrowTimeOverflow(time, max)`: a completion had to keep a time that no longer fits its field, so
 * the whole transaction reverts. Thrown from the middle of a pass: the model it was given is then half
 * changed, so callers pass a copy.
 */
export class TimeOverflowError extends Error {
  readonly code = "TIME_OVERFLOW";
  constructor(
    readonly time: number,
    readonly max: number = MAX_TIME,
  ) {
    super(`the time ${time} does not fit the contract's 32-bit time fields (at most ${max})`);
    this.name = "TimeOverflowError";
  }
}

export type StageStatus =
  "locked" | "open" | "waiting-for-time" | "waiting-for-funds" | "completed" | "overdue" | "expired" | "cancelled";

export type CaseStatus = "open" | "completed" | "expired" | "cancelled";

export interface CaseModel {
  readonly rules: readonly StageRule[];
  readonly openedAt: number;
  status: CaseStatus;
  /** Role mask (`1 << role`) of the sign-offs of each stage. */
  signedOff: number[];
  /** When each stage completed, or null. */
  completedAt: Array<number | null>;
  /** Stages marked overdue by `expire` after the release. */
  overdue: boolean[];
  funded: boolean;
  released: boolean;
  /** Role mask of the cancellation votes. */
  cancelVotes: number;
  /** The terms version, raised by each amendment that applies (absent: 0, as in a model made before them). */
  termsVersion?: number;
  /** Each stage's deadlines as amendments moved them, absolute chain seconds (absent: none moved). */
  movedDeadlines?: MovedDeadlines[];
  /** The case's amendments, amendment `n` at index n - 1 (absent: none). */
  amendments?: AmendmentModel[];
  /** The template's stage mask of what a change of terms re-opens (`AmendmentRules.reopenedByTerms`). */
  reopenedByTerms?: number;
}

export interface MovedDeadlines {
  own: number | null;
  longStop: number | null;
}

/** `IMortgageEscrow.AmendmentKind`, in its order. */
export const AMENDMENT_KIND_CODES = { deadline: 0, terms: 1, party: 2 } as const;

/** One amendment as the contract records it; its content only as far as the case's rules need it. */
export interface AmendmentModel {
  kind: keyof typeof AMENDMENT_KIND_CODES;
  /** The terms version it amends. */
  version: number;
  expiresAt: number;
  /** Role masks. */
  required: number;
  consents: number;
  applied: boolean;
  /** A deadline move: the stage, which of its deadlines, and the new time. */
  deadline?: { stage: number; longStop: boolean; at: number };
}

export function newCaseModel(
  rules: readonly StageRule[],
  openedAt: number,
  funded = false,
  reopenedByTerms = 0,
): CaseModel {
  return {
    rules,
    openedAt,
    status: "open",
    signedOff: rules.map(() => 0),
    completedAt: rules.map(() => null),
    overdue: rules.map(() => false),
    funded,
    released: false,
    cancelVotes: 0,
    termsVersion: 0,
    movedDeadlines: rules.map(() => ({ own: null, longStop: null })),
    amendments: [],
    reopenedByTerms,
  };
}

export function isCompleted(model: CaseModel, stage: number): boolean {
  return model.completedAt[stage] !== null;
}

export function isFullySigned(model: CaseModel, stage: number): boolean {
  const required = model.rules[stage].roles;
  return (model.signedOff[stage] & required) === required;
}

export function prerequisitesComplete(model: CaseModel, stage: number): boolean {
  return indexesOf(model.rules[stage].prerequisites).every((p) => isCompleted(model, p));
}

/** When the waiting time starts: the last prerequisite's completion, or the opening. Null while one is open. */
export function unlockedAt(model: CaseModel, stage: number): number | null {
  let at = model.openedAt;
  for (const p of indexesOf(model.rules[stage].prerequisites)) {
    const completed = model.completedAt[p];
    if (completed === null) return null;
    at = Math.max(at, completed);
  }
  return at;
}

/** The earliest time the contract lets the stage complete by time; null while a prerequisite is open. */
export function availableAt(model: CaseModel, stage: number): number | null {
  const start = unlockedAt(model, stage);
  return start === null ? null : start + model.rules[stage].waitSeconds;
}

/**
 * The stage's effective deadline: the earliest of those running, its long-stop (counted from the opening)
 * and its own deadline once its anchor (the opening, or an earlier stage completing) has happened.
 */
export function deadlineOf(model: CaseModel, stage: number): number | null {
  const longStop = longStopOf(model, stage);
  const own = anchoredDeadlineOf(model, stage);
  if (longStop === null || own === null) return longStop ?? own;
  return Math.min(longStop, own);
}

/** The stage's long-stop: as an amendment moved it, or counted from the opening; null if it has none. */
export function longStopOf(model: CaseModel, stage: number): number | null {
  const rule = model.rules[stage];
  if (rule.longStopSeconds === 0) return null;
  return model.movedDeadlines?.[stage]?.longStop ?? model.openedAt + rule.longStopSeconds;
}

/**
 * The stage's own deadline, the long-stop left out: as an amendment moved it (an agreed time, running from
 * then on), or once its anchor has happened.
 */
export function anchoredDeadlineOf(model: CaseModel, stage: number): number | null {
  const rule = model.rules[stage];
  if (rule.deadlineSeconds === 0) return null;
  const moved = model.movedDeadlines?.[stage]?.own;
  if (moved !== undefined && moved !== null) return moved;
  if (rule.deadlineAnchor === 0) return model.openedAt + rule.deadlineSeconds;
  const anchor = model.completedAt[rule.deadlineAnchor - 1];
  return anchor === null ? null : anchor + rule.deadlineSeconds;
}

export function isPastDeadline(model: CaseModel, stage: number, now: number): boolean {
  const deadline = deadlineOf(model, stage);
  return deadline !== null && now > deadline;
}

/** Whether every criterion of the stage holds at `now`, so that a transaction now would complete it. */
export function canComplete(model: CaseModel, stage: number, now: number): boolean {
  if (isCompleted(model, stage) || !isFullySigned(model, stage) || !prerequisitesComplete(model, stage)) return false;
  const rule = model.rules[stage];
  if (rule.action !== 0 && !model.funded) return false;
  if (rule.waitSeconds !== 0 && now < (availableAt(model, stage) as number)) return false;
  return model.released || !isPastDeadline(model, stage, now);
}

/** The stages that could complete now by criteria other than signatures: fully signed and not completed. */
export function signedCandidates(model: CaseModel): number[] {
  return model.rules.map((_, s) => s).filter((s) => !isCompleted(model, s) && isFullySigned(model, s));
}

/** The stages that name `stage` among their prerequisites: where a cascade goes next. */
export function dependentsOf(model: CaseModel, stage: number): number[] {
  return model.rules.map((_, s) => s).filter((s) => (model.rules[s].prerequisites >> stage) & 1);
}

/**
 * The contract's completion pass: of `candidates`, completes every stage whose criteria hold at `now`, and
 * the cascade (a completed stage's fully signed dependents join the candidates), in stage order.
 * The candidates are what the transaction can have made ready: a sign-off, its own stage; the deposit that
 * funds the escrow, the funding stages (`fundingCandidates`); `advance`, every signed candidate. A pass that
 * releases the escrow is followed by one over every signed candidate, since a deadline stops blocking then.
 * Returns the stages completed, in order; mutates `model`.
 */
export function completeReadyStages(model: CaseModel, now: number, candidates: readonly number[]): number[] {
  const wasReleased = model.released;
  const completed = completionPass(model, now, candidates);
  if (!wasReleased && model.released) completed.push(...completionPass(model, now, signedCandidates(model)));
  if (completed.length > 0 && model.completedAt.every((t) => t !== null)) model.status = "completed";
  return completed;
}

/** The signed candidates that wait for the escrow to be funded. */
export function fundingCandidates(model: CaseModel): number[] {
  return signedCandidates(model).filter((s) => model.rules[s].action !== 0);
}

function completionPass(model: CaseModel, now: number, initial: readonly number[]): number[] {
  const candidates = new Set(initial);
  const completed: number[] = [];
  for (let s = 0; s < model.rules.length; s++) {
    if (!candidates.has(s) || !canComplete(model, s, now)) continue;
    model.completedAt[s] = now;
    if (now > MAX_TIME && keepsATimeOnCompletion(model, s)) throw new TimeOverflowError(now);
    completed.push(s);
    for (const d of dependentsOf(model, s)) if (isFullySigned(model, d)) candidates.add(d);
    if (model.rules[s].action === 2) model.released = true;
    // As the contract: a vote cast while the buyer's deposit was refundable must not count toward a
    // cancellation that now pays it to the seller.
    if (model.rules[s].binding) model.cancelVotes = 0;
  }
  return completed;
}

/**
 * Whether the contract records a time when `stage` completes (`model.completedAt[stage]` already set): its
 * completion time, if it anchors a deadline, or the unlock time of a dependent that waits and whose
 * prerequisites are now all complete. Those are the times it keeps in 32-bit fields.
 */
function keepsATimeOnCompletion(model: CaseModel, stage: number): boolean {
  if (model.rules.some((r) => r.deadlineAnchor === stage + 1)) return true;
  return dependentsOf(model, stage).some((d) => model.rules[d].waitSeconds !== 0 && prerequisitesComplete(model, d));
}

/** The stages that `expire` would act on at `now`: past their deadline, not completed, not yet overdue. */
export function missedDeadlines(model: CaseModel, now: number): number[] {
  return model.rules
    .map((_, s) => s)
    .filter((s) => !isCompleted(model, s) && !model.overdue[s] && isPastDeadline(model, s, now));
}

/** A stage's status: the contract's `stageOf`. */
export function stageStatus(model: CaseModel, stage: number, now: number): StageStatus {
  if (isCompleted(model, stage)) return "completed";
  if (model.status === "cancelled") return "cancelled";
  if (model.status === "expired") return "expired";
  if (isPastDeadline(model, stage, now)) return "overdue";
  if (!prerequisitesComplete(model, stage)) return "locked";
  if (!isFullySigned(model, stage)) return "open";
  const rule = model.rules[stage];
  if (rule.waitSeconds !== 0 && now < (availableAt(model, stage) as number)) return "waiting-for-time";
  if (rule.action !== 0 && !model.funded) return "waiting-for-funds";
  return "waiting-for-time"; // every criterion holds: `advance` is due
}

/** `IMortgageEscrow.SkipReason`, in its order: why `signOffWithSignatures` skipped an item. */
export const SKIP_REASONS = [
  "AlreadySignedOff",
  "StaleEpoch",
  "CaseNotOpen",
  "InvalidSignature",
  "RoleNotRequired",
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/** The contract's most stages (`MortgageEscrow.MAX_STAGES`): a stage index past them names no stage. */
const MAX_STAGES = 16;

/**
 * Why the contract would skip a relayed sign-off of (stage, role) for the case as it stands, checked in the
 * contract's order; null if it would go on to the epoch and the signature (`StaleEpoch`, `InvalidSignature`),
 * which are the relayer's to know, not the model's. Nothing in a batch reverts it any more.
 */
export function signOffSkipOf(
  model: CaseModel,
  stage: number,
  role: number,
): "CaseNotOpen" | "RoleNotRequired" | "AlreadySignedOff" | null {
  if (model.status !== "open") return "CaseNotOpen";
  const required = stage < MAX_STAGES && stage < model.rules.length ? model.rules[stage].roles : 0;
  if (((required >> role) & 1) === 0) return "RoleNotRequired";
  if ((model.signedOff[stage] >> role) & 1) return "AlreadySignedOff";
  return null;
}

/** The roles (as role indexes) that still have to sign off the stage. */
export function awaitedRoles(model: CaseModel, stage: number): number[] {
  const missing = model.rules[stage].roles & ~model.signedOff[stage];
  return indexesOf(missing).filter((r) => r < ROLE_COUNT);
}

export function indexesOf(mask: number): number[] {
  const indexes: number[] = [];
  for (let i = 0; mask >> i !== 0; i++) if ((mask >> i) & 1) indexes.push(i);
  return indexes;
}
