/**
 * Benchmark of the engine on the in-process Hardhat chain:
 *
 *   HARDHAT_DISABLE_TELEMETRY_PROMPT=true npx hardhat compile --quiet && npx ts-node --transpile-only test/bench/engine.ts [--json]
 *
 * prints a table, or with `--json` exactly one JSON object:
 *   { chainTxPerSec, signOffsPerSec, ratio, latencyMs: { p50, p99 }, cases, cpuMsPerSignOff: { throughput, latency },
 *     rebuildSecondsFor10kCases, rebuildCases }
 *
 * - chainTxPerSec: the raw chain's rate for single direct `signOff` transactions from one signer through
 *   Hardhat's own provider (hre.ethers, automine: each send returns once its block is mined), this run.
 * - signOffsPerSec: the engine's rate, from the first approval accepted to the last sign-off confirmed in
 *   its outbox, with `cases` cases' eleven sign-offs before consummation all approved at once.
 * - latencyMs: from `approve()` (of a stage's last signer) to the stage showing completed in the
 *   projection (its subscription), with `cases` cases in flight, each walking its stages one by one.
 * - rebuildSecondsFor10kCases: 10,000 cases opened on chain (BENCH_REBUILD_CASES to change it; the JSON
 *   key keeps its name, `rebuildCases` says how many there were), then a fresh projection on a fresh SQLite
 *   file catching up from the deployment block: the time of that catch-up. The chain also holds this run's
 *   other cases.
 *
 * `BENCH_ONLY=rebuild` skips the raw chain's rate and the engine's throughput and latency phases (the JSON keeps
 * its shape; their fields are null): to measure the rebuild alone, the chain then holding only its cases. `BENCH_REBUILD_REPEAT=N` rebuilds N times over
 * the same opened cases (each a fresh projection on a fresh file) and reports each time in `rebuildRuns`, the
 * first as `rebuildSecondsFor10kCases` (as a single run would): opening 10,000 cases takes far longer than
 * rebuilding them, and the later runs show the rebuild with its code warmed up.
 *
 * Progress goes to stderr; stdout has only the table or the JSON. Also on stderr: each engine phase's CPU time
 * per sign-off (the process's, all threads: it compares runs on a shared machine, where the rates move with
 * the load). `--trace` adds where an approval's time goes, step by step, and the JSON-RPC calls by method
 * (engine-trace.ts); `--cpu-profile FILE` writes a CPU profile of the engine phases (with `BENCH_ONLY=rebuild`: of
 * the rebuilds).
 */
import hre from "hardhat";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet, toQuantity } from "ethers";
import { createEngine, type Engine, type ProgressNotice } from "../../engine";
import { createProvider } from "../../engine/chain/provider";
import { PROJECTION_MIGRATIONS, Projection } from "../../engine/projection/projection";
import { openDatabase } from "../../engine/store/database";
import type { RoleName } from "../../workflows/schema";
import { getTemplate } from "../../workflows";
import { EVIDENCE, Role, caseTerms, getParties, registerTemplate, type Parties } from "../contracts/fixtures";
import type { MortgageEscrow } from "../../typechain-types";
import { hardhatWallet } from "../engine/relayer-helpers";

const { ethers } = hre;
const JSON_OUT = process.argv.includes("--json");
/** `--trace`: where an approval's time goes, step by step (see engine-trace.ts), to stderr. */
const TRACE = process.argv.includes("--trace");
const CASES = Number(process.env.BENCH_CASES ?? 100);
const CHAIN_TXS = Number(process.env.BENCH_CHAIN_TXS ?? 500);
const REBUILD_CASES = Number(process.env.BENCH_REBUILD_CASES ?? 10_000);
const REBUILD_REPEAT = Math.max(1, Number(process.env.BENCH_REBUILD_REPEAT ?? 1));
const ONLY = process.env.BENCH_ONLY;
if (ONLY !== undefined && ONLY !== "rebuild") throw new Error(`BENCH_ONLY=${ONLY}: only "rebuild" is known`);
const POLL_MS = 5;
const BATCH_WINDOW_MS = 5;
const US = getTemplate("us-purchase");
const MANAGED = { bank: hardhatWallet(1), lawyer: hardhatWallet(2), buyer: hardhatWallet(3), seller: hardhatWallet(4) };
const RELAYER = new Wallet(ethers.id("the relayer key of the engine benchmark"));

