/**
 * The case views as stored: one JSON row per case, written in the same transaction as the events they were
 * folded from, so that the views, the events and the checkpoint never disagree after a crash.
 *
 * A view's template (its stages' names and rules, most of a view's bytes) is the same for every case of that
 * template and never changes under one id (the id is a hash of it): it is stored once, in its own table, and
 * a view's row holds only its template id, so that writing a case costs that case's own bytes.
 */
import { statementCache, type Db, type Migration, type Statement } from "../store/database";
import type { CaseView } from "./case-view";
import type { TemplateInfo } from "./templates";

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
  {
    // Views stored whole before it: their templates move to the new table, their rows keep the rest.
    id: "projection-3-templates-apart",
    sql: `
      CREATE TABLE projection_templates (
        template_id TEXT PRIMARY KEY,
        info TEXT NOT NULL
      );
      INSERT OR IGNORE INTO projection_templates (template_id, info)
        SELECT json_extract(view, '$.template.templateId'),
               json_set(json_extract(view, '$.template'), '$.rules', json_extract(view, '$.model.rules'))
        FROM projection_case_views;
      UPDATE projection_case_views
        SET view = json_remove(view, '$.template.workflow', '$.template.stages', '$.model.rules');
    `,
  },
];

/** A view as its row holds it: the template by id alone, the model without the template's rules. */
type StoredView = Omit<CaseView, "template" | "model"> & {
  template: { templateId: string };
  model: Omit<CaseView["model"], "rules">;
};

export class CaseStore {
  /** Each SQL text compiled once (see statementCache). */
  private readonly prepare: (sql: string) => Statement;

  constructor(private readonly db: Db) {
    this.prepare = statementCache(db);
  }

  /** Stores the views, and the template of each that the store may not hold yet. */
  putAll(views: Iterable<CaseView>): void {
    const insertView = this.prepare(
      `INSERT INTO projection_case_views (case_id, view, updated_block) VALUES (?, ?, ?)
       ON CONFLICT (case_id) DO UPDATE SET view = excluded.view, updated_block = excluded.updated_block`,
    );
    const insertTemplate = this.prepare("INSERT OR IGNORE INTO projection_templates (template_id, info) VALUES (?, ?)");
    const templates = new Set<string>();
    for (const view of views) {
      const { template, model } = view;
      if (!templates.has(template.templateId)) {
        templates.add(template.templateId);
        insertTemplate.run(template.templateId, JSON.stringify({ ...template, rules: model.rules }));
      }
      const { rules: _shared, ...ownModel } = model;
      const stored: StoredView = { ...view, template: { templateId: template.templateId }, model: ownModel };
      insertView.run(view.id, JSON.stringify(stored), view.updatedAt.block);
    }
  }

  delete(caseId: string): void {
    this.prepare("DELETE FROM projection_case_views WHERE case_id = ?").run(caseId);
  }

  all(): CaseView[] {
    const templates = new Map<string, TemplateInfo>();
    for (const row of this.prepare("SELECT template_id, info FROM projection_templates").all() as Array<{
      template_id: string;
      info: string;
    }>) {
      templates.set(row.template_id, JSON.parse(row.info) as TemplateInfo);
    }
    return (this.prepare("SELECT view FROM projection_case_views").pluck().all() as string[]).map((row) => {
      const stored = JSON.parse(row) as StoredView;
      const info = templates.get(stored.template.templateId);
      if (!info)
        throw new Error(
          `the stored view of case ${stored.id} names template ${stored.template.templateId}, which the store does not hold`,
        );
      const { rules, ...template } = info;
      return { ...stored, template, model: { ...stored.model, rules } };
    });
  }

  clear(): void {
    this.db.exec("DELETE FROM projection_case_views; DELETE FROM projection_templates;");
  }
}
