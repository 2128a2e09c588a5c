import type { Calendar } from "./calendar";
import { englandAndWalesCalendar } from "./england-and-wales";
import { usFederalCalendar } from "./us-federal";

export type { Calendar } from "./calendar";
export type { Holiday } from "./business-days";
export { englandAndWalesCalendar } from "./england-and-wales";
export { usFederalCalendar } from "./us-federal";

export const CALENDAR_NAMES = ["us-federal", "england-and-wales"] as const;
export type CalendarName = (typeof CALENDAR_NAMES)[number];

const factories: Record<CalendarName, (timeZone?: string) => Calendar> = {
  "us-federal": usFederalCalendar,
  "england-and-wales": englandAndWalesCalendar,
};

// One instance per name and zone: each keeps its holidays and span bounds, which are worth computing once.
const calendars = new Map<string, Calendar>();

/** The calendar of a jurisdiction, in its own time zone unless another is given. */
export function getCalendar(name: CalendarName, timeZone?: string): Calendar {
  if (!Object.hasOwn(factories, name))
    throw new RangeError(`no calendar named ${JSON.stringify(name)}; known: ${CALENDAR_NAMES.join(", ")}`);
  const key = `${name}\u0000${timeZone ?? ""}`;
  let calendar = calendars.get(key);
  if (calendar === undefined) {
    calendar = factories[name](timeZone);
    calendars.set(key, calendar);
  }
  return calendar;
}
