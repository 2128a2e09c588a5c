/**
 * The projection: the chain follower, the read model of every case in memory and in the store, and a stream
 * of changes.
 *
 * Each range of events and the case views folded from them are committed in one transaction; only then is
 * the in-memory map updated and each change published, one notice per case per block, in block order. A
 * reorganisation rolls the events above the fork point back, refolds the cases they touched from what is
 * left, and publishes the corrected progress with `reorg: true`. Nothing the chain does not hold stays shown.
 */
import type { Provider } from "ethers";
import { type CompiledWorkflow, loadTemplates } from "../../workflows";
import { LegalGuards } from "../runtime/legal";
import { ChainClock } from "../chain/clock";
import { type Db, migrate } from "../store/database";
import { CASE_STORE_MIGRATIONS, CaseStore } from "./case-store";
import { type CaseProgress, type CaseView, applyEvent, cloneView, foldCase, openedView, progressOf } from "./case-view";
import { type ChainEvent, EVENT_LOG_MIGRATIONS, EventLog, type JsonValue } from "./event-log";
import { ChainFollower, type FollowerSink, type FollowerStep, type PollResult } from "./follower";
import { TemplateCatalog } from "./templates";

export const PROJECTION_MIGRATIONS = [...EVENT_LOG_MIGRATIONS, ...CASE_STORE_MIGRATIONS];

/** One change of one case. `progress` is null when a reorganisation removed the case altogether. */
export interface ProgressNotice {
  caseId: string;
  progress: CaseProgress | null;
  /** True when this corrects what was published before: a reorganisation, or a rebuild that differed. */
  reorg: boolean;
}

export type ProgressListener = (notice: ProgressNotice) => void;

/**
 * One change of one case, for the engine's runtime: the view as committed (a copy; null when a
 * reorganisation removed the case) and the events of the block that made it, in chain order. A correction
 * (`reorg: true`: a reorganisation, or a rebuild that differed) carries no events: the view is the truth.
 */
export interface CaseChange {
  caseId: string;
  view: CaseView | null;
  events: readonly ChainEvent[];
  reorg: boolean;
}

/** One on-chain event of a case, as `GET /cases/:id/history` returns it. */
export interface HistoryEntry {
  event: string;
  args: Record<string, JsonValue>;
  block: number;
  blockHash: string;
  logIndex: number;
  time: string;
  tx: string;
}

export interface ProjectionOptions {
  /** Opened with `openDatabase`; the projection applies its own migrations. */
  db: Db;
  provider: Provider;
  /** The escrow's address. */
  address: string;
  /** The block the escrow was deployed in: where a rebuild starts. */
  fromBlock: number;
  /** The compiled workflows whose template ids name stages; default: `loadTemplates()`. */
  workflows?: readonly CompiledWorkflow[];
  clock?: ChainClock;
  rangeSize?: number;
  confirmations?: number;
  /**
   * Called inside each write transaction, just before it commits. A throw rolls the step back as a crash
   * between reading the chain and committing would: the fault tests use it.
   */
  beforeCommit?: (step: FollowerStep) => void;
}

type StagedNotice = CaseChange;

