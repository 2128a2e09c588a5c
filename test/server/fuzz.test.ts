/**
 * Fuzz (fast-check): thousands of random requests against the real app on a real port, with real tokens.
 * Methods, paths built from the real route shapes with random ids and stages (huge, negative, unicode, raw
 * Latin-1 bytes, `..`, empty, very long), query strings, bodies (shaped like the real ones with random
 * values, random JSON, not JSON at all, too large, too deep), content types and encodings, Authorization
 * variants, Idempotency-Key variants (a small pool, so keys repeat: replays and mismatches), Last-Event-ID.
 *
 * Each answer must be 2xx or 4xx (never 5xx, never a stack trace), and a 4xx must carry the error shape
 * `{error: {code, message}}`. Afterwards the server still answers, and nothing is half-done: every case
 * the escrow gained and every submission the engine's outbox gained is explained by a successful answer
 * (or is the engine's own timer work, keyed `runtime:`), no Idempotency-Key is left "in progress", and
 * no connection is left open. Every status an operation of the OpenAPI document answered is one the document
 * lists for that operation (matched as Express matches routes: test/server/support/openapi-operations.ts).
 *
 * FUZZ_RUNS and FUZZ_SEED change the run; a failure prints its seed and the request that failed.
 */
import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { Agent, request as httpRequest } from "node:http";
import { getTemplate } from "../../workflows";
import { startApp, type AppHarness, type TokenName } from "./support/app-harness";
import { documentedStatuses, operationMatcher } from "./support/openapi-operations";

/** Each run sends two requests at once (so the server also meets concurrent requests, an in-flight key among them). */
const PER_RUN = 2;
const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 2_500);
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_125);
/** A request that takes longer than this counts as the server no longer answering. */
const REQUEST_TIMEOUT_MS = 30_000;

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

interface FuzzAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

const TOKEN_NAMES: TokenName[] = ["operator", "bank", "lawyer", "buyer", "seller", "stranger", "revoked"];
const STAGE_IDS = [
  ...new Set(["uk-remortgage", "us-purchase", "uk-purchase"].flatMap((w) => Object.keys(getTemplate(w).stageIndex))),
];
const ROLES = ["bank", "lawyer", "buyer", "seller", "operator", "admin", ""];
/** The app's routes, each with the methods it answers. */
const ROUTES = {
  "/health": ["GET"],
  "/workflows": ["GET"],
  "/workflows/:workflow": ["GET"],
  "/openapi.json": ["GET"],
  "/cases": ["GET", "POST"],
  "/cases/:id": ["GET"],
  "/cases/:id/events": ["GET"],
  "/cases/:id/history": ["GET"],
  "/cases/:id/stages/:stage/sign-offs": ["POST", "DELETE"],
  "/cases/:id/stages/:stage/sign-offs/typed-data": ["GET"],
  "/cases/:id/deposits": ["POST"],
  "/cases/:id/withdrawals": ["POST"],
  "/cases/:id/cancellation": ["POST", "DELETE"],
  "/submissions/:submission": ["GET"],
  "/dev/clock": ["POST"],
  "/ui/cases/:id": ["GET"],
  "/ui/assets/:file": ["GET"],
} as const;
const ROUTE_SHAPES = Object.keys(ROUTES) as Array<keyof typeof ROUTES>;
type RouteShape = keyof typeof ROUTES;
const SHAPE_WEIGHTS: Partial<Record<RouteShape, number>> = {
  "/cases": 8,
  "/cases/:id/stages/:stage/sign-offs": 10,
  "/cases/:id/deposits": 4,
  "/cases/:id/withdrawals": 3,
  "/cases/:id/cancellation": 3,
  "/dev/clock": 3,
};

/** Strings a header may carry (Node's client refuses control characters and anything above U+00FF). */
const headerText = (maxLength: number) =>
  fc.string({
    unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c === 0x7f ? 0x7e : c)),
    maxLength,
  });
const hex = (bytes: number) => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => ethers.hexlify(b));

