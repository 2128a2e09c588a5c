import { expect } from "chai";
import { completeReadyStages, newCaseModel, signedCandidates, type CaseModel } from "../../workflows/case-rules";
import { getTemplate } from "../../workflows";
import { createLegalGuard } from "../../workflows/legal-guard";

const seconds = (iso: string) => Date.parse(iso) / 1000;

/** Completes `stageIds` of a model at `at`, in order, as if every criterion held. */
function completeAt(model: CaseModel, stageIndex: Record<string, number>, at: number, ...stageIds: string[]) {
  for (const id of stageIds) model.completedAt[stageIndex[id]] = at;
}

describe("legal guard", function () {
  const us = getTemplate("us-purchase");
  const uk = getTemplate("uk-remortgage");
  const stage = (id: string) => us.stageIndex[id];

  describe("legalMomentOf", function () {
    it("says a stage without a waiting time has no legal moment, so it accepts sign-offs early", function () {
      const guard = createLegalGuard(us);
      const model = newCaseModel(us.stages, seconds("2026-03-02T15:00:00Z"));
      expect(guard.legalMomentOf(model, stage("appraisal"))).to.equal(undefined);
      expect(guard.mayComplete(model, stage("appraisal"), new Date("2026-03-02T15:00:01Z"))).to.deep.equal({
        allowed: true,
      });
    });

    it("says the moment is not known while a prerequisite of a waiting stage is open", function () {
      const guard = createLegalGuard(us);
      const model = newCaseModel(us.stages, seconds("2026-03-02T15:00:00Z"));
      expect(guard.legalMomentOf(model, stage("consummation"))).to.equal(null);
      const verdict = guard.mayComplete(model, stage("consummation"), new Date("2026-03-20T12:00:00Z"));
      expect(verdict).to.deep.include({ allowed: false, availableAt: null });
    });

    it("counts TRID's 3 business days from a Closing Disclosure received on a Monday to the start of Thursday in New York", function () {
      const guard = createLegalGuard(us);
      const opened = seconds("2026-03-02T15:00:00Z");
      const model = newCaseModel(us.stages, opened);
      completeAt(
        model,
        us.stageIndex,
        opened,
        "application",
        "loan-estimate",
        "rate-lock",
        "appraisal",
        "title-commitment",
        "underwriting",
        "clear-to-close",
        "loan-estimate-waiting-period",
      );
      // Monday 9 March 2026, 10:00 in New York (EDT from 8 March: UTC-4).
      completeAt(model, us.stageIndex, seconds("2026-03-09T14:00:00Z"), "closing-disclosure");
      expect(guard.legalMomentOf(model, stage("consummation"))?.toISOString()).to.equal("2026-03-12T04:00:00.000Z");
    });

    it("refuses consummation one second before the legal moment, with the moment, and allows it at the moment", function () {
      const guard = createLegalGuard(us);
      const opened = seconds("2026-03-02T15:00:00Z");
      const model = newCaseModel(us.stages, opened);
      completeAt(
        model,
        us.stageIndex,
        opened,
        "application",
        "loan-estimate",
        "rate-lock",
        "appraisal",
        "title-commitment",
        "underwriting",
        "clear-to-close",
        "loan-estimate-waiting-period",
      );
      completeAt(model, us.stageIndex, seconds("2026-03-09T14:00:00Z"), "closing-disclosure");
      const early = guard.mayComplete(model, stage("consummation"), new Date("2026-03-12T03:59:59Z"));
      expect(early.allowed).to.equal(false);
      expect(early.allowed === false && early.availableAt?.toISOString()).to.equal("2026-03-12T04:00:00.000Z");
      expect(guard.mayComplete(model, stage("consummation"), new Date("2026-03-12T04:00:00Z"))).to.deep.equal({
        allowed: true,
      });
    });

    it("holds the law stricter than the contract's floor: after a Friday disclosure before Memorial Day, the floor has passed days before the legal moment", function () {
      const guard = createLegalGuard(us);
      const opened = seconds("2026-05-01T15:00:00Z");
      const model = newCaseModel(us.stages, opened);
      completeAt(
        model,
        us.stageIndex,
        opened,
        "application",
        "loan-estimate",
        "rate-lock",
        "appraisal",
        "title-commitment",
        "underwriting",
        "clear-to-close",
        "loan-estimate-waiting-period",
      );
      const disclosed = seconds("2026-05-22T20:00:00Z"); // Friday 22 May, 16:00 in New York
      completeAt(model, us.stageIndex, disclosed, "closing-disclosure");
      const floorEnds = disclosed + us.stages[stage("consummation")].waitSeconds;
      // Saturday counts, Sunday and Memorial Day (Monday 25 May) do not: Sat 23 (1), Tue 26 (2), Wed 27 (3).
      const moment = guard.legalMomentOf(model, stage("consummation"))!;
      expect(moment.toISOString()).to.equal("2026-05-27T04:00:00.000Z");
      expect(moment.getTime() / 1000 - floorEnds).to.be.greaterThan(2 * 86_400);
    });

    it("counts the later of the Closing Disclosure and the Loan Estimate's seven business days", function () {
      const guard = createLegalGuard(us);
      const opened = seconds("2026-03-02T15:00:00Z");
      const model = newCaseModel(us.stages, opened);
      completeAt(
        model,
        us.stageIndex,
        opened,
        "application",
        "loan-estimate",
        "rate-lock",
        "appraisal",
        "title-commitment",
        "underwriting",
        "clear-to-close",
        "closing-disclosure",
      );
      // The LE waiting period (4 business days after the LE) completes later than the disclosure.
      completeAt(model, us.stageIndex, seconds("2026-03-06T05:00:00Z"), "loan-estimate-waiting-period");
      expect(guard.legalMomentOf(model, stage("consummation"))?.toISOString()).to.equal("2026-03-10T04:00:00.000Z");
    });

    it("counts a waiting time of calendar days to the second, as the contract does", function () {
      const guard = createLegalGuard(uk);
      const opened = seconds("2026-06-01T09:00:00Z");
      const model = newCaseModel(uk.stages, opened, true);
      const offer = uk.stageIndex["mortgage-offer"];
      const accepted = uk.stageIndex["offer-accepted"];
      for (const id of uk.details[accepted].after) model.completedAt[uk.stageIndex[id]] = opened + 3_600;
      expect(uk.details[accepted].after).to.include("mortgage-offer");
      expect(guard.legalMomentOf(model, accepted)?.getTime()).to.equal(
        (opened + 3_600 + uk.stages[accepted].waitSeconds) * 1000,
      );
      expect(model.completedAt[offer]).to.equal(opened + 3_600);
    });
  });

  it("knows no legal moment for consummation while the rules leave the Closing Disclosure open", function () {
    const guard = createLegalGuard(us);
    const opened = seconds("2026-03-02T15:00:00Z");
    const model = newCaseModel(us.stages, opened, true);
    for (const [s, rule] of us.stages.entries()) if (s < stage("closing-disclosure")) model.signedOff[s] = rule.roles;
    completeReadyStages(model, opened, signedCandidates(model));
    expect(model.completedAt[stage("clear-to-close")]).to.equal(opened);
    expect(guard.legalMomentOf(model, stage("consummation"))).to.equal(null);
  });

  describe("a deadline moved by amendment", function () {
    const ukPurchase = getTemplate("uk-purchase");
    const completion = ukPurchase.stageIndex["completion"];

    it("is the moment the parties agreed, not a count from the anchor", function () {
      const guard = createLegalGuard(ukPurchase);
      const opened = seconds("2027-01-04T10:00:00Z");
      const model = newCaseModel(ukPurchase.stages, opened);
      completeAt(model, ukPurchase.stageIndex, opened, "offer-accepted", "conveyancers-instructed", "mortgage-offer");
      const counted = guard.legalDeadlineOf(model, completion) as Date;
      const agreed = seconds("2027-03-15T00:00:00Z");
      model.movedDeadlines![completion] = { own: agreed, longStop: null };
      const moved = guard.legalDeadlineOf(model, completion) as Date;
      expect(moved.getTime() / 1000).to.equal(agreed);
      expect(moved.getTime()).to.not.equal(counted.getTime());
    });

    it("runs from the agreed moment even before its anchor has completed", function () {
      const guard = createLegalGuard(ukPurchase);
      const model = newCaseModel(ukPurchase.stages, seconds("2027-01-04T10:00:00Z"));
      // Only the long-stop runs until the mortgage offer (the own deadline's anchor) completes.
      const longStop = guard.legalDeadlineOf(model, completion) as Date;
      expect(longStop.getTime()).to.be.greaterThan(Date.parse("2027-03-15T00:00:00Z"));
      model.movedDeadlines![completion] = { own: seconds("2027-03-15T00:00:00Z"), longStop: null };
      expect(guard.legalDeadlineOf(model, completion)?.toISOString()).to.equal("2027-03-15T00:00:00.000Z");
    });

    it("takes a date as the end of that local day in the jurisdiction's zone", function () {
      expect(createLegalGuard(ukPurchase).endOfLocalDate("2027-03-14").toISOString()).to.equal(
        "2027-03-15T00:00:00.000Z",
      );
      expect(createLegalGuard(ukPurchase).endOfLocalDate("2027-07-14").toISOString()).to.equal(
        "2027-07-14T23:00:00.000Z",
      );
      // New York is on EDT from 14 March 2027.
      expect(createLegalGuard(us).endOfLocalDate("2027-03-14").toISOString()).to.equal("2027-03-15T04:00:00.000Z");
    });
  });

  it("counts N business days ahead in the jurisdiction's calendar, skipping its holidays", function () {
    // From Wednesday 23 December 2026 in New York: Thursday is the first; Christmas Day is a holiday, and
    // Saturday a business day for Regulation Z's rules: it starts the second, Monday the third.
    const guard = createLegalGuard(us);
    const from = new Date("2026-12-23T17:00:00Z");
    expect(guard.businessDaysAfter(from, 2).toISOString()).to.equal("2026-12-26T05:00:00.000Z");
    expect(guard.businessDaysAfter(from, 3).toISOString()).to.equal("2026-12-28T05:00:00.000Z");
  });
});
