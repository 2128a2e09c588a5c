// The buyer's progress page: signs in with a token kept in this tab's session storage, shows the case (where
// it stands at the top, completed stages folded, parties by name, money in words, the chain's details behind
// one switch), follows
// its event stream, lets a party sign off the stages that await it and that the API would accept now, and
// consent to (or decline) the proposed amendments that await it (amendments.js). An
// address that names no case gets a page saying so; a lost connection is retried, and its errors go once it
// is back.

import { createAmendmentActions, renderAmendments } from "./amendments.js";
import { ApiError, apiFetch } from "./api.js";
import { backoffMs, followStream } from "./event-stream.js";
import { formatDuration, formatMoment, formatWaitsFor, roleLabel, sameAddress } from "./format.js";
import { historyEntries, renderHistory, renderVersions, withdrawnByPayee } from "./history.js";
import { renderMoney } from "./money.js";
import { renderParties, renderSummary, renderZones } from "./summary.js";
import { renderFold, renderTimeline } from "./timeline.js";

const TOKEN_KEY = "mortgage-signoff.token";
const $ = (id) => document.getElementById(id);

// A case id as the API takes it (server/schemas.ts CaseId); anything else names no case.
const CASE_ADDRESS = /^\/ui\/cases\/(\d{1,78})\/?$/;
const caseId = CASE_ADDRESS.exec(location.pathname)?.[1] ?? null;
const casePath = `/cases/${caseId}`;

const state = {
  token: null,
  viewer: null, // { id, name, role, address } from GET /me
  progress: null,
  history: [],
  actions: {}, // stage id -> { kind: "pending" | "submitted" | "done" | "error", text, role }
  stream: null,
  // How far the chain's clock runs ahead of this browser's (the dev clock moves it forward); see noteChainTime.
  chainAheadMs: 0,
  // When the case was last fetched again because a stage's legal moment passed (see tick), and how long to
  // wait before the next such fetch.
  momentRefresh: { at: 0, waitMs: 5_000 },
  // What the page reads besides the case, for words and the estimate: GET /workflows/:id (null if it failed),
  // its typical durations (undefined while loading, null if none) and the operator's display currency.
  workflow: null,
  typical: undefined,
  currency: null,
  folded: true, // the completed stages
  technical: false, // hashes, blocks, addresses
};

// What the viewer did to each amendment in this page session (consent, withdrawal, decline) and its outcome.
let amendmentActions = newAmendmentActions();
function newAmendmentActions() {
  return createAmendmentActions({
    send: (method, path, body) =>
      apiFetch(state.token, `${casePath}${path}`, {
        method,
        body,
        headers: { "Idempotency-Key": crypto.randomUUID() },
      }),
    changed(text) {
      if (state.progress) showProgress(state.progress, { announceChanges: false });
      if (text) announce(text);
    },
    unauthorized: (error) => signOut(messageForLoadError(error)),
  });
}

// ---- announcements for screen readers ----

function announce(text) {
  const region = $("announcer");
  const line = document.createElement("p");
  line.textContent = text;
  region.append(line);
  // Keep the region short; older lines have been read already.
  while (region.childElementCount > 20) region.firstElementChild.remove();
}

// ---- signing in and out ----

function showSignIn(message = "") {
  stopFollowing();
  clearTimeout(openRetry?.timer);
  openRetry = null;
  state.progress = null;
  $("case").hidden = true;
  $("loading").hidden = true;
  $("session").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-case").textContent = caseId;
  $("sign-in-error").textContent = message;
  $("notice").textContent = "";
  $("token").value = "";
  $("token").setAttribute("aria-invalid", message ? "true" : "false");
  $("token").focus();
}

