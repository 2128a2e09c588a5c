/**
 * The legal guard: the law's moments of a stage. The contract keeps a waiting time of business days as its
 * floor in seconds (the shortest span it can ever be) and a deadline as its ceiling (the longest), so once
 * the floor has passed the contract would accept a completion that the law does not yet allow, and until
 * the ceiling it would accept one that the law no longer does. The engine asks this guard before it submits
 * a sign-off of a waiting stage or calls `advance` for it, answers a party that is too early with the moment
 * it becomes possible and what it waits for, and shows the law's moments as the stage's `availableAt` and
 * `deadline`.
 *
 * Only stages with a waiting time are guarded; every other stage accepts sign-offs early, even while locked.
 */
import { indexesOf, isCompleted, unlockedAt, type CaseModel } from "./case-rules";
import { getCalendar } from "./calendars";
import type { Calendar } from "./calendars/calendar";
import type { CompiledWorkflow } from "./compile";
import { duration, type Duration } from "./duration";

/** How many answers a guard keeps before it starts again: a few per open case, for many thousands of cases. */
const MAX_REMEMBERED = 100_000;

export type LegalVerdict =
  | { allowed: true }
  /** `availableAt` is null while a prerequisite is still open: the waiting time has not started. */
  | { allowed: false; availableAt: Date | null; reason: string; waitsFor: string };

export interface LegalGuard {
  /** The jurisdiction's IANA time zone, whose local dates the rules count in. */
  readonly timeZone: string;
  /**
   * The exact moment from which the law lets the stage complete: its waiting time counted in the
   * workflow's calendar from the completion of its last prerequisite (or the opening). `undefined` for a
   * stage without a waiting time, null while a prerequisite is open.
   */
  legalMomentOf(model: CaseModel, stage: number): Date | null | undefined;
  /**
   * The law's deadline of the stage: the earliest of its own deadline (once its anchor has happened) and
   * the long-stop, each to the end of its last (business) day in the jurisdiction's zone (00:00 of the day
   * after), or to the exact hour for a deadline in hours. Null when none is running; `undefined` for a
   * stage without a deadline rule.
   */
  legalDeadlineOf(model: CaseModel, stage: number): Date | null | undefined;
  /**
   * Plain words for what the stage waits for before it accepts sign-offs ("Closing Disclosure received by
   * the borrower, then 3 business days"), or null when the law holds nothing back at `now`.
   */
  waitsFor(model: CaseModel, stage: number, now: Date): string | null;
  /** Whether the engine may now submit what could complete the stage: a sign-off of it, or `advance`. */
  mayComplete(model: CaseModel, stage: number, now: Date): LegalVerdict;
  /**
   * The moment a deadline "by the end of" the local date `date` (YYYY-MM-DD) passes in the jurisdiction: 00:00
   * local of the day after, as the law's deadlines count. An amendment that moves a deadline to a date uses it.
   */
  endOfLocalDate(date: string): Date;
  /** The start (00:00 local) of the `days`th business day after `from`'s local date, in the jurisdiction's calendar. */
  businessDaysAfter(from: Date, days: number): Date;
}

