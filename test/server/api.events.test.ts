/**
 * `GET /cases/:id/events`: who may watch, the first event, a change, increasing ids, Last-Event-ID resume,
 * heartbeats, the corrected progress after a chain reorganisation, and closeStreams at shutdown.
 */
import { expect } from "chai";
import hre from "hardhat";
import { openEventStream, startApp, type AppHarness, type EventStreamReader } from "./support/app-harness";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("server: the event stream of a case", function () {
  let h: AppHarness;
  const readers: EventStreamReader[] = [];
  async function watch(who: keyof AppHarness["tokens"] | null, caseId = h.caseId, lastEventId?: string) {
    const reader = await openEventStream(h.url, who ? h.tokens[who] : null, caseId, lastEventId);
    readers.push(reader);
    return reader;
  }
  before(async function () {
    h = await startApp({ heartbeatMs: 150 });
  });
  afterEach(function () {
    for (const reader of readers.splice(0)) reader.close();
  });
  after(async function () {
    await h?.close();
  });

  it("refuses no token (401), a stranger (404) and a party of another case (404), in the error shape", async function () {
    const none = await watch(null);
    expect(none.status).to.equal(401);
    const stranger = await watch("stranger");
    expect(stranger.status).to.equal(404);
    expect(stranger.headers.get("content-type")).to.match(/^application\/json/);
    expect((await watch("bank", h.otherCaseId)).status).to.equal(404);
    expect((await watch("operator", h.otherCaseId)).status).to.equal(200);
  });

  it("sends the current progress first, unbuffered, then each change with a higher id", async function () {
    const reader = await watch("seller");
    expect(reader.status).to.equal(200);
    expect(reader.headers.get("content-type")).to.match(/^text\/event-stream/);
    expect(reader.headers.get("cache-control")).to.match(/no-cache/);
    expect(reader.headers.get("x-accel-buffering")).to.equal("no");
    const first = await reader.waitFor(() => true);
    expect(first).to.include({ event: "progress" });
    expect(first.data.id).to.equal(h.caseId);
    expect(first.id).to.match(/^\d+$/);

    expect((await h.request("lawyer", "POST", `/cases/${h.caseId}/stages/title-check/sign-offs`, {})).status).to.equal(
      202,
    );
    const change = await reader.waitFor((e) =>
      e.data.stages.find((s: any) => s.id === "title-check").signedOff.includes("lawyer"),
    );
    expect(BigInt(change.id as string) > BigInt(first.id as string)).to.equal(true);
  });

  it("resumes from Last-Event-ID: nothing until the next change if nothing changed, the progress at once if it did", async function () {
    const reader = await watch("buyer");
    const latest = await reader.waitFor(() => true);
    const quiet = await watch("buyer", h.caseId, latest.id as string);
    const older = await watch("buyer", h.caseId, String(BigInt(latest.id as string) - 1n));
    await older.waitFor(() => true);
    expect(older.events[0].id).to.equal(latest.id);
    await sleep(300);
    expect(quiet.status).to.equal(200);
    expect(quiet.events, "nothing changed since that id").to.have.length(0);

    expect((await h.request("bank", "POST", `/cases/${h.caseId}/stages/application/sign-offs`, {})).status).to.equal(
      202,
    );
    const next = await quiet.waitFor(() => true);
    expect(next.data.stages[0].signedOff).to.include("bank");
    expect(BigInt(next.id as string) > BigInt(latest.id as string)).to.equal(true);
    const same = await reader.waitFor((e) => e.id === next.id);
    expect(same.data, "every watcher gets the same event").to.deep.equal(next.data);
  });

  it("fans one change out to many watchers of the case as the same event", async function () {
    const watchers = await Promise.all(Array.from({ length: 100 }, () => watch("buyer")));
    await Promise.all(watchers.map((w) => w.waitFor(() => true)));
    const counts = watchers.map((w) => w.events.length);
    expect(
      (await h.request("lawyer", "POST", `/cases/${h.caseId}/stages/pre-completion-search/sign-offs`, {})).status,
    ).to.equal(202);
    const isIt = (e: any) =>
      e.data.stages.find((s: any) => s.id === "pre-completion-search").signedOff.includes("lawyer");
    const seen = await Promise.all(watchers.map((w, i) => w.waitFor(isIt, 20_000, counts[i])));
    expect(new Set(seen.map((e) => e.id)).size, "one event id").to.equal(1);
    expect(new Set(seen.map((e) => JSON.stringify(e.data))).size, "one event body").to.equal(1);
  });

  it("answers HEAD with the headers only, and keeps the connection usable", async function () {
    const head = await fetch(`${h.url}/cases/${h.caseId}/events`, {
      method: "HEAD",
      headers: { Authorization: `Bearer ${h.tokens.bank}` },
    });
    expect(head.status).to.equal(200);
    expect(head.headers.get("content-type")).to.match(/^text\/event-stream/);
    expect((await h.request("bank", "POST", `/cases/${h.caseId}/stages/mortgage-offer/sign-offs`, {})).status).to.equal(
      202,
    );
    await sleep(300);
    expect((await h.request("bank", "GET", `/cases/${h.caseId}`)).status).to.equal(200);
  });

  it("sends heartbeat comments", async function () {
    const reader = await watch("bank");
    await reader.waitFor(() => true);
    await sleep(400);
    expect(reader.heartbeats).to.be.at.least(2);
  });

  it("sends the corrected progress, marked reorg, when the chain drops a block it had shown", async function () {
    const reader = await watch("lawyer");
    await reader.waitFor(() => true);
    const snapshot = await hre.network.provider.send("evm_snapshot", []);
    expect(
      (await h.request("seller", "POST", `/cases/${h.caseId}/stages/redemption-statement/sign-offs`, {})).status,
    ).to.equal(202);
    const signed = await reader.waitFor((e) =>
      e.data.stages.find((s: any) => s.id === "redemption-statement").signedOff.includes("seller"),
    );
    await hre.network.provider.send("evm_revert", [snapshot]);
    // A longer chain without that block: the projection sees the fork and rolls back.
    await hre.network.provider.send("hardhat_mine", ["0x3"]);
    const corrected = await reader.waitFor((e) => e.data.reorg === true, 20_000);
    expect(BigInt(corrected.id as string) > BigInt(signed.id as string)).to.equal(true);
    expect(corrected.data.id).to.equal(h.caseId);
    // The engine re-submits what the chain lost: the seller's sign-off comes back.
    await reader.waitFor(
      (e) =>
        e.data.reorg !== true &&
        e.data.stages.find((s: any) => s.id === "redemption-statement").signedOff.includes("seller"),
      20_000,
      reader.events.indexOf(corrected) + 1,
    );
  });

  it("ends a stream at its next heartbeat once its principal is revoked", async function () {
    const { principal, token } = h.principals.add({
      name: "watching-buyer",
      role: "buyer",
      address: h.addresses.buyer,
    });
    const reader = await openEventStream(h.url, token, h.caseId);
    readers.push(reader);
    const other = await watch("buyer");
    await reader.waitFor(() => true);
    h.principals.revoke(principal.id);
    await sleep(400);
    expect(reader.ended, "the revoked principal's stream").to.equal(true);
    expect(other.ended, "another principal's stream").to.equal(false);
  });

  it("ends every stream on closeStreams", async function () {
    const a = await watch("bank");
    const b = await watch("operator");
    await a.waitFor(() => true);
    await b.waitFor(() => true);
    h.app.closeStreams();
    await sleep(200);
    expect(a.ended && b.ended).to.equal(true);
  });
});
