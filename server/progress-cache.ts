/**
 * Each case's progress and its JSON, kept until the case changes or the chain's second moves on. Progress
 * is a function of the case's events and the chain time in whole seconds (the clock's `nowSeconds`), so an
 * entry for the same second is exactly what `getCase` would compute again: reads of a busy case (the page,
 * a back office polling, a thousand watchers connecting) cost one computation and one serialisation a
 * second instead of one each.
 */
import type { CaseProgress } from "../engine";
import type { ServerEngine } from "./routes/context";

export interface CachedProgress {
  progress: CaseProgress;
  json: string;
}

export class ProgressCache {
  private readonly entries = new Map<string, CachedProgress & { second: number }>();
  private readonly unsubscribe: () => void;

  /** `present` adds what the server knows and the engine does not (the parties' names) before it is kept. */
  constructor(
    private readonly engine: Pick<ServerEngine, "getCase" | "subscribe" | "clock">,
    private readonly present: (progress: CaseProgress) => CaseProgress = (progress) => progress,
  ) {
    // Notices come synchronously from the projection's commit, so no stale entry outlives its change.
    this.unsubscribe = engine.subscribe((notice) => this.entries.delete(notice.caseId));
  }

  /** The case's progress now (the same object for every caller this second: do not change it), or null. */
  get(caseId: string): CachedProgress | null {
    const second = this.engine.clock.nowSeconds();
    const hit = this.entries.get(caseId);
    if (hit && hit.second === second) return hit;
    const computed = this.engine.getCase(caseId);
    if (!computed) {
      this.entries.delete(caseId);
      return null;
    }
    const progress = this.present(computed);
    const entry = { progress, json: JSON.stringify(progress), second };
    this.entries.set(caseId, entry);
    return entry;
  }

  close(): void {
    this.unsubscribe();
    this.entries.clear();
  }
}
