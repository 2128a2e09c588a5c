/**
 * A business-day calendar: which days count, in which time zone, and what a rule of "N business days"
 * means as an exact moment (for the engine's legal guard) and as a span in seconds (for the contract).
 *
 * The contract keeps time in seconds, so a business-day rule goes on chain as a bound that can never be
 * wrong: a waiting time as its floor (the shortest span it can ever be, so the contract never holds up
 * what the law allows), a deadline as its ceiling (the longest span, so the contract never expires a case
 * that the law still allows to complete). The exact moment is the engine's to keep.
 */
export interface Calendar {
  /** A stable name: "us-federal" (TRID), "england-and-wales". */
  readonly name: string;
  /** The IANA time zone whose local dates the rules count in, e.g. "America/New_York", "Europe/London". */
  readonly timeZone: string;
  /** Whether a local date (YYYY-MM-DD) is a business day. */
  isBusinessDay(date: string): boolean;
  /** The holidays of a year, as local dates (YYYY-MM-DD) with their names, in date order. */
  holidays(year: number): Array<{ date: string; name: string }>;
  /**
   * The earliest moment at which "N business days after `from`" has passed: the start (00:00 local time)
   * of the Nth business day after `from`'s local date. N = 0 gives `from` itself.
   */
  addBusinessDays(from: Date, businessDays: number): Date;
  /** The start (00:00 local time) of the local date `days` days after `from`'s local date; 0 gives the start of that date. */
  startOfDayAfter(from: Date, days: number): Date;
  /** The shortest span, in whole seconds, that "N business days after" can ever be (rounded down). */
  floorSeconds(businessDays: number): number;
  /** The longest span, in whole seconds, that "N business days after" can ever be (rounded up). */
  ceilingSeconds(businessDays: number): number;
}
