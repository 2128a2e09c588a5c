/**
 * The canonical hash of a definition: keccak256 of its canonical JSON (`./canonical-json`).
 *
 * What does not change the hash (layout, not meaning):
 * - the order of object keys, whitespace and indentation of the file;
 * - defaults written out or left out (`after: []`, `action: "none"`, `binding: false`, the calendar's own
 *   time zone);
 * - the order of `signedBy` (a set of roles, put in the contract's role order) and of `after` (a set of
 *   stages, sorted by id: the waiting time counts from the last of them, whichever order they are listed in);
 * - the spelling of a duration: "2 weeks" is "14 days", "30 working days" is "30 business days";
 * - the order of the roles of each amendment consent rule, and of the stages a change of terms re-opens.
 *
 * What does (meaning): everything else, the version, titles, descriptions and role labels included (they
 * are what the parties read and agree to), and the order of `stages`: it is the order the parties see and
 * the tie-break of the compiler's topological order, so it decides each stage's index on chain.
 */
import { keccak_256 } from "@noble/hashes/sha3";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils";
import { canonicalJson } from "./canonical-json";
import { getCalendar } from "./calendars";
import { duration, formatDuration } from "./duration";
import { ROLE_NAMES, Workflow, type WorkflowInput } from "./schema";

/** The definition with every default filled and every set and duration written one way (see `canonicalJson`). */
export function normalizeWorkflow(workflow: Workflow): Workflow {
  const roleOrder = (r: (typeof ROLE_NAMES)[number]) => ROLE_NAMES.indexOf(r);
  const roleSet = (roles: (typeof ROLE_NAMES)[number][] | undefined) =>
    roles === undefined ? undefined : [...new Set(roles)].sort((a, b) => roleOrder(a) - roleOrder(b));
  return {
    ...workflow,
    timeZone: workflow.timeZone ?? getCalendar(workflow.calendar).timeZone,
    amendments:
      workflow.amendments === undefined
        ? undefined
        : {
            ...workflow.amendments,
            deadline: roleSet(workflow.amendments.deadline),
            terms: roleSet(workflow.amendments.terms),
            party: roleSet(workflow.amendments.party),
            reopenedByTerms: [...new Set(workflow.amendments.reopenedByTerms)].sort(),
          },
    longStop:
      workflow.longStop === undefined
        ? undefined
        : { ...workflow.longStop, within: formatDuration(duration(workflow.longStop.within)) },
    stages: workflow.stages.map((stage) => ({
      ...stage,
      signedBy: [...new Set(stage.signedBy)].sort((a, b) => roleOrder(a) - roleOrder(b)),
      after: [...new Set(stage.after)].sort(),
      wait: stage.wait === undefined ? undefined : formatDuration(duration(stage.wait)),
      deadline:
        stage.deadline === undefined
          ? undefined
          : { ...stage.deadline, within: formatDuration(duration(stage.deadline.within)) },
    })),
  };
}

export function keccak256Hex(bytes: Uint8Array): string {
  return `0x${bytesToHex(keccak_256(bytes))}`;
}

/**
 * The definition's hash, as registered on chain next to its stages. Takes a definition as written or as
 * parsed; throws a zod error if it does not even have a definition's shape (the meaning is not checked here).
 */
export function hashWorkflow(definition: Workflow | WorkflowInput | unknown): string {
  const workflow = Workflow.parse(definition);
  return keccak256Hex(utf8ToBytes(canonicalJson(normalizeWorkflow(workflow))));
}
