import type { z } from "zod";
import type { Calendar } from "./calendars/calendar";
import { getCalendar } from "./calendars";
import { MAX_SECONDS, deadlineCeilingSeconds, duration, waitFloorSeconds } from "./duration";
import { normalizeWorkflow } from "./hash";
import { CALENDAR_OF_JURISDICTION, OPENING, Workflow } from "./schema";

/** The contract's limits (`MortgageEscrow.MAX_STAGES`, `MAX_CLOCKS`). */
export const MAX_STAGES = 16;
export const MAX_CLOCKS = 12;

export type IssueCode =
  | "invalid-shape"
  | "unknown-role"
  | "too-many-stages"
  | "duplicate-stage"
  | "unknown-stage"
  | "no-completion"
  | "release-count"
  | "calendar-mismatch"
  | "prerequisite-cycle"
  | "deadline-anchor"
  | "too-long"
  | "deadline-before-earliest"
  | "no-long-stop"
  | "too-many-clocks"
  | "amendment-rule";

/** One thing wrong with a definition. `stage` names the stage at fault, where one is. */
export interface WorkflowIssue {
  code: IssueCode;
  stage?: string;
  path: Array<string | number>;
  message: string;
}

/** A definition that cannot be compiled; `issues` lists every problem found, each naming its stage. */
export class WorkflowValidationError extends Error {
  readonly code = "WORKFLOW_INVALID";
  readonly retryable = false;
  constructor(
    readonly workflowId: string | undefined,
    readonly issues: WorkflowIssue[],
  ) {
    super(
      `workflow ${JSON.stringify(workflowId ?? "?")} is invalid:\n${issues.map((i) => `  - ${i.message}`).join("\n")}`,
    );
    this.name = "WorkflowValidationError";
  }
}

/** One stage as the contract will hold it, before the rule is packed. Indexes are on-chain indexes. */
export interface StagePlan {
  id: string;
  /** Its place in the definition's `stages`. */
  fileIndex: number;
  /** Its place on chain (topological order, stable with respect to the definition's order). */
  index: number;
  prerequisites: number[];
  /** The waiting time's floor; 0 for none. */
  waitSeconds: number;
  /** The deadline's ceiling; 0 for none. */
  deadlineSeconds: number;
  /** The on-chain index of the stage the deadline counts from; null for the opening (or no deadline). */
  deadlineAnchor: number | null;
  /** The long-stop's ceiling, counted from the opening, on the releasing stage; 0 for none (every other stage). */
  longStopSeconds: number;
  /** The earliest it can complete, in seconds after the opening (the longest chain of waiting floors). */
  earliestSeconds: number;
}

export interface WorkflowAnalysis {
  /** Normalised: defaults filled, sets and durations written one way. */
  workflow: Workflow;
  calendar: Calendar;
  /** In on-chain order. */
  stages: StagePlan[];
  /** The stages whose completion time a case must keep (deadline anchors; prerequisites of a wait). */
  /** How many times the contract keeps for a case of this workflow (`MortgageEscrow.MAX_CLOCKS` at most). */
  clockCount: number;
}

export type CheckResult =
  { ok: true; analysis: WorkflowAnalysis } | { ok: false; workflowId?: string; issues: WorkflowIssue[] };

export interface CheckOptions {
  /** The calendar to count business days in; the one the definition names by default. */
  calendar?: (name: Workflow["calendar"], timeZone?: string) => Calendar;
}

const q = (s: string) => JSON.stringify(s);

