/**
 * Every case endpoint's happy path and its main refusals: who opens, who sees (404 to anyone else), who
 * signs off and revokes (403 for a party the stage does not need, 404 for a stranger), who pays and
 * withdraws, the cancellation by every party's vote, the submissions, and the dev clock.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { createApp } from "../../server/app";
import { DEFAULT_TERMS, startApp, type AppHarness } from "./support/app-harness";

describe("server: cases, sign-offs, money, submissions and the dev clock", function () {
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await h?.close();
  });

  const parties = () => ({
    bank: h.addresses.bank,
    lawyer: h.addresses.lawyer,
    buyer: h.addresses.buyer,
    seller: h.addresses.seller,
  });
  const openBody = (extra: Record<string, unknown> = {}) => ({
    workflow: "uk-remortgage",
    parties: parties(),
    terms: DEFAULT_TERMS,
    ...extra,
  });

  async function until(caseId: string, what: string, probe: (p: any) => boolean) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const res = await h.request("operator", "GET", `/cases/${caseId}`);
      if (probe(res.body)) return res.body;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const stage = (p: any, id: string) => p.stages.find((s: any) => s.id === id);

  describe("POST /cases", function () {
    it("opens a case for a bank naming itself as the bank: 201 with the case and its Location", async function () {
      const res = await h.request("bank", "POST", "/cases", openBody());
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      expect(res.body).to.include({ status: "open" });
      expect(res.body.workflow.id).to.equal("uk-remortgage");
      expect(res.body.parties).to.deep.equal(parties());
      expect(res.body.terms).to.deep.equal(DEFAULT_TERMS);
      expect(res.headers.get("location")).to.equal(`/cases/${res.body.id}`);
      const read = await h.request("seller", "GET", `/cases/${res.body.id}`);
      expect(read.status).to.equal(200);
    });
    it("lets the operator open a case for any parties", async function () {
      const res = await h.request("operator", "POST", "/cases", openBody({ workflow: "us-purchase" }));
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      expect(res.body.workflow.id).to.equal("us-purchase");
    });
    it("refuses a bank naming another bank, and any other role, with 403", async function () {
      const other = await h.request("stranger", "POST", "/cases", openBody());
      expect(other.status).to.equal(403);
      const lawyer = await h.request("lawyer", "POST", "/cases", openBody());
      expect(lawyer.status).to.equal(403);
      expect(lawyer.body.error.code).to.equal("FORBIDDEN");
      const bankForOther = await h.request(
        "bank",
        "POST",
        "/cases",
        openBody({ parties: { ...parties(), bank: h.addresses.stranger } }),
      );
      expect(bankForOther.status).to.equal(403);
    });
    it("answers 400 with the field errors for an unknown workflow, a bad address or amount, or an unknown field", async function () {
      const unknown = await h.request("bank", "POST", "/cases", openBody({ workflow: "nope" }));
      expect(unknown.status).to.equal(400);
      expect(unknown.body.error.details.fieldErrors.workflow[0]).to.match(/no workflow/);
      const address = await h.request(
        "bank",
        "POST",
        "/cases",
        openBody({ parties: { ...parties(), seller: "0x1234" } }),
      );
      expect(address.status).to.equal(400);
      expect(address.body.error.details.fieldErrors).to.have.property("parties");
      const amount = await h.request("bank", "POST", "/cases", openBody({ terms: { ...DEFAULT_TERMS, price: "1.5" } }));
      expect(amount.status).to.equal(400);
      const extra = await h.request("bank", "POST", "/cases", openBody({ colour: "blue" }));
      expect(extra.status).to.equal(400);
      const missing = await h.request("bank", "POST", "/cases", {});
      expect(missing.status).to.equal(400);
      expect(Object.keys(missing.body.error.details.fieldErrors)).to.include.members(["workflow", "parties", "terms"]);
    });
    it("answers 400 when the price is more than the two shares", async function () {
      const res = await h.request(
        "bank",
        "POST",
        "/cases",
        openBody({ terms: { price: "10", deposit: "1", loan: "2" } }),
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(400);
    });
  });

  describe("GET /cases and GET /cases/:id", function () {
    it("lists a party's own cases, every case to the operator, and none to a stranger", async function () {
      const bank = await h.request("bank", "GET", "/cases");
      const ids = bank.body.cases.map((c: any) => c.id);
      expect(ids).to.include(h.caseId);
      expect(ids).to.not.include(h.otherCaseId);
      const operator = await h.request("operator", "GET", "/cases");
      expect(operator.body.cases.map((c: any) => c.id)).to.include.members([h.caseId, h.otherCaseId]);
      const stranger = await h.request("stranger", "GET", "/cases");
      expect(stranger.body.cases).to.deep.equal([]);
    });
    it("shows a case to its parties and the operator, and answers anyone else as if it did not exist", async function () {
      for (const who of ["bank", "lawyer", "buyer", "seller", "operator"] as const) {
        const res = await h.request(who, "GET", `/cases/${h.caseId}`);
        expect(res.status, who).to.equal(200);
        expect(res.body.stages).to.have.length(11);
      }
      const stranger = await h.request("stranger", "GET", `/cases/${h.caseId}`);
      const missing = await h.request("stranger", "GET", "/cases/999999");
      expect(stranger.status).to.equal(404);
      expect(missing.status).to.equal(404);
      expect(Object.keys(stranger.body.error)).to.deep.equal(Object.keys(missing.body.error));
      expect((await h.request("bank", "GET", `/cases/${h.otherCaseId}`)).status).to.equal(404);
      expect((await h.request("operator", "GET", `/cases/${h.otherCaseId}`)).status).to.equal(200);
    });
    it("gives the history to the parties and 404 to a stranger", async function () {
      const res = await h.request("seller", "GET", `/cases/${h.caseId}/history`);
      expect(res.status).to.equal(200);
      expect(res.body.events[0]).to.include({ event: "CaseOpened" });
      expect((await h.request("stranger", "GET", `/cases/${h.caseId}/history`)).status).to.equal(404);
    });
  });

  describe("sign-offs", function () {
    const path = (stageId: string, caseId = h.caseId) => `/cases/${caseId}/stages/${stageId}/sign-offs`;

    it("gives typed data to a role the stage requires, for signing off or revoking", async function () {
      const signOff = await h.request("lawyer", "GET", `${path("title-check")}/typed-data`);
      expect(signOff.status).to.equal(200);
      expect(signOff.body.primaryType).to.equal("SignOff");
      expect(signOff.body.message).to.include({ caseId: h.caseId, role: 1 });
      const revoke = await h.request("lawyer", "GET", `${path("title-check")}/typed-data?purpose=revoke`);
      expect(revoke.body.primaryType).to.equal("RevokeSignOff");
      expect((await h.request("lawyer", "GET", `${path("title-check")}/typed-data?purpose=maybe`)).status).to.equal(
        400,
      );
    });
    it("refuses a party the stage does not need (403), the operator (403), a stranger (404) and an unknown stage (404)", async function () {
      for (const [who, status] of [
        ["seller", 403],
        ["operator", 403],
        ["stranger", 404],
      ] as const) {
        expect((await h.request(who, "POST", path("title-check"), {})).status, `${who} POST`).to.equal(status);
        expect((await h.request(who, "GET", `${path("title-check")}/typed-data`)).status, `${who} typed data`).to.equal(
          status,
        );
        expect((await h.request(who, "DELETE", path("title-check"), {})).status, `${who} DELETE`).to.equal(status);
      }
      expect((await h.request("lawyer", "POST", path("no-such-stage"), {})).status).to.equal(404);
      expect((await h.request("lawyer", "POST", path("title-check", h.otherCaseId), {})).status).to.equal(404);
    });
    it("answers a bad evidence or signature 400", async function () {
      expect((await h.request("lawyer", "POST", path("title-check"), { evidence: "0x12" })).status).to.equal(400);
      expect((await h.request("lawyer", "POST", path("title-check"), { signature: "nope" })).status).to.equal(400);
    });
    it("signs off with the managed key (202), refuses a second sign-off (409), revokes it (202), and refuses revoking what is not signed (409)", async function () {
      const first = await h.request("lawyer", "POST", path("title-check"), { evidence: ethers.id("title") });
      expect(first.status).to.equal(202);
      expect(first.headers.get("location")).to.equal(`/submissions/${first.body.id}`);
      const again = await h.request("lawyer", "POST", path("title-check"), {});
      expect(again.status).to.equal(409);
      await until(h.caseId, "the lawyer's sign-off", (p) => stage(p, "title-check").signedOff.includes("lawyer"));
      const revoke = await h.request("lawyer", "DELETE", path("title-check"), {});
      expect(revoke.status, JSON.stringify(revoke.body)).to.equal(202);
      await until(h.caseId, "the revocation", (p) => !stage(p, "title-check").signedOff.includes("lawyer"));
      const nothing = await h.request("lawyer", "DELETE", path("title-check"), {});
      expect(nothing.status).to.equal(409);
    });
    it("revokes with the party's own signature, and refuses another's (403)", async function () {
      expect((await h.request("seller", "POST", path("redemption-statement"), {})).status).to.equal(202);
      await until(h.caseId, "the seller's sign-off", (p) =>
        stage(p, "redemption-statement").signedOff.includes("seller"),
      );
      const typed = await h.request("seller", "GET", `${path("redemption-statement")}/typed-data?purpose=revoke`);
      const { domain, types, message } = typed.body;
      const wrong = await h.wallets.buyer.signTypedData(domain, types, message);
      expect((await h.request("seller", "DELETE", path("redemption-statement"), { signature: wrong })).status).to.equal(
        403,
      );
      const signature = await h.wallets.seller.signTypedData(domain, types, message);
      const res = await h.request("seller", "DELETE", path("redemption-statement"), { signature });
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      await until(
        h.caseId,
        "the seller's revocation",
        (p) => !stage(p, "redemption-statement").signedOff.includes("seller"),
      );
    });
    it("asks an address holding two roles of the stage to name the one it acts as", async function () {
      const opened = await h.request(
        "bank",
        "POST",
        "/cases",
        openBody({ parties: { ...parties(), lawyer: h.addresses.bank } }),
      );
      expect(opened.status, JSON.stringify(opened.body)).to.equal(201);
      const unnamed = await h.request("bank", "POST", path("completion", opened.body.id), {});
      expect(unnamed.status).to.equal(400);
      expect(unnamed.body.error.details.fieldErrors.role[0]).to.match(/bank, lawyer/);
      const named = await h.request("bank", "POST", path("completion", opened.body.id), { role: "lawyer" });
      expect(named.status, JSON.stringify(named.body)).to.equal(202);
      const notHis = await h.request("bank", "POST", path("completion", opened.body.id), { role: "buyer" });
      expect(notHis.status).to.equal(403);
      await until(opened.body.id, "the sign-off as the lawyer", (p) =>
        stage(p, "completion").signedOff.includes("lawyer"),
      );
      expect(stage(await until(opened.body.id, "", () => true), "completion").signedOff).to.deep.equal(["lawyer"]);
    });
  });

  describe("money", function () {
    it("takes a deposit from the buyer (202) and refuses other roles (403), the operator (403) and strangers (404)", async function () {
      const res = await h.request("buyer", "POST", `/cases/${h.caseId}/deposits`, { amount: "1000" });
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      expect(res.body.kind).to.equal("deposit");
      await until(h.caseId, "the deposit", (p) => p.escrow.paidByBuyer === "1000");
      expect((await h.request("lawyer", "POST", `/cases/${h.caseId}/deposits`, { amount: "1000" })).status).to.equal(
        403,
      );
      expect((await h.request("operator", "POST", `/cases/${h.caseId}/deposits`, { amount: "1000" })).status).to.equal(
        403,
      );
      expect((await h.request("stranger", "POST", `/cases/${h.caseId}/deposits`, { amount: "1000" })).status).to.equal(
        404,
      );
    });
    it("answers a zero, negative, fractional or over-256-bit amount 400", async function () {
      for (const amount of ["0", "-1", "1.5", 5, "", "9".repeat(78)]) {
        const res = await h.request("buyer", "POST", `/cases/${h.caseId}/deposits`, { amount });
        expect(res.status, JSON.stringify(amount)).to.equal(400);
        expect(res.body.error.details.fieldErrors).to.have.property("amount");
      }
    });
    it("refuses a withdrawal with nothing credited (409) and by the operator (403)", async function () {
      expect((await h.request("seller", "POST", `/cases/${h.caseId}/withdrawals`, {})).status).to.equal(409);
      expect((await h.request("operator", "POST", `/cases/${h.caseId}/withdrawals`, {})).status).to.equal(403);
      expect((await h.request("stranger", "POST", `/cases/${h.caseId}/withdrawals`, {})).status).to.equal(404);
    });
    it("cancels a case once every party has voted, refunds the buyer's deposit, and lets the buyer withdraw it", async function () {
      // A case of its own: without a key the same body would return the case opened above.
      const opened = await h.request("bank", "POST", "/cases", openBody(), { "Idempotency-Key": "the-case-to-cancel" });
      const id = opened.body.id;
      expect((await h.request("buyer", "POST", `/cases/${id}/deposits`, { amount: "777" })).status).to.equal(202);
      await until(id, "the deposit", (p) => p.escrow.paidByBuyer === "777");
      expect((await h.request("operator", "POST", `/cases/${id}/cancellation`, {})).status).to.equal(403);
      for (const who of ["bank", "lawyer", "buyer", "seller"] as const) {
        const vote = await h.request(who, "POST", `/cases/${id}/cancellation`, {});
        expect(vote.status, `${who}: ${JSON.stringify(vote.body)}`).to.equal(202);
      }
      const cancelled = await until(id, "the cancellation", (p) => p.status === "cancelled");
      expect(cancelled.escrow.credits[h.addresses.buyer]).to.equal("777");
      expect((await h.request("buyer", "POST", `/cases/${id}/cancellation`, {})).status, "a closed case").to.equal(409);
      expect((await h.request("buyer", "POST", `/cases/${id}/withdrawals`, {})).status).to.equal(202);
      await until(id, "the refund withdrawn", (p) => p.escrow.credits[h.addresses.buyer] === undefined);
    });
  });

  describe("GET /submissions/:id", function () {
    it("shows a submission to the principal that made it, and to no one else", async function () {
      const made = await h.request("bank", "POST", `/cases/${h.caseId}/stages/valuation/sign-offs`, {});
      expect(made.status).to.equal(202);
      const own = await h.request("bank", "GET", `/submissions/${made.body.id}`);
      expect(own.status).to.equal(200);
      expect(own.body).to.include({ id: made.body.id, kind: "sign-off" });
      expect(own.body).to.not.have.property("rawTx");
      expect((await h.request("buyer", "GET", `/submissions/${made.body.id}`)).status).to.equal(404);
      expect((await h.request("operator", "GET", `/submissions/${made.body.id}`)).status).to.equal(404);
      expect((await h.request("bank", "GET", "/submissions/987654")).status).to.equal(404);
      expect((await h.request("bank", "GET", "/submissions/x")).status).to.equal(400);
    });
  });

  describe("POST /dev/clock", function () {
    it("moves the chain's clock for the operator, and refuses anyone else (403) and a bad body (400)", async function () {
      const before = Date.parse((await h.request("operator", "POST", "/dev/clock", { seconds: 1 })).body.now);
      const res = await h.request("operator", "POST", "/dev/clock", { seconds: 3600 });
      expect(res.status).to.equal(200);
      expect(Date.parse(res.body.now) - before).to.be.at.least(3600_000);
      expect((await h.request("bank", "POST", "/dev/clock", { seconds: 60 })).status).to.equal(403);
      expect((await h.request("operator", "POST", "/dev/clock", { seconds: -5 })).status).to.equal(400);
      expect((await h.request("operator", "POST", "/dev/clock", { seconds: "60" })).status).to.equal(400);
    });
    it("does not exist off the embedded chain (404)", async function () {
      const app = createApp(h.engine, { principals: h.principals, devClock: false, logger: pino({ level: "silent" }) });
      const server = createServer(app);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/dev/clock`, {
          method: "POST",
          headers: { Authorization: `Bearer ${h.tokens.operator}`, "Content-Type": "application/json" },
          body: JSON.stringify({ seconds: 60 }),
        });
        expect(res.status).to.equal(404);
        expect(((await res.json()) as any).error.code).to.equal("NOT_FOUND");
      } finally {
        app.closeStreams();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });
});
