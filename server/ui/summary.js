// The case at a glance: its workflow and status, progress "n of m", the parties (the viewer marked), and the
// escrow: what each payer paid in, whether it is funded and released, and where the money went.

import { h } from "./dom.js";
import { VIEWER_ZONE, formatAmount, roleLabel, sameAddress, shortAddress, zoneName } from "./format.js";

const CASE_STATUS = { open: "Open", completed: "Completed", expired: "Expired", cancelled: "Cancelled" };

function address(value) {
  return h("code", { class: "address", title: value }, shortAddress(value));
}

function payeeName(progress, payee) {
  const role = Object.keys(progress.parties).find((r) => sameAddress(progress.parties[r], payee));
  return role ? roleLabel(role) : "Another payee";
}

function row(term, ...definition) {
  return [h("dt", {}, term), h("dd", {}, ...definition)];
}

/** Which clock the times are in, when the jurisdiction keeps another than the viewer's. */
function zoneLine(jurisdictionZone) {
  if (!jurisdictionZone || jurisdictionZone === VIEWER_ZONE) return null;
  return h(
    "p",
    { class: "zones" },
    `Times are in your time zone (${zoneName(VIEWER_ZONE)}); legal days are counted in ${zoneName(jurisdictionZone)} time, shown beside them.`,
  );
}

export function renderSummary(root, progress, viewerRoles) {
  const { completed, total } = progress.progress;
  const title = progress.workflow.title ?? `Template ${progress.workflow.templateId}`;
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
    h(
      "div",
      { class: "progress-line" },
      h("label", { for: "case-progress", id: "progress-text" }, `${completed} of ${total} stages complete`),
      h("progress", { id: "case-progress", max: total, value: completed }, `${completed} of ${total}`),
    ),
    zoneLine(progress.timeZone),
    h(
      "p",
      { class: "viewer" },
      viewerRoles.length > 0
        ? `You are the ${viewerRoles.map(roleLabel).join(" and ").toLowerCase()} in this case.`
        : "You are not a party to this case; you can follow it but not sign off.",
    ),
  );
}

export function renderParties(root, progress, viewerRoles) {
  root.replaceChildren(
    h("h2", {}, "Parties"),
    h(
      "dl",
      { class: "pairs" },
      Object.entries(progress.parties).flatMap(([role, value]) =>
        row(roleLabel(role), address(value), viewerRoles.includes(role) ? h("span", { class: "you" }, " (you)") : null),
      ),
    ),
  );
}

/** `withdrawn`: payee address -> amount paid out, summed from the history (may be empty). */
export function renderEscrow(root, progress, withdrawn) {
  const { escrow, terms, asset } = progress;
  const money = (amount) => formatAmount(amount, asset);
  const credits = Object.entries(escrow.credits);
  const paidOut = Object.entries(withdrawn);
  root.replaceChildren(
    h("h2", {}, "Escrow"),
    h(
      "dl",
      { class: "pairs" },
      row("Price", money(terms.price)),
      row("Deposit due from the buyer", money(terms.deposit)),
      row("Loan due from the bank", money(terms.loan)),
      row("Paid in by the bank", money(escrow.paidByBank)),
      row("Paid in by the buyer", money(escrow.paidByBuyer)),
      row("Funded", escrow.funded ? "Yes, all in escrow" : "Not yet"),
      row("Released", escrow.released ? "Yes, to the payees" : "Not yet"),
      asset === "0x0000000000000000000000000000000000000000" ? null : row("Asset", address(asset)),
    ),
    h("h3", {}, "Where the money went"),
    credits.length + paidOut.length === 0
      ? h("p", {}, "Nothing has been paid out of the escrow yet.")
      : h(
          "ul",
          { class: "payouts" },
          credits.map(([payee, amount]) =>
            h(
              "li",
              {},
              `${payeeName(progress, payee)} `,
              address(payee),
              `: ${money(amount)} credited, not yet withdrawn`,
            ),
          ),
          paidOut.map(([payee, amount]) =>
            h("li", {}, `${payeeName(progress, payee)} `, address(payee), `: ${money(amount)} withdrawn`),
          ),
        ),
  );
}
