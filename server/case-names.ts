/**
 * The parties of a case by their display names, as GET /cases/:id and its event stream send them (`names`:
 * role -> name). The engine knows addresses only; the server knows its principals, each with a name. A role
 * is named by the oldest active principal at its address whose own role is that role, else by the oldest
 * active one at that address (a second token for the same firm keeps the firm's name); a role no principal
 * holds is left out, and the page shows it by its role alone.
 */
import type { CaseProgress } from "../engine";
import { ROLE_NAMES, type RoleName } from "../workflows/schema";
import type { PrincipalStore } from "./auth/principals";

export type PartyNames = Partial<Record<RoleName, string>>;

export type NamedProgress = CaseProgress & { names: PartyNames };

export function partyNames(progress: CaseProgress, principals: PrincipalStore): PartyNames {
  const names: PartyNames = {};
  for (const role of ROLE_NAMES) {
    const holders = principals.activeAt(progress.parties[role]);
    const holder = holders.find((p) => p.role === role) ?? holders[0];
    if (holder) names[role] = holder.name;
  }
  return names;
}

/** The progress with its parties' names, for whoever reads the case. */
export function withNames(progress: CaseProgress, principals: PrincipalStore): NamedProgress {
  return { ...progress, names: partyNames(progress, principals) };
}
