import { expect } from "chai";
import fc from "fast-check";

import { englandAndWalesCalendar, getCalendar, usFederalCalendar, type Calendar } from "../../workflows/calendars";
import { easterSunday } from "../../workflows/calendars/easter";
import { formatDate, parseDate } from "../../workflows/calendars/local-dates";
import { SCAN_FIRST_YEAR, SCAN_LAST_YEAR } from "../../workflows/calendars/span-bounds";
import { localDayOf, startOfLocalDay } from "../../workflows/calendars/time-zones";

const HOUR = 3600;
const DAY = 24 * HOUR;

/**
 * The legal public holidays as OPM's federal holiday pages list them (opm.gov, "Pay & Leave", "Federal
 * Holidays"), but on their ACTUAL dates: where OPM lists an observed day, the actual date is written here
 * and the observed day is noted in the comment, because for TRID the observed day is a business day.
 */
const US_FEDERAL_HOLIDAYS: Record<number, string[]> = {
  // Independence Day on Saturday 4 July (observed Friday 3 July).
  2020: [
    "2020-01-01",
    "2020-01-20",
    "2020-02-17",
    "2020-05-25",
    "2020-07-04",
    "2020-09-07",
    "2020-10-12",
    "2020-11-11",
    "2020-11-26",
    "2020-12-25",
  ],
  // Juneteenth on Saturday (observed Friday 18 June), Independence Day on Sunday (observed Monday 5 July),
  // Christmas on Saturday (observed Friday 24 December); New Year's Day 2022 was observed on Friday 31 December 2021.
  2021: [
    "2021-01-01",
    "2021-01-18",
    "2021-02-15",
    "2021-05-31",
    "2021-06-19",
    "2021-07-04",
    "2021-09-06",
    "2021-10-11",
    "2021-11-11",
    "2021-11-25",
    "2021-12-25",
  ],
  // New Year's Day on Saturday, Juneteenth on Sunday (observed Monday 20 June), Christmas on Sunday (observed Monday 26 December).
  2022: [
    "2022-01-01",
    "2022-01-17",
    "2022-02-21",
    "2022-05-30",
    "2022-06-19",
    "2022-07-04",
    "2022-09-05",
    "2022-10-10",
    "2022-11-11",
    "2022-11-24",
    "2022-12-25",
  ],
  // New Year's Day on Sunday (observed Monday 2 January), Veterans Day on Saturday (observed Friday 10 November).
  2023: [
    "2023-01-01",
    "2023-01-16",
    "2023-02-20",
    "2023-05-29",
    "2023-06-19",
    "2023-07-04",
    "2023-09-04",
    "2023-10-09",
    "2023-11-11",
    "2023-11-23",
    "2023-12-25",
  ],
  2024: [
    "2024-01-01",
    "2024-01-15",
    "2024-02-19",
    "2024-05-27",
    "2024-06-19",
    "2024-07-04",
    "2024-09-02",
    "2024-10-14",
    "2024-11-11",
    "2024-11-28",
    "2024-12-25",
  ],
  2025: [
    "2025-01-01",
    "2025-01-20",
    "2025-02-17",
    "2025-05-26",
    "2025-06-19",
    "2025-07-04",
    "2025-09-01",
    "2025-10-13",
    "2025-11-11",
    "2025-11-27",
    "2025-12-25",
  ],
  // Independence Day on Saturday (observed Friday 3 July).
  2026: [
    "2026-01-01",
    "2026-01-19",
    "2026-02-16",
    "2026-05-25",
    "2026-06-19",
    "2026-07-04",
    "2026-09-07",
    "2026-10-12",
    "2026-11-11",
    "2026-11-26",
    "2026-12-25",
  ],
  // Juneteenth on Saturday (observed Friday 18 June), Independence Day on Sunday (observed Monday 5 July),
  // Christmas on Saturday (observed Friday 24 December).
  2027: [
    "2027-01-01",
    "2027-01-18",
    "2027-02-15",
    "2027-05-31",
    "2027-06-19",
    "2027-07-04",
    "2027-09-06",
    "2027-10-11",
    "2027-11-11",
    "2027-11-25",
    "2027-12-25",
  ],
};

