// Formatting for the page: amounts, addresses, times (the viewer's and the jurisdiction's) and countdowns. No DOM here.

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

/** The viewer's own time zone, as the browser has it. */
export const VIEWER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

const VIEWER_TIME = new Intl.DateTimeFormat("en-GB", {
  weekday: "short",
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});
// American English names more zones by their letters ("EST", "PST") where British English says "GMT-5".
const VIEWER_ZONE_NAME = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" });

function viewerTime(date) {
  const zone = VIEWER_ZONE_NAME.formatToParts(date).find((part) => part.type === "timeZoneName")?.value ?? VIEWER_ZONE;
  return `${VIEWER_TIME.format(date)} ${zone}`;
}

/** "Thu 10 Dec" and "23:59:59" of a moment in `zone`, and its wall clock as one comparable string. */
function wallClock(date, zone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      weekday: "short",
      day: "numeric",
      month: "short",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    })
      .formatToParts(date)
      .map((part) => [part.type, part.value]),
  );
  return {
    day: `${parts.weekday} ${parts.day} ${parts.month}`,
    time: `${parts.hour}:${parts.minute}`,
    seconds: parts.second,
    all: `${parts.year} ${parts.month} ${parts.day} ${parts.hour}:${parts.minute}`,
  };
}

/** A zone's name as people say it: "America/New_York" as "New York", "Etc/UTC" as "UTC". */
export function zoneName(zone) {
  if (/^(Etc\/)?(UTC|GMT|Zulu)$/i.test(zone)) return "UTC";
  return zone.split("/").pop().replace(/_/g, " ");
}

/**
 * The same moment's wall clock in `zone`, in words: "Fri 11 Dec, 14:30", or at midnight the day it begins
 * ("midnight at the start of Fri 11 Dec", for a moment from which something is possible) or ends ("midnight at
 * the end of Thu 10 Dec", for a deadline).
 */
function jurisdictionWords(date, zone, edge) {
  const wall = wallClock(date, zone);
  if (wall.time === "00:00" && wall.seconds === "00") {
    return edge === "start"
      ? `midnight at the start of ${wall.day}`
      : `midnight at the end of ${wallClock(new Date(date.getTime() - 1), zone).day}`;
  }
  if (wall.time === "23:59" && wall.seconds === "59") return `midnight at the end of ${wall.day}`;
  return `${wall.day}, ${wall.time}`;
}

/**
 * A moment in the viewer's time zone, "Fri 11 Dec 2026, 05:00 GMT", and, when the case's jurisdiction keeps
 * another clock, its wall clock there beside it: "(midnight at the end of Thu 10 Dec, New York time)". Legal
 * days are the jurisdiction's, so a deadline reads right for the buyer and the lawyer wherever they are.
 * `edge`: "start" for a moment from which something is possible, "end" (the default) for a deadline.
 */
export function formatMoment(iso, jurisdictionZone = null, { edge = "end" } = {}) {
  const date = new Date(iso);
  const mine = viewerTime(date);
  if (!jurisdictionZone) return mine;
  let differs;
  try {
    differs = wallClock(date, jurisdictionZone).all !== wallClock(date, VIEWER_ZONE).all;
  } catch {
    return mine; // A zone this browser does not know: its own clock is still right.
  }
  return differs
    ? `${mine} (${jurisdictionWords(date, jurisdictionZone, edge)}, ${zoneName(jurisdictionZone)} time)`
    : mine;
}

/**
 * What a stage waits for, as the API words it ("3 business days from Closing Disclosure (until 2030-11-16T05:00:00.000Z)"),
 * with any instant in it shown as the page shows moments.
 */
export function formatWaitsFor(words, jurisdictionZone = null) {
  return words.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?Z/g, (iso) =>
    formatMoment(iso, jurisdictionZone, { edge: "start" }),
  );
}

/** Milliseconds as "2 d 3 h 4 min 5 s", leaving out leading zero units. */
export function formatDuration(ms) {
  let seconds = Math.max(0, Math.ceil(ms / 1000));
  const parts = [];
  for (const [unit, size] of [
    ["d", 86400],
    ["h", 3600],
    ["min", 60],
  ]) {
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
