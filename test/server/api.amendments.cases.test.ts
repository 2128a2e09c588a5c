/**
 * A whole case over HTTP in each template, with an amendment of each kind and the law's consequence of each:
 * a deadline moved by agreement, a change of terms (a share that grows is paid before the release can come,
 * one that shrinks is credited back; in a US purchase after the Closing Disclosure, the disclosure re-opens
 * and consummation's three business days count again from its new receipt, Regulation Z 1026.19(f)(2)(ii)),
 * and a party replaced (the new address takes the role; the release pays whoever holds the seller's role).
 * Everything goes through the API on a real listening server and the in-process chain, and the case's actor
 * agrees with the chain throughout.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { getTemplate } from "../../workflows";
import { getCalendar } from "../../workflows/calendars";
import { createLegalGuard } from "../../workflows/legal-guard";
import { startApp, type AppHarness, type PrincipalName } from "./support/app-harness";
import { caseOf, holderOf, settled, until, walkTo } from "./support/case-walker";

const ETHER = 10n ** 18n;
const DAY = 86_400;
const milli = (n: number) => ((BigInt(n) * ETHER) / 1000n).toString();

type Progress = any;
const stage = (p: Progress, id: string) => p.stages.find((s: { id: string }) => s.id === id);

describe("server: a whole case in each template, with an amendment of each kind", function () {
  this.timeout(300_000);
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await h?.close();
  });

  /** Proposes as `who` and has every other party the amendment awaits consent; returns the case once it applied. */
  async function amend(caseId: string, who: PrincipalName, body: Record<string, unknown>): Promise<Progress> {
    const before = await caseOf(h, caseId);
    const proposal = await h.request(who, "POST", `/cases/${caseId}/amendments`, body);
    expect(proposal.status, JSON.stringify(proposal.body)).to.equal(202);
    expect((await settled(h, who, proposal.body.id)).status).to.equal("confirmed");
    const n = before.amendments.length + 1;
    const proposed = await until(h, caseId, `amendment ${n}`, (p) => p.amendments.length === n);
    for (const role of proposed.amendments[n - 1].awaiting) {
      const holder = holderOf(h, proposed, role);
      const res = await h.request(holder, "POST", `/cases/${caseId}/amendments/${n}/consents`, { role });
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      expect((await settled(h, holder, res.body.id)).status).to.equal("confirmed");
    }
    const applied = await until(h, caseId, `amendment ${n} applied`, (p) => p.amendments[n - 1].status === "applied");
    expect(applied.termsVersion).to.equal(before.termsVersion + 1);
    return applied;
  }

  async function deposit(caseId: string, who: "bank" | "buyer", amount: string): Promise<void> {
    const res = await h.request(who, "POST", `/cases/${caseId}/deposits`, { amount, role: who });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    expect((await settled(h, who, res.body.id)).status).to.equal("confirmed");
  }

  async function resynced(): Promise<number> {
    return (await h.request(null, "GET", "/health")).body.runtime.resynced;
  }

  it("US purchase: a lower price after the Closing Disclosure re-opens it and restarts the 3 business days; the rate lock is extended; the seller's address changes", async function () {
    const id = await h.openCase({
      workflow: "us-purchase",
      terms: { price: milli(900), deposit: milli(100), loan: milli(800) },
    });
    await deposit(id, "buyer", milli(100));
    // Through the Closing Disclosure and the Loan Estimate's waiting period, the last stages before consummation.
    const disclosed = await walkTo(h, id, "loan-estimate-waiting-period");
    const firstReceipt = stage(disclosed, "closing-disclosure").completedAt;
    expect(stage(disclosed, "consummation").availableAt).to.be.a("string");

    // The appraisal came in low: the price falls, and with it the buyer's down payment.
    const repriced = await amend(id, "bank", {
      kind: "terms",
      price: milli(850),
      deposit: milli(50),
      loan: milli(800),
    });
    expect(repriced.terms).to.deep.equal({ price: milli(850), deposit: milli(50), loan: milli(800) });
    expect(repriced.amendments[0].requires, "every party, the seller's price falling").to.deep.equal([
      "bank",
      "lawyer",
      "buyer",
      "seller",
    ]);
    expect(repriced.escrow.credits[h.addresses.buyer], "the buyer's excess down payment is credited").to.equal(
      milli(50),
    );
    expect(repriced.escrow.paidByBuyer).to.equal(milli(50));
    const cd = stage(repriced, "closing-disclosure");
    expect(cd.status, "a corrected Closing Disclosure must be signed again").to.not.equal("completed");
    expect(cd.signedOff).to.deep.equal([]);
    expect(stage(repriced, "consummation").availableAt, "its wait counts from the new receipt").to.equal(null);

    const redisclosed = await walkTo(h, id, "closing-disclosure");
    const secondReceipt = stage(redisclosed, "closing-disclosure").completedAt;
    expect(Date.parse(secondReceipt)).to.be.greaterThan(Date.parse(firstReceipt));
    const calendar = getCalendar("us-federal", "America/New_York");
    expect(stage(redisclosed, "consummation").availableAt).to.equal(
      calendar.addBusinessDays(new Date(secondReceipt), 3).toISOString(),
    );

    // The rate lock is extended: the funding deadline (60 days from the lock) moves 30 days later.
    const funding = stage(redisclosed, "funding");
    const extendedTo = new Date(Date.parse(funding.deadline) + 30 * DAY * 1000).toISOString().slice(0, 10);
    const extended = await amend(id, "bank", { kind: "deadline", stage: "funding", to: extendedTo });
    expect(extended.amendments[1].requires).to.deep.equal(["bank", "buyer", "seller"]);
    expect(Date.parse(stage(extended, "funding").deadline)).to.be.greaterThan(Date.parse(funding.deadline));

    // The seller's proceeds are to go to another address of the seller's.
    const moved = await amend(id, "lawyer", { kind: "party", party: "seller", account: h.addresses.stranger });
    expect(moved.parties.seller).to.equal(h.addresses.stranger);
    expect(moved.amendments[2].change).to.deep.include({ kind: "party", role: "seller", to: h.addresses.stranger });
    expect((await h.request("seller", "GET", `/cases/${id}`)).status, "the old address is no party now").to.equal(404);

    const strangerBefore = await ethers.provider.getBalance(h.addresses.stranger);
    const done = await walkTo(h, id, "recording");
    expect(done.status).to.equal("completed");
    await until(h, id, "the seller's payout", (p) => p.escrow.credits[h.addresses.stranger] === undefined);
    expect((await ethers.provider.getBalance(h.addresses.stranger)) - strangerBefore, "paid the new price").to.equal(
      BigInt(milli(850)),
    );
    const history = (await h.request("buyer", "GET", `/cases/${id}/history`)).body.events.map(
      (e: { event: string }) => e.event,
    );
    expect(history.filter((e: string) => e === "AmendmentApplied")).to.have.length(3);
    expect(history).to.include.members(["StageReopened", "PartyReplaced"]);
    expect(await resynced()).to.equal(0);
  });

  it("England and Wales purchase: after exchange a new completion date by agreement, a price change by every party, the buyer's new conveyancer", async function () {
    const id = await h.openCase({
      workflow: "uk-purchase",
      terms: { price: milli(900), deposit: milli(100), loan: milli(800) },
    });
    const exchanged = await walkTo(h, id, "exchange");
    expect(stage(exchanged, "exchange").status).to.equal("completed");

    const completion = stage(exchanged, "completion");
    const newDate = new Date(Date.parse(completion.deadline) - 30 * DAY * 1000).toISOString().slice(0, 10);
    const agreed = await amend(id, "lawyer", { kind: "deadline", stage: "completion", to: newDate });
    expect(agreed.amendments[0].requires).to.deep.equal(["bank", "lawyer", "buyer", "seller"]);
    const guard = createLegalGuard(getTemplate("uk-purchase"));
    expect(stage(agreed, "completion").deadline, "the end of the agreed day in London").to.equal(
      guard.endOfLocalDate(newDate).toISOString(),
    );

    // A defect found after exchange: the price falls by agreement of every party (a variation in writing).
    const varied = await amend(id, "buyer", {
      kind: "terms",
      price: milli(880),
      deposit: milli(100),
      loan: milli(780),
    });
    expect(varied.terms.price).to.equal(milli(880));
    expect(stage(varied, "exchange").status, "exchange stays: the contract binds").to.equal("completed");

    const newConveyancer = await amend(id, "buyer", { kind: "party", party: "lawyer", account: h.addresses.stranger });
    expect(newConveyancer.parties.lawyer).to.equal(h.addresses.stranger);
    expect(stage(newConveyancer, "exchange").signedOff, "the old conveyancer's sign-offs stay history").to.include(
      "lawyer",
    );

    const sellerBefore = await ethers.provider.getBalance(h.addresses.seller);
    const done = await walkTo(h, id, "registration");
    expect(done.status).to.equal("completed");
    await until(h, id, "the seller's payout", (p) => p.escrow.credits[h.addresses.seller] === undefined);
    expect((await ethers.provider.getBalance(h.addresses.seller)) - sellerBefore).to.equal(BigInt(milli(880)));
    expect(await resynced()).to.equal(0);
  });

  it("England and Wales remortgage: a larger redemption after funding leaves the escrow waiting for the new lender's difference; the borrower rotates its key", async function () {
    const id = await h.openCase({
      workflow: "uk-remortgage",
      terms: { price: milli(900), deposit: milli(100), loan: milli(800) },
    });
    await deposit(id, "buyer", milli(100));
    await deposit(id, "bank", milli(800));
    const funded = await until(h, id, "the escrow funded", (p) => p.escrow.funded);

    const rotated = await amend(id, "buyer", { kind: "party", party: "buyer", account: h.addresses.stranger });
    expect(rotated.parties.buyer).to.equal(h.addresses.stranger);
    expect(rotated.escrow.paidByBuyer, "what the old key paid stays paid").to.equal(funded.escrow.paidByBuyer);

    const grown = await amend(id, "bank", { kind: "terms", price: milli(950), deposit: milli(100), loan: milli(850) });
    expect(grown.escrow.funded, "the bank's larger share is not paid yet").to.equal(false);
    const signed = await walkTo(h, id, "certificate-of-title");
    expect(stage(signed, "completion").status).to.not.equal("completed");

    const sellerBefore = await ethers.provider.getBalance(h.addresses.seller);
    const done = await walkTo(h, id, "registration");
    expect(done.escrow.paidByBank).to.equal(milli(850));
    expect(done.status).to.equal("completed");
    await until(h, id, "the existing lender's payout", (p) => p.escrow.credits[h.addresses.seller] === undefined);
    expect((await ethers.provider.getBalance(h.addresses.seller)) - sellerBefore).to.equal(BigInt(milli(950)));
    expect(await resynced()).to.equal(0);
  });
});
