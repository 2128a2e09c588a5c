import type { Calendar } from "./calendars/calendar";

/**
 * Durations as a definition writes them: "3 business days", "30 working days", "180 days", "14 days",
 * "2 weeks", "12 hours". Business and working days are the same unit: the days that the definition's
 * calendar counts (TRID's business days in "us-federal", working days in "england-and-wales").
 * Calendar days and weeks are counted as elapsed 24-hour days, and hours as elapsed hours, so their span in
 * seconds is exact; only business days have a span that depends on where in the calendar they fall.
 */
export type DurationUnit = "business-days" | "days" | "hours";

export interface Duration {
  amount: number;
  unit: DurationUnit;
}

export type ParsedDuration = { ok: true; duration: Duration } | { ok: false; message: string };

const SECONDS_PER: Record<Exclude<DurationUnit, "business-days">, number> = { days: 86_400, hours: 3_600 };

const UNIT_WORDS: Array<{ pattern: RegExp; unit: DurationUnit; factor: number }> = [
  { pattern: /^(business|working) days?$/, unit: "business-days", factor: 1 },
  { pattern: /^(calendar )?days?$/, unit: "days", factor: 1 },
  { pattern: /^weeks?$/, unit: "days", factor: 7 },
  { pattern: /^hours?$/, unit: "hours", factor: 1 },
];

/** The longest span any rule may have: the contract keeps seconds in 32 bits (about 136 years). */
export const MAX_SECONDS = 2 ** 32 - 1;

export function parseDuration(text: string): ParsedDuration {
  const match = /^\s*(\d+)\s+([a-z ]+?)\s*$/i.exec(text);
  const hint =
    'write a whole number and a unit, such as "3 business days", "30 working days", "180 days", "2 weeks" or "12 hours"';
  if (!match) return { ok: false, message: `cannot read the duration ${JSON.stringify(text)}: ${hint}` };
  const amount = Number(match[1]);
  const words = match[2].toLowerCase().replace(/\s+/g, " ");
  const unit = UNIT_WORDS.find((u) => u.pattern.test(words));
  if (!unit)
    return { ok: false, message: `unknown unit ${JSON.stringify(match[2])} in ${JSON.stringify(text)}: ${hint}` };
  if (amount === 0)
    return { ok: false, message: `the duration ${JSON.stringify(text)} is zero: leave the rule out instead` };
  const total = amount * unit.factor;
  if (!Number.isSafeInteger(total) || total > 1_000_000) {
    return { ok: false, message: `the duration ${JSON.stringify(text)} is too long` };
  }
  return { ok: true, duration: { amount: total, unit: unit.unit } };
}

/** Parses a duration that a schema has already checked; throws on text that is not one. */
export function duration(text: string): Duration {
  const parsed = parseDuration(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.duration;
}

/** The one way each duration is written in a normalised definition: "2 weeks" becomes "14 days". */
export function formatDuration({ amount, unit }: Duration): string {
  const word = { "business-days": "business day", days: "day", hours: "hour" }[unit];
  return `${amount} ${word}${amount === 1 ? "" : "s"}`;
}

/** A day in local time lasts at most 25 hours (the day the clocks go back). */
export const LONGEST_LOCAL_DAY_SECONDS = 25 * 3_600;

/**
 * A waiting time on chain: the shortest span the rule can ever be, so that the contract never holds up a step
 * that the law allows. "N business days" is the calendar's floor (the moment is the start of the Nth business
 * day after, in the calendar's time zone); "N days" and "N hours" are elapsed time, exact.
 */
export function waitFloorSeconds(d: Duration, calendar: Calendar): number {
  return d.unit === "business-days" ? calendar.floorSeconds(d.amount) : d.amount * SECONDS_PER[d.unit];
}

/**
 * A deadline on chain: the longest span the rule can ever be, so that the contract never expires a case that
 * the law still allows to complete. "Within N business days" and "within N days" run to the END of the Nth
 * (business) day after the anchor's local date, in the calendar's time zone, as the law counts them (the
 * Loan Estimate is due by the third business day after the application; the SDLT return within 14 days after
 * completion, the 14th day included). That end is at most one local day (25 hours) after the start of that
 * day, whose longest span from the anchor is the calendar's ceiling for business days, and N + 1 local days
 * from the start of the anchor's date for calendar days. "Within N hours" is elapsed time, exact.
 */
export function deadlineCeilingSeconds(d: Duration, calendar: Calendar): number {
  switch (d.unit) {
    case "business-days":
      return calendar.ceilingSeconds(d.amount) + LONGEST_LOCAL_DAY_SECONDS;
    case "days":
      return d.amount * SECONDS_PER.days + LONGEST_LOCAL_DAY_SECONDS;
    case "hours":
      return d.amount * SECONDS_PER.hours;
  }
}
