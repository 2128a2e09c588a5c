/**
 * What the case page needs to speak of people and money in words: the parties' display names in the case's
 * progress (GET /cases/:id and its event stream; the engine knows addresses only, the server knows its
 * principals), the operator's indicative display currency (GET /display), and the templates' typical
 * durations with their sources (GET /workflows/:id/typical-durations); each in the OpenAPI document.
 */
import { expect } from "chai";
import { openEventStream, startApp, type AppHarness } from "./support/app-harness";

describe("server: names, the display currency and typical durations for the case page", function () {
  let h: AppHarness;
  before(async function () {
    h = await startApp({
      workflow: "us-purchase",
      displayNames: { bank: "Northwind Bank", lawyer: "Hale & Co. Settlement", buyer: "Alex Morgan" },
      display: { currency: { code: "GBP", rate: "2500" } },
    });
  });
  after(async function () {
    await h?.close();
  });

  describe("GET /cases/:id", function () {
    it("names each role by the display name of the principal holding its address, and leaves out a role no principal holds", async function () {
      const res = await h.request("buyer", "GET", `/cases/${h.caseId}`);
      expect(res.status).to.equal(200);
      // The seller's principal is named "seller" by the harness: a name is whatever the operator gave.
      expect(res.body.names).to.deep.equal({
        bank: "Northwind Bank",
        lawyer: "Hale & Co. Settlement",
        buyer: "Alex Morgan",
        seller: "seller",
      });
      const other = await h.request("operator", "GET", `/cases/${h.otherCaseId}`);
      expect(other.status).to.equal(200);
      expect(other.body.names).to.deep.equal({});
    });

    it("keeps the first principal's name when another is added at the same address, and drops a revoked one's", async function () {
      const { principal } = h.principals.add({ name: "Jo at Hale & Co.", role: "lawyer", address: h.addresses.lawyer });
      const res = await h.request("buyer", "GET", `/cases/${h.caseId}`);
      expect(res.body.names.lawyer).to.equal("Hale & Co. Settlement");
      h.principals.revoke(principal.id);
      // The "revoked" principal of the harness is bound to the lawyer's address too, and never named it.
      expect((await h.request("buyer", "GET", `/cases/${h.caseId}`)).body.names.lawyer).to.equal(
        "Hale & Co. Settlement",
      );
    });
  });

  describe("GET /cases/:id/events", function () {
    it("carries the names in the first event and in each change", async function () {
      const stream = await openEventStream(h.url, h.tokens.buyer, h.caseId);
      try {
        const first = await stream.waitFor(() => true);
        expect(first.data.names.buyer).to.equal("Alex Morgan");
        const res = await h.request("buyer", "POST", `/cases/${h.caseId}/stages/application/sign-offs`, {});
        expect(res.status).to.equal(202);
        const change = await stream.waitFor((e) =>
          e.data.stages?.some((s: any) => s.id === "application" && s.signedOff.includes("buyer")),
        );
        expect(change.data.names).to.deep.equal(first.data.names);
      } finally {
        stream.close();
      }
    });
  });

  describe("GET /display", function () {
    it("gives the operator's display currency and its rate to one whole ETH, as indicative", async function () {
      const res = await h.request(null, "GET", "/display");
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({ currency: { code: "GBP", perEth: "2500", indicative: true } });
    });

    it("gives no currency when none is set", async function () {
      const plain = await startApp({ workflow: "us-purchase" });
      try {
        expect((await plain.request(null, "GET", "/display")).body).to.deep.equal({ currency: null });
      } finally {
        await plain.close();
      }
    });
  });

  describe("GET /workflows/:id/typical-durations", function () {
    it("gives every stage of the template a typical duration in days with its source", async function () {
      const workflow = (await h.request(null, "GET", "/workflows/us-purchase")).body;
      const res = await h.request(null, "GET", "/workflows/us-purchase/typical-durations");
      expect(res.status).to.equal(200);
      expect(res.body.workflow).to.equal("us-purchase");
      expect(Object.keys(res.body.stages)).to.have.members(workflow.stages.map((s: any) => s.id));
      for (const [id, typical] of Object.entries<any>(res.body.stages)) {
        expect(typical.days, id).to.be.a("number").and.at.least(0);
        expect(typical.source, id).to.be.a("string").and.have.length.above(10);
      }
      expect(res.body.summary).to.match(/30-45 days/);
      expect((await h.request(null, "GET", "/workflows/nope/typical-durations")).status).to.equal(404);
    });
  });

  it("documents the names, the display currency and the typical durations in the OpenAPI document", async function () {
    const doc = (await h.request(null, "GET", "/openapi.json")).body;
    const json = JSON.stringify(doc);
    const caseSchema = doc.paths["/cases/{id}"].get.responses["200"].content["application/json"].schema;
    const resolved = caseSchema.$ref ? doc.components.schemas[caseSchema.$ref.split("/").pop()] : caseSchema;
    expect(resolved.properties).to.have.property("names");
    expect(doc.paths).to.have.property("/display");
    expect(doc.paths).to.have.property("/workflows/{id}/typical-durations");
    expect(json).to.contain("perEth");
  });
});
