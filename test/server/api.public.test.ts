import { expect } from "chai";
import { ethers } from "hardhat";
import { setBalance } from "../engine/relayer-helpers";
import { RELAYER_WALLET, startApp, type AppHarness } from "./support/app-harness";

describe("server: public routes, auth and errors", function () {
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await h?.close();
  });

  describe("GET /health", function () {
    it("answers the chain id, block number and contract without a token", async function () {
      const res = await h.request(null, "GET", "/health");
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ status: "ok", chainId: "31337", contract: h.escrowAddress });
      expect(res.body.blockNumber).to.be.a("number").greaterThan(0);
      expect(res.body.reasons).to.deep.equal([]);
      expect(res.body.runtime).to.have.all.keys("actors", "timers", "restored", "rebuilt", "resynced");
      expect(res.body.runtime.resynced).to.equal(0);
    });
    it("names why it is degraded: the relayer's key that cannot pay, its balance and what it needs; ok again once funded", async function () {
      const caseId = await h.openCase();
      await setBalance(RELAYER_WALLET.address, 0n);
      try {
        const signed = await h.request("bank", "POST", `/cases/${caseId}/stages/application/sign-offs`, {});
        expect(signed.status, JSON.stringify(signed.body)).to.equal(202);
        let health: any;
        const deadline = Date.now() + 20_000;
        do {
          await new Promise((resolve) => setTimeout(resolve, 50));
          health = (await h.request(null, "GET", "/health")).body;
        } while (health.status === "ok" && Date.now() < deadline);
        expect(health.status).to.equal("degraded");
        expect(health.reasons, JSON.stringify(health)).to.have.length(1);
        const [reason] = health.reasons;
        expect(reason).to.include({
          source: "relayer",
          code: "RELAYER_OUT_OF_FUNDS",
          address: RELAYER_WALLET.address,
          balance: "0",
        });
        expect(BigInt(reason.needed)).to.be.greaterThan(0n);
        expect(reason.message).to.contain(RELAYER_WALLET.address).and.contain(`needs ${reason.needed} wei`);
      } finally {
        await setBalance(RELAYER_WALLET.address, ethers.parseEther("100"));
      }
      let health: any;
      const deadline = Date.now() + 20_000;
      do {
        await new Promise((resolve) => setTimeout(resolve, 50));
        health = (await h.request(null, "GET", "/health")).body;
      } while (health.status !== "ok" && Date.now() < deadline);
      expect(health, "resumed by itself once funded").to.include({ status: "ok" });
      expect(health.reasons).to.deep.equal([]);
    });
    it("names a payer's managed key that cannot pay for its deposit (finding 5), with its balance and what it needs", async function () {
      const caseId = await h.openCase();
      const buyer = h.addresses.buyer;
      const funds = await ethers.provider.getBalance(buyer);
      await setBalance(buyer, 1_000n);
      try {
        const paid = await h.request("buyer", "POST", `/cases/${caseId}/deposits`, { amount: "1" });
        expect(paid.status, JSON.stringify(paid.body)).to.equal(202);
        let health: any;
        const deadline = Date.now() + 20_000;
        do {
          await new Promise((resolve) => setTimeout(resolve, 50));
          health = (await h.request(null, "GET", "/health")).body;
        } while (health.status === "ok" && Date.now() < deadline);
        const reason = health.reasons.find((r: { address?: string }) => r.address === buyer);
        expect(reason, JSON.stringify(health)).to.include({
          source: "relayer",
          code: "RELAYER_OUT_OF_FUNDS",
          balance: "1000",
        });
        expect(BigInt(reason.needed)).to.be.greaterThan(1_000n);
      } finally {
        await setBalance(buyer, funds);
      }
      const deadline = Date.now() + 20_000;
      while ((await h.request(null, "GET", "/health")).body.status !== "ok" && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await h.request(null, "GET", "/health")).body.reasons, "resumed once funded").to.deep.equal([]);
    });
  });

  describe("GET /workflows", function () {
    it("lists the three templates with their stages", async function () {
      const res = await h.request(null, "GET", "/workflows");
      expect(res.status).to.equal(200);
      expect(res.body.workflows.map((w: { id: string }) => w.id).sort()).to.deep.equal([
        "uk-purchase",
        "uk-remortgage",
        "us-purchase",
      ]);
      const remortgage = res.body.workflows.find((w: { id: string }) => w.id === "uk-remortgage");
      expect(remortgage.stages[3]).to.include({ id: "offer-accepted", waitingPeriod: "7 days" });
      expect(remortgage.registered).to.equal(true);
    });
    it("finds one by id or by template id, and answers 404 for an unknown one", async function () {
      const byId = await h.request(null, "GET", "/workflows/uk-remortgage");
      expect(byId.status).to.equal(200);
      const byTemplate = await h.request(null, "GET", `/workflows/${byId.body.templateId}`);
      expect(byTemplate.status).to.equal(200);
      expect(byTemplate.body.id).to.equal("uk-remortgage");
      const missing = await h.request(null, "GET", "/workflows/nope");
      expect(missing.status).to.equal(404);
      expect(missing.body.error.code).to.equal("NOT_FOUND");
    });
  });

  describe("authentication", function () {
    it("answers 401 without a token, with an unknown one, a malformed header, or a revoked one", async function () {
      for (const [label, headers] of [
        ["none", {}],
        ["unknown", { Authorization: "Bearer msk_nottherealthing" }],
        ["malformed", { Authorization: "Token abc" }],
        ["revoked", { Authorization: `Bearer ${h.tokens.revoked}` }],
      ] as const) {
        const res = await h.request(null, "GET", "/cases", undefined, headers);
        expect(res.status, label).to.equal(401);
        expect(res.body.error.code, label).to.equal("UNAUTHENTICATED");
        expect(res.headers.get("www-authenticate"), label).to.match(/^Bearer/);
      }
    });
    it("stops a token at the next request once its principal is revoked", async function () {
      const { token, principal } = h.principals.add({ name: "short-lived", role: "buyer", address: h.addresses.buyer });
      const before = await fetch(`${h.url}/cases`, { headers: { Authorization: `Bearer ${token}` } });
      expect(before.status).to.equal(200);
      h.principals.revoke(principal.id);
      const after = await fetch(`${h.url}/cases`, { headers: { Authorization: `Bearer ${token}` } });
      expect(after.status).to.equal(401);
    });
  });

  describe("errors", function () {
    it("answers an unknown route 404 in the error shape", async function () {
      const res = await h.request("bank", "GET", "/nothing/here");
      expect(res.status).to.equal(404);
      expect(res.body).to.deep.equal({ error: { code: "NOT_FOUND", message: "no route GET /nothing/here" } });
    });
    it("answers malformed JSON 400 and an oversize body 413, in the error shape", async function () {
      const bad = await fetch(`${h.url}/cases`, {
        method: "POST",
        headers: { Authorization: `Bearer ${h.tokens.bank}`, "Content-Type": "application/json" },
        body: "{not json",
      });
      expect(bad.status).to.equal(400);
      expect(((await bad.json()) as any).error.code).to.equal("VALIDATION_FAILED");
      const big = await fetch(`${h.url}/cases`, {
        method: "POST",
        headers: { Authorization: `Bearer ${h.tokens.bank}`, "Content-Type": "application/json" },
        body: JSON.stringify({ workflow: "x".repeat(70_000) }),
      });
      expect(big.status).to.equal(413);
      expect(((await big.json()) as any).error.code).to.equal("PAYLOAD_TOO_LARGE");
    });
    it("answers a path that does not decode 400, not 500", async function () {
      const res = await h.request("bank", "GET", "/cases/%ZZ");
      expect(res.status).to.equal(400);
      expect(res.body.error.code).to.equal("VALIDATION_FAILED");
    });
    it("answers a bad case id 400 with the field errors", async function () {
      const res = await h.request("bank", "GET", "/cases/abc");
      expect(res.status).to.equal(400);
      expect(res.body.error.code).to.equal("VALIDATION_FAILED");
      expect(res.body.error.details.fieldErrors.id[0]).to.match(/case id/);
    });
  });

  describe("security headers", function () {
    it("sends a content security policy of 'self' only, without inline scripts, and no x-powered-by", async function () {
      const res = await fetch(`${h.url}/health`);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).to.include("default-src 'self'");
      expect(csp).to.include("script-src 'self'");
      expect(csp).to.not.include("unsafe-inline");
      expect(res.headers.get("x-content-type-options")).to.equal("nosniff");
      expect(res.headers.get("x-powered-by")).to.equal(null);
    });
  });
});