/** The address names no case (`/ui/cases/abc`, `/ui/cases/`): no token could show one, so none is asked for. */
function showNoCase() {
  let named = location.pathname.replace(/^\/ui\/cases\/?/, "").replace(/\/$/, "");
  try {
    named = decodeURIComponent(named);
  } catch {
    // A broken %-escape: shown as it stands.
  }
  $("no-case-title").textContent = named ? `There is no case ${named}` : "This address names no case";
  $("no-case").hidden = false;
  document.title = "No such case · Mortgage case progress";
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(state, { workflow: null, typical: undefined, currency: null, folded: true, technical: false });
  $("case").classList.remove("technical-shown");
  state.token = null;
  state.viewer = null;
  state.actions = {};
  amendmentActions = newAmendmentActions();
  state.history = [];
  $("history-list").replaceChildren();
  $("versions").replaceChildren();
  showSignIn(message);
}

/** A failure that passes by itself (the network, a busy or restarting server): worth retrying, not a verdict. */
function isTransient(error) {
  return !(error instanceof ApiError) || error.status === 429 || error.status >= 500;
}

function messageForLoadError(error) {
  if (!(error instanceof ApiError)) return "The server could not be reached. Check the connection and try again.";
  if (error.status === 401)
    return "That token was not accepted: it is unknown or has been revoked. Check it and try again.";
  if (error.status === 404 || error.status === 403) {
    return `There is no case ${caseId} that this token may see. Check the address of the page, or use the token of a party to the case.`;
  }
  if (error.status === 429) return "Too many requests just now. Wait a moment and try again.";
  return `The case could not be loaded: ${error.message}`;
}

/** The principal behind the token: { id, name, role, address }. */
function whoAmI(token) {
  return apiFetch(token, "/me");
}

let openRetry = null;

async function open(token, { fromForm = false, attempt = 0 } = {}) {
  clearTimeout(openRetry?.timer);
  openRetry = null;
  $("sign-in").hidden = true;
  $("loading").hidden = false;
  try {
    const [progress, me] = await Promise.all([apiFetch(token, casePath), whoAmI(token)]);
    $("loading").textContent = "Loading the case…";
    state.token = token;
    state.viewer = me;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("loading").hidden = true;
    $("case").hidden = false;
    $("session").hidden = false;
    showProgress(progress, { announceChanges: false });
    // The form that had the focus is gone: the keyboard and the screen reader continue at the case's title.
    if (fromForm) $("case-title").focus();
    refreshHistory();
    follow();
    loadPageContext(token, progress.workflow.id);
  } catch (error) {
    if (isTransient(error)) {
      // The token may be fine: keep it, say why the case is not shown yet, and try again; "online" tries at once.
      const wait = backoffMs(attempt);
      $("loading").textContent = `${messageForLoadError(error)} Trying again in ${Math.ceil(wait / 1000)} s…`;
      const retry = () => open(token, { fromForm, attempt: attempt + 1 });
      openRetry = { timer: setTimeout(retry, wait), now: retry };
      return;
    }
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(messageForLoadError(error));
  }
}

// ---- the case ----

/** The workflow's stages, its typical durations and the display currency; each is extra, so a failure leaves it out. */
async function loadPageContext(token, workflowId) {
  const quietly = (path) => apiFetch(token, path).catch(() => null);
  const [workflow, typical, display] = await Promise.all([
    workflowId ? quietly(`/workflows/${encodeURIComponent(workflowId)}`) : null,
    workflowId ? quietly(`/workflows/${encodeURIComponent(workflowId)}/typical-durations`) : null,
    quietly("/display"),
  ]);
  Object.assign(state, { workflow, typical, currency: display?.currency ?? null });
  if (state.token && state.progress) renderOverview(state.progress, viewerRoles(state.progress));
}

function chainNow() {
  return Date.now() + state.chainAheadMs;
}

/** The top of the case and the money: what depends on the page's context and the history besides the progress. */
function renderOverview(progress, roles) {
  const focused = document.activeElement?.id;
  const estimateOpen = $("summary").querySelector(".estimate-source")?.open ?? false;
  const withdrawn = withdrawnByPayee(state.history);
  const openedAt = state.history.find((entry) => (entry.event ?? entry.name) === "CaseOpened")?.time ?? null;
  renderSummary($("summary"), progress, roles, {
    context: { workflow: state.workflow, typical: state.typical, currency: state.currency, withdrawn, openedAt },
    nowMs: chainNow(),
    technical: state.technical,
    onTechnical: toggleTechnical,
  });
  const source = $("summary").querySelector(".estimate-source");
  if (source) source.open = estimateOpen;
  renderMoney($("escrow"), progress, {
    withdrawn,
    viewerRoles: roles,
    currency: state.currency,
    workflow: state.workflow,
  });
  if (focused && document.activeElement === document.body) $(focused)?.focus();
}

