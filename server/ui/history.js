// The case's on-chain events (GET /cases/:id/history), each in words with its block, time and transaction,
// and what was withdrawn, which the progress does not keep (it holds only what is still to withdraw).

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
  switch (entry.event ?? entry.name) {
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
          `block ${entry.block ?? entry.blockNumber}`,
          time ? [" · ", h("time", { datetime: time }, formatMoment(time))] : null,
        ),
        tx ? h("code", { class: "hash" }, tx) : null,
      );
    }),
  );
}
