/**
 * Benchmark of the HTTP API:
 *
 *   npm run bench:http [-- --json]
 *
 * prints a table, or with `--json` exactly one JSON object on stdout:
 *   { helloWorldRps, progressRps, ratio, errors, sseWatchers, sseFanoutMs, rateLimit,
 *     worklist: { cases, requests, firstPageMs, filtered: { path, p50Ms, p99Ms, items, bytes }, unfiltered: { ... } } }
 * (progress goes to stderr).
 *
 * - helloWorldRps: a bare Express 5 hello-world (`res.send("Hello World!")`) on 127.0.0.1, this run, this
 *   process: autocannon (programmatic), 50 connections, BENCH_SECONDS (default 10) s after a 3 s warm-up.
 *   Both servers are measured while the engine runs on its in-process chain in the same process (its polling
 *   is background load for either), so that the ratio compares the requests' own costs.
 * - progressRps: the same load on `GET /cases/:id` of the real app (a party's bearer token: the token looked
 *   up, the rate limit taken, the params checked, the progress read and sent, the request logged at info to
 *   /dev/null), over the in-process Hardhat chain and its engine. `ratio` is progressRps / helloWorldRps
 *   (goal at least 0.6) and `errors` counts both runs' errors, timeouts and non-2xx answers (goal 0).
 * - rateLimit: the per-token limit the app ran with, raised so that the load is not refused.
 * - sseWatchers: how many of BENCH_WATCHERS (default 10,000) streams of one case the server held open at
 *   once. The clients live in child processes (BENCH_WATCHER_PROCESSES, default one per core up to 4):
 *   both ends in one process would need twice the file descriptors, and `ulimit -n` (printed) bounds each.
 * - worklist: GET /cases over BENCH_WORKLIST_CASES (default 10,000) cases more, opened on chain in bulk (100
 *   openings a block, the bank's key, before the engine starts: opening them through the API would take far
 *   longer), a third each of uk-remortgage, us-purchase and uk-purchase, in a second app of its own. One client,
 *   one keep-alive connection, requests one after another (BENCH_WORKLIST_REQUESTS, default 500, of each, after
 *   50 of each as a warm-up), the filtered page and the unfiltered one taking turns so that both meet the same
 *   noise: `filtered` is the bank's `?awaiting=me&status=open&workflow=us-purchase` (a third of the cases match),
 *   `unfiltered` the bank's plain `GET /cases` (all of them); each a page of 50 whole progresses, sorted by next
 *   legal deadline. p50 and p99 of each (goal: the filtered page's p99 at most 50 ms). `firstPageMs`: the
 *   first request after the start, which builds the worklist's index of every case (not in the percentiles).
 *   `BENCH_ONLY=worklist` runs this part alone (the other fields are then null).
 * - sseFanoutMs: from the engine's notice of one change (a sign-off; the benchmark's listener subscribed
 *   before the app's own) until the last watcher has received the event, timed on the monotonic clock that
 *   every process on the machine shares (goal at most 250 ms). The table also shows the server's share
 *   (until the app's listener has handed every write to its socket) and the first and median arrivals.
 */
import { execSync, fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { Agent, createServer, request as httpRequest, type Server } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import pino from "pino";
import { createApp } from "../../server/app";
import { ethers } from "hardhat";
import { MortgageEscrow__factory } from "../../typechain-types";
import { getTemplate } from "../../workflows";
import { DEFAULT_TERMS, startApp, type AppHarness } from "../server/support/app-harness";

const JSON_OUT = process.argv.includes("--json");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = 3;
const CONNECTIONS = 50;
const WATCHERS = Number(process.env.BENCH_WATCHERS ?? 10_000);
const WATCHER_PROCESSES = Number(
  process.env.BENCH_WATCHER_PROCESSES ?? Math.min(4, Math.max(1, availableParallelism())),
);
const ONLY = process.env.BENCH_ONLY;
if (ONLY !== undefined && ONLY !== "worklist") throw new Error(`BENCH_ONLY=${ONLY}: only "worklist" is known`);
const WORKLIST_CASES = Number(process.env.BENCH_WORKLIST_CASES ?? 10_000);
const WORKLIST_REQUESTS = Number(process.env.BENCH_WORKLIST_REQUESTS ?? 500);
const WORKLIST_WARMUP = 50;
const WORKLIST_FILTERED = "/cases?awaiting=me&status=open&workflow=us-purchase";
const WORKLIST_UNFILTERED = "/cases";
/** High enough that 50 connections at full speed never meet it, and the watchers may all connect at once. */
const RATE_LIMIT = { requestsPerMinute: 60_000_000, burst: 1_000_000 };

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
// autocannon ships no types: the part of its programmatic API used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require("autocannon") as (options: {
  url: string;
  connections: number;
  duration: number;
  headers?: Record<string, string>;
}) => Promise<AutocannonResult>;