/** A span for people: "5 days 1 hour", "12 hours". */
function describe(seconds: number): string {
  const units: Array<[string, number]> = [
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
    ["second", 1],
  ];
  const parts: string[] = [];
  let rest = seconds;
  for (const [name, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n} ${name}${n === 1 ? "" : "s"}`);
  }
  return parts.length > 0 ? parts.join(" ") : "0 seconds";
}

/** Turns zod's issues into ours, naming the stage by its id where the definition gives one. */
function shapeIssues(input: unknown, error: z.ZodError): WorkflowIssue[] {
  const rawStages = (input as { stages?: unknown })?.stages;
  return error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p));
    if (path[0] === "stages" && typeof path[1] === "number") {
      const raw = Array.isArray(rawStages) ? (rawStages[path[1]] as { id?: unknown } | undefined) : undefined;
      const stage = typeof raw?.id === "string" ? raw.id : `#${path[1] + 1}`;
      const field = path.slice(2).join(".");
      if (path[2] === "signedBy" && issue.code === "invalid_value") {
        return { code: "unknown-role" as const, stage, path, message: `stage ${q(stage)}: ${issue.message}` };
      }
      return {
        code: "invalid-shape" as const,
        stage,
        path,
        message: `stage ${q(stage)}: ${field ? `${field}: ` : ""}${issue.message}`,
      };
    }
    const id = typeof (input as { id?: unknown })?.id === "string" ? (input as { id: string }).id : "?";
    return {
      code: "invalid-shape" as const,
      path,
      message: `workflow ${q(id)}: ${path.join(".") || "definition"}: ${issue.message}`,
    };
  });
}

/** The prerequisite cycles, each once, starting at its member that comes first in the definition. */
function findCycles(after: number[][]): number[][] {
  const n = after.length;
  const state = new Array<0 | 1 | 2>(n).fill(0);
  const stack: number[] = [];
  const seen = new Set<string>();
  const cycles: number[][] = [];
  const visit = (s: number) => {
    state[s] = 1;
    stack.push(s);
    for (const p of after[s]) {
      if (state[p] === 1) {
        const cycle = stack.slice(stack.indexOf(p));
        const first = cycle.indexOf(Math.min(...cycle));
        const rotated = [...cycle.slice(first), ...cycle.slice(0, first)];
        const key = rotated.join(",");
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(rotated);
        }
      } else if (state[p] === 0) visit(p);
    }
    stack.pop();
    state[s] = 2;
  };
  for (let s = 0; s < n; s++) if (state[s] === 0) visit(s);
  return cycles;
}

/**
 * Checks a definition, shape and meaning, and returns every problem found, or the analysis that the compiler
 * turns into the on-chain template. Each message names the stage and the problem.
 */
