/**
 * The relayer: turns intents (a party's signed sign-off, or a call from one of the engine's keys) into
 * transactions on chain, and never loses or doubles one.
 *
 * Lifecycle of a submission (see `SubmissionStatus`):
 *   submit()  -> pending   recorded in the outbox in one SQLite transaction, under its idempotency key; the
 *                          caller may report it accepted from here on (a relayed sign-off's signature is in it).
 *   worker    -> sent      gas estimated (a revert here fails it with the decoded custom error and uses no
 *                          nonce; a batch of relayed sign-offs goes on an allowance instead, see sending.ts), funds checked, the sender's next nonce taken from the local counter, the
 *                          transaction signed and committed to the outbox, and only then broadcast.
 *             -> mined     a receipt was seen, with fewer confirmations than required.
 *             -> confirmed the receipt has `confirmations` blocks on it; a sign-off that someone else made first
 *                          (`SignOffSkipped(AlreadySignedOff)`, or a direct call refused with
 *                          `MortgageEscrowAlreadySignedOff`) is confirmed too, with a note: it is done.
 *             -> failed    refused at estimation, reverted on chain, or skipped as StaleEpoch, CaseNotOpen,
 *                          InvalidSignature or RoleNotRequired (each a code of its own; the rest of the batch
 *                          lands). A CaseNotOpen (or unknown case) of a case whose opening this outbox holds and
 *                          the chain does not is no failure: back to `pending`, sent once the opening lands.
 *   A transaction replaced by a fee bump becomes `replaced`; its submissions follow the new one. A nonce that
 *   something else used puts its submissions back to `pending`.
 *
 * Guarantees:
 * - Nonces per sender are contiguous: a counter kept in the outbox (started from the chain's pending count)
 *   is advanced only in the same SQLite transaction that stores the signed transaction using it.
 * - One idempotency key is one submission; a submission is signed once per nonce, and re-signed only to bump
 *   the fees of that same nonce. A send that fails or times out is never signed again blindly: the next poll
 *   reconciles it by its hash (known from the stored raw transaction) and the sender's nonce on chain; a
 *   dropped one is re-broadcast byte for byte (same hash).
 * - Relayed sign-offs that are ready within `batchWindowMs` go in one `signOffWithSignatures` transaction
 *   (up to `maxBatchSize`), identical signatures as one item.
 * - A transaction waiting `underpricedPolls` polls while the next block's base fee is above its maxFeePerGas is
 *   replaced with both fees raised by at least `feeBumpPercent` (>= 10).
 * - A sender that cannot pay (balance below gas x maxFeePerGas + value, or the node says so) is paused with
 *   `RelayerOutOfFundsError` (see `health()`), uses no nonce, and resumes on its own once funded.
 * - RPC faults are retried with exponential backoff and jitter.
 * - After a rollback (told by `noticeRollback`, or seen here: a block counted above the head, a receipt gone at
 *   restart) what the chain lost is in flight again and sent in causal order across the keys (see
 *   causal-order.ts): openings first, in their case ids' order, then deposits, then what needs them.
 * - A submission waiting for its key's funds carries the RELAYER_OUT_OF_FUNDS error and a note naming the key,
 *   its balance and what it needs.
 * - Restart: a new Relayer on the same database carries on: stored transactions are reconciled (re-broadcast
 *   if the node lacks them), pending submissions proceed.
 *
 * One Relayer (one process) per database and per key: two relayers sharing a key would share its nonces.
 *
 * This file is the facade, what the engine calls: intake (`submit`, `submitDurably`), keys, health, and the
 * worker's start, stop and drain. The work is done by the worker (worker.ts, on PollingLoop), reconciliation
 * (reconciliation.ts: receipts, lost transactions, rollback recovery), sending (sending.ts: drafting,
 * estimation, fees, bumps, broadcast) and the out-of-funds pause (funds.ts), sharing relayer-context.ts.
 */
import { EventEmitter } from "node:events";
import { getAddress, type BaseWallet, type Provider } from "ethers";
import type { EngineError } from "../errors";
import { migrate, type Db } from "../store/database";
import { CausalOrder } from "./causal-order";
import { InvalidIntentError, RelayerOutOfFundsError } from "./errors";
import { OutOfFundsPause } from "./funds";
import { normaliseIntent } from "./intents";
import { OUTBOX_MIGRATIONS, Outbox, checkOutboxSchema } from "./outbox";
import { Reconciliation } from "./reconciliation";
import type { RelayerContext, RelayerEvents, RelayerTimings, SenderState } from "./relayer-context";
import { Sending } from "./sending";
import type { Intent, Submission, SubmissionStatus } from "./types";
import { RelayerWorker } from "./worker";

export type { RelayerEvents, RelayerTimings } from "./relayer-context";

