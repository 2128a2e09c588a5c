/**
 * The projection's record of the chain: the contract's decoded events, the hashes of the blocks it has
 * processed, and the checkpoint (the last processed block). Everything here is written by the follower in
 * one SQLite transaction per block range, so the three always agree with each other after a crash.
 *
 * The block-hash chain is sparse on purpose: it holds every block that carried one of our events, and the
 * last block of every range. That is enough to find a fork point: if the stored hash of block n equals the
 * chain's, the chain up to n is the one we read (a block hash commits to all its ancestors), and any block
 * between two stored ones had none of our events when we read it, so replaying from n + 1 re-reads it.
 */
import { statementCache, type Db, type Migration, type Statement } from "../store/database";

export const EVENT_LOG_MIGRATIONS: readonly Migration[] = [
  {
    id: "projection-1-event-log",
    sql: `
      CREATE TABLE projection_events (
        block_number INTEGER NOT NULL,
        log_index INTEGER NOT NULL,
        block_hash TEXT NOT NULL,
        tx_hash TEXT NOT NULL,
        block_time INTEGER NOT NULL,
        case_id TEXT,
        name TEXT NOT NULL,
        args TEXT NOT NULL,
        PRIMARY KEY (block_number, log_index)
      );
      CREATE INDEX projection_events_by_case ON projection_events (case_id, block_number, log_index);
      CREATE TABLE projection_blocks (
        number INTEGER PRIMARY KEY,
        hash TEXT NOT NULL
      );
      CREATE TABLE projection_checkpoint (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        block_number INTEGER NOT NULL,
        block_hash TEXT
      );
    `,
  },
];

/** JSON as stored: the event's named arguments, bigints written as decimal strings. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One of the contract's events as read from the chain and stored. */
export interface ChainEvent {
  blockNumber: number;
  blockHash: string;
  logIndex: number;
  txHash: string;
  /** The block's timestamp, in chain seconds. */
  blockTime: number;
  /** Decimal string; null for events that belong to no case (TemplateRegistered, PauseChanged). */
  caseId: string | null;
  name: string;
  args: Record<string, JsonValue>;
}

/** The last processed block. `hash` is null before the first range (nothing to compare yet). */
export interface Checkpoint {
  number: number;
  hash: string | null;
}

export interface StoredBlock {
  number: number;
  hash: string;
}

interface EventRow {
  block_number: number;
  log_index: number;
  block_hash: string;
  tx_hash: string;
  block_time: number;
  case_id: string | null;
  name: string;
  args: string;
}

function fromRow(row: EventRow): ChainEvent {
  return {
    blockNumber: row.block_number,
    blockHash: row.block_hash,
    logIndex: row.log_index,
    txHash: row.tx_hash,
    blockTime: row.block_time,
    caseId: row.case_id,
    name: row.name,
    args: JSON.parse(row.args) as Record<string, JsonValue>,
  };
}

/** The three tables behind small, synchronous methods; callers wrap them in their own transaction. */
export class EventLog {
  /** Each SQL text compiled once (see statementCache). */
  private readonly prepare: (sql: string) => Statement;

  constructor(
    readonly db: Db,
    /** Where the log starts: the checkpoint when nothing has been processed is the block before it. */
    private readonly fromBlock: number,
  ) {
    this.prepare = statementCache(db);
  }

  checkpoint(): Checkpoint {
    const row = this.prepare("SELECT block_number, block_hash FROM projection_checkpoint WHERE id = 1").get() as
      { block_number: number; block_hash: string | null } | undefined;
    return row ? { number: row.block_number, hash: row.block_hash } : this.origin();
  }

  /** The checkpoint of an empty log. */
  origin(): Checkpoint {
    return { number: this.fromBlock - 1, hash: null };
  }

  setCheckpoint(checkpoint: Checkpoint): void {
    this.prepare(
      `INSERT INTO projection_checkpoint (id, block_number, block_hash) VALUES (1, ?, ?)
         ON CONFLICT (id) DO UPDATE SET block_number = excluded.block_number, block_hash = excluded.block_hash`,
    ).run(checkpoint.number, checkpoint.hash);
  }

