/**
 * The server's parts without the chain: the one mapping of engine errors to statuses, the token buckets,
 * the idempotency records, and the principals' store (tokens hashed at rest) on real SQLite files.
 */
import { expect } from "chai";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ENGINE_ERROR_CODES, EngineError, type EngineErrorCode } from "../../engine";
import { PrincipalStore, hashToken } from "../../server/auth/principals";
import { ApiError, errorBody, toApiError } from "../../server/errors";
import { IdempotencyStore, requestHash } from "../../server/idempotency";
import { TokenBuckets } from "../../server/rate-limit";

const tempFile = () => join(mkdtempSync(join(tmpdir(), "server-unit-")), "server.sqlite");
const ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

describe("server/errors: toApiError", function () {
  it("maps each engine code to its status, in one place", function () {
    const expected: Partial<Record<EngineErrorCode, number>> = {
      NOT_FOUND: 404,
      FORBIDDEN: 403,
      CONFLICT: 409,
      TOO_EARLY: 409,
      INVALID_REQUEST: 400,
      NOT_SUPPORTED: 422,
      IDEMPOTENCY_CONFLICT: 409,
      CHAIN_UNAVAILABLE: 503,
      TIMEOUT: 503,
    };
    for (const [code, status] of Object.entries(expected) as [EngineErrorCode, number][]) {
      const api = toApiError(new EngineError(code, `a ${code}`, { details: { x: 1 } }));
      expect(api.status, code).to.equal(status);
      expect(api.code, code).to.equal(code);
      expect(api.message).to.equal(`a ${code}`);
    }
    expect(toApiError(new EngineError("CHAIN_UNAVAILABLE", "down")).headers["Retry-After"]).to.equal("5");
  });
  it("answers every engine code with its status, or with the generic 500 when it is the server's own fault", function () {
    for (const code of ENGINE_ERROR_CODES) {
      const api = toApiError(new EngineError(code, `a ${code}`));
      expect(api.status, code).to.be.within(400, 599);
      if (api.status === 500) expect(api.code, code).to.equal("INTERNAL");
      else expect(api.code, code).to.equal(code);
    }
  });
  it("always gives TOO_EARLY an availableAt and a waitsFor, null when the engine knows neither", function () {
    expect(toApiError(new EngineError("TOO_EARLY", "wait")).details).to.deep.equal({
      availableAt: null,
      waitsFor: null,
    });
    const at = "2030-01-01T00:00:00.000Z";
    expect(
      (toApiError(new EngineError("TOO_EARLY", "wait", { details: { availableAt: at } })).details as any).availableAt,
    ).to.equal(at);
  });
  it("answers anything unexpected 500 with a generic message and no stack or cause", function () {
    for (const thrown of [
      new Error("secret internals at /work/main/x.ts:1"),
      new EngineError("INTERNAL", "db locked"),
      "a string",
      null,
    ]) {
      const api = toApiError(thrown);
      expect(api.status).to.equal(500);
      const body = JSON.stringify(errorBody(api));
      expect(body).to.not.match(/secret|db locked|\.ts:|at /);
    }
  });
  it("keeps an ApiError as it is", function () {
    const api = new ApiError(418, "TEAPOT", "short and stout");
    expect(toApiError(api)).to.equal(api);
    expect(errorBody(api)).to.deep.equal({ error: { code: "TEAPOT", message: "short and stout" } });
  });
});

describe("server/rate-limit: TokenBuckets", function () {
  it("allows a burst, then one request per refill interval, and says how long to wait", function () {
    const buckets = new TokenBuckets({ requestsPerMinute: 60, burst: 3 });
    const t = 1_000_000;
    expect([buckets.take("a", t), buckets.take("a", t), buckets.take("a", t)]).to.deep.equal([0, 0, 0]);
    expect(buckets.take("a", t)).to.equal(1000);
    expect(buckets.take("a", t + 500)).to.equal(500);
    expect(buckets.take("a", t + 1000)).to.equal(0);
    expect(buckets.take("b", t), "another key has its own bucket").to.equal(0);
  });
  it("never holds more than the burst, however long the quiet", function () {
    const buckets = new TokenBuckets({ requestsPerMinute: 600, burst: 2 });
    buckets.take("a", 0);
    const later = 10 * 60_000;
    expect([buckets.take("a", later), buckets.take("a", later), buckets.take("a", later) > 0]).to.deep.equal([
      0,
      0,
      true,
    ]);
  });
  it("refuses a limit that is not positive", function () {
    expect(() => new TokenBuckets({ requestsPerMinute: 0 })).to.throw(/requestsPerMinute/);
  });
});

