/**
 * Who may see a case and act in it. A principal's role in a case comes from its address among the case's
 * parties (one address may hold several roles). Only the parties and the operator see a case; to anyone
 * else it does not exist (404), so case ids can't be probed. Acting needs a role the action calls for: a
 * party without one hears 403, and the operator, who reads everything, signs off and pays nothing.
 */
import type { CaseProgress } from "../../engine";
import { ROLE_NAMES, type RoleName } from "../../workflows/schema";
import { badRequest, forbidden, notFound } from "../errors";
import type { CachedProgress, ProgressCache } from "../progress-cache";
import type { Principal } from "./principals";

/** The roles `address` holds in the case, in the contract's order. */
export function rolesOf(progress: CaseProgress, address: string): RoleName[] {
  const a = address.toLowerCase();
  return ROLE_NAMES.filter((role) => progress.parties[role].toLowerCase() === a);
}

export function isOperator(principal: Principal): boolean {
  return principal.role === "operator";
}

/**
 * The case (its progress and that progress as JSON) if the principal may see it, else 404: the same answer
 * as for a case that does not exist.
 */
export function visibleCaseEntry(cache: ProgressCache, principal: Principal, caseId: string): CachedProgress {
  const entry = cache.get(caseId);
  if (!entry || (!isOperator(principal) && rolesOf(entry.progress, principal.address).length === 0)) {
    throw notFound(`no case ${caseId}`, { caseId });
  }
  return entry;
}

/** The case's progress if the principal may see it, else 404. */
export function visibleCase(cache: ProgressCache, principal: Principal, caseId: string): CaseProgress {
  return visibleCaseEntry(cache, principal, caseId).progress;
}

/** The operator reads every case but acts in none: 403. */
export function refuseOperator(principal: Principal, what: string): void {
  if (isOperator(principal))
    throw forbidden(`the operator reads cases but does not ${what}`, { reason: "OPERATOR_DOES_NOT_ACT" });
}

/**
 * The role the principal acts as, among `fitting` (the roles the action calls for): its own roles in the
 * case that fit, narrowed by `requested` if given. None fits: 403. More than one and none named: 400.
 */
export function actingRole<R extends RoleName>(
  progress: CaseProgress,
  principal: Principal,
  fitting: readonly R[],
  requested: RoleName | undefined,
  what: string,
): R {
  refuseOperator(principal, what);
  const own = rolesOf(progress, principal.address);
  const candidates = fitting.filter((role) => own.includes(role));
  if (requested !== undefined) {
    if (!candidates.includes(requested as R)) {
      throw forbidden(`as the ${own.join(" and ")} of case ${progress.id} you may not ${what} as the ${requested}`, {
        reason: "ROLE_NOT_ALLOWED",
        roles: own,
        requested,
      });
    }
    return requested as R;
  }
  if (candidates.length === 0) {
    throw forbidden(
      `the ${own.join(" and ")} of case ${progress.id} may not ${what}; it is for the ${fitting.join(" or ")}`,
      { reason: "ROLE_NOT_ALLOWED", roles: own, allowed: fitting },
    );
  }
  if (candidates.length > 1) {
    throw badRequest(
      `your address is the ${candidates.join(" and ")} of case ${progress.id}: name the role to act as`,
      { in: "body", fieldErrors: { role: [`one of ${candidates.join(", ")}`] } },
    );
  }
  return candidates[0];
}

/** The stage of the case with this id, or 404. */
export function stageOf(progress: CaseProgress, stageId: string): CaseProgress["stages"][number] {
  const stage = progress.stages.find((s) => s.id === stageId);
  if (!stage) throw notFound(`case ${progress.id} has no stage "${stageId}"`, { caseId: progress.id, stage: stageId });
  return stage;
}
