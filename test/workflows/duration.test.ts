import { expect } from "chai";
import { deadlineCeilingSeconds, formatDuration, parseDuration, waitFloorSeconds } from "../../workflows";
import { getCalendar } from "../../workflows/calendars";

describe("workflows/duration", function () {
  describe("parseDuration", function () {
    it("reads business, working and calendar days, weeks and hours", function () {
      const read = (text: string) => {
        const parsed = parseDuration(text);
        return parsed.ok ? formatDuration(parsed.duration) : parsed.message;
      };
      expect(
        [
          "3 business days",
          "30 working days",
          "1 business day",
          "180 days",
          "14 Calendar Days",
          "2 weeks",
          "12 hours",
          "1 hour",
        ].map(read),
      ).to.deep.equal([
        "3 business days",
        "30 business days",
        "1 business day",
        "180 days",
        "14 days",
        "14 days",
        "12 hours",
        "1 hour",
      ]);
    });

    it("rejects text it cannot read, unknown units and zero", function () {
      expect(parseDuration("three days")).to.deep.include({ ok: false });
      expect(parseDuration("3 fortnights")).to.deep.include({ ok: false });
      expect(parseDuration("0 days")).to.deep.include({ ok: false });
    });
  });

  describe("on-chain seconds", function () {
    const calendar = getCalendar("us-federal");

    it("takes a waiting time at its floor: the calendar's for business days, exact for days and hours", function () {
      expect(waitFloorSeconds({ amount: 3, unit: "business-days" }, calendar)).to.equal(calendar.floorSeconds(3));
      expect(waitFloorSeconds({ amount: 7, unit: "days" }, calendar)).to.equal(7 * 86_400);
      expect(waitFloorSeconds({ amount: 12, unit: "hours" }, calendar)).to.equal(12 * 3_600);
    });

    it("takes a deadline at its ceiling, to the end of the last day, exact for hours", function () {
      expect(deadlineCeilingSeconds({ amount: 3, unit: "business-days" }, calendar)).to.equal(
        calendar.ceilingSeconds(3) + 25 * 3_600,
      );
      expect(deadlineCeilingSeconds({ amount: 14, unit: "days" }, calendar)).to.equal(14 * 86_400 + 25 * 3_600);
      expect(deadlineCeilingSeconds({ amount: 12, unit: "hours" }, calendar)).to.equal(12 * 3_600);
    });
  });
});