/** Path segments: mostly real ids, then everything a path segment could be. */
function segment(real: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 40, arbitrary: real },
    { weight: 2, arbitrary: fc.nat().map(String) },
    { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 1n << 300n }).map(String) },
    { weight: 1, arbitrary: fc.integer({ min: -1_000_000, max: -1 }).map(String) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        "",
        ".",
        "..",
        "%2e%2e",
        "%2F",
        "%00",
        "%",
        "%zz",
        "%E9",
        "\u00e9",
        "\u00ff\u0080",
        "0x1",
        "1e3",
        "1.0",
        "+1",
        "%201",
        "Infinity",
        "NaN",
        "__proto__",
        "constructor",
        "0",
        "00001",
      ),
    },
    { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 6_000 }).map((n) => "9".repeat(n)) },
  );
}

function amount(): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom("1", "1000", "100000000000000000") },
    { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 1n << 260n }).map(String) },
    { weight: 1, arbitrary: fc.constantFrom("0", "-1", "1.5", "", " 1", "1e18", "0x10", "\u0661") },
    { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null)) },
  );
}

/** Bodies, by route: shaped like the real requests (random values), random JSON, not JSON, oversize, too deep. */
function body(h: AppHarness): (shape: string) => fc.Arbitrary<string | undefined> {
  const address = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...Object.values(h.addresses)) },
    { weight: 1, arbitrary: hex(20) },
    { weight: 1, arbitrary: fc.constantFrom("0x1234", "", "0x" + "g".repeat(40), ethers.ZeroAddress) },
  );
  const openCase = fc
    .record({
      workflow: fc.oneof(
        {
          weight: 5,
          arbitrary: fc.constantFrom(
            "uk-remortgage",
            "us-purchase",
            "uk-purchase",
            getTemplate("us-purchase").templateId,
          ),
        },
        { weight: 1, arbitrary: fc.string({ maxLength: 90 }) },
      ),
      parties: fc.oneof(
        {
          weight: 3,
          arbitrary: fc.constant({
            bank: h.addresses.bank,
            lawyer: h.addresses.lawyer,
            buyer: h.addresses.buyer,
            seller: h.addresses.seller,
          }),
        },
        { weight: 3, arbitrary: fc.record({ bank: address, lawyer: address, buyer: address, seller: address }) },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
      ),
      terms: fc.oneof(
        {
          weight: 3,
          arbitrary: fc.tuple(fc.nat({ max: 1_000 }), fc.nat({ max: 1_000 })).map(([deposit, loan]) => ({
            price: String(deposit + loan),
            deposit: String(deposit),
            loan: String(loan),
          })),
        },
        { weight: 1, arbitrary: fc.record({ price: amount(), deposit: amount(), loan: amount() }) },
      ),
      more: fc.oneof(
        { weight: 4, arbitrary: fc.constant({}) },
        { weight: 1, arbitrary: fc.record({ asset: address }) },
        { weight: 1, arbitrary: fc.record({ extra: fc.jsonValue({ maxDepth: 1 }) }) },
      ),
    })
    .map(({ more, ...request }) => ({ ...request, ...more }));
  const signOff = fc.record(
    {
      evidence: fc.oneof(hex(32), fc.constantFrom("0x12", "", ethers.ZeroHash)),
      signature: fc.oneof(hex(65), fc.constantFrom("nope", "0x")),
      role: fc.constantFrom(...ROLES),
    },
    { requiredKeys: [] },
  );
  const deposit = fc.record({ amount: amount(), role: fc.constantFrom(...ROLES) }, { requiredKeys: ["amount"] });
  // The moves that succeed stay small: the in-process chain is shared with the test files that run after this
  // one, and its clock does not go back. The rest are refused: not positive, over ten years, not whole, not numbers.
  const clock = fc.record({
    seconds: fc.oneof(
      { weight: 3, arbitrary: fc.integer({ min: 1, max: 600 }) },
      { weight: 1, arbitrary: fc.integer({ max: 0 }) },
      { weight: 1, arbitrary: fc.integer({ min: 10 * 365 * 86_400 + 1 }) },
      { weight: 1, arbitrary: fc.double().filter((x) => !Number.isInteger(x)) },
      { weight: 1, arbitrary: fc.constantFrom("60", null, 1e20, true) },
    ),
  });
  const shaped = fc.oneof(openCase, signOff, deposit, clock, fc.constant({})).map((value) => JSON.stringify(value));
  const json = (arbitrary: fc.Arbitrary<unknown>) => arbitrary.map((value) => JSON.stringify(value));
  // Mostly the body the route itself takes, with random values; otherwise anything at all.
  const native: Partial<Record<RouteShape, fc.Arbitrary<string | undefined>>> = {
    "/cases": json(openCase),
    "/cases/:id/stages/:stage/sign-offs": json(signOff),
    "/cases/:id/deposits": json(deposit),
    "/cases/:id/withdrawals": fc.constant("{}"),
    "/cases/:id/cancellation": fc.constant("{}"),
    "/dev/clock": json(clock),
  };
  const any: fc.Arbitrary<string | undefined> = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 8, arbitrary: shaped },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 60 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "",
        "{",
        "null",
        "[]",
        '"text"',
        "1",
        '{"__proto__":{"admin":true},"amount":"1"}',
        '{"constructor":{"prototype":{"admin":true}}}',
        '{"amount":"1","amount":"2"}',
        "[".repeat(20_000) + "]".repeat(20_000),
        JSON.stringify({ workflow: "x".repeat(70_000) }),
        "\u0000\u0001\u0002",
      ),
    },
  );
  return (shape: string) =>
    native[shape as RouteShape]
      ? fc.oneof({ weight: 3, arbitrary: native[shape as RouteShape]! }, { weight: 2, arbitrary: any })
      : any;
}

