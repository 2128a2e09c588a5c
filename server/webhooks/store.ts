/**
 * The webhooks' tables, in the server's SQLite file beside the principals: subscriptions (with their secrets, the
 * old one kept through a rotation's grace period), deliveries (one per event per subscription, unique by the
 * event's key, so deriving an event twice makes one delivery) with their attempts, and the dispatcher's cursor in
 * the engine's event log. The cursor moves in the same transaction that inserts the deliveries it read, so a kill
 * at any moment loses no event and doubles none. Those two writes, and each attempt's record, are committed without
 * an fsync (relaxedTransaction): safe from a process crash as every WAL commit is, and what a power cut could
 * take is given again, the deliveries derived again from the stored events, a delivery whose record was lost
 * sent again (at least once). Subscriptions and secrets are committed in full.
 */
import { randomBytes } from "node:crypto";
import {
  migrate,
  relaxedTransaction,
  statementCache,
  type Db,
  type Migration,
  type Statement,
} from "../../engine/store/database";

export const WEBHOOK_MIGRATIONS: readonly Migration[] = [
  {
    id: "server-4-webhooks",
    sql: `CREATE TABLE webhook_subscriptions (
      id TEXT PRIMARY KEY,
      principal_id TEXT NOT NULL,
      url TEXT NOT NULL,
      event_types TEXT NOT NULL,
      business_days_before INTEGER,
      description TEXT,
      created_at INTEGER NOT NULL,
      from_block INTEGER NOT NULL,
      from_log_index INTEGER NOT NULL,
      disabled_at INTEGER,
      disabled_reason TEXT,
      deleted_at INTEGER
    );
    CREATE INDEX webhook_subscriptions_by_principal ON webhook_subscriptions (principal_id);
    CREATE TABLE webhook_secrets (
      subscription_id TEXT NOT NULL,
      secret TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER,
      PRIMARY KEY (subscription_id, secret)
    );
    CREATE TABLE webhook_deliveries (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      subscription_id TEXT NOT NULL,
      case_id TEXT,
      event_key TEXT NOT NULL,
      type TEXT NOT NULL,
      body TEXT NOT NULL,
      occurred_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts INTEGER NOT NULL DEFAULT 0,
      first_attempt_at INTEGER,
      next_attempt_at INTEGER NOT NULL,
      delivered_at INTEGER,
      last_status_code INTEGER,
      last_error TEXT,
      UNIQUE (subscription_id, event_key)
    );
    CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (status, subscription_id, case_id, seq);
    CREATE TABLE webhook_attempts (
      delivery_id TEXT NOT NULL,
      n INTEGER NOT NULL,
      started_at INTEGER NOT NULL,
      duration_ms REAL NOT NULL,
      status_code INTEGER,
      error TEXT,
      response_body TEXT,
      PRIMARY KEY (delivery_id, n)
    );
    CREATE TABLE webhook_cursor (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      block_number INTEGER NOT NULL,
      log_index INTEGER NOT NULL,
      block_hash TEXT
    );`,
  },
];

export interface Subscription {
  id: string;
  principalId: string;
  url: string;
  eventTypes: string[];
  businessDaysBefore: number | null;
  description: string | null;
  createdAt: number;
  from: { block: number; logIndex: number };
  disabledAt: number | null;
  disabledReason: string | null;
}

export interface Delivery {
  seq: number;
  id: string;
  subscriptionId: string;
  caseId: string | null;
  eventKey: string;
  type: string;
  body: string;
  occurredAt: number;
  createdAt: number;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  firstAttemptAt: number | null;
  nextAttemptAt: number;
  deliveredAt: number | null;
  lastStatusCode: number | null;
  lastError: string | null;
}

export interface Attempt {
  n: number;
  startedAt: number;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  responseBody: string | null;
}

/** What the dispatcher and the scheduler hand in: one event for one subscription. */
export interface NewDelivery {
  subscriptionId: string;
  caseId: string | null;
  eventKey: string;
  type: string;
  body: string;
  /** When the event happened (ms): the block's time, or the legal moment that came. */
  occurredAt: number;
}

export interface Cursor {
  block: number;
  logIndex: number;
  blockHash: string | null;
}

type Row = Record<string, unknown>;

function subscriptionOf(r: Row): Subscription {
  return {
    id: r.id as string,
    principalId: r.principal_id as string,
    url: r.url as string,
    eventTypes: JSON.parse(r.event_types as string) as string[],
    businessDaysBefore: (r.business_days_before as number | null) ?? null,
    description: (r.description as string | null) ?? null,
    createdAt: r.created_at as number,
    from: { block: r.from_block as number, logIndex: r.from_log_index as number },
    disabledAt: (r.disabled_at as number | null) ?? null,
    disabledReason: (r.disabled_reason as string | null) ?? null,
  };
}

