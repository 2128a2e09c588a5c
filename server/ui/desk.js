// The desk: a principal's cases at a glance, for a law firm's or a bank's staff with many of them. Three lists
// from the worklist API (GET /cases): what needs the viewer today (its sign-off of a stage that takes it now, or
// its consent to an open amendment), what is at risk (a legal deadline within a few business days in the case's
// own calendar, which the server counts), and every case, a page at a time. It asks again every few seconds,
// so what changes on the chain shows without a reload.

import { ApiError, apiFetch } from "./api.js";
import { backoffMs } from "./event-stream.js";
import { formatMoment, roleLabel, sameAddress } from "./format.js";
import { h } from "./dom.js";

const TOKEN_KEY = "mortgage-signoff.token";
const REFRESH_MS = 5_000;
/** "At risk": a legal deadline within this many business days. */
export const RISK_BUSINESS_DAYS = 5;
const PAGE = 50;
const $ = (id) => document.getElementById(id);

const state = { token: null, viewer: null, timer: null, attempt: 0, pages: 1, seen: "" };

/** The roles the viewer holds in the case. */
function viewerRoles(progress) {
  return Object.entries(progress.parties)
    .filter(([, address]) => sameAddress(address, state.viewer?.address))
    .map(([role]) => role);
}

/** What the case waits for from the viewer: sign-offs it can give now, and consents it is asked for. */
export function needsFromViewer(progress, roles) {
  const needs = [];
  for (const stage of progress.stages) {
    // A locked stage takes early sign-offs, but holds nothing up yet: the worklist leaves it out too.
    if (!stage.acceptsSignOffs || stage.status === "locked") continue;
    for (const role of stage.requires)
      if (roles.includes(role) && !stage.signedOff.includes(role))
        needs.push(`Sign off “${stage.title}” as the ${roleLabel(role).toLowerCase()}`);
  }
  for (const amendment of progress.amendments ?? []) {
    if (amendment.status !== "open") continue;
    for (const role of amendment.awaiting)
      if (roles.includes(role))
        needs.push(
          `Consent to proposal ${amendment.number} (${amendment.kind}) as the ${roleLabel(role).toLowerCase()}`,
        );
  }
  return needs;
}

/** The next legal deadline of a stage not yet completed: { stage, at } or null. */
function nextDeadline(progress) {
  let next = null;
  for (const stage of progress.stages) {
    if (stage.status === "completed" || !stage.deadline) continue;
    if (next === null || Date.parse(stage.deadline) < Date.parse(next.at)) next = { stage, at: stage.deadline };
  }
  return next;
}

function caseTitle(progress) {
  return `Case ${progress.id} · ${progress.workflow.title ?? "a case"}`;
}

function statusWords(progress) {
  const { completed, total } = progress.progress;
  if (progress.status === "open") return `Open · ${completed} of ${total} stages done`;
  return `${progress.status[0].toUpperCase()}${progress.status.slice(1)} · ${completed} of ${total} stages`;
}

function item(progress, { lines, risky = false }) {
  const deadline = progress.status === "open" ? nextDeadline(progress) : null;
  return h(
    "li",
    { "data-case": progress.id },
    h("a", { class: "case-link", href: `/ui/cases/${progress.id}` }, caseTitle(progress)),
    lines.map((line) => h("p", { class: "what" }, line)),
    deadline
      ? h(
          "p",
          { class: risky ? "when soon" : "when" },
          `${risky ? "Deadline soon" : "Next deadline"}: ${deadline.stage.title}, ${formatMoment(deadline.at, progress.timeZone)}`,
        )
      : null,
  );
}

function fill(list, items, empty) {
  list.replaceChildren(...(items.length ? items : [h("li", { class: "empty" }, empty)]));
}

async function load() {
  const token = state.token;
  const open = "status=open&limit=200";
  const [today, risk, all] = await Promise.all([
    apiFetch(token, `/cases?awaiting=me&${open}`),
    apiFetch(token, `/cases?${open}&deadlineWithinBusinessDays=${RISK_BUSINESS_DAYS}`),
    allPages(token),
  ]);
  const seen = JSON.stringify([today, risk, all]);
  if (seen === state.seen) return;
  state.seen = seen;
  const riskIds = new Set(risk.cases.map((p) => p.id));
  fill(
    $("today-list"),
    today.cases.map((p) => item(p, { lines: needsFromViewer(p, viewerRoles(p)), risky: riskIds.has(p.id) })),
    "Nothing waits for you today.",
  );
  fill(
    $("risk-list"),
    risk.cases.map((p) => item(p, { lines: [statusWords(p)], risky: true })),
    `No legal deadline within ${RISK_BUSINESS_DAYS} business days.`,
  );
  fill(
    $("all-list"),
    all.cases.map((p) => item(p, { lines: [statusWords(p)], risky: riskIds.has(p.id) })),
    "No cases yet.",
  );
  $("more").hidden = all.nextCursor === null;
  $("today-title").textContent = `Needs you today (${today.cases.length})`;
  $("risk-title").textContent = `At risk (${risk.cases.length})`;
}

/** The first `state.pages` pages of every case, soonest deadline first, as one list. */
async function allPages(token) {
  const cases = [];
  let cursor = null;
  for (let page = 0; page < state.pages; page++) {
    const query = `limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const answer = await apiFetch(token, `/cases?${query}`);
    cases.push(...answer.cases);
    cursor = answer.nextCursor;
    if (cursor === null) break;
  }
  return { cases, nextCursor: cursor };
}

function setConnection(kind, text) {
  $("connection").dataset.state = kind;
  $("connection-text").textContent = text;
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    await load();
    state.attempt = 0;
    setConnection("live", `Up to date, ${new Date().toLocaleTimeString("en-GB")}`);
    $("notice").textContent = "";
    state.timer = setTimeout(refresh, REFRESH_MS);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signOut("That token is no longer accepted.");
    const wait = backoffMs(state.attempt++);
    setConnection("retrying", `Reconnecting in ${Math.ceil(wait / 1000)} s…`);
    if (error instanceof ApiError && error.status < 500 && error.status !== 429)
      $("notice").textContent = `Your cases could not be loaded: ${error.message}`;
    state.timer = setTimeout(refresh, wait);
  }
}

async function open(token) {
  $("sign-in").hidden = true;
  $("loading").hidden = false;
  try {
    state.viewer = await apiFetch(token, "/me");
  } catch (error) {
    $("loading").hidden = true;
    return showSignIn(
      error instanceof ApiError && error.status === 401
        ? "That token was not accepted: it is unknown or has been revoked."
        : "The server could not be reached. Check the connection and try again.",
    );
  }
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("viewer").textContent = `Signed in as ${state.viewer.name} (${roleLabel(state.viewer.role)})`;
  $("risk-help").textContent =
    `Open cases with a legal deadline within ${RISK_BUSINESS_DAYS} business days, counted in each case's own calendar.`;
  $("loading").hidden = true;
  $("session").hidden = false;
  $("desk").hidden = false;
  await refresh();
}

function showSignIn(message = "") {
  clearTimeout(state.timer);
  $("desk").hidden = true;
  $("session").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("token").value = "";
  $("token").focus();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.viewer = null;
  state.seen = "";
  showSignIn(message);
}

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (token) open(token);
});
$("sign-out").addEventListener("click", () => signOut());
$("more").addEventListener("click", () => {
  state.pages += 1;
  state.seen = "";
  refresh();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.token) refresh();
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) open(saved);
else showSignIn();
