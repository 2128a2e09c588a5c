// The money of a case in plain words: what each payer put in, what the seller received, what came back to
// whom, in the asset's unit (ETH, or the token's raw units), with the operator's indicative conversion beside
// ETH amounts where one is set (GET /display). The contract's own view of it (the asset's address) is a
// technical detail.

import { h } from "./dom.js";
import { formatAmount, sameAddress, shortAddress } from "./format.js";
import { who } from "./people.js";

const ETH = "0x0000000000000000000000000000000000000000";

/** "about £2,250" for an ETH amount at the operator's rate, or null (no rate set, or not ETH). */
export function converted(amount, asset, currency) {
  if (!currency || asset !== ETH) return null;
  const value = (Number(BigInt(amount) / 10n ** 12n) / 1e6) * Number(currency.perEth);
  const format = new Intl.NumberFormat("en-GB", {
    style: "currency",
    currency: currency.code,
    maximumFractionDigits: value >= 100 ? 0 : 2,
  });
  return `about ${format.format(value)}`;
}

/** "0.9 ETH (about £2,250)", or "0.9 ETH" without a rate. */
export function moneyWords(amount, asset, currency) {
  const other = converted(amount, asset, currency);
  return other ? `${formatAmount(amount, asset)} (${other})` : formatAmount(amount, asset);
}

/** "Amounts in GBP are indicative: …", or null without a rate (or for a token). */
export function indicativeNote(asset, currency) {
  if (!currency || asset !== ETH) return null;
  const rate = new Intl.NumberFormat("en-GB", { style: "currency", currency: currency.code }).format(
    Number(currency.perEth),
  );
  return `Amounts in ${currency.code} are indicative only: at 1 ETH = ${rate}, a rate set by the operator of this service, not a market price.`;
}

function roleAt(progress, address) {
  return Object.keys(progress.parties).find((role) => sameAddress(progress.parties[role], address)) ?? null;
}

/**
 * Who got what out of the escrow: `[{ role, address, amount, withdrawn }]`, from the credits still to
 * withdraw and what the history shows withdrawn (`withdrawn`: address -> amount), one entry per payee.
 */
export function payouts(progress, withdrawn) {
  const byPayee = new Map();
  const add = (address, amount, kind) => {
    const key = address.toLowerCase();
    const entry = byPayee.get(key) ?? { role: roleAt(progress, address), address, owed: 0n, withdrawn: 0n };
    entry[kind] += BigInt(amount);
    byPayee.set(key, entry);
  };
  for (const [address, amount] of Object.entries(progress.escrow.credits)) add(address, amount, "owed");
  for (const [address, amount] of Object.entries(withdrawn)) add(address, amount, "withdrawn");
  return [...byPayee.values()];
}

function payeeWho(progress, entry, viewerRoles) {
  return entry.role ? who(progress, entry.role, viewerRoles) : `Another payee (${shortAddress(entry.address)})`;
}

/** "Sam Rivera (seller) received 0.9 ETH", with "… is owed … (to withdraw)" for what is still credited. */
export function payoutWords(progress, entry, viewerRoles, currency) {
  const name = payeeWho(progress, entry, viewerRoles);
  const money = (amount) => moneyWords(amount.toString(), progress.asset, currency);
  const parts = [];
  if (entry.withdrawn > 0n) parts.push(`received ${money(entry.withdrawn)}`);
  if (entry.owed > 0n) parts.push(`is owed ${money(entry.owed)}, to withdraw`);
  return `${name} ${parts.join(" and ")}`;
}

function payerLine(progress, role, paid, due, share, viewerRoles, currency) {
  const put = BigInt(paid) === 0n ? "nothing yet" : moneyWords(paid, progress.asset, currency);
  return h(
    "li",
    { "data-payer": role },
    `${who(progress, role, viewerRoles)} put in ${put} of the ${formatAmount(due, progress.asset)} ${share}`,
  );
}

/** The title of the stage that releases the money, from the workflow's definition (GET /workflows/:id). */
export function releaseStageTitle(progress, workflow) {
  const id = workflow?.stages.find((stage) => stage.action === "release")?.id;
  return progress.stages.find((stage) => stage.id === id)?.title ?? null;
}

function heldLine(progress, workflow) {
  const release = releaseStageTitle(progress, workflow);
  if (progress.escrow.released) return "Released: the escrow has paid out.";
  if (progress.status === "expired" || progress.status === "cancelled")
    return "The case ended before the release: each payer's money is credited back to it.";
  if (progress.escrow.funded)
    return `All the money is in escrow. It goes to the seller when ${release ?? "the releasing stage"} completes.`;
  return `The escrow holds what the payers put in until ${release ?? "the releasing stage"} completes.`;
}

/**
 * The money card (#escrow). `withdrawn`: address -> amount paid out, from the history; `currency`: GET
 * /display's, or null; `workflow`: GET /workflows/:id, or null while it loads.
 */
export function renderMoney(root, progress, { withdrawn, viewerRoles, currency, workflow }) {
  const { escrow, terms, asset } = progress;
  const out = payouts(progress, withdrawn);
  const seller = out.filter((entry) => entry.role === "seller");
  const back = out.filter((entry) => entry.role !== "seller");
  const ended = escrow.released || progress.status === "expired" || progress.status === "cancelled";
  // replaceChildren would write a null as the text "null": the parts left out are filtered first.
  const parts = [
    h("h2", {}, "Money"),
    h("p", { class: "price" }, `Price: ${moneyWords(terms.price, asset, currency)}`),
    h("h3", {}, "What each payer put in"),
    h(
      "ul",
      { class: "payers" },
      payerLine(progress, "buyer", escrow.paidByBuyer, terms.deposit, "deposit", viewerRoles, currency),
      payerLine(progress, "bank", escrow.paidByBank, terms.loan, "loan", viewerRoles, currency),
    ),
    h("p", { class: "held" }, heldLine(progress, workflow)),
    h("h3", {}, "What the seller received"),
    seller.length > 0
      ? h(
          "ul",
          { class: "payouts" },
          seller.map((entry) =>
            h("li", { "data-payee": "seller" }, payoutWords(progress, entry, viewerRoles, currency)),
          ),
        )
      : h(
          "p",
          { class: "payouts-none" },
          escrow.released ? "Nothing." : "Nothing yet: the seller is paid at the release.",
        ),
    ended || back.length > 0 ? h("h3", {}, "What came back") : null,
    back.length > 0
      ? h(
          "ul",
          { class: "payouts" },
          back.map((entry) =>
            h("li", { "data-payee": entry.role ?? "other" }, payoutWords(progress, entry, viewerRoles, currency)),
          ),
        )
      : ended
        ? h("p", { class: "payouts-none" }, "Nothing came back to anyone: every payer paid exactly its share.")
        : null,
    indicativeNote(asset, currency) ? h("p", { class: "indicative" }, indicativeNote(asset, currency)) : null,
    h(
      "p",
      { class: "technical" },
      "Asset: ",
      asset === ETH ? "ETH" : h("code", { class: "address" }, asset),
      escrow.funded ? " · funded" : " · not funded",
      escrow.released ? " · released" : "",
    ),
  ];
  root.replaceChildren(...parts.filter((part) => part !== null));
}