  appendEvents(events: readonly ChainEvent[]): void {
    const insert = this.prepare(
      `INSERT INTO projection_events (block_number, log_index, block_hash, tx_hash, block_time, case_id, name, args)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const e of events) {
      insert.run(
        e.blockNumber,
        e.logIndex,
        e.blockHash,
        e.txHash,
        e.blockTime,
        e.caseId,
        e.name,
        JSON.stringify(e.args),
      );
    }
  }

  recordBlocks(blocks: readonly StoredBlock[]): void {
    const upsert = this.prepare(
      "INSERT INTO projection_blocks (number, hash) VALUES (?, ?) ON CONFLICT (number) DO UPDATE SET hash = excluded.hash",
    );
    for (const b of blocks) upsert.run(b.number, b.hash);
  }

  /** Forgets block hashes more than `depth` blocks below `head`: a reorganisation deeper than that rebuilds. */
  pruneBlocks(head: number, depth: number): void {
    this.prepare("DELETE FROM projection_blocks WHERE number < ?").run(head - depth);
  }

  /** Stored block hashes at or below `number`, newest first: the candidates for a fork point. */
  blocksAtOrBelow(number: number): StoredBlock[] {
    return this.prepare("SELECT number, hash FROM projection_blocks WHERE number <= ? ORDER BY number DESC").all(
      number,
    ) as StoredBlock[];
  }

  /** Removes every event and block hash above `forkPoint` and returns the events removed, in block order. */
  rollBackTo(forkPoint: Checkpoint): ChainEvent[] {
    const removed = (
      this.prepare("SELECT * FROM projection_events WHERE block_number > ? ORDER BY block_number, log_index").all(
        forkPoint.number,
      ) as EventRow[]
    ).map(fromRow);
    this.prepare("DELETE FROM projection_events WHERE block_number > ?").run(forkPoint.number);
    this.prepare("DELETE FROM projection_blocks WHERE number > ?").run(forkPoint.number);
    this.setCheckpoint(forkPoint);
    return removed;
  }

  /** Every event of a case, in chain order. */
  eventsOf(caseId: string): ChainEvent[] {
    return (
      this.prepare("SELECT * FROM projection_events WHERE case_id = ? ORDER BY block_number, log_index").all(
        caseId,
      ) as EventRow[]
    ).map(fromRow);
  }

  /**
   * Events after the position (`block`, `logIndex`), in chain order: whole blocks, at least `limit` events
   * unless fewer remain (a block is never split, so a reader that stops here has seen each block entire).
   * For readers that keep their own cursor in the log (the server's webhook dispatcher).
   */
  eventsAfter(block: number, logIndex: number, limit: number): ChainEvent[] {
    const last = this.prepare(
      `SELECT block_number FROM projection_events WHERE (block_number, log_index) > (?, ?)
         ORDER BY block_number, log_index LIMIT 1 OFFSET ?`,
    )
      .pluck()
      .get(block, logIndex, Math.max(0, limit - 1)) as number | undefined;
    const rows =
      last === undefined
        ? this.prepare(
            "SELECT * FROM projection_events WHERE (block_number, log_index) > (?, ?) ORDER BY block_number, log_index",
          ).all(block, logIndex)
        : this.prepare(
            `SELECT * FROM projection_events WHERE (block_number, log_index) > (?, ?) AND block_number <= ?
               ORDER BY block_number, log_index`,
          ).all(block, logIndex, last);
    return (rows as EventRow[]).map(fromRow);
  }

  /** The stored event at a position, or null (a reorganisation removed it). */
  eventAt(block: number, logIndex: number): ChainEvent | null {
    const row = this.prepare("SELECT * FROM projection_events WHERE block_number = ? AND log_index = ?").get(
      block,
      logIndex,
    ) as EventRow | undefined;
    return row ? fromRow(row) : null;
  }

  /** The position of the last stored event, or null for an empty log. */
  lastPosition(): { block: number; logIndex: number } | null {
    const row = this.prepare(
      "SELECT block_number, log_index FROM projection_events ORDER BY block_number DESC, log_index DESC LIMIT 1",
    ).get() as { block_number: number; log_index: number } | undefined;
    return row ? { block: row.block_number, logIndex: row.log_index } : null;
  }

  /** The template ids (lower-case hex) whose `TemplateRegistered` event the log holds. */
  registeredTemplateIds(): Set<string> {
    const rows = this.prepare("SELECT args FROM projection_events WHERE name = 'TemplateRegistered'")
      .pluck()
      .all() as string[];
    return new Set(rows.map((args) => String((JSON.parse(args) as { templateId: string }).templateId).toLowerCase()));
  }

  allEvents(): ChainEvent[] {
    return (this.prepare("SELECT * FROM projection_events ORDER BY block_number, log_index").all() as EventRow[]).map(
      fromRow,
    );
  }

  /** Empties the log, back to the origin: the first step of a rebuild from the chain alone. */
  clear(): void {
    this.db.exec("DELETE FROM projection_events; DELETE FROM projection_blocks; DELETE FROM projection_checkpoint;");
  }
}
