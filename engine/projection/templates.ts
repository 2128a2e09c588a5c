/**
 * What the projection needs to know about a case's template: its stages' ids and titles (from the compiled
 * workflow of the same template id) and the on-chain rules. A template that no workflow here compiles to (one
 * registered by someone else) still projects: its rules come from `templateStages` on chain, and its stages
 * are named "stage-0", "stage-1"...
 */
import type { Provider } from "ethers";
import { type CompiledWorkflow, type StageRule, loadTemplates } from "../../workflows";
import type { AmendmentRules } from "../../workflows/compile";
import { connectEscrow } from "../chain/escrow";

export interface TemplateInfo {
  templateId: string;
  /** Null for a template that no workflow definition here compiles to. */
  workflow: { id: string; version: number; title: string } | null;
  stages: Array<{ id: string; title: string }>;
  rules: StageRule[];
  /** Who must consent to each kind of amendment, and what a change of terms re-opens (absent in a store written before them). */
  amendmentRules?: AmendmentRules;
}

export function templateInfoOf(compiled: CompiledWorkflow): TemplateInfo {
  return {
    templateId: compiled.templateId.toLowerCase(),
    workflow: { id: compiled.workflow.id, version: compiled.workflow.version, title: compiled.workflow.title },
    stages: compiled.details.map((d) => ({ id: d.id, title: d.title })),
    rules: compiled.stages.map((r) => ({ ...r })),
    amendmentRules: { ...compiled.amendmentRules },
  };
}

export function genericTemplateInfo(
  templateId: string,
  rules: StageRule[],
  amendmentRules?: AmendmentRules,
): TemplateInfo {
  return {
    templateId: templateId.toLowerCase(),
    workflow: null,
    stages: rules.map((_, i) => ({ id: `stage-${i}`, title: `Stage ${i}` })),
    rules,
    ...(amendmentRules ? { amendmentRules } : {}),
  };
}

/** Template ids to their info: the compiled workflows up front, unknown ids read from the chain once. */
export class TemplateCatalog {
  private readonly known = new Map<string, TemplateInfo>();

  constructor(
    private readonly provider: Provider,
    private readonly escrowAddress: string,
    workflows: readonly CompiledWorkflow[] = loadTemplates(),
  ) {
    for (const w of workflows) this.add(templateInfoOf(w));
  }

  add(info: TemplateInfo): void {
    this.known.set(info.templateId.toLowerCase(), info);
  }

  /** The info, if known already (synchronous: used inside the store's transactions). */
  get(templateId: string): TemplateInfo | undefined {
    return this.known.get(templateId.toLowerCase());
  }

  /** Makes sure the template is known, reading its rules from the chain if no workflow compiles to it. */
  async ensure(templateId: string): Promise<TemplateInfo> {
    const found = this.get(templateId);
    if (found) return found;
    const escrow = connectEscrow(this.escrowAddress, this.provider);
    const onChain = await escrow.templateStages(templateId);
    const rules: StageRule[] = onChain.map((r) => ({
      roles: Number(r.roles),
      prerequisites: Number(r.prerequisites),
      waitSeconds: Number(r.waitSeconds),
      deadlineSeconds: Number(r.deadlineSeconds),
      deadlineAnchor: Number(r.deadlineAnchor),
      action: Number(r.action) as StageRule["action"],
      binding: r.binding,
      longStopSeconds: Number(r.longStopSeconds),
    }));
    const onChainRules = await escrow.templateAmendmentRules(templateId);
    const info = genericTemplateInfo(templateId, rules, {
      deadlineConsent: Number(onChainRules.deadlineConsent),
      termsConsent: Number(onChainRules.termsConsent),
      partyConsent: Number(onChainRules.partyConsent),
      reopenedByTerms: Number(onChainRules.reopenedByTerms),
    });
    this.add(info);
    return info;
  }
}
