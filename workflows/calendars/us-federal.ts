/**
 * The US federal calendar for TRID (Regulation Z, 12 CFR 1026.2(a)(6)): the "specific" business day is
 * every calendar day except Sundays and the legal public holidays of 5 U.S.C. 6103(a). Saturdays count.
 *
 * Holidays are kept on their ACTUAL dates, not the days federal offices observe them: the official
 * commentary (comment 2(a)(6)-2) says that when a holiday falls on a Saturday or Sunday and is observed on
 * the Friday or Monday, the observed day is still a business day (and a Saturday holiday is not).
 */
import type { Calendar } from "./calendar";
import { createCalendar, type HolidayRuleResult } from "./business-days";
import { dayNumberOf, lastWeekdayOfMonth, MONDAY, nthWeekdayOfMonth, SUNDAY, THURSDAY } from "./local-dates";

// The Monday Holiday Act's dates took effect in 1971, and Veterans Day returned to November 11 in 1978;
// from then on the rules below (with their own start years) are the law.
const FIRST_YEAR = 1978;
const FIRST_YEAR_OF_MARTIN_LUTHER_KING_DAY = 1986;
const FIRST_YEAR_OF_JUNETEENTH = 2021; // enacted 17 June 2021, first kept 19 June 2021

function usFederalHolidays(year: number): HolidayRuleResult[] {
  const holidays: HolidayRuleResult[] = [{ day: dayNumberOf(year, 1, 1), name: "New Year's Day" }];
  if (year >= FIRST_YEAR_OF_MARTIN_LUTHER_KING_DAY) {
    holidays.push({ day: nthWeekdayOfMonth(year, 1, MONDAY, 3), name: "Birthday of Martin Luther King, Jr." });
  }
  holidays.push(
    { day: nthWeekdayOfMonth(year, 2, MONDAY, 3), name: "Washington's Birthday" },
    { day: lastWeekdayOfMonth(year, 5, MONDAY), name: "Memorial Day" },
  );
  if (year >= FIRST_YEAR_OF_JUNETEENTH) {
    holidays.push({ day: dayNumberOf(year, 6, 19), name: "Juneteenth National Independence Day" });
  }
  holidays.push(
    { day: dayNumberOf(year, 7, 4), name: "Independence Day" },
    { day: nthWeekdayOfMonth(year, 9, MONDAY, 1), name: "Labor Day" },
    { day: nthWeekdayOfMonth(year, 10, MONDAY, 2), name: "Columbus Day" },
    { day: dayNumberOf(year, 11, 11), name: "Veterans Day" },
    { day: nthWeekdayOfMonth(year, 11, THURSDAY, 4), name: "Thanksgiving Day" },
    { day: dayNumberOf(year, 12, 25), name: "Christmas Day" },
  );
  return holidays;
}

/** TRID's specific business days, counted in the given zone's local dates (by default the US Eastern zone). */
export function usFederalCalendar(timeZone = "America/New_York"): Calendar {
  return createCalendar({
    name: "us-federal",
    timeZone,
    restDays: [SUNDAY],
    firstYear: FIRST_YEAR,
    holidaysOf: usFederalHolidays,
  });
}
