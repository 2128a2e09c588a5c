/**
 * The case views as stored: one JSON row per case, written in the same transaction as the events they were
 * folded from, so that the views, the events and the checkpoint never disagree after a crash.
 */
import { statementCache, type Db, type Migration, type Statement } from "../store/database";
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
  /** Each SQL text compiled once (see statementCache). */
  private readonly prepare: (sql: string) => Statement;

  constructor(private readonly db: Db) {
    this.prepare = statementCache(db);
  }

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
