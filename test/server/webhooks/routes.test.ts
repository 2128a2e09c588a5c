/**
 * The webhooks API (server/webhooks/routes.ts): subscribing returns the secret once, a principal sees and changes
 * only its own subscriptions (another's is 404 on every route), a URL on a loopback or private address is refused
 * unless the setting allows it, only http(s) is accepted, and the routes are in the OpenAPI document.
 */
import { expect } from "chai";
import { createServer, type Server } from "node:http";
import pino from "pino";
import { createApp, type App } from "../../../server/app";
import { startApp, type AppHarness } from "../support/app-harness";

describe("server: webhook subscriptions (POST/GET/DELETE /webhooks)", function () {
  this.timeout(120_000);
  let h: AppHarness;
  let strict: { app: App; server: Server; url: string };

  before(async function () {
    h = await startApp();
    const app = createApp(h.engine, {
      principals: h.principals,
      logger: pino({ level: "silent" }),
      webhooks: { allowPrivateUrls: false },
    });
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    strict = { app, server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
  });

  after(async function () {
    strict?.app.closeStreams();
    strict?.server.closeAllConnections();
    await new Promise<void>((resolve) => (strict ? strict.server.close(() => resolve()) : resolve()));
    await h?.close();
  });

  const subscribe = (who: "bank" | "lawyer" | "buyer", body: unknown) => h.request(who, "POST", "/webhooks", body);

  it("creates a subscription and shows its whsec_ secret once", async function () {
    const res = await subscribe("bank", {
      url: "http://127.0.0.1:9/hooks",
      eventTypes: ["stage.completed", "deadline.approaching"],
      businessDaysBefore: 2,
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    expect(res.body.secret).to.match(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(res.body).to.deep.include({
      url: "http://127.0.0.1:9/hooks",
      eventTypes: ["stage.completed", "deadline.approaching"],
      businessDaysBefore: 2,
      status: "active",
      disabledReason: null,
    });
    const one = await h.request("bank", "GET", `/webhooks/${res.body.id}`);
    expect(one.status).to.equal(200);
    expect(one.body).to.not.have.property("secret");
    const list = await h.request("bank", "GET", "/webhooks");
    expect(list.body.webhooks.map((w: { id: string }) => w.id)).to.include(res.body.id);
  });

  it("answers 404 to another principal on every route of a subscription, and lists only the caller's", async function () {
    const mine = (await subscribe("bank", { url: "http://127.0.0.1:9/a", eventTypes: ["case.completed"] })).body;
    const base = `/webhooks/${mine.id}`;
    for (const [method, path] of [
      ["GET", base],
      ["DELETE", base],
      ["POST", `${base}/secret`],
      ["GET", `${base}/deliveries`],
      ["POST", `${base}/deliveries/msg_x/redeliver`],
    ] as const) {
      const res = await h.request("lawyer", method, path, method === "POST" ? {} : undefined);
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).to.equal(404);
    }
    const operator = await h.request("operator", "GET", base);
    expect(operator.status).to.equal(404);
    const theirs = await h.request("lawyer", "GET", "/webhooks");
    expect(theirs.body.webhooks.map((w: { id: string }) => w.id)).to.not.include(mine.id);
    expect((await h.request("bank", "GET", base)).status).to.equal(200);
    expect((await h.request(null, "GET", "/webhooks")).status).to.equal(401);
  });

  it("deletes a subscription: it is gone from the list and 404 after", async function () {
    const mine = (await subscribe("buyer", { url: "http://127.0.0.1:9/b", eventTypes: ["case.completed"] })).body;
    expect((await h.request("buyer", "DELETE", `/webhooks/${mine.id}`)).status).to.equal(200);
    expect((await h.request("buyer", "GET", `/webhooks/${mine.id}`)).status).to.equal(404);
  });

  it("refuses loopback, private, link-local and unresolvable URLs without the setting, checking every address", async function () {
    const post = (url: string) =>
      fetch(`${strict.url}/webhooks`, {
        method: "POST",
        headers: { Authorization: `Bearer ${h.tokens.bank}`, "Content-Type": "application/json" },
        body: JSON.stringify({ url, eventTypes: ["stage.completed"] }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
    for (const url of [
      "http://127.0.0.1:8080/hooks",
      "http://localhost/hooks",
      "http://10.1.2.3/hooks",
      "http://192.168.1.1/hooks",
      "http://172.20.0.1/hooks",
      "http://169.254.169.254/latest/meta-data",
      "http://[::1]/hooks",
      "http://[fd00::1]/hooks",
      "http://[::ffff:127.0.0.1]/hooks",
      "http://0.0.0.0/hooks",
      "http://no-such-host.invalid/hooks",
    ]) {
      const res = await post(url);
      expect(res.status, `${url}: ${JSON.stringify(res.body)}`).to.equal(400);
      expect(res.body.error.details.reason).to.equal("URL_REFUSED");
    }
    // A public address is accepted (nothing is sent until an event comes).
    expect((await post("https://93.184.215.14/hooks")).status).to.equal(201);
  });

  it("accepts only http(s) URLs and known event types", async function () {
    for (const body of [
      { url: "ftp://127.0.0.1/x", eventTypes: ["stage.completed"] },
      { url: "file:///etc/passwd", eventTypes: ["stage.completed"] },
      { url: "http://user:pw@127.0.0.1/x", eventTypes: ["stage.completed"] },
      { url: "not a url", eventTypes: ["stage.completed"] },
    ]) {
      const res = await subscribe("bank", body);
      expect(res.status, `${body.url}: ${JSON.stringify(res.body)}`).to.equal(400);
    }
    const unknown = await subscribe("bank", { url: "http://127.0.0.1:9/x", eventTypes: ["stage.exploded"] });
    expect(unknown.status).to.equal(400);
    expect(unknown.body.error.code).to.equal("VALIDATION_FAILED");
    const none = await subscribe("bank", { url: "http://127.0.0.1:9/x", eventTypes: [] });
    expect(none.status).to.equal(400);
  });

  it("lists every webhook route in the OpenAPI document", async function () {
    const doc = (await h.request(null, "GET", "/openapi.json")).body;
    expect(Object.keys(doc.paths)).to.include.members([
      "/webhooks",
      "/webhooks/{id}",
      "/webhooks/{id}/secret",
      "/webhooks/{id}/deliveries",
      "/webhooks/{id}/deliveries/{deliveryId}/redeliver",
    ]);
    expect(doc.paths["/webhooks"].post.requestBody).to.not.equal(undefined);
  });
});