function toggleTechnical() {
  state.technical = !state.technical;
  $("case").classList.toggle("technical-shown", state.technical);
  if (state.progress) renderOverview(state.progress, viewerRoles(state.progress));
  $("technical-toggle")?.focus();
}

function toggleFold() {
  state.folded = !state.folded;
  if (state.progress) showProgress(state.progress, { announceChanges: false });
  $("fold-done")?.focus();
}

function viewerRoles(progress) {
  if (!state.viewer) return [];
  const roles = Object.keys(progress.parties).filter((role) =>
    sameAddress(progress.parties[role], state.viewer.address),
  );
  // One address may hold two roles; the principal signs as its own role, so that one comes first.
  return roles.sort((a, b) => Number(b === state.viewer.role) - Number(a === state.viewer.role));
}

function noteChainTime(progress) {
  // The last event's block time is at most the chain's "now", and an event just received was mined just now,
  // so the largest lead seen is a fair estimate of how far the chain's clock runs ahead of this browser's.
  const lead = Date.parse(progress.updatedAt.time) - Date.now();
  if (lead > state.chainAheadMs) state.chainAheadMs = lead;
}

function announceChanges(before, after) {
  if (before.status !== after.status) announce(`The case is now ${after.status}.`);
  after.stages.forEach((stage, i) => {
    const old = before.stages[i];
    if (!old) return;
    for (const role of stage.signedOff) {
      if (!old.signedOff.includes(role)) announce(`${roleLabel(role)} signed off: ${stage.title}.`);
    }
    if (stage.status !== old.status && stage.status === "completed") announce(`Completed: ${stage.title}.`);
    else if (stage.status !== old.status) announce(`${stage.title}: now ${stage.status}.`);
  });
  for (const amendment of after.amendments ?? []) {
    const old = before.amendments?.find((a) => a.number === amendment.number);
    if (!old) announce(`A change to the case was proposed (proposal ${amendment.number}).`);
    else if (old.status !== amendment.status && amendment.status === "applied")
      announce(`Proposal ${amendment.number} applied: the terms are now version ${amendment.version + 1}.`);
  }
  if (before.progress.completed !== after.progress.completed) {
    announce(`${after.progress.completed} of ${after.progress.total} stages complete.`);
  }
}

function showProgress(progress, { announceChanges: announcing = true } = {}) {
  const before = state.progress;
  state.progress = progress;
  noteChainTime(progress);
  const roles = viewerRoles(progress);
  // A sign-off that is now on the chain needs no "submitted" note any more.
  for (const stage of progress.stages) {
    const action = state.actions[stage.id];
    if (action?.kind === "submitted" && stage.signedOff.includes(action.role)) {
      state.actions[stage.id] = { kind: "done", text: "Your sign-off is on the chain." };
    }
  }
  amendmentActions.observe(progress);
  const focusedId = document.activeElement?.id;
  const focusedStage = document.activeElement?.closest?.("[data-stage]")?.dataset.stage;
  const focusedAmendment = document.activeElement?.closest?.("[data-amendment]")?.dataset.amendment;
  renderOverview(progress, roles);
  renderAmendments($("amendments"), progress, roles, amendmentActions);
  renderZones($("zones"), progress.timeZone);
  renderFold($("fold"), progress, { folded: state.folded, onToggle: toggleFold });
  renderTimeline($("timeline"), progress, {
    viewerRoles: roles,
    actions: state.actions,
    onSignOff: signOff,
    folded: state.folded,
  });
  renderParties($("parties"), progress, roles);
  renderVersions($("versions"), state.history, progress);
  tick();
  if (focusedId && document.activeElement === document.body) $(focusedId)?.focus();
  if (focusedStage) {
    // Re-rendering replaced the focused button: put the focus back where the keyboard user was.
    const again = $("timeline").querySelector(`li[data-stage="${CSS.escape(focusedStage)}"]`);
    (again?.querySelector("button:not([disabled])") ?? again)?.focus?.();
  }
  if (focusedAmendment && document.activeElement === document.body) {
    const again = $("amendments").querySelector(`li[data-amendment="${CSS.escape(focusedAmendment)}"]`);
    (again?.querySelector("button:not([disabled])") ?? $("amendments-title"))?.focus?.();
  }
  if (announcing && before) announceChanges(before, progress);
}

