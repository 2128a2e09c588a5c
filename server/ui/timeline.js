// The stages of a case as an ordered list: status in words (not only colour), who signed off and who is
// awaited, the legal moments (possible from, deadline) with live countdowns in the viewer's and the
// jurisdiction's time, the completing transaction, and a "Sign off" button on each stage that awaits the viewer
// and that the API would accept a sign-off of now ("Sign off early" on a stage still locked), or else what
// the stage waits for. Completed stages are folded away behind "n stages done" (renderFold) until opened;
// each party is named as the server knows it (people.js); the contract's own view (the completing
// transaction, its floor and ceiling) is a technical detail.

import { h } from "./dom.js";
import { formatMoment, formatWaitsFor, roleLabel } from "./format.js";
import { who } from "./people.js";

const FINISHED = new Set(["completed", "expired", "cancelled"]);

const STATUS_TEXT = {
  locked: { glyph: "–", label: "Locked", hint: "waits for earlier stages" },
  open: { glyph: "○", label: "Open", hint: "awaiting sign-offs" },
  "waiting:time": { glyph: "◷", label: "Waiting for time", hint: "the waiting period has not ended yet" },
  "waiting:funds": { glyph: "◷", label: "Waiting for funds", hint: "the escrow is not funded yet" },
  completed: { glyph: "✓", label: "Completed", hint: "" },
  overdue: { glyph: "!", label: "Overdue", hint: "its deadline passed" },
  expired: { glyph: "×", label: "Expired", hint: "the case expired" },
  cancelled: { glyph: "×", label: "Cancelled", hint: "the case was cancelled" },
};

function statusKey(stage) {
  return stage.status === "waiting" ? `waiting:${stage.waitingFor ?? "time"}` : stage.status;
}

/** Whether `role` may sign this stage off now: required, not yet signed, and the stage still open to it. */
export function awaitsRole(caseStatus, stage, role) {
  return (
    caseStatus === "open" &&
    !FINISHED.has(stage.status) &&
    stage.requires.includes(role) &&
    !stage.signedOff.includes(role)
  );
}

/**
 * Whether the API would take a sign-off of the stage now (`acceptsSignOffs`, the legal guard's verdict). A
 * server without the field (older than the page) is taken at its word when it answers: the button stays.
 */
export function acceptsSignOffs(stage) {
  return stage.acceptsSignOffs ?? true;
}

function hasAwaitedRole(stage) {
  return stage.requires.some((role) => !stage.signedOff.includes(role));
}

function statusHint(progress, stage, status) {
  if (stage.status === "locked" && stage.acceptsSignOffs === true && progress.status === "open") {
    return `${status.hint}; an early sign-off is accepted already`;
  }
  return status.hint;
}

/** "Not open to sign-offs yet: waits for: Closing Disclosure, then 3 business days", where the API says so. */
function waitsForLine(progress, stage) {
  if (progress.status !== "open" || FINISHED.has(stage.status) || acceptsSignOffs(stage) || !hasAwaitedRole(stage))
    return null;
  const what = stage.waitsFor
    ? `waits for: ${formatWaitsFor(stage.waitsFor, progress.timeZone ?? null)}`
    : "it is too early";
  return h("p", { class: "waits-for" }, `Not open to sign-offs yet: ${what}.`);
}

function countdown(iso, { before, after }) {
  // The text is filled in by the page's one-second ticker (app.js), from the chain's estimated time.
  return h("span", { class: "countdown", "data-until": iso, "data-before": before, "data-after": after });
}

function rolesList(progress, stage, viewerRoles) {
  if (stage.requires.length === 0) return h("p", { class: "roles-none" }, "Completes by time alone; nobody signs.");
  return h(
    "ul",
    { class: "roles", "aria-label": "Sign-offs" },
    stage.requires.map((role) => {
      const signed = stage.signedOff.includes(role);
      return h(
        "li",
        { class: signed ? "role role--signed" : "role role--awaited", "data-role": role },
        h("span", { class: "role-mark", "aria-hidden": "true" }, signed ? "✓" : "○"),
        `${who(progress, role, viewerRoles)}: `,
        h("strong", {}, signed ? "signed off" : "awaited"),
      );
    }),
  );
}

