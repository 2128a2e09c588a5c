// Amendments by consent, in plain words: at the top of the case, each open proposal (what it changes, who
// proposed it, who has agreed, whom it waits for, when it lapses) with "Consent" and "Decline" for a viewer
// whose consent it awaits, or "Withdraw my consent" for one who gave it. The contract has no refusal: a
// proposal without someone's consent cannot apply and lapses at its expiry, so "Decline" withdraws a consent
// given, and otherwise says so and hides the buttons for this page session. The same words serve the history.

import { ApiError } from "./api.js";
import { h } from "./dom.js";
import { formatAmount, formatMoment, roleLabel, shortAddress } from "./format.js";

/** The verb of each kind: a proposal's ("moves"), an applied one's ("moved"), one that did not apply. */
const VERBS = {
  open: { deadline: "moves", terms: "changes", party: "changes" },
  applied: { deadline: "moved", terms: "changed", party: "changed" },
  lapsed: { deadline: "would have moved", terms: "would have changed", party: "would have changed" },
};

const STATUS_WORDS = {
  expired: "Lapsed: not everyone it waited for agreed before its expiry",
  superseded: "Superseded: another change of the terms applied first",
  closed: "Closed: the case ended before it applied",
};

function moment(iso, zone) {
  return h("time", { datetime: iso }, formatMoment(iso, zone));
}

function address(value) {
  return h("code", { class: "address", title: value }, shortAddress(value));
}

/**
 * What the amendment changes, as a sentence without its full stop: "The long-stop date for Funding moves to
 * …", "The price changes from 0.9 ETH to 0.95 ETH", "The lawyer's address changes from 0x… to 0x…".
 * `tense`: "open", "applied" or "lapsed".
 */
export function changeWords(amendment, progress, tense = "open") {
  const { change } = amendment;
  const verb = VERBS[tense][change.kind];
  const zone = progress.timeZone ?? null;
  if (change.kind === "deadline") {
    const title = progress.stages.find((s) => s.id === change.stage)?.title ?? change.stage;
    const which = change.deadline === "longStop" ? "long-stop date" : "deadline";
    return [`The ${which} for ${title} ${verb} to `, moment(change.to, zone)];
  }
  if (change.kind === "terms") {
    const money = (amount) => formatAmount(amount, progress.asset);
    const moves = ["price", "deposit", "loan"]
      .filter((part) => change.from[part] !== change.to[part])
      .map((part) => `the ${part} from ${money(change.from[part])} to ${money(change.to[part])}`);
    if (moves.length === 0) return [`The terms ${verb === "changes" ? "stay" : "stayed"} as they were`];
    // "the price from a to b and the deposit from c to d": the verb after the first part named.
    return [`T${listOf(moves).slice(1).replace(" from", ` ${verb} from`)}`];
  }
  return [
    `The ${roleLabel(change.role).toLowerCase()}'s address ${verb} from `,
    address(change.from),
    " to ",
    address(change.to),
  ];
}

