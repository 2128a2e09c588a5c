/**
 * What every route shares: the OpenAPI document (every mounted route in it, with its security and answers),
 * the rate limit per token (429 with Retry-After), and the request log (one line a request, no secrets).
 */
import { expect } from "chai";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { createApp, type App, type AppOptions } from "../../server/app";
import { openApiPath } from "../../server/openapi";
import { startApp, type AppHarness } from "./support/app-harness";

/** Every (method, path) the app routes, read from Express's router. */
function mountedRoutes(app: App): Array<{ method: string; path: string }> {
  const found: Array<{ method: string; path: string }> = [];
  const walk = (stack: any[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods))
          if (method !== "_all") found.push({ method, path: layer.route.path });
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((app as any).router.stack);
  return found;
}

describe("server: OpenAPI, rate limits and the request log", function () {
  let h: AppHarness;
  const extra: Array<{ app: App; server: Server }> = [];
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    for (const { app, server } of extra) {
      app.closeStreams();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await h?.close();
  });

  /** Another app over the same engine and principals, with other options, on its own port. */
  async function serve(options: Partial<AppOptions>): Promise<string> {
    const app = createApp(h.engine, { principals: h.principals, logger: pino({ level: "silent" }), ...options });
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    extra.push({ app, server });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  describe("GET /openapi.json", function () {
    it("is an OpenAPI 3.1 document, without a token", async function () {
      const res = await h.request(null, "GET", "/openapi.json");
      expect(res.status).to.equal(200);
      expect(res.body.openapi).to.equal("3.1.0");
      expect(res.body.components.securitySchemes.bearerAuth).to.include({ type: "http", scheme: "bearer" });
    });
    it("lists every route the app serves, with its security and answers", async function () {
      const doc = (await h.request(null, "GET", "/openapi.json")).body;
      const routes = mountedRoutes(h.app);
      expect(routes.length).to.be.at.least(17);
      for (const { method, path } of routes) {
        if (path.startsWith("/ui/assets")) continue; // static files
        const operation = doc.paths[openApiPath(path)]?.[method];
        expect(operation, `${method.toUpperCase()} ${path} is documented`).to.not.equal(undefined);
        expect(operation.responses, `${method} ${path} answers`).to.not.deep.equal({});
        expect(operation.responses["429"], `${method} ${path} 429`).to.not.equal(undefined);
      }
      const open = new Set([
        "/health",
        "/workflows",
        "/workflows/{id}",
        "/workflows/{id}/typical-durations",
        "/display",
        "/openapi.json",
        "/ui/cases/{id}",
        "/ui",
        "/ui/",
      ]);
      for (const [path, operations] of Object.entries<any>(doc.paths)) {
        for (const [method, operation] of Object.entries<any>(operations)) {
          const secured = operation.security.length > 0;
          expect(secured, `${method} ${path} security`).to.equal(!open.has(path));
          if (secured) expect(operation.responses["401"], `${method} ${path} 401`).to.not.equal(undefined);
          if (method === "post")
            expect(
              operation.parameters.map((p: any) => p.name),
              `${method} ${path}`,
            ).to.include("Idempotency-Key");
        }
      }
    });
    it("describes the request bodies from the zod schemas", async function () {
      const doc = (await h.request(null, "GET", "/openapi.json")).body;
      const body = doc.paths["/cases"].post.requestBody.content["application/json"].schema;
      expect(body.required).to.include.members(["workflow", "parties", "terms"]);
      expect(body.properties.terms.properties.price.pattern).to.be.a("string");
      const typedData = doc.paths["/cases/{id}/stages/{stage}/sign-offs/typed-data"].get;
      expect(typedData.parameters.map((p: any) => `${p.in}:${p.name}`)).to.include.members([
        "path:id",
        "path:stage",
        "query:purpose",
        "query:evidence",
      ]);
      expect(doc.paths["/cases/{id}/events"].get.responses["200"].content).to.have.property("text/event-stream");
      expect(doc.paths["/cases/{id}/events"].get.parameters.map((p: any) => `${p.in}:${p.name}`)).to.include(
        "header:Last-Event-ID",
      );
      expect(doc.paths["/submissions/{id}"].get).to.not.equal(undefined);
    });
    it("states the rule price <= deposit + loan, and lists 413, 415, 429 on every operation and 409, 503 on every change (issue 11)", async function () {
      const doc = (await h.request(null, "GET", "/openapi.json")).body;
      expect(
        doc.paths["/cases"].post.requestBody.content["application/json"].schema.properties.terms.description,
      ).to.include("price <= deposit + loan");
      expect(doc.paths["/cases"].post.description).to.include("price <= deposit + loan");
      for (const [path, operations] of Object.entries<any>(doc.paths)) {
        for (const [method, operation] of Object.entries<any>(operations)) {
          for (const status of ["400", "413", "415", "429"])
            expect(operation.responses[status], `${method} ${path} ${status}`).to.not.equal(undefined);
          if (method !== "get" && operation.security.length > 0)
            for (const status of ["409", "503"])
              expect(operation.responses[status], `${method} ${path} ${status}`).to.not.equal(undefined);
        }
      }
      // A body that may be left out entirely (it reads as {}) is not required; one that can't, is.
      expect(doc.paths["/cases/{id}/cancellation"].post.requestBody.required).to.equal(false);
      expect(doc.paths["/cases"].post.requestBody.required).to.equal(true);
    });
  });

  describe("rate limit", function () {
    it("answers 429 with Retry-After once a token's burst is spent, and leaves other tokens alone", async function () {
      const url = await serve({ rateLimit: { requestsPerMinute: 6, burst: 3 } });
      const get = (token: string) => fetch(`${url}/cases`, { headers: { Authorization: `Bearer ${token}` } });
      for (let i = 0; i < 3; i++) expect((await get(h.tokens.buyer)).status, `request ${i + 1}`).to.equal(200);
      const limited = await get(h.tokens.buyer);
      expect(limited.status).to.equal(429);
      expect(Number(limited.headers.get("retry-after"))).to.be.within(1, 10);
      const body = (await limited.json()) as any;
      expect(body.error.code).to.equal("RATE_LIMITED");
      expect((await get(h.tokens.seller)).status, "another token").to.equal(200);
    });
    it("limits requests without a token by their address", async function () {
      const url = await serve({ rateLimit: { requestsPerMinute: 60, burst: 2 } });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await fetch(`${url}/health`)).status);
      expect(statuses).to.deep.equal([200, 200, 429]);
    });
  });

  describe("request log", function () {
    it("writes one line a request with method, path, status, time and principal, and never a token", async function () {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk, _encoding, done) {
          lines.push(...chunk.toString().split("\n").filter(Boolean));
          done();
        },
      });
      const url = await serve({ logger: pino({ level: "info" }, sink) });
      const res = await fetch(`${url}/cases/${h.caseId}?token=${h.tokens.seller}`, {
        headers: { Authorization: `Bearer ${h.tokens.bank}` },
      });
      expect(res.status).to.equal(200); // an unknown query parameter is ignored, and not logged
      await fetch(`${url}/cases/${h.caseId}`, { headers: { Authorization: `Bearer ${h.tokens.bank}` } });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const requests = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
      expect(requests).to.have.length(2);
      const bank = h.principals.list().find((p) => p.name === "bank")!;
      expect(requests[1]).to.include({ method: "GET", path: `/cases/${h.caseId}`, status: 200, principal: bank.id });
      expect(requests[1].ms).to.be.a("number");
      expect(requests[0].path).to.equal(`/cases/${h.caseId}`);
      const all = lines.join("\n");
      for (const token of Object.values(h.tokens)) expect(all).to.not.include(token);
    });
  });
});