function timing(stage, zone) {
  const chain = (iso) => h("time", { datetime: iso }, formatMoment(iso));
  const lines = [];
  if (stage.availableAt && !FINISHED.has(stage.status)) {
    lines.push(
      h(
        "p",
        { class: "timing timing--available" },
        "Possible from ",
        h("time", { datetime: stage.availableAt }, formatMoment(stage.availableAt, zone, { edge: "start" })),
        " ",
        countdown(stage.availableAt, { before: "(in {})", after: "(the waiting period is over)" }),
      ),
    );
  }
  if (stage.deadline) {
    const open = !FINISHED.has(stage.status);
    lines.push(
      h(
        "p",
        { class: "timing timing--deadline" },
        "Deadline ",
        h("time", { datetime: stage.deadline }, formatMoment(stage.deadline, zone)),
        open ? " " : "",
        open ? countdown(stage.deadline, { before: "({} left)", after: "(passed)" }) : "",
      ),
    );
  }
  if (stage.completedAt) {
    lines.push(
      h(
        "p",
        { class: "timing timing--completed" },
        "Completed ",
        h("time", { datetime: stage.completedAt }, formatMoment(stage.completedAt)),
      ),
    );
  }
  if (stage.tx) {
    lines.push(
      h("p", { class: "tx technical" }, "Transaction ", h("code", { class: "hash", "data-tx": stage.tx }, stage.tx)),
    );
  }
  if (stage.contractFloor || stage.contractCeiling) {
    lines.push(
      h(
        "p",
        { class: "contract-bounds technical" },
        "The contract's own bounds: ",
        stage.contractFloor ? ["no sooner than ", chain(stage.contractFloor)] : null,
        stage.contractFloor && stage.contractCeiling ? ", " : null,
        stage.contractCeiling ? ["no later than ", chain(stage.contractCeiling)] : null,
        " (the law's moments above are the ones that count).",
      ),
    );
  }
  return lines;
}

function signOffAction(progress, stage, viewerRoles, actions, onSignOff) {
  const role = acceptsSignOffs(stage) ? viewerRoles.find((r) => awaitsRole(progress.status, stage, r)) : undefined;
  const state = actions[stage.id];
  const children = [];
  if (role) {
    const busy = state?.kind === "pending" || state?.kind === "submitted";
    // On a locked stage the sign-off is an early one: it counts once the earlier stages complete. Not the
    // page's primary action, and it says so.
    const early = stage.status === "locked";
    const idle = early ? "Sign off early" : "Sign off";
    children.push(
      h(
        "button",
        {
          type: "button",
          class: early ? "sign-off sign-off--early secondary" : "sign-off",
          "data-stage": stage.id,
          "aria-describedby": early ? `stage-${stage.id}-early` : null,
          disabled: busy,
          onclick: () => onSignOff(stage, role),
        },
        busy ? (state.kind === "pending" ? "Signing off…" : "Submitted") : idle,
        h("span", { class: "visually-hidden" }, ` ${stage.title} as ${roleLabel(role)}`),
      ),
    );
    if (early && !busy) {
      children.push(
        h(
          "p",
          { class: "early-note", id: `stage-${stage.id}-early` },
          "An early sign-off: it counts once the earlier stages complete.",
        ),
      );
    }
  }
  if (state?.text) children.push(h("p", { class: `action-result action-result--${state.kind}` }, state.text));
  return children.length > 0 ? h("div", { class: "actions" }, children) : null;
}

/**
 * The list items for `progress.stages`. `actions` holds each stage's sign-off state ({kind, text}) so a message
 * outlives the re-render that the next event causes.
 */
export function renderTimeline(list, progress, { viewerRoles, actions, onSignOff, folded = false }) {
  const items = progress.stages.map((stage, index) => {
    const status = STATUS_TEXT[statusKey(stage)] ?? { glyph: "?", label: stage.status, hint: "" };
    const headingId = `stage-${index}-title`;
    return h(
      "li",
      {
        class: `stage stage--${stage.status}`,
        "data-stage": stage.id,
        "data-status": stage.status,
        "aria-labelledby": headingId,
        hidden: folded && stage.status === "completed",
        // Focusable by script only: where the focus goes when the button just used is replaced.
        tabindex: "-1",
      },
      h(
        "div",
        { class: "stage-head" },
        h("h3", { id: headingId }, h("span", { class: "stage-number" }, `${index + 1}.`), ` ${stage.title}`),
        h(
          "p",
          { class: `badge badge--${stage.status}` },
          h("span", { "aria-hidden": "true" }, status.glyph),
          " ",
          h("span", { class: "status-label" }, status.label),
        ),
      ),
      status.hint ? h("p", { class: "status-hint" }, statusHint(progress, stage, status)) : null,
      rolesList(progress, stage, viewerRoles),
      waitsForLine(progress, stage),
      timing(stage, progress.timeZone ?? null),
      signOffAction(progress, stage, viewerRoles, actions, onSignOff),
    );
  });
  list.replaceChildren(...items);
}

/** "5 stages done: show them", a button that opens and folds the completed stages; nothing while none is done. */
export function renderFold(root, progress, { folded, onToggle }) {
  const done = progress.stages.filter((stage) => stage.status === "completed").length;
  if (done === 0) {
    root.replaceChildren();
    return;
  }
  root.replaceChildren(
    h(
      "button",
      {
        type: "button",
        id: "fold-done",
        class: "secondary fold",
        "aria-expanded": folded ? "false" : "true",
        "aria-controls": "timeline",
        onclick: onToggle,
      },
      h("span", { "aria-hidden": "true" }, "✓ "),
      `${done} ${done === 1 ? "stage" : "stages"} done: ${folded ? "show" : "hide"} ${done === 1 ? "it" : "them"}`,
    ),
  );
}
