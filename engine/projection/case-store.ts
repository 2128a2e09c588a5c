/**
 * The case views as stored: one JSON row per case, written in the same transaction as the events they were
 * folded from, so that the views, the events and the checkpoint never disagree after a crash.
 */
import type { Db, Migration, Statement } from "../store/database";
import type { CaseView } from "./case-view";

export const CASE_STORE_MIGRATIONS: readonly Migration[] = [
  {
    id: "projection-2-case-views",
    sql: `
      CREATE TABLE projection_case_views (
        case_id TEXT PRIMARY KEY,
        view TEXT NOT NULL,
        updated_block INTEGER NOT NULL
      );
    `,
  },
];

export class CaseStore {
  /**
   * A statement prepared once per SQL text: better-sqlite3 compiles the SQL at every \`prepare\`, which was
   * most of the cost of reading a row by key.
   */
  private readonly statements = new Map<string, Statement>();
  private prepare(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  constructor(private readonly db: Db) {}

  put(view: CaseView): void {
    this
      .prepare(
        `INSERT INTO projection_case_views (case_id, view, updated_block) VALUES (?, ?, ?)
         ON CONFLICT (case_id) DO UPDATE SET view = excluded.view, updated_block = excluded.updated_block`,
      )
      .run(view.id, JSON.stringify(view), view.updatedAt.block);
  }

  delete(caseId: string): void {
    this.prepare("DELETE FROM projection_case_views WHERE case_id = ?").run(caseId);
  }

  all(): CaseView[] {
    return (this.prepare("SELECT view FROM projection_case_views").pluck().all() as string[]).map((v) => JSON.parse(v) as CaseView);
  }

  clear(): void {
    this.db.exec("DELETE FROM projection_case_views");
  }
}
