/**
 * The server's own SQLite file (DATA_DIR/server.sqlite): the principals and the idempotency records. Kept
 * apart from the engine's store so that the engine never knows who calls it, and so that `npm run principal`
 * can add or revoke a principal while the server runs (WAL lets the two processes share the file).
 */
import { openDatabase, type Db, type Migration } from "../engine/store/database";

export type { Db };

export const SERVER_MIGRATIONS: readonly Migration[] = [
  {
    id: "server-1-principals",
    sql: `CREATE TABLE principals (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      role TEXT NOT NULL,
      address TEXT NOT NULL,
      token_hash TEXT NOT NULL UNIQUE,
      created_at TEXT NOT NULL,
      revoked_at TEXT
    );
    CREATE INDEX principals_address ON principals (address);`,
  },
  {
    id: "server-2-idempotency",
    sql: `CREATE TABLE idempotency_records (
      principal_id TEXT NOT NULL,
      key TEXT NOT NULL,
      request_hash TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('in-progress', 'done')),
      boot_id TEXT NOT NULL,
      status INTEGER,
      body TEXT,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (principal_id, key)
    );`,
  },
  {
    id: "server-3-submission-owners",
    sql: `CREATE TABLE submission_owners (
      submission_id INTEGER PRIMARY KEY,
      principal_id TEXT NOT NULL,
      case_id TEXT
    );`,
  },
];

/** Opens (creating if need be) the server's SQLite file and applies its migrations. */
export function openServerDb(file: string): Db {
  return openDatabase(file, SERVER_MIGRATIONS);
}

/** Who asked for each submission made through the API: only they may read it back. */
export class SubmissionOwners {
  private readonly insert;
  private readonly select;

  constructor(db: Db) {
    this.insert = db.prepare(
      "INSERT OR IGNORE INTO submission_owners (submission_id, principal_id, case_id) VALUES (?, ?, ?)",
    );
    this.select = db.prepare<[number], { principal_id: string }>(
      "SELECT principal_id FROM submission_owners WHERE submission_id = ?",
    );
  }

  record(submissionId: number, principalId: string, caseId: string | null): void {
    this.insert.run(submissionId, principalId, caseId);
  }

  ownerOf(submissionId: number): string | null {
    return this.select.get(submissionId)?.principal_id ?? null;
  }
}