/** The sign-offs before consummation, stage by stage, in an order the stages can complete in. */
const STAGES: Array<[string, RoleName[]]> = [
  ["application", ["buyer", "bank"]],
  ["loan-estimate", ["bank"]],
  ["rate-lock", ["bank", "buyer"]],
  ["appraisal", ["bank"]],
  ["title-commitment", ["lawyer"]],
  ["underwriting", ["bank"]],
  ["clear-to-close", ["bank"]],
  ["closing-disclosure", ["bank", "buyer"]],
];
const SIGN_OFFS = STAGES.flatMap(([stage, roles]) => roles.map((role): [string, RoleName] => [stage, role]));

/** `--cpu-profile FILE`: a CPU profile (.cpuprofile) of the engine's phases only (throughput and latency). */
const PROFILE = process.argv.includes("--cpu-profile")
  ? process.argv[process.argv.indexOf("--cpu-profile") + 1]
  : undefined;

async function startProfile(): Promise<{ stop(file: string): Promise<void> }> {
  const { Session } = await import("node:inspector/promises");
  const { writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 500 });
  await session.post("Profiler.start");
  return {
    async stop(file) {
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
      log(`cpu profile: ${file}`);
    },
  };
}

let trace: typeof import("./engine-trace") | undefined;

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function rpc<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
  return (await hre.network.provider.send(method, params)) as T;
}

/** Opens `count` cases as the bank, `perBlock` transactions per mined block (automine off while sending). */
async function openCases(escrow: MortgageEscrow, parties: Parties, count: number, perBlock = 100): Promise<bigint[]> {
  const terms = caseTerms(parties, US.templateId, {
    price: ethers.parseEther("1"),
    deposit: ethers.parseEther("0.2"),
    loan: ethers.parseEther("0.8"),
  });
  const gasLimit = ((await escrow.connect(parties.bank).openCase.estimateGas(terms)) * 13n) / 10n;
  const bank = escrow.connect(parties.bank);
  let nonce = await ethers.provider.getTransactionCount(parties.bank.address, "pending");
  const hashes: string[] = [];
  await rpc("evm_setAutomine", [false]);
  try {
    for (let sent = 0; sent < count;) {
      const n = Math.min(perBlock, count - sent);
      const txs = await Promise.all(
        Array.from({ length: n }, () => bank.openCase(terms, { nonce: nonce++, gasLimit })),
      );
      hashes.push(...txs.map((t) => t.hash));
      await rpc("evm_mine");
      sent += n;
      if (count > 1000 && sent % 1000 === 0) log(`  ${sent} cases opened`);
    }
  } finally {
    await rpc("evm_setAutomine", [true]);
  }
  const ids: bigint[] = [];
  for (const hash of [hashes[0], hashes[hashes.length - 1]]) {
    const receipt = await ethers.provider.getTransactionReceipt(hash);
    if (!receipt || receipt.status !== 1) throw new Error(`openCase ${hash} did not succeed`);
    const opened = receipt.logs.map((l) => escrow.interface.parseLog(l)).find((e) => e?.name === "CaseOpened");
    ids.push(opened!.args.caseId as bigint);
  }
  const [lo, hi] = ids;
  if (hi - lo + 1n !== BigInt(count)) throw new Error(`expected ${count} consecutive case ids, got ${lo}..${hi}`);
  return Array.from({ length: count }, (_, i) => lo + BigInt(i));
}

/**
 * The process's CPU time (all its threads: the node's too) per sign-off in a phase: unlike the rates, it hardly
 * moves when other processes share the machine, so it compares runs made under different loads.
 */