/** "a", "a and b", "a, b and c". */
function listOf(words) {
  return words.length <= 1 ? (words[0] ?? "") : `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
}

/** The roles as people: "you" for the viewer's own (first, and once), "the bank" for the others. */
function people(roles, viewerRoles) {
  const mine = roles.some((role) => viewerRoles.includes(role));
  const others = roles
    .filter((role) => !viewerRoles.includes(role))
    .map((role) => `the ${roleLabel(role).toLowerCase()}`);
  return { words: listOf([...(mine ? ["you"] : []), ...others]), plural: mine || others.length > 1 };
}

/** "the bank proposed it; the seller has agreed; waiting for you". */
function whoWords(amendment, viewerRoles) {
  const parts = [`${people([amendment.proposedBy], viewerRoles).words} proposed it`];
  const agreed = amendment.consented.filter((role) => role !== amendment.proposedBy);
  if (agreed.length > 0) {
    const { words, plural } = people(agreed, viewerRoles);
    parts.push(`${words} ${plural ? "have" : "has"} agreed`);
  }
  if (amendment.awaiting.length > 0) parts.push(`waiting for ${people(amendment.awaiting, viewerRoles).words}`);
  return parts.join("; ");
}

/**
 * Holds what the viewer did to each amendment in this page session and sends it. `send(method, path, body)`
 * calls the API; `changed(text)` re-renders the case and announces `text`; `unauthorized(error)` signs out.
 */
export function createAmendmentActions({ send, changed, unauthorized }) {
  const actions = {}; // amendment number -> { kind: "pending" | "submitted" | "done" | "error" | "declined", text, what, role }
  const declined = new Set();

  function set(amendment, action) {
    actions[amendment.number] = action;
    changed(action.text);
  }

  async function submit(amendment, role, what) {
    const noun = what === "consent" ? "consent" : "withdrawal";
    set(amendment, { kind: "pending", text: "", what, role });
    try {
      await send(what === "consent" ? "POST" : "DELETE", `/amendments/${amendment.number}/consents`, { role });
      set(amendment, {
        kind: "submitted",
        text: `Your ${noun} was sent. It shows here once it is on the chain.`,
        what,
        role,
      });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return unauthorized(error);
      const text =
        error instanceof ApiError
          ? `Your ${noun} was refused: ${error.message}`
          : `Your ${noun} could not be sent: the server could not be reached.`;
      set(amendment, { kind: "error", text, what, role });
    }
  }

  return {
    consent: (amendment, role) => submit(amendment, role, "consent"),
    withdraw: (amendment, role) => submit(amendment, role, "withdraw"),
    /** A consent given is withdrawn; otherwise nothing can be sent, and the page says what follows. */
    decline(amendment, role, progress) {
      if (amendment.consented.includes(role)) return submit(amendment, role, "withdraw");
      declined.add(amendment.number);
      const lapses = formatMoment(amendment.expiresAt, progress.timeZone ?? null);
      set(amendment, {
        kind: "declined",
        text: `You declined. The contract records no refusal, but this proposal cannot apply without you: it will lapse at ${lapses} without your consent.`,
        role,
      });
    },
    /** A sent consent or withdrawal that is now on the chain says so. */
    observe(progress) {
      for (const amendment of progress.amendments) {
        const action = actions[amendment.number];
        if (action?.kind !== "submitted") continue;
        const consented = amendment.consented.includes(action.role);
        if (action.what === "consent" && consented)
          actions[amendment.number] = { ...action, kind: "done", text: "Your consent is on the chain." };
        if (action.what === "withdraw" && !consented)
          actions[amendment.number] = { ...action, kind: "done", text: "Your consent is withdrawn." };
      }
    },
    actions,
    declined,
  };
}

function buttons(amendment, viewerRoles, controller, progress) {
  if (amendment.status !== "open" || controller.declined.has(amendment.number)) return [];
  const action = controller.actions[amendment.number];
  const busy = action?.kind === "pending" || action?.kind === "submitted";
  const label = (text, role, to = " to") => [
    text,
    h("span", { class: "visually-hidden" }, `${to} proposal ${amendment.number} as ${roleLabel(role)}`),
  ];
  const awaited = viewerRoles.find((role) => amendment.awaiting.includes(role));
  if (awaited) {
    return [
      h(
        "button",
        { type: "button", disabled: busy, onclick: () => controller.consent(amendment, awaited) },
        label("Consent", awaited),
      ),
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          disabled: busy,
          onclick: () => controller.decline(amendment, awaited, progress),
        },
        label("Decline", awaited, ""),
      ),
    ];
  }
  const given = viewerRoles.find((role) => amendment.consented.includes(role) && amendment.requires.includes(role));
  if (!given) return [];
  return [
    h(
      "button",
      { type: "button", class: "secondary", disabled: busy, onclick: () => controller.withdraw(amendment, given) },
      label("Withdraw my consent", given),
    ),
  ];
}

function proposalItem(amendment, progress, viewerRoles, controller) {
  const zone = progress.timeZone ?? null;
  const action = controller.actions[amendment.number];
  const open = amendment.status === "open";
  const tense = open ? "open" : amendment.status === "applied" ? "applied" : "lapsed";
  const status = open
    ? null
    : amendment.status === "applied"
      ? [`Applied: terms version ${amendment.version + 1}, agreed `, moment(amendment.appliedAt, zone), "."]
      : `${STATUS_WORDS[amendment.status] ?? amendment.status}.`;
  const controls = buttons(amendment, viewerRoles, controller, progress);
  return h(
    "li",
    { class: `amendment amendment--${amendment.status}`, "data-amendment": amendment.number },
    status ? h("p", { class: "amendment-status" }, status) : null,
    h(
      "p",
      { class: "amendment-what" },
      changeWords(amendment, progress, tense),
      open ? [": ", whoWords(amendment, viewerRoles)] : null,
      ".",
    ),
    open
      ? h(
          "p",
          { class: "amendment-lapse" },
          "Unless everyone it waits for agrees, it lapses at ",
          moment(amendment.expiresAt, zone),
          ".",
        )
      : null,
    controls.length || action?.text
      ? h(
          "div",
          { class: "actions" },
          controls,
          action?.text ? h("p", { class: `action-result action-result--${action.kind}` }, action.text) : null,
        )
      : null,
  );
}

/**
 * The open proposals, and those the viewer acted on in this page session whatever became of them (so the
 * outcome stays in view); the section is hidden when there are none.
 */
export function renderAmendments(root, progress, viewerRoles, controller) {
  const shown = (progress.amendments ?? []).filter(
    (a) => a.status === "open" || controller.actions[a.number] !== undefined,
  );
  root.hidden = shown.length === 0;
  root.replaceChildren(
    h("h2", { id: "amendments-title", tabindex: "-1" }, "Proposed changes to the case"),
    h(
      "ol",
      { class: "amendment-list" },
      shown.map((a) => proposalItem(a, progress, viewerRoles, controller)),
    ),
  );
}
