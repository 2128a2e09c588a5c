/**
 * Every time rule of the three templates, as the law reads it, against instants worked out by hand (a
 * calendar on the desk, the holidays from gov.uk and OPM, the clock changes from the zones' rules): the
 * legal guard's `legalMomentOf` for waiting times and `legalDeadlineOf` for deadlines and long-stops. The
 * rows cross holidays, substitute days, one-off proclaimed holidays and clock changes (BST/GMT, EDT/EST).
 *
 * How the law counts, per rule:
 * - "wait N business days": the start (00:00 local) of the Nth business day after the local date on which
 *   the waiting began (the last prerequisite's completion). TRID: every day but Sundays and the federal
 *   holidays on their actual dates; England and Wales: every day but weekends and the bank holidays.
 * - "wait N days": N x 24 hours of elapsed time, exactly as the contract counts it.
 * - "within N business days" / "within N days": to the END of the Nth (business) day after the anchor's
 *   local date, i.e. 00:00 local of the day after it. The long-stop is "within N days" from the opening.
 */
import { expect } from "chai";
import { getTemplate, type CompiledWorkflow } from "../../workflows";
import { newCaseModel, type CaseModel } from "../../workflows/case-rules";
import { createLegalGuard } from "../../workflows/legal-guard";

type TemplateId = "us-purchase" | "uk-purchase" | "uk-remortgage";

interface Row {
  template: TemplateId;
  /** The stage whose moment is asked for. */
  stage: string;
  rule: "wait" | "deadline";
  /** When the case opened (default: `at`). */
  opened?: string;
  /** The stages completed, each at `at` unless given its own instant. */
  completed: Array<string | [string, string]>;
  at: string;
  expected: string;
  /** How it was worked out by hand. */
  how: string;
}

