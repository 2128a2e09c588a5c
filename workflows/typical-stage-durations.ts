/**
 * How long each stage of a template typically takes (workflows/typical-durations.json), for the case page's
 * estimated finish. Kept apart from the definitions on purpose: a template's id is the hash of its definition,
 * so a typical figure, which is common practice and may be revised, must never be part of it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

export const TypicalDuration = z.strictObject({
  /** Calendar days from the moment the stage can start (its earlier stages complete) to its completion. */
  days: z.number().min(0).max(365),
  /** Where the figure comes from: a published rule or figure, or this project's split of a published total. */
  source: z.string().min(10),
});
export type TypicalDuration = z.infer<typeof TypicalDuration>;

export const WorkflowTypicalDurations = z.strictObject({
  /** The whole workflow's typical length, in words, with its source. */
  summary: z.string().min(10),
  stages: z.record(z.string(), TypicalDuration),
});
export type WorkflowTypicalDurations = z.infer<typeof WorkflowTypicalDurations>;

const TypicalDurationsFile = z.strictObject({
  about: z.string(),
  workflows: z.record(z.string(), WorkflowTypicalDurations),
});

export const TYPICAL_DURATIONS_FILE = join(__dirname, "typical-durations.json");

let loaded: z.infer<typeof TypicalDurationsFile> | undefined;

/** The typical durations of the workflow with this id, or null where none are written down. */
export function typicalDurationsOf(workflowId: string): WorkflowTypicalDurations | null {
  loaded ??= TypicalDurationsFile.parse(JSON.parse(readFileSync(TYPICAL_DURATIONS_FILE, "utf8")));
  return Object.hasOwn(loaded.workflows, workflowId) ? loaded.workflows[workflowId] : null;
}
