/**
 * The relayer's outbox in SQLite: every submission (one per idempotency key), every transaction signed for a
 * (sender, nonce), and each sender's next nonce. Every change of state is one SQLite transaction, so a crash
 * leaves either the state before it or the state after it; a signed transaction is committed here before it
 * is broadcast.
 */
import { relaxedTransaction, statementCache, type Db, type Migration, type Statement } from "../store/database";
import { IdempotencyConflictError } from "./errors";
import { canonicalJson, caseIdOf } from "./intents";
import type {
  Intent,
  Outcome,
  SentTransaction,
  Submission,
  SubmissionError,
  SubmissionStatus,
  TransactionStatus,
} from "./types";

export { IdempotencyConflictError };

/**
 * The outbox's tables. A transaction's signed bytes live once, in relayer_transactions (a batch of 64
 * sign-offs is about 50 kB of hex: a copy in each submission's row made every change of status rewrite
 * megabytes); each submission names its case (an opening's once the chain has named it) and its method, so
 * that what the chain lost is sent again in an order it accepts.
 */
export const OUTBOX_MIGRATIONS: readonly Migration[] = [
  {
    id: "relayer-1-outbox",
    sql: `
      CREATE TABLE relayer_submissions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        sender TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending','sent','mined','confirmed','failed','replaced')),
        nonce INTEGER,
        tx_hash TEXT,
        batch_index INTEGER,
        block_number INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        error_code TEXT,
        error_message TEXT,
        error_details TEXT,
        note TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        case_id TEXT,
        method TEXT
      );
      CREATE INDEX relayer_submissions_by_sender_status ON relayer_submissions (sender, status, id);
      CREATE INDEX relayer_submissions_by_nonce ON relayer_submissions (sender, nonce);
      CREATE INDEX relayer_submissions_by_case ON relayer_submissions (case_id, id);

      CREATE TABLE relayer_transactions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sender TEXT NOT NULL,
        nonce INTEGER NOT NULL,
        tx_hash TEXT NOT NULL UNIQUE,
        signed_tx TEXT NOT NULL,
        max_fee_per_gas TEXT NOT NULL,
        max_priority_fee_per_gas TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('sent','mined','confirmed','failed','replaced')),
        block_number INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX relayer_transactions_by_nonce ON relayer_transactions (sender, nonce, id);

      CREATE TABLE relayer_nonces (
        sender TEXT PRIMARY KEY,
        next_nonce INTEGER NOT NULL
      );
    `,
  },
];

/**
 * Refuses an outbox whose tables are not the ones above: one created by a pre-release engine (before
 * 2026-12-04) whose later migrations were folded into the first. Its submissions cannot be read safely, so
 * the engine says so rather than lose or double them.
 */
export function checkOutboxSchema(db: Db): void {
  const columns = new Set(
    db.prepare("SELECT name FROM pragma_table_info('relayer_submissions')").pluck().all() as string[],
  );
  const txColumns = new Set(
    db.prepare("SELECT name FROM pragma_table_info('relayer_transactions')").pluck().all() as string[],
  );
  if (!columns.has("case_id") || !txColumns.has("signed_tx")) {
    throw new Error(
      "this data folder's outbox was written by a pre-release engine (before 2026-12-04) whose tables this one does not read: " +
        "settle or copy out its pending submissions with that version, then start this one on a fresh data folder",
    );
  }
}

/** A submission with the signed bytes of the transaction that carries it, which live once, in relayer_transactions. */
const SELECT_SUBMISSIONS = `SELECT s.*, t.signed_tx FROM relayer_submissions s LEFT JOIN relayer_transactions t ON t.tx_hash = s.tx_hash`;

interface SubmissionRow {
  id: number;
  idempotency_key: string;
  kind: string;
  sender: string;
  payload: string;
  status: SubmissionStatus;
  nonce: number | null;
  signed_tx: string | null;
  tx_hash: string | null;
  batch_index: number | null;
  block_number: number | null;
  attempts: number;
  error_code: string | null;
  error_message: string | null;
  error_details: string | null;
  note: string | null;
  case_id: string | null;
  method: string | null;
  created_at: number;
  updated_at: number;
}