export interface RelayerOptions {
  db: Db;
  provider: Provider;
  /** The relayer's own key (sends batches of relayed sign-offs), and managed keys of parties for their calls. */
  wallets: { relayer: BaseWallet; parties?: readonly BaseWallet[] };
  escrowAddress: string;
  /** Blocks on top of (and including) the one holding a transaction before it counts as confirmed. */
  confirmations?: number;
  /** How long the first relayed sign-off waits for others to join its batch. */
  batchWindowMs?: number;
  maxBatchSize?: number;
  /** Transactions per sender that may wait for a receipt at once. */
  maxInFlight?: number;
  feeBumpPercent?: number;
  /**
   * Gas one relayed sign-off may use in a batch sent without an estimate: a contract wallet's ERC-1271 answer
   * (its stipend is 150,000 gas, SignatureVerifier.sol) and recording the sign-off with a completion beside
   * it; an EOA's item uses about 17,000. A batch that needs more reverts out of gas, and its sign-offs are
   * sent again in a batch estimated first.
   */
  signOffItemGas?: bigint;
  timings?: Partial<RelayerTimings>;
  random?: () => number;
  now?: () => number;
}

export interface RelayerHealth {
  running: boolean;
  paused: boolean;
  /** Why it is paused (RELAYER_OUT_OF_FUNDS), else the last RPC fault, if the last poll failed. */
  error: EngineError | null;
  senders: { address: string; nextNonce: number | null; paused: RelayerOutOfFundsError | null }[];
  submissions: Record<SubmissionStatus, number>;
}

const DEFAULT_TIMINGS: RelayerTimings = {
  pollIntervalMs: 250,
  sendTimeoutMs: 10_000,
  underpricedPolls: 3,
  backoffBaseMs: 200,
  backoffMaxMs: 15_000,
};

interface ToRecord {
  idempotencyKey: string;
  sender: string;
  intent: Intent;
}

export class Relayer extends EventEmitter<RelayerEvents> {
  readonly outbox: Outbox;
  readonly relayerAddress: string;
  private readonly ctx: RelayerContext;
  private readonly reconciliation: Reconciliation;
  private readonly worker: RelayerWorker;
  /** What `submitDurably` was given in this turn of the event loop, recorded together at its end. */
  private group: Array<{ input: ToRecord; resolve: (s: Submission) => void; reject: (e: unknown) => void }> = [];

  constructor(options: RelayerOptions) {
    super();
    const feeBumpPercent = options.feeBumpPercent ?? 12;
    if (feeBumpPercent < 10)
      throw new RangeError("feeBumpPercent must be at least 10: nodes refuse smaller replacements");
    migrate(options.db, OUTBOX_MIGRATIONS);
    checkOutboxSchema(options.db);
    const now = options.now ?? Date.now;
    this.outbox = new Outbox(options.db, now);
    this.relayerAddress = getAddress(options.wallets.relayer.address);
    this.ctx = {
      outbox: this.outbox,
      provider: options.provider,
      order: new CausalOrder(this.outbox, options.provider),
      events: this,
      escrowAddress: getAddress(options.escrowAddress),
      confirmations: Math.max(1, options.confirmations ?? 1),
      batchWindowMs: options.batchWindowMs ?? 20,
      maxBatchSize: options.maxBatchSize ?? 64,
      maxInFlight: options.maxInFlight ?? 16,
      signOffItemGas: options.signOffItemGas ?? 200_000n,
      feeBumpPercent,
      timings: { ...DEFAULT_TIMINGS, ...options.timings },
      random: options.random ?? Math.random,
      now,
      senders: new Map<string, SenderState>(),
      senderNoncesToInit: new Set<string>(),
      scheduleWake: (delayMs) => this.worker.scheduleWake(delayMs),
    };
    const funds = new OutOfFundsPause(this.ctx);
    const sending = new Sending(
      this.ctx,
      funds,
      (s) => this.reconciliation.openingMissing(s),
      () => this.worker.stopping,
    );
    this.reconciliation = new Reconciliation(this.ctx, sending);
    this.worker = new RelayerWorker(this.ctx, sending, this.reconciliation);
    for (const wallet of [options.wallets.relayer, ...(options.wallets.parties ?? [])]) this.addWallet(wallet);
  }

  /**
   * Records the intent durably (one SQLite transaction) and returns its submission; the same key and intent
   * return the same submission, the same key with another intent throws `IdempotencyConflictError`.
   */
  submit(intent: Intent, idempotencyKey: string): Submission {
    const [result] = this.record([this.toRecord(intent, idempotencyKey)]);
    if ("error" in result) throw result.error;
    return result.submission;
  }