let historyTimer = null;
function refreshHistory() {
  clearTimeout(historyTimer);
  historyTimer = setTimeout(async () => {
    if (!state.token || !state.progress) return;
    try {
      state.history = historyEntries(await apiFetch(state.token, `${casePath}/history`));
      renderHistory($("history-list"), state.history, state.progress);
      renderVersions($("versions"), state.history, state.progress);
      renderOverview(state.progress, viewerRoles(state.progress));
    } catch {
      // The history is extra; the next change tries again.
    }
  }, 500);
}

// ---- countdowns ----

let lastOverviewMinute = 0;
function tick() {
  const now = chainNow();
  // The next legal date and the estimate move with time: the top is worked out again each minute.
  const minute = Math.floor(now / 60_000);
  if (state.progress && lastOverviewMinute !== 0 && minute !== lastOverviewMinute)
    renderOverview(state.progress, viewerRoles(state.progress));
  lastOverviewMinute = minute;
  for (const element of document.querySelectorAll("[data-until]")) {
    const left = Date.parse(element.dataset.until) - now;
    element.textContent = left > 0 ? element.dataset.before.replace("{}", formatDuration(left)) : element.dataset.after;
    element.classList.toggle("countdown--over", left <= 0);
  }
  if (legalMomentPassed(now)) refreshAtLegalMoment();
}

/**
 * A stage that does not take sign-offs yet but whose legal moment has passed, or an open proposal whose expiry
 * has, by the chain's estimated time.
 * Nothing on the chain marks that moment; the engine sends the progress again then, but a stream that was
 * reconnecting meanwhile may have missed it: the page asks for the case itself.
 */
function legalMomentPassed(now) {
  const progress = state.progress;
  if (!state.token || !progress || progress.status !== "open") return false;
  // A proposal lapses at its expiry with nothing on the chain either (the engine sends the progress then too).
  const lapsed = (progress.amendments ?? []).some((a) => a.status === "open" && Date.parse(a.expiresAt) < now);
  return (
    lapsed ||
    progress.stages.some(
      (stage) =>
        stage.acceptsSignOffs === false &&
        stage.availableAt &&
        Date.parse(stage.availableAt) <= now &&
        stage.requires.some((role) => !stage.signedOff.includes(role)),
    )
  );
}

async function refreshAtLegalMoment() {
  const refresh = state.momentRefresh;
  if (Date.now() - refresh.at < refresh.waitMs) return;
  refresh.at = Date.now();
  // The chain's clock may be behind the estimate: ask again later, less and less often.
  refresh.waitMs = Math.min(refresh.waitMs * 2, 300_000);
  try {
    const progress = await apiFetch(state.token, casePath);
    if (state.token && state.progress) {
      showProgress(progress);
      refreshHistory();
    }
  } catch {
    // The stream's next event, or the next tick, brings it.
  }
}
setInterval(tick, 1000);

// ---- the event stream ----

function setConnection(kind, text) {
  $("connection").dataset.state = kind;
  $("connection-text").textContent = text;
}

