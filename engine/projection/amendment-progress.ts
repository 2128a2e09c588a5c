/**
 * A case's amendments as the API shows them (`CaseProgress.amendments`): what each changes in the case's own
 * words (stage ids, role names, instants), its status at chain time `now`, and whose consent it awaits.
 */
import { ROLE_NAMES, type RoleName } from "../../workflows/schema";
import { indexesOf, type AmendmentModel, type CaseModel } from "../../workflows/case-rules";
import type { AmendmentChange, AmendmentRecord } from "./amendment-events";
import type { AmendmentProgress } from "./progress-schema";

function roleNames(mask: number): RoleName[] {
  return indexesOf(mask)
    .filter((r) => r < ROLE_NAMES.length)
    .map((r) => ROLE_NAMES[r]);
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/**
 * The status of an amendment at `now`: whether the contract would take a consent to it (see
 * `_consentRefusal`), and if not, what stopped it first: a proposal that expired before another amendment
 * applied stays "expired".
 */
export function amendmentStatus(
  model: CaseModel,
  rules: AmendmentModel,
  supersededAt: number | null,
  now: number,
): AmendmentProgress["status"] {
  if (rules.applied) return "applied";
  if (supersededAt !== null) return rules.expiresAt < supersededAt ? "expired" : "superseded";
  if (now > rules.expiresAt) return "expired";
  if (model.status !== "open") return "closed";
  return "open";
}

export function amendmentsProgressOf(
  model: CaseModel,
  records: readonly AmendmentRecord[] | undefined,
  stageIds: readonly string[],
  now: number,
): AmendmentProgress[] {
  return (records ?? []).map((record, i) => {
    const rules = (model.amendments ?? [])[i];
    // The amendment that applied to the same terms version ended this one's chance.
    const winner = (model.amendments ?? []).findIndex((x, j) => j !== i && x.applied && x.version === rules.version);
    const supersededAt = winner < 0 ? null : (records?.[winner]?.appliedAt ?? null);
    const status = amendmentStatus(model, rules, supersededAt, now);
    return {
      number: record.number,
      kind: rules.kind,
      status,
      change: changeProgress(record.change, stageIds),
      proposedBy: ROLE_NAMES[record.proposer],
      proposedAt: iso(record.proposedAt),
      expiresAt: iso(rules.expiresAt),
      version: rules.version,
      requires: roleNames(rules.required),
      consented: roleNames(rules.consents),
      awaiting: status === "open" ? roleNames(rules.required & ~rules.consents) : [],
      appliedAt: record.appliedAt === null ? null : iso(record.appliedAt),
      tx: record.proposedTx,
      appliedTx: record.appliedTx,
      replacedTermsHash: record.replacedTermsHash,
    };
  });
}

function changeProgress(change: AmendmentChange, stageIds: readonly string[]): AmendmentProgress["change"] {
  switch (change.kind) {
    case "deadline":
      return {
        kind: "deadline",
        stage: stageIds[change.stage] ?? `stage-${change.stage}`,
        deadline: change.longStop ? "longStop" : "own",
        to: iso(change.at),
      };
    case "terms":
      return {
        kind: "terms",
        to: { price: change.price, deposit: change.deposit, loan: change.loan },
        from: { ...change.before },
      };
    case "party":
      return { kind: "party", role: ROLE_NAMES[change.role], to: change.account, from: change.previous };
  }
}
