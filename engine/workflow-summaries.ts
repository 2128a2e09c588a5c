/**
 * The workflows the engine was given, as `GET /workflows` shows them: each template's words (ids, titles,
 * who signs, what comes first, the legal waiting period and deadline as the definition writes them) next to
 * its template id, JSON-safe. Found by workflow id ("us-purchase") or by template id.
 */
import type { CompiledWorkflow } from "../workflows";
import { ROLE_NAMES, type RoleName } from "../workflows/schema";

export interface WorkflowStageSummary {
  id: string;
  title: string;
  description: string | null;
  /** The roles that must each sign off; empty for a stage that time alone completes. */
  roles: RoleName[];
  /** The ids of the stages that must complete first. */
  prerequisites: string[];
  /** As the definition writes it ("3 business days"); null when there is none. */
  waitingPeriod: string | null;
  /** "within" a span "from" the opening or a stage's completion; null when there is none. */
  deadline: { within: string; from: string } | null;
  action: "none" | "require-funding" | "release";
  /** Once it completes, a cancelled or expired case pays the buyer's deposit to the seller. */
  binding: boolean;
}

export interface WorkflowSummary {
  id: string;
  version: number;
  jurisdiction: string;
  title: string;
  description: string | null;
  /** What each party is called in this workflow. */
  roleTitles: Record<RoleName, string>;
  /** The on-chain template id (lower-case hex) a case of this workflow is opened under. */
  templateId: string;
  /**
   * Whether the projection has seen the template registered on chain (its `TemplateRegistered` event since
   * the deployment block); false until then.
   */
  registered: boolean;
  /** In on-chain order: a case's `stages[i]` is this list's `i`. */
  stages: WorkflowStageSummary[];
  /** Who must consent to each kind of amendment, what a change of terms re-opens, and the rule's legal basis. */
  amendments: {
    deadline: RoleName[];
    terms: RoleName[];
    party: RoleName[];
    reopenedByTerms: string[];
    basis: string | null;
  };
}

/** The role names of a role mask. */
function rolesOf(mask: number): RoleName[] {
  return ROLE_NAMES.filter((_, role) => (mask >> role) & 1);
}

export function summariseWorkflow(compiled: CompiledWorkflow, registered: boolean): WorkflowSummary {
  const w = compiled.workflow;
  return {
    id: w.id,
    version: w.version,
    jurisdiction: w.jurisdiction,
    title: w.title,
    description: w.description ?? null,
    roleTitles: { ...w.roles },
    templateId: compiled.templateId.toLowerCase(),
    registered,
    stages: compiled.details.map((d) => ({
      id: d.id,
      title: d.title,
      description: d.description ?? null,
      roles: [...d.signedBy],
      prerequisites: [...d.after],
      waitingPeriod: d.wait ?? null,
      deadline: d.deadline ? { within: d.deadline.within, from: d.deadline.from } : null,
      action: d.action,
      binding: d.binding,
    })),
    amendments: {
      deadline: rolesOf(compiled.amendmentRules.deadlineConsent),
      terms: rolesOf(compiled.amendmentRules.termsConsent),
      party: rolesOf(compiled.amendmentRules.partyConsent),
      reopenedByTerms: compiled.details
        .filter((_, s) => (compiled.amendmentRules.reopenedByTerms >> s) & 1)
        .map((d) => d.id),
      basis: w.amendments?.basis ?? null,
    },
  };
}

/** The workflow whose id, or template id (any case of hex), is `idOrTemplateId`. */
export function findWorkflow(
  workflows: readonly CompiledWorkflow[],
  idOrTemplateId: string,
): CompiledWorkflow | undefined {
  const wanted = idOrTemplateId.toLowerCase();
  return workflows.find((w) => w.workflow.id === idOrTemplateId || w.templateId.toLowerCase() === wanted);
}
