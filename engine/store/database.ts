/**
 * The engine's SQLite database (better-sqlite3): one file in the data folder, written ahead (WAL) so a
 * crash at any moment leaves the last committed state, and migrated forward at open.
 *
 * Each part of the engine declares its own tables as a `Migration`; `openDatabase` applies those not yet
 * applied, in order, each in one transaction, and records them in `schema_migrations`.
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

export type Db = Database.Database;
export type Statement = Database.Statement;

export interface Migration {
  /** Unique and stable: "relayer-1-outbox". Applied in the order given. */
  id: string;
  sql: string;
}

export function openDatabase(file: string, migrations: readonly Migration[]): Db {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  // FULL: a transaction reported committed survives a power cut, not just a process crash.
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db, migrations);
  return db;
}

/**
 * Runs `fn` in one transaction committed with `synchronous = NORMAL`: atomic and safe from a process crash as
 * every commit is (WAL), but not fsynced, so a power cut may lose it. Only for what the chain can give again:
 * the projection's events and views (re-read from its checkpoint), a receipt's settlement in the outbox
 * (reconciled again from the receipt). The next FULL commit (an outbox write) syncs the log, these included.
 * An fsync blocks the event loop for milliseconds; these were most of them.
 */
export function relaxedTransaction<T>(db: Db, fn: () => T): T {
  if (db.inTransaction) return db.transaction(fn)();
  db.pragma("synchronous = NORMAL");
  try {
    return db.transaction(fn).immediate();
  } finally {
    db.pragma("synchronous = FULL");
  }
}

export function migrate(db: Db, migrations: readonly Migration[]): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
  const applied = new Set(db.prepare("SELECT id FROM schema_migrations").pluck().all() as string[]);
  const record = db.prepare("INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)");
  for (const migration of migrations) {
    if (applied.has(migration.id)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      record.run(migration.id, Date.now());
    })();
  }
}

/**
 * A `prepare` that compiles each SQL text once: better-sqlite3 compiles the SQL at every `prepare`, which was
 * most of the cost of reading a row by key.
 */
export function statementCache(db: Db): (sql: string) => Statement {
  const statements = new Map<string, Statement>();
  return (sql) => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
}