interface TransactionRow {
  id: number;
  sender: string;
  nonce: number;
  tx_hash: string;
  signed_tx: string;
  max_fee_per_gas: string;
  max_priority_fee_per_gas: string;
  status: TransactionStatus;
  block_number: number | null;
  created_at: number;
  updated_at: number;
}

function toSubmission(row: SubmissionRow): Submission {
  return {
    id: row.id,
    idempotencyKey: row.idempotency_key,
    kind: row.kind as Submission["kind"],
    sender: row.sender,
    payload: JSON.parse(row.payload) as Intent,
    status: row.status,
    nonce: row.nonce,
    rawTx: row.signed_tx,
    txHash: row.tx_hash,
    batchIndex: row.batch_index,
    blockNumber: row.block_number,
    attempts: row.attempts,
    error: row.error_code
      ? {
          code: row.error_code,
          message: row.error_message ?? "",
          ...(row.error_details ? { details: JSON.parse(row.error_details) as Record<string, unknown> } : {}),
        }
      : null,
    note: row.note,
    caseId: row.case_id ?? null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toTransaction(row: TransactionRow): SentTransaction {
  return {
    id: row.id,
    sender: row.sender,
    nonce: row.nonce,
    txHash: row.tx_hash,
    rawTx: row.signed_tx,
    maxFeePerGas: BigInt(row.max_fee_per_gas),
    maxPriorityFeePerGas: BigInt(row.max_priority_fee_per_gas),
    status: row.status,
    blockNumber: row.block_number,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** A transaction signed for a nonce: what `assign` and `replace` persist. */
export interface SignedTransaction {
  rawTx: string;
  txHash: string;
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

export class Outbox {
  /** Each SQL text compiled once (see statementCache). */
  private readonly prepare: (sql: string) => Statement;

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.prepare = statementCache(db);
  }

  /**
   * Records an intent under its idempotency key, or returns the submission already recorded under it.
   * The same key with a different intent (or sender) is an `IdempotencyConflictError`.
   */
  record(input: { idempotencyKey: string; sender: string; intent: Intent }): {
    submission: Submission;
    created: boolean;
  } {
    return this.db.transaction(() => this.recordOne(input)).immediate();
  }

  /**
   * Records several intents in ONE SQLite transaction (one fsync for all: a group commit). Each is recorded
   * as `record` would (in order: a key given twice is recorded once), or gets its own error; an error of one
   * leaves the others recorded.
   */
  recordMany(
    inputs: readonly { idempotencyKey: string; sender: string; intent: Intent }[],
  ): Array<{ submission: Submission; created: boolean } | { error: unknown }> {
    return this.db
      .transaction(() =>
        inputs.map((input) => {
          try {
            return this.recordOne(input);
          } catch (error) {
            return { error };
          }
        }),
      )
      .immediate();
  }

  private recordOne(input: { idempotencyKey: string; sender: string; intent: Intent }): {
    submission: Submission;
    created: boolean;
  } {
    const payload = canonicalJson(input.intent);
    const existing = this.rowByKey(input.idempotencyKey);
    if (existing) {
      if (existing.payload !== payload || existing.sender !== input.sender) {
        throw new IdempotencyConflictError(input.idempotencyKey, existing.id);
      }
      return { submission: toSubmission(existing), created: false };
    }
    const at = this.now();
    const { lastInsertRowid } = this.prepare(
      `INSERT INTO relayer_submissions (idempotency_key, kind, sender, payload, status, case_id, method, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)`,
    ).run(
      input.idempotencyKey,
      input.intent.kind,
      input.sender,
      payload,
      caseIdOf(input.intent),
      input.intent.kind === "call" ? input.intent.method : null,
      at,
      at,
    );
    return { submission: this.get(Number(lastInsertRowid))!, created: true };
  }

  get(id: number): Submission | undefined {
    const row = this.prepare(`${SELECT_SUBMISSIONS} WHERE s.id = ?`).get(id) as SubmissionRow | undefined;
    return row ? toSubmission(row) : undefined;
  }

  getByKey(idempotencyKey: string): Submission | undefined {
    const row = this.rowByKey(idempotencyKey);
    return row ? toSubmission(row) : undefined;
  }

  private rowByKey(key: string): SubmissionRow | undefined {
    return this.prepare(`${SELECT_SUBMISSIONS} WHERE s.idempotency_key = ?`).get(key) as SubmissionRow | undefined;
  }

  list(filter: { status?: SubmissionStatus; sender?: string } = {}): Submission[] {
    const rows = this.prepare(
      `${SELECT_SUBMISSIONS}
         WHERE (@status IS NULL OR s.status = @status) AND (@sender IS NULL OR s.sender = @sender) ORDER BY s.id`,
    ).all({ status: filter.status ?? null, sender: filter.sender ?? null }) as SubmissionRow[];
    return rows.map(toSubmission);
  }

  /** Submissions waiting for a nonce, oldest first. */
  pending(sender: string, limit = 1000): Submission[] {
    const rows = this.prepare(
      "SELECT * FROM relayer_submissions WHERE sender = ? AND status = 'pending' ORDER BY id LIMIT ?",
    ).all(sender, limit) as SubmissionRow[];
    return rows.map(toSubmission);
  }

  countUnsettled(): number {
    return this.prepare("SELECT COUNT(*) FROM relayer_submissions WHERE status NOT IN ('confirmed','failed')")
      .pluck()
      .get() as number;
  }

  countByStatus(): Record<SubmissionStatus, number> {
    const counts: Record<SubmissionStatus, number> = {
      pending: 0,
      sent: 0,
      mined: 0,
      confirmed: 0,
      failed: 0,
      replaced: 0,
    };
    const rows = this.prepare("SELECT status, COUNT(*) AS n FROM relayer_submissions GROUP BY status").all() as {
      status: SubmissionStatus;
      n: number;
    }[];
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }

  // ---------------------------------------------------------------- nonces

  nextNonce(sender: string): number | undefined {
    return this.prepare("SELECT next_nonce FROM relayer_nonces WHERE sender = ?").pluck().get(sender) as
      number | undefined;
  }

  /** Takes the chain's count of the sender's transactions (pending included) where it is ahead of ours. */
  initNonce(sender: string, chainPendingCount: number): number {
    return this.db
      .transaction(() => {
        const stored = this.nextNonce(sender);
        const next = Math.max(stored ?? 0, chainPendingCount);
        this.prepare(
          "INSERT INTO relayer_nonces (sender, next_nonce) VALUES (?, ?) ON CONFLICT(sender) DO UPDATE SET next_nonce = excluded.next_nonce",
        ).run(sender, next);
        return next;
      })
      .immediate();
  }

  /**
   * Gives the sender's next nonce to a transaction carrying `items`, signed by `sign` for that nonce, and
   * records it all at once: the counter, the signed transaction, the submissions' new state. Nothing is
   * consumed if `sign` throws.
   */
  assign(
    sender: string,
    items: readonly { submissionId: number; batchIndex: number | null }[],
    sign: (nonce: number) => SignedTransaction,
  ): SentTransaction {
    return this.db
      .transaction(() => {
        const nonce = this.nextNonce(sender);
        if (nonce === undefined) throw new Error(`no nonce counter for ${sender}: initNonce first`);
        const signed = sign(nonce);
        const at = this.now();
        const txId = this.insertTransaction(sender, nonce, signed, at);
        const update = this.prepare(
          `UPDATE relayer_submissions SET status = 'sent', nonce = ?, tx_hash = ?, batch_index = ?,
           attempts = attempts + 1, error_code = NULL, error_message = NULL, error_details = NULL, note = NULL, updated_at = ?
         WHERE id = ? AND status = 'pending'`,
        );
        for (const item of items) {
          const { changes } = update.run(nonce, signed.txHash, item.batchIndex, at, item.submissionId);
          if (changes !== 1) throw new Error(`submission ${item.submissionId} is no longer pending`);
        }
        this.prepare("UPDATE relayer_nonces SET next_nonce = ? WHERE sender = ?").run(nonce + 1, sender);
        return this.transactionById(txId);
      })
      .immediate();
  }

  /** Records a replacement (a fee bump) for the nonce of `previous`, which becomes `replaced`. */
  replace(previous: SentTransaction, signed: SignedTransaction): SentTransaction {
    return this.db
      .transaction(() => {
        const at = this.now();
        this.setTransactionStatus(previous.id, "replaced", null);
        const txId = this.insertTransaction(previous.sender, previous.nonce, signed, at);
        this.prepare(
          `UPDATE relayer_submissions SET tx_hash = ?, status = 'sent', attempts = attempts + 1, updated_at = ?
           WHERE sender = ? AND nonce = ? AND status IN ('sent','mined')`,
        ).run(signed.txHash, at, previous.sender, previous.nonce);
        return this.transactionById(txId);
      })
      .immediate();
  }

  /** Counts one more broadcast of the same signed transaction (a re-send after a drop or a restart). */
  countAttempt(sender: string, nonce: number): void {
    this.prepare(
      "UPDATE relayer_submissions SET attempts = attempts + 1, updated_at = ? WHERE sender = ? AND nonce = ? AND status IN ('sent','mined')",
    ).run(this.now(), sender, nonce);
  }

  /**
   * The nonce will not carry these submissions after all (the node refused the transaction for lack of
   * funds, or something else used the nonce): they go back to `pending`, the transactions become `replaced`,
   * and, when the nonce is the sender's last one given out, the counter takes it back.
   */
  release(sender: string, nonce: number, reason: SubmissionError, options: { giveBackNonce: boolean }): void {
    this.db
      .transaction(() => {
        const at = this.now();
        this.prepare(
          "UPDATE relayer_transactions SET status = 'replaced', updated_at = ? WHERE sender = ? AND nonce = ? AND status IN ('sent','mined')",
        ).run(at, sender, nonce);
        this.prepare(
          `UPDATE relayer_submissions SET status = 'pending', nonce = NULL, tx_hash = NULL, batch_index = NULL,
             block_number = NULL, error_code = ?, error_message = ?, error_details = ?, updated_at = ?
           WHERE sender = ? AND nonce = ? AND status IN ('sent','mined')`,
        ).run(reason.code, reason.message, reason.details ? JSON.stringify(reason.details) : null, at, sender, nonce);
        if (options.giveBackNonce) {
          this.prepare("UPDATE relayer_nonces SET next_nonce = ? WHERE sender = ? AND next_nonce = ?").run(
            nonce,
            sender,
            nonce + 1,
          );
        }
      })
      .immediate();
  }

  /** Sets the sender's next nonce (after a rollback left a gap below our counter that nothing of ours fills). */
  setNextNonce(sender: string, nonce: number): void {
    this.prepare("UPDATE relayer_nonces SET next_nonce = ? WHERE sender = ?").run(nonce, sender);
  }

  // ---------------------------------------------------------- transactions

  transactionById(id: number): SentTransaction {
    return toTransaction(this.prepare("SELECT * FROM relayer_transactions WHERE id = ?").get(id) as TransactionRow);
  }

  /** Every transaction signed for the nonce, newest first. */
  transactionsForNonce(sender: string, nonce: number): SentTransaction[] {
    const rows = this.prepare("SELECT * FROM relayer_transactions WHERE sender = ? AND nonce = ? ORDER BY id DESC").all(
      sender,
      nonce,
    ) as TransactionRow[];
    return rows.map(toTransaction);
  }

  transactions(sender?: string): SentTransaction[] {
    const rows = this.prepare(
      "SELECT * FROM relayer_transactions WHERE (@sender IS NULL OR sender = @sender) ORDER BY id",
    ).all({ sender: sender ?? null }) as TransactionRow[];
    return rows.map(toTransaction);
  }

  /** The sender's nonces with a transaction in flight (sent or mined, not yet settled), ascending. */
  inFlightNonces(sender: string): number[] {
    return this.prepare(
      "SELECT DISTINCT nonce FROM relayer_transactions WHERE sender = ? AND status IN ('sent','mined') ORDER BY nonce",
    )
      .pluck()
      .all(sender) as number[];
  }

  submissionsForNonce(sender: string, nonce: number): Submission[] {
    const rows = this.prepare(
      `${SELECT_SUBMISSIONS} WHERE s.sender = ? AND s.nonce = ? AND s.status IN ('sent','mined') ORDER BY s.id`,
    ).all(sender, nonce) as SubmissionRow[];
    return rows.map(toSubmission);
  }

  /** `tx` is in block `blockNumber`, not yet confirmed; the others for its nonce are replaced. */
  markMined(tx: SentTransaction, blockNumber: number, openedCases: ReadonlyMap<number, string> = new Map()): void {
    relaxedTransaction(this.db, () => {
      const named = this.prepare("UPDATE relayer_submissions SET case_id = ? WHERE id = ?");
      for (const [id, caseId] of openedCases) named.run(caseId, id);
      const at = this.now();
      this.replaceSiblings(tx);
      this.setTransactionStatus(tx.id, "mined", blockNumber);
      this.prepare(
        `UPDATE relayer_submissions SET status = 'mined', tx_hash = ?, block_number = ?, updated_at = ?
           WHERE sender = ? AND nonce = ? AND status IN ('sent','mined')`,
      ).run(tx.txHash, blockNumber, at, tx.sender, tx.nonce);
    });
  }

  /** Transactions settled (confirmed or failed on chain) in a block above `blockNumber`, by sender and nonce. */
  settledAbove(blockNumber: number): SentTransaction[] {
    const rows = this.prepare(
      "SELECT * FROM relayer_transactions WHERE status IN ('confirmed','failed') AND block_number > ? ORDER BY sender, nonce",
    ).all(blockNumber) as TransactionRow[];
    return rows.map(toTransaction);
  }

  /**
   * The chain lost the block that settled `tx` (a reorganisation, or a node restarted from an earlier save):
   * it and the submissions it carried are in flight again, their outcome forgotten.
   */
  unsettle(tx: SentTransaction): void {
    this.db
      .transaction(() => {
        const at = this.now();
        this.setTransactionStatus(tx.id, "sent", null);
        this.prepare(
          `UPDATE relayer_submissions SET status = 'sent', block_number = NULL, note = NULL, error_code = NULL, error_message = NULL,
             error_details = NULL, updated_at = ? WHERE tx_hash = ? AND status IN ('confirmed','failed')`,
        ).run(at, tx.txHash);
      })
      .immediate();
  }

  /** A settled `tx` is in block `blockNumber` now (a reorganisation mined it again in another block). */
  moveToBlock(tx: SentTransaction, blockNumber: number): void {
    if (tx.blockNumber === blockNumber) return;
    this.db
      .transaction(() => {
        this.prepare("UPDATE relayer_transactions SET block_number = ?, updated_at = ? WHERE id = ?").run(
          blockNumber,
          this.now(),
          tx.id,
        );
        this.prepare(
          "UPDATE relayer_submissions SET block_number = ?, updated_at = ? WHERE tx_hash = ? AND status IN ('confirmed','failed')",
        ).run(blockNumber, this.now(), tx.txHash);
      })
      .immediate();
  }

  /** A block reorganisation took `tx` out: it is in flight again. */
  markUnmined(tx: SentTransaction): void {
    relaxedTransaction(this.db, () => {
      this.setTransactionStatus(tx.id, "sent", null);
      this.prepare(
        "UPDATE relayer_submissions SET status = 'sent', block_number = NULL, updated_at = ? WHERE sender = ? AND nonce = ? AND status = 'mined'",
      ).run(this.now(), tx.sender, tx.nonce);
    });
  }

  /**
   * `tx` has its confirmations: it becomes `confirmed` (or `failed` if it reverted), the others for its
   * nonce `replaced`, and each submission it carried takes its outcome. Returns the settled submissions.
   */
  settle(
    tx: SentTransaction,
    blockNumber: number,
    reverted: boolean,
    outcomes: ReadonlyMap<number, Outcome>,
  ): Submission[] {
    // Not fsynced: the receipt settles it again after a power cut (see `relaxedTransaction`).
    return relaxedTransaction(this.db, () => {
      const carried = this.submissionsForNonce(tx.sender, tx.nonce);
      this.replaceSiblings(tx);
      this.setTransactionStatus(tx.id, reverted ? "failed" : "confirmed", blockNumber);
      const at = this.now();
      const update = this.prepare(
        `UPDATE relayer_submissions SET status = ?, tx_hash = ?, block_number = ?, note = ?,
           error_code = ?, error_message = ?, error_details = ?, case_id = COALESCE(?, case_id), updated_at = ? WHERE id = ?`,
      );
      // Not applied for a reason that passes: back to pending, to be signed into a new transaction.
      const retry = this.prepare(
        `UPDATE relayer_submissions SET status = 'pending', nonce = NULL, tx_hash = NULL, batch_index = NULL,
           block_number = NULL, note = ?, error_code = NULL, error_message = NULL, error_details = NULL, updated_at = ? WHERE id = ?`,
      );
      for (const s of carried) {
        const o = outcomes.get(s.id) ?? { status: "confirmed" };
        if (o.status === "pending") {
          retry.run(o.note ?? null, at, s.id);
          continue;
        }
        update.run(
          o.status,
          tx.txHash,
          blockNumber,
          o.note ?? null,
          o.error?.code ?? null,
          o.error?.message ?? null,
          o.error?.details ? JSON.stringify(o.error.details) : null,
          o.openedCaseId ?? null,
          at,
          s.id,
        );
      }
      // Read back in one query, not one per submission: a batch carries up to a few hundred.
      const ids = JSON.stringify(carried.map((s) => s.id));
      return (
        this.prepare(`${SELECT_SUBMISSIONS} WHERE s.id IN (SELECT value FROM json_each(?)) ORDER BY s.id`).all(
          ids,
        ) as SubmissionRow[]
      ).map(toSubmission);
    });
  }

  /**
   * The submission `s` must wait for before it is sent (again), if any, derived from the intents: anything about
   * a case waits for that case's opening while the opening is not on chain (pending, or sent again after the
   * chain lost it); anything but a deposit waits for the deposits of its case recorded before it that are in
   * flight; an opening waits for the openings the chain lost that had opened a case with a lower id (so every
   * case gets its id back), and a new opening for every lost one.
   */
  blockerOf(s: Submission): Submission | undefined {
    const method = s.payload.kind === "call" ? s.payload.method : null;
    let row: SubmissionRow | undefined;
    if (method === "openCase") {
      row = this.prepare(
        `${SELECT_SUBMISSIONS} WHERE s.method = 'openCase' AND s.case_id IS NOT NULL AND s.status IN ('pending','sent') AND s.id != @id
             AND (@caseId IS NULL OR CAST(s.case_id AS INTEGER) < CAST(@caseId AS INTEGER)) ORDER BY CAST(s.case_id AS INTEGER) LIMIT 1`,
      ).get({ id: s.id, caseId: s.caseId }) as SubmissionRow | undefined;
    } else if (s.caseId !== null) {
      row = this.prepare(
        `${SELECT_SUBMISSIONS} WHERE s.case_id = @caseId AND s.id != @id AND (
             (s.method = 'openCase' AND s.status IN ('pending','sent'))
             OR (@isDeposit = 0 AND s.method = 'deposit' AND s.status = 'sent' AND s.id < @id)
           ) ORDER BY s.id LIMIT 1`,
      ).get({ id: s.id, caseId: s.caseId, isDeposit: method === "deposit" ? 1 : 0 }) as SubmissionRow | undefined;
    }
    return row ? toSubmission(row) : undefined;
  }

  /** The opening of `caseId` this outbox holds (the chain named the case it opened), if any. */
  openingOf(caseId: string): Submission | undefined {
    const row = this.prepare(
      `${SELECT_SUBMISSIONS} WHERE s.case_id = ? AND s.method = 'openCase' AND s.status != 'failed' ORDER BY s.id DESC LIMIT 1`,
    ).get(caseId) as SubmissionRow | undefined;
    return row ? toSubmission(row) : undefined;
  }

  /** The openings whose case the chain has named (once at least), not failed. */
  openingsWithCase(): Submission[] {
    const rows = this.prepare(
      `${SELECT_SUBMISSIONS} WHERE s.method = 'openCase' AND s.case_id IS NOT NULL AND s.status != 'failed' ORDER BY s.id`,
    ).all() as SubmissionRow[];
    return rows.map(toSubmission);
  }

  /** The highest block a transaction of ours was counted in (mined, confirmed or failed), or null. */
  highestRecordedBlock(): number | null {
    return this.prepare(
      "SELECT MAX(block_number) FROM relayer_transactions WHERE status IN ('mined','confirmed','failed')",
    )
      .pluck()
      .get() as number | null;
  }

  /** Tells every submission of `sender` waiting for a nonce why it waits (null: it no longer does). */
  noteWaiting(sender: string, reason: SubmissionError | null): void {
    // Only rows that change: a paused sender is told again at every poll, mostly the same.
    this.prepare(
      `UPDATE relayer_submissions SET note = @message, error_code = @code, error_message = @message, error_details = @details, updated_at = @at
         WHERE sender = @sender AND status = 'pending' AND (@set = 1 OR error_code = 'RELAYER_OUT_OF_FUNDS')
           AND (error_code IS NOT @code OR error_message IS NOT @message OR error_details IS NOT @details OR note IS NOT @message)`,
    ).run({
      message: reason?.message ?? null,
      code: reason?.code ?? null,
      details: reason?.details ? JSON.stringify(reason.details) : null,
      at: this.now(),
      sender,
      set: reason ? 1 : 0,
    });
  }

  /** Says on a pending submission why it waits (null: it no longer does), without touching its error. */
  noteWhy(id: number, note: string | null): void {
    this.prepare(
      "UPDATE relayer_submissions SET note = ?, updated_at = ? WHERE id = ? AND status = 'pending' AND note IS NOT ?",
    ).run(note, this.now(), id, note);
  }

  /** Settles a submission that never needed a transaction (refused at estimation, or already done). */
  settleWithoutTransaction(id: number, outcome: Outcome): Submission {
    this.prepare(
      `UPDATE relayer_submissions SET status = ?, note = ?, error_code = ?, error_message = ?, error_details = ?, updated_at = ?
         WHERE id = ? AND status = 'pending'`,
    ).run(
      outcome.status,
      outcome.note ?? null,
      outcome.error?.code ?? null,
      outcome.error?.message ?? null,
      outcome.error?.details ? JSON.stringify(outcome.error.details) : null,
      this.now(),
      id,
    );
    return this.get(id)!;
  }

  /**
   * Stores a signed transaction as `sent`. Signatures are deterministic (RFC 6979), so the same nonce, fees
   * and data signed again give the same hash: a row released earlier is then taken up again.
   */
  private insertTransaction(sender: string, nonce: number, signed: SignedTransaction, at: number): number {
    this.prepare(
      `INSERT INTO relayer_transactions (sender, nonce, tx_hash, signed_tx, max_fee_per_gas, max_priority_fee_per_gas, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, 'sent', ?, ?)
         ON CONFLICT(tx_hash) DO UPDATE SET status = 'sent', block_number = NULL, updated_at = excluded.updated_at`,
    ).run(
      sender,
      nonce,
      signed.txHash,
      signed.rawTx,
      signed.maxFeePerGas.toString(),
      signed.maxPriorityFeePerGas.toString(),
      at,
      at,
    );
    return this.prepare("SELECT id FROM relayer_transactions WHERE tx_hash = ?").pluck().get(signed.txHash) as number;
  }

  private replaceSiblings(tx: SentTransaction): void {
    this.prepare(
      "UPDATE relayer_transactions SET status = 'replaced', updated_at = ? WHERE sender = ? AND nonce = ? AND id != ? AND status != 'replaced'",
    ).run(this.now(), tx.sender, tx.nonce, tx.id);
  }

  private setTransactionStatus(id: number, status: TransactionStatus, blockNumber: number | null): void {
    this.prepare("UPDATE relayer_transactions SET status = ?, block_number = ?, updated_at = ? WHERE id = ?").run(
      status,
      blockNumber,
      this.now(),
      id,
    );
  }
}
