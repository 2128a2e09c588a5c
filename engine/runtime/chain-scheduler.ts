/**
 * The engine's one timer system: the clock (XState's `clock` option) of every case actor, each of whose
 * delayed events becomes a wake-up at a chain moment, kept in one heap under one Node timer.
 *
 * XState hands a clock relative delays. A case machine counts them from its own clock, the time of the event
 * it is handling (a block's time, a timer's moment), not from the moment the engine got round to it; so the
 * runtime runs each event inside `at(eventMs, ...)` and a delay of `d` ms becomes the chain moment
 * `eventMs + d`, exactly what the machine meant. A wake-up runs when the chain clock reaches its moment, as
 * its own event at that moment. When the chain clock jumps (a dev clock moved forward), `clockMoved()` runs
 * whatever is now due at once, with no actor rebuilt; a clock moved back only makes the wake-ups later.
 */
import type { ChainClock } from "../chain/clock";

/** setTimeout's limit: a farther moment is reached by waking on the way and looking again. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface WakeUp {
  id: number;
  /** The chain moment, in ms. */
  at: number;
  run: () => void;
}

export class ChainScheduler {
  private readonly pending = new Map<number, WakeUp>();
  /** A min-heap by `at` of every wake-up set; cleared ones stay in it until they reach the top (or a compaction). */
  private heap: WakeUp[] = [];
  private nextId = 1;
  private eventMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private stopped = false;

  constructor(
    private readonly clock: ChainClock,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  /** Runs `work` as happening at chain moment `ms`: the delays it sets are counted from there. */
  at<T>(ms: number, work: () => T): T {
    const outer = this.eventMs;
    this.eventMs = ms;
    try {
      return work();
    } finally {
      this.eventMs = outer;
    }
  }

  /** XState's clock: `run` at the chain moment `delayMs` after the event being handled (or after now). */
  setTimeout(run: () => void, delayMs: number): number {
    const wakeUp = { id: this.nextId++, at: (this.eventMs ?? this.clock.nowMs()) + delayMs, run };
    this.pending.set(wakeUp.id, wakeUp);
    this.push(wakeUp);
    if (wakeUp.at < this.timerAt) this.arm();
    return wakeUp.id;
  }

  clearTimeout(id: number): void {
    this.pending.delete(id);
    // Cleared wake-ups are dropped lazily; compact once they outnumber the live ones.
    if (this.heap.length > 64 && this.heap.length > 2 * this.pending.size) this.compact();
  }

  /** The chain clock moved by more than its drift: what is due now runs now, the rest is re-timed. */
  clockMoved(): void {
    this.arm();
  }

  /** How many wake-ups are set. */
  get size(): number {
    return this.pending.size;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
    this.heap = [];
  }

  private arm(): void {
    if (this.stopped) return;
    this.dropCleared();
    const next = this.heap[0];
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    if (!next) return;
    this.timerAt = next.at;
    const delay = Math.min(MAX_TIMEOUT_MS, Math.max(0, next.at - this.clock.nowMs()));
    this.timer = setTimeout(() => this.runDue(), delay);
  }

  private runDue(): void {
    this.timer = null;
    this.timerAt = Infinity;
    for (;;) {
      this.dropCleared();
      const next = this.heap[0];
      // A timer may wake a moment early on the chain's clock: what is not due yet waits for its moment.
      if (!next || next.at > this.clock.nowMs() || this.stopped) break;
      this.pop();
      this.pending.delete(next.id);
      try {
        this.at(next.at, next.run);
      } catch (error) {
        this.onError(error);
      }
    }
    this.arm();
  }

  private dropCleared(): void {
    while (this.heap.length > 0 && !this.pending.has(this.heap[0].id)) this.pop();
  }

  private compact(): void {
    this.heap = [...this.pending.values()].sort((a, b) => a.at - b.at);
  }

  private push(wakeUp: WakeUp): void {
    const heap = this.heap;
    heap.push(wakeUp);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].at <= heap[i].at) break;
      [heap[parent], heap[i]] = [heap[i], heap[parent]];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as WakeUp;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && heap[left].at < heap[smallest].at) smallest = left;
      if (right < heap.length && heap[right].at < heap[smallest].at) smallest = right;
      if (smallest === i) return;
      [heap[smallest], heap[i]] = [heap[i], heap[smallest]];
      i = smallest;
    }
  }
}
