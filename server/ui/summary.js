// The case at a glance: its workflow and status, where things stand (standing.js), progress "n of m", the
// viewer's part in it, the switch that shows the technical details (hashes, blocks, addresses) everywhere on
// the page, and the parties by name.

import { h } from "./dom.js";
import { VIEWER_ZONE, roleLabel, shortAddress, zoneName } from "./format.js";
import { renderStanding } from "./standing.js";

const CASE_STATUS = { open: "Open", completed: "Completed", expired: "Expired", cancelled: "Cancelled" };

function address(value) {
  return h("code", { class: "address", title: value }, value);
}

/** Which clock the times are in, when the jurisdiction keeps another than the viewer's. */
export function renderZones(root, jurisdictionZone) {
  root.replaceChildren(
    !jurisdictionZone || jurisdictionZone === VIEWER_ZONE
      ? ""
      : h(
          "p",
          { class: "zones" },
          `Times are in your time zone (${zoneName(VIEWER_ZONE)}); legal days are counted in ${zoneName(jurisdictionZone)} time, shown beside them.`,
        ),
  );
}

/**
 * `context`: what standing.js needs (`workflow`, `typical`, `currency`, `withdrawn`); `technical`: whether the
 * technical details are shown; `onTechnical`: the switch's handler.
 */
export function renderSummary(root, progress, viewerRoles, { context, nowMs, technical, onTechnical }) {
  const { completed, total } = progress.progress;
  const title = progress.workflow.title ?? `Template ${progress.workflow.templateId}`;
  const standing = h("div", { id: "standing", class: "standing" });
  renderStanding(standing, progress, viewerRoles, context, nowMs);
  root.replaceChildren(
    h("h2", { id: "case-title", tabindex: "-1" }, title),
    h(
      "p",
      { class: "case-line" },
      `Case ${progress.id} · `,
      h(
        "span",
        { class: `case-status case-status--${progress.status}` },
        CASE_STATUS[progress.status] ?? progress.status,
      ),
    ),
    standing,
    h(
      "div",
      { class: "progress-line" },
      h("label", { for: "case-progress", id: "progress-text" }, `${completed} of ${total} stages complete`),
      h("progress", { id: "case-progress", max: total, value: completed }, `${completed} of ${total}`),
    ),
    h(
      "div",
      { class: "summary-foot" },
      h(
        "p",
        { class: "viewer" },
        viewerRoles.length > 0
          ? `You are the ${viewerRoles.map(roleLabel).join(" and ").toLowerCase()} in this case.`
          : "You are not a party to this case; you can follow it but not sign off.",
      ),
      h(
        "button",
        {
          type: "button",
          id: "technical-toggle",
          class: "secondary technical-toggle",
          "aria-expanded": technical ? "true" : "false",
          onclick: onTechnical,
        },
        technical ? "Hide technical details" : "Show technical details",
      ),
    ),
    h(
      "p",
      { class: "technical" },
      "On chain: case ",
      progress.id,
      ", template ",
      h("code", { class: "hash" }, progress.workflow.templateId),
      `, as of block ${progress.updatedAt.block}.`,
    ),
  );
}

export function renderParties(root, progress, viewerRoles) {
  root.replaceChildren(
    h("h2", {}, "Parties"),
    h(
      "dl",
      { class: "pairs" },
      Object.entries(progress.parties).flatMap(([role, value]) => [
        h("dt", {}, roleLabel(role)),
        h(
          "dd",
          { "data-party": role },
          progress.names?.[role] ?? h("span", { class: "unnamed" }, `not named here (${shortAddress(value)})`),
          viewerRoles.includes(role) ? h("span", { class: "you" }, " (you)") : null,
          h("span", { class: "technical party-address" }, " ", address(value)),
        ),
      ]),
    ),
  );
}
