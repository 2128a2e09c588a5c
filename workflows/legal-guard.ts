/**
 * The legal guard: when the law lets a stage complete. The contract keeps a waiting time of business days
 * as its floor in seconds (the shortest span it can ever be), so once the floor has passed the contract
 * would accept a completion that the law does not yet allow. The engine asks this guard before it submits
 * a sign-off of such a stage or calls `advance` for it, and answers a party that is too early with the
 * moment it becomes possible.
 *
 * Only stages with a waiting time are guarded; every other stage accepts sign-offs early, even while locked.
 */
import { unlockedAt, type CaseModel } from "./case-rules";
import { getCalendar } from "./calendars";
import type { Calendar } from "./calendars/calendar";
import type { CompiledWorkflow } from "./compile";
import { duration } from "./duration";

export type LegalVerdict =
  | { allowed: true }
  /** `availableAt` is null while a prerequisite is still open: the waiting time has not started. */
  | { allowed: false; availableAt: Date | null; reason: string };

export interface LegalGuard {
  /**
   * The exact moment from which the law lets the stage complete: its waiting time counted in the
   * workflow's calendar from the completion of its last prerequisite (or the opening). `undefined` for a
   * stage without a waiting time, null while a prerequisite is open.
   */
  legalMomentOf(model: CaseModel, stage: number): Date | null | undefined;
  /** Whether the engine may now submit what could complete the stage: a sign-off of it, or `advance`. */
  mayComplete(model: CaseModel, stage: number, now: Date): LegalVerdict;
}

export function createLegalGuard(workflow: Pick<CompiledWorkflow, "details" | "calendar" | "timeZone">): LegalGuard {
  const calendar: Calendar = getCalendar(workflow.calendar, workflow.timeZone);
  const waits = workflow.details.map((stage) => (stage.wait === undefined ? undefined : duration(stage.wait)));

  function legalMomentOf(model: CaseModel, stage: number): Date | null | undefined {
    const wait = waits[stage];
    if (wait === undefined) return undefined;
    const start = unlockedAt(model, stage);
    if (start === null) return null;
    const from = new Date(start * 1000);
    if (wait.unit === "business-days") return calendar.addBusinessDays(from, wait.amount);
    // Calendar days and hours are exact spans: the law and the contract agree to the second.
    const seconds = wait.amount * (wait.unit === "days" ? 86_400 : 3_600);
    return new Date((start + seconds) * 1000);
  }

  function mayComplete(model: CaseModel, stage: number, now: Date): LegalVerdict {
    const moment = legalMomentOf(model, stage);
    if (moment === undefined || (moment !== null && now.getTime() >= moment.getTime())) return { allowed: true };
    const title = workflow.details[stage].title;
    const wait = workflow.details[stage].wait;
    if (moment === null) {
      return { allowed: false, availableAt: null, reason: `"${title}" waits ${wait} after its prerequisites, which are not all complete yet` };
    }
    return { allowed: false, availableAt: moment, reason: `"${title}" waits ${wait}: possible from ${moment.toISOString()}` };
  }

  return { legalMomentOf, mayComplete };
}
