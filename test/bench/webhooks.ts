/**
 * Benchmark of the webhooks:
 *
 *   npm run bench:webhooks [-- --json]
 *
 * prints a table, or with `--json` exactly one JSON object on stdout (progress goes to stderr).
 *
 * The in-process Hardhat chain, its engine and the real app (server/webhooks with its default timings) in this
 * process, and a receiver on 127.0.0.1 that verifies every delivery with the `standardwebhooks` library.
 * BENCH_SUBSCRIPTIONS (default 4) subscriptions of the operator (who hears every case) to `signoff.awaited`,
 * each at its own path of the receiver; each case opened makes its application's two awaited sign-offs (the
 * buyer's and the bank's), so each opening is 2 x BENCH_SUBSCRIPTIONS deliveries.
 *
 * - burst: BENCH_CASES (default 300) cases opened on chain back to back (not through the engine: a bench
 *   account as their bank), as fast as the chain takes them; deliveries per second from the first commit to the
 *   last arrival.
 * - paced: BENCH_PACED (default 40) cases, one every 100 ms: the latency of a quiet system.
 * - backlog: the webhooks stopped (as after a crash), BENCH_CASES cases opened, then a new WebhookService on the
 *   same files: from its start to the last arrival, the rate at which it derives and sends a backlog from the
 *   stored events alone (the burst's rate is bounded by how fast the chain opens cases).
 * - latency: from the moment the engine committed the opening's block (the projection's change notice, which
 *   comes right after its SQLite commit) to the delivery's arrival at the receiver, on this process's monotonic
 *   clock. (The block's own time has a resolution of a second, too coarse for this.)
 * - baseline: the same number of deliveries as the burst, signed the same way, POSTed straight to the same
 *   receiver with the same concurrency (16), this run: what HTTP alone costs on this machine.
 */