const ROWS: Row[] = [
  // ------------------------------------------------------------------ us-purchase (America/New_York)
  {
    template: "us-purchase",
    stage: "loan-estimate",
    rule: "deadline",
    completed: ["application"],
    at: "2030-11-07T15:00:00Z",
    expected: "2030-11-13T05:00:00.000Z",
    how: "application Thu 7 Nov 2030 10:00 EST; 3 business days: Fri 8 (1), Sat 9 (2), Sun 10 no, Mon 11 Veterans Day no, Tue 12 (3); end of Tue 12 = Wed 13 00:00 EST = 05:00 UTC",
  },
  {
    template: "us-purchase",
    stage: "loan-estimate",
    rule: "deadline",
    completed: ["application"],
    at: "2027-11-05T14:00:00Z",
    expected: "2027-11-10T05:00:00.000Z",
    how: "application Fri 5 Nov 2027 10:00 EDT; Sat 6 (1), Sun 7 no (clocks back to EST that night), Mon 8 (2), Tue 9 (3); end of Tue 9 = Wed 10 00:00 EST = 05:00 UTC",
  },
  {
    template: "us-purchase",
    stage: "loan-estimate",
    rule: "deadline",
    completed: ["application"],
    at: "2027-01-15T04:59:59Z",
    expected: "2027-01-20T05:00:00.000Z",
    how: "application Thu 14 Jan 2027 23:59:59 EST (already Fri in UTC): Fri 15 (1), Sat 16 (2), Sun no, Mon 18 Martin Luther King Day no, Tue 19 (3); end of Tue 19 = Wed 20 00:00 EST",
  },
  {
    template: "us-purchase",
    stage: "loan-estimate-waiting-period",
    rule: "wait",
    completed: ["application", "loan-estimate"],
    at: "2030-11-07T15:05:00Z",
    expected: "2030-11-13T05:00:00.000Z",
    how: "Loan Estimate Thu 7 Nov 2030 10:05 EST; 4 business days: Fri 8 (1), Sat 9 (2), Sun no, Mon 11 Veterans Day no, Tue 12 (3), Wed 13 (4); start of Wed 13 = 00:00 EST = 05:00 UTC",
  },
  {
    template: "us-purchase",
    stage: "loan-estimate-waiting-period",
    rule: "wait",
    completed: ["application", "loan-estimate"],
    at: "2026-12-24T18:00:00Z",
    expected: "2026-12-30T05:00:00.000Z",
    how: "Loan Estimate Thu 24 Dec 2026 13:00 EST; Fri 25 Christmas no, Sat 26 (1), Sun no, Mon 28 (2), Tue 29 (3), Wed 30 (4); 00:00 EST = 05:00 UTC",
  },
  {
    template: "us-purchase",
    stage: "loan-estimate-waiting-period",
    rule: "wait",
    completed: ["application", "loan-estimate"],
    at: "2026-07-02T16:00:00Z",
    expected: "2026-07-08T04:00:00.000Z",
    how: "Loan Estimate Thu 2 Jul 2026 12:00 EDT; Fri 3 (1: the day Independence Day is observed is still a business day), Sat 4 Independence Day no, Sun no, Mon 6 (2), Tue 7 (3), Wed 8 (4); 00:00 EDT = 04:00 UTC",
  },
  {
    template: "us-purchase",
    stage: "consummation",
    rule: "wait",
    completed: [
      "application",
      "loan-estimate",
      "rate-lock",
      "appraisal",
      "title-commitment",
      "underwriting",
      "clear-to-close",
      ["loan-estimate-waiting-period", "2027-03-09T05:00:10Z"],
      ["closing-disclosure", "2027-03-12T20:00:00Z"],
    ],
    at: "2027-03-01T15:00:00Z",
    expected: "2027-03-16T04:00:00.000Z",
    how: "from the later prerequisite, the Closing Disclosure Fri 12 Mar 2027 15:00 EST; Sat 13 (1), Sun 14 no (clocks forward to EDT), Mon 15 (2), Tue 16 (3); 00:00 EDT = 04:00 UTC",
  },
  {
    template: "us-purchase",
    stage: "consummation",
    rule: "wait",
    completed: [
      "application",
      "loan-estimate",
      "rate-lock",
      "appraisal",
      "title-commitment",
      "underwriting",
      "clear-to-close",
      ["closing-disclosure", "2027-01-12T15:00:00Z"],
      ["loan-estimate-waiting-period", "2027-01-15T04:59:59Z"],
    ],
    at: "2027-01-05T15:00:00Z",
    expected: "2027-01-19T05:00:00.000Z",
    how: "from the later prerequisite, the waiting period Thu 14 Jan 2027 23:59:59 EST; Fri 15 (1), Sat 16 (2), Sun no, Mon 18 MLK Day no, Tue 19 (3); 00:00 EST",
  },
  {
    template: "us-purchase",
    stage: "consummation",
    rule: "wait",
    completed: [
      "application",
      "loan-estimate",
      "rate-lock",
      "appraisal",
      "title-commitment",
      "underwriting",
      "clear-to-close",
      ["closing-disclosure", "2027-01-12T15:00:00Z"],
      ["loan-estimate-waiting-period", "2027-01-15T05:00:00Z"],
    ],
    at: "2027-01-05T15:00:00Z",
    expected: "2027-01-20T05:00:00.000Z",
    how: "one second later than the row above: the waiting period Fri 15 Jan 00:00 EST; Sat 16 (1), Sun no, Mon 18 MLK Day no, Tue 19 (2), Wed 20 (3)",
  },
  {
    template: "us-purchase",
    stage: "funding",
    rule: "deadline",
    completed: ["application", "loan-estimate", "rate-lock"],
    at: "2027-03-02T15:00:00Z",
    expected: "2027-05-02T04:00:00.000Z",
    how: "rate lock Tue 2 Mar 2027 10:00 EST; 60 days: 31 Mar (29), 30 Apr (59), 1 May (60); end of 1 May = 2 May 00:00 EDT = 04:00 UTC; the long-stop (90 days) ends later",
  },
  {
    template: "us-purchase",
    stage: "funding",
    rule: "deadline",
    completed: [],
    at: "2027-10-01T13:00:00Z",
    expected: "2027-12-31T05:00:00.000Z",
    how: "long-stop, no rate lock yet: opened Fri 1 Oct 2027 09:00 EDT; 90 days: 31 Oct (30), 30 Nov (60), 30 Dec (90); end of 30 Dec = 31 Dec 00:00 EST = 05:00 UTC",
  },
  {
    template: "us-purchase",
    stage: "funding",
    rule: "deadline",
    completed: [],
    at: "2027-10-02T03:30:00Z",
    expected: "2027-12-31T05:00:00.000Z",
    how: "long-stop: opened Fri 1 Oct 2027 23:30 EDT (Sat 2 Oct in UTC): the local date counts, so the same end as the row above",
  },
  {
    template: "us-purchase",
    stage: "funding",
    rule: "deadline",
    opened: "2030-11-07T15:00:00Z",
    completed: [["rate-lock", "2030-12-20T15:00:00Z"]],
    at: "2030-11-07T15:00:00Z",
    expected: "2031-02-06T05:00:00.000Z",
    how: "both running, the long-stop first: opened Thu 7 Nov 2030; 90 days: 30 Nov (23), 31 Dec (54), 31 Jan (85), 5 Feb (90); end = 6 Feb 00:00 EST; the lock of 20 Dec 2030 + 60 days ends 18 Feb",
  },

  // ------------------------------------------------------------------ uk-purchase (Europe/London)
  {
    template: "uk-purchase",
    stage: "completion",
    rule: "deadline",
    completed: ["offer-accepted", "mortgage-offer"],
    at: "2027-04-01T09:00:00Z",
    expected: "2027-09-28T23:00:00.000Z",
    how: "mortgage offer Thu 1 Apr 2027 10:00 BST; 180 days: 30 Apr (29), 31 May (60), 30 Jun (90), 31 Jul (121), 31 Aug (152), 28 Sep (180); end of 28 Sep = 29 Sep 00:00 BST = 28 Sep 23:00 UTC",
  },
  {
    template: "uk-purchase",
    stage: "completion",
    rule: "deadline",
    opened: "2027-05-20T09:00:00Z",
    completed: ["offer-accepted", ["mortgage-offer", "2027-06-01T09:00:00Z"]],
    at: "2027-05-20T09:00:00Z",
    expected: "2027-11-29T00:00:00.000Z",
    how: "mortgage offer Tue 1 Jun 2027 10:00 BST; 180 days: 30 Jun (29), 31 Jul (60), 31 Aug (91), 30 Sep (121), 31 Oct (152), 28 Nov (180); end = 29 Nov 00:00 GMT (BST ended 31 Oct)",
  },
  {
    template: "uk-purchase",
    stage: "completion",
    rule: "deadline",
    opened: "2027-01-04T09:00:00Z",
    completed: ["offer-accepted", ["mortgage-offer", "2027-06-01T09:00:00Z"]],
    at: "2027-01-04T09:00:00Z",
    expected: "2027-10-01T23:00:00.000Z",
    how: "long-stop first: opened Mon 4 Jan 2027 09:00 GMT; 270 days: 31 Jan (27), 28 Feb (55), 31 Mar (86), 30 Apr (116), 31 May (147), 30 Jun (177), 31 Jul (208), 31 Aug (239), 30 Sep (269), 1 Oct (270); end = 2 Oct 00:00 BST; the offer's 180 days end 29 Nov",
  },
  {
    template: "uk-purchase",
    stage: "completion",
    rule: "deadline",
    completed: [],
    at: "2027-01-04T09:00:00Z",
    expected: "2027-10-01T23:00:00.000Z",
    how: "long-stop alone (no mortgage offer yet): the same 270 days from Mon 4 Jan 2027 as the row above",
  },
  {
    template: "uk-purchase",
    stage: "stamp-duty",
    rule: "deadline",
    completed: ["completion"],
    at: "2027-03-20T12:00:00Z",
    expected: "2027-04-03T23:00:00.000Z",
    how: "completion Sat 20 Mar 2027 12:00 GMT; 14 days: 3 Apr; end of 3 Apr = 4 Apr 00:00 BST (from Sun 28 Mar) = 3 Apr 23:00 UTC",
  },
  {
    template: "uk-purchase",
    stage: "registration",
    rule: "deadline",
    completed: ["pre-completion-search"],
    at: "2027-12-01T10:00:00Z",
    expected: "2028-01-18T00:00:00.000Z",
    how:
      "OS1 Wed 1 Dec 2027; 30 working days: 2,3 (2), 6-10 (7), 13-17 (12), 20-24 (17), Mon 27 Christmas substitute and Tue 28 Boxing Day substitute no (25th a Saturday), 29-31 (20), " +
      "Mon 3 Jan 2028 New Year substitute no, 4-7 (24), 10-14 (29), Mon 17 (30); end = Tue 18 Jan 00:00 GMT",
  },
  {
    template: "uk-purchase",
    stage: "registration",
    rule: "deadline",
    completed: ["pre-completion-search"],
    at: "2023-04-28T09:00:00Z",
    expected: "2023-06-14T23:00:00.000Z",
    how:
      "OS1 Fri 28 Apr 2023 10:00 BST; Mon 1 May Early May no, 2-5 (4), Mon 8 May coronation (proclaimed) no, 9-12 (8), 15-19 (13), 22-26 (18), Mon 29 Spring bank holiday no, " +
      "30,31 (20), 1,2 Jun (22), 5-9 (27), 12-14 (30); end of Wed 14 Jun = 15 Jun 00:00 BST = 14 Jun 23:00 UTC",
  },

  // ------------------------------------------------------------------ uk-remortgage (Europe/London)
  {
    template: "uk-remortgage",
    stage: "offer-accepted",
    rule: "wait",
    completed: ["application", "valuation", "mortgage-offer"],
    at: "2027-03-26T10:00:00Z",
    expected: "2027-04-02T10:00:00.000Z",
    how: "reflection period, 7 calendar days of elapsed time: mortgage offer Fri 26 Mar 2027 10:00 GMT + 168 hours = Fri 2 Apr 10:00 UTC, 11:00 BST (clocks forward Sun 28 Mar)",
  },
  {
    template: "uk-remortgage",
    stage: "completion",
    rule: "deadline",
    completed: ["application", "valuation", "mortgage-offer"],
    at: "2027-12-20T10:00:00Z",
    expected: "2028-06-17T23:00:00.000Z",
    how: "mortgage offer Mon 20 Dec 2027; 180 days: 31 Dec (11), 31 Jan (42), 29 Feb 2028 leap (71), 31 Mar (102), 30 Apr (132), 31 May (163), 17 Jun (180); end = 18 Jun 00:00 BST = 17 Jun 23:00 UTC",
  },
  {
    template: "uk-remortgage",
    stage: "completion",
    rule: "deadline",
    completed: [],
    at: "2027-03-10T12:00:00Z",
    expected: "2027-11-06T00:00:00.000Z",
    how: "long-stop: opened Wed 10 Mar 2027 12:00 GMT; 240 days: 31 Mar (21), 30 Apr (51), 31 May (82), 30 Jun (112), 31 Jul (143), 31 Aug (174), 30 Sep (204), 31 Oct (235), 5 Nov (240); end = 6 Nov 00:00 GMT",
  },
  {
    template: "uk-remortgage",
    stage: "registration",
    rule: "deadline",
    completed: ["application", "title-check", "pre-completion-search"],
    at: "2028-03-16T10:00:00Z",
    expected: "2028-05-02T23:00:00.000Z",
    how:
      "OS1 Thu 16 Mar 2028; Fri 17 (1), 20-24 (6), 27-31 (11, BST from Sun 26), 3-7 Apr (16), 10-13 (20), Fri 14 Good Friday and Mon 17 Easter Monday no (Easter Sun 16 Apr), " +
      "18-21 (24), 24-28 (29), Mon 1 May Early May no, Tue 2 May (30); end = 3 May 00:00 BST = 2 May 23:00 UTC",
  },
];

