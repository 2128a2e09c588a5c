/**
 * `Idempotency-Key`: the same key and body from the same principal give the same answer and one effect.
 *
 * A record is written "in progress" before the handler runs and "done" with the answer after; a second
 * request meanwhile hears 409 (in flight). Only successful answers are kept: an error had no effect, so the
 * same key may try again (a too-early sign-off, say, once the time has come). The handler also hands the
 * engine `${principalId}:${key}` as its own idempotency key, so if this process dies between the engine's
 * durable outbox write and the record's "done", the retry finds the engine's submission instead of making a
 * second one. A record left "in progress" by an earlier process (another boot id) is therefore safe to run
 * again, and is.
 */
import { createHash, randomUUID } from "node:crypto";
import { canonicalJson } from "../workflows/canonical-json";
import type { Db } from "./store";

export type IdempotencyStart =
  { kind: "new" } | { kind: "replay"; status: number; body: unknown } | { kind: "in-flight" } | { kind: "mismatch" };

interface RecordRow {
  request_hash: string;
  state: "in-progress" | "done";
  boot_id: string;
  status: number | null;
  body: string | null;
}

/** Records older than this are forgotten (a key is meant for retries, not for ever). */
const KEEP_MS = 24 * 60 * 60 * 1000;

export class IdempotencyStore {
  /** This process: records in progress under another boot id were left by a crash. */
  readonly bootId = randomUUID();
  private readonly select;
  private readonly insert;
  private readonly takeOver;
  private readonly finishStmt;
  private readonly remove;
  private readonly prune;
  private lastPrune = 0;

  constructor(private readonly db: Db) {
    this.select = db.prepare<[string, string], RecordRow>(
      "SELECT request_hash, state, boot_id, status, body FROM idempotency_records WHERE principal_id = ? AND key = ?",
    );
    this.insert = db.prepare(
      "INSERT INTO idempotency_records (principal_id, key, request_hash, state, boot_id, created_at) VALUES (?, ?, ?, 'in-progress', ?, ?)",
    );
    this.takeOver = db.prepare(
      "UPDATE idempotency_records SET boot_id = ?, created_at = ? WHERE principal_id = ? AND key = ? AND state = 'in-progress'",
    );
    this.finishStmt = db.prepare(
      "UPDATE idempotency_records SET state = 'done', status = ?, body = ? WHERE principal_id = ? AND key = ?",
    );
    this.remove = db.prepare("DELETE FROM idempotency_records WHERE principal_id = ? AND key = ?");
    this.prune = db.prepare("DELETE FROM idempotency_records WHERE created_at < ? AND state = 'done'");
  }

  /** Claims the key for this request, or says why not (in one transaction: two requests can't both claim it). */
  begin(principalId: string, key: string, requestHash: string): IdempotencyStart {
    this.pruneNowAndThen();
    return this.db.transaction((): IdempotencyStart => {
      const row = this.select.get(principalId, key);
      const now = Date.now();
      if (!row) {
        this.insert.run(principalId, key, requestHash, this.bootId, now);
        return { kind: "new" };
      }
      if (row.request_hash !== requestHash) return { kind: "mismatch" };
      if (row.state === "done")
        return { kind: "replay", status: row.status as number, body: row.body === null ? null : JSON.parse(row.body) };
      if (row.boot_id === this.bootId) return { kind: "in-flight" };
      this.takeOver.run(this.bootId, now, principalId, key);
      return { kind: "new" };
    })();
  }

  finish(principalId: string, key: string, status: number, body: unknown): void {
    this.finishStmt.run(status, JSON.stringify(body ?? null), principalId, key);
  }

  /** The request failed and had no effect: forget the key so that it may be tried again. */
  abandon(principalId: string, key: string): void {
    this.remove.run(principalId, key);
  }

  private pruneNowAndThen(): void {
    const now = Date.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    this.prune.run(now - KEEP_MS);
  }
}

/**
 * The engine key of a request that must be idempotent even when the client sends no Idempotency-Key (opening
 * a case): derived from the principal and the request's canonical content. It holds a space, which a client's
 * key never does (visible ASCII only), so it can't meet a client's key.
 */
export function derivedEngineKey(principalId: string, purpose: string, canonical: unknown): string {
  return `${principalId}:derived ${purpose} ${createHash("sha256").update(canonicalJson(canonical)).digest("hex")}`;
}

/** The request's fingerprint: method, path and body (keys sorted, so the order of fields does not matter). */
export function requestHash(method: string, path: string, body: unknown): string {
  return createHash("sha256")
    .update(`${method.toUpperCase()} ${path}\n${canonicalJson(body ?? null)}`)
    .digest("hex");
}
