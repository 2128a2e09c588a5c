/**
 * `--trace` for the engine benchmark: timestamps at each step of an approval on its way to the projection's
 * notice, by wrapping the engine's methods (prototypes) for the run. It measures, it changes nothing.
 *
 * Steps of one approval (the last signer's, in the latency phase):
 *   approve entry -> epoch read -> signed -> in the outbox (approve resolved) -> its batch's send starts ->
 *   signed transaction committed -> broadcast answered (automine: mined) -> receipt seen (settle) ->
 *   the projection's read of its block starts -> committed -> notice published -> the benchmark heard it.
 * Also: JSON-RPC calls by method (count and total time) on the in-process provider.
 */
import { Approvals } from "../../engine/runtime/approvals";
import { Reconciliation } from "../../engine/relayer/reconciliation";
import { Sending } from "../../engine/relayer/sending";
import { Outbox } from "../../engine/relayer/outbox";
import { ChainFollower } from "../../engine/projection/follower";
import { Projection } from "../../engine/projection/projection";

type Step =
  | "approve"
  | "epoch"
  | "signed"
  | "outbox"
  | "send"
  | "assigned"
  | "mined"
  | "receipt"
  | "settled"
  | "read"
  | "committed"
  | "notice"
  | "heard";
/** The path to the notice, in order; the relayer's own receipt and settlement run beside it (from `mined`). */
const STEPS: Step[] = [
  "approve",
  "epoch",
  "signed",
  "outbox",
  "send",
  "assigned",
  "mined",
  "read",
  "committed",
  "notice",
  "heard",
];
const SIDE_STEPS: Array<[Step, Step]> = [
  ["mined", "receipt"],
  ["receipt", "settled"],
];

interface Rec {
  t: Partial<Record<Step, number>>;
  caseId: string;
  block?: number;
}

const now = () => performance.now();
const byKey = new Map<string, Rec>();
const bySubmission = new Map<number, Rec>();
const byTx = new Map<string, number[]>();
const rpcStats = new Map<string, { n: number; ms: number }>();
/** Reads of the projection: [start, committed, to-block]. */
const reads: Array<{ start: number; committed?: number; from: number; to: number }> = [];

function wrap<T extends object>(
  proto: T,
  name: string,
  around: (orig: (...a: unknown[]) => unknown, self: unknown, args: unknown[]) => unknown,
): void {
  const p = proto as Record<string, unknown>;
  const orig = p[name] as (...a: unknown[]) => unknown;
  if (typeof orig !== "function") throw new Error(`trace: no method ${name}`);
  p[name] = function (this: unknown, ...args: unknown[]) {
    return around(orig, this, args);
  };
}

/** The block tag of a call that names one (` latest`, ` pending`, ` N` for a number), else "". */
function blockTagOf(args: { method: string; params?: unknown }): string {
  if (!Array.isArray(args.params)) return "";
  const tag =
    args.method === "eth_getBlockByNumber"
      ? args.params[0]
      : args.params.length > 1
        ? args.params[args.params.length - 1]
        : undefined;
  if (typeof tag !== "string") return "";
  return ` ${/^0x/.test(tag) ? "N" : tag}`;
}

const keyOf = (r: { view: { id: string }; stage: number; role: number }) => `${r.view.id}:${r.stage}:${r.role}`;

