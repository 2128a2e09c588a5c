import { hexToBytes } from "@noble/hashes/utils";
import { hashWorkflow, keccak256Hex } from "./hash";
import { type LongStop, ROLE_NAMES, type RoleName, type Stage, type Workflow } from "./schema";
import { type CheckOptions, WorkflowValidationError, checkWorkflow, type WorkflowAnalysis } from "./validate";

/** `IMortgageEscrow.Action`. */
export const ACTION = { none: 0, "require-funding": 1, release: 2 } as const;
export type ActionCode = (typeof ACTION)[keyof typeof ACTION];

/** `IMortgageEscrow.StageRule`, field for field. */
export interface StageRule {
  roles: number;
  prerequisites: number;
  waitSeconds: number;
  deadlineSeconds: number;
  /** 0: counts from the opening; k + 1: from stage k's completion. */
  deadlineAnchor: number;
  action: ActionCode;
  binding: boolean;
  /** A second deadline, counted from the opening (0: none): the long-stop, on the releasing stage. */
  longStopSeconds: number;
}

/** `IMortgageEscrow.AmendmentRules`, field for field: role masks of who must consent, and a stage mask. */
export interface AmendmentRules {
  deadlineConsent: number;
  termsConsent: number;
  partyConsent: number;
  reopenedByTerms: number;
}

/** The safe default: every party's consent to every kind of amendment, nothing re-opened. */
export const EVERY_PARTY_CONSENTS: AmendmentRules = {
  deadlineConsent: 0xf,
  termsConsent: 0xf,
  partyConsent: 0xf,
  reopenedByTerms: 0,
};

/** One stage as compiled: the definition's words next to what the contract holds. */
export interface CompiledStage {
  index: number;
  id: string;
  title: string;
  description?: string;
  signedBy: RoleName[];
  after: string[];
  /** The legal rule, as the definition writes it (normalised), for the engine's legal guard. */
  wait?: string;
  deadline?: { within: string; from: string };
  /** The workflow's long-stop, on the releasing stage only (normalised). */
  longStop?: LongStop;
  action: Stage["action"];
  binding: boolean;
  /** The earliest it can complete, in seconds after the opening (the floors of the waiting times). */
  earliestSeconds: number;
  rule: StageRule;
}

export interface CompiledWorkflow {
  /** Normalised: defaults filled, sets and durations written one way. */
  workflow: Workflow;
  definitionHash: string;
  /** `keccak256(abi.encode(definitionHash, stages, amendmentRules))`, as `registerTemplate` computes it. */
  templateId: string;
  /** What `registerTemplate` takes, in on-chain order. */
  stages: StageRule[];
  /** What `registerTemplate` takes with them: who must consent to amendments (every party by default). */
  amendmentRules: AmendmentRules;
  details: CompiledStage[];
  /** Stage id to on-chain index. */
  stageIndex: Record<string, number>;
  calendar: Workflow["calendar"];
  timeZone: string;
}

export function roleMask(roles: readonly RoleName[]): number {
  return roles.reduce((mask, role) => mask | (1 << ROLE_NAMES.indexOf(role)), 0);
}

/** The rules of an analysed definition, in on-chain order. */
export function stageRules(analysis: WorkflowAnalysis): StageRule[] {
  return analysis.stages.map((plan) => {
    const stage = analysis.workflow.stages[plan.fileIndex];
    return {
      roles: roleMask(stage.signedBy),
      prerequisites: plan.prerequisites.reduce((mask, p) => mask | (1 << p), 0),
      waitSeconds: plan.waitSeconds,
      deadlineSeconds: plan.deadlineSeconds,
      deadlineAnchor: plan.deadlineAnchor === null ? 0 : plan.deadlineAnchor + 1,
      action: ACTION[stage.action],
      binding: stage.binding,
      longStopSeconds: plan.longStopSeconds,
    };
  });
}

