/**
 * Standard Webhooks signatures, made with node:crypto: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`, keyed
 * with the secret's base64 part (after `whsec_`). Several signatures go in one header, separated by spaces, so that
 * during a secret's rotation both the new and the old secret sign and a receiver holding either one verifies.
 */
import { createHmac, randomBytes } from "node:crypto";

export const SECRET_PREFIX = "whsec_";

/** A new secret: `whsec_` + 32 random bytes in base64, as the specification's libraries expect. */
export function newSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString("base64");
}

/** One `v1,` signature of the message with the secret. */
export function signatureOf(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/** The three headers of one attempt, signed with every secret given (the newest first). */
export function webhookHeaders(
  secrets: readonly string[],
  id: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": secrets.map((s) => signatureOf(s, id, timestamp, body)).join(" "),
  };
}