export function installTrace(provider: {
  request: (args: { method: string; params?: unknown }) => Promise<unknown>;
}): void {
  const request = provider.request.bind(provider);
  provider.request = async (args) => {
    const started = now();
    try {
      return await request(args);
    } finally {
      // By method and block tag: "pending" costs Hardhat a block built first, "latest" does not.
      const name = `${args.method}${blockTagOf(args)}`;
      const s = rpcStats.get(name) ?? { n: 0, ms: 0 };
      s.n += 1;
      s.ms += now() - started;
      rpcStats.set(name, s);
    }
  };

  wrap(Approvals.prototype, "resolve", (orig, self, args) => {
    const r = orig.apply(self, args) as { view: { id: string }; stage: number; role: number };
    byKey.set(keyOf(r), { t: { approve: now() }, caseId: r.view.id });
    return r;
  });
  // The epoch is read from the projection, at once (no promise).
  wrap(Approvals.prototype, "epochOf", (orig, self, args) => {
    const epoch = orig.apply(self, args);
    const rec = byKey.get(keyOf(args[0] as never));
    if (rec) rec.t.epoch = now();
    return epoch;
  });
  wrap(Approvals.prototype, "signOffSignature", (orig, self, args) =>
    (orig.apply(self, args) as Promise<string>).then((s) => {
      const rec = byKey.get(keyOf(args[0] as never));
      if (rec) rec.t.signed = now();
      return s;
    }),
  );
  wrap(Approvals.prototype, "approve", (orig, self, args) =>
    (
      orig.apply(self, args) as Promise<{
        id: number;
        payload: { message?: { caseId: string; stage: number; role: number } };
      }>
    ).then((s) => {
      const m = s.payload.message;
      const rec = m && byKey.get(`${m.caseId}:${m.stage}:${m.role}`);
      if (rec) {
        rec.t.outbox = now();
        bySubmission.set(s.id, rec);
      }
      return s;
    }),
  );
  wrap(Sending.prototype, "send", (orig, self, args) => {
    const t = now();
    for (const s of args[2] as Array<{ id: number }>) {
      const rec = bySubmission.get(s.id);
      if (rec) rec.t.send ??= t;
    }
    return orig.apply(self, args);
  });
  wrap(Outbox.prototype, "assign", (orig, self, args) => {
    const tx = orig.apply(self, args) as { txHash: string };
    const ids = (args[1] as Array<{ submissionId: number }>).map((i) => i.submissionId);
    byTx.set(tx.txHash, ids);
    const t = now();
    for (const id of ids) {
      const rec = bySubmission.get(id);
      if (rec) rec.t.assigned ??= t;
    }
    return tx;
  });
  wrap(Sending.prototype, "broadcast", (orig, self, args) =>
    (orig.apply(self, args) as Promise<void>).then((v) => {
      const t = now();
      for (const id of byTx.get((args[1] as { txHash: string }).txHash) ?? []) {
        const rec = bySubmission.get(id);
        if (rec) rec.t.mined ??= t;
      }
      return v;
    }),
  );
  wrap(Reconciliation.prototype, "settle", (orig, self, args) => {
    const t = now();
    const ids = byTx.get((args[0] as { txHash: string }).txHash) ?? [];
    const block = (args[1] as { blockNumber: number }).blockNumber;
    for (const id of ids) {
      const rec = bySubmission.get(id);
      if (rec) {
        rec.t.receipt ??= t;
        rec.block = block;
      }
    }
    return (orig.apply(self, args) as Promise<void>).then((v) => {
      const t2 = now();
      for (const id of ids) {
        const rec = bySubmission.get(id);
        if (rec) rec.t.settled ??= t2;
      }
      return v;
    });
  });
  wrap(ChainFollower.prototype, "readRange", (orig, self, args) => {
    const read = { start: now(), from: args[0] as number, to: args[1] as number };
    reads.push(read);
    return orig.apply(self, args);
  });
  // Marked as the projection takes the committed range, before it publishes the range's notices.
  wrap(Projection.prototype, "committed", (orig, self, args) => {
    const step = args[0] as { kind: string; to?: number };
    const read =
      step.kind === "range"
        ? [...reads].reverse().find((r) => r.to === step.to && r.committed === undefined)
        : undefined;
    if (read) read.committed = now();
    return orig.apply(self, args);
  });
  wrap(Projection.prototype, "publish", (orig, self, args) => {
    const notice = args[0] as { caseId: string };
    const t = now();
    const out = orig.apply(self, args);
    noticeTimes.set(notice.caseId, [...(noticeTimes.get(notice.caseId) ?? []), t]);
    return out;
  });
}

const noticeTimes = new Map<string, number[]>();

/** The benchmark heard the stage completed for the approval that was submission `id`. */
export function traceHeard(id: number): void {
  const rec = bySubmission.get(id);
  if (rec) rec.t.heard = now();
}

/** The projection's read of the approval's block (known from the relayer's receipt, which may come later). */
function placeReads(rec: Rec): void {
  const block = rec.block;
  if (block === undefined) return;
  const read = reads.find(
    (r) => r.from <= block && block <= r.to && r.committed !== undefined && r.committed >= (rec.t.mined ?? 0),
  );
  if (!read) return;
  rec.t.read = read.start;
  rec.t.committed = read.committed;
  const notice = (noticeTimes.get(rec.caseId) ?? []).find((t) => t >= (read.committed as number));
  if (notice !== undefined) rec.t.notice = notice;
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** The steps' durations (p50 / p99 / mean, ms) over the traced approvals, and the RPC calls, to stderr. */
export function traceReport(ids: readonly number[], write: (line: string) => void): void {
  const recs = ids
    .map((id) => bySubmission.get(id))
    .filter((r): r is Rec => r !== undefined && r.t.heard !== undefined);
  for (const rec of recs) placeReads(rec);
  write(`trace: ${recs.length} approvals (last signer of a stage), step durations in ms (p50 / p99 / mean, count)`);
  const line = (a: Step, b: Step, ds: number[]) => {
    ds.sort((x, y) => x - y);
    const mean = ds.reduce((sum, d) => sum + d, 0) / (ds.length || 1);
    write(
      `  ${`${a} -> ${b}`.padEnd(22)} ${pct(ds, 50).toFixed(1).padStart(8)} ${pct(ds, 99).toFixed(1).padStart(8)} ${mean.toFixed(1).padStart(8)}  (${ds.length})`,
    );
  };
  for (let i = 1; i < STEPS.length; i++) {
    const b = STEPS[i];
    if (!recs.some((r) => r.t[b] !== undefined)) continue;
    // From the nearest earlier step that was recorded.
    let a: Step = STEPS[i - 1];
    const ds = recs
      .map((r) => {
        let j = i - 1;
        while (j >= 0 && r.t[STEPS[j]] === undefined) j--;
        if (j < 0 || r.t[b] === undefined) return NaN;
        a = STEPS[j];
        return (r.t[b] as number) - (r.t[STEPS[j]] as number);
      })
      .filter((d) => !Number.isNaN(d));
    line(a, b, ds);
  }
  write("  beside it, the relayer:");
  for (const [a, b] of SIDE_STEPS) {
    line(
      a,
      b,
      recs
        .map((r) => (r.t[a] !== undefined && r.t[b] !== undefined ? (r.t[b] as number) - (r.t[a] as number) : NaN))
        .filter((d) => !Number.isNaN(d)),
    );
  }
  write("trace: JSON-RPC calls (count, total ms, mean ms)");
  for (const [method, s] of [...rpcStats].sort((x, y) => y[1].ms - x[1].ms)) {
    write(
      `  ${method.padEnd(34)} ${String(s.n).padStart(7)} ${s.ms.toFixed(0).padStart(8)} ${(s.ms / s.n).toFixed(2).padStart(7)}`,
    );
  }
}
