/**
 * The legal guards of the workflows the engine knows, by template id, and the moment the engine may call
 * `advance` for a stage: the later of the contract's (`availableAt`) and the law's (the legal guard's).
 * A template that no workflow here compiles to has no legal guard: the contract's floor is all there is.
 */
import type { CompiledWorkflow } from "../../workflows";
import { availableAt, type CaseModel } from "../../workflows/case-rules";
import { legalSecondOf } from "../../workflows/case-moments";
import { createLegalGuard, type LegalGuard } from "../../workflows/legal-guard";

export class LegalGuards {
  private readonly byTemplate = new Map<string, LegalGuard>();

  constructor(workflows: readonly CompiledWorkflow[]) {
    for (const w of workflows) this.byTemplate.set(w.templateId.toLowerCase(), createLegalGuard(w));
  }

  of(templateId: string): LegalGuard | undefined {
    return this.byTemplate.get(templateId.toLowerCase());
  }

  /**
   * The chain second from which both the contract and the law let time complete `stage`, or null while a
   * prerequisite is open. The law's moment is rounded up: the contract compares whole seconds.
   */
  advanceMomentOf(templateId: string, model: CaseModel, stage: number): number | null {
    const contract = availableAt(model, stage);
    if (contract === null) return null;
    const legal = legalSecondOf(this.of(templateId), model, stage);
    return typeof legal === "number" ? Math.max(contract, legal) : contract;
  }
}