const log = (message: string) => process.stderr.write(`${message}\n`);

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A warm-up, then the measured run. */
async function load(url: string, headers: Record<string, string> = {}): Promise<AutocannonResult> {
  await autocannon({ url, connections: CONNECTIONS, duration: WARMUP_SECONDS, headers });
  return autocannon({ url, connections: CONNECTIONS, duration: SECONDS, headers });
}

const failures = (r: AutocannonResult) => r.errors + r.timeouts + r.non2xx;

async function helloWorld(): Promise<AutocannonResult> {
  const app = express();
  app.get("/", (_req, res) => {
    res.send("Hello World!");
  });
  const server = createServer(app);
  const url = await listen(server);
  try {
    return await load(url);
  } finally {
    await close(server);
  }
}

// ------------------------------------------------------------------------------------------ SSE fan-out

/**
 * One watchers' process: opens `count` streams of the case (a keep-alive agent, in batches so the listen
 * backlog is not overrun), reports how many are open, then once armed notes when each stream's next event
 * arrives (raw bytes searched, not decoded: the clients' side should cost as little as it can).
 */
const WATCHER_CHILD = `
const http = require("node:http");
const [url, path, token, count] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const MARK = Buffer.from("event: progress");
const streams = [];
const arrivals = [];
let armed = false;
let waiting = 0;
const report = () => process.send({ kind: "received", arrivals: arrivals.map(String) });
function open() {
  return new Promise((resolve) => {
    const s = { ready: false, seen: false, req: null };
    s.req = http.get(url + path, { agent, headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) { res.resume(); resolve(null); return; }
      res.on("data", (chunk) => {
        if (!s.ready) { if (chunk.indexOf(MARK) >= 0) { s.ready = true; resolve(s); } return; }
        if (armed && !s.seen && chunk.indexOf(MARK) >= 0) {
          s.seen = true;
          arrivals.push(process.hrtime.bigint());
          if (--waiting === 0) report();
        }
      });
      res.on("error", () => {});
    });
    s.req.on("error", () => resolve(null));
  });
}
(async () => {
  const batch = 250;
  for (let i = 0; i < Number(count); i += batch) {
    const opened = await Promise.all(Array.from({ length: Math.min(batch, Number(count) - i) }, open));
    for (const s of opened) if (s) streams.push(s);
  }
  process.send({ kind: "open", open: streams.length });
})();
process.on("message", (m) => {
  if (m.kind === "arm") { armed = true; waiting = streams.length; process.send({ kind: "armed" }); }
  if (m.kind === "report") report();
  if (m.kind === "exit") { for (const s of streams) s.req.destroy(); agent.destroy(); process.exit(0); }
});
`;

/** The watchers' processes, each holding its share of the streams, driven over IPC. */
class WatcherProcesses {
  private readonly children: ChildProcess[];

  constructor(script: string, url: string, path: string, token: string, total: number, processes: number) {
    this.children = Array.from({ length: processes }, (_, i) => {
      const count = Math.floor(total / processes) + (i < total % processes ? 1 : 0);
      return fork(script, [url, path, token, String(count)], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    });
  }

  /** Every child's next message of this kind. */
  next(kind: string): Promise<any[]> {
    return Promise.all(
      this.children.map(
        (child) =>
          new Promise<any>((resolve) => {
            const on = (m: any) => {
              if (m.kind !== kind) return;
              child.off("message", on);
              resolve(m);
            };
            child.on("message", on);
          }),
      ),
    );
  }

  send(message: object): void {
    for (const child of this.children) child.send(message);
  }

  async exit(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise((resolve) => {
            child.once("exit", resolve);
            child.send({ kind: "exit" });
          }),
      ),
    );
  }
}