function logCpu(phase: string, since: NodeJS.CpuUsage, signOffs: number, seconds: number): number {
  const used = process.cpuUsage(since);
  const ms = (used.user + used.system) / 1000;
  log(
    `  ${phase}: ${round(ms / signOffs, 2)} ms of CPU per sign-off (${round(ms / 1000, 2)} s CPU in ${round(seconds, 2)} s)`,
  );
  return ms / signOffs;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function newEngine(address: string, fromBlock: number): Engine {
  return createEngine({
    dataDir: mkdtempSync(join(tmpdir(), "engine-bench-")),
    chain: { kind: "in-process", provider: hre.network.provider },
    escrowAddress: address,
    relayerKey: RELAYER,
    partyKeys: Object.values(MANAGED),
    pollIntervalMs: POLL_MS,
    deploymentBlock: fromBlock,
    batchWindowMs: BATCH_WINDOW_MS,
  });
}

/** Hardhat's own signer, one direct signOff per transaction, each awaited (mined by automine). */
async function chainRate(escrow: MortgageEscrow, parties: Parties): Promise<number> {
  const caseIds = await openCases(escrow, parties, CHAIN_TXS);
  const bank = escrow.connect(parties.bank);
  // One warm-up transaction, outside the timing.
  await bank.signOff(caseIds[0], US.stageIndex["application"], Role.Bank, EVIDENCE);
  const started = performance.now();
  for (const id of caseIds.slice(1)) await bank.signOff(id, US.stageIndex["application"], Role.Bank, EVIDENCE);
  const seconds = (performance.now() - started) / 1000;
  return (caseIds.length - 1) / seconds;
}

/** Every case's sign-offs approved at once; from the first accepted to the last confirmed. */
async function engineRate(
  engine: Engine,
  caseIds: bigint[],
): Promise<{ perSec: number; signOffs: number; transactions: number; cpuMs: number }> {
  const total = caseIds.length * SIGN_OFFS.length;
  const before = new Set(engine.relayer.outbox.transactions().map((t) => t.txHash));
  let confirmed = 0;
  let resolveAll!: () => void;
  const allConfirmed = new Promise<void>((resolve) => (resolveAll = resolve));
  const ids = new Set<number>();
  engine.relayer.on("settled", (s) => {
    if (!ids.has(s.id)) return;
    if (s.status !== "confirmed") throw new Error(`sign-off ${s.idempotencyKey} ${s.status}: ${s.error?.message}`);
    if (++confirmed === total) resolveAll();
  });
  const started = performance.now();
  const cpu = process.cpuUsage();
  const submissions = await Promise.all(
    caseIds.flatMap((caseId) =>
      SIGN_OFFS.map(([stageId, role]) =>
        engine
          .approve({ caseId, stageId, role, principalAddress: MANAGED[role].address, evidence: EVIDENCE })
          .then((s) => {
            ids.add(s.id);
            if (s.status === "confirmed" && ++confirmed === total) resolveAll();
            return s;
          }),
      ),
    ),
  );
  await allConfirmed;
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = logCpu("throughput", cpu, total, seconds);
  const txs = new Set(submissions.map((s) => engine.relayer.get(s.id)!.txHash).filter((h) => h && !before.has(h)));
  return { perSec: total / seconds, signOffs: total, transactions: txs.size, cpuMs };
}

/** Each case walks its stages one by one, all cases at once; one latency sample per stage. */
async function latencies(engine: Engine, caseIds: bigint[]): Promise<{ samples: number[]; cpuMs: number }> {
  const waiting = new Map<string, () => void>();
  const unsubscribe = engine.subscribe((notice: ProgressNotice) => {
    for (const stage of notice.progress?.stages ?? []) {
      if (stage.status !== "completed") continue;
      const key = `${notice.caseId}:${stage.id}`;
      const done = waiting.get(key);
      if (done) {
        waiting.delete(key);
        done();
      }
    }
  });
  const samples: number[] = [];
  const traced: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    caseIds.map(async (caseId) => {
      for (const [stageId, roles] of STAGES) {
        const completed = new Promise<void>((resolve) => waiting.set(`${caseId}:${stageId}`, resolve));
        const others = roles.slice(0, -1);
        await Promise.all(
          others.map((role) =>
            engine.approve({ caseId, stageId, role, principalAddress: MANAGED[role].address, evidence: EVIDENCE }),
          ),
        );
        const last = roles[roles.length - 1];
        const started = performance.now();
        const submission = await engine.approve({
          caseId,
          stageId,
          role: last,
          principalAddress: MANAGED[last].address,
          evidence: EVIDENCE,
        });
        await completed;
        samples.push(performance.now() - started);
        if (TRACE) {
          trace!.traceHeard(submission.id);
          traced.push(submission.id);
        }
      }
    }),
  );
  unsubscribe();
  const cpuMs = logCpu("latency", cpu, SIGN_OFFS.length * caseIds.length, (performance.now() - started) / 1000);
  if (TRACE) trace!.traceReport(traced, log);
  return { samples: samples.sort((a, b) => a - b), cpuMs };
}