export function createLegalGuard(workflow: Pick<CompiledWorkflow, "details" | "calendar" | "timeZone">): LegalGuard {
  const calendar: Calendar = getCalendar(workflow.calendar, workflow.timeZone);
  const waits = workflow.details.map((stage) => (stage.wait === undefined ? undefined : duration(stage.wait)));
  const deadlines = workflow.details.map((stage) =>
    stage.deadline === undefined ? undefined : duration(stage.deadline.within),
  );
  const longStops = workflow.details.map((stage) =>
    stage.longStop === undefined ? undefined : duration(stage.longStop.within),
  );

  // Every progress asks for every stage's moments; the calendar's answer for the same rule and second is
  // always the same, and finding it walks local dates through Intl, so each answer is kept (in ms).
  const remembered = new Map<string, number>();
  function remember(key: string, compute: () => Date): Date {
    let ms = remembered.get(key);
    if (ms === undefined) {
      if (remembered.size >= MAX_REMEMBERED) remembered.clear();
      ms = compute().getTime();
      remembered.set(key, ms);
    }
    return new Date(ms);
  }

  function legalMomentOf(model: CaseModel, stage: number): Date | null | undefined {
    const wait = waits[stage];
    if (wait === undefined) return undefined;
    const start = unlockedAt(model, stage);
    if (start === null) return null;
    if (wait.unit === "business-days")
      return remember(`wait:${wait.amount}:${start}`, () =>
        calendar.addBusinessDays(new Date(start * 1000), wait.amount),
      );
    // Calendar days and hours are exact spans: the law and the contract agree to the second.
    const seconds = wait.amount * (wait.unit === "days" ? 86_400 : 3_600);
    return new Date((start + seconds) * 1000);
  }

  /** The end of "within `within`" counted from `anchor` (chain seconds). */
  function endOf(within: Duration, anchor: number): Date {
    const from = new Date(anchor * 1000);
    switch (within.unit) {
      case "business-days":
        return remember(`within-business:${within.amount}:${anchor}`, () =>
          calendar.startOfDayAfter(calendar.addBusinessDays(from, within.amount), 1),
        );
      case "days":
        return remember(`within-days:${within.amount}:${anchor}`, () =>
          calendar.startOfDayAfter(from, within.amount + 1),
        );
      case "hours":
        return new Date((anchor + within.amount * 3_600) * 1000);
    }
  }

  function legalDeadlineOf(model: CaseModel, stage: number): Date | null | undefined {
    const own = deadlines[stage];
    const longStop = longStops[stage];
    if (own === undefined && longStop === undefined) return undefined;
    const running: Date[] = [];
    // A deadline an amendment moved is the moment the parties agreed, exactly: nothing is counted from it.
    const moved = model.movedDeadlines?.[stage];
    if (moved?.longStop != null) running.push(new Date(moved.longStop * 1000));
    else if (longStop !== undefined) running.push(endOf(longStop, model.openedAt));
    if (moved?.own != null) running.push(new Date(moved.own * 1000));
    else if (own !== undefined) {
      const anchorStage = model.rules[stage].deadlineAnchor;
      const anchor = anchorStage === 0 ? model.openedAt : model.completedAt[anchorStage - 1];
      if (anchor !== null) running.push(endOf(own, anchor));
    }
    if (running.length === 0) return null;
    return new Date(Math.min(...running.map((d) => d.getTime())));
  }

  function waitsFor(model: CaseModel, stage: number, now: Date): string | null {
    const wait = workflow.details[stage].wait;
    const moment = legalMomentOf(model, stage);
    if (moment === undefined || wait === undefined) return null;
    if (moment === null) {
      const open = indexesOf(model.rules[stage].prerequisites).filter((p) => !isCompleted(model, p));
      return `${open.map((p) => workflow.details[p].title).join(" and ")}, then ${wait}`;
    }
    if (now.getTime() >= moment.getTime()) return null;
    return `${wait} from ${lastPrerequisiteTitle(model, stage)} (until ${moment.toISOString()})`;
  }

  /** The title of the prerequisite that completed last (the one the waiting time counts from), or "the opening". */
  function lastPrerequisiteTitle(model: CaseModel, stage: number): string {
    let last: number | null = null;
    for (const p of indexesOf(model.rules[stage].prerequisites)) {
      if (last === null || (model.completedAt[p] as number) >= (model.completedAt[last] as number)) last = p;
    }
    return last === null || (model.completedAt[last] as number) < model.openedAt
      ? "the opening"
      : workflow.details[last].title;
  }

  function mayComplete(model: CaseModel, stage: number, now: Date): LegalVerdict {
    const moment = legalMomentOf(model, stage);
    if (moment === undefined || (moment !== null && now.getTime() >= moment.getTime())) return { allowed: true };
    const title = workflow.details[stage].title;
    const wait = workflow.details[stage].wait;
    const words = waitsFor(model, stage, now) as string;
    if (moment === null) {
      return {
        allowed: false,
        availableAt: null,
        waitsFor: words,
        reason: `"${title}" waits ${wait} after its prerequisites, which are not all complete yet: it waits for ${words}`,
      };
    }
    return {
      allowed: false,
      availableAt: moment,
      waitsFor: words,
      reason: `"${title}" waits ${wait}: possible from ${moment.toISOString()}`,
    };
  }

  function endOfLocalDate(date: string): Date {
    // Noon UTC falls on the same local date in every zone a workflow here uses (UTC-5 to UTC+1).
    return calendar.startOfDayAfter(new Date(`${date}T12:00:00Z`), 1);
  }

  const businessDaysAfter = (from: Date, days: number) => calendar.addBusinessDays(from, days);

  return {
    timeZone: calendar.timeZone,
    legalMomentOf,
    legalDeadlineOf,
    waitsFor,
    mayComplete,
    endOfLocalDate,
    businessDaysAfter,
  };
}
