/**
 * The law's moments over HTTP, on a real listening server: a uk-remortgage case's stages carry their legal
 * moments beside the contract's (`contractFloor`, `contractCeiling`), whether each accepts a sign-off now
 * and what it waits for, the case its jurisdiction's zone; a too-early sign-off's 409 names what it waits
 * for in the same words; and the OpenAPI document describes each of those fields.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { startApp, type AppHarness, type TokenName } from "./support/app-harness";

/** The wall-clock time of an instant in London, "HH:MM:SS". */
function londonTime(iso: string): string {
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: "Europe/London",
    hourCycle: "h23",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(new Date(iso));
}

describe("server: the law's moments in GET /cases/:id", function () {
  let h: AppHarness;
  before(async function () {
    h = await startApp({ workflow: "uk-remortgage" });
  });
  after(async function () {
    await h?.close();
  });

  const stage = (p: any, id: string) => p.stages.find((s: any) => s.id === id);

  async function until(what: string, probe: (p: any) => boolean) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const res = await h.request("buyer", "GET", `/cases/${h.caseId}`);
      expect(res.status).to.equal(200);
      if (probe(res.body)) return res.body;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function signOff(who: TokenName, stageId: string) {
    const res = await h.request(who, "POST", `/cases/${h.caseId}/stages/${stageId}/sign-offs`, {
      evidence: ethers.id(`${stageId} by ${who}`),
    });
    expect(res.status, `${who} signs off ${stageId}: ${JSON.stringify(res.body)}`).to.equal(202);
  }

  it("shows the legal moments beside the contract's, what each stage accepts now and waits for, and the 409 names the same wait", async function () {
    const opened = (await h.request("buyer", "GET", `/cases/${h.caseId}`)).body;
    expect(opened.timeZone).to.equal("Europe/London");
    // The long-stop: the end of its 240th day in London (00:00 local), sooner than the contract's ceiling.
    const completion = stage(opened, "completion");
    expect(londonTime(completion.deadline)).to.equal("00:00:00");
    expect(Date.parse(completion.deadline)).to.be.below(Date.parse(completion.contractCeiling));
    // A stage without a waiting rule accepts sign-offs early, even while locked; the reflection period waits for the offer.
    expect(stage(opened, "certificate-of-title")).to.include({
      status: "locked",
      acceptsSignOffs: true,
      waitsFor: null,
    });
    expect(stage(opened, "offer-accepted")).to.include({
      status: "locked",
      acceptsSignOffs: false,
      availableAt: null,
      waitsFor: "Mortgage offer, then 7 days",
    });

    await signOff("buyer", "application");
    await signOff("bank", "application");
    await signOff("bank", "valuation");
    await signOff("bank", "mortgage-offer");
    const offered = await until("the mortgage offer", (p) => stage(p, "mortgage-offer").status === "completed");
    const accepted = stage(offered, "offer-accepted");
    // Seven days of elapsed time: the law's moment and the contract's floor are the same second.
    expect(accepted.availableAt).to.equal(
      new Date(Date.parse(stage(offered, "mortgage-offer").completedAt) + 7 * 86_400_000).toISOString(),
    );
    expect(accepted.contractFloor).to.equal(accepted.availableAt);
    expect(accepted).to.include({ status: "waiting", waitingFor: "time", acceptsSignOffs: false });
    expect(accepted.waitsFor).to.match(/^7 days from Mortgage offer/);

    const early = await h.request("buyer", "POST", `/cases/${h.caseId}/stages/offer-accepted/sign-offs`, {});
    expect(early.status).to.equal(409);
    expect(early.body.error.code).to.equal("TOO_EARLY");
    expect(early.body.error.details).to.include({ availableAt: accepted.availableAt, waitsFor: accepted.waitsFor });

    const clock = await h.request("operator", "POST", "/dev/clock", { seconds: 7 * 86_400 + 60 });
    expect(clock.status).to.equal(200);
    const after = (await h.request("buyer", "GET", `/cases/${h.caseId}`)).body;
    expect(stage(after, "offer-accepted")).to.include({ status: "open", acceptsSignOffs: true, waitsFor: null });
    await signOff("buyer", "offer-accepted");
  });

  it("describes every new field in the OpenAPI document", async function () {
    const doc = (await h.request(null, "GET", "/openapi.json")).body;
    const resolve = (schema: any): any =>
      schema?.$ref
        ? resolve(
            schema.$ref
              .split("/")
              .slice(1)
              .reduce((node: any, key: string) => node[key], doc),
          )
        : schema;
    const caseSchema = resolve(doc.paths["/cases/{id}"].get.responses["200"].content["application/json"].schema);
    expect(caseSchema.properties.timeZone.description).to.match(/IANA time zone/);
    const stageSchema = resolve(resolve(caseSchema.properties.stages).items);
    for (const field of [
      "availableAt",
      "deadline",
      "contractFloor",
      "contractCeiling",
      "acceptsSignOffs",
      "waitsFor",
    ]) {
      expect(stageSchema.properties, field).to.have.property(field);
      expect(
        resolve(stageSchema.properties[field]).description ?? stageSchema.properties[field].description,
        `${field} described`,
      )
        .to.be.a("string")
        .and.not.equal("");
    }
    expect(stageSchema.properties.availableAt.description).to.match(/LEGAL moment/);
    expect(stageSchema.properties.contractFloor.description).to.match(/on-chain floor/);
  });
});
