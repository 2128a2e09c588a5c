/**
 * Calendar dates with no time of day and no time zone ("2024-12-25"), as whole day numbers: the days since
 * 1970-01-01 in the proleptic Gregorian calendar. Arithmetic on day numbers is plain integer arithmetic,
 * so adding a day can never be thrown off by a daylight-saving change; the time zone enters only where a
 * date is turned into an instant (see time-zones.ts).
 */

/** Days since 1970-01-01 (a Thursday). */
export type DayNumber = number;

const MS_PER_DAY = 86_400_000;

export const SUNDAY = 0;
export const MONDAY = 1;
export const THURSDAY = 4;
export const FRIDAY = 5;
export const SATURDAY = 6;

export function dayNumberOf(year: number, month: number, day: number): DayNumber {
  // Date.UTC reads two-digit years as 19xx; setUTCFullYear does not.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return Math.round(date.getTime() / MS_PER_DAY);
}

export function yearMonthDayOf(dayNumber: DayNumber): { year: number; month: number; day: number } {
  const date = new Date(dayNumber * MS_PER_DAY);
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

/** 0 = Sunday ... 6 = Saturday, as Date.getDay. */
export function weekdayOf(dayNumber: DayNumber): number {
  // 1970-01-01 was a Thursday; the double modulo keeps days before 1970 in range.
  return (((dayNumber + THURSDAY) % 7) + 7) % 7;
}

/** "YYYY-MM-DD", the form the Calendar interface speaks. */
export function formatDate(dayNumber: DayNumber): string {
  const { year, month, day } = yearMonthDayOf(dayNumber);
  return `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

/** Parses "YYYY-MM-DD" strictly: a date that does not exist (2023-02-29) is an error, not March 1st. */
export function parseDate(text: string): DayNumber {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (match === null) throw new RangeError(`not a date in the form YYYY-MM-DD: ${JSON.stringify(text)}`);
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const dayNumber = dayNumberOf(year, month, day);
  if (formatDate(dayNumber) !== text) throw new RangeError(`no such date: ${text}`);
  return dayNumber;
}

/** The nth (1 = first) given weekday of a month, e.g. the 3rd Monday of January. */
export function nthWeekdayOfMonth(year: number, month: number, weekday: number, nth: number): DayNumber {
  const first = dayNumberOf(year, month, 1);
  return first + ((weekday - weekdayOf(first) + 7) % 7) + 7 * (nth - 1);
}

/** The last given weekday of a month, e.g. the last Monday of May. */
export function lastWeekdayOfMonth(year: number, month: number, weekday: number): DayNumber {
  const last = dayNumberOf(year, month + 1, 1) - 1;
  return last - ((weekdayOf(last) - weekday + 7) % 7);
}
