/**
 * Where local dates meet instants, through Node's built-in Intl (no time-zone library).
 *
 * A local day is not always 24 hours: on the day clocks go forward it is 23, on the day they go back 25.
 * So the start of a local day is never computed as "the previous start plus 24 hours"; each one is found
 * from the offset in force at that moment.
 */
import { dayNumberOf, type DayNumber } from "./local-dates";

const MS_PER_DAY = 86_400_000;
const MS_PER_HOUR = 3_600_000;

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    // Throws a RangeError for a zone that Intl does not know, which is the error a caller should see.
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Throws a RangeError unless Intl knows the zone. */
export function assertKnownTimeZone(timeZone: string): void {
  formatterFor(timeZone);
}

// en-US with these options always formats as "MM/DD/YYYY, HH:MM:SS". Parsing that string is about five
// times faster than formatToParts, which matters when the span bounds walk a century of days.
const WALL_CLOCK_PATTERN = /^(\d{2})\/(\d{2})\/(\d{4}), (\d{2}):(\d{2}):(\d{2})$/;

function wallClockAt(instantMs: number, timeZone: string): WallClock {
  const text = formatterFor(timeZone).format(instantMs);
  const match = WALL_CLOCK_PATTERN.exec(text);
  if (match === null) throw new Error(`unexpected Intl output for ${timeZone}: ${JSON.stringify(text)}`);
  return {
    month: Number(match[1]),
    day: Number(match[2]),
    year: Number(match[3]),
    hour: Number(match[4]),
    minute: Number(match[5]),
    second: Number(match[6]),
  };
}

/** The zone's offset from UTC at an instant, in milliseconds (positive east of Greenwich). */
function offsetAt(instantMs: number, timeZone: string): number {
  const wall = wallClockAt(instantMs, timeZone);
  const wallAsUtc =
    dayNumberOf(wall.year, wall.month, wall.day) * MS_PER_DAY +
    ((wall.hour * 60 + wall.minute) * 60 + wall.second) * 1000;
  const instantInWholeSeconds = instantMs - (((instantMs % 1000) + 1000) % 1000);
  return wallAsUtc - instantInWholeSeconds;
}

/** The local date, in the zone, of an instant. */
export function localDayOf(instantMs: number, timeZone: string): DayNumber {
  const wall = wallClockAt(instantMs, timeZone);
  return dayNumberOf(wall.year, wall.month, wall.day);
}

/**
 * The instant a local date begins in the zone: 00:00 local time, or the first moment of the date where a
 * zone's clocks skip midnight. (Where a zone turns its clocks back across midnight, which neither zone here
 * does, midnight happens twice and either may be returned.)
 */
export function startOfLocalDay(dayNumber: DayNumber, timeZone: string): number {
  const midnightAsIfUtc = dayNumber * MS_PER_DAY;
  // Local midnight is midnightAsIfUtc minus the offset in force at local midnight. Callers mostly ask for
  // day after day, so the offset found last time is the best first guess (one Intl call, and Intl is the
  // slow part when the span bounds walk a century); every guess is checked, so a wrong one costs only time.
  const remembered = lastOffsetSeen.get(timeZone);
  if (remembered !== undefined && isLocalMidnightOf(midnightAsIfUtc - remembered, dayNumber, timeZone)) {
    return midnightAsIfUtc - remembered;
  }
  // Otherwise take the offset a few hours away, then, if a change lies in between, the offset at that guess.
  let guess = midnightAsIfUtc - offsetAt(midnightAsIfUtc, timeZone);
  if (!isLocalMidnightOf(guess, dayNumber, timeZone)) guess = midnightAsIfUtc - offsetAt(guess, timeZone);
  const start = isLocalMidnightOf(guess, dayNumber, timeZone)
    ? guess
    : firstInstantOnOrAfterLocalDay(dayNumber, timeZone);
  lastOffsetSeen.set(timeZone, midnightAsIfUtc - start);
  return start;
}

const lastOffsetSeen = new Map<string, number>();

function isLocalMidnightOf(instantMs: number, dayNumber: DayNumber, timeZone: string): boolean {
  const wall = wallClockAt(instantMs, timeZone);
  return (
    wall.hour === 0 &&
    wall.minute === 0 &&
    wall.second === 0 &&
    dayNumberOf(wall.year, wall.month, wall.day) === dayNumber
  );
}

/**
 * For zones whose clocks jump over midnight (none in the calendars here, but Intl knows such zones):
 * a binary search, to the millisecond, for the first instant whose local date is the given one.
 */
function firstInstantOnOrAfterLocalDay(dayNumber: DayNumber, timeZone: string): number {
  // Every offset in use lies within ±15 hours; a day of margin either side is beyond doubt.
  let before = dayNumber * MS_PER_DAY - 15 * MS_PER_HOUR - MS_PER_DAY;
  let onOrAfter = dayNumber * MS_PER_DAY + 15 * MS_PER_HOUR + MS_PER_DAY;
  while (onOrAfter - before > 1) {
    const middle = Math.floor((before + onOrAfter) / 2);
    if (localDayOf(middle, timeZone) >= dayNumber) onOrAfter = middle;
    else before = middle;
  }
  return onOrAfter;
}
