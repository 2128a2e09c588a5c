/**
 * Which URLs a subscription may name: http(s) only, and (unless a setting allows it, for local testing) no host
 * that resolves to a loopback, private, link-local, multicast or otherwise non-public address. Every address the
 * name resolves to is checked, so a name with one public and one private address is refused. The check is made
 * again before each attempt, and once more as the attempt connects (`publicOnlyLookup`, the address it connects
 * to), so a name re-pointed at a private address after it was accepted (DNS rebinding) is refused too.
 */
import { lookup as lookupCallback, type LookupAddress, type LookupOptions } from "node:dns";
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

const NON_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  NON_PUBLIC.addSubnet(net, prefix, "ipv4");
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b::", 96],
  ["100::", 64],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const)
  NON_PUBLIC.addSubnet(net, prefix, "ipv6");

/** Why a URL is refused, or null when it may be used. */
export async function refusalOf(url: string, allowPrivate: boolean): Promise<string | null> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "not a URL";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return "only http and https URLs are delivered to";
  if (parsed.username || parsed.password) return "a URL with credentials in it is refused: put a token in its path";
  if (allowPrivate) return null;
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
    } catch {
      return `the host ${host} does not resolve`;
    }
  }
  for (const address of addresses) {
    if (isNonPublic(address))
      return `the host ${host} resolves to ${address}, a loopback, private, link-local or otherwise non-public address (the setting WEBHOOKS_ALLOW_PRIVATE_URLS=true allows it, for local testing)`;
  }
  return addresses.length === 0 ? `the host ${host} does not resolve` : null;
}

export function isNonPublic(address: string): boolean {
  const family = isIP(address) === 6 ? "ipv6" : "ipv4";
  const mapped = family === "ipv6" ? mappedIpv4(address) : null;
  return mapped ? NON_PUBLIC.check(mapped, "ipv4") : NON_PUBLIC.check(address, family);
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for `http.request` that fails the connection when the name resolves to any non-public address. */
export function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookupCallback(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, "", 0);
    const refused = addresses.find((a) => isNonPublic(a.address));
    if (refused) {
      const why = new Error(
        `${hostname} resolves to ${refused.address}, not a public address`,
      ) as NodeJS.ErrnoException;
      why.code = "ENONPUBLIC";
      return callback(why, "", 0);
    }
    if (options.all) callback(null, addresses);
    else callback(null, addresses[0].address, addresses[0].family);
  });
}

/** The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d, or ::ffff:7f00:1 as URLs write it) carries, or null. */
function mappedIpv4(address: string): string | null {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (dotted) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!hex) return null;
  const [hi, lo] = [parseInt(hex[1], 16), parseInt(hex[2], 16)];
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join(".");
}