/** The England and Wales bank holidays as gov.uk/bank-holidays lists them, substitute days and one-offs included. */
const ENGLAND_AND_WALES_BANK_HOLIDAYS: Record<number, string[]> = {
  // The early May bank holiday moved to Friday 8 May for VE Day; Boxing Day on Saturday, substitute Monday 28.
  2020: [
    "2020-01-01",
    "2020-04-10",
    "2020-04-13",
    "2020-05-08",
    "2020-05-25",
    "2020-08-31",
    "2020-12-25",
    "2020-12-28",
  ],
  // Christmas and Boxing Day on the weekend, substitutes Monday 27 and Tuesday 28.
  2021: [
    "2021-01-01",
    "2021-04-02",
    "2021-04-05",
    "2021-05-03",
    "2021-05-31",
    "2021-08-30",
    "2021-12-27",
    "2021-12-28",
  ],
  // New Year's Day on Saturday, substitute Monday 3 January; spring bank holiday moved to Thursday 2 June,
  // Platinum Jubilee Friday 3 June; the State Funeral on 19 September; Christmas on Sunday, substitute Tuesday 27.
  2022: [
    "2022-01-03",
    "2022-04-15",
    "2022-04-18",
    "2022-05-02",
    "2022-06-02",
    "2022-06-03",
    "2022-08-29",
    "2022-09-19",
    "2022-12-26",
    "2022-12-27",
  ],
  // New Year's Day on Sunday, substitute Monday 2 January; the coronation on Monday 8 May.
  2023: [
    "2023-01-02",
    "2023-04-07",
    "2023-04-10",
    "2023-05-01",
    "2023-05-08",
    "2023-05-29",
    "2023-08-28",
    "2023-12-25",
    "2023-12-26",
  ],
  2024: [
    "2024-01-01",
    "2024-03-29",
    "2024-04-01",
    "2024-05-06",
    "2024-05-27",
    "2024-08-26",
    "2024-12-25",
    "2024-12-26",
  ],
  2025: [
    "2025-01-01",
    "2025-04-18",
    "2025-04-21",
    "2025-05-05",
    "2025-05-26",
    "2025-08-25",
    "2025-12-25",
    "2025-12-26",
  ],
  // Boxing Day on Saturday, substitute Monday 28.
  2026: [
    "2026-01-01",
    "2026-04-03",
    "2026-04-06",
    "2026-05-04",
    "2026-05-25",
    "2026-08-31",
    "2026-12-25",
    "2026-12-28",
  ],
  // Christmas and Boxing Day on the weekend, substitutes Monday 27 and Tuesday 28.
  2027: [
    "2027-01-01",
    "2027-03-26",
    "2027-03-29",
    "2027-05-03",
    "2027-05-31",
    "2027-08-30",
    "2027-12-27",
    "2027-12-28",
  ],
};

/** Good Friday and Easter Monday, as gov.uk lists them. */
const GOOD_FRIDAY_AND_EASTER_MONDAY: Record<number, [string, string]> = {
  2020: ["2020-04-10", "2020-04-13"],
  2021: ["2021-04-02", "2021-04-05"],
  2022: ["2022-04-15", "2022-04-18"],
  2023: ["2023-04-07", "2023-04-10"],
  2024: ["2024-03-29", "2024-04-01"],
  2025: ["2025-04-18", "2025-04-21"],
  2026: ["2026-04-03", "2026-04-06"],
  2027: ["2027-03-26", "2027-03-29"],
};

function holidayDates(calendar: Calendar, year: number): string[] {
  return calendar.holidays(year).map((holiday) => holiday.date);
}

/** The span, in seconds, between `from` and the moment N business days after it. */
function spanSeconds(calendar: Calendar, from: Date, businessDays: number): number {
  return (calendar.addBusinessDays(from, businessDays).getTime() - from.getTime()) / 1000;
}