interface Notice {
  /** When the engine's notice of the change reached its first listener (the benchmark's). */
  at: Promise<bigint>;
  /** When the listener after the app's own ran: the app had handed every write to its socket. */
  appDone: Promise<bigint>;
}

interface FanOut {
  watchers: number;
  received: number;
  /** Notice to the last watcher's arrival; null if some watcher never heard the change. */
  fanoutMs: number | null;
  firstMs: number;
  medianMs: number;
  serverMs: number;
}

async function sseFanOut(h: AppHarness, url: string, nextNotice: () => Notice): Promise<FanOut> {
  const script = join(mkdtempSync(join(tmpdir(), "bench-http-")), "watchers.js");
  writeFileSync(script, WATCHER_CHILD);
  const watchers = new WatcherProcesses(
    script,
    url,
    `/cases/${h.caseId}/events`,
    h.tokens.buyer,
    WATCHERS,
    WATCHER_PROCESSES,
  );
  try {
    const started = Date.now();
    const open = (await watchers.next("open")).reduce((n, m) => n + m.open, 0);
    log(
      `  ${open} of ${WATCHERS} watchers open in ${((Date.now() - started) / 1000).toFixed(1)} s (${WATCHER_PROCESSES} client processes)`,
    );
    const armed = watchers.next("armed");
    watchers.send({ kind: "arm" });
    await armed;

    const notice = nextNotice();
    let reports = watchers.next("received");
    // The change: the lawyer signs off the title check (a relayed sign-off, mined, then projected).
    await h.engine.approve({
      caseId: h.caseId,
      stageId: "title-check",
      role: "lawyer",
      principalAddress: h.addresses.lawyer,
    });
    const at = await notice.at;
    const serverMs = Number((await notice.appDone) - at) / 1e6;
    const timedOut = await Promise.race([
      reports.then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 30_000)),
    ]);
    if (timedOut) {
      reports = watchers.next("received");
      watchers.send({ kind: "report" });
    }
    const arrivals = (await reports)
      .flatMap((m) => m.arrivals.map((t: string) => Number(BigInt(t) - at) / 1e6))
      .sort((a: number, b: number) => a - b);
    const received = arrivals.length;
    return {
      watchers: open,
      received,
      fanoutMs: received === open && received > 0 ? arrivals[received - 1] : null,
      firstMs: arrivals[0] ?? NaN,
      medianMs: arrivals[Math.floor(received / 2)] ?? NaN,
      serverMs,
    };
  } finally {
    await watchers.exit();
  }
}

/**
 * The machine's floor for the same fan-out: `bytes` written to each of `count` plain TCP sockets of this
 * process (no HTTP, no app), the clients in one child process. What the app's fan-out can't go below here:
 * it is one write (one system call) per watcher.
 */
const FLOOR_CHILD = `
const net = require("node:net");
const [port, count, bytes] = process.argv.slice(2).map(Number);
const sockets = [];
let done = 0;
let last = 0n;
(async () => {
  for (let i = 0; i < count; i += 250) {
    await Promise.all(Array.from({ length: Math.min(250, count - i) }, () => new Promise((resolve) => {
      let got = 0;
      const s = net.connect(port, "127.0.0.1", resolve);
      s.on("data", (chunk) => {
        got += chunk.length;
        if (got >= bytes && got - chunk.length < bytes) {
          last = process.hrtime.bigint();
          if (++done === count) process.send({ kind: "received", last: last.toString() });
        }
      });
      s.on("error", () => {});
      sockets.push(s);
    })));
  }
  process.send({ kind: "open" });
})();
process.on("message", () => { for (const s of sockets) s.destroy(); process.exit(0); });
`;