const templates = new Map<TemplateId, CompiledWorkflow>();
function template(id: TemplateId): CompiledWorkflow {
  if (!templates.has(id)) templates.set(id, getTemplate(id));
  return templates.get(id)!;
}

function modelOf(row: Row): CaseModel {
  const w = template(row.template);
  const seconds = (iso: string) => Date.parse(iso) / 1000;
  const model = newCaseModel(w.stages, seconds(row.opened ?? row.at));
  for (const entry of row.completed) {
    const [id, at] = typeof entry === "string" ? [entry, row.at] : entry;
    expect(w.stageIndex, `${row.template} has a stage ${id}`).to.have.property(id);
    model.completedAt[w.stageIndex[id]] = seconds(at);
  }
  return model;
}

describe("legal moments of every time rule of the templates", function () {
  it("covers every waiting time, deadline and long-stop of the three templates", function () {
    for (const id of ["us-purchase", "uk-purchase", "uk-remortgage"] as const) {
      const w = template(id);
      for (const d of w.details) {
        if (d.wait)
          expect(
            ROWS.some((r) => r.template === id && r.stage === d.id && r.rule === "wait"),
            `${id} ${d.id} wait`,
          ).to.equal(true);
        if (d.deadline || d.longStop)
          expect(
            ROWS.some((r) => r.template === id && r.stage === d.id && r.rule === "deadline"),
            `${id} ${d.id} deadline`,
          ).to.equal(true);
      }
    }
  });

  for (const row of ROWS) {
    it(`${row.template} ${row.stage} (${row.rule}) from ${row.at}: ${row.expected}`, function () {
      const w = template(row.template);
      const guard = createLegalGuard(w);
      const model = modelOf(row);
      const stage = w.stageIndex[row.stage];
      const moment = row.rule === "wait" ? guard.legalMomentOf(model, stage) : guard.legalDeadlineOf(model, stage);
      expect(moment, row.how).to.be.instanceOf(Date);
      expect((moment as Date).toISOString(), row.how).to.equal(row.expected);
    });
  }

  it("never sets a legal deadline after the contract's ceiling, nor a legal moment before its floor", function () {
    for (const row of ROWS) {
      const w = template(row.template);
      const guard = createLegalGuard(w);
      const model = modelOf(row);
      const s = w.stageIndex[row.stage];
      const rule = model.rules[s];
      if (row.rule === "wait") {
        const start = Math.max(model.openedAt, ...model.completedAt.filter((t): t is number => t !== null));
        expect((guard.legalMomentOf(model, s) as Date).getTime() / 1000, row.how).to.be.at.least(
          start + rule.waitSeconds,
        );
      } else {
        const limits = [rule.longStopSeconds ? model.openedAt + rule.longStopSeconds : Infinity];
        const anchor = rule.deadlineAnchor === 0 ? model.openedAt : model.completedAt[rule.deadlineAnchor - 1];
        if (rule.deadlineSeconds && anchor !== null) limits.push(anchor + rule.deadlineSeconds);
        expect((guard.legalDeadlineOf(model, s) as Date).getTime() / 1000, row.how).to.be.at.most(Math.min(...limits));
      }
    }
  });
});