describe("workflows/calendars", function () {
  const usFederal = usFederalCalendar();
  const englandAndWales = englandAndWalesCalendar();

  describe("usFederalCalendar", function () {
    it("counts in New York time by default and in any zone it is given", function () {
      expect(usFederal.name).to.equal("us-federal");
      expect(usFederal.timeZone).to.equal("America/New_York");
      expect(usFederalCalendar("America/Los_Angeles").timeZone).to.equal("America/Los_Angeles");
    });

    it("refuses a time zone that Intl does not know", function () {
      expect(() => usFederalCalendar("America/Atlantis")).to.throw(RangeError);
    });

    describe("holidays", function () {
      for (const [year, dates] of Object.entries(US_FEDERAL_HOLIDAYS)) {
        it(`lists the legal public holidays of ${year} on OPM's dates, actual rather than observed`, function () {
          expect(holidayDates(usFederal, Number(year))).to.deep.equal(dates);
        });
      }

      it("names each holiday as 5 U.S.C. 6103 does", function () {
        expect(usFederal.holidays(2024).map((holiday) => holiday.name)).to.deep.equal([
          "New Year's Day",
          "Birthday of Martin Luther King, Jr.",
          "Washington's Birthday",
          "Memorial Day",
          "Juneteenth National Independence Day",
          "Independence Day",
          "Labor Day",
          "Columbus Day",
          "Veterans Day",
          "Thanksgiving Day",
          "Christmas Day",
        ]);
      });

      it("has no Juneteenth before 2021, the year it became a legal public holiday", function () {
        expect(holidayDates(usFederal, 2020)).not.to.include("2020-06-19");
        expect(holidayDates(usFederal, 2021)).to.include("2021-06-19");
      });

      it("has no Martin Luther King Jr. Day before 1986, the first year it was kept", function () {
        expect(usFederal.holidays(1985)).to.have.lengthOf(9);
        expect(holidayDates(usFederal, 1986)).to.include("1986-01-20");
      });

      it("refuses years before 1978 rather than guessing at the older rules", function () {
        expect(() => usFederal.holidays(1977)).to.throw(RangeError);
        expect(() => usFederal.isBusinessDay("1977-07-04")).to.throw(RangeError);
      });

      it("hands out a copy that a caller cannot use to change the calendar", function () {
        usFederal.holidays(2024).splice(0);
        expect(usFederal.holidays(2024)).to.have.lengthOf(11);
      });
    });

    describe("isBusinessDay", function () {
      it("counts Saturdays and not Sundays", function () {
        expect(usFederal.isBusinessDay("2024-06-08")).to.equal(true);
        expect(usFederal.isBusinessDay("2024-06-09")).to.equal(false);
      });

      it("does not count a holiday on its actual date, even on a Saturday", function () {
        expect(usFederal.isBusinessDay("2024-11-28")).to.equal(false); // Thanksgiving
        expect(usFederal.isBusinessDay("2021-12-25")).to.equal(false); // Christmas on a Saturday
        expect(usFederal.isBusinessDay("2023-11-11")).to.equal(false); // Veterans Day on a Saturday
      });

      it("counts the Friday or Monday on which a weekend holiday is observed, as Regulation Z's commentary says", function () {
        expect(usFederal.isBusinessDay("2021-12-24")).to.equal(true); // Christmas 2021 observed
        expect(usFederal.isBusinessDay("2021-12-31")).to.equal(true); // New Year's Day 2022 observed
        expect(usFederal.isBusinessDay("2021-07-05")).to.equal(true); // Independence Day 2021 observed
        expect(usFederal.isBusinessDay("2022-06-20")).to.equal(true); // Juneteenth 2022 observed
        expect(usFederal.isBusinessDay("2023-11-10")).to.equal(true); // Veterans Day 2023 observed
      });

      it("refuses a malformed date and a date that does not exist", function () {
        expect(() => usFederal.isBusinessDay("2024-6-3")).to.throw(RangeError);
        expect(() => usFederal.isBusinessDay("2023-02-29")).to.throw(RangeError);
      });
    });

    describe("addBusinessDays (TRID's three business days before consummation)", function () {
      function consummationAllowedFrom(receivedAt: string): string {
        return usFederal.addBusinessDays(new Date(receivedAt), 3).toISOString();
      }

      it("allows consummation on Thursday after a Closing Disclosure received on Monday (3 June 2024)", function () {
        expect(consummationAllowedFrom("2024-06-03T10:00:00-04:00")).to.equal("2024-06-06T04:00:00.000Z");
      });

      it("allows consummation on Monday after Thursday, because the Saturday between counts (6 to 10 June 2024)", function () {
        expect(consummationAllowedFrom("2024-06-06T15:00:00-04:00")).to.equal("2024-06-10T04:00:00.000Z");
      });

      it("skips Sunday and Memorial Day but counts Saturday: received Friday 24 May 2024, consummation Wednesday 29 May", function () {
        expect(consummationAllowedFrom("2024-05-24T12:00:00-04:00")).to.equal("2024-05-29T04:00:00.000Z");
      });

      it("counts Monday 5 July 2021, when the Sunday Independence Day was observed: received Friday 2 July, consummation Tuesday 6 July", function () {
        expect(consummationAllowedFrom("2021-07-02T12:00:00-04:00")).to.equal("2021-07-06T04:00:00.000Z");
      });

      it("counts Friday 3 July 2020, when the Saturday Independence Day was observed, but not the Saturday itself: received Thursday 2 July, consummation Tuesday 7 July", function () {
        expect(consummationAllowedFrom("2020-07-02T12:00:00-04:00")).to.equal("2020-07-07T04:00:00.000Z");
      });

      it("skips Thanksgiving and the Sunday after it: received Wednesday 27 November 2024, consummation Monday 2 December", function () {
        expect(consummationAllowedFrom("2024-11-27T12:00:00-05:00")).to.equal("2024-12-02T05:00:00.000Z");
      });

      it("counts from the date in New York, so a disclosure received at 23:30 on Monday Eastern time (Tuesday in UTC) still allows Thursday", function () {
        expect(consummationAllowedFrom("2024-06-03T23:30:00-04:00")).to.equal("2024-06-06T04:00:00.000Z");
      });

      it("counts from the date in the zone it is given: 22:00 on Monday in Los Angeles is Tuesday in New York", function () {
        const receivedAt = new Date("2024-06-03T22:00:00-07:00");
        expect(usFederalCalendar("America/Los_Angeles").addBusinessDays(receivedAt, 3).toISOString()).to.equal(
          "2024-06-06T07:00:00.000Z",
        );
        expect(usFederal.addBusinessDays(receivedAt, 3).toISOString()).to.equal("2024-06-07T04:00:00.000Z");
      });

      it("counts the 23-hour Sunday when daylight saving time starts (10 March 2024): one business day after Saturday 00:00 EST is 47 hours later", function () {
        const saturdayStart = new Date("2024-03-09T00:00:00-05:00");
        expect(usFederal.addBusinessDays(saturdayStart, 1).toISOString()).to.equal("2024-03-11T04:00:00.000Z");
        expect(spanSeconds(usFederal, saturdayStart, 1)).to.equal(47 * HOUR);
      });

      it("counts the 25-hour Sunday when daylight saving time ends (3 November 2024): one business day after Saturday 00:00 EDT is 49 hours later", function () {
        const saturdayStart = new Date("2024-11-02T00:00:00-04:00");
        expect(usFederal.addBusinessDays(saturdayStart, 1).toISOString()).to.equal("2024-11-04T05:00:00.000Z");
        expect(spanSeconds(usFederal, saturdayStart, 1)).to.equal(49 * HOUR);
      });

      it("returns the moment itself, as a new Date, for zero business days", function () {
        const from = new Date("2024-06-09T13:14:15.678-04:00"); // a Sunday: zero days needs no business day
        const result = usFederal.addBusinessDays(from, 0);
        expect(result.getTime()).to.equal(from.getTime());
        expect(result).not.to.equal(from);
      });

      it("refuses a negative or fractional number of business days and an invalid Date", function () {
        const from = new Date("2024-06-03T12:00:00Z");
        expect(() => usFederal.addBusinessDays(from, -1)).to.throw(RangeError);
        expect(() => usFederal.addBusinessDays(from, 1.5)).to.throw(RangeError);
        expect(() => usFederal.addBusinessDays(new Date("not a date"), 1)).to.throw(RangeError);
      });
    });

    describe("floorSeconds and ceilingSeconds", function () {
      it("are both zero for zero business days", function () {
        expect(usFederal.floorSeconds(0)).to.equal(0);
        expect(usFederal.ceilingSeconds(0)).to.equal(0);
      });

      it("bound 3 business days below by 2 days: from just before midnight on a Wednesday to Saturday 00:00", function () {
        expect(usFederal.floorSeconds(3)).to.equal(2 * DAY);
        expect(spanSeconds(usFederal, new Date("2024-06-05T23:59:59-04:00"), 3)).to.equal(2 * DAY + 1);
      });

      it("bound 3 business days above by 5 days: from Saturday 00:00 before Memorial Day to Thursday 00:00", function () {
        expect(usFederal.ceilingSeconds(3)).to.equal(5 * DAY);
        expect(spanSeconds(usFederal, new Date("2024-05-25T00:00:00-04:00"), 3)).to.equal(5 * DAY);
      });

      it("bound 1 business day between 0 (just before midnight on a day before a business day) and 3 days (a Saturday before a Monday holiday)", function () {
        expect(usFederal.floorSeconds(1)).to.equal(0);
        expect(usFederal.ceilingSeconds(1)).to.equal(3 * DAY);
      });

      it("refuse a negative number of business days", function () {
        expect(() => usFederal.floorSeconds(-1)).to.throw(RangeError);
        expect(() => usFederal.ceilingSeconds(2.5)).to.throw(RangeError);
      });
    });
  });

  describe("englandAndWalesCalendar", function () {
    it("counts in UK time by default", function () {
      expect(englandAndWales.name).to.equal("england-and-wales");
      expect(englandAndWales.timeZone).to.equal("Europe/London");
    });

    describe("holidays", function () {
      for (const [year, dates] of Object.entries(ENGLAND_AND_WALES_BANK_HOLIDAYS)) {
        it(`lists the bank holidays of ${year} on gov.uk's dates, substitute days and one-offs included`, function () {
          expect(holidayDates(englandAndWales, Number(year))).to.deep.equal(dates);
        });
      }

      it("names substitute days and one-offs as gov.uk does", function () {
        expect(englandAndWales.holidays(2022)).to.deep.equal([
          { date: "2022-01-03", name: "New Year's Day (substitute day)" },
          { date: "2022-04-15", name: "Good Friday" },
          { date: "2022-04-18", name: "Easter Monday" },
          { date: "2022-05-02", name: "Early May bank holiday" },
          { date: "2022-06-02", name: "Spring bank holiday" },
          { date: "2022-06-03", name: "Platinum Jubilee bank holiday" },
          { date: "2022-08-29", name: "Summer bank holiday" },
          { date: "2022-09-19", name: "Bank Holiday for the State Funeral of Queen Elizabeth II" },
          { date: "2022-12-26", name: "Boxing Day" },
          { date: "2022-12-27", name: "Christmas Day (substitute day)" },
        ]);
      });

      for (const [year, [goodFriday, easterMonday]] of Object.entries(GOOD_FRIDAY_AND_EASTER_MONDAY)) {
        it(`puts Good Friday on ${goodFriday} and Easter Monday on ${easterMonday}`, function () {
          const easter = englandAndWales
            .holidays(Number(year))
            .filter((holiday) => /Good Friday|Easter Monday/.test(holiday.name));
          expect(easter.map((holiday) => holiday.date)).to.deep.equal([goodFriday, easterMonday]);
        });
      }

      it("computes Easter Sunday at both ends of its range and in between (published Easter tables)", function () {
        const easterSundays = [
          "1818-03-22",
          "2000-04-23",
          "2008-03-23",
          "2011-04-24",
          "2019-04-21",
          "2038-04-25",
          "2285-03-22",
        ];
        for (const date of easterSundays) expect(formatDate(easterSunday(Number(date.slice(0, 4))))).to.equal(date);
      });

      it("applies every one-off proclamation since 1978, moving the regular holiday where one was moved", function () {
        const oneOffs: Array<[number, string[], string[]]> = [
          // [year, dates that are bank holidays, regular dates that were moved away]
          [1995, ["1995-05-08"], ["1995-05-01"]],
          [1999, ["1999-12-27", "1999-12-28", "1999-12-31"], []],
          [2002, ["2002-06-03", "2002-06-04"], ["2002-05-27"]],
          [2011, ["2011-04-29", "2011-05-02", "2011-05-30"], []],
          [2012, ["2012-06-04", "2012-06-05"], ["2012-05-28"]],
          [2020, ["2020-05-08"], ["2020-05-04"]],
          [2022, ["2022-06-02", "2022-06-03", "2022-09-19"], ["2022-05-30"]],
          [2023, ["2023-05-08", "2023-05-29"], []],
        ];
        for (const [year, holidays, movedAway] of oneOffs) {
          const dates = holidayDates(englandAndWales, year);
          expect(dates, String(year)).to.include.members(holidays);
          for (const date of movedAway) expect(dates, String(year)).not.to.include(date);
        }
      });

      it("moves New Year's Day on a weekend to the Monday after, across the turn of the millennium", function () {
        expect(holidayDates(englandAndWales, 2000)[0]).to.equal("2000-01-03");
        expect(holidayDates(englandAndWales, 2028)[0]).to.equal("2028-01-03");
      });
    });

    describe("isBusinessDay", function () {
      it("counts neither Saturdays nor Sundays", function () {
        expect(englandAndWales.isBusinessDay("2024-06-07")).to.equal(true);
        expect(englandAndWales.isBusinessDay("2024-06-08")).to.equal(false);
        expect(englandAndWales.isBusinessDay("2024-06-09")).to.equal(false);
      });

      it("does not count a substitute day, but counts the day after a moved holiday's regular date", function () {
        expect(englandAndWales.isBusinessDay("2021-12-27")).to.equal(false);
        expect(englandAndWales.isBusinessDay("2022-05-30")).to.equal(true); // the 2022 spring bank holiday moved to 2 June
      });
    });

    describe("addBusinessDays", function () {
      it("makes one working day after Maundy Thursday 2025 the Tuesday after Easter Monday (22 April)", function () {
        const maundyThursday = new Date("2025-04-17T14:00:00+01:00");
        expect(englandAndWales.addBusinessDays(maundyThursday, 1).toISOString()).to.equal("2025-04-21T23:00:00.000Z");
      });

      it("makes one working day after Christmas Eve 2027, a Friday, Wednesday 29 December: Christmas and Boxing Day fall on the weekend and move to Monday and Tuesday", function () {
        const christmasEve = new Date("2027-12-24T09:00:00Z");
        expect(englandAndWales.addBusinessDays(christmasEve, 1).toISOString()).to.equal("2027-12-29T00:00:00.000Z");
      });

      it("runs the 30-working-day priority of a search made on Monday 2 December 2024 to Thursday 16 January 2025, across Christmas, Boxing Day and New Year's Day", function () {
        const searchedAt = new Date("2024-12-02T11:00:00Z");
        expect(englandAndWales.addBusinessDays(searchedAt, 30).toISOString()).to.equal("2025-01-16T00:00:00.000Z");
      });

      it("crosses Easter 2024 and the start of summer time on Easter Sunday: one working day after Thursday 28 March is Tuesday 2 April 00:00 BST", function () {
        const thursdayStart = new Date("2024-03-28T00:00:00Z");
        expect(englandAndWales.addBusinessDays(thursdayStart, 1).toISOString()).to.equal("2024-04-01T23:00:00.000Z");
        expect(spanSeconds(englandAndWales, thursdayStart, 1)).to.equal(5 * DAY - HOUR);
      });

      it("counts the 25-hour Sunday when summer time ends (27 October 2024): one working day after Friday 00:00 BST is 3 days and an hour later", function () {
        const fridayStart = new Date("2024-10-25T00:00:00+01:00");
        expect(englandAndWales.addBusinessDays(fridayStart, 1).toISOString()).to.equal("2024-10-28T00:00:00.000Z");
        expect(spanSeconds(englandAndWales, fridayStart, 1)).to.equal(3 * DAY + HOUR);
      });

      it("counts from the date in London: 23:30 UTC on a Thursday in summer is already Friday there", function () {
        const lateThursdayUtc = new Date("2024-06-06T23:30:00Z");
        expect(englandAndWales.addBusinessDays(lateThursdayUtc, 1).toISOString()).to.equal("2024-06-09T23:00:00.000Z");
      });
    });

    describe("floorSeconds and ceilingSeconds", function () {
      it("bound 30 working days below by 38 days and 23 hours: six clear working weeks from a Monday, across the start of summer time", function () {
        expect(englandAndWales.floorSeconds(30)).to.equal(39 * DAY - HOUR);
        // From just before midnight on Sunday 23 February 2025, to Friday 4 April 2025, across 30 March.
        expect(spanSeconds(englandAndWales, new Date("2025-02-23T23:59:59Z"), 30)).to.equal(39 * DAY - HOUR + 1);
      });

      it("bound 30 working days above by 49 days: from the Thursday before Good Friday 2011, across Easter, the royal wedding, the early May and the spring bank holidays", function () {
        expect(englandAndWales.ceilingSeconds(30)).to.equal(49 * DAY);
        expect(spanSeconds(englandAndWales, new Date("2011-04-21T00:00:00+01:00"), 30)).to.equal(49 * DAY);
      });

      it("bound 1 working day above by 5 days: from 00:00 on the Thursday before Good Friday to the Tuesday after Easter Monday", function () {
        expect(englandAndWales.floorSeconds(1)).to.equal(0);
        expect(englandAndWales.ceilingSeconds(1)).to.equal(5 * DAY);
      });
    });
  });

  describe("startOfLocalDay", function () {
    it("makes a local day 23 hours long when the clocks go forward and 25 when they go back, in both zones", function () {
      const hoursLong = (date: string, timeZone: string) =>
        (startOfLocalDay(parseDate(date) + 1, timeZone) - startOfLocalDay(parseDate(date), timeZone)) / 1000 / HOUR;
      expect(hoursLong("2024-03-10", "America/New_York")).to.equal(23);
      expect(hoursLong("2024-11-03", "America/New_York")).to.equal(25);
      expect(hoursLong("2024-03-31", "Europe/London")).to.equal(23);
      expect(hoursLong("2024-10-27", "Europe/London")).to.equal(25);
      expect(hoursLong("2024-06-15", "Europe/London")).to.equal(24);
    });

    it("finds the first moment of a day whose midnight a zone skips (São Paulo, 4 November 2018, clocks from 00:00 to 01:00)", function () {
      expect(new Date(startOfLocalDay(parseDate("2018-11-04"), "America/Sao_Paulo")).toISOString()).to.equal(
        "2018-11-04T03:00:00.000Z",
      );
    });
  });

  describe("floor and ceiling, for any moment and any number of business days", function () {
    // The bounds are exact over the start dates they scan; the instants drawn stay in that window.
    const firstInstant = Date.UTC(SCAN_FIRST_YEAR, 0, 1);
    const lastInstant = Date.UTC(SCAN_LAST_YEAR, 11, 31, 23, 59, 59, 999);

    for (const calendar of [usFederal, englandAndWales]) {
      // Random instants rarely land near a local midnight, where the extremes are; half of these do.
      const anyInstant = fc.integer({ min: firstInstant, max: lastInstant });
      const nearLocalMidnight = fc
        .tuple(fc.integer({ min: firstInstant, max: lastInstant }), fc.constantFrom(-1000, -1, 0, 1, 1000))
        .map(([instant, nudge]) => startOfLocalDay(localDayOf(instant, calendar.timeZone), calendar.timeZone) + nudge)
        .filter((instant) => instant >= firstInstant && instant <= lastInstant);
      const instants = fc.oneof(anyInstant, nearLocalMidnight).map((instant) => new Date(instant));
      const businessDayCounts = fc.integer({ min: 0, max: 40 });

      it(`keep every ${calendar.name} span between floorSeconds and ceilingSeconds`, function () {
        fc.assert(
          fc.property(instants, businessDayCounts, (from, businessDays) => {
            const span = spanSeconds(calendar, from, businessDays);
            expect(calendar.floorSeconds(businessDays), "floor").to.be.at.most(span);
            expect(calendar.ceilingSeconds(businessDays), "ceiling").to.be.at.least(span);
          }),
          { numRuns: 1000 },
        );
      });

      it(`land every ${calendar.name} result at the start of a business day, with exactly N business days counted`, function () {
        fc.assert(
          fc.property(instants, fc.integer({ min: 1, max: 40 }), (from, businessDays) => {
            const result = calendar.addBusinessDays(from, businessDays);
            const resultDay = localDayOf(result.getTime(), calendar.timeZone);
            expect(startOfLocalDay(resultDay, calendar.timeZone)).to.equal(result.getTime());
            let counted = 0;
            for (let day = localDayOf(from.getTime(), calendar.timeZone) + 1; day <= resultDay; day += 1) {
              if (calendar.isBusinessDay(formatDate(day))) counted += 1;
            }
            expect(counted).to.equal(businessDays);
            expect(calendar.isBusinessDay(formatDate(resultDay))).to.equal(true);
          }),
          { numRuns: 300 },
        );
      });
    }
  });

  describe("getCalendar", function () {
    it("returns each calendar by name, in its own zone unless given another", function () {
      expect(getCalendar("us-federal").timeZone).to.equal("America/New_York");
      expect(getCalendar("england-and-wales").timeZone).to.equal("Europe/London");
      expect(getCalendar("us-federal", "America/Chicago").timeZone).to.equal("America/Chicago");
    });

    it("returns the same instance for the same name and zone, so bounds are computed once", function () {
      expect(getCalendar("england-and-wales")).to.equal(getCalendar("england-and-wales"));
    });

    it("refuses a name it does not know", function () {
      expect(() => getCalendar("scotland" as never)).to.throw(RangeError);
    });
  });
});
