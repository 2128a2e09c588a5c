/**
 * The event types a subscription may ask for, and what each one's `data` holds. Every date is a law's moment
 * (a stage's `availableAt` and `deadline` as the case's progress shows them); the contract's bounds appear
 * only under their own names (`contractFloor`, `contractCeiling`).
 */
import type { CaseProgress, StageProgress } from "../../engine/projection/case-view";

export const EVENT_TYPES = [
  "stage.completed",
  "signoff.awaited",
  "consent.awaited",
  "deadline.approaching",
  "case.completed",
  "case.expired",
  "case.cancelled",
  "party.credited",
  "amendment.proposed",
  "amendment.applied",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** One event as derived, before it is matched to subscriptions. */
export interface DerivedEvent {
  type: EventType;
  caseId: string;
  /** Unique per event (with the subscription): deriving it again makes no second delivery. */
  key: string;
  /** When it happened, ms. */
  occurredAt: number;
  data: Record<string, unknown>;
  /** For `signoff.awaited` and `consent.awaited`: only this address (and the operator) hears of it. */
  awaitedAddress?: string;
  /** For `deadline.approaching`: the subscription's N it was computed for. */
  businessDaysBefore?: number;
}

/** A stage as the payloads show it: the law's moments, the contract's bounds under their own names. */
export function stageData(stage: StageProgress): Record<string, unknown> {
  return {
    id: stage.id,
    title: stage.title,
    status: stage.status,
    requires: stage.requires,
    signedOff: stage.signedOff,
    availableAt: stage.availableAt,
    deadline: stage.deadline,
    contractFloor: stage.contractFloor,
    contractCeiling: stage.contractCeiling,
    completedAt: stage.completedAt,
  };
}

export function caseData(progress: CaseProgress): Record<string, unknown> {
  return { caseId: progress.id, workflow: progress.workflow.id, status: progress.status, timeZone: progress.timeZone };
}

/**
 * The sign-offs and consents the case awaits now: a stage open (its prerequisites complete) that accepts
 * sign-offs and lacks a required role's, an open amendment that lacks a required consent. Keyed once per case,
 * stage (or amendment) and role, whichever path finds it first (the event log, or the scheduler when a legal
 * moment comes).
 */
export function awaitedOf(progress: CaseProgress, occurredAt: number): DerivedEvent[] {
  if (progress.status !== "open") return [];
  const found: DerivedEvent[] = [];
  for (const stage of progress.stages) {
    if (stage.status !== "open" || !stage.acceptsSignOffs) continue;
    for (const role of stage.requires) {
      if (stage.signedOff.includes(role)) continue;
      const party = progress.parties[role as keyof CaseProgress["parties"]];
      found.push({
        type: "signoff.awaited",
        caseId: progress.id,
        key: `signoff.awaited:${progress.id}:${stage.id}:${role}`,
        occurredAt,
        data: { ...caseData(progress), stage: stageData(stage), role, party },
        awaitedAddress: party,
      });
    }
  }
  for (const a of progress.amendments) {
    if (a.status !== "open") continue;
    for (const role of a.awaiting) {
      const party = progress.parties[role as keyof CaseProgress["parties"]];
      found.push({
        type: "consent.awaited",
        caseId: progress.id,
        key: `consent.awaited:${progress.id}:${a.number}:${role}`,
        occurredAt,
        data: {
          ...caseData(progress),
          amendment: { number: a.number, kind: a.kind, change: a.change, expiresAt: a.expiresAt, requires: a.requires },
          role,
          party,
        },
        awaitedAddress: party,
      });
    }
  }
  return found;
}
