// Formatting for the page: amounts, addresses, times and countdowns. No DOM here.

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";

/** An amount in the asset's smallest unit as text: ETH with its 18 decimals, any other token in raw units. */
export function formatAmount(amount, asset) {
  if (asset !== ZERO_ADDRESS) return `${BigInt(amount).toLocaleString("en-US")} units`;
  const wei = BigInt(amount);
  const whole = wei / 10n ** 18n;
  const fraction = (wei % 10n ** 18n).toString().padStart(18, "0").replace(/0+$/, "");
  return `${whole.toLocaleString("en-US")}${fraction ? `.${fraction}` : ""} ETH`;
}

export function shortAddress(address) {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

/** The same address, whatever its letter case (checksummed or not). */
export function sameAddress(a, b) {
  return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

const DATE_TIME = new Intl.DateTimeFormat("en-GB", {
  dateStyle: "medium",
  timeStyle: "short",
  timeZone: "UTC",
});

/** A moment as "25 Nov 2026, 14:30 UTC" (the chain's time is UTC). */
export function formatMoment(iso) {
  return `${DATE_TIME.format(new Date(iso))} UTC`;
}

/** Milliseconds as "2 d 3 h 4 min 5 s", leaving out leading zero units. */
export function formatDuration(ms) {
  let seconds = Math.max(0, Math.ceil(ms / 1000));
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
    const count = Math.floor(seconds / size);
    seconds -= count * size;
    if (count > 0 || parts.length > 0) parts.push(`${count} ${unit}`);
  }
  parts.push(`${seconds} s`);
  return parts.join(" ");
}

export const ROLE_LABELS = { bank: "Bank", lawyer: "Lawyer", buyer: "Buyer", seller: "Seller" };

export function roleLabel(role) {
  return ROLE_LABELS[role] ?? role;
}
