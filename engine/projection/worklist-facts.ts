/**
 * What a worklist needs to know of a case, read off its progress: what it waits for and from whom, its next
 * legal deadline, and until when these stay true as time alone passes. Pure, so the server's index can keep
 * these small facts for every case and recompute one only when its case changes or one of its moments comes,
 * instead of a whole progress of every case at every request.
 */
import { z } from "zod";
import { ROLE_NAMES, type RoleName } from "../../workflows/schema";
import { IsoTime, RoleName as RoleNameSchema } from "../value-schemas";
import type { CaseProgress } from "./progress-schema";

export const WaitingForItem = z
  .discriminatedUnion("kind", [
    z.object({
      kind: z.literal("sign-off"),
      stage: z.string().describe("The stage's id."),
      roles: z.array(RoleNameSchema).describe("The roles whose sign-off the stage still needs."),
    }),
    z.object({
      kind: z.literal("consent"),
      amendment: z.number().int().describe("The open amendment's number in the case."),
      roles: z.array(RoleNameSchema).describe("The roles whose consent it still needs."),
    }),
  ])
  .describe(
    "Something the case waits for and from whom (every party's part, not only the caller's). A sign-off is awaited of a stage that takes it now " +
      "(`acceptsSignOffs`) and is not locked: an early sign-off of a locked stage is accepted but holds nothing up. A consent is awaited of an open amendment (`awaiting`).",
  );
export type WaitingForItem = z.infer<typeof WaitingForItem>;

export const NextDeadline = z
  .object({ stage: z.string(), at: IsoTime })
  .nullable()
  .describe(
    "The case's next LEGAL deadline: the earliest `deadline` of a stage not completed (one already past included: an overdue stage). Null when none is running or the case has ended.",
  );
export type NextDeadline = z.infer<typeof NextDeadline>;

export interface WorklistFacts {
  waitingFor: WaitingForItem[];
  nextDeadline: NextDeadline;
  /** `nextDeadline.at` in milliseconds; Infinity when there is none (such cases sort last). */
  deadlineMs: number;
  openedAtMs: number;
  /**
   * The chain second from which these facts, and the progress they were read from, may no longer hold with no
   * change on chain (a stage's legal moment or contract floor, a deadline, an amendment's expiry: every instant
   * at which `progressOf` compares the time): the earliest such second after `nowSeconds`. Infinity: none.
   */
  validUntilSeconds: number;
}

const ENDED_STAGE = new Set(["completed", "overdue", "expired", "cancelled"]);

function ordered(roles: readonly RoleName[]): RoleName[] {
  return ROLE_NAMES.filter((r) => roles.includes(r));
}

/** The worklist's facts of `progress` at chain time `nowSeconds` (the second it was computed at). */
export function worklistFactsOf(progress: CaseProgress, nowSeconds: number): WorklistFacts {
  const active = progress.status === "open" || progress.status === "opening";
  const waitingFor: WaitingForItem[] = [];
  let next: NextDeadline = null;
  let deadlineMs = Infinity;
  let validUntilSeconds = Infinity;
  // Some rules change at a moment (`now >= t`), others just after it (`now > t`: a contract deadline, an
  // amendment's expiry): the facts are looked at again at both seconds.
  const moment = (iso: string | null) => {
    if (iso === null) return;
    const at = Math.ceil(Date.parse(iso) / 1000);
    for (const t of [at, at + 1]) if (t > nowSeconds && t < validUntilSeconds) validUntilSeconds = t;
  };
  for (const stage of progress.stages) {
    moment(stage.availableAt);
    moment(stage.deadline);
    moment(stage.contractFloor);
    moment(stage.contractCeiling);
    if (!active) continue;
    if (stage.acceptsSignOffs && stage.status !== "locked" && !ENDED_STAGE.has(stage.status)) {
      const roles = ordered(stage.requires.filter((r) => !stage.signedOff.includes(r)));
      if (roles.length > 0) waitingFor.push({ kind: "sign-off", stage: stage.id, roles });
    }
    if (stage.status !== "completed" && stage.deadline !== null) {
      const at = Date.parse(stage.deadline);
      if (at < deadlineMs) {
        deadlineMs = at;
        next = { stage: stage.id, at: stage.deadline };
      }
    }
  }
  for (const amendment of progress.amendments) {
    if (amendment.status !== "open") continue;
    moment(amendment.expiresAt);
    if (active && amendment.awaiting.length > 0)
      waitingFor.push({ kind: "consent", amendment: amendment.number, roles: ordered(amendment.awaiting) });
  }
  return {
    waitingFor,
    nextDeadline: next,
    deadlineMs,
    openedAtMs: Date.parse(progress.openedAt),
    validUntilSeconds,
  };
}
