/**
 * A whole uk-remortgage case driven only through HTTP, watched on its event stream: sign-offs by every
 * party the stages require (one of them signed by the buyer's own wallet), a too-early sign-off answered
 * 409, the dev clock moved through the 7-day reflection period, deposits, the release paying the existing
 * lender (the seller), a payer's excess withdrawn, and the case completed.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import {
  openEventStream,
  startApp,
  type AppHarness,
  type EventStreamReader,
  type TokenName,
} from "./support/app-harness";

const ETHER = 10n ** 18n;
const EXTRA = 50_000_000_000_000_000n; // what the bank pays beyond its share, to withdraw after release

describe("server: a whole case through HTTP", function () {
  let h: AppHarness;
  let stream: EventStreamReader;
  before(async function () {
    h = await startApp({ workflow: "uk-remortgage" });
  });
  after(async function () {
    stream?.close();
    await h?.close();
  });

  async function progress() {
    const res = await h.request("buyer", "GET", `/cases/${h.caseId}`);
    expect(res.status).to.equal(200);
    return res.body;
  }

  async function until(what: string, probe: (p: any) => boolean, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await progress();
      if (probe(p)) return p;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(p.stages.map((s: any) => [s.id, s.status]))}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  const stage = (p: any, id: string) => p.stages.find((s: any) => s.id === id);

  async function signOff(who: TokenName, stageId: string) {
    const res = await h.request(who, "POST", `/cases/${h.caseId}/stages/${stageId}/sign-offs`, {
      evidence: ethers.id(`${stageId} by ${who}`),
    });
    expect(res.status, `${who} signs off ${stageId}: ${JSON.stringify(res.body)}`).to.equal(202);
    expect(res.body).to.include.keys("id", "status", "txHash");
    return res.body;
  }

  async function settled(who: TokenName, submissionId: number) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const res = await h.request(who, "GET", `/submissions/${submissionId}`);
      expect(res.status).to.equal(200);
      if (res.body.status === "confirmed" || res.body.status === "failed") return res.body;
      if (Date.now() > deadline) throw new Error(`submission ${submissionId} is still ${res.body.status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("runs from application to registration, and the stream reports each stage as it completes", async function () {
    stream = await openEventStream(h.url, h.tokens.buyer, h.caseId);
    expect(stream.status).to.equal(200);
    expect(stream.headers.get("content-type")).to.match(/^text\/event-stream/);
    const first = await stream.waitFor(() => true);
    expect(first.event).to.equal("progress");
    expect(first.data).to.include({ id: h.caseId, status: "open" });
    expect(first.data.progress).to.deep.equal({ completed: 0, total: 11 });

    // The buyer signs the application with its own wallet: typed data, signature, relayed.
    const typed = await h.request(
      "buyer",
      "GET",
      `/cases/${h.caseId}/stages/application/sign-offs/typed-data?evidence=${ethers.id("application")}`,
    );
    expect(typed.status).to.equal(200);
    expect(typed.body.primaryType).to.equal("SignOff");
    expect(typed.body.domain.verifyingContract).to.equal(h.escrowAddress);
    const { domain, types, message } = typed.body;
    const wrong = await h.wallets.seller.signTypedData(domain, types, message);
    const refused = await h.request("buyer", "POST", `/cases/${h.caseId}/stages/application/sign-offs`, {
      evidence: ethers.id("application"),
      signature: wrong,
    });
    expect(refused.status, "a signature by someone else").to.equal(403);
    expect(refused.body.error.code).to.equal("FORBIDDEN");
    const signature = await h.wallets.buyer.signTypedData(domain, types, message);
    const own = await h.request("buyer", "POST", `/cases/${h.caseId}/stages/application/sign-offs`, {
      evidence: ethers.id("application"),
      signature,
    });
    expect(own.status).to.equal(202);
    expect((await settled("buyer", own.body.id)).status).to.equal("confirmed");

    await signOff("bank", "application");
    await signOff("bank", "valuation");
    await signOff("bank", "mortgage-offer");
    const offered = await until("the mortgage offer", (p) => stage(p, "mortgage-offer").status === "completed");
    const reflectionEnds = stage(offered, "offer-accepted").availableAt;
    expect(reflectionEnds, "the reflection period has started").to.be.a("string");

    // Too early: the 7-day reflection period runs.
    const early = await h.request("buyer", "POST", `/cases/${h.caseId}/stages/offer-accepted/sign-offs`, {});
    expect(early.status).to.equal(409);
    expect(early.body.error.code).to.equal("TOO_EARLY");
    expect(early.body.error.details.availableAt).to.equal(reflectionEnds);

    // The dev clock moves through it; then the buyer's acceptance goes in.
    const clock = await h.request("operator", "POST", "/dev/clock", { seconds: 7 * 86_400 + 60 });
    expect(clock.status).to.equal(200);
    expect(Date.parse(clock.body.now)).to.be.greaterThan(Date.parse(reflectionEnds));
    await signOff("buyer", "offer-accepted");

    await signOff("lawyer", "title-check");
    await signOff("seller", "redemption-statement");
    await signOff("lawyer", "pre-completion-search");
    await until(
      "the redemption statement",
      (p) =>
        stage(p, "redemption-statement").status === "completed" && stage(p, "offer-accepted").status === "completed",
    );
    await signOff("lawyer", "certificate-of-title");

    // The money: the buyer's share, and the bank's with something extra.
    const buyerDeposit = await h.request("buyer", "POST", `/cases/${h.caseId}/deposits`, {
      amount: "100000000000000000",
    });
    expect(buyerDeposit.status).to.equal(202);
    const bankDeposit = await h.request("bank", "POST", `/cases/${h.caseId}/deposits`, {
      amount: (800_000_000_000_000_000n + EXTRA).toString(),
    });
    expect(bankDeposit.status).to.equal(202);
    await until("the escrow to be funded", (p) => p.escrow.funded === true);

    const sellerBefore = await ethers.provider.getBalance(h.addresses.seller);
    await signOff("bank", "completion");
    await signOff("lawyer", "completion");
    const released = await until(
      "the release and the seller's payout",
      (p) => p.escrow.released && p.escrow.credits[h.addresses.seller] === undefined,
    );
    expect(released.escrow.credits[h.addresses.bank]).to.equal(EXTRA.toString());
    const sellerAfter = await ethers.provider.getBalance(h.addresses.seller);
    expect(sellerAfter - sellerBefore, "the existing lender is paid the redemption amount").to.equal(
      (9n * ETHER) / 10n,
    );

    // The bank takes its excess back; nothing is credited to the buyer, so it has nothing to withdraw.
    const none = await h.request("buyer", "POST", `/cases/${h.caseId}/withdrawals`, {});
    expect(none.status).to.equal(409);
    const withdrawal = await h.request("bank", "POST", `/cases/${h.caseId}/withdrawals`, {});
    expect(withdrawal.status).to.equal(202);
    expect((await settled("bank", withdrawal.body.id)).status).to.equal("confirmed");
    await until("the bank's credit paid out", (p) => p.escrow.credits[h.addresses.bank] === undefined);

    await signOff("seller", "discharge");
    await signOff("lawyer", "registration");
    const done = await until("the case to complete", (p) => p.status === "completed");
    expect(done.progress).to.deep.equal({ completed: 11, total: 11 });

    // The stream saw every stage complete, in events with increasing ids, ending with the completed case.
    const last = await stream.waitFor((e) => e.data.status === "completed");
    for (const s of done.stages) {
      const seen = stream.events.find((e) => stage(e.data, s.id).status === "completed");
      expect(seen, `an event shows ${s.id} completed`).to.not.equal(undefined);
    }
    const ids = stream.events.map((e) => BigInt(e.id as string));
    for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1], `event ids increase at ${i}`).to.equal(true);
    const completedCounts = stream.events.map((e) => e.data.progress.completed);
    expect(completedCounts).to.deep.equal([...completedCounts].sort((a, b) => a - b));
    expect(last.data.progress.completed).to.equal(11);

    // History: every on-chain event of the case, with block, time and transaction.
    const history = await h.request("lawyer", "GET", `/cases/${h.caseId}/history`);
    expect(history.status).to.equal(200);
    const names = history.body.events.map((e: any) => e.event);
    expect(names[0]).to.equal("CaseOpened");
    expect(names).to.include.members([
      "SignedOff",
      "StageCompleted",
      "Deposited",
      "EscrowFunded",
      "Credited",
      "Withdrawn",
      "CaseCompleted",
    ]);
    expect(history.body.events[0]).to.include.keys("block", "time", "tx");
  });
});
