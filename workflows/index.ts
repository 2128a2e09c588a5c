import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type CompiledWorkflow, compileWorkflow } from "./compile";
import type { CheckOptions } from "./validate";

export * from "./schema";
export * from "./duration";
export * from "./canonical-json";
export * from "./hash";
export * from "./validate";
export * from "./compile";

/** Where the templates live: one JSON definition per file, named after its id. */
export const TEMPLATES_DIR = join(__dirname, "templates");

/**
 * Reads, validates and compiles every `*.json` definition in `dir`, in file-name order. A definition that
 * is not valid throws a `WorkflowValidationError` naming the file's workflow and every problem; a file whose
 * name is not its id throws too, so that `GET /workflows/:id` and the file always agree.
 */
export function loadTemplates(dir: string = TEMPLATES_DIR, options: CheckOptions = {}): CompiledWorkflow[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => {
      const compiled = compileWorkflow(JSON.parse(readFileSync(join(dir, name), "utf8")), options);
      if (`${compiled.workflow.id}.json` !== name) {
        throw new Error(
          `${join(dir, name)} holds the workflow ${JSON.stringify(compiled.workflow.id)}: name the file after its id`,
        );
      }
      return compiled;
    });
}

/** One template by id, compiled; throws if there is none. */
export function getTemplate(id: string, dir: string = TEMPLATES_DIR): CompiledWorkflow {
  const found = loadTemplates(dir).find((t) => t.workflow.id === id);
  if (!found) throw new Error(`no workflow template ${JSON.stringify(id)} in ${dir}`);
  return found;
}
