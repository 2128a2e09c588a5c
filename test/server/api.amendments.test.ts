/**
 * Amendments by consent over a real listening server on the in-process chain: a proposal, consents from the
 * managed key and from the party's own wallet (typed data, signature, relayed), a withdrawal, proposals that
 * expire or are superseded, and the refusals (400, 403, 404, 409) that lose nothing. What the API shows is the
 * law's moment (a deadline moved to a date is the end of that day in the case's zone), and the case's actor
 * agrees with the chain throughout (no resync).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { openEventStream, startApp, type AppHarness } from "./support/app-harness";
import { caseOf, settled, until } from "./support/case-walker";

const DAY = 86_400;

/** A local date `days` after the instant `iso`, as YYYY-MM-DD (UTC's date: the tests use dates far from midnight). */
function dateAfter(iso: string, days: number): string {
  return new Date(Date.parse(iso) + days * DAY * 1000).toISOString().slice(0, 10);
}

/** 00:00 in London of the day after `date` (the law's "by the end of" that date). */
function endOfLondonDate(date: string): string {
  const next = new Date(`${date}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  const noon = new Date(`${next.toISOString().slice(0, 10)}T12:00:00Z`);
  const london = Number(
    new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/London", hour: "2-digit", hour12: false }).format(noon),
  );
  return new Date(next.getTime() - (london - 12) * 3_600_000).toISOString();
}

describe("server: amendments by consent (/cases/:id/amendments)", function () {
  this.timeout(120_000);
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await h?.close();
  });

  async function propose(who: Parameters<AppHarness["request"]>[0], caseId: string, body: unknown) {
    const res = await h.request(who, "POST", `/cases/${caseId}/amendments`, body);
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    expect(res.body.kind).to.equal("proposeAmendment");
    const done = await settled(h, who as never, res.body.id);
    expect(done.status, JSON.stringify(done)).to.equal("confirmed");
    return done;
  }

  async function consent(who: Parameters<AppHarness["request"]>[0], caseId: string, n: number, body: unknown = {}) {
    const res = await h.request(who, "POST", `/cases/${caseId}/amendments/${n}/consents`, body);
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    return settled(h, who as never, res.body.id);
  }

  it("states each template's consent rules and their legal basis on GET /workflows/:id", async function () {
    const us = (await h.request(null, "GET", "/workflows/us-purchase")).body;
    expect(us.amendments).to.deep.include({
      deadline: ["bank", "buyer", "seller"],
      terms: ["bank", "lawyer", "buyer", "seller"],
      party: ["bank", "lawyer", "buyer", "seller"],
      reopenedByTerms: ["closing-disclosure"],
    });
    expect(us.amendments.basis).to.contain("1026.19(f)(2)(ii)");
    const remortgage = (await h.request(null, "GET", "/workflows/uk-remortgage")).body;
    expect(remortgage.amendments.deadline).to.deep.equal(["bank", "lawyer", "buyer"]);
    expect(remortgage.amendments.reopenedByTerms).to.deep.equal([]);
  });

  it("moves the completion deadline to a date: the lawyer proposes, the bank consents by its managed key, the buyer with its own wallet", async function () {
    const id = await h.openCase();
    const opened = await caseOf(h, id);
    expect(opened.termsVersion).to.equal(0);
    expect(opened.amendments).to.deep.equal([]);
    const before = opened.stages.find((s: { id: string }) => s.id === "completion").deadline;
    const date = dateAfter(opened.updatedAt.time, 60);

    await propose("lawyer", id, { kind: "deadline", stage: "completion", to: date });
    const proposed = await until(h, id, "the proposal", (p) => p.amendments.length === 1);
    const [a] = proposed.amendments;
    expect(a).to.deep.include({ number: 1, kind: "deadline", status: "open", proposedBy: "lawyer", version: 0 });
    expect(a.change).to.deep.equal({
      kind: "deadline",
      stage: "completion",
      deadline: "own",
      to: endOfLondonDate(date),
    });
    // uk-remortgage: the new lender, the conveyancer and the borrower agree a new completion deadline.
    expect(a.requires).to.deep.equal(["bank", "lawyer", "buyer"]);
    expect(a.consented).to.deep.equal(["lawyer"]);
    expect(a.awaiting).to.deep.equal(["bank", "buyer"]);
    expect((await h.request("seller", "GET", `/cases/${id}/amendments/1`)).body).to.deep.equal(a);

    // Whose consent is not asked: 403; the operator acts in no case: 403; a stranger sees nothing: 404.
    const seller = await h.request("seller", "POST", `/cases/${id}/amendments/1/consents`, {});
    expect(seller.status, JSON.stringify(seller.body)).to.equal(403);
    expect((await h.request("operator", "POST", `/cases/${id}/amendments/1/consents`, {})).status).to.equal(403);
    expect((await h.request("stranger", "POST", `/cases/${id}/amendments/1/consents`, {})).status).to.equal(404);
    expect((await h.request("stranger", "GET", `/cases/${id}/amendments`)).status).to.equal(404);
    const again = await h.request("lawyer", "POST", `/cases/${id}/amendments/1/consents`, {});
    expect(again.status, "the proposer consented with its proposal").to.equal(409);
    expect(again.body.error.details.reason).to.equal("AlreadyConsented");

    expect((await consent("bank", id, 1)).status).to.equal("confirmed");
    const typed = await h.request("buyer", "GET", `/cases/${id}/amendments/1/consents/typed-data`);
    expect(typed.status, JSON.stringify(typed.body)).to.equal(200);
    expect(typed.body.primaryType).to.equal("Consent");
    expect(typed.body.message).to.deep.equal({ caseId: id, amendment: 1, kind: 0, version: 0, role: 2, epoch: 0 });
    const { domain, types, message } = typed.body;
    const forged = await h.wallets.seller.signTypedData(domain, types, message);
    const refused = await h.request("buyer", "POST", `/cases/${id}/amendments/1/consents`, { signature: forged });
    expect(refused.status, "a signature by someone else").to.equal(403);
    const signature = await h.wallets.buyer.signTypedData(domain, types, message);
    const relayed = await consent("buyer", id, 1, { signature });
    expect(relayed.status, JSON.stringify(relayed)).to.equal("confirmed");

    const applied = await until(h, id, "the amendment applied", (p) => p.termsVersion === 1);
    expect(applied.amendments[0]).to.deep.include({ status: "applied", awaiting: [] });
    expect(applied.amendments[0].consented).to.deep.equal(["bank", "lawyer", "buyer"]);
    expect(applied.amendments[0].replacedTermsHash).to.match(/^0x[0-9a-f]{64}$/);
    const completion = applied.stages.find((s: { id: string }) => s.id === "completion");
    expect(completion.deadline, "the law's deadline is the agreed one").to.equal(endOfLondonDate(date));
    expect(completion.deadline).to.not.equal(before);
    expect(completion.contractCeiling, "the contract's ceiling is the same moment").to.equal(endOfLondonDate(date));

    const history = await h.request("buyer", "GET", `/cases/${id}/history`);
    const names = history.body.events.map((e: { event: string }) => e.event);
    expect(names).to.include.members(["AmendmentProposed", "AmendmentConsented", "AmendmentApplied"]);
    const appliedEvent = history.body.events.find((e: { event: string }) => e.event === "AmendmentApplied");
    expect(appliedEvent.args).to.deep.include({ amendment: "1", version: "1" });
    expect(appliedEvent.args.replacedTermsHash).to.equal(applied.amendments[0].replacedTermsHash);

    const health = await h.request(null, "GET", "/health");
    expect(health.body.runtime.resynced, "the case's actor agreed with the chain at every block").to.equal(0);
  });

  it("acts on a deadline moved earlier at its new moment: the engine expires the case then, and the payers are refunded", async function () {
    const id = await h.openCase();
    const deposit = await h.request("buyer", "POST", `/cases/${id}/deposits`, { amount: "100000000000000000" });
    expect(deposit.status).to.equal(202);
    const opened = await until(h, id, "the buyer's deposit", (p) => p.escrow.paidByBuyer === "100000000000000000");
    const soon = new Date(Date.parse(opened.updatedAt.time) + 2 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    await propose("bank", id, { kind: "deadline", stage: "completion", to: soon });
    const proposed = await until(h, id, "the proposal", (p) => p.amendments.length === 1);
    expect(proposed.amendments[0].change.to).to.equal(new Date(soon).toISOString());
    for (const who of ["lawyer", "buyer"] as const) await consent(who, id, 1);
    const moved = await until(h, id, "the earlier deadline", (p) => p.termsVersion === 1);
    expect(moved.stages.find((s: { id: string }) => s.id === "completion").deadline).to.equal(
      new Date(soon).toISOString(),
    );
    expect(moved.status).to.equal("open");

    expect((await h.request("operator", "POST", "/dev/clock", { seconds: 3 * 3_600 })).status).to.equal(200);
    const expired = await until(h, id, "the engine's expire", (p) => p.status === "expired");
    expect(expired.escrow.credits[h.addresses.buyer], "the buyer's deposit comes back").to.equal("100000000000000000");
  });

  it("pays a replaced party what is credited to it, since it is no party of the case any more", async function () {
    const id = await h.openCase();
    const loan = "800000000000000000";
    const paid = await h.request("bank", "POST", `/cases/${id}/deposits`, { amount: loan });
    expect((await settled(h, "bank", paid.body.id)).status).to.equal("confirmed");
    // A smaller loan: the bank is credited its excess at once.
    await propose("bank", id, {
      kind: "terms",
      price: "800000000000000000",
      deposit: "100000000000000000",
      loan: "700000000000000000",
    });
    for (const who of ["lawyer", "buyer", "seller"] as const) await consent(who, id, 1);
    const credited = await until(h, id, "the bank's excess credited", (p) => p.termsVersion === 1);
    expect(credited.escrow.credits[h.addresses.bank]).to.equal("100000000000000000");

    // The bank's key is rotated; its credit stays its own, and the engine pays it out to the old address.
    await propose("bank", id, { kind: "party", party: "bank", account: h.addresses.stranger });
    const before = await ethers.provider.getBalance(h.addresses.bank);
    for (const who of ["lawyer", "buyer", "seller"] as const) await consent(who, id, 2);
    const rotated = await until(
      h,
      id,
      "the old bank's credit paid out",
      (p) => p.parties.bank === h.addresses.stranger && p.escrow.credits[h.addresses.bank] === undefined,
    );
    expect(rotated.escrow.paidByBank).to.equal("700000000000000000");
    expect((await ethers.provider.getBalance(h.addresses.bank)) - before).to.equal(100000000000000000n);
    expect((await h.request("bank", "GET", `/cases/${id}`)).status, "the old key sees the case no more").to.equal(404);
  });

  it("tells the case's stream when a proposal lapses, though nothing happened on chain", async function () {
    const id = await h.openCase();
    const opened = await caseOf(h, id);
    const soon = new Date(Date.parse(opened.updatedAt.time) + 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    await propose("bank", id, {
      kind: "deadline",
      stage: "completion",
      to: dateAfter(opened.updatedAt.time, 30),
      expiresAt: soon,
    });
    const stream = await openEventStream(h.url, h.tokens.buyer, id);
    try {
      await stream.waitFor((e) => e.data.amendments?.[0]?.status === "open");
      expect((await h.request("operator", "POST", "/dev/clock", { seconds: 2 * 3_600 })).status).to.equal(200);
      const lapsed = await stream.waitFor((e) => e.data.amendments?.[0]?.status === "expired");
      expect(lapsed.data.termsVersion).to.equal(0);
      expect(lapsed.data.updatedAt.block, "no block since the proposal").to.equal(
        (await caseOf(h, id)).updatedAt.block,
      );
    } finally {
      stream.close();
    }
  });

  it("refuses what the chain would refuse, with a clear 400 or 409, and records nothing", async function () {
    const id = await h.openCase();
    const bad = [
      [{ kind: "deadline", stage: "completion", to: "2027-02-30" }, "to"],
      [{ kind: "deadline", stage: "completion", to: "next week" }, "to"],
      [{ kind: "terms", price: "3", deposit: "1", loan: "1" }, "price"],
      [{ kind: "terms", price: "1", deposit: "1", loan: "79228162514264337593543950336" }, "loan"],
      [{ kind: "party", party: "lawyer", account: ethers.ZeroAddress }, "account"],
      [{ kind: "rename" }, "kind"],
      [{ kind: "deadline", stage: "completion", to: "2027-03-01", expiresAt: "tomorrow" }, "expiresAt"],
    ] as const;
    for (const [body, field] of bad) {
      const res = await h.request("bank", "POST", `/cases/${id}/amendments`, body);
      expect(res.status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`).to.equal(400);
      expect(JSON.stringify(res.body.error.details), `names the field ${field}`).to.contain(field);
    }
    const noStage = await h.request("bank", "POST", `/cases/${id}/amendments`, {
      kind: "deadline",
      stage: "nope",
      to: "2027-03-01",
    });
    expect(noStage.status).to.equal(404);
    const unmovable = await h.request("bank", "POST", `/cases/${id}/amendments`, {
      kind: "deadline",
      stage: "valuation",
      to: "2027-03-01",
    });
    expect(unmovable.status, JSON.stringify(unmovable.body)).to.equal(400);
    expect(unmovable.body.error.message).to.contain("no deadline of its own");
    const same = await h.request("bank", "POST", `/cases/${id}/amendments`, {
      kind: "party",
      party: "lawyer",
      account: h.addresses.lawyer,
    });
    expect(same.status).to.equal(409);
    const past = await h.request("bank", "POST", `/cases/${id}/amendments`, {
      kind: "terms",
      price: "1",
      deposit: "1",
      loan: "0",
      expiresAt: "2020-01-01T00:00:00Z",
    });
    expect(past.status, JSON.stringify(past.body)).to.equal(400);
    expect((await h.request("bank", "GET", `/cases/${id}/amendments/1`)).status).to.equal(404);
    expect((await h.request("bank", "GET", `/cases/${id}/amendments/0`)).status).to.equal(400);
    expect((await caseOf(h, id)).amendments, "nothing was proposed").to.deep.equal([]);
  });

  it("takes a consent back until the amendment applies: a signature made before the withdrawal is void", async function () {
    const id = await h.openCase();
    const opened = await caseOf(h, id);
    // A higher price: every party of uk-remortgage consents to a change of terms.
    await propose("bank", id, {
      kind: "terms",
      price: "950000000000000000",
      deposit: "150000000000000000",
      loan: "800000000000000000",
    });
    await until(h, id, "the proposal", (p) => p.amendments.length === 1);
    const typed = (await h.request("buyer", "GET", `/cases/${id}/amendments/1/consents/typed-data`)).body;
    const early = await h.wallets.buyer.signTypedData(typed.domain, typed.types, typed.message);
    expect((await consent("buyer", id, 1)).status).to.equal("confirmed");
    await until(h, id, "the buyer's consent", (p) => p.amendments[0].consented.includes("buyer"));

    const withdrawn = await h.request("buyer", "DELETE", `/cases/${id}/amendments/1/consents`, {});
    expect(withdrawn.status, JSON.stringify(withdrawn.body)).to.equal(202);
    expect((await settled(h, "buyer", withdrawn.body.id)).status).to.equal("confirmed");
    const after = await until(h, id, "the withdrawal", (p) => !p.amendments[0].consented.includes("buyer"));
    expect(after.amendments[0].awaiting).to.include("buyer");
    const twice = await h.request("buyer", "DELETE", `/cases/${id}/amendments/1/consents`, {});
    expect(twice.status, "no consent standing").to.equal(409);

    const stale = await h.request("buyer", "POST", `/cases/${id}/amendments/1/consents`, { signature: early });
    expect(stale.status, "signed before the withdrawal").to.equal(409);
    expect(stale.body.error.details.reason).to.equal("StaleEpoch");
    expect(stale.body.error.message).to.contain("sign the typed data again");
    const fresh = (await h.request("buyer", "GET", `/cases/${id}/amendments/1/consents/typed-data`)).body;
    expect(fresh.message.epoch).to.equal(1);
    const signature = await h.wallets.buyer.signTypedData(fresh.domain, fresh.types, fresh.message);
    expect((await consent("buyer", id, 1, { signature })).status).to.equal("confirmed");
    for (const who of ["lawyer", "seller"] as const) expect((await consent(who, id, 1)).status).to.equal("confirmed");
    const applied = await until(h, id, "the new terms", (p) => p.termsVersion === 1);
    expect(applied.terms).to.deep.equal({
      price: "950000000000000000",
      deposit: "150000000000000000",
      loan: "800000000000000000",
    });
    expect(applied.amendments[0].change.from).to.deep.equal(opened.terms);
    const late = await h.request("bank", "DELETE", `/cases/${id}/amendments/1/consents`, {});
    expect(late.status, "applied: its consents stand").to.equal(409);
  });

  it("leaves the case as it was when a proposal expires or another applies first", async function () {
    const id = await h.openCase();
    const opened = await caseOf(h, id);
    const soon = new Date(Date.parse(opened.updatedAt.time) + 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    await propose("bank", id, {
      kind: "deadline",
      stage: "completion",
      to: dateAfter(opened.updatedAt.time, 30),
      expiresAt: soon,
    });
    await propose("bank", id, { kind: "deadline", stage: "completion", to: dateAfter(opened.updatedAt.time, 40) });
    await propose("bank", id, { kind: "deadline", stage: "completion", to: dateAfter(opened.updatedAt.time, 50) });
    await until(h, id, "three proposals", (p) => p.amendments.length === 3);

    expect((await h.request("operator", "POST", "/dev/clock", { seconds: 2 * 3_600 })).status).to.equal(200);
    const expired = await until(h, id, "the first to expire", (p) => p.amendments[0].status === "expired");
    expect(expired.amendments[0].awaiting).to.deep.equal([]);
    const tooLate = await h.request("lawyer", "POST", `/cases/${id}/amendments/1/consents`, {});
    expect(tooLate.status).to.equal(409);
    expect(tooLate.body.error.details.reason).to.equal("Expired");

    for (const who of ["lawyer", "buyer"] as const) await consent(who, id, 3);
    const third = await until(h, id, "the third applied", (p) => p.termsVersion === 1);
    expect(third.amendments.map((a: { status: string }) => a.status)).to.deep.equal([
      "expired",
      "superseded",
      "applied",
    ]);
    const superseded = await h.request("lawyer", "POST", `/cases/${id}/amendments/2/consents`, {});
    expect(superseded.status).to.equal(409);
    expect(superseded.body.error.details.reason).to.equal("Superseded");
    expect(third.stages.find((s: { id: string }) => s.id === "completion").deadline).to.equal(
      endOfLondonDate(dateAfter(opened.updatedAt.time, 50)),
    );
  });
});
