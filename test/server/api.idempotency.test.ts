/**
 * Idempotency-Key on POST and DELETE: the same key and body give the same answer and one effect; another
 * body (or path) under the same key is a conflict; a request still in flight is a conflict; a refusal keeps
 * nothing; and a record left "in progress" by a crashed process runs again without a second effect.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { startApp, type AppHarness } from "./support/app-harness";
import { requestHash } from "../../server/idempotency";

describe("server: Idempotency-Key", function () {
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await h?.close();
  });

  const signOffPath = (stage: string, caseId = h.caseId) => `/cases/${caseId}/stages/${stage}/sign-offs`;
  const key = (label: string) => ({ "Idempotency-Key": `${label}-${Math.random().toString(36).slice(2)}` });

  async function signedOffEvents(caseId: string, stage: number) {
    const history = await h.request("operator", "GET", `/cases/${caseId}/history`);
    return history.body.events.filter((e: any) => e.event === "SignedOff" && Number(e.args.stage) === stage);
  }
  async function until(what: string, probe: () => Promise<boolean>) {
    const deadline = Date.now() + 20_000;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("replays the same answer for the same key and body, with one effect", async function () {
    const headers = key("valuation");
    const body = { evidence: ethers.id("valuation report") };
    const first = await h.request("bank", "POST", signOffPath("valuation"), body, headers);
    expect(first.status).to.equal(202);
    const second = await h.request("bank", "POST", signOffPath("valuation"), body, headers);
    expect(second.status).to.equal(202);
    expect(second.body).to.deep.equal(first.body);
    expect(second.headers.get("idempotent-replayed")).to.equal("true");
    await until("the sign-off", async () => (await signedOffEvents(h.caseId, 1)).length === 1);
    const third = await h.request("bank", "POST", signOffPath("valuation"), body, headers);
    expect(third.body.id).to.equal(first.body.id);
    expect(await signedOffEvents(h.caseId, 1)).to.have.length(1);
  });

  it("answers 409 for the same key with another body or path", async function () {
    const headers = key("other-body");
    expect(
      (await h.request("lawyer", "POST", signOffPath("title-check"), { evidence: ethers.id("a") }, headers)).status,
    ).to.equal(202);
    const otherBody = await h.request(
      "lawyer",
      "POST",
      signOffPath("title-check"),
      { evidence: ethers.id("b") },
      headers,
    );
    expect(otherBody.status).to.equal(409);
    expect(otherBody.body.error).to.include({ code: "IDEMPOTENCY_CONFLICT" });
    expect(otherBody.body.error.message).to.match(/another request/);
    const otherPath = await h.request(
      "lawyer",
      "POST",
      signOffPath("pre-completion-search"),
      { evidence: ethers.id("a") },
      headers,
    );
    expect(otherPath.status).to.equal(409);
  });

  it("keeps each principal's keys apart", async function () {
    const headers = { "Idempotency-Key": "shared-key-name" };
    const buyer = await h.request("buyer", "POST", signOffPath("application"), {}, headers);
    const bank = await h.request("bank", "POST", signOffPath("application"), {}, headers);
    expect(buyer.status).to.equal(202);
    expect(bank.status).to.equal(202);
    expect(bank.body.id).to.not.equal(buyer.body.id);
  });

  it("answers 409 to a second request while the first is still in flight, and makes one case", async function () {
    const headers = key("open");
    const body = {
      workflow: "uk-remortgage",
      parties: {
        bank: h.addresses.bank,
        lawyer: h.addresses.lawyer,
        buyer: h.addresses.buyer,
        seller: h.addresses.seller,
      },
      terms: { price: "3", deposit: "1", loan: "2" },
    };
    const before = (await h.request("operator", "GET", "/cases")).body.cases.length;
    const [a, b] = await Promise.all([
      h.request("bank", "POST", "/cases", body, headers),
      h.request("bank", "POST", "/cases", body, headers),
    ]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).to.deep.equal([201, 409]);
    const conflict = a.status === 409 ? a : b;
    expect(conflict.body.error.details.reason).to.equal("IN_FLIGHT");
    const replay = await h.request("bank", "POST", "/cases", body, headers);
    expect(replay.status).to.equal(201);
    expect(replay.body.id).to.equal((a.status === 201 ? a : b).body.id);
    expect(replay.headers.get("location")).to.equal(`/cases/${replay.body.id}`);
    expect(replay.headers.get("idempotent-replayed")).to.equal("true");
    expect((await h.request("operator", "GET", "/cases")).body.cases.length).to.equal(before + 1);
  });

  it("keeps nothing for a refusal, so the key may be used again", async function () {
    const headers = key("refused");
    const refused = await h.request("seller", "POST", `/cases/${h.caseId}/withdrawals`, {}, headers);
    expect(refused.status).to.equal(409);
    const rows = h.principals.db
      .prepare("SELECT COUNT(*) AS n FROM idempotency_records WHERE key = ?")
      .get(headers["Idempotency-Key"]) as { n: number };
    expect(rows.n).to.equal(0);
    expect((await h.request("seller", "POST", signOffPath("redemption-statement"), {}, headers)).status).to.equal(202);
  });

  it("re-runs a record left in progress by a crashed process, and the engine's key keeps it to one submission", async function () {
    const label = `crash-${Math.random().toString(36).slice(2)}`;
    const seller = h.principals.list().find((p) => p.name === "seller")!;
    const caseId = await h.openCase();
    const path = signOffPath("redemption-statement", caseId);
    // The crashed process had put the sign-off in the engine's outbox under its key, and not finished its record.
    const submitted = await h.engine.approve({
      caseId,
      stageId: "redemption-statement",
      role: "seller",
      principalAddress: h.addresses.seller,
      idempotencyKey: `${seller.id}:${label}`,
    });
    h.principals.db
      .prepare(
        "INSERT INTO idempotency_records (principal_id, key, request_hash, state, boot_id, created_at) VALUES (?, ?, ?, 'in-progress', 'an-earlier-boot', ?)",
      )
      .run(seller.id, label, requestHash("POST", path, {}), Date.now());
    const retry = await h.request("seller", "POST", path, {}, { "Idempotency-Key": label });
    expect(retry.status, JSON.stringify(retry.body)).to.equal(202);
    expect(retry.body.id).to.equal(submitted.id);
    await until("the sign-off", async () => (await signedOffEvents(caseId, 5)).length === 1);
  });

  it("refuses a malformed key with 400", async function () {
    const res = await h.request(
      "bank",
      "POST",
      signOffPath("mortgage-offer"),
      {},
      { "Idempotency-Key": "x".repeat(300) },
    );
    expect(res.status).to.equal(400);
    expect(res.body.error.details.in).to.equal("headers");
  });
});