function headers(h: AppHarness): fc.Arbitrary<Record<string, string>> {
  const authorization = fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom(...TOKEN_NAMES).map((name) => `Bearer ${h.tokens[name]}`) },
    { weight: 1, arbitrary: fc.constantFrom(...TOKEN_NAMES).map((name) => `bearer   ${h.tokens[name]}  `) },
    { weight: 1, arbitrary: fc.constantFrom(...TOKEN_NAMES).map((name) => `Token ${h.tokens[name]}`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "msk_",
        `Bearer msk_${"A".repeat(43)}`,
        `Bearer ${h.tokens.bank} ${h.tokens.lawyer}`,
        "Bearer " + "x".repeat(7_000),
      ),
    },
    { weight: 1, arbitrary: headerText(80).map((t) => `Bearer ${t}`) },
  );
  // Mostly JSON, as a client sends it (else few bodies would be read at all), and everything else besides.
  const contentType = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8") },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        "application/json; charset=utf-16",
        "application/json; charset=latin1",
        "APPLICATION/JSON",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/merge-patch+json",
        "*/*",
        "",
        "json",
      ),
    },
  );
  const idempotencyKey = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom("key-1", "key-2", "key-3", "key-4", "key-5") },
    {
      weight: 1,
      arbitrary: fc.string({
        unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
        minLength: 1,
        maxLength: 40,
      }),
    },
    { weight: 1, arbitrary: fc.constantFrom("", " ", "a b", "x".repeat(256), "\u00e9t\u00e9") },
  );
  // Each header is there or not; the Authorization header most of the time, or nearly all would be 401s.
  const maybe = <T>(arbitrary: fc.Arbitrary<T>, present: number, absent: number) =>
    fc.oneof({ weight: present, arbitrary }, { weight: absent, arbitrary: fc.constant(undefined) });
  return fc
    .record({
      authorization: maybe(authorization, 7, 1),
      "content-type": maybe(contentType, 5, 1),
      "content-encoding": maybe(fc.constantFrom("gzip", "deflate", "br", "identity", "compress", "x-unknown"), 1, 15),
      "idempotency-key": maybe(idempotencyKey, 1, 2),
      "last-event-id": maybe(
        fc.oneof(fc.nat().map(String), fc.bigInt({ min: 0n, max: 1n << 80n }).map(String), headerText(30)),
        1,
        4,
      ),
      accept: maybe(fc.constantFrom("text/event-stream", "application/json", "*/*", "text/html"), 1, 4),
      "x-forwarded-for": maybe(fc.constantFrom("1.2.3.4", "::1", "garbage"), 1, 8),
      "x-random": maybe(headerText(40), 1, 8),
    })
    .map(
      (record) =>
        Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as Record<string, string>,
    );
}

