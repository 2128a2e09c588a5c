/**
 * Deliveries end to end: a real receiver on 127.0.0.1 that verifies every delivery with the Standard Webhooks
 * reference library receives each event type from cases walked through the API (a US purchase to completion,
 * a remortgage amended and then cancelled, a US purchase left to pass its Loan Estimate deadline), each case's
 * events in the order of the delivery log, with the law's moments in the payloads.
 */
import { expect } from "chai";
import { startApp, type AppHarness } from "../support/app-harness";
import { caseOf, clockPast, settled, until, walkTo } from "../support/case-walker";
import { startReceiver, type Receiver } from "./support/receiver";

const ALL_TYPES = [
  "stage.completed",
  "signoff.awaited",
  "consent.awaited",
  "deadline.approaching",
  "case.completed",
  "case.expired",
  "case.cancelled",
  "party.credited",
  "amendment.proposed",
  "amendment.applied",
];

describe("server: webhook deliveries (server/webhooks)", function () {
  this.timeout(240_000);
  let h: AppHarness;
  let bank: Receiver;
  let buyer: Receiver;
  let bankHook: string;

  before(async function () {
    h = await startApp({ webhooks: { pollMs: 50, schedulerMs: 50 } });
    bank = await startReceiver();
    buyer = await startReceiver();
    const made = await h.request("bank", "POST", "/webhooks", {
      url: bank.url,
      eventTypes: ALL_TYPES,
      businessDaysBefore: 1,
    });
    expect(made.status, JSON.stringify(made.body)).to.equal(201);
    bank.secrets.push(made.body.secret);
    bankHook = made.body.id;
    const mine = await h.request("buyer", "POST", "/webhooks", {
      url: buyer.url,
      eventTypes: ["signoff.awaited", "consent.awaited"],
    });
    buyer.secrets.push(mine.body.secret);
  });

  after(async function () {
    await h?.close();
    await bank?.close();
    await buyer?.close();
  });

  afterEach(function () {
    expect(bank.rejected, "deliveries that did not verify").to.deep.equal([]);
    expect(buyer.rejected, "deliveries that did not verify").to.deep.equal([]);
  });

  const ofCase = (r: Receiver, caseId: string, type?: string) =>
    r.unique().filter((d) => d.payload.data.caseId === caseId && (type === undefined || d.type === type));

  async function deliveryLog(caseId: string) {
    const res = await h.request("bank", "GET", `/webhooks/${bankHook}/deliveries?limit=500`);
    expect(res.status).to.equal(200);
    return res.body.deliveries.filter((d: any) => d.caseId === caseId).reverse();
  }

  it("walks a US purchase to completion: every stage completed, the awaited sign-offs, the credits, the case completed", async function () {
    const id = await h.openCase({ workflow: "us-purchase" });
    const done = await walkTo(h, id, "recording");
    expect(done.status).to.equal("completed");
    await bank.waitFor("case.completed", () => ofCase(bank, id, "case.completed").length === 1);

    const completed = ofCase(bank, id, "stage.completed").map((d) => d.payload.data.stage.id);
    expect(completed).to.have.members(done.stages.map((s: { id: string }) => s.id));
    expect(completed).to.have.length(done.stages.length);

    // The bank hears only of its own awaited sign-offs; the buyer only of the buyer's.
    const bankAwaited = ofCase(bank, id, "signoff.awaited");
    expect(bankAwaited.map((d) => d.payload.data.role)).to.satisfy((roles: string[]) =>
      roles.every((r) => r === "bank"),
    );
    // Awaited only while the stage is open and unsigned: a stage the bank signed early, while locked, never awaited it.
    const bankStages = done.stages.filter((s: any) => s.requires.includes("bank")).map((s: any) => s.id);
    expect(bankStages).to.include.members(bankAwaited.map((d) => d.payload.data.stage.id));
    expect(bankAwaited.map((d) => d.payload.data.stage.id)).to.include("application");
    const buyerAwaited = ofCase(buyer, id, "signoff.awaited");
    expect(buyerAwaited.map((d) => d.payload.data.role)).to.satisfy((r: string[]) => r.every((x) => x === "buyer"));
    expect(buyerAwaited.map((d) => d.payload.data.stage.id)).to.include("consummation");

    // Consummation waits 3 business days in law: its awaited sign-off is dated at that legal moment, not the contract's floor.
    const consummation = done.stages.find((s: any) => s.id === "consummation");
    const awaitedConsummation = buyerAwaited.find((d) => d.payload.data.stage.id === "consummation")!;
    expect(awaitedConsummation.payload.data.stage.availableAt).to.equal(consummation.availableAt);
    expect(awaitedConsummation.payload.data.stage.contractFloor).to.equal(consummation.contractFloor);
    expect(Date.parse(awaitedConsummation.payload.timestamp)).to.be.at.least(Date.parse(consummation.availableAt));

    const credited = ofCase(bank, id, "party.credited");
    expect(credited.map((d) => d.payload.data.roles).flat()).to.include("seller");
    const seller = credited.find((d) => d.payload.data.roles.includes("seller"))!;
    expect(seller.payload.data.amount).to.equal(done.terms.price);

    // In order per case: the receiver saw them in the order of the delivery log, the case's completion last.
    const log = await deliveryLog(id);
    expect(ofCase(bank, id).map((d) => d.id)).to.deep.equal(log.map((d: any) => d.id));
    expect(log.every((d: any) => d.status === "delivered")).to.equal(true);
    expect(ofCase(bank, id).at(-1)!.type).to.equal("case.completed");
  });

  it("tells of an amendment proposed, the consents awaited and the amendment applied, then of the cancellation", async function () {
    const id = await h.openCase();
    const opened = await caseOf(h, id);
    const date = new Date(Date.parse(opened.updatedAt.time) + 60 * 86_400_000).toISOString().slice(0, 10);
    const proposed = await h.request("lawyer", "POST", `/cases/${id}/amendments`, {
      kind: "deadline",
      stage: "completion",
      to: date,
    });
    expect(proposed.status, JSON.stringify(proposed.body)).to.equal(202);
    await settled(h, "lawyer", proposed.body.id);
    await bank.waitFor(
      "amendment.proposed and the bank's consent awaited",
      () => ofCase(bank, id, "amendment.proposed").length === 1 && ofCase(bank, id, "consent.awaited").length === 1,
    );
    const awaited = ofCase(bank, id, "consent.awaited")[0].payload.data;
    expect(awaited).to.deep.include({ role: "bank", party: h.addresses.bank });
    expect(awaited.amendment).to.deep.include({ number: 1, kind: "deadline" });
    await buyer.waitFor("the buyer's consent awaited", () => ofCase(buyer, id, "consent.awaited").length === 1);

    for (const who of ["bank", "buyer"] as const) {
      const res = await h.request(who, "POST", `/cases/${id}/amendments/1/consents`, {});
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      await settled(h, who, res.body.id);
    }
    await bank.waitFor("amendment.applied", () => ofCase(bank, id, "amendment.applied").length === 1);
    const applied = ofCase(bank, id, "amendment.applied")[0].payload.data.amendment;
    expect(applied).to.deep.include({ number: 1, status: "applied" });

    for (const who of ["bank", "lawyer", "buyer", "seller"] as const) {
      const res = await h.request(who, "POST", `/cases/${id}/cancellation`, {});
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      await settled(h, who, res.body.id);
    }
    await bank.waitFor("case.cancelled", () => ofCase(bank, id, "case.cancelled").length === 1);
    expect(ofCase(bank, id).map((d) => d.id)).to.deep.equal((await deliveryLog(id)).map((d: any) => d.id));
  });

  it("warns a business day before a legal deadline, dated by the case's calendar, then tells of the expiry", async function () {
    const id = await h.openCase({ workflow: "us-purchase" });
    for (const who of ["buyer", "bank"] as const) {
      const res = await h.request(who, "POST", `/cases/${id}/stages/application/sign-offs`, {});
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
    }
    const after = await until(h, id, "the application completed", (p) => p.stages[0].status === "completed");
    const estimate = after.stages.find((s: any) => s.id === "loan-estimate");
    expect(estimate.deadline).to.be.a("string");
    expect(ofCase(bank, id, "deadline.approaching")).to.deep.equal([]);

    // Into the deadline's last day (in New York), short of the deadline: a business day away has come.
    const deadline = Date.parse(estimate.deadline);
    await clockPast(h, after.updatedAt.time, new Date(deadline - 6 * 3_600_000).toISOString());
    await bank.waitFor("deadline.approaching", () => ofCase(bank, id, "deadline.approaching").length > 0);
    const warned = ofCase(bank, id, "deadline.approaching").find((d) => d.payload.data.stage.id === "loan-estimate")!;
    expect(warned.payload.data).to.deep.include({ businessDaysBefore: 1, deadline: estimate.deadline });
    expect(warned.payload.data.stage.deadline).to.equal(estimate.deadline);
    expect(warned.payload.data.stage.contractCeiling).to.equal(estimate.contractCeiling);
    // Dated at the start (00:00 in New York) of the business day before the last day.
    const warnedAt = new Date(warned.payload.timestamp);
    expect(warnedAt.toLocaleTimeString("en-GB", { timeZone: "America/New_York" })).to.equal("00:00:00");
    expect(warnedAt.getTime()).to.be.at.most(deadline - 2 * 86_400_000 + 3_600_000);

    const now = (await caseOf(h, id)).updatedAt.time;
    // The contract lets `expire` act once its ceiling has passed (the longest the deadline can be in seconds).
    await clockPast(h, now, new Date(Date.parse(estimate.contractCeiling) + 60_000).toISOString());
    await bank.waitFor("case.expired", () => ofCase(bank, id, "case.expired").length === 1, 60_000);
    expect(ofCase(bank, id, "case.expired")[0].payload.data.stage.id).to.equal("loan-estimate");
    expect(ofCase(bank, id).map((d) => d.id)).to.deep.equal((await deliveryLog(id)).map((d: any) => d.id));
  });

  it("sends nothing of a case to a principal that is not its party", async function () {
    const stranger = await startReceiver();
    try {
      const made = await h.request("stranger", "POST", "/webhooks", { url: stranger.url, eventTypes: ALL_TYPES });
      stranger.secrets.push(made.body.secret);
      const id = await h.openCase();
      await bank.waitFor("the new case's first delivery", () => ofCase(bank, id).length > 0);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(stranger.requests).to.equal(0);
    } finally {
      await stranger.close();
    }
  });
});