async function fanOutFloor(count: number, bytes: number): Promise<{ loopMs: number; lastMs: number }> {
  const script = join(mkdtempSync(join(tmpdir(), "bench-http-floor-")), "floor.js");
  writeFileSync(script, FLOOR_CHILD);
  const sockets: Socket[] = [];
  const server = createNetServer((socket) => {
    socket.setNoDelay(true);
    sockets.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const child = fork(script, [String((server.address() as AddressInfo).port), String(count), String(bytes)], {
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const next = (kind: string) =>
    new Promise<any>((resolve) => child.on("message", (m: any) => m.kind === kind && resolve(m)));
  try {
    await next("open");
    while (sockets.length < count) await new Promise((resolve) => setTimeout(resolve, 10));
    const received = next("received");
    const payload = Buffer.alloc(bytes, "x");
    const start = process.hrtime.bigint();
    for (const socket of sockets) socket.write(payload);
    const loopMs = Number(process.hrtime.bigint() - start) / 1e6;
    const { last } = await received;
    return { loopMs, lastMs: Number(BigInt(last) - start) / 1e6 };
  } finally {
    child.send({ kind: "exit" });
    await new Promise((resolve) => child.once("exit", resolve));
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

// ------------------------------------------------------------------------------------------ the worklist

/** Opens `count` cases from the bank's key, 100 a block (automine off while sending), a third of each workflow. */
async function openCasesInBulk(
  address: string,
  parties: Record<"bank" | "lawyer" | "buyer" | "seller", string>,
  count: number,
): Promise<void> {
  const bank = await ethers.getSigner(parties.bank);
  const escrow = MortgageEscrow__factory.connect(address, bank);
  const templates = ["uk-remortgage", "us-purchase", "uk-purchase"].map((w) => getTemplate(w).templateId);
  const terms = (i: number) => ({
    templateId: templates[i % templates.length],
    ...parties,
    asset: ethers.ZeroAddress,
    ...DEFAULT_TERMS,
  });
  const gasLimit = ((await escrow.openCase.estimateGas(terms(0))) * 13n) / 10n;
  let nonce = await ethers.provider.getTransactionCount(bank.address, "pending");
  const send = (method: string, params: unknown[] = []) => ethers.provider.send(method, params);
  await send("evm_setAutomine", [false]);
  try {
    for (let sent = 0; sent < count;) {
      const n = Math.min(100, count - sent);
      await Promise.all(
        Array.from({ length: n }, (_, k) => escrow.openCase(terms(sent + k), { nonce: nonce++, gasLimit })),
      );
      await send("evm_mine");
      sent += n;
      if (sent % 2000 === 0) log(`  ${sent} cases opened`);
    }
  } finally {
    await send("evm_setAutomine", [true]);
  }
}

interface PageTimes {
  path: string;
  p50Ms: number;
  p99Ms: number;
  items: number;
  bytes: number;
}

/** One GET on a keep-alive agent: the time to the whole body, and the body. */
function timedGet(agent: Agent, url: string, path: string, token: string): Promise<{ ms: number; body: string }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = httpRequest(url + path, { agent, headers: { Authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        if (res.statusCode !== 200) reject(new Error(`GET ${path}: ${res.statusCode}`));
        else resolve({ ms, body: Buffer.concat(chunks).toString("utf8") });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function worklist(): Promise<{
  cases: number;
  requests: number;
  firstPageMs: number;
  filtered: PageTimes;
  unfiltered: PageTimes;
}> {
  log(`worklist: opening ${WORKLIST_CASES} cases on chain, then an engine and an app that read them...`);
  const started = Date.now();
  const h = await startApp({
    logger: pino({ level: "silent" }),
    rateLimit: RATE_LIMIT,
    beforeEngineStart: ({ address, parties }) => openCasesInBulk(address, parties, WORKLIST_CASES),
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const cases = h.engine.caseIds().length;
    log(`  ${cases} cases, ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const paths = [WORKLIST_FILTERED, WORKLIST_UNFILTERED];
    // The first page builds the index: every case's worklist facts from its progress, once.
    const first = await timedGet(agent, h.url, WORKLIST_FILTERED, h.tokens.bank);
    const samples: number[][] = [[], []];
    const last: string[] = ["", ""];
    for (let i = 0; i < WORKLIST_WARMUP + WORKLIST_REQUESTS; i++) {
      for (const k of [0, 1]) {
        const { ms, body } = await timedGet(agent, h.url, paths[k], h.tokens.bank);
        if (i >= WORKLIST_WARMUP) samples[k].push(ms);
        last[k] = body;
      }
    }
    const times = (k: number): PageTimes => {
      const sorted = samples[k].sort((a, b) => a - b);
      return {
        path: paths[k],
        p50Ms: Math.round(percentile(sorted, 50) * 10) / 10,
        p99Ms: Math.round(percentile(sorted, 99) * 10) / 10,
        items: (JSON.parse(last[k]) as { cases: unknown[] }).cases.length,
        bytes: Buffer.byteLength(last[k]),
      };
    };
    return {
      cases,
      requests: WORKLIST_REQUESTS,
      firstPageMs: Math.round(first.ms),
      filtered: times(0),
      unfiltered: times(1),
    };
  } finally {
    agent.destroy();
    await h.close();
  }
}

// ------------------------------------------------------------------------------------------ the run

type Row = [string, string, string];

/** The hello world, GET /cases/:id and the SSE fan-out: their JSON fields and table rows. */
async function basics(fdLimit: string): Promise<{ result: Record<string, unknown>; rows: Row[] }> {
  log(`ulimit -n: ${fdLimit}; ${CONNECTIONS} connections, ${SECONDS} s each after a ${WARMUP_SECONDS} s warm-up`);

  // The chain and the engine first, so that both servers are measured beside the same background work (the
  // engine's polling of the in-process chain, every 50 ms): the ratio is the app's own cost per request.
  log("starting the chain, the engine and the app...");
  const h = await startApp({ logger: pino({ level: "silent" }) });

  log("hello world...");
  const hello = await helloWorld();
  log(`  ${Math.round(hello.requests.average)} req/s`);

  // The benchmark's listeners of the engine's notices, around the app's own (listeners run in the order they
  // subscribed): the first marks the notice's moment, the last the moment the app's fan-out has returned.
  const waiting: Array<{ at: (t: bigint) => void; appDone: (t: bigint) => void }> = [];
  let current: { at: (t: bigint) => void; appDone: (t: bigint) => void } | undefined;
  const unsubscribeBefore = h.engine.subscribe((n) => {
    if (n.caseId !== h.caseId || current || waiting.length === 0) return;
    current = waiting.shift()!;
    current.at(process.hrtime.bigint());
  });
  const app = createApp(h.engine, {
    principals: h.principals,
    rateLimit: RATE_LIMIT,
    devClock: false,
    heartbeatMs: 60_000,
    logger: pino({ level: "info" }, pino.destination({ dest: "/dev/null", sync: false })),
  });
  const unsubscribeAfter = h.engine.subscribe((n) => {
    if (n.caseId !== h.caseId || !current) return;
    current.appDone(process.hrtime.bigint());
    current = undefined;
  });
  const nextNotice = (): Notice => {
    const resolvers = {} as { at: (t: bigint) => void; appDone: (t: bigint) => void };
    const notice = {
      at: new Promise<bigint>((r) => (resolvers.at = r)),
      appDone: new Promise<bigint>((r) => (resolvers.appDone = r)),
    };
    waiting.push(resolvers);
    return notice;
  };

  const server = createServer(app);
  const url = await listen(server);
  try {
    log(`GET /cases/${h.caseId}...`);
    const progress = await load(`${url}/cases/${h.caseId}`, { Authorization: `Bearer ${h.tokens.buyer}` });
    log(`  ${Math.round(progress.requests.average)} req/s`);

    log(`SSE: ${WATCHERS} watchers of case ${h.caseId}...`);
    const fan = await sseFanOut(h, url, nextNotice);
    log(
      `  ${fan.received} of ${fan.watchers} received the change: first ${fan.firstMs.toFixed(1)} ms, median ${fan.medianMs.toFixed(1)} ms, ` +
        `last ${fan.fanoutMs?.toFixed(1) ?? "never"}; the server's writes took ${fan.serverMs.toFixed(1)} ms`,
    );

    const eventBytes = Buffer.byteLength(JSON.stringify(h.engine.getCase(h.caseId))) + 60;
    log(`the machine's floor: ${eventBytes} bytes to each of ${WATCHERS} plain sockets...`);
    const floor = await fanOutFloor(WATCHERS, eventBytes);
    log(`  the write loop ${floor.loopMs.toFixed(1)} ms, the last arrival ${floor.lastMs.toFixed(1)} ms`);

    const result = {
      helloWorldRps: Math.round(hello.requests.average),
      progressRps: Math.round(progress.requests.average),
      ratio: Math.round((progress.requests.average / hello.requests.average) * 1000) / 1000,
      errors: failures(hello) + failures(progress),
      sseWatchers: fan.watchers,
      sseFanoutMs: fan.fanoutMs === null ? null : Math.round(fan.fanoutMs * 10) / 10,
      rateLimit: RATE_LIMIT,
    };
    {
      const rows: Row[] = [
        [
          "hello world (bare Express 5)",
          `${result.helloWorldRps} req/s`,
          `p50 ${hello.latency.p50} ms, p99 ${hello.latency.p99} ms`,
        ],
        [
          "GET /cases/:id (the app)",
          `${result.progressRps} req/s`,
          `p50 ${progress.latency.p50} ms, p99 ${progress.latency.p99} ms`,
        ],
        ["ratio", String(result.ratio), "goal >= 0.6"],
        ["errors (both runs)", String(result.errors), "goal 0"],
        [
          "SSE watchers of one case",
          String(result.sseWatchers),
          `goal 10000; ulimit -n ${fdLimit}; ${WATCHER_PROCESSES} client processes`,
        ],
        [
          "SSE fan-out of one change",
          result.sseFanoutMs === null ? `not all received (${fan.received})` : `${result.sseFanoutMs} ms`,
          "goal <= 250 ms: notice to the last watcher",
        ],
        [
          "  the server's writes",
          `${fan.serverMs.toFixed(1)} ms`,
          `first arrival ${fan.firstMs.toFixed(1)} ms, median ${fan.medianMs.toFixed(1)} ms`,
        ],
        [
          "  the machine's floor",
          `${floor.lastMs.toFixed(1)} ms`,
          `${eventBytes} bytes to ${WATCHERS} plain TCP sockets (write loop ${floor.loopMs.toFixed(1)} ms)`,
        ],
        ["rate limit", `${RATE_LIMIT.requestsPerMinute}/min`, `per token, burst ${RATE_LIMIT.burst}`],
      ];
      return { result, rows };
    }
  } finally {
    unsubscribeBefore();
    unsubscribeAfter();
    app.closeStreams();
    await close(server);
    await h.close();
  }
}

async function main(): Promise<void> {
  const fdLimit = execSync("ulimit -n", { shell: "/bin/bash" }).toString().trim();
  const base =
    ONLY === "worklist"
      ? {
          result: {
            helloWorldRps: null,
            progressRps: null,
            ratio: null,
            errors: null,
            sseWatchers: null,
            sseFanoutMs: null,
            rateLimit: RATE_LIMIT,
          },
          rows: [] as Row[],
        }
      : await basics(fdLimit);
  const list = await worklist();
  log(
    `  filtered p50 ${list.filtered.p50Ms} ms, p99 ${list.filtered.p99Ms} ms; unfiltered p50 ${list.unfiltered.p50Ms} ms, p99 ${list.unfiltered.p99Ms} ms`,
  );
  const result = { ...base.result, worklist: list };
  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const page = (t: PageTimes) => `p50 ${t.p50Ms} ms, p99 ${t.p99Ms} ms`;
  const rows: Row[] = [
    ...base.rows,
    [
      `worklist, filtered (${list.cases} cases)`,
      page(list.filtered),
      `goal p99 <= 50 ms; GET ${list.filtered.path}: ${list.filtered.items} items, ${Math.round(list.filtered.bytes / 1024)} KiB`,
    ],
    [
      "worklist, unfiltered (baseline)",
      page(list.unfiltered),
      `GET ${list.unfiltered.path}: ${list.unfiltered.items} items, ${Math.round(list.unfiltered.bytes / 1024)} KiB; ${list.requests} of each, in turn`,
    ],
    [
      "worklist, the first page after start",
      `${list.firstPageMs} ms`,
      `builds the index: each case's facts from its progress, once`,
    ],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  process.stdout.write(`${rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`.trimEnd()).join("\n")}\n`);
}

main()
  .then(() => process.exit(0))
  .catch((error) => {
    log(String(error?.stack ?? error));
    process.exit(1);
  });
