/**
 * Deliveries when the receiver is not well (server/webhooks/delivery-worker.ts): a receiver that fails (500),
 * then times out, then comes back gets every delivery, each case's in order, a later one of a case never sent
 * while an earlier one still retries, with every attempt in the delivery log; a subscription whose deliveries
 * fail for the whole retry window is disabled with the reason stated on it; a delivery is sent again by its id
 * (the same `webhook-id`); after a secret's rotation deliveries carry both signatures through the grace period,
 * then the new one alone. Short windows and timeouts here; a day and 10 s by default.
 */
import { expect } from "chai";
import { startApp, type AppHarness } from "../support/app-harness";
import { settled } from "../support/case-walker";
import { startReceiver, type Receiver } from "./support/receiver";

const TIMEOUT_MS = 300;
const RETRY_WINDOW_MS = 4_000;
const GRACE_MS = 2_000;

describe("server: webhook retries, disabling, redelivery and secret rotation", function () {
  this.timeout(180_000);
  let h: AppHarness;
  const receivers: Receiver[] = [];

  before(async function () {
    h = await startApp({
      webhooks: {
        pollMs: 20,
        schedulerMs: 50,
        backoffBaseMs: 50,
        backoffMaxMs: 400,
        timeoutMs: TIMEOUT_MS,
        retryWindowMs: RETRY_WINDOW_MS,
        secretGraceMs: GRACE_MS,
      },
    });
  });

  after(async function () {
    await h?.close();
    for (const r of receivers) await r.close();
  });

  afterEach(function () {
    for (const r of receivers) expect(r.rejected, "deliveries that did not verify").to.deep.equal([]);
  });

  async function subscribed(eventTypes: string[] = ["signoff.awaited", "stage.completed"]) {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const made = await h.request("bank", "POST", "/webhooks", { url: receiver.url, eventTypes });
    expect(made.status, JSON.stringify(made.body)).to.equal(201);
    receiver.secrets.push(made.body.secret);
    return { receiver, id: made.body.id as string };
  }

  const log = async (hook: string) => {
    const res = await h.request("bank", "GET", `/webhooks/${hook}/deliveries?limit=500`);
    expect(res.status).to.equal(200);
    return res.body.deliveries.slice().reverse() as any[];
  };

  async function waitUntil<T>(what: string, probe: () => Promise<T | false>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function signApplication(caseId: string) {
    for (const who of ["buyer", "bank"] as const) {
      const res = await h.request(who, "POST", `/cases/${caseId}/stages/application/sign-offs`, {});
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      await settled(h, who, res.body.id);
    }
  }

  it("retries a receiver that fails, then times out, then comes back: all delivered, in order per case", async function () {
    const { receiver, id } = await subscribed();
    receiver.mode = "fail";
    const cases = [await h.openCase(), await h.openCase()];
    for (const c of cases) await signApplication(c);
    await receiver.waitFor("three failed attempts", (r) => r.requests >= 3);
    receiver.mode = "hang";
    const before = receiver.requests;
    await receiver.waitFor("two attempts that time out", (r) => r.requests >= before + 2);
    receiver.mode = "ok";

    // Each case: its application awaited, the application completed, the valuation awaited.
    const all = await waitUntil("every delivery delivered", async () => {
      const entries = await log(id);
      return entries.length === 6 && entries.every((d) => d.status === "delivered") && entries;
    });
    const attempts = all.flatMap((d) => d.attempts);
    expect(attempts.some((a: any) => a.statusCode === 500 && a.error === "HTTP 500")).to.equal(true);
    expect(
      attempts.some((a: any) => a.statusCode === null && a.error === `no answer within ${TIMEOUT_MS} ms`),
    ).to.equal(true);
    const timedOut = attempts.find((a: any) => a.error === `no answer within ${TIMEOUT_MS} ms`);
    expect(timedOut.durationMs).to.be.within(TIMEOUT_MS - 5, TIMEOUT_MS + 500);
    for (const c of cases) {
      const ofCase = all.filter((d) => d.caseId === c);
      expect(ofCase.map((d) => d.type)).to.deep.equal(["signoff.awaited", "stage.completed", "signoff.awaited"]);
      // The receiver saw them in that order, and nothing of a case was tried while an earlier delivery retried.
      const seen = receiver
        .unique()
        .filter((r) => r.payload.data.caseId === c)
        .map((r) => r.id);
      expect(seen).to.deep.equal(ofCase.map((d) => d.id));
      for (let i = 1; i < ofCase.length; i++)
        expect(Date.parse(ofCase[i].attempts[0].at)).to.be.at.least(Date.parse(ofCase[i - 1].deliveredAt));
    }
    expect(all[0].attempts.length).to.be.at.least(3);
    // Backoff: the attempts of the first delivery came at widening, jittered intervals, never all at once.
    const times = all[0].attempts.map((a: any) => Date.parse(a.at));
    expect(times[times.length - 1] - times[0]).to.be.at.least(100);
  });

  it("disables a subscription whose deliveries failed for the whole retry window, saying why, and redelivers by id", async function () {
    const { receiver, id } = await subscribed(["signoff.awaited"]);
    receiver.mode = "fail";
    const caseId = await h.openCase();
    const disabled = await waitUntil(
      "the subscription disabled",
      async () => {
        const res = await h.request("bank", "GET", `/webhooks/${id}`);
        return res.body.status === "disabled" && res.body;
      },
      RETRY_WINDOW_MS * 5,
    );
    expect(disabled.disabledReason).to.contain("retry window").and.contain("HTTP 500");
    expect(disabled.disabledAt).to.be.a("string");
    const [failed] = await log(id);
    expect(failed.status).to.equal("failed");
    expect(failed.caseId).to.equal(caseId);
    expect(failed.attempts.length).to.be.at.least(2);
    expect(Date.parse(failed.attempts.at(-1).at) - Date.parse(failed.attempts[0].at)).to.be.at.least(RETRY_WINDOW_MS);

    // Nothing more is sent to a disabled subscription; what happens meanwhile waits in its log.
    const requests = receiver.requests;
    await h.openCase();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.requests).to.equal(requests);
    expect((await log(id)).map((d) => d.status)).to.deep.equal(["failed", "pending"]);

    receiver.mode = "ok";
    const again = await h.request("bank", "POST", `/webhooks/${id}/deliveries/${failed.id}/redeliver`, {});
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    await receiver.waitFor("the redelivered message", (r) => r.unique().some((d) => d.id === failed.id));
    expect((await h.request("bank", "GET", `/webhooks/${id}`)).body.status).to.equal("active");
    // And the case opened while it was disabled follows, in order, once it receives again.
    await receiver.waitFor("the next one", (r) => r.unique().length === 2);

    // A delivered message sent again arrives again under the same webhook-id: the receiver de-duplicates it.
    const redo = await h.request("bank", "POST", `/webhooks/${id}/deliveries/${failed.id}/redeliver`, {});
    expect(redo.status).to.equal(202);
    await receiver.waitFor("a second arrival", (r) => r.arrivals.filter((d) => d.id === failed.id).length === 2);
    expect(receiver.unique().filter((d) => d.id === failed.id)).to.have.length(1);
    const missing = await h.request("bank", "POST", `/webhooks/${id}/deliveries/msg_nope/redeliver`, {});
    expect(missing.status).to.equal(404);
  });

  it("signs with the new secret after a rotation, and with the old one too during the grace period", async function () {
    const { receiver, id } = await subscribed(["signoff.awaited"]);
    await h.openCase();
    await receiver.waitFor("a first delivery", (r) => r.unique().length === 1);
    expect(receiver.unique()[0].verifiedWith).to.deep.equal([0]);

    const rotated = await h.request("bank", "POST", `/webhooks/${id}/secret`, {});
    expect(rotated.status, JSON.stringify(rotated.body)).to.equal(200);
    expect(rotated.body.secret)
      .to.match(/^whsec_/)
      .and.not.equal(receiver.secrets[0]);
    expect(Date.parse(rotated.body.previousSecretsExpireAt) - Date.now()).to.be.within(0, GRACE_MS);
    receiver.secrets.push(rotated.body.secret);
    receiver.required = [1];

    await h.openCase();
    await receiver.waitFor("a delivery during the grace period", (r) => r.unique().length === 2);
    expect(receiver.unique()[1].verifiedWith).to.deep.equal([0, 1]);

    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, Date.parse(rotated.body.previousSecretsExpireAt) - Date.now()) + 50),
    );
    await h.openCase();
    await receiver.waitFor("a delivery after the grace period", (r) => r.unique().length === 3);
    expect(receiver.unique()[2].verifiedWith).to.deep.equal([1]);
  });
});