async function rebuildSeconds(
  address: string,
  fromBlock: number,
): Promise<{ seconds: number; cpuSeconds: number; cases: number; blocks: number }> {
  const projection = new Projection({
    db: openDatabase(
      join(mkdtempSync(join(tmpdir(), "engine-bench-rebuild-")), "engine.sqlite"),
      PROJECTION_MIGRATIONS,
    ),
    provider: createProvider({ kind: "in-process", provider: hre.network.provider }),
    address,
    fromBlock,
  });
  const started = performance.now();
  const cpu = process.cpuUsage();
  await projection.poll();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    cases: projection.listCases().length,
    blocks: (await ethers.provider.getBlockNumber()) - fromBlock,
  };
}

async function main(): Promise<void> {
  const parties = await getParties();
  await rpc("hardhat_setBalance", [RELAYER.address, toQuantity(ethers.parseEther("1000"))]);

  // The engine's escrow: the throughput and latency cases, later the rebuild's.
  const deployEngineEscrow = async () => {
    const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
    const fromBlock = (await escrow.deploymentTransaction()!.wait())!.blockNumber;
    await registerTemplate(escrow, parties.admin, US.stages, US.definitionHash, US.amendmentRules);
    return { escrow, fromBlock, address: await escrow.getAddress() };
  };

  let engineResult: {
    chainTxPerSec: number;
    rate: Awaited<ReturnType<typeof engineRate>>;
    samples: number[];
    latencyCpuMs: number;
  } | null = null;
  let deployed: Awaited<ReturnType<typeof deployEngineEscrow>>;
  if (ONLY === "rebuild") {
    deployed = await deployEngineEscrow();
  } else {
    // The raw chain, on its own escrow (so the engine's projections do not read these cases).
    log("chain: direct sign-offs through Hardhat's signer...");
    const rawEscrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
    await registerTemplate(rawEscrow, parties.admin, US.stages, US.definitionHash, US.amendmentRules);
    const chainTxPerSec = await chainRate(rawEscrow, parties);

    deployed = await deployEngineEscrow();
    const throughputCases = await openCases(deployed.escrow, parties, CASES);
    const latencyCases = await openCases(deployed.escrow, parties, CASES);
    if (TRACE) {
      trace = await import("./engine-trace");
      trace.installTrace(hre.network.provider as never);
    }
    const engine = newEngine(deployed.address, deployed.fromBlock);
    const profiling = PROFILE ? await startProfile() : null;
    await engine.start();
    log(`engine: ${CASES} cases x ${SIGN_OFFS.length} sign-offs approved at once...`);
    const rate = await engineRate(engine, throughputCases);
    log(`engine: latency with ${CASES} cases in flight...`);
    const { samples, cpuMs: latencyCpuMs } = await latencies(engine, latencyCases);
    await engine.stop();
    if (profiling) await profiling.stop(PROFILE!);
    engineResult = { chainTxPerSec, rate, samples, latencyCpuMs };
  }
  const { escrow, fromBlock, address } = deployed;

  log(`rebuild: opening ${REBUILD_CASES} cases...`);
  await openCases(escrow, parties, REBUILD_CASES);
  const rebuilds: Array<Awaited<ReturnType<typeof rebuildSeconds>>> = [];
  const profiling = PROFILE && ONLY === "rebuild" ? await startProfile() : null;
  for (let i = 0; i < REBUILD_REPEAT; i++) {
    log("rebuild: a fresh projection catching up from the deployment block...");
    rebuilds.push(await rebuildSeconds(address, fromBlock));
    log(
      `  ${round(rebuilds[i].seconds, 3)} s (${round(rebuilds[i].cpuSeconds, 3)} s CPU) for ${rebuilds[i].cases} cases`,
    );
  }
  if (profiling) await profiling.stop(PROFILE!);
  const rebuild = rebuilds[0];
  const samples = engineResult?.samples ?? [];
  const rate = engineResult?.rate ?? { perSec: NaN, signOffs: 0, transactions: 0, cpuMs: NaN };
  const chainTxPerSec = engineResult?.chainTxPerSec ?? NaN;

  const orNull = (x: number) => (Number.isFinite(x) ? x : null);
  const result = {
    chainTxPerSec: orNull(round(chainTxPerSec)),
    signOffsPerSec: orNull(round(rate.perSec)),
    ratio: orNull(round(rate.perSec / chainTxPerSec, 2)),
    latencyMs: engineResult
      ? { p50: round(percentile(samples, 50)), p99: round(percentile(samples, 99)) }
      : { p50: null, p99: null },
    cases: CASES,
    cpuMsPerSignOff: {
      throughput: orNull(round(rate.cpuMs, 2)),
      latency: orNull(round(engineResult?.latencyCpuMs ?? NaN, 2)),
    },
    rebuildSecondsFor10kCases: round(rebuild.seconds, 2),
    rebuildCases: rebuild.cases,
    ...(REBUILD_REPEAT > 1 ? { rebuildRuns: rebuilds.map((r) => round(r.seconds, 3)) } : {}),
  };
  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const rows: Array<[string, string, string]> = [
    [
      "chain: direct signOff tx/s (Hardhat signer, 1 sender)",
      String(result.chainTxPerSec),
      `${CHAIN_TXS - 1} transactions`,
    ],
    [
      "engine: sign-offs/s (approved -> confirmed)",
      String(result.signOffsPerSec),
      `${rate.signOffs} sign-offs in ${rate.transactions} transactions`,
    ],
    ["ratio", String(result.ratio), "goal >= 1.5"],
    [
      "latency p50 ms (approve -> projected complete)",
      String(result.latencyMs.p50),
      `${samples.length} stages, ${CASES} cases in flight`,
    ],
    ["latency p99 ms", String(result.latencyMs.p99), "goal <= 250 (p50 <= 100)"],
    [
      "CPU ms per sign-off (throughput / latency phase)",
      `${result.cpuMsPerSignOff.throughput} / ${result.cpuMsPerSignOff.latency}`,
      "goal <= 2.5; the process's, the in-process chain included",
    ],
    [
      `rebuild s (${rebuild.cases} cases, ${rebuild.blocks} blocks)`,
      String(result.rebuildSecondsFor10kCases),
      "goal <= 1 for 10,000 cases (10,000 cases/s)",
    ],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(
    `engine benchmark (in-process Hardhat; engine poll ${POLL_MS} ms, batch window ${BATCH_WINDOW_MS} ms)\n`,
  );
  for (const [name, value, note] of rows)
    process.stdout.write(`${name.padEnd(width)}  ${value.padStart(9)}  ${note}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