function query(): fc.Arbitrary<string> {
  const pair = fc.tuple(
    fc.constantFrom(
      "purpose",
      "role",
      "evidence",
      "a",
      "__proto__",
      "constructor",
      "purpose[]",
      "role[x]",
      "",
      // The worklist's (GET /cases).
      "awaiting",
      "status",
      "workflow",
      "deadlineBefore",
      "openedAfter",
      "limit",
      "cursor",
    ),
    fc.oneof(
      fc.constantFrom(
        "sign-off",
        "revoke",
        "bank",
        "lawyer",
        ethers.ZeroHash,
        "",
        "me",
        "open,expired",
        "uk-remortgage",
        "2027-03-14T17:00:00Z",
        "2027-02-30T00:00:00+01:00",
        "0",
        "200",
        "eyJlIjoiIn0",
      ),
      fc.string({ unit: "grapheme", maxLength: 12 }),
    ),
  );
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant("") },
    {
      weight: 3,
      arbitrary: fc
        .array(pair, { minLength: 1, maxLength: 4 })
        .map((pairs) => "?" + pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "?",
        "?&&=&",
        "?purpose=revoke&purpose=sign-off",
        "?%",
        "?a=%zz",
        "?" + "a=1&".repeat(2_000),
      ),
    },
  );
}

function fuzzRequest(h: AppHarness, caseIds: string[]): fc.Arbitrary<FuzzRequest> {
  // Mostly a method the route answers; otherwise any method, the odd ones included.
  const method = (shape: string) =>
    fc.oneof(
      {
        weight: 4,
        arbitrary: fc.constantFrom(...((ROUTES as Record<string, readonly string[]>)[shape] ?? ["GET", "POST"])),
      },
      { weight: 1, arbitrary: fc.constantFrom("GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS") },
    );
  const shapeOrRandom = fc.oneof(
    // The routes that change something come up more often: their success paths are the ones to probe.
    ...ROUTE_SHAPES.map((shape) => ({ weight: SHAPE_WEIGHTS[shape] ?? 2, arbitrary: fc.constant(shape as string) })),
    {
      weight: 3,
      arbitrary: fc
        .array(segment(fc.constantFrom("cases", "stages", "sign-offs", "x")), { maxLength: 6 })
        .map((s) => "/" + s.join("/")),
    },
  );
  const ids = {
    id: segment(fc.constantFrom(...caseIds)),
    stage: segment(fc.constantFrom(...STAGE_IDS)),
    workflow: segment(
      fc.constantFrom("uk-remortgage", "us-purchase", "uk-purchase", getTemplate("uk-purchase").templateId),
    ),
    submission: segment(fc.integer({ min: 1, max: 60 }).map(String)),
    file: segment(fc.constantFrom("app.js", "style.css", "index.html", "../package.json", "..%2F..%2Fpackage.json")),
  };
  const bodyFor = body(h);
  return shapeOrRandom.chain((shape) =>
    fc
      .record({
        method: method(shape),
        ids: fc.record(ids),
        query: query(),
        headers: headers(h),
        body: bodyFor(shape),
        trailingSlash: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      })
      .map(({ method, ids: id, query: q, headers: hs, body: b, trailingSlash }) => {
        let path = shape
          .replace(":id", id.id)
          .replace(":stage", id.stage)
          .replace(":workflow", id.workflow)
          .replace(":submission", id.submission)
          .replace(":file", id.file);
        if (trailingSlash) path += "/";
        return { method, path: path + q, headers: hs, body: b };
      }),
  );
}

