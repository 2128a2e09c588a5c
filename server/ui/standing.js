// Where things stand, at the top of the case: the stages under way, whom they wait for (by name and role),
// the next of the law's dates, and an estimated finish from the template's typical durations, with where the
// estimate comes from; or, once the case has ended, what was achieved, when, and where the money went.

import { h } from "./dom.js";
import { formatAmount, formatMoment } from "./format.js";
import { awaited, completedAt, currentStages, estimateFinish, nextLegalDate, roughlyIn } from "./estimate.js";
import { moneyWords, payouts, payoutWords } from "./money.js";
import { listOf, who, whoInSentence } from "./people.js";

function fact(name, term, ...definition) {
  return h("div", { class: "fact", "data-fact": name }, h("dt", {}, term), h("dd", {}, ...definition));
}

function moment(iso, zone, edge = "end") {
  return h("time", { datetime: iso }, formatMoment(iso, zone, { edge }));
}

function awaitedWords(progress, viewerRoles) {
  const { roles, waitsForTime, time } = awaited(progress);
  const zone = progress.timeZone ?? null;
  const parts = [];
  const signers = roles.filter((r) => r.for === "sign-off").map((r) => whoInSentence(progress, r.role, viewerRoles));
  if (signers.length > 0) parts.push(`${listOf(signers)} to sign off`);
  for (const payer of roles.filter((r) => r.for === "funds")) {
    const due = payer.role === "buyer" ? progress.terms.deposit : progress.terms.loan;
    const paid = payer.role === "buyer" ? progress.escrow.paidByBuyer : progress.escrow.paidByBank;
    const rest = (BigInt(due) - BigInt(paid)).toString();
    parts.push(`${whoInSentence(progress, payer.role, viewerRoles)} to pay in ${formatAmount(rest, progress.asset)}`);
  }
  const words = [listOf(parts)].filter(Boolean);
  if (waitsForTime) {
    const wait = time
      ? ["the law's waiting period, until ", moment(time, zone, "start")]
      : ["the law's waiting period"];
    return parts.length > 0 ? [words[0], "; and ", ...wait] : wait;
  }
  return parts.length > 0 ? words : ["nobody just now"];
}

function legalDateWords(progress, nowMs) {
  const next = nextLegalDate(progress, nowMs);
  if (!next) return ["none running yet: the law's dates start as the stages before them complete"];
  const zone = progress.timeZone ?? null;
  return next.kind === "deadline"
    ? [moment(next.at, zone), `: ${next.stage.title} must be done by then`]
    : [moment(next.at, zone, "start"), `: ${next.stage.title} may go ahead from then`];
}

function estimateWords(progress, context, nowMs) {
  const { workflow, typical } = context;
  const finish = estimateFinish(progress, workflow, typical, nowMs);
  if (!finish) return [typical === undefined ? "working it out…" : "not known for this workflow"];
  const day = new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", year: "numeric" });
  const source = h(
    "details",
    { class: "estimate-source" },
    h("summary", {}, "Where this estimate comes from"),
    h(
      "p",
      {},
      "Each stage still to do is given its typical length, counted from when the stages before it end, and never before the law allows. ",
      typical.summary,
    ),
    h(
      "ul",
      {},
      progress.stages.map((stage) => {
        const typicalStage = typical.stages[stage.id];
        return typicalStage
          ? h(
              "li",
              {},
              `${stage.title}: ${typicalStage.days} ${typicalStage.days === 1 ? "day" : "days"}. ${typicalStage.source}`,
            )
          : null;
      }),
    ),
  );
  return [
    h("time", { datetime: finish }, `around ${day.format(new Date(finish))}`),
    ` (${roughlyIn(finish, nowMs)}), from typical durations: an estimate, not a promise.`,
    source,
  ];
}

/** The facts of an open case: now, waiting for, next legal date, estimated finish. */
function openFacts(progress, viewerRoles, context, nowMs) {
  const now = currentStages(progress).map((stage) => stage.title);
  return h(
    "dl",
    { class: "facts" },
    fact("now", "Now", now.length > 0 ? listOf(now) : "nothing under way"),
    fact("awaited", "Waiting for", awaitedWords(progress, viewerRoles)),
    fact("legal-date", "Next legal date", legalDateWords(progress, nowMs)),
    fact("estimate", "Estimated finish", estimateWords(progress, context, nowMs)),
  );
}

function daysBetween(fromIso, toIso) {
  const days = Math.round((Date.parse(toIso) - Date.parse(fromIso)) / 86_400_000);
  return days === 1 ? "1 day" : `${days} days`;
}

const ENDED = {
  completed: "The case is complete",
  expired: "The case expired",
  cancelled: "The case was cancelled",
};

/** What a case that has ended achieved, when, and where the money went. */
function outcome(progress, viewerRoles, context) {
  const zone = progress.timeZone ?? null;
  const { total } = progress.progress;
  const when = progress.status === "completed" ? completedAt(progress) : progress.updatedAt.time;
  const money = payouts(progress, context.withdrawn);
  const achieved =
    progress.status === "completed"
      ? `All ${total} stages are done: ${progress.workflow.title ?? "the workflow"} has gone through, and the escrow has paid out.`
      : "It ended before the release: nothing went to the seller, and each payer's money is credited back to it.";
  return h(
    "div",
    { class: `outcome outcome--${progress.status}`, id: "outcome" },
    h("h3", {}, ENDED[progress.status] ?? progress.status),
    h(
      "p",
      { class: "outcome-when" },
      progress.status === "completed" ? "Completed " : "Ended ",
      when ? moment(when, zone) : "",
      when && context.openedAt ? `, ${daysBetween(context.openedAt, when)} after the case opened` : "",
      ".",
    ),
    h("p", { class: "outcome-what" }, achieved),
    progress.status === "completed"
      ? h(
          "p",
          { class: "outcome-paid" },
          `${who(progress, "buyer", viewerRoles)} put in ${moneyWords(progress.escrow.paidByBuyer, progress.asset, context.currency)} and ${whoInSentence(progress, "bank", viewerRoles)} ${moneyWords(progress.escrow.paidByBank, progress.asset, context.currency)}.`,
        )
      : null,
    money.length > 0
      ? h(
          "ul",
          { class: "outcome-money" },
          money.map((entry) => h("li", {}, `${payoutWords(progress, entry, viewerRoles, context.currency)}.`)),
        )
      : null,
  );
}

/**
 * `context`: `{ workflow, typical, currency, withdrawn, openedAt }` as the page has loaded them (`typical`
 * undefined while it loads, null where the server has none; `openedAt` from the history, null until it
 * loads); `nowMs`: the chain's estimated time.
 */
export function renderStanding(root, progress, viewerRoles, context, nowMs) {
  root.replaceChildren(
    progress.status === "open"
      ? openFacts(progress, viewerRoles, context, nowMs)
      : outcome(progress, viewerRoles, context),
  );
}
