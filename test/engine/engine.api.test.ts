import { expect } from "chai";
import { ethers } from "hardhat";
import { type Engine } from "../../engine";
import { getTemplate } from "../../workflows";
import { MANAGED, approval, newEngine, setUp, waitFor, type EngineSetup } from "./engine-helpers";

describe("engine: the API the HTTP server uses", function () {
  this.timeout(120_000);
  const engines: Engine[] = [];
  afterEach(async function () {
    for (const engine of engines.splice(0)) await engine.stop();
  });
  async function started(s: EngineSetup): Promise<Engine> {
    const engine = newEngine(s);
    engines.push(engine);
    await engine.start();
    return engine;
  }

  describe("workflows", function () {
    it("lists every template with its stages, JSON-safe, and knows which one the chain has registered", async function () {
      const s = await setUp();
      const engine = await started(s);
      const list = engine.workflows();
      expect(list.map((w) => w.id)).to.deep.equal(["uk-purchase", "uk-remortgage", "us-purchase"]);
      expect(JSON.parse(JSON.stringify(list)), "JSON-safe").to.deep.equal(list);

      const us = list.find((w) => w.id === "us-purchase")!;
      const compiled = getTemplate("us-purchase");
      expect(us.templateId).to.equal(compiled.templateId.toLowerCase());
      expect(us).to.include({ version: 1, jurisdiction: "US", title: compiled.workflow.title });
      expect(us.registered, "the helpers register us-purchase only").to.equal(true);
      expect(list.filter((w) => w.registered).map((w) => w.id)).to.deep.equal(["us-purchase"]);
      // The stages in on-chain order, as a case's stages are.
      expect(us.stages.map((st) => st.id)).to.deep.equal(compiled.details.map((d) => d.id));
      expect(us.stages.map((st) => st.id)).to.deep.equal(engine.getCase(s.caseId)!.stages.map((st) => st.id));
      const loanEstimate = us.stages.find((st) => st.id === "loan-estimate")!;
      expect(loanEstimate).to.deep.include({
        roles: ["bank"],
        prerequisites: ["application"],
        waitingPeriod: null,
        deadline: { within: "3 business days", from: "application" },
        action: "none",
      });
      const consummation = us.stages.find((st) => st.id === "consummation")!;
      expect(consummation).to.deep.include({ waitingPeriod: "3 business days", prerequisites: ["closing-disclosure", "loan-estimate-waiting-period"] });
      expect(us.stages.find((st) => st.id === "funding")!.action).to.equal("release");

      expect(engine.workflow("us-purchase")).to.deep.equal(us);
      expect(engine.workflow(compiled.templateId.toUpperCase().replace("0X", "0x"))).to.deep.equal(us);
      expect(engine.workflow("no-such-workflow")).to.equal(null);
    });
  });

  describe("submission", function () {
    it("returns the relayer's record of what approve returned, and null for an unknown id", async function () {
      const s = await setUp();
      const engine = await started(s);
      const submitted = await engine.approve(approval(s, "application", "buyer"));
      const settled = await waitFor("the sign-off confirmed", () => {
        const found = engine.submission(submitted.id);
        return found?.status === "confirmed" ? found : null;
      });
      expect(settled.id).to.equal(submitted.id);
      expect(settled.sender).to.equal(engine.relayer.relayerAddress);
      expect(settled.txHash).to.match(/^0x[0-9a-f]{64}$/);
      expect(engine.submission(submitted.id + 1000)).to.equal(null);
      expect(MANAGED.buyer.address).to.equal(ethers.getAddress(engine.getCase(s.caseId)!.parties.buyer));
    });
  });
});
