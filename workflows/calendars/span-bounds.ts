/**
 * The floor and the ceiling, in seconds, of "N business days after": what the contract enforces in place
 * of the exact legal moment, which it cannot compute (it keeps time in seconds and knows no calendar).
 *
 * How they are bounded. Take any `from` instant and call its local date D. Every `from` on D gives the
 * same answer, start(B), the start of the Nth business day B after D. As `from` runs over D, from
 * start(D) up to just before start(D + 1), the span start(B) - from therefore runs over
 *
 *     start(B) - start(D + 1)  <  span  <=  start(B) - start(D).
 *
 * The largest value is reached at `from` = 00:00 on D; the smallest is approached by `from` just before
 * midnight at the end of D and never quite reached. Starts of days are real instants from the time zone,
 * so 23- and 25-hour days (daylight saving) are counted as they are. Taking the minimum of the left side
 * and the maximum of the right side over every D gives:
 *
 * - floor = min over D of start(B) - start(D + 1), rounded down to a whole second. Every real span is at
 *   least this (strictly more, in fact), so a waiting time enforced as the floor never holds up a step
 *   that the law allows.
 * - ceiling = max over D of start(B) - start(D), rounded up. No real span exceeds it (the largest one
 *   equals it), so a deadline enforced as the ceiling never expires a case that the law still allows.
 *
 * The scan covers every D from SCAN_FIRST_YEAR to SCAN_LAST_YEAR: a century long enough to hold every
 * weekday on which each fixed-date holiday can fall, late and early Easters, the one-off holidays in the
 * tables and both daylight-saving rules the zones have used since 2000. Years before 2000 are left out on
 * purpose: no case starts in the past, and a past oddity (the 1999 millennium holiday) would only widen
 * the ceilings for nothing. The bounds hold for the calendar as it is known today: a holiday proclaimed
 * later, or a change to a zone's rules, needs the bounds computed again (and the templates that use them).
 */
import { dayNumberOf, type DayNumber } from "./local-dates";

export const SCAN_FIRST_YEAR = 2000;
export const SCAN_LAST_YEAR = 2099;

export interface SpanBounds {
  floorSeconds: number;
  ceilingSeconds: number;
}

export function createSpanBounds(
  isBusinessDay: (day: DayNumber) => boolean,
  startOfDay: (day: DayNumber) => number,
): (businessDays: number) => SpanBounds {
  const firstDay = dayNumberOf(SCAN_FIRST_YEAR, 1, 1);
  const scannedDayCount = dayNumberOf(SCAN_LAST_YEAR + 1, 1, 1) - firstDay;
  // Indexed by day - firstDay. Built on first use (it takes a fraction of a second) and kept, then
  // extended past the scanned century as far as the largest N asked for needs.
  const startsOfDays: number[] = [];
  const businessDayIndices: number[] = [];
  const businessDaysThrough: number[] = []; // how many of the days up to and including this one are business days
  const boundsByCount = new Map<number, SpanBounds>();

  function appendDay(): void {
    const index = startsOfDays.length;
    startsOfDays.push(startOfDay(firstDay + index));
    if (isBusinessDay(firstDay + index)) businessDayIndices.push(index);
    businessDaysThrough.push(businessDayIndices.length);
  }

  return function spanBounds(businessDays: number): SpanBounds {
    if (businessDays === 0) return { floorSeconds: 0, ceilingSeconds: 0 };
    const cached = boundsByCount.get(businessDays);
    if (cached !== undefined) return cached;

    while (startsOfDays.length < scannedDayCount) appendDay();
    // The last scanned day needs N business days after it, and the day after it for the floor.
    const businessDaysInScan = businessDaysThrough[scannedDayCount - 1];
    while (businessDayIndices.length < businessDaysInScan + businessDays || startsOfDays.length <= scannedDayCount)
      appendDay();

    let shortest = Infinity;
    let longest = -Infinity;
    for (let index = 0; index < scannedDayCount; index += 1) {
      const target = businessDayIndices[businessDaysThrough[index] + businessDays - 1];
      shortest = Math.min(shortest, startsOfDays[target] - startsOfDays[index + 1]);
      longest = Math.max(longest, startsOfDays[target] - startsOfDays[index]);
    }
    const bounds = { floorSeconds: Math.floor(shortest / 1000), ceilingSeconds: Math.ceil(longest / 1000) };
    boundsByCount.set(businessDays, bounds);
    return bounds;
  };
}