describe("server: fuzz", function () {
  this.timeout(600_000);
  let h: AppHarness;
  let agent: Agent;

  before(async function () {
    h = await startApp();
    agent = new Agent({ keepAlive: true, maxSockets: 8 });
  });
  after(async function () {
    agent?.destroy();
    await h?.close();
  });

  /** One raw request (Node's http client: it sends paths as given, `..` and Latin-1 bytes included). */
  function send(r: FuzzRequest): Promise<FuzzAnswer> {
    return new Promise((resolve, reject) => {
      const buffer = r.body === undefined ? undefined : Buffer.from(r.body, "utf8");
      const req = httpRequest(
        h.url + "/",
        {
          agent,
          method: r.method,
          path: r.path,
          headers: { ...r.headers, ...(buffer ? { "content-length": String(buffer.length) } : {}) },
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          const answer = { status: res.statusCode ?? 0, headers: res.headers, text: "" };
          if ((res.headers["content-type"] ?? "").startsWith("text/event-stream")) {
            // An event stream: its status and headers are the answer; close it at once so streams don't pile up.
            req.destroy();
            resolve(answer);
            return;
          }
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ ...answer, text: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on("error", reject);
      req.end(buffer);
    });
  }

  describe("what the fuzz found", function () {
    // serve-static with fallthrough off answered another method with a bare 405 and a path out of its folder
    // with a bare 403, without the error shape.
    for (const [method, path] of [
      ["POST", "/ui/assets/style.css"],
      ["DELETE", "/ui/assets/app.js"],
      ["GET", "/ui/assets/..%2F..%2Fpackage.json"],
      ["GET", "/ui/assets/no-such-file.js"],
    ] as const) {
      it(`answers ${method} ${path} 404 in the error shape`, async function () {
        const answer = await send({
          method,
          path,
          headers: { authorization: `Bearer ${h.tokens.buyer}` },
          body: undefined,
        });
        expect(answer.status).to.equal(404);
        expect(JSON.parse(answer.text).error.code).to.equal("NOT_FOUND");
      });
    }
    it("still serves the page's assets", async function () {
      const answer = await send({ method: "GET", path: "/ui/assets/app.js", headers: {}, body: undefined });
      expect(answer.status).to.equal(200);
      expect(answer.headers["content-type"]).to.match(/javascript/);
    });
  });

  it(`answers ${NUM_RUNS * PER_RUN} random requests with 2xx or 4xx only, in the error shape, and leaves nothing half-done`, async function () {
    const escrow = new ethers.Contract(
      h.escrowAddress,
      ["function caseCount() view returns (uint256)"],
      ethers.provider,
    );
    // Cases that the parties may act in, so that random requests also succeed (sign-offs, deposits, votes).
    const extra = [
      await h.openCase(),
      await h.openCase({ workflow: "us-purchase" }),
      await h.openCase({ workflow: "uk-purchase" }),
    ];
    const caseIds = [h.caseId, h.otherCaseId, ...extra];

    const casesBefore = Number(await escrow.caseCount());
    const lastSubmissionBefore = Math.max(0, ...h.engine.relayer.outbox.list().map((s) => s.id));
    const createdCases = new Set<string>();
    const acceptedSubmissions = new Set<number>();
    const statuses = new Map<number, number>();
    // Per operation of the OpenAPI document, the statuses the fuzz saw it answer: each must be documented.
    const document = JSON.parse(
      (await send({ method: "GET", path: "/openapi.json", headers: {}, body: undefined })).text,
    );
    const operationOf = operationMatcher(document);
    const seenByOperation = new Map<string, { path: string; method: string; statuses: Map<number, string> }>();
    let notHttpCount = 0;
    const started = Date.now();

    async function check(r: FuzzRequest): Promise<void> {
      const answer = await send(r);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const what = `${r.method} ${r.path.slice(0, 200)} -> ${answer.status} ${answer.text.slice(0, 300)}`;
      const operation = operationOf(r.method, r.path);
      if (operation) {
        const name = `${operation.method.toUpperCase()} ${operation.path}`;
        const seen = seenByOperation.get(name) ?? { ...operation, statuses: new Map<number, string>() };
        if (!seen.statuses.has(answer.status)) seen.statuses.set(answer.status, what.slice(0, 240));
        seenByOperation.set(name, seen);
      }
      expect(
        (answer.status >= 200 && answer.status < 300) || (answer.status >= 400 && answer.status < 500),
        what,
      ).to.equal(true);
      expect(answer.text, `a stack trace: ${what}`).to.not.match(/\n\s+at .+\(.+:\d+:\d+\)/);
      if (answer.status >= 400 && r.method !== "HEAD") {
        expect(answer.headers["content-type"] ?? "", what).to.match(/^application\/json/);
        const error = JSON.parse(answer.text).error;
        expect(error?.code, what).to.be.a("string").and.not.equal("");
        expect(error?.message, what).to.be.a("string").and.not.equal("");
        // Not HTTP at all (raw bytes in the target): refused by Node's parser, answered by server/http-server.ts.
        if (error.code === "MALFORMED_REQUEST") notHttpCount += 1;
      }
      if (answer.status >= 200 && answer.status < 300 && (r.method === "POST" || r.method === "DELETE")) {
        const location = String(answer.headers.location ?? "");
        if (answer.status === 201) {
          expect(location, what).to.match(/^\/cases\/\d+$/);
          createdCases.add(location.slice("/cases/".length));
        } else if (answer.status === 202) {
          expect(location, what).to.match(/^\/submissions\/\d+$/);
          acceptedSubmissions.add(Number(location.slice("/submissions/".length)));
        }
      }
    }

    await fc.assert(
      fc.asyncProperty(
        fc.tuple(...Array.from({ length: PER_RUN }, () => fuzzRequest(h, caseIds))),
        async (requests) => {
          await Promise.all(requests.map((r) => check(r)));
        },
      ),
      { numRuns: NUM_RUNS, seed: SEED, endOnFailure: true },
    );
    const seconds = (Date.now() - started) / 1000;

    // The server still answers.
    const health = await send({ method: "GET", path: "/health", headers: {}, body: undefined });
    expect(health.status).to.equal(200);
    expect(JSON.parse(health.text).status).to.equal("ok");

    // The escrow gained exactly the cases answered 201 (each POST /cases answers once the case is mined).
    expect(Number(await escrow.caseCount()) - casesBefore, "cases on chain beyond the 201s").to.equal(
      createdCases.size,
    );
    for (const id of createdCases) expect(h.engine.getCase(id), `case ${id}`).to.not.equal(null);

    // The outbox gained the accepted submissions, the opened cases' openCase, and the engine's own timer work.
    const gained = h.engine.relayer.outbox.list().filter((s) => s.id > lastSubmissionBefore);
    const unexplained = gained.filter(
      (s) =>
        !acceptedSubmissions.has(s.id) &&
        !(s.payload.kind === "call" && s.payload.method === "openCase") &&
        !s.idempotencyKey.startsWith("runtime:"),
    );
    expect(
      unexplained.map((s) => `${s.id} ${s.idempotencyKey} ${s.kind}`),
      "submissions no successful answer explains",
    ).to.deep.equal([]);
    const opens = gained.filter((s) => s.payload.kind === "call" && s.payload.method === "openCase");
    expect(opens.length, "openCase submissions beyond the 201s").to.equal(createdCases.size);
    for (const id of acceptedSubmissions) expect(h.engine.submission(id), `submission ${id}`).to.not.equal(null);

    // No Idempotency-Key is left claimed, and each accepted submission has its owner on record.
    const db = h.principals.db;
    expect(db.prepare("SELECT COUNT(*) FROM idempotency_records WHERE state = 'in-progress'").pluck().get()).to.equal(
      0,
    );
    const owned = new Set(db.prepare("SELECT submission_id FROM submission_owners").pluck().all() as number[]);
    for (const id of acceptedSubmissions) expect(owned.has(id), `the owner of submission ${id}`).to.equal(true);

    // No answer is left hanging: once the client lets go, the server holds no connection.
    agent.destroy();
    const deadline = Date.now() + 5_000;
    let open = -1;
    while (
      (open = await new Promise<number>((resolve) => h.server.getConnections((_e, n) => resolve(n)))) > 0 &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(open, "connections still open").to.equal(0);

    // Every status an operation answered is one the OpenAPI document lists for it.
    const undocumented: string[] = [];
    for (const [name, seen] of seenByOperation) {
      const documented = documentedStatuses(document, seen);
      for (const [status, example] of seen.statuses)
        if (!documented.has(status)) undocumented.push(`${name}: ${status} is not documented (e.g. ${example})`);
    }
    expect(undocumented, "statuses the fuzz saw that the OpenAPI document does not list for the route").to.deep.equal(
      [],
    );
    const perOperation = [...seenByOperation].map(
      ([name, seen]) => `${name} ${[...seen.statuses.keys()].sort((a, b) => a - b).join(",")}`,
    );
    console.log(`      statuses seen per operation (all documented): ${perOperation.join("; ")}`);

    // One line for the log: what the run was made of.
    const counts = Object.fromEntries([...statuses].sort(([a], [b]) => a - b));
    console.log(
      `      ${NUM_RUNS * PER_RUN} requests in ${seconds.toFixed(1)} s, seed ${SEED}: statuses ${JSON.stringify(counts)}, ${notHttpCount} refused by Node's HTTP parser (with the error shape); ${
        createdCases.size
      } cases opened, ${acceptedSubmissions.size} submissions accepted`,
    );
  });
});