export class Projection {
  readonly log: EventLog;
  readonly follower: ChainFollower;
  readonly clock: ChainClock;
  /** The legal guards of the workflows the projection knows: the law's moments in every progress it gives. */
  readonly guards: LegalGuards;
  private readonly store: CaseStore;
  private readonly catalog: TemplateCatalog;
  private readonly views = new Map<string, CaseView>();
  private readonly listeners = new Set<ProgressListener>();
  private readonly changeListeners = new Set<(change: CaseChange) => void>();
  private readonly beforeCommit?: (step: FollowerStep) => void;
  /** Staged by a transaction, applied and published only once it commits. */
  private stagedViews = new Map<string, CaseView | null>();
  private stagedNotices: StagedNotice[] = [];
  private muted = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: ProjectionOptions) {
    migrate(options.db, PROJECTION_MIGRATIONS);
    this.log = new EventLog(options.db, options.fromBlock);
    this.store = new CaseStore(options.db);
    const workflows = options.workflows ?? loadTemplates();
    this.catalog = new TemplateCatalog(options.provider, options.address, workflows);
    this.guards = new LegalGuards(workflows);
    this.clock = options.clock ?? new ChainClock();
    this.beforeCommit = options.beforeCommit;
    for (const view of this.store.all()) {
      this.views.set(view.id, view);
      // A template read from the chain before a restart is known again from the views that use it.
      if (!this.catalog.get(view.template.templateId))
        this.catalog.add({ ...view.template, rules: [...view.model.rules] });
    }
    const sink: FollowerSink = {
      prepare: (step) => this.prepare(step),
      write: (step) => this.write(step),
      committed: (step) => this.committed(step),
      discarded: () => this.discard(),
    };
    this.follower = new ChainFollower({
      provider: options.provider,
      log: this.log,
      address: options.address,
      sink,
      rangeSize: options.rangeSize,
      confirmations: options.confirmations,
    });
  }

  /** Reads the chain up to its head (rolling back first if it reorganised); one at a time with `rebuild`. */
  poll(): Promise<PollResult> {
    return this.serially(() => this.follower.poll());
  }

  /**
   * Forgets everything and replays from the deployment block, from the chain alone. Subscribers then hear
   * of every case whose progress came out different (`reorg: true`), and of nothing else.
   */
  rebuild(): Promise<PollResult> {
    return this.serially(async () => {
      const before = new Map([...this.views].map(([id, view]) => [id, JSON.stringify(this.progress(view, 0))]));
      this.log.db.transaction(() => {
        this.log.clear();
        this.store.clear();
      })();
      this.views.clear();
      this.muted = true;
      let result: PollResult;
      try {
        result = await this.follower.poll();
      } finally {
        this.muted = false;
      }
      for (const id of new Set([...before.keys(), ...this.views.keys()])) {
        const view = this.views.get(id) ?? null;
        if (before.get(id) !== (view ? JSON.stringify(this.progress(view, 0)) : undefined)) {
          this.publish({ caseId: id, view: view && cloneView(view), events: [], reorg: true });
        }
      }
      return result;
    });
  }

  /** Calls `listener` with every change from now on; returns the unsubscribe function. */
  subscribe(listener: ProgressListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` with every case's change (its view and events) from now on, before the progress listeners. */
  subscribeChanges(listener: (change: CaseChange) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /**
   * Publishes the case's progress again, unchanged on chain: for a change that time alone makes (a stage's
   * legal moment has come, so it now accepts sign-offs), which no event would announce.
   */
  republish(caseId: string): void {
    const view = this.views.get(caseId);
    if (view && !this.muted) this.publishProgress({ caseId, view: cloneView(view), events: [], reorg: false });
  }

  /** A case's progress at chain time `nowSeconds` (default: the chain clock), or null if there is no such case. */
  getCase(caseId: string | bigint | number, nowSeconds = this.clock.nowSeconds()): CaseProgress | null {
    const view = this.views.get(String(caseId));
    return view ? this.progress(view, nowSeconds) : null;
  }

  /**
   * A case the chain does not hold now but will again: its opening, answered before, is being sent again
   * after the chain lost it. Its progress as the opening's terms make it, at chain time `nowSeconds`; null if
   * the terms' template is not known.
   */
  provisionalCase(
    caseId: string,
    terms: Record<string, JsonValue>,
    nowSeconds = this.clock.nowSeconds(),
  ): CaseProgress | null {
    if (!this.catalog.get(String(terms.templateId))) return null;
    const checkpoint = this.log.checkpoint();
    const opened: ChainEvent = {
      blockNumber: checkpoint.number,
      blockHash: checkpoint.hash ?? "",
      logIndex: 0,
      txHash: "",
      blockTime: nowSeconds,
      caseId,
      name: "CaseOpened",
      args: { terms },
    };
    return this.progress(openedView(opened, this.lookup), nowSeconds);
  }

  /** The read model itself (a copy), for the engine's runtime. */
  viewOf(caseId: string | bigint | number): CaseView | null {
    const view = this.views.get(String(caseId));
    return view ? cloneView(view) : null;
  }

  /** The id of every case the projection holds, in no order: cheaper than `listCases` where no progress is needed. */
  caseIds(): string[] {
    return [...this.views.keys()];
  }

  /** Every case, by id. */
  listCases(nowSeconds = this.clock.nowSeconds()): CaseProgress[] {
    return [...this.views.values()]
      .sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0))
      .map((view) => this.progress(view, nowSeconds));
  }

  /** Every on-chain event of the case, in chain order. */
  historyOf(caseId: string | bigint | number): HistoryEntry[] {
    return this.log.eventsOf(String(caseId)).map((e) => ({
      event: e.name,
      args: e.args,
      block: e.blockNumber,
      blockHash: e.blockHash,
      logIndex: e.logIndex,
      time: new Date(e.blockTime * 1000).toISOString(),
      tx: e.txHash,
    }));
  }

  /** A view's progress, with the law's moments where a workflow here compiles to its template. */
  private progress(view: CaseView, nowSeconds: number): CaseProgress {
    return progressOf(view, nowSeconds, this.guards.of(view.template.templateId));
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  // ------------------------------------------------------------------ the follower's sink

  private async prepare(step: FollowerStep): Promise<void> {
    if (step.kind !== "range") return;
    for (const e of step.events) {
      if (e.name === "CaseOpened")
        await this.catalog.ensure(String((e.args.terms as Record<string, JsonValue>).templateId));
    }
  }

  private lookup = (templateId: string) => {
    const info = this.catalog.get(templateId);
    if (!info) throw new Error(`template ${templateId} is not known yet`);
    return info;
  };

  /** The view of a case as this transaction has it so far (a copy: the map changes only on commit). */
  private current(caseId: string): CaseView | null {
    if (this.stagedViews.has(caseId)) return this.stagedViews.get(caseId) ?? null;
    const view = this.views.get(caseId);
    return view ? cloneView(view) : null;
  }

  private write(step: FollowerStep): void {
    this.discard();
    if (step.kind === "rollback") {
      for (const caseId of new Set(step.removed.map((e) => e.caseId).filter((id): id is string => id !== null))) {
        const view = foldCase(this.log.eventsOf(caseId), this.lookup);
        this.stagedViews.set(caseId, view);
        this.stagedNotices.push({ caseId, view: view && cloneView(view), events: [], reorg: true });
      }
    } else {
      for (const block of groupByBlock(step.events)) {
        const touched = new Map<string, ChainEvent[]>();
        for (const event of block) {
          if (event.caseId === null) continue;
          this.stagedViews.set(event.caseId, applyEvent(this.current(event.caseId), event, this.lookup));
          const events = touched.get(event.caseId);
          if (events) events.push(event);
          else touched.set(event.caseId, [event]);
        }
        if (!this.heard()) continue;
        for (const [caseId, events] of touched) {
          const view = this.stagedViews.get(caseId) ?? null;
          this.stagedNotices.push({ caseId, view: view && cloneView(view), events, reorg: false });
        }
      }
    }
    const kept: CaseView[] = [];
    for (const [caseId, view] of this.stagedViews) {
      if (view) kept.push(view);
      else this.store.delete(caseId);
    }
    this.store.putAll(kept);
    this.beforeCommit?.(step);
  }

  private committed(step: FollowerStep): void {
    for (const [caseId, view] of this.stagedViews) {
      if (view) this.views.set(caseId, view);
      else this.views.delete(caseId);
    }
    if (step.kind === "range") this.clock.observeBlock(step.head.number, step.head.timestamp);
    else this.clock.reset();
    const notices = this.stagedNotices;
    this.discard();
    if (!this.muted) for (const notice of notices) this.publish(notice);
  }

  private discard(): void {
    this.stagedViews = new Map();
    this.stagedNotices = [];
  }

  /**
   * Whether a notice staged now would reach anyone: a write and its commit run in one synchronous stretch, so
   * no listener can subscribe in between. A rebuild with no one listening then skips a copy and a progress of
   * every case.
   */
  private heard(): boolean {
    return !this.muted && (this.listeners.size > 0 || this.changeListeners.size > 0);
  }

  private publish(notice: StagedNotice): void {
    for (const listener of this.changeListeners) {
      try {
        listener(notice);
      } catch {
        // As below: one failing listener stops nothing else.
      }
    }
    this.publishProgress(notice);
  }

  private publishProgress(notice: StagedNotice): void {
    if (this.listeners.size === 0) return;
    const message: ProgressNotice = {
      caseId: notice.caseId,
      progress: notice.view ? this.progress(notice.view, this.clock.nowSeconds()) : null,
      reorg: notice.reorg,
    };
    for (const listener of this.listeners) {
      try {
        listener(message);
      } catch {
        // A failing subscriber must not stop the projection or the other subscribers.
      }
    }
  }
}

function groupByBlock(events: readonly ChainEvent[]): ChainEvent[][] {
  const blocks: ChainEvent[][] = [];
  for (const event of events) {
    const last = blocks[blocks.length - 1];
    if (last && last[0].blockNumber === event.blockNumber) last.push(event);
    else blocks.push([event]);
  }
  return blocks;
}
