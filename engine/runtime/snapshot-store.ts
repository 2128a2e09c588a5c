/**
 * The case actors' persisted snapshots (`actor.getPersistedSnapshot()`), one row per open case, each with
 * the version of the machine that wrote it.
 *
 * A snapshot is what the actor knew beyond the chain: chiefly its clock, i.e. which timers have fired. It is
 * never trusted blindly: the runtime restores one only if its machine's version is the running one and its
 * model is the projection's, and otherwise rebuilds the actor from the projection (the chain). So a snapshot
 * lost to a crash, written by an older machine, or damaged costs at most a timer fired again, under the same
 * idempotency key. That is why the writes are batched and not fsynced: see `relaxedTransaction`.
 */
import { createHash } from "node:crypto";
import type { AnyStateMachine } from "xstate";
import { relaxedTransaction, statementCache, type Db, type Migration, type Statement } from "../store/database";

export const SNAPSHOT_MIGRATIONS: readonly Migration[] = [
  {
    id: "runtime-1-case-snapshots",
    sql: `
      CREATE TABLE runtime_case_snapshots (
        case_id TEXT PRIMARY KEY,
        machine_version TEXT NOT NULL,
        snapshot TEXT NOT NULL
      );
    `,
  },
];

/**
 * The version of a machine: a hash of its states and transitions (its config, functions left out) and of
 * `revision`, which the code raises when a guard's or an action's meaning changes without the graph changing.
 */
export function machineVersionOf(machine: AnyStateMachine, revision: number): string {
  return createHash("sha256")
    .update(`${revision}:${JSON.stringify(machine.config)}`)
    .digest("hex")
    .slice(0, 16);
}

export interface StoredSnapshot {
  machineVersion: string;
  /** The parsed JSON, or null where the row is not JSON at all. */
  snapshot: unknown;
}

export class SnapshotStore {
  private readonly prepare: (sql: string) => Statement;
  /** Written at the end of the turn, all in one transaction; null: delete. */
  private readonly dirty = new Map<string, { machineVersion: string; snapshot: () => unknown } | null>();
  private flushing = false;

  constructor(private readonly db: Db) {
    this.prepare = statementCache(db);
  }

  get(caseId: string): StoredSnapshot | null {
    const row = this.prepare("SELECT machine_version, snapshot FROM runtime_case_snapshots WHERE case_id = ?").get(
      caseId,
    ) as { machine_version: string; snapshot: string } | undefined;
    if (!row) return null;
    let snapshot: unknown = null;
    try {
      snapshot = JSON.parse(row.snapshot);
    } catch {
      // A damaged row: the runtime rebuilds the actor from the chain.
    }
    return { machineVersion: row.machine_version, snapshot };
  }

  /** `snapshot` is taken when the write is made: an actor that changes twice in a turn is written once. */
  put(caseId: string, machineVersion: string, snapshot: () => unknown): void {
    this.dirty.set(caseId, { machineVersion, snapshot });
    this.flushSoon();
  }

  delete(caseId: string): void {
    this.dirty.set(caseId, null);
    this.flushSoon();
  }

  /** Writes what is waiting now (also at stop). */
  flush(): void {
    if (this.dirty.size === 0 || !this.db.open) return;
    const writes = [...this.dirty];
    this.dirty.clear();
    relaxedTransaction(this.db, () => {
      for (const [caseId, row] of writes) {
        if (row === null) this.prepare("DELETE FROM runtime_case_snapshots WHERE case_id = ?").run(caseId);
        else
          this.prepare(
            `INSERT INTO runtime_case_snapshots (case_id, machine_version, snapshot) VALUES (?, ?, ?)
             ON CONFLICT (case_id) DO UPDATE SET machine_version = excluded.machine_version, snapshot = excluded.snapshot`,
          ).run(caseId, row.machineVersion, JSON.stringify(row.snapshot()));
      }
    });
  }

  private flushSoon(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      this.flush();
    });
  }
}