function follow() {
  stopFollowing();
  let wasLive = false;
  state.stream = followStream({
    url: `${casePath}/events`,
    token: state.token,
    onEvent(event) {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (data?.removed) {
        $("notice").textContent = "A chain reorganisation removed this case: it is no longer on the chain.";
        announce($("notice").textContent);
      } else if (data && Array.isArray(data.stages)) {
        if (data.reorg) announce("The chain reorganised; the case is shown as the chain now holds it.");
        // A fresh progress: the next legal moment that passes is asked about soon again (see tick).
        state.momentRefresh.waitMs = 5_000;
        $("notice").textContent = "";
        showProgress(data);
        refreshHistory();
      }
    },
    onState(kind, detail) {
      if (kind === "live") {
        setConnection("live", "Live");
        if (!wasLive) wasLive = true;
        else {
          announce("Live updates resumed.");
          clearTransientErrors();
        }
      } else if (kind === "reconnecting") {
        setConnection("reconnecting", `Reconnecting in ${Math.ceil(detail.inMs / 1000)} s…`);
        if (detail.attempt === 1) announce("Live updates interrupted; reconnecting.");
      } else {
        setConnection("connecting", "Connecting…");
      }
    },
    onFatal(error) {
      signOut(messageForLoadError(error));
    },
  });
  // For tests and the curious: the follower, to read the last event id.
  window.caseStream = state.stream;
}

function stopFollowing() {
  state.stream?.stop();
  state.stream = null;
}

/** The connection is back: what failed only for want of it is no longer true, so it leaves the screen. */
function clearTransientErrors() {
  let cleared = false;
  for (const [id, action] of Object.entries(state.actions)) {
    if (action.kind === "error" && action.transient) {
      delete state.actions[id];
      cleared = true;
    }
  }
  if (cleared && state.progress) showProgress(state.progress, { announceChanges: false });
}

// ---- signing off ----

function setAction(stage, kind, text, role = null, { transient = false } = {}) {
  state.actions[stage.id] = { kind, text, role, transient };
  if (state.progress) showProgress(state.progress, { announceChanges: false });
  if (text) announce(text);
}

async function signOff(stage, role) {
  setAction(stage, "pending", "");
  try {
    await apiFetch(state.token, `${casePath}/stages/${encodeURIComponent(stage.id)}/sign-offs`, {
      method: "POST",
      // The role too: one address may hold two roles in a case, and the server then asks which.
      body: { role },
      headers: { "Idempotency-Key": crypto.randomUUID() },
    });
    setAction(
      stage,
      "submitted",
      `Sign-off submitted as ${roleLabel(role)}: ${stage.title}. It shows here once it is on the chain.`,
      role,
    );
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut(messageForLoadError(error));
      return;
    }
    setAction(stage, "error", refusalText(stage, error), null, { transient: isTransient(error) });
  }
}

/** What the page says when a sign-off is not taken: for "too early", what the stage waits for and from when. */
function refusalText(stage, error) {
  if (error instanceof ApiError && error.code === "TOO_EARLY") {
    const zone = state.progress?.timeZone ?? null;
    const waitsFor = error.details?.waitsFor ?? stage.waitsFor ?? null;
    const at = error.details?.availableAt;
    const from = at ? `possible from ${formatMoment(at, zone, { edge: "start" })}` : null;
    // The words may carry the moment already ("… (until <moment>)"): then it is not said twice.
    const why = waitsFor
      ? `waits for: ${formatWaitsFor(waitsFor, zone)}${from && !waitsFor.includes(at) ? `; ${from}` : ""}`
      : from;
    // Neither (a server older than the page): its message is all there is.
    return `Too early to sign off ${stage.title}: ${why || error.message}.`;
  }
  if (error instanceof ApiError && error.status === 429)
    return `The sign-off of ${stage.title} was not sent: too many requests just now. Try again in a moment.`;
  if (error instanceof ApiError && error.status >= 500)
    return `The sign-off of ${stage.title} was not sent: the server cannot do it just now (${error.message}). Try again in a moment.`;
  if (error instanceof ApiError) return `The sign-off of ${stage.title} was refused: ${error.message}`;
  return `The sign-off of ${stage.title} could not be sent: the server could not be reached.`;
}

// ---- start ----

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (token) open(token, { fromForm: true });
});
$("sign-out").addEventListener("click", () => signOut());
// A phone that comes back online or back to this tab should not sit out the rest of a long backoff.
window.addEventListener("online", () => {
  state.stream?.retryNow();
  openRetry?.now();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") state.stream?.retryNow();
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (!caseId) showNoCase();
else if (saved) open(saved);
else showSignIn();
