// The case's on-chain events (GET /cases/:id/history), each in words with its time (its block and
// transaction as technical details);
// what was withdrawn, which the progress does not keep (it holds only what is still to withdraw); and the
// versions of the case's terms: as opened, then each amendment that applied, with those that did not folded.

import { changeWords } from "./amendments.js";
import { h } from "./dom.js";
import { formatAmount, formatMoment, roleLabel, sameAddress } from "./format.js";

// The contract's Role enum, in its order.
const ROLES = ["bank", "lawyer", "buyer", "seller"];

/** The entries, whether the server answers with an array or with { events: [...] }. */
export function historyEntries(body) {
  if (Array.isArray(body)) return body;
  if (body && Array.isArray(body.events)) return body.events;
  if (body && Array.isArray(body.history)) return body.history;
  return [];
}

/** Payee address -> total withdrawn, from the Withdrawn events. */
export function withdrawnByPayee(entries) {
  const totals = {};
  for (const entry of entries) {
    if ((entry.event ?? entry.name) !== "Withdrawn") continue;
    const { payee, amount } = entry.args ?? {};
    if (typeof payee !== "string") continue;
    totals[payee] = (BigInt(totals[payee] ?? "0") + BigInt(amount ?? "0")).toString();
  }
  return totals;
}

function describe(entry, progress) {
  const args = entry.args ?? {};
  const stage = progress.stages[Number(args.stage)]?.title ?? `stage ${args.stage}`;
  const role = roleLabel(ROLES[Number(args.role)] ?? `role ${args.role}`);
  const money = (amount) => formatAmount(String(amount ?? "0"), progress.asset);
  const payee = () => {
    const party = Object.keys(progress.parties).find((r) => sameAddress(progress.parties[r], args.payee));
    return party ? roleLabel(party) : String(args.payee);
  };
  const amendment = progress.amendments?.find((a) => a.number === Number(args.amendment));
  const proposal = `proposal ${args.amendment}`;
  switch (entry.event ?? entry.name) {
    case "AmendmentProposed":
      return [
        `${roleLabel(ROLES[Number(args.proposer)] ?? "A party")} proposed a change (${proposal})`,
        amendment ? [": ", changeWords(amendment, progress)] : null,
      ];
    case "AmendmentConsented":
      return `${role} agreed to ${proposal}`;
    case "AmendmentConsentWithdrawn":
      return `${role} withdrew its consent to ${proposal}`;
    case "AmendmentConsentSkipped":
      return `${role}'s consent to ${proposal} not applied`;
    case "AmendmentApplied":
      return [
        `Terms version ${args.version}`,
        amendment ? [": ", lowerFirst(changeWords(amendment, progress, "applied"))] : null,
      ];
    case "StageReopened":
      return `Re-opened for new sign-offs: ${stage}`;
    case "PartyReplaced":
      return `${role}'s address changed to ${args.account}`;
    case "EscrowNoLongerFunded":
      return "Escrow no longer funded: a share grew";
    case "CaseOpened":
      return "Case opened";
    case "SignedOff":
      return `${role} signed off: ${stage}`;
    case "SignOffRevoked":
      return `${role} revoked the sign-off: ${stage}`;
    case "SignOffSkipped":
      return `${role}'s sign-off not applied: ${stage}`;
    case "StageCompleted":
      return `Completed: ${stage}`;
    case "StageOverdue":
      return `Overdue: ${stage}`;
    case "CaseCompleted":
      return "Case completed";
    case "CaseExpired":
      return `Case expired at: ${stage}`;
    case "CancellationVoted":
      return `${role} voted to cancel`;
    case "CaseCancelled":
      return "Case cancelled";
    case "Deposited":
      return `${roleLabel(ROLES[Number(args.payer)] ?? "payer")} paid in ${money(args.amount)}`;
    case "EscrowFunded":
      return "Escrow funded";
    case "Credited":
      return `${payee()} credited ${money(args.amount)}`;
    case "Withdrawn":
      return `${payee()} withdrew ${money(args.amount)}`;
    default:
      return String(entry.event ?? entry.name ?? "Event");
  }
}

/** "The deadline …" as "the deadline …", after a colon. */
function lowerFirst([first, ...rest]) {
  return [typeof first === "string" ? first.charAt(0).toLowerCase() + first.slice(1) : first, ...rest];
}

const NOT_APPLIED = { expired: "lapsed", superseded: "superseded", closed: "closed with the case" };

/**
 * Version 0 as opened (when the history has its opening), then each amendment that applied with the day it
 * was agreed; the proposals that did not apply (lapsed, superseded, closed) folded away beneath.
 */
export function renderVersions(root, entries, progress) {
  const zone = progress.timeZone ?? null;
  const opened = entries.find((entry) => (entry.event ?? entry.name) === "CaseOpened")?.time ?? null;
  const amendments = progress.amendments ?? [];
  const applied = amendments.filter((a) => a.status === "applied").sort((a, b) => a.version - b.version);
  const notApplied = amendments.filter((a) => NOT_APPLIED[a.status]);
  const moment = (iso) => h("time", { datetime: iso }, formatMoment(iso, zone));
  root.replaceChildren(
    h("h3", {}, "Versions of the terms"),
    h(
      "ol",
      { class: "versions-list", start: "0" },
      h("li", { "data-version": "0" }, "Version 0: as opened", opened ? [", ", moment(opened)] : null),
      applied.map((a) =>
        h(
          "li",
          { "data-version": a.version + 1 },
          `Version ${a.version + 1}, agreed `,
          moment(a.appliedAt),
          ": ",
          lowerFirst(changeWords(a, progress, "applied")),
        ),
      ),
    ),
    notApplied.length === 0
      ? "" // Not null: replaceChildren would write it as the text "null".
      : h(
          "details",
          { class: "lapsed" },
          h(
            "summary",
            {},
            `${notApplied.length} ${notApplied.length === 1 ? "proposal that did" : "proposals that did"} not apply`,
          ),
          h(
            "ul",
            {},
            notApplied.map((a) =>
              h(
                "li",
                { "data-amendment": a.number },
                `Proposal ${a.number}, ${NOT_APPLIED[a.status]}`,
                a.status === "expired" ? [" ", moment(a.expiresAt)] : null,
                ": ",
                lowerFirst(changeWords(a, progress, "lapsed")),
              ),
            ),
          ),
        ),
  );
}

export function renderHistory(list, entries, progress) {
  if (entries.length === 0) {
    list.replaceChildren(h("li", {}, "No events yet."));
    return;
  }
  list.replaceChildren(
    ...entries.map((entry) => {
      const tx = entry.tx ?? entry.txHash;
      const time = entry.time ?? null;
      return h(
        "li",
        { class: "event", "data-event": entry.event ?? entry.name },
        h("span", { class: "event-what" }, describe(entry, progress)),
        h(
          "span",
          { class: "event-where" },
          time ? h("time", { datetime: time }, formatMoment(time)) : null,
          h("span", { class: "technical" }, `${time ? " · " : ""}block ${entry.block ?? entry.blockNumber}`),
        ),
        tx ? h("code", { class: "hash technical" }, tx) : null,
      );
    }),
  );
}
