// Where a case stands, worked out from its progress with no DOM: the stages under way now, who they await,
// the next of the law's moments (a stage's `availableAt` or `deadline`; never the contract's floor or
// ceiling), and an estimated finish from the template's typical stage durations (GET
// /workflows/:id/typical-durations) added up along the workflow's graph.

const DAY_MS = 86_400_000;
const FINISHED = new Set(["completed", "expired", "cancelled"]);

/** The stages under way: open to sign-offs, or signed and waiting for time or money. */
export function currentStages(progress) {
  if (progress.status !== "open") return [];
  return progress.stages.filter((stage) => stage.status === "open" || stage.status === "waiting");
}

/**
 * Whom the stages under way wait for, in the contract's order of roles: `{ role, for: "sign-off" | "funds",
 * stages }`, and whether any waits for time alone (`time`: the earliest moment it may go on, or null).
 */
export function awaited(progress) {
  const byRole = new Map();
  let time = null;
  let timeWaits = false;
  const add = (role, kind, stage) => {
    const entry = byRole.get(role) ?? { role, for: kind, stages: [] };
    entry.stages.push(stage);
    byRole.set(role, entry);
  };
  for (const stage of currentStages(progress)) {
    if (stage.status === "open") {
      for (const role of stage.requires) if (!stage.signedOff.includes(role)) add(role, "sign-off", stage);
    } else if (stage.waitingFor === "funds") {
      const { escrow, terms } = progress;
      if (BigInt(escrow.paidByBuyer) < BigInt(terms.deposit)) add("buyer", "funds", stage);
      if (BigInt(escrow.paidByBank) < BigInt(terms.loan)) add("bank", "funds", stage);
    } else {
      timeWaits = true;
      if (stage.availableAt && (time === null || Date.parse(stage.availableAt) < Date.parse(time)))
        time = stage.availableAt;
    }
  }
  const order = Object.keys(progress.parties);
  const roles = [...byRole.values()].sort((a, b) => order.indexOf(a.role) - order.indexOf(b.role));
  return { roles, waitsForTime: timeWaits, time };
}

/**
 * The next of the law's moments still to come, after `nowMs`, among the stages not finished:
 * `{ at, kind: "deadline" | "available", stage }`, or null when none is running yet.
 */
export function nextLegalDate(progress, nowMs) {
  let next = null;
  for (const stage of progress.stages) {
    if (FINISHED.has(stage.status)) continue;
    for (const [field, kind] of [
      ["availableAt", "available"],
      ["deadline", "deadline"],
    ]) {
      const at = stage[field];
      if (!at || Date.parse(at) <= nowMs) continue;
      if (next === null || Date.parse(at) < Date.parse(next.at)) next = { at, kind, stage };
    }
  }
  return next;
}

/**
 * When the case may finish, as an ISO moment, or null (a case not open, or no typical durations). Each stage
 * not finished ends its typical length after the latest of its earlier stages' ends (those completed: when
 * they did), but never before now, nor before its own legal `availableAt`. `workflow` is GET /workflows/:id
 * (each stage's `prerequisites`), `typical` is GET /workflows/:id/typical-durations.
 */
export function estimateFinish(progress, workflow, typical, nowMs) {
  if (progress.status !== "open" || !workflow || !typical) return null;
  const definitions = new Map(workflow.stages.map((stage) => [stage.id, stage]));
  const ends = new Map();
  const endOf = (stage, seen = new Set()) => {
    if (ends.has(stage.id)) return ends.get(stage.id);
    if (stage.completedAt) {
      ends.set(stage.id, Date.parse(stage.completedAt));
      return ends.get(stage.id);
    }
    if (seen.has(stage.id)) return nowMs; // A cycle: the template's validation forbids one; do not loop.
    seen.add(stage.id);
    const before = (definitions.get(stage.id)?.prerequisites ?? [])
      .map((id) => progress.stages.find((s) => s.id === id))
      .filter(Boolean)
      .map((s) => endOf(s, seen));
    const ready = before.length > 0 ? Math.max(...before) : nowMs;
    const days = typical.stages[stage.id]?.days ?? 0;
    let end = Math.max(nowMs, ready + days * DAY_MS);
    if (stage.availableAt) end = Math.max(end, Date.parse(stage.availableAt));
    ends.set(stage.id, end);
    return end;
  };
  const all = progress.stages.map((stage) => endOf(stage));
  return new Date(Math.max(...all)).toISOString();
}

/** When the case completed: its last stage's completion, or null. */
export function completedAt(progress) {
  const times = progress.stages.map((stage) => stage.completedAt).filter(Boolean);
  return times.length > 0 ? times.reduce((a, b) => (Date.parse(a) > Date.parse(b) ? a : b)) : null;
}

/** "in about 3 weeks", "in about 5 days", "within a day": how far `iso` is from `nowMs`, in words. */
export function roughlyIn(iso, nowMs) {
  const days = (Date.parse(iso) - nowMs) / DAY_MS;
  if (days < 1) return "within a day";
  if (days < 14) return `in about ${Math.round(days)} ${Math.round(days) === 1 ? "day" : "days"}`;
  if (days < 60) return `in about ${Math.round(days / 7)} weeks`;
  return `in about ${Math.round(days / 30.4)} months`;
}
