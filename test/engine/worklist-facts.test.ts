/**
 * `worklistFactsOf`, pure: what a case waits for and from whom (a locked stage's early sign-off holds
 * nothing up; an open amendment's missing consents do), its next legal deadline (the earliest of a stage
 * not completed; none once the case has ended), and until which second all this holds with time alone.
 */
import { expect } from "chai";
import { worklistFactsOf } from "../../engine/projection/worklist-facts";
import type { CaseProgress, StageProgress } from "../../engine/projection/progress-schema";

const NOW = Date.parse("2027-01-10T12:00:00Z") / 1000;

function stage(id: string, over: Partial<StageProgress> = {}): StageProgress {
  return {
    id,
    title: id,
    status: "open",
    waitingFor: null,
    requires: ["buyer", "bank"],
    signedOff: [],
    availableAt: null,
    deadline: null,
    contractFloor: null,
    contractCeiling: null,
    acceptsSignOffs: true,
    waitsFor: null,
    completedAt: null,
    tx: null,
    ...over,
  };
}

function progress(stages: StageProgress[], over: Partial<CaseProgress> = {}): CaseProgress {
  return {
    id: "7",
    workflow: { id: "uk-remortgage", version: 1, title: "t", templateId: "0x01" },
    timeZone: "Europe/London",
    status: "open",
    openedAt: "2027-01-01T09:00:00.000Z",
    parties: { bank: "0x1", lawyer: "0x2", buyer: "0x3", seller: "0x4" },
    terms: { price: "1", deposit: "0", loan: "1" },
    asset: "0x0",
    escrow: { paidByBank: "0", paidByBuyer: "0", funded: false, released: false, credits: {} },
    cancelVotes: [],
    progress: { completed: 0, total: stages.length },
    stages,
    termsVersion: 0,
    amendments: [],
    updatedAt: { block: 1, time: "2027-01-01T09:00:00.000Z" },
    ...over,
  } as CaseProgress;
}

const amendment = (over: Record<string, unknown>) =>
  ({
    number: 1,
    kind: "deadline",
    status: "open",
    change: { kind: "deadline", stage: "completion", deadline: "own", to: "2027-06-30T23:00:00.000Z" },
    proposedBy: "bank",
    proposedAt: "2027-01-09T00:00:00.000Z",
    expiresAt: "2027-01-11T00:00:00.000Z",
    version: 0,
    requires: ["bank", "lawyer", "buyer"],
    consented: ["bank"],
    awaiting: ["buyer", "lawyer"],
    appliedAt: null,
    tx: "0x",
    appliedTx: null,
    replacedTermsHash: null,
    ...over,
  }) as CaseProgress["amendments"][number];

describe("worklistFactsOf", function () {
  it("awaits the missing sign-offs of a stage that takes them now, in the contract's role order, but not a locked stage's", function () {
    const facts = worklistFactsOf(
      progress([
        stage("application", { signedOff: ["buyer"] }),
        stage("completion", { status: "locked", requires: ["bank", "lawyer"] }),
        stage("held", { acceptsSignOffs: false, status: "waiting", waitingFor: "time" }),
      ]),
      NOW,
    );
    expect(facts.waitingFor).to.deep.equal([{ kind: "sign-off", stage: "application", roles: ["bank"] }]);
  });

  it("awaits an open amendment's missing consents, and no lapsed one's", function () {
    const open = worklistFactsOf(progress([], { amendments: [amendment({})] }), NOW);
    expect(open.waitingFor).to.deep.equal([{ kind: "consent", amendment: 1, roles: ["lawyer", "buyer"] }]);
    const lapsed = worklistFactsOf(progress([], { amendments: [amendment({ status: "expired", awaiting: [] })] }), NOW);
    expect(lapsed.waitingFor).to.deep.equal([]);
  });

  it("takes the earliest deadline of a stage not completed, an overdue one included, and none once the case has ended", function () {
    const stages = [
      stage("done", { status: "completed", deadline: "2027-01-02T00:00:00.000Z" }),
      stage("late", { status: "overdue", deadline: "2027-01-05T00:00:00.000Z" }),
      stage("next", { deadline: "2027-02-01T00:00:00.000Z" }),
    ];
    const facts = worklistFactsOf(progress(stages), NOW);
    expect(facts.nextDeadline).to.deep.equal({ stage: "late", at: "2027-01-05T00:00:00.000Z" });
    expect(facts.deadlineMs).to.equal(Date.parse("2027-01-05T00:00:00.000Z"));
    const ended = worklistFactsOf(progress(stages, { status: "cancelled" }), NOW);
    expect(ended.nextDeadline).to.equal(null);
    expect(ended.deadlineMs).to.equal(Infinity);
    expect(ended.waitingFor).to.deep.equal([]);
  });

  it("holds until the first moment after now at which the progress compares the time (an expiry's second after included)", function () {
    const stages = [
      stage("a", { availableAt: "2027-01-10T11:00:00.000Z", deadline: "2027-03-01T00:00:00.000Z" }),
      stage("b", { contractFloor: "2027-01-12T00:00:00.000Z" }),
    ];
    const facts = worklistFactsOf(progress(stages, { amendments: [amendment({})] }), NOW);
    expect(facts.validUntilSeconds).to.equal(Date.parse("2027-01-11T00:00:00Z") / 1000);
    const atExpiry = worklistFactsOf(
      progress(stages, { amendments: [amendment({})] }),
      Date.parse("2027-01-11T00:00:00Z") / 1000,
    );
    expect(atExpiry.validUntilSeconds, "a consent counts up to its expiry's second").to.equal(
      Date.parse("2027-01-11T00:00:00Z") / 1000 + 1,
    );
    expect(worklistFactsOf(progress([stage("x")]), NOW).validUntilSeconds).to.equal(Infinity);
  });
});
