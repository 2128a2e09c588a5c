/**
 * The moments at which time alone changes what may be done in a case, as pure functions of its model: when
 * `advance` may complete a stage, when `expire` may act on a missed deadline, and when the law lets a stage
 * accept sign-offs. The case machine's delays and its `CLOCK` event are made of them.
 *
 * The contract knows a waiting time only as its floor in seconds; the law may ask for more (business days in
 * the jurisdiction's calendar). `CaseLaw` is the part of the legal guard (`legal-guard.ts`) the machine
 * needs; without one (a template that no workflow here compiles to) the contract's moments are all there are.
 */
import {
  type CaseModel,
  availableAt,
  deadlineOf,
  isCompleted,
  isFullySigned,
  isPastDeadline,
  missedDeadlines,
  prerequisitesComplete,
} from "./case-rules";
import type { LegalGuard } from "./legal-guard";

export type CaseLaw = Pick<LegalGuard, "legalMomentOf" | "mayComplete">;

/** The law's moment of a stage in whole chain seconds (rounded up: the contract compares seconds). */
export function legalSecondOf(law: CaseLaw | undefined, model: CaseModel, stage: number): number | null | undefined {
  const moment = law?.legalMomentOf(model, stage);
  return moment instanceof Date ? Math.ceil(moment.getTime() / 1000) : moment;
}

/**
 * The chain second from which time alone lets `advance` complete the stage, by the contract and by the law:
 * null for a stage that is not waiting for time (no waiting time, completed, not fully signed, a
 * prerequisite open, or funds it still needs).
 */
export function advanceMomentOf(model: CaseModel, stage: number, law?: CaseLaw): number | null {
  const rule = model.rules[stage];
  if (rule.waitSeconds === 0 || isCompleted(model, stage) || !isFullySigned(model, stage)) return null;
  if (!prerequisitesComplete(model, stage) || (rule.action !== 0 && !model.funded)) return null;
  const contract = availableAt(model, stage) as number;
  const legal = legalSecondOf(law, model, stage);
  return typeof legal === "number" ? Math.max(contract, legal) : contract;
}

/** The next moment, after `now`, at which time alone lets a stage complete. */
export function nextWaitingTimeEnd(model: CaseModel, now: number, law?: CaseLaw): number | null {
  let next: number | null = null;
  model.rules.forEach((_, s) => {
    const at = advanceMomentOf(model, s, law);
    if (at !== null && at > now && (next === null || at < next)) next = at;
  });
  return next;
}

/**
 * The earliest moment, at or before `now`, from which time lets a stage complete that has not: `advance` is
 * due. Before the release a stage past its deadline is `expire`'s, not `advance`'s.
 */
export function dueWaitingTimeEnd(model: CaseModel, now: number, law?: CaseLaw): number | null {
  let due: number | null = null;
  model.rules.forEach((_, s) => {
    const at = advanceMomentOf(model, s, law);
    if (at === null || at > now || (!model.released && isPastDeadline(model, s, now))) return;
    if (due === null || at < due) due = at;
  });
  return due;
}

/** The next moment, after `now`, at which a stage's deadline is missed (the contract's `now > deadline`). */
export function nextDeadlineMiss(model: CaseModel, now: number): number | null {
  let next: number | null = null;
  model.rules.forEach((_, s) => {
    if (isCompleted(model, s) || model.overdue[s]) return;
    const deadline = deadlineOf(model, s);
    if (deadline === null) return;
    const missAt = deadline + 1;
    if (missAt > now && (next === null || missAt < next)) next = missAt;
  });
  return next;
}

/** The earliest moment of a deadline missed by `now` that `expire` has not acted on yet: `expire` is due. */
export function dueDeadlineMiss(model: CaseModel, now: number): number | null {
  const missed = missedDeadlines(model, now);
  return missed.length === 0 ? null : Math.min(...missed.map((s) => (deadlineOf(model, s) as number) + 1));
}

/**
 * The next moment, after `now`, at which the case's progress reads differently though nothing happened on
 * chain: the law lets a stage still to complete accept sign-offs, or an open amendment lapses (a consent
 * counts until its `expiresAt`, so it reads expired from the second after).
 */
export function nextLegalMoment(model: CaseModel, now: number, law?: CaseLaw): number | null {
  let next: number | null = null;
  const consider = (at: number) => {
    if (at > now && (next === null || at < next)) next = at;
  };
  model.rules.forEach((_, s) => {
    if (isCompleted(model, s)) return;
    const at = legalSecondOf(law, model, s);
    if (typeof at === "number") consider(at);
  });
  if (model.status === "open")
    for (const a of model.amendments ?? [])
      if (!a.applied && a.version === (model.termsVersion ?? 0)) consider(a.expiresAt + 1);
  return next;
}

/** What falls due at exactly `at`: an `advance`, an `expire`, a legal moment (the machine's next timer). */
export interface MomentsAt {
  advance: boolean;
  expire: boolean;
  legal: boolean;
}

/**
 * The next moment after `now` at which time changes anything (a waiting time's end, a deadline missed, a
 * legal moment), and what falls due at it: one timer for all of them, so that two that fall on the same
 * second are both acted on.
 */
export function nextMoment(model: CaseModel, now: number, law?: CaseLaw): { at: number; due: MomentsAt } | null {
  const advance = nextWaitingTimeEnd(model, now, law);
  const expire = nextDeadlineMiss(model, now);
  const legal = nextLegalMoment(model, now, law);
  const candidates = [advance, expire, legal].filter((m): m is number => m !== null);
  if (candidates.length === 0) return null;
  const at = Math.min(...candidates);
  return { at, due: { advance: advance === at, expire: expire === at, legal: legal === at } };
}
