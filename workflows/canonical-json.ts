/**
 * Canonical JSON: one string per value, whatever the order of its keys, so that equal values give equal
 * bytes. A definition's hash (and so a template's id on chain) is keccak256 of these bytes, the relayer
 * compares intents with them under an idempotency key, and the server fingerprints requests with them: the
 * exact bytes are a contract, and this is the only place they are written.
 *
 * Objects with keys sorted by UTF-16 code units, no whitespace, strings escaped as `JSON.stringify` does,
 * numbers in decimal, bigints as decimal strings (an amount is the same whether it came as `1n` or "1"),
 * `undefined` fields left out; the bytes hashed are its UTF-8. A value JSON cannot say (NaN, Infinity,
 * `undefined` outside an object, a function) throws rather than being written as something else.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`canonical JSON has no ${value}`);
    return JSON.stringify(value);
  }
  if (typeof value === "bigint") return JSON.stringify(value.toString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  throw new Error(`canonical JSON has no ${typeof value}`);
}