/** The definition's amendment rules as the contract holds them, stage ids turned into on-chain indexes. */
export function amendmentRulesOf(workflow: Workflow, stageIndex: Record<string, number>): AmendmentRules {
  const rules = workflow.amendments;
  const mask = (roles: RoleName[] | undefined) => (roles === undefined ? 0xf : roleMask(roles));
  return {
    deadlineConsent: mask(rules?.deadline),
    termsConsent: mask(rules?.terms),
    partyConsent: mask(rules?.party),
    reopenedByTerms: (rules?.reopenedByTerms ?? []).reduce((m, id) => m | (1 << stageIndex[id]), 0),
  };
}

function word(value: number | bigint | boolean): string {
  return BigInt(typeof value === "boolean" ? (value ? 1 : 0) : value)
    .toString(16)
    .padStart(64, "0");
}

/**
 * `abi.encode(bytes32 definitionHash, StageRule[] stages, AmendmentRules amendments)`. Every field of both
 * tuples is static, so the encoding is: the hash, the array's offset (0xc0, just past the six head words), the
 * amendment rules' four words in place, the length, then eight words per stage in field order
 * (`longStopSeconds` last).
 */
export function encodeTemplate(
  definitionHash: string,
  stages: readonly StageRule[],
  amendments: AmendmentRules = EVERY_PARTY_CONSENTS,
): string {
  if (!/^0x[0-9a-fA-F]{64}$/.test(definitionHash)) throw new Error(`not a bytes32: ${definitionHash}`);
  const words = [
    definitionHash.slice(2).toLowerCase(),
    word(0xc0),
    word(amendments.deadlineConsent),
    word(amendments.termsConsent),
    word(amendments.partyConsent),
    word(amendments.reopenedByTerms),
    word(stages.length),
  ];
  for (const s of stages) {
    words.push(
      word(s.roles),
      word(s.prerequisites),
      word(s.waitSeconds),
      word(s.deadlineSeconds),
      word(s.deadlineAnchor),
      word(s.action),
      word(s.binding),
      word(s.longStopSeconds),
    );
  }
  return `0x${words.join("")}`;
}

export function templateIdOf(
  definitionHash: string,
  stages: readonly StageRule[],
  amendments: AmendmentRules = EVERY_PARTY_CONSENTS,
): string {
  return keccak256Hex(hexToBytes(encodeTemplate(definitionHash, stages, amendments).slice(2)));
}

/**
 * Compiles a definition (as written, or parsed) into the on-chain template: its rules in topological order
 * (stable with respect to the definition's order), the definition's hash and the template id. Throws a
 * `WorkflowValidationError` listing every problem if the definition is not valid.
 */
export function compileWorkflow(definition: unknown, options: CheckOptions = {}): CompiledWorkflow {
  const result = checkWorkflow(definition, options);
  if (!result.ok) throw new WorkflowValidationError(result.workflowId, result.issues);
  const { analysis } = result;
  const { workflow } = analysis;
  const definitionHash = hashWorkflow(workflow);
  const stages = stageRules(analysis);
  const details = analysis.stages.map((plan, index): CompiledStage => {
    const stage = workflow.stages[plan.fileIndex];
    return {
      index,
      id: stage.id,
      title: stage.title,
      description: stage.description,
      signedBy: stage.signedBy,
      after: stage.after,
      wait: stage.wait,
      deadline: stage.deadline,
      longStop: stage.action === "release" ? workflow.longStop : undefined,
      action: stage.action,
      binding: stage.binding,
      earliestSeconds: plan.earliestSeconds,
      rule: stages[index],
    };
  });
  const stageIndex: Record<string, number> = Object.fromEntries(details.map((d) => [d.id, d.index]));
  const amendmentRules = amendmentRulesOf(workflow, stageIndex);
  return {
    workflow,
    definitionHash,
    templateId: templateIdOf(definitionHash, stages, amendmentRules),
    stages,
    amendmentRules,
    details,
    stageIndex,
    calendar: workflow.calendar,
    timeZone: workflow.timeZone ?? analysis.calendar.timeZone,
  };
}
