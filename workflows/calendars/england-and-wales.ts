/**
 * Working days in England and Wales: every day except Saturdays, Sundays and the bank holidays of the
 * Banking and Financial Dealings Act 1971 (with New Year's Day and Easter Monday by proclamation, as every
 * year since 1974 and 1978), with their substitute days, and the one-off changes in PROCLAMATIONS.
 */
import type { Calendar } from "./calendar";
import { createCalendar, type HolidayRuleResult } from "./business-days";
import { easterSunday } from "./easter";
import { PROCLAMATIONS } from "./england-and-wales-proclamations";
import {
  dayNumberOf,
  FRIDAY,
  lastWeekdayOfMonth,
  MONDAY,
  nthWeekdayOfMonth,
  parseDate,
  SATURDAY,
  SUNDAY,
  weekdayOf,
  yearMonthDayOf,
  type DayNumber,
} from "./local-dates";

// The Early May bank holiday was first kept in 1978; from then on the rules below are the law.
const FIRST_YEAR = 1978;

const SUBSTITUTE = " (substitute day)";

/** The bank holidays that the standing rules give a year, before any proclamation. */
function regularBankHolidays(year: number): HolidayRuleResult[] {
  const easter = easterSunday(year);
  return [
    newYearsDay(year),
    { day: easter - 2, name: "Good Friday" },
    { day: easter + 1, name: "Easter Monday" },
    { day: nthWeekdayOfMonth(year, 5, MONDAY, 1), name: "Early May bank holiday" },
    { day: lastWeekdayOfMonth(year, 5, MONDAY), name: "Spring bank holiday" },
    { day: lastWeekdayOfMonth(year, 8, MONDAY), name: "Summer bank holiday" },
    ...christmasAndBoxingDay(year),
  ];
}

/** On a Saturday or Sunday, New Year's Day is kept on the Monday after. */
function newYearsDay(year: number): HolidayRuleResult {
  const day = dayNumberOf(year, 1, 1);
  const weekday = weekdayOf(day);
  if (weekday === SATURDAY) return { day: day + 2, name: "New Year's Day" + SUBSTITUTE };
  if (weekday === SUNDAY) return { day: day + 1, name: "New Year's Day" + SUBSTITUTE };
  return { day, name: "New Year's Day" };
}

/**
 * Christmas Day and Boxing Day are two days off, so a weekend pushes them onto the next weekdays that are
 * not already taken: Christmas on a Friday moves Boxing Day to Monday 28th; on a Saturday both move, to
 * Monday 27th and Tuesday 28th; on a Sunday Boxing Day stays on Monday 26th and Christmas moves to Tuesday 27th.
 */
function christmasAndBoxingDay(year: number): HolidayRuleResult[] {
  const christmas = dayNumberOf(year, 12, 25);
  switch (weekdayOf(christmas)) {
    case FRIDAY:
      return [
        { day: christmas, name: "Christmas Day" },
        { day: christmas + 3, name: "Boxing Day" + SUBSTITUTE },
      ];
    case SATURDAY:
      return [
        { day: christmas + 2, name: "Christmas Day" + SUBSTITUTE },
        { day: christmas + 3, name: "Boxing Day" + SUBSTITUTE },
      ];
    case SUNDAY:
      return [
        { day: christmas + 1, name: "Boxing Day" },
        { day: christmas + 2, name: "Christmas Day" + SUBSTITUTE },
      ];
    default:
      return [
        { day: christmas, name: "Christmas Day" },
        { day: christmas + 1, name: "Boxing Day" },
      ];
  }
}

/** The bank holidays of a year: the standing rules with that year's proclamations applied. */
function bankHolidays(year: number): HolidayRuleResult[] {
  const holidays = regularBankHolidays(year);
  for (const proclamation of PROCLAMATIONS) {
    if (proclamation.kind === "added") {
      const day = parseDate(proclamation.date);
      if (yearOf(day) === year) holidays.push({ day, name: proclamation.name });
    } else {
      const from = parseDate(proclamation.from);
      if (yearOf(from) !== year) continue;
      const moved = holidays.find((holiday) => holiday.day === from && holiday.name === proclamation.name);
      if (moved === undefined) {
        throw new Error(`proclamation table: the rules give no ${proclamation.name} on ${proclamation.from}`);
      }
      moved.day = parseDate(proclamation.to);
      moved.name = proclamation.newName;
    }
  }
  return holidays;
}

function yearOf(day: DayNumber): number {
  return yearMonthDayOf(day).year;
}

// Check the table against the rules once, at load, so that a wrong entry fails at start and not on the
// day someone first asks about that year.
for (const proclamation of PROCLAMATIONS)
  bankHolidays(yearOf(parseDate(proclamation.kind === "added" ? proclamation.date : proclamation.from)));

/** England and Wales working days, counted in the given zone's local dates (by default UK time). */
export function englandAndWalesCalendar(timeZone = "Europe/London"): Calendar {
  return createCalendar({
    name: "england-and-wales",
    timeZone,
    restDays: [SATURDAY, SUNDAY],
    firstYear: FIRST_YEAR,
    holidaysOf: bankHolidays,
  });
}