export function checkWorkflow(input: unknown, options: CheckOptions = {}): CheckResult {
  const parsed = Workflow.safeParse(input);
  if (!parsed.success) {
    const id = (input as { id?: unknown })?.id;
    return { ok: false, workflowId: typeof id === "string" ? id : undefined, issues: shapeIssues(input, parsed.error) };
  }
  const workflow = normalizeWorkflow(parsed.data);
  const issues: WorkflowIssue[] = [];
  const wf = `workflow ${q(workflow.id)}`;
  const fail = () => ({ ok: false as const, workflowId: workflow.id, issues });
  const stages = workflow.stages;

  if (stages.length > MAX_STAGES) {
    issues.push({
      code: "too-many-stages",
      stage: stages[MAX_STAGES].id,
      path: ["stages", MAX_STAGES],
      message: `stage ${q(stages[MAX_STAGES].id)}: one stage too many: the workflow has ${stages.length} stages, more than the ${MAX_STAGES} the contract holds`,
    });
  }

  const indexOf = new Map<string, number>();
  stages.forEach((stage, i) => {
    const earlier = indexOf.get(stage.id);
    if (earlier === undefined) indexOf.set(stage.id, i);
    else {
      issues.push({
        code: "duplicate-stage",
        stage: stage.id,
        path: ["stages", i, "id"],
        message: `stage ${q(stage.id)}: duplicate stage id (stages ${earlier + 1} and ${i + 1} both use it)`,
      });
    }
  });

  stages.forEach((stage, i) => {
    stage.after.forEach((ref, k) => {
      if (!indexOf.has(ref)) {
        issues.push({
          code: "unknown-stage",
          stage: stage.id,
          path: ["stages", i, "after", k],
          message: `stage ${q(stage.id)}: "after" names an unknown stage ${q(ref)}`,
        });
      }
    });
    if (stage.deadline && stage.deadline.from !== OPENING && !indexOf.has(stage.deadline.from)) {
      issues.push({
        code: "unknown-stage",
        stage: stage.id,
        path: ["stages", i, "deadline", "from"],
        message: `stage ${q(stage.id)}: the deadline counts from an unknown stage ${q(stage.deadline.from)} (use "${OPENING}" or a stage id)`,
      });
    }
    if (stage.signedBy.length === 0 && (stage.after.length === 0 || stage.wait === undefined)) {
      issues.push({
        code: "no-completion",
        stage: stage.id,
        path: ["stages", i],
        message: `stage ${q(stage.id)}: no role signs it and no time completes it (a stage that no one signs needs "after" and a "wait")`,
      });
    }
  });

  // A change of terms re-opens a stage for new sign-offs: one that someone signs, and that neither moves
  // money nor binds (the contract's `MortgageEscrowInvalidAmendmentRules`).
  (workflow.amendments?.reopenedByTerms ?? []).forEach((ref, k) => {
    const path = ["amendments", "reopenedByTerms", k];
    const target = indexOf.has(ref) ? stages[indexOf.get(ref)!] : undefined;
    if (!target) {
      issues.push({
        code: "unknown-stage",
        path,
        message: `${wf}: "reopenedByTerms" names an unknown stage ${q(ref)}`,
      });
    } else if (target.signedBy.length === 0 || target.binding || target.action !== "none") {
      issues.push({
        code: "amendment-rule",
        stage: ref,
        path,
        message: `stage ${q(ref)}: a change of terms cannot re-open it: a re-opened stage must be signed by someone, and neither bind nor move money`,
      });
    }
  });

  const releases = stages.filter((s) => s.action === "release");
  if (releases.length === 0) {
    issues.push({
      code: "release-count",
      path: ["stages"],
      message: `${wf}: no stage releases the funds (exactly one stage must have "action": "release")`,
    });
  }
  for (const extra of releases.slice(1)) {
    issues.push({
      code: "release-count",
      stage: extra.id,
      path: ["stages", stages.indexOf(extra), "action"],
      message: `stage ${q(extra.id)}: a second releasing stage (stage ${q(releases[0].id)} releases already; exactly one may)`,
    });
  }

  // The contract's `MortgageEscrowNoLongStop`: without a deadline that runs from the opening, a case whose
  // other deadlines never start (the party who signs their anchor goes silent) could hold the deposits forever.
  const release = releases[0];
  if (release && release.deadline?.from !== OPENING && workflow.longStop === undefined) {
    issues.push({
      code: "no-long-stop",
      stage: release.id,
      path: ["longStop"],
      message:
        `stage ${q(release.id)}: the releasing stage has no deadline counted from the opening and the workflow has no "longStop": ` +
        `a case whose other deadlines never start (a party that never signs their anchor) could hold the deposits forever; ` +
        `add "longStop": { "within": "<duration>", "basis": "<the practice and its source>" } or a deadline from "${OPENING}"`,
    });
  }

  if (CALENDAR_OF_JURISDICTION[workflow.jurisdiction] !== workflow.calendar) {
    issues.push({
      code: "calendar-mismatch",
      path: ["calendar"],
      message: `${wf}: the calendar ${q(workflow.calendar)} is not the ${workflow.jurisdiction} one (${q(CALENDAR_OF_JURISDICTION[workflow.jurisdiction])})`,
    });
  }

  // The graph checks below need every reference to name exactly one stage.
  if (issues.some((i) => i.code === "duplicate-stage" || i.code === "unknown-stage")) return fail();

  const after = stages.map((s) => s.after.map((ref) => indexOf.get(ref)!));
  for (const cycle of findCycles(after)) {
    const names = [...cycle, cycle[0]].map((i) => stages[i].id);
    issues.push({
      code: "prerequisite-cycle",
      stage: names[0],
      path: ["stages", cycle[0], "after"],
      message: `stage ${q(names[0])}: prerequisite cycle ${names.join(" -> ")}`,
    });
  }
  if (issues.some((i) => i.code === "prerequisite-cycle")) return fail();

  // Ancestors: every stage that must complete before this one can.
  const ancestors: Array<Set<number>> = stages.map(() => new Set());
  const collect = (s: number, into: Set<number>) => {
    for (const p of after[s]) {
      if (!into.has(p)) {
        into.add(p);
        collect(p, into);
      }
    }
  };
  stages.forEach((_, s) => collect(s, ancestors[s]));

  const anchorOf = stages.map((s) =>
    s.deadline && s.deadline.from !== OPENING ? indexOf.get(s.deadline.from)! : null,
  );
  anchorOf.forEach((a, s) => {
    if (a === null) return;
    if (a === s || ancestors[a].has(s)) {
      issues.push({
        code: "deadline-anchor",
        stage: stages[s].id,
        path: ["stages", s, "deadline", "from"],
        message:
          a === s
            ? `stage ${q(stages[s].id)}: the deadline counts from the stage's own completion`
            : `stage ${q(stages[s].id)}: the deadline counts from ${q(stages[a].id)}, which cannot complete before this stage does`,
      });
    }
  });
  if (issues.length > 0) return fail();

  // On-chain order: topological over prerequisites and deadline anchors (both must come earlier on chain),
  // taking at each step the stage that comes first in the definition.
  const before = stages.map((_, s) => [...after[s], ...(anchorOf[s] === null ? [] : [anchorOf[s]!])]);
  const order: number[] = [];
  const placed = new Set<number>();
  while (order.length < stages.length) {
    const next = stages.findIndex((_, s) => !placed.has(s) && before[s].every((p) => placed.has(p)));
    if (next === -1) {
      const stuck = stages.map((_, s) => s).filter((s) => !placed.has(s));
      const first = stages[stuck[0]].id;
      issues.push({
        code: "deadline-anchor",
        stage: first,
        path: ["stages", stuck[0], "deadline"],
        message: `stage ${q(first)}: deadlines and prerequisites form a cycle among ${stuck.map((s) => q(stages[s].id)).join(", ")}: each deadline must count from a stage that can complete first`,
      });
      return fail();
    }
    placed.add(next);
    order.push(next);
  }
  const chainIndex = new Map(order.map((fileIndex, index) => [fileIndex, index]));

  const calendar = (options.calendar ?? getCalendar)(workflow.calendar, workflow.timeZone);
  // A waiting time goes on chain as its floor, so that the contract never holds up what the law allows; a
  // deadline as its ceiling, so that the contract never expires a case the law still allows to complete.
  // The exact legal moment is the engine's legal guard's to keep.
  const waitSeconds = stages.map((s) => (s.wait ? waitFloorSeconds(duration(s.wait), calendar) : 0));
  const deadlineSeconds = stages.map((s) =>
    s.deadline ? deadlineCeilingSeconds(duration(s.deadline.within), calendar) : 0,
  );
  // The long-stop is a deadline from the opening like any other: the end of its last (business) day, at its ceiling.
  const releaseIndex = stages.indexOf(release);
  const longStopSeconds = workflow.longStop ? deadlineCeilingSeconds(duration(workflow.longStop.within), calendar) : 0;
  if (longStopSeconds > MAX_SECONDS) {
    issues.push({
      code: "too-long",
      stage: release.id,
      path: ["longStop", "within"],
      message: `stage ${q(release.id)}: the long-stop ${q(workflow.longStop!.within)} is ${longStopSeconds} seconds, longer than the contract's ${MAX_SECONDS}`,
    });
  }
  stages.forEach((stage, s) => {
    for (const [field, seconds, text] of [
      ["wait", waitSeconds[s], stage.wait],
      ["deadline", deadlineSeconds[s], stage.deadline?.within],
    ] as const) {
      if (seconds > MAX_SECONDS) {
        issues.push({
          code: "too-long",
          stage: stage.id,
          path: ["stages", s, field],
          message: `stage ${q(stage.id)}: the ${field} ${q(text!)} is ${seconds} seconds, longer than the contract's ${MAX_SECONDS}`,
        });
      }
    }
  });
  if (issues.length > 0) return fail();

  // Earliest completion after the opening, and after each ancestor's completion: the longest chain of floors.
  const earliest = new Array<number>(stages.length).fill(0);
  for (const s of order) {
    earliest[s] = Math.max(0, ...after[s].map((p) => earliest[p])) + waitSeconds[s];
  }
  const earliestAfter = (anchor: number, s: number): number => {
    const memo = new Map<number, number>([[anchor, 0]]);
    const walk = (x: number): number => {
      if (memo.has(x)) return memo.get(x)!;
      const reachable = after[x].filter((p) => p === anchor || ancestors[p].has(anchor));
      const value = Math.max(...reachable.map(walk)) + waitSeconds[x];
      memo.set(x, value);
      return value;
    };
    return walk(s);
  };
  stages.forEach((stage, s) => {
    if (!stage.deadline) return;
    const a = anchorOf[s];
    // A deadline from a stage that is not an ancestor may meet a stage already complete: nothing to compare.
    if (a !== null && !ancestors[s].has(a)) return;
    const soonest = a === null ? earliest[s] : earliestAfter(a, s);
    if (soonest > deadlineSeconds[s]) {
      issues.push({
        code: "deadline-before-earliest",
        stage: stage.id,
        path: ["stages", s, "deadline"],
        message:
          `stage ${q(stage.id)}: the deadline (within ${stage.deadline.within} from ${stage.deadline.from}, at most ` +
          `${describe(deadlineSeconds[s])}) falls before the earliest moment the stage can complete ` +
          `(${describe(soonest)} after ${a === null ? "the opening" : `${q(stages[a].id)} completes`})`,
      });
    }
  });

  if (workflow.longStop && earliest[releaseIndex] > longStopSeconds) {
    issues.push({
      code: "deadline-before-earliest",
      stage: release.id,
      path: ["longStop", "within"],
      message:
        `stage ${q(release.id)}: the long-stop (within ${workflow.longStop.within} from ${OPENING}, at most ${describe(longStopSeconds)}) ` +
        `falls before the earliest moment the releasing stage can complete (${describe(earliest[releaseIndex])} after the opening)`,
    });
  }

  // As the contract counts them: the completion time of each deadline anchor, and the start (the last
  // prerequisite's completion) of each waiting time that follows prerequisites.
  const anchors = new Set(stages.map((_, s) => anchorOf[s]).filter((a): a is number => a !== null));
  const waitsAfterPrerequisites = stages.filter((_, s) => waitSeconds[s] > 0 && after[s].length > 0).length;
  const clockCount = anchors.size + waitsAfterPrerequisites;
  if (clockCount > MAX_CLOCKS) {
    issues.push({
      code: "too-many-clocks",
      path: ["stages"],
      message: `${wf}: ${clockCount} times are needed (the completion of each deadline anchor and the start of each waiting time after prerequisites), more than the ${MAX_CLOCKS} the contract keeps`,
    });
  }
  if (issues.length > 0) return fail();

  const plans: StagePlan[] = order.map((s, index) => ({
    id: stages[s].id,
    fileIndex: s,
    index,
    prerequisites: after[s].map((p) => chainIndex.get(p)!).sort((x, y) => x - y),
    waitSeconds: waitSeconds[s],
    deadlineSeconds: deadlineSeconds[s],
    deadlineAnchor: anchorOf[s] === null ? null : chainIndex.get(anchorOf[s]!)!,
    longStopSeconds: s === releaseIndex ? longStopSeconds : 0,
    earliestSeconds: earliest[s],
  }));
  return { ok: true, analysis: { workflow, calendar, stages: plans, clockCount } };
}

/** The definition, parsed and normalised, or a `WorkflowValidationError` listing every problem. */
export function validateWorkflow(input: unknown, options: CheckOptions = {}): Workflow {
  const result = checkWorkflow(input, options);
  if (!result.ok) throw new WorkflowValidationError(result.workflowId, result.issues);
  return result.analysis.workflow;
}