function deliveryOf(r: Row): Delivery {
  return {
    seq: r.seq as number,
    id: r.id as string,
    subscriptionId: r.subscription_id as string,
    caseId: (r.case_id as string | null) ?? null,
    eventKey: r.event_key as string,
    type: r.type as string,
    body: r.body as string,
    occurredAt: r.occurred_at as number,
    createdAt: r.created_at as number,
    status: r.status as Delivery["status"],
    attempts: r.attempts as number,
    firstAttemptAt: (r.first_attempt_at as number | null) ?? null,
    nextAttemptAt: r.next_attempt_at as number,
    deliveredAt: (r.delivered_at as number | null) ?? null,
    lastStatusCode: (r.last_status_code as number | null) ?? null,
    lastError: (r.last_error as string | null) ?? null,
  };
}

const newId = (prefix: string) => prefix + randomBytes(12).toString("base64url");

export class WebhookStore {
  private readonly sql: (text: string) => Statement;

  constructor(readonly db: Db) {
    migrate(db, WEBHOOK_MIGRATIONS);
    this.sql = statementCache(db);
  }

  // ------------------------------------------------------------------ subscriptions

  createSubscription(
    input: Omit<Subscription, "id" | "createdAt" | "disabledAt" | "disabledReason">,
    secret: string,
    now: number,
  ): Subscription {
    const id = newId("wh_");
    this.db.transaction(() => {
      this.sql(
        `INSERT INTO webhook_subscriptions (id, principal_id, url, event_types, business_days_before, description,
           created_at, from_block, from_log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        id,
        input.principalId,
        input.url,
        JSON.stringify(input.eventTypes),
        input.businessDaysBefore,
        input.description,
        now,
        input.from.block,
        input.from.logIndex,
      );
      this.sql("INSERT INTO webhook_secrets (subscription_id, secret, created_at) VALUES (?, ?, ?)").run(
        id,
        secret,
        now,
      );
    })();
    return this.subscription(id)!;
  }

  subscription(id: string): Subscription | null {
    const row = this.sql("SELECT * FROM webhook_subscriptions WHERE id = ? AND deleted_at IS NULL").get(id) as
      Row | undefined;
    return row ? subscriptionOf(row) : null;
  }

  subscriptionsOf(principalId: string): Subscription[] {
    return (
      this.sql(
        "SELECT * FROM webhook_subscriptions WHERE principal_id = ? AND deleted_at IS NULL ORDER BY created_at, id",
      ).all(principalId) as Row[]
    ).map(subscriptionOf);
  }

  /**
   * Every subscription events are recorded for: a disabled one too (its deliveries wait in its log, in order, and
   * go once a redelivery makes it receive again); not a deleted one.
   */
  liveSubscriptions(): Subscription[] {
    return (
      this.sql("SELECT * FROM webhook_subscriptions WHERE deleted_at IS NULL ORDER BY created_at, id").all() as Row[]
    ).map(subscriptionOf);
  }

  deleteSubscription(id: string, now: number): void {
    this.sql("UPDATE webhook_subscriptions SET deleted_at = ? WHERE id = ?").run(now, id);
  }

  disable(id: string, reason: string, now: number): void {
    this.sql(
      "UPDATE webhook_subscriptions SET disabled_at = ?, disabled_reason = ? WHERE id = ? AND disabled_at IS NULL",
    ).run(now, reason, id);
  }

  /** Receives again (a redelivery asked for by its owner after it was disabled). */
  enable(id: string): void {
    this.sql("UPDATE webhook_subscriptions SET disabled_at = NULL, disabled_reason = NULL WHERE id = ?").run(id);
  }

  /** The secrets that sign now, the newest first: the current one, and an old one until its grace period ends. */
  secretsOf(id: string, now: number): string[] {
    return this.sql(
      `SELECT secret FROM webhook_secrets WHERE subscription_id = ? AND (expires_at IS NULL OR expires_at > ?)
         ORDER BY created_at DESC, rowid DESC`,
    )
      .pluck()
      .all(id, now) as string[];
  }

  /** A new secret; the ones before it sign too until `graceEndsAt`. */
  rotateSecret(id: string, secret: string, now: number, graceEndsAt: number): void {
    this.db.transaction(() => {
      this.sql("UPDATE webhook_secrets SET expires_at = MIN(COALESCE(expires_at, ?), ?) WHERE subscription_id = ?").run(
        graceEndsAt,
        graceEndsAt,
        id,
      );
      this.sql("INSERT INTO webhook_secrets (subscription_id, secret, created_at) VALUES (?, ?, ?)").run(
        id,
        secret,
        now,
      );
    })();
  }

  // ------------------------------------------------------------------ the dispatcher's cursor and inserts

  cursor(): Cursor | null {
    const row = this.sql("SELECT block_number, log_index, block_hash FROM webhook_cursor WHERE id = 1").get() as
      { block_number: number; log_index: number; block_hash: string | null } | undefined;
    return row ? { block: row.block_number, logIndex: row.log_index, blockHash: row.block_hash } : null;
  }

  /** Inserts the deliveries (an event already held for a subscription is skipped) and moves the cursor, in one transaction. */
  commit(deliveries: readonly NewDelivery[], cursor: Cursor | null, now: number): number {
    return relaxedTransaction(this.db, () => {
      let inserted = 0;
      const insert = this.sql(
        `INSERT OR IGNORE INTO webhook_deliveries (id, subscription_id, case_id, event_key, type, body, occurred_at,
           created_at, status, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)`,
      );
      for (const d of deliveries)
        inserted += insert.run(
          newId("msg_"),
          d.subscriptionId,
          d.caseId,
          d.eventKey,
          d.type,
          d.body,
          d.occurredAt,
          now,
          now,
        ).changes;
      if (cursor)
        this.sql(
          `INSERT INTO webhook_cursor (id, block_number, log_index, block_hash) VALUES (1, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET block_number = excluded.block_number, log_index = excluded.log_index,
             block_hash = excluded.block_hash`,
        ).run(cursor.block, cursor.logIndex, cursor.blockHash);
      return inserted;
    });
  }

  // ------------------------------------------------------------------ deliveries

  /**
   * Pending deliveries due by `now` of subscriptions that receive, each the earliest still pending of its
   * subscription and case: a later one waits while an earlier one is retrying (order per case).
   */
  due(now: number, limit: number): Delivery[] {
    return (
      this.sql(
        `SELECT d.* FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
           WHERE d.status = 'pending' AND s.disabled_at IS NULL AND s.deleted_at IS NULL AND d.next_attempt_at <= ?
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.status = 'pending'
               AND e.subscription_id = d.subscription_id AND e.case_id IS d.case_id AND e.seq < d.seq)
           ORDER BY d.seq LIMIT ?`,
      ).all(now, limit) as Row[]
    ).map(deliveryOf);
  }

  /** The earliest moment a pending delivery of a receiving subscription comes due, or null. */
  nextDueAt(): number | null {
    return (
      (this.sql(
        `SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
           WHERE d.status = 'pending' AND s.disabled_at IS NULL AND s.deleted_at IS NULL`,
      )
        .pluck()
        .get() as number | null) ?? null
    );
  }

  delivery(subscriptionId: string, id: string): Delivery | null {
    const row = this.sql("SELECT * FROM webhook_deliveries WHERE subscription_id = ? AND id = ?").get(
      subscriptionId,
      id,
    ) as Row | undefined;
    return row ? deliveryOf(row) : null;
  }

  /** The log, newest first, `limit` at a time before the sequence number `before`. */
  deliveriesOf(subscriptionId: string, limit: number, before?: number): Delivery[] {
    return (
      this.sql("SELECT * FROM webhook_deliveries WHERE subscription_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?").all(
        subscriptionId,
        before ?? Number.MAX_SAFE_INTEGER,
        limit,
      ) as Row[]
    ).map(deliveryOf);
  }

  attemptsOf(deliveryId: string): Attempt[] {
    return (this.sql("SELECT * FROM webhook_attempts WHERE delivery_id = ? ORDER BY n").all(deliveryId) as Row[]).map(
      (r) => ({
        n: r.n as number,
        startedAt: r.started_at as number,
        durationMs: r.duration_ms as number,
        statusCode: (r.status_code as number | null) ?? null,
        error: (r.error as string | null) ?? null,
        responseBody: (r.response_body as string | null) ?? null,
      }),
    );
  }

  /** Records an attempt and the delivery's new state in one transaction. */
  recordAttempt(
    delivery: Delivery,
    attempt: Omit<Attempt, "n">,
    outcome: { status: Delivery["status"]; nextAttemptAt: number },
  ): void {
    relaxedTransaction(this.db, () => {
      const n = delivery.attempts + 1;
      this.sql(
        `INSERT OR REPLACE INTO webhook_attempts (delivery_id, n, started_at, duration_ms, status_code, error, response_body)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        delivery.id,
        n,
        attempt.startedAt,
        attempt.durationMs,
        attempt.statusCode,
        attempt.error,
        attempt.responseBody,
      );
      this.sql(
        `UPDATE webhook_deliveries SET attempts = ?, status = ?, next_attempt_at = ?,
           first_attempt_at = COALESCE(first_attempt_at, ?), delivered_at = ?, last_status_code = ?, last_error = ?
           WHERE id = ?`,
      ).run(
        n,
        outcome.status,
        outcome.nextAttemptAt,
        attempt.startedAt,
        outcome.status === "delivered" ? attempt.startedAt + Math.round(attempt.durationMs) : null,
        attempt.statusCode,
        attempt.error,
        delivery.id,
      );
    });
  }

  /** Sends a delivery again now, with a fresh retry window; a failed one becomes pending again. */
  redeliver(id: string, now: number): void {
    this.sql(
      "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, first_attempt_at = NULL WHERE id = ?",
    ).run(now, id);
  }
}
