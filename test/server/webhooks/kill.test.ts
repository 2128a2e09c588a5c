/**
 * Webhooks through a `kill -9` of `npm start` (server/main.ts as a real child process, with its Anvil killed
 * too) while deliveries are under way: after the restart every expected event reaches the receiver, and after
 * de-duplication by `webhook-id` each exactly once; a message may arrive twice (at least once: the kill came
 * between the receiver's answer and the server's record of it), never as two messages. The deliveries come from
 * the engine's stored events, so what the dispatcher had not read yet is read after the restart, and the chain
 * events that Anvil lost and the engine sent again are the same deliveries, not new ones.
 */
import { expect } from "chai";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../../server/chain/child-process";
import { alive, anvilPid, api, eventually, runMain, signalGroup, type MainProcess } from "../support/main-process";
import { startReceiver, type Receiver } from "./support/receiver";

const CASES = 6;

describe("webhooks through a kill -9 of npm start", function () {
  this.timeout(300_000);
  const dataDir = mkdtempSync(join(tmpdir(), "webhooks-kill-"));
  let port: number;
  let main: MainProcess | null = null;
  let receiver: Receiver;
  const env = () => ({ DATA_DIR: dataDir, PORT: String(port), WEBHOOKS_ALLOW_PRIVATE_URLS: "true" });

  before(async function () {
    port = await freePort();
    receiver = await startReceiver();
  });

  after(async function () {
    if (main) signalGroup(main.child, "SIGKILL");
    const anvil = anvilPid(dataDir);
    if (anvil !== null && alive(anvil)) process.kill(anvil, "SIGKILL");
    await receiver?.close();
  });

  it("loses no delivery and doubles none beyond what at-least-once allows", async function () {
    main = await runMain(env());
    const tokens = JSON.parse(readFileSync(join(dataDir, "credentials.json"), "utf8")) as Record<
      string,
      { token: string; address: string }
    >;
    const made = await api(main.url, tokens.bank.token, "POST", "/webhooks", {
      url: receiver.url,
      eventTypes: ["signoff.awaited", "stage.completed"],
    });
    expect(made.status, JSON.stringify(made.body)).to.equal(201);
    receiver.secrets.push(made.body.secret);
    // Slow to answer: the kill lands while a delivery has arrived but not yet been answered.
    receiver.delayMs = 300;

    const parties = Object.fromEntries(
      ["bank", "lawyer", "buyer", "seller"].map((role) => [role, tokens[role].address]),
    ) as Record<string, string>;
    const cases: string[] = [];
    for (let i = 0; i < CASES; i++) {
      const opened = await api(main.url, tokens.bank.token, "POST", "/cases", {
        workflow: "uk-remortgage",
        parties,
        // Each its own terms: the same opening twice is one case (POST /cases is idempotent by its body).
        terms: { price: String(900 + i), deposit: "100", loan: String(800 + i) },
      });
      expect(opened.status, JSON.stringify(opened.body)).to.equal(201);
      cases.push(opened.body.id);
    }
    // Every sign-off answered 202 before the kill: each is in the engine's durable outbox.
    for (const id of cases)
      for (const who of ["buyer", "bank"]) {
        const res = await api(main.url, tokens[who].token, "POST", `/cases/${id}/stages/application/sign-offs`, {});
        expect(res.status, JSON.stringify(res.body)).to.equal(202);
      }
    await receiver.waitFor("some deliveries before the kill", (r) => r.arrivals.length >= 3);
    const unanswered = receiver.arrivals[receiver.arrivals.length - 1].id;
    const anvil = anvilPid(dataDir)!;
    signalGroup(main.child, "SIGKILL");
    process.kill(anvil, "SIGKILL");
    await main.exited;
    const beforeRestart = receiver.unique().length;
    expect(beforeRestart, "the kill came while deliveries were under way").to.be.below(CASES * 3);

    main = await runMain(env());
    // Each case: the bank's application sign-off awaited, the application completed, the valuation awaited.
    const expected = cases.flatMap((id) => [
      `${id} signoff.awaited application`,
      `${id} stage.completed application`,
      `${id} signoff.awaited valuation`,
    ]);
    const what = (r: { type: string; payload: { data: any } }) =>
      `${r.payload.data.caseId} ${r.type} ${r.payload.data.stage.id}`;
    await receiver.waitFor(
      "every expected event",
      (r) => expected.every((e) => r.unique().some((d) => what(d) === e)),
      120_000,
    );
    // Whatever was still to be sent has been: the delivery log has nothing pending.
    await eventually("an empty queue", async () => {
      const log = await api(main!.url, tokens.bank.token, "GET", `/webhooks/${made.body.id}/deliveries?limit=500`);
      return log.body.deliveries.every((d: { status: string }) => d.status === "delivered");
    });
    expect(receiver.rejected).to.deep.equal([]);
    const unique = receiver.unique().filter((d) => cases.includes(d.payload.data.caseId));
    expect(unique.map(what).sort()).to.deep.equal([...expected].sort());
    // In order per case, across the kill.
    for (const id of cases)
      expect(unique.filter((d) => d.payload.data.caseId === id).map(what)).to.deep.equal(
        expected.filter((e) => e.startsWith(`${id} `)),
      );
    // What the kill left unanswered came again after the restart, under its webhook-id: at least once. Only those
    // repeat, at most one per case (a case's next delivery waits for the one before).
    expect(receiver.arrivals.filter((d) => d.id === unanswered).length).to.equal(2);
    expect(receiver.arrivals.length - unique.length).to.be.within(1, CASES);
    console.log(
      `      (${receiver.arrivals.length} arrivals, ${unique.length} unique, ${beforeRestart} before the kill)`,
    );
  });
});