import { ethers } from "hardhat";
import { createServer, request, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { getTemplate } from "../../workflows";
import { MortgageEscrow__factory } from "../../typechain-types";
import { newSecret, webhookHeaders } from "../../server/webhooks/signer";
import pino from "pino";
import { WebhookService } from "../../server/webhooks/service";
import { startApp } from "../server/support/app-harness";
import { setBalance } from "../engine/relayer-helpers";

const JSON_OUT = process.argv.includes("--json");
const CASES = Number(process.env.BENCH_CASES ?? 300);
const PACED = Number(process.env.BENCH_PACED ?? 40);
const SUBSCRIPTIONS = Number(process.env.BENCH_SUBSCRIPTIONS ?? 4);
const CONCURRENCY = 16;
const log = (line: string) => process.stderr.write(`${line}\n`);

interface Arrival {
  caseId: string;
  at: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const round = (n: number) => Math.round(n * 10) / 10;

async function main() {
  const h = await startApp();
  const secrets = new Map<string, string>();
  const arrivals: Arrival[] = [];
  let rejected = 0;
  const receiver = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const secret = secrets.get(req.url ?? "");
      try {
        const payload = new Webhook(secret ?? "whsec_AAAA").verify(body, req.headers as Record<string, string>) as {
          data: { caseId: string };
        };
        arrivals.push({ caseId: payload.data.caseId, at: performance.now() });
        res.writeHead(204).end();
      } catch {
        rejected += 1;
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  for (let i = 0; i < SUBSCRIPTIONS; i++) {
    const made = await h.request("operator", "POST", "/webhooks", {
      url: `${base}/hooks/${i}`,
      eventTypes: ["signoff.awaited"],
    });
    if (made.status !== 201) throw new Error(JSON.stringify(made.body));
    secrets.set(`/hooks/${i}`, made.body.secret);
  }

  // The engine's commit of each case's opening, as the projection announces it.
  const committed = new Map<string, number>();
  h.engine.projection.subscribeChanges((change) => {
    if (!committed.has(change.caseId) && change.events.some((e) => e.name === "CaseOpened"))
      committed.set(change.caseId, performance.now());
  });

  const signers = await ethers.getSigners();
  const opener = signers[12];
  await setBalance(opener.address, ethers.parseEther("1000"));
  const escrow = MortgageEscrow__factory.connect(h.escrowAddress, opener);
  const templateId = getTemplate("uk-remortgage").templateId;
  const terms = (i: number) => ({
    templateId,
    bank: opener.address,
    lawyer: h.addresses.lawyer,
    buyer: h.addresses.buyer,
    seller: h.addresses.seller,
    asset: ethers.ZeroAddress,
    price: 1_000n + BigInt(i),
    deposit: 100n,
    loan: 900n + BigInt(i),
  });
  let nonce = await opener.getNonce();
  let opened = 0;

  let restarted: WebhookService | null = null;
  async function phase(name: string, count: number, gapMs: number, backlog = false) {
    const firstArrival = arrivals.length;
    const ids: string[] = [];
    if (backlog) h.app.webhooks.stop();
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      const t = terms(opened++);
      ids.push((await escrow.openCase.staticCall(t)).toString());
      await escrow.openCase(t, { nonce: nonce++ });
      if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
    let resumedAt = 0;
    if (backlog) {
      while (!ids.every((id) => committed.has(id))) await new Promise((resolve) => setTimeout(resolve, 20));
      resumedAt = performance.now();
      restarted = new WebhookService(h.engine, h.principals, { allowPrivateUrls: true }, pino({ level: "silent" }));
    }
    const expected = count * 2 * SUBSCRIPTIONS;
    const deadline = Date.now() + 300_000;
    while (arrivals.length - firstArrival < expected) {
      if (Date.now() > deadline) throw new Error(`${name}: ${arrivals.length - firstArrival} of ${expected} arrived`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const mine = arrivals.slice(firstArrival);
    const latencies = mine.map((a) => a.at - committed.get(a.caseId)!).sort((a, b) => a - b);
    const firstCommit = backlog ? resumedAt : Math.min(...ids.map((id) => committed.get(id)!));
    const seconds = (mine[mine.length - 1].at - firstCommit) / 1000;
    log(
      `${name}: ${expected} deliveries of ${count} cases in ${seconds.toFixed(2)} s (opened in ${((performance.now() - started) / 1000).toFixed(2)} s)`,
    );
    return {
      cases: count,
      deliveries: expected,
      seconds: round(seconds),
      deliveriesPerSecond: Math.round(expected / seconds),
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      maxMs: round(latencies[latencies.length - 1]),
    };
  }

  log("warm-up");
  await phase("warm-up", 10, 0);
  const burst = await phase("burst", CASES, 0);
  const paced = await phase("paced", PACED, 100);
  const backlog = await phase("backlog", CASES, 0, true);

  // Baseline: the burst's number of signed POSTs straight to the receiver, CONCURRENCY at a time.
  const secret = newSecret();
  secrets.set("/baseline", secret);
  const body = JSON.stringify({ type: "signoff.awaited", timestamp: new Date().toISOString(), data: { caseId: "0" } });
  const post = (i: number) =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const headers = webhookHeaders([secret], `msg_baseline_${i}`, Math.floor(Date.now() / 1000), body);
      const req = request(`${base}/baseline`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      });
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => resolve(performance.now() - t0));
      });
      req.on("error", reject);
      req.end(body);
    });
  const total = burst.deliveries;
  const times: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) times.push(await post(next++));
    }),
  );
  const baselineSeconds = (performance.now() - t0) / 1000;
  times.sort((a, b) => a - b);
  const baseline = {
    posts: total,
    seconds: round(baselineSeconds),
    postsPerSecond: Math.round(total / baselineSeconds),
    p50Ms: round(percentile(times, 50)),
    p99Ms: round(percentile(times, 99)),
  };

  const result = {
    subscriptions: SUBSCRIPTIONS,
    concurrency: CONCURRENCY,
    burst,
    paced,
    backlog: {
      cases: backlog.cases,
      deliveries: backlog.deliveries,
      seconds: backlog.seconds,
      deliveriesPerSecond: backlog.deliveriesPerSecond,
    },
    baseline,
    ratio: round(backlog.deliveriesPerSecond / baseline.postsPerSecond),
    rejected,
    node: process.version,
  };
  (restarted as WebhookService | null)?.stop();
  receiver.closeAllConnections();
  receiver.close();
  await h.close();

  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const row = (cells: Array<string | number>) => `| ${cells.join(" | ")} |`;
  console.log(`Webhooks: ${SUBSCRIPTIONS} subscriptions, 2 deliveries per case each, ${CONCURRENCY} in flight at most`);
  console.log("");
  console.log(row(["run", "cases", "deliveries", "seconds", "deliveries/s", "p50 ms", "p99 ms", "max ms"]));
  console.log(row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]));
  for (const [name, r] of [
    ["burst", burst],
    ["paced (100 ms apart)", paced],
  ] as const)
    console.log(row([name, r.cases, r.deliveries, r.seconds, r.deliveriesPerSecond, r.p50Ms, r.p99Ms, r.maxMs]));
  console.log(
    row([
      "backlog after a restart",
      backlog.cases,
      backlog.deliveries,
      backlog.seconds,
      backlog.deliveriesPerSecond,
      "",
      "",
      "",
    ]),
  );
  console.log(
    row([
      "baseline: bare signed POSTs",
      "",
      baseline.posts,
      baseline.seconds,
      baseline.postsPerSecond,
      baseline.p50Ms,
      baseline.p99Ms,
      "",
    ]),
  );
  console.log("");
  console.log(
    `latency: from the engine's commit of the opening's block to the arrival at the receiver; baseline latency: one POST's round trip; backlog: from the new service's start to the last arrival. Rejected signatures: ${rejected}.`,
  );
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