  /**
   * As `submit`, but recorded together with every other `submitDurably` of the same turn of the event loop, in
   * one SQLite transaction: one fsync for the group instead of one each. Resolves once that transaction has
   * committed (synchronous = FULL: on disk), so a caller still reports nothing accepted that is not durable.
   */
  submitDurably(intent: Intent, idempotencyKey: string): Promise<Submission> {
    return new Promise((resolve, reject) => {
      let input: ToRecord;
      try {
        input = this.toRecord(intent, idempotencyKey);
      } catch (error) {
        reject(error);
        return;
      }
      this.group.push({ input, resolve, reject });
      if (this.group.length === 1) setImmediate(() => this.recordGroup());
    });
  }

  private toRecord(intent: Intent, idempotencyKey: string): ToRecord {
    const normal = normaliseIntent(intent);
    const sender = normal.kind === "relayed-sign-off" ? this.relayerAddress : normal.from;
    if (!this.ctx.senders.has(sender)) throw new InvalidIntentError(`the relayer holds no key for ${sender}`);
    return { idempotencyKey, sender, intent: normal };
  }

  private recordGroup(): void {
    const group = this.group;
    this.group = [];
    let results: ReturnType<Relayer["record"]>;
    try {
      results = this.record(group.map((g) => g.input));
    } catch (error) {
      for (const g of group) g.reject(error);
      return;
    }
    results.forEach((result, i) =>
      "error" in result ? group[i].reject(result.error) : group[i].resolve(result.submission),
    );
  }

  /**
   * The one way in: records the intents in one SQLite transaction and wakes the worker for what is new, at
   * once for a call, after the batch window for a relayed sign-off (others may join its batch).
   */
  private record(inputs: readonly ToRecord[]): ReturnType<Outbox["recordMany"]> {
    const results = this.outbox.recordMany(inputs);
    let wakeIn: number | null = null;
    for (const result of results) {
      if ("error" in result || !result.created) continue;
      const delay = result.submission.kind === "relayed-sign-off" ? this.ctx.batchWindowMs : 0;
      wakeIn = wakeIn === null ? delay : Math.min(wakeIn, delay);
    }
    if (wakeIn !== null) this.worker.scheduleWake(wakeIn);
    return results;
  }

  /**
   * A managed key the relayer may send from, added while it runs (a principal created at runtime). Its nonce
   * counter starts from the chain's count at the next poll, before anything is signed with it. Adding a key
   * it holds already changes nothing.
   */
  addWallet(wallet: BaseWallet): void {
    const address = getAddress(wallet.address);
    if (this.ctx.senders.has(address)) return;
    this.ctx.senders.set(address, { wallet, paused: null, waitingPolls: new Map() });
    this.ctx.senderNoncesToInit.add(address);
    this.worker.scheduleWake(0);
  }

  /** Whether the relayer holds the key of `address` (it can send from it). */
  holdsKey(address: string): boolean {
    return this.ctx.senders.has(getAddress(address));
  }

  get(id: number): Submission | undefined {
    return this.outbox.get(id);
  }

  health(): RelayerHealth {
    const senders = [...this.ctx.senders.entries()].map(([address, s]) => ({
      address,
      nextNonce: this.outbox.nextNonce(address) ?? null,
      paused: s.paused,
    }));
    const pausedError = senders.find((s) => s.paused)?.paused ?? null;
    return {
      running: this.worker.running,
      paused: pausedError !== null,
      error: pausedError ?? this.worker.lastError,
      senders,
      submissions: this.outbox.countByStatus(),
    };
  }

  /**
   * The chain no longer holds the blocks above `forkPoint` (a reorganisation, or a node restarted from an
   * earlier save; the projection notices it by block hash). At the next poll every transaction settled above
   * it that has no receipt any more goes back in flight, so reconciliation re-broadcasts the same bytes (the
   * nonce was rolled back with the chain; a relayed signature is still valid, the epoch did not change), or,
   * if its nonce is now used by something else, puts its submissions back to pending to be signed again. A
   * nonce below our counter that none of our transactions carries any more (lost with the chain) is a gap
   * that would hold every later one in the pool: the counter goes back to it and what was above is re-signed.
   */
  noticeRollback(forkPoint: number): void {
    this.reconciliation.noticeRollback(forkPoint);
  }

  /** Starts the worker loop. */
  start(): void {
    this.worker.start();
  }

  /** Stops the worker loop after the poll in progress; what is in the outbox stays there. */
  stop(): Promise<void> {
    return this.worker.stop();
  }

  /**
   * Polls until every submission has settled (for tests and scripts). Throws the out-of-funds error if a
   * sender is paused, a non-retryable error at once, and a timeout error after `timeoutMs`.
   */
  drain(options: { timeoutMs?: number } = {}): Promise<void> {
    return this.worker.drain(options, () => this.health().error);
  }

  /** One poll: reconcile every sender's transactions in flight, then send what is pending. */
  tick(): Promise<void> {
    return this.worker.tick();
  }
}