describe("server/idempotency: IdempotencyStore", function () {
  it("claims a key once, replays it when done, and tells another request or one in flight apart", function () {
    const principals = PrincipalStore.open(tempFile());
    const store = new IdempotencyStore(principals.db);
    const hash = requestHash("POST", "/cases/1/deposits", { amount: "5" });
    expect(store.begin("p1", "k", hash)).to.deep.equal({ kind: "new" });
    expect(store.begin("p1", "k", hash)).to.deep.equal({ kind: "in-flight" });
    expect(store.begin("p1", "k", requestHash("POST", "/cases/1/deposits", { amount: "6" }))).to.deep.equal({
      kind: "mismatch",
    });
    expect(store.begin("p2", "k", hash), "another principal's key").to.deep.equal({ kind: "new" });
    store.finish("p1", "k", 202, { body: { id: 7 } });
    expect(store.begin("p1", "k", hash)).to.deep.equal({ kind: "replay", status: 202, body: { body: { id: 7 } } });
    store.abandon("p2", "k");
    expect(store.begin("p2", "k", hash)).to.deep.equal({ kind: "new" });
    principals.close();
  });
  it("lets a new process take over a record an earlier one left in progress", function () {
    const file = tempFile();
    const first = PrincipalStore.open(file);
    const hash = requestHash("DELETE", "/x", {});
    expect(new IdempotencyStore(first.db).begin("p", "k", hash).kind).to.equal("new");
    first.close();
    const second = PrincipalStore.open(file);
    const store = new IdempotencyStore(second.db);
    expect(store.begin("p", "k", hash).kind).to.equal("new");
    expect(store.begin("p", "k", hash).kind, "now this process's").to.equal("in-flight");
    second.close();
  });
  it("fingerprints a body whatever the order of its fields", function () {
    expect(requestHash("POST", "/a", { x: 1, y: { b: 2, a: 1 } })).to.equal(
      requestHash("post", "/a", { y: { a: 1, b: 2 }, x: 1 }),
    );
    expect(requestHash("POST", "/a", { x: 1 })).to.not.equal(requestHash("POST", "/b", { x: 1 }));
  });
});

describe("server/auth: PrincipalStore", function () {
  it("hands out a token once and keeps only its sha256", function () {
    const file = tempFile();
    const store = PrincipalStore.open(file);
    const { principal, token } = store.add({ name: "acme bank", role: "bank", address: ADDRESS.toLowerCase() });
    expect(token).to.match(/^msk_[A-Za-z0-9_-]{43}$/);
    expect(principal.address, "checksummed").to.equal(ADDRESS);
    const stored = store.db.prepare("SELECT token_hash FROM principals WHERE id = ?").get(principal.id) as {
      token_hash: string;
    };
    expect(stored.token_hash).to.equal(hashToken(token));
    const everything = JSON.stringify(store.db.prepare("SELECT * FROM principals").all());
    expect(everything).to.not.include(token);
    expect(store.authenticate(token)).to.deep.equal(principal);
    expect(store.authenticate(`${token}x`)).to.equal(null);
    expect(store.authenticate("not-a-token")).to.equal(null);
    store.close();
  });
  it("revokes by id, by name, or every principal of an address", function () {
    const store = PrincipalStore.open(tempFile());
    const a = store.add({ name: "a", role: "buyer", address: ADDRESS });
    const b = store.add({ name: "b", role: "buyer", address: ADDRESS });
    const c = store.add({ name: "c", role: "seller", address: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC" });
    expect(store.revoke("c")!.id).to.equal(c.principal.id);
    expect(store.revoke(ADDRESS.toLowerCase())).to.not.equal(null);
    expect([a, b, c].map((p) => store.authenticate(p.token))).to.deep.equal([null, null, null]);
    expect(store.revoke("c"), "already revoked").to.equal(null);
    expect(store.list().every((p) => p.revokedAt !== null)).to.equal(true);
    store.close();
  });
  it("refuses an unknown role, a bad address and a name taken", function () {
    const store = PrincipalStore.open(tempFile());
    store.add({ name: "x", role: "lawyer", address: ADDRESS });
    expect(() => store.add({ name: "y", role: "judge" as any, address: ADDRESS })).to.throw(/unknown role/);
    expect(() => store.add({ name: "y", role: "lawyer", address: "0x12" })).to.throw(/not an address/);
    expect(() => store.add({ name: "x", role: "lawyer", address: ADDRESS })).to.throw(/already exists/);
    store.close();
  });
});
