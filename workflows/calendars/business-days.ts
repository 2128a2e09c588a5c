/**
 * The logic every business-day calendar shares: a calendar is its rest days, its holidays and its time
 * zone; counting business days, finding the exact moment of "N business days after", and bounding that
 * span in seconds follow from those three the same way in every jurisdiction.
 */
import type { Calendar } from "./calendar";
import { formatDate, parseDate, weekdayOf, yearMonthDayOf, type DayNumber } from "./local-dates";
import { createSpanBounds } from "./span-bounds";
import { assertKnownTimeZone, localDayOf, startOfLocalDay } from "./time-zones";

export type Holiday = { date: string; name: string };

/** A holiday as the rules produce it: a day number rather than a string, so it can be compared and counted. */
export interface HolidayRuleResult {
  day: DayNumber;
  name: string;
}

export interface CalendarRules {
  readonly name: string;
  readonly timeZone: string;
  /** Weekdays that are never business days, 0 = Sunday ... 6 = Saturday. */
  readonly restDays: readonly number[];
  /** The first year whose holidays the rules get right; earlier years are refused rather than guessed. */
  readonly firstYear: number;
  /** The holidays that fall in a year, in any order. */
  holidaysOf(year: number): HolidayRuleResult[];
}

export function createCalendar(rules: CalendarRules): Calendar {
  assertKnownTimeZone(rules.timeZone);
  const restDays = new Set(rules.restDays);
  const holidaysByYear = new Map<number, { list: Holiday[]; days: Set<DayNumber> }>();

  function holidaysOfYear(year: number): { list: Holiday[]; days: Set<DayNumber> } {
    let holidays = holidaysByYear.get(year);
    if (holidays === undefined) {
      if (!Number.isSafeInteger(year) || year < rules.firstYear || year > 9999) {
        throw new RangeError(`the ${rules.name} calendar knows the years ${rules.firstYear} to 9999, not ${year}`);
      }
      const sorted = rules.holidaysOf(year).sort((a, b) => a.day - b.day);
      holidays = {
        list: sorted.map(({ day, name }) => ({ date: formatDate(day), name })),
        days: new Set(sorted.map(({ day }) => day)),
      };
      holidaysByYear.set(year, holidays);
    }
    return holidays;
  }

  function isBusinessDayNumber(day: DayNumber): boolean {
    if (restDays.has(weekdayOf(day))) return false;
    return !holidaysOfYear(yearMonthDayOf(day).year).days.has(day);
  }

  const spanBounds = createSpanBounds(isBusinessDayNumber, (day) => startOfLocalDay(day, rules.timeZone));

  return {
    name: rules.name,
    timeZone: rules.timeZone,

    isBusinessDay(date: string): boolean {
      return isBusinessDayNumber(parseDate(date));
    },

    holidays(year: number): Holiday[] {
      // A copy, so that a caller sorting or trimming its list cannot change the calendar's.
      return holidaysOfYear(year).list.map((holiday) => ({ ...holiday }));
    },

    addBusinessDays(from: Date, businessDays: number): Date {
      assertBusinessDayCount(businessDays);
      const fromMs = from.getTime();
      if (Number.isNaN(fromMs)) throw new RangeError("addBusinessDays: `from` is an invalid Date");
      if (businessDays === 0) return new Date(fromMs);
      // Counting starts the day after `from`'s local date, whatever the time of day `from` has.
      let day = localDayOf(fromMs, rules.timeZone);
      let counted = 0;
      while (counted < businessDays) {
        day += 1;
        if (isBusinessDayNumber(day)) counted += 1;
      }
      return new Date(startOfLocalDay(day, rules.timeZone));
    },

    startOfDayAfter(from: Date, days: number): Date {
      if (!Number.isSafeInteger(days) || days < 0)
        throw new RangeError(`a number of days must be a whole number of at least 0, not ${days}`);
      const fromMs = from.getTime();
      if (Number.isNaN(fromMs)) throw new RangeError("startOfDayAfter: `from` is an invalid Date");
      return new Date(startOfLocalDay(localDayOf(fromMs, rules.timeZone) + days, rules.timeZone));
    },

    floorSeconds(businessDays: number): number {
      assertBusinessDayCount(businessDays);
      return spanBounds(businessDays).floorSeconds;
    },

    ceilingSeconds(businessDays: number): number {
      assertBusinessDayCount(businessDays);
      return spanBounds(businessDays).ceilingSeconds;
    },
  };
}

function assertBusinessDayCount(businessDays: number): void {
  if (!Number.isSafeInteger(businessDays) || businessDays < 0) {
    throw new RangeError(`a number of business days must be a whole number of at least 0, not ${businessDays}`);
  }
}
