/**
 * The relayer: turns intents (a party's signed sign-off, or a call from one of the engine's keys) into
 * transactions on chain, and never loses or doubles one.
 *
 * Lifecycle of a submission (see `SubmissionStatus`):
 *   submit()  -> pending   recorded in the outbox in one SQLite transaction, under its idempotency key; the
 *                          caller may report it accepted from here on (a relayed sign-off's signature is in it).
 *   worker    -> sent      gas estimated (a revert here fails it with the decoded custom error and uses no
 *                          nonce), funds checked, the sender's next nonce taken from the local counter, the
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
 */
import { EventEmitter } from "node:events";
import { getAddress, Transaction, type BaseWallet, type JsonRpcApiProvider, type Provider, type TransactionReceipt } from "ethers";
import { connectEscrow, decodeChainError } from "../chain/escrow";
import { ChainUnavailableError, ContractRevertError, EngineError } from "../errors";
import { migrate, type Db } from "../store/database";
import { backoffDelay } from "./backoff";
import { CausalOrder, reopeningNote } from "./causal-order";
import { InvalidIntentError, RelayerOutOfFundsError } from "./errors";
import { bumpedFees, type Fees } from "./fees";
import { signEip1559 } from "./sign-tx";
import { batchCallData, callData, normaliseIntent, signOffItemKey } from "./intents";
import { errorOf, openedCaseIds, outcomesOfRevert, outcomesOfSuccess, skipError } from "./outcomes";
import { OUTBOX_MIGRATIONS, Outbox, type SignedTransaction } from "./outbox";
import type { Intent, Outcome, RelayedSignOffIntent, SentTransaction, Submission, SubmissionStatus } from "./types";

export interface RelayerTimings {
  /** How often the worker polls receipts when idle. */
  pollIntervalMs: number;
  /** A broadcast that has not answered by then is left to reconciliation. */
  sendTimeoutMs: number;
  /** Polls a transaction may wait in the pool, priced out by the base fee, before it is bumped. */
  underpricedPolls: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

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
  timings?: Partial<RelayerTimings>;
  random?: () => number;
  now?: () => number;
}

export interface RelayerEvents {
  /** A submission reached `confirmed` or `failed`. */
  settled: [Submission];
  /**
   * A transaction was handed to the node (and accepted). On an automining chain it is mined already: whoever
   * follows the chain may read now rather than at its next tick.
   */
  broadcast: [SentTransaction];
  /** A sender ran out of funds. */
  paused: [RelayerOutOfFundsError];
  /** A paused sender has funds again (its address). */
  resumed: [string];
  /** A poll failed on an RPC fault; the worker backs off and tries again. */
  retrying: [EngineError, number];
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

interface SenderState {
  wallet: BaseWallet;
  paused: RelayerOutOfFundsError | null;
  /** Polls seen per transaction hash while it waits in the pool. */
  waitingPolls: Map<string, number>;
}

interface Draft {
  to: string;
  data: string;
  value: bigint;
  items: { submissionId: number; batchIndex: number | null }[];
}

/** The least gas a call can use, for what a sender needs when the node cannot estimate (it cannot pay the value). */
const MIN_CALL_GAS = 21_000n;

/** How far below the head a restarted relayer checks that the receipts it counted are still there. */
const RECHECK_BLOCKS = 256;

/** Room above the estimate for completing a stage, its cascade and the release, which the estimate may not see. */
const COMPLETION_HEADROOM_GAS = 300_000n;

export class Relayer extends EventEmitter<RelayerEvents> {
  readonly outbox: Outbox;
  readonly relayerAddress: string;
  private readonly order: CausalOrder;
  private readonly provider: Provider;
  private readonly escrowAddress: string;
  private readonly confirmations: number;
  private readonly batchWindowMs: number;
  private readonly maxBatchSize: number;
  private readonly maxInFlight: number;
  private readonly feeBumpPercent: number;
  private readonly timings: RelayerTimings;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly senders = new Map<string, SenderState>();
  /** Senders whose nonce counter is not yet started from the chain (a key added after `init`, or every key before it). */
  private readonly senderNoncesToInit = new Set<string>();

  private chainId: bigint | undefined;
  private initialising: Promise<void> | undefined;
  private ticking: Promise<void> | undefined;
  private running = false;
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private lastError: EngineError | null = null;
  private wakeUp: (() => void) | undefined;
  private wakeRequested = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  /** Whether the loop's current poll handed a transaction to the node. */
  private broadcastThisTick = false;
  /** The lowest fork point noticed since the last poll: blocks above it were lost. */
  private rolledBackTo: number | null = null;
  /** Whether the first poll has checked the receipts of what the outbox counted in recent blocks. */
  private checkedAtStart = false;

  constructor(options: RelayerOptions) {
    super();
    const feeBumpPercent = options.feeBumpPercent ?? 12;
    if (feeBumpPercent < 10) throw new RangeError("feeBumpPercent must be at least 10: nodes refuse smaller replacements");
    migrate(options.db, OUTBOX_MIGRATIONS);
    this.now = options.now ?? Date.now;
    this.outbox = new Outbox(options.db, this.now);
    this.provider = options.provider;
    this.order = new CausalOrder(this.outbox, this.provider);
    this.escrowAddress = getAddress(options.escrowAddress);
    this.confirmations = Math.max(1, options.confirmations ?? 1);
    this.batchWindowMs = options.batchWindowMs ?? 20;
    this.maxBatchSize = options.maxBatchSize ?? 64;
    this.maxInFlight = options.maxInFlight ?? 16;
    this.feeBumpPercent = feeBumpPercent;
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    this.random = options.random ?? Math.random;
    this.relayerAddress = getAddress(options.wallets.relayer.address);
    for (const wallet of [options.wallets.relayer, ...(options.wallets.parties ?? [])]) this.addWallet(wallet);
  }

  // ------------------------------------------------------------------- API

  /**
   * Records the intent durably (one SQLite transaction) and returns its submission; the same key and intent
   * return the same submission, the same key with another intent throws `IdempotencyConflictError`.
   */
  submit(intent: Intent, idempotencyKey: string): Submission {
    const normal = normaliseIntent(intent);
    const sender = normal.kind === "relayed-sign-off" ? this.relayerAddress : normal.from;
    if (!this.senders.has(sender)) throw new InvalidIntentError(`the relayer holds no key for ${sender}`);
    const { submission, created } = this.outbox.record({ idempotencyKey, sender, intent: normal });
    if (created) this.scheduleWake(normal.kind === "relayed-sign-off" ? this.batchWindowMs : 0);
    return submission;
  }

  /**
   * As `submit`, but recorded together with every other `submitDurably` of the same turn of the event loop, in
   * one SQLite transaction: one fsync for the group instead of one each. Resolves once that transaction has
   * committed (synchronous = FULL: on disk), so a caller still reports nothing accepted that is not durable.
   */
  submitDurably(intent: Intent, idempotencyKey: string): Promise<Submission> {
    return new Promise((resolve, reject) => {
      let entry: (typeof this.group)[number];
      try {
        const normal = normaliseIntent(intent);
        const sender = normal.kind === "relayed-sign-off" ? this.relayerAddress : normal.from;
        if (!this.senders.has(sender)) throw new InvalidIntentError(`the relayer holds no key for ${sender}`);
        entry = { input: { idempotencyKey, sender, intent: normal }, resolve, reject };
      } catch (error) {
        reject(error);
        return;
      }
      this.group.push(entry);
      if (this.group.length === 1) setImmediate(() => this.commitGroup());
    });
  }

  private group: Array<{
    input: { idempotencyKey: string; sender: string; intent: Intent };
    resolve: (s: Submission) => void;
    reject: (e: unknown) => void;
  }> = [];

  private commitGroup(): void {
    const group = this.group;
    this.group = [];
    let results: ReturnType<Outbox["recordMany"]>;
    try {
      results = this.outbox.recordMany(group.map((g) => g.input));
    } catch (error) {
      for (const g of group) g.reject(error);
      return;
    }
    let wakeIn: number | null = null;
    results.forEach((result, i) => {
      if ("error" in result) return group[i].reject(result.error);
      if (result.created) {
        const delay = result.submission.kind === "relayed-sign-off" ? this.batchWindowMs : 0;
        wakeIn = wakeIn === null ? delay : Math.min(wakeIn, delay);
      }
      group[i].resolve(result.submission);
    });
    if (wakeIn !== null) this.scheduleWake(wakeIn);
  }

  /**
   * A managed key the relayer may send from, added while it runs (a principal created at runtime). Its nonce
   * counter starts from the chain's count at the next poll, before anything is signed with it. Adding a key
   * it holds already changes nothing.
   */
  addWallet(wallet: BaseWallet): void {
    const address = getAddress(wallet.address);
    if (this.senders.has(address)) return;
    this.senders.set(address, { wallet, paused: null, waitingPolls: new Map() });
    this.senderNoncesToInit.add(address);
    this.scheduleWake(0);
  }

  /** Whether the relayer holds the key of `address` (it can send from it). */
  holdsKey(address: string): boolean {
    return this.senders.has(getAddress(address));
  }

  get(id: number): Submission | undefined {
    return this.outbox.get(id);
  }

  health(): RelayerHealth {
    const senders = [...this.senders.entries()].map(([address, s]) => ({
      address,
      nextNonce: this.outbox.nextNonce(address) ?? null,
      paused: s.paused,
    }));
    const pausedError = senders.find((s) => s.paused)?.paused ?? null;
    return {
      running: this.running,
      paused: pausedError !== null,
      error: pausedError ?? this.lastError,
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
    this.rolledBackTo = Math.min(this.rolledBackTo ?? forkPoint, forkPoint);
    this.scheduleWake(0);
  }

  /** Starts the worker loop. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Stops the worker loop after the poll in progress; what is in the outbox stays there. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    this.wake();
    try {
      await this.loopDone;
    } finally {
      this.loopDone = undefined;
      this.stopping = false;
    }
  }

  /**
   * Polls until every submission has settled (for tests and scripts). Throws the out-of-funds error if a
   * sender is paused, a non-retryable error at once, and a timeout error after `timeoutMs`.
   */
  async drain(options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    let failures = 0;
    while (this.outbox.countUnsettled() > 0 || this.rolledBackTo !== null || !this.checkedAtStart) {
      if (Date.now() > deadline) {
        throw new EngineError("RELAYER_DRAIN_TIMEOUT", `${this.outbox.countUnsettled()} submissions have not settled`, {
          details: this.outbox.countByStatus(),
        });
      }
      try {
        await this.tick();
        failures = 0;
      } catch (error) {
        const e = toEngineError(error);
        if (!e.retryable) throw e;
        failures += 1;
        await sleep(backoffDelay(failures, this.backoff(), this.random));
        continue;
      }
      const paused = this.health().error;
      if (paused instanceof RelayerOutOfFundsError) throw paused;
      if (this.outbox.countUnsettled() > 0 || this.rolledBackTo !== null) await sleep(Math.min(this.timings.pollIntervalMs, 20));
    }
  }

  /** One poll: reconcile every sender's transactions in flight, then send what is pending. */
  tick(): Promise<void> {
    this.ticking ??= this.poll().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  // ---------------------------------------------------------------- worker

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      this.broadcastThisTick = false;
      try {
        await this.tick();
        failures = 0;
        this.lastError = null;
      } catch (error) {
        failures += 1;
        this.lastError = toEngineError(error);
        this.emit("retrying", this.lastError, failures);
      }
      if (!this.running) break;
      // Something was just sent: look for its receipt at once (an automining node has it already) rather
      // than a poll interval later. Once only: a chain that mines later is polled at the usual pace.
      if (failures === 0 && this.broadcastThisTick) continue;
      await this.sleepUntilWoken(failures > 0 ? backoffDelay(failures, this.backoff(), this.random) : this.timings.pollIntervalMs);
    }
  }

  private async poll(): Promise<void> {
    await this.init();
    await this.initSenderNonces();
    await this.noticeLostBlocks();
    if (this.rolledBackTo !== null) {
      const forkPoint = this.rolledBackTo;
      await this.recoverLost(forkPoint);
      if (this.rolledBackTo === forkPoint) this.rolledBackTo = null;
    }
    let firstError: unknown;
    // A snapshot: a key added while this poll runs waits for the next one, which starts its nonce first.
    const senders = [...this.senders].filter(([address]) => !this.senderNoncesToInit.has(address));
    // Every sender's receipts first, then what each sends: a submission held for another sender's opening or
    // deposit sees that one landed in the same poll.
    const reconciled = new Set<string>();
    for (const [address] of senders) {
      try {
        await this.reconcile(address);
        reconciled.add(address);
      } catch (error) {
        firstError ??= error;
      }
    }
    for (const [address, state] of senders) {
      if (!reconciled.has(address)) continue;
      try {
        await this.sendPending(address, state);
      } catch (error) {
        firstError ??= error;
      }
    }
    if (firstError !== undefined) throw toEngineError(firstError);
  }

  /**
   * Blocks the outbox counted that the chain no longer has, noticed by the relayer itself (the projection may
   * not see it: its checkpoint can be the restored head): a recorded block above the head means the blocks
   * above the head were lost. At the first poll (a restart, perhaps onto a chain restored from an older save
   * that has grown again since) every transaction settled in the last `RECHECK_BLOCKS` blocks has its
   * receipt checked.
   */
  private async noticeLostBlocks(): Promise<void> {
    const recorded = this.outbox.highestRecordedBlock();
    if (recorded === null) {
      this.checkedAtStart = true;
      return;
    }
    const head = await this.provider.getBlockNumber();
    const lostAbove = this.checkedAtStart ? head : Math.max(0, Math.min(head, recorded) - RECHECK_BLOCKS);
    if (recorded > lostAbove) this.rolledBackTo = Math.min(this.rolledBackTo ?? lostAbove, lostAbove);
    this.checkedAtStart = true;
  }

  private init(): Promise<void> {
    this.initialising ??= (async () => {
      this.chainId = (await this.provider.getNetwork()).chainId;
    })().catch((error: unknown) => {
      this.initialising = undefined;
      throw toEngineError(error);
    });
    return this.initialising;
  }

  /** Starts the nonce counter of every sender that has none yet, from the chain's pending count. */
  private async initSenderNonces(): Promise<void> {
    for (const address of [...this.senderNoncesToInit]) {
      this.outbox.initNonce(address, await this.provider.getTransactionCount(address, "pending"));
      this.senderNoncesToInit.delete(address);
    }
  }

  // ------------------------------------------------------------ reconcile

  /** See `noticeRollback`. */
  private async recoverLost(forkPoint: number): Promise<void> {
    for (const tx of this.outbox.settledAbove(forkPoint)) {
      const receipt = await this.provider.getTransactionReceipt(tx.txHash);
      // Mined again elsewhere (a reorganisation that kept it): the block it is in now is the one to watch.
      if (receipt) this.outbox.moveToBlock(tx, receipt.blockNumber);
      else this.outbox.unsettle(tx);
    }
    for (const sender of this.senders.keys()) {
      const counter = this.outbox.nextNonce(sender);
      if (counter === undefined) continue;
      const chainNonce = await this.provider.getTransactionCount(sender, "pending");
      const inFlight = new Set(this.outbox.inFlightNonces(sender));
      let gap = chainNonce;
      while (gap < counter && inFlight.has(gap)) gap += 1;
      if (gap >= counter) continue;
      const reason = { code: "NONCE_GAP", message: `nonce ${gap} of ${sender} was lost with the chain: signed again from there` };
      for (const nonce of inFlight) if (nonce > gap) this.outbox.release(sender, nonce, reason, { giveBackNonce: false });
      this.outbox.setNextNonce(sender, gap);
    }
  }

  private async reconcile(sender: string): Promise<void> {
    const nonces = this.outbox.inFlightNonces(sender);
    if (nonces.length === 0) return;
    // The nonce first: a transaction of ours mined after this answer still shows a receipt below.
    const chainNonce = await this.provider.getTransactionCount(sender, "latest");
    const head = await this.provider.getBlockNumber();
    // Once a nonce is held back (what it carries waits for another sender's opening or deposit), no later one
    // is handed to the node: it would be mined as soon as the held one is.
    let holding = false;
    for (const nonce of nonces) holding = (await this.reconcileNonce(sender, nonce, chainNonce, head, holding)) || holding;
  }

  /** Reconciles one nonce; true if its transaction is held back, not handed to the node (see `reconcile`). */
  private async reconcileNonce(sender: string, nonce: number, chainNonce: number, head: number, holding: boolean): Promise<boolean> {
    const txs = this.outbox.transactionsForNonce(sender, nonce);
    // Any of them may be the one mined: a bumped transaction's predecessor can still win.
    for (const tx of txs) {
      const receipt = await this.provider.getTransactionReceipt(tx.txHash);
      if (!receipt) continue;
      const confirmations = Math.max(head, receipt.blockNumber) - receipt.blockNumber + 1;
      if (confirmations >= this.confirmations) await this.settle(tx, receipt);
      else if (tx.status !== "mined") {
        const carried = this.outbox.submissionsForNonce(tx.sender, tx.nonce);
        this.outbox.markMined(tx, receipt.blockNumber, receipt.status === 1 ? openedCaseIds(this.escrowAddress, receipt.logs, carried) : new Map());
      }
      return false;
    }
    const current = txs.find((t) => t.status === "sent" || t.status === "mined");
    if (!current) return false;
    if (current.status === "mined") this.outbox.markUnmined(current);
    const state = this.senders.get(sender)!;
    if (chainNonce > nonce) {
      // The nonce is used and none of our transactions for it has a receipt: something else used this key.
      state.waitingPolls.delete(current.txHash);
      this.outbox.release(
        sender,
        nonce,
        { code: "NONCE_USED_ELSEWHERE", message: `nonce ${nonce} of ${sender} was used by a transaction the relayer did not send` },
        { giveBackNonce: false },
      );
      return false;
    }
    const known = await this.provider.getTransaction(current.txHash);
    if (!known) {
      // Dropped from the pool, never reached it (a crash or a lost send), or lost with the chain's blocks: the
      // same bytes again, once what they carry may land (the case's opening, its deposits, from other keys).
      if (holding || this.order.mustWait(this.outbox.submissionsForNonce(sender, nonce))) return true;
      this.outbox.countAttempt(sender, nonce);
      await this.broadcast(sender, current);
      return false;
    }
    const polls = (state.waitingPolls.get(current.txHash) ?? 0) + 1;
    state.waitingPolls.set(current.txHash, polls);
    if (polls < this.timings.underpricedPolls) return false;
    const nextBaseFee = await this.nextBaseFee();
    if (nextBaseFee > current.maxFeePerGas) await this.bump(state, current, nextBaseFee);
    return false;
  }

  private async settle(tx: SentTransaction, receipt: TransactionReceipt): Promise<void> {
    const carried = this.outbox.submissionsForNonce(tx.sender, tx.nonce);
    const reverted = receipt.status !== 1;
    const outcomes = reverted
      ? outcomesOfRevert(await this.revertReason(tx, receipt), carried)
      : outcomesOfSuccess(this.escrowAddress, receipt.logs, carried);
    for (const s of carried) {
      const outcome = outcomes.get(s.id);
      if (outcome?.status !== "failed") continue;
      if (await this.openingMissing(s)) outcomes.set(s.id, { status: "pending", note: reopeningNote(s) });
      else if (outcome.error?.code === "SIGN_OFF_INVALID_SIGNATURE") outcomes.set(s.id, { ...outcome, error: skipError("InvalidSignature", s, await this.partyOf(s, receipt.blockNumber)) });
    }
    this.senders.get(tx.sender)?.waitingPolls.delete(tx.txHash);
    for (const s of this.outbox.settle(tx, receipt.blockNumber, reverted, outcomes)) if (s.status === "confirmed" || s.status === "failed") this.emit("settled", s);
  }

  /** The address holding the role of a relayed sign-off in its case, as the chain had it at `blockTag`; undefined if not known. */
  private async partyOf(s: Submission, blockTag: number): Promise<string | undefined> {
    if (s.payload.kind !== "relayed-sign-off") return undefined;
    const { caseId, role } = s.payload.message;
    try {
      const view = await connectEscrow(this.escrowAddress, this.provider).caseOf(caseId, { blockTag });
      return view.parties[role] === undefined ? undefined : getAddress(view.parties[role]);
    } catch {
      return undefined; // the message names the role without its address
    }
  }

  /** See `CausalOrder.openingMissing`; an opening lost unnoticed is a rollback, recovered at the next poll. */
  private async openingMissing(s: Submission): Promise<boolean> {
    const missing = await this.order.openingMissing(s);
    if (missing?.lostAbove != null) this.noticeRollback(missing.lostAbove);
    return missing !== null;
  }

  /** Replays a reverted transaction on the state before its block to learn the custom error. */
  private async revertReason(tx: SentTransaction, receipt: TransactionReceipt): Promise<EngineError> {
    const signed = Transaction.from(tx.rawTx);
    try {
      await this.provider.call({ from: tx.sender, to: signed.to, data: signed.data, value: signed.value, blockTag: receipt.blockNumber - 1 });
    } catch (error) {
      const decoded = decodeChainError(error);
      if (decoded instanceof ContractRevertError) return decoded;
      throw decoded;
    }
    return new ContractRevertError("unknown", []);
  }

  private async bump(state: SenderState, current: SentTransaction, nextBaseFee: bigint): Promise<void> {
    const old = Transaction.from(current.rawTx);
    const suggested = (await this.provider.getFeeData()).maxPriorityFeePerGas ?? 0n;
    const fees = bumpedFees(current, this.feeBumpPercent, nextBaseFee, suggested);
    const needed = old.gasLimit * fees.maxFeePerGas + old.value;
    const balance = await this.provider.getBalance(current.sender, "latest");
    if (balance < needed) {
      this.pause(state, balance, needed);
      return;
    }
    const signed = this.sign(state.wallet, { nonce: current.nonce, to: old.to!, data: old.data, value: old.value, gasLimit: old.gasLimit, fees });
    const next = this.outbox.replace(current, signed);
    state.waitingPolls.delete(current.txHash);
    await this.broadcast(current.sender, next);
  }

  /** The base fee of the block being built; ethers cannot format a pending block (no number), so ask raw. */
  private async nextBaseFee(): Promise<bigint> {
    const send = (this.provider as Partial<JsonRpcApiProvider>).send?.bind(this.provider);
    if (send) {
      const pending = (await send("eth_getBlockByNumber", ["pending", false])) as { baseFeePerGas?: string } | null;
      if (pending?.baseFeePerGas) return BigInt(pending.baseFeePerGas);
    }
    const latest = await this.provider.getBlock("latest");
    return latest?.baseFeePerGas ?? 0n;
  }

  // ----------------------------------------------------------------- send

  private async sendPending(sender: string, state: SenderState): Promise<void> {
    if (state.paused) await this.checkFunds(state, sender);
    for (;;) {
      // Once stop() is called nothing new is signed; what is already in flight is still reconciled.
      if (this.stopping) return;
      if (this.outbox.inFlightNonces(sender).length >= this.maxInFlight) return;
      const pending = this.order.ready(this.outbox.pending(sender, this.maxBatchSize));
      if (pending.length === 0) return;
      let group: Submission[];
      if (pending[0].kind === "relayed-sign-off") {
        const firstCall = pending.findIndex((s) => s.kind !== "relayed-sign-off");
        group = firstCall === -1 ? pending : pending.slice(0, firstCall);
        const waited = this.now() - group[0].createdAt;
        if (group.length < this.maxBatchSize && firstCall === -1 && waited < this.batchWindowMs) {
          this.scheduleWake(this.batchWindowMs - waited);
          return;
        }
      } else {
        group = [pending[0]];
      }
      if (!(await this.send(sender, state, group))) return;
    }
  }

  /** Sends one transaction for `group` (or settles it without one). False when the sender must stop for now. */
  private async send(sender: string, state: SenderState, group: readonly Submission[]): Promise<boolean> {
    const draft = this.draft(group);
    // The fees and the balance are asked together with the estimate (one wait for the node, not three);
    // they are used only if the estimate succeeds.
    const feesAsked = this.freshFees();
    const balanceAsked = this.provider.getBalance(sender, "latest");
    feesAsked.catch(() => undefined);
    balanceAsked.catch(() => undefined);
    let gas: bigint;
    try {
      gas = await this.provider.estimateGas({ from: sender, to: draft.to, data: draft.data, value: draft.value });
    } catch (error) {
      if (isInsufficientFunds(error)) {
        // The node could not estimate the gas: what is needed is the value and at least a plain call's gas.
        const fees = await feesAsked.catch(() => ({ maxFeePerGas: 0n }));
        this.pause(state, await balanceAsked, draft.value + MIN_CALL_GAS * fees.maxFeePerGas);
        return false;
      }
      const decoded = decodeChainError(error);
      if (!(decoded instanceof ContractRevertError)) throw decoded;
      await this.refuse(sender, group, decoded);
      return true;
    }
    // The estimate is made against the chain as it is now; by the time the transaction is mined another
    // engine's or party's sign-off may have landed first, making this one the last that completes the stage
    // and its cascade (and perhaps the release). Gas left over is refunded, so the limit is generous.
    const gasLimit = (gas * 6n) / 5n + COMPLETION_HEADROOM_GAS;
    const fees = await feesAsked;
    const needed = gasLimit * fees.maxFeePerGas + draft.value;
    const balance = await balanceAsked;
    if (balance < needed) {
      this.pause(state, balance, needed);
      return false;
    }
    this.resume(state, sender);
    const tx = this.outbox.assign(sender, draft.items, (nonce) =>
      this.sign(state.wallet, { nonce, to: draft.to, data: draft.data, value: draft.value, gasLimit, fees }),
    );
    await this.broadcast(sender, tx);
    return !state.paused;
  }

  private draft(group: readonly Submission[]): Draft {
    const first = group[0].payload;
    if (first.kind === "call") {
      return { to: this.escrowAddress, data: callData(first), value: BigInt(first.value ?? 0), items: [{ submissionId: group[0].id, batchIndex: null }] };
    }
    // The same signed sign-off under two keys is one item: both submissions settle with it.
    const indexOf = new Map<string, number>();
    const intents: RelayedSignOffIntent[] = [];
    const items = group.map((s) => {
      const intent = s.payload as RelayedSignOffIntent;
      const key = signOffItemKey(intent);
      let index = indexOf.get(key);
      if (index === undefined) {
        index = intents.length;
        intents.push(intent);
        indexOf.set(key, index);
      }
      return { submissionId: s.id, batchIndex: index };
    });
    return { to: this.escrowAddress, data: batchCallData(intents), value: 0n, items };
  }

  /** The estimate reverted: settle the submissions it names, without a nonce. */
  private async refuse(sender: string, group: readonly Submission[], error: ContractRevertError): Promise<void> {
    if (group[0].kind === "call") {
      await this.settleRefused(group[0], outcomesOfRevert(error, group).get(group[0].id)!);
      return;
    }
    if (group.length === 1) {
      await this.settleRefused(group[0], { status: "failed", error: errorOf(error) });
      return;
    }
    // The contract skips every item it cannot apply (with its index and reason), so a batch that reverts
    // whole was refused for something of the calldata (an item that does not decode): find the ones that
    // revert alone; the others go in the next batch.
    for (const s of group) {
      try {
        await this.provider.estimateGas({ from: sender, to: this.escrowAddress, data: batchCallData([s.payload as RelayedSignOffIntent]) });
      } catch (e) {
        const decoded = decodeChainError(e);
        if (!(decoded instanceof ContractRevertError)) throw decoded;
        await this.settleRefused(s, { status: "failed", error: errorOf(decoded) });
      }
    }
  }

  /** Settles a submission refused at estimation, unless it failed only for want of its case's opening, which is being re-sent. */
  private async settleRefused(s: Submission, outcome: Outcome): Promise<void> {
    if (outcome.status === "failed" && (await this.openingMissing(s))) {
      this.outbox.noteWhy(s.id, reopeningNote(s));
      return;
    }
    this.emit("settled", this.outbox.settleWithoutTransaction(s.id, outcome));
  }

  private async freshFees(): Promise<Fees> {
    const data = await this.provider.getFeeData();
    if (data.maxFeePerGas != null && data.maxPriorityFeePerGas != null) {
      return { maxFeePerGas: data.maxFeePerGas, maxPriorityFeePerGas: data.maxPriorityFeePerGas };
    }
    const price = data.gasPrice ?? 0n;
    return { maxFeePerGas: price, maxPriorityFeePerGas: price };
  }

  private sign(
    wallet: BaseWallet,
    fields: { nonce: number; to: string; data: string; value: bigint; gasLimit: bigint; fees: Fees },
  ): SignedTransaction {
    if (this.chainId === undefined) throw new Error("the relayer signs only after init");
    // Signed synchronously, inside the SQLite transaction that takes the nonce; the same bytes as ethers'
    // Transaction gives, at a fraction of its cost for a batch's calldata (see sign-tx.ts).
    const { rawTx, txHash } = signEip1559(wallet.signingKey, {
      chainId: this.chainId,
      nonce: fields.nonce,
      to: fields.to,
      data: fields.data,
      value: fields.value,
      gasLimit: fields.gasLimit,
      maxFeePerGas: fields.fees.maxFeePerGas,
      maxPriorityFeePerGas: fields.fees.maxPriorityFeePerGas,
    });
    return { rawTx, txHash, ...fields.fees };
  }

  /**
   * Hands a stored transaction to the node. Whatever happens, it is not signed again here: a lost answer or a
   * timeout is settled by the next poll's reconciliation.
   */
  private async broadcast(sender: string, tx: SentTransaction): Promise<void> {
    try {
      // Raw where the provider can: ethers' broadcastTransaction parses the transaction back (hex to bytes,
      // hashes) to wrap its answer, which the relayer does not use.
      const send = (this.provider as Partial<JsonRpcApiProvider>).send;
      const sending = typeof send === "function" ? send.call(this.provider, "eth_sendRawTransaction", [tx.rawTx]) : this.provider.broadcastTransaction(tx.rawTx);
      await withTimeout(sending, this.timings.sendTimeoutMs);
      this.broadcastThisTick = true;
      this.emit("broadcast", tx);
    } catch (error) {
      if (isAlreadyKnown(error)) return;
      const state = this.senders.get(sender)!;
      if (isInsufficientFunds(error)) {
        const signed = Transaction.from(tx.rawTx);
        const onlyVersion = this.outbox.transactionsForNonce(sender, tx.nonce).length === 1;
        const last = this.outbox.nextNonce(sender) === tx.nonce + 1;
        // The node refused it outright, so the nonce is free: give it back if no later nonce depends on it.
        const balance = await this.provider.getBalance(sender, "latest").catch(() => 0n);
        if (onlyVersion && last) {
          this.outbox.release(sender, tx.nonce, errorOf(new RelayerOutOfFundsError(getAddress(sender), balance, signed.gasLimit * signed.maxFeePerGas! + signed.value)), { giveBackNonce: true });
        }
        this.pause(state, balance, signed.gasLimit * signed.maxFeePerGas! + signed.value);
        return;
      }
      throw new ChainUnavailableError(
        `sending transaction ${tx.txHash} (nonce ${tx.nonce} of ${sender}) did not complete; it is reconciled by hash and nonce`,
        error,
      );
    }
  }

  // ---------------------------------------------------------------- funds

  private pause(state: SenderState, balance: bigint, needed: bigint): void {
    const address = getAddress(state.wallet.address);
    const wasPaused = state.paused !== null;
    state.paused = new RelayerOutOfFundsError(address, balance, needed);
    // What waits for this key says why, on each submission: the API shows a submission's error and note.
    this.outbox.noteWaiting(address, errorOf(state.paused));
    if (!wasPaused) this.emit("paused", state.paused);
  }

  private resume(state: SenderState, address: string): void {
    if (!state.paused) return;
    state.paused = null;
    this.outbox.noteWaiting(address, null);
    this.emit("resumed", address);
  }

  /** A paused sender with nothing to send resumes when its balance covers what it last lacked. */
  private async checkFunds(state: SenderState, address: string): Promise<void> {
    const needed = BigInt(String(state.paused?.details?.needed ?? "0"));
    if ((await this.provider.getBalance(address, "latest")) >= needed) this.resume(state, address);
  }

  // ---------------------------------------------------------------- timing

  private backoff() {
    return { baseMs: this.timings.backoffBaseMs, maxMs: this.timings.backoffMaxMs };
  }

  private scheduleWake(delayMs: number): void {
    if (!this.running) return;
    if (delayMs <= 0) return this.wake();
    if (this.wakeTimer) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wake();
    }, delayMs);
  }

  private wake(): void {
    this.wakeRequested = true;
    this.wakeUp?.();
  }

  private sleepUntilWoken(ms: number): Promise<void> {
    if (this.wakeRequested) {
      this.wakeRequested = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wakeUp = undefined;
        self.wakeRequested = false;
        resolve();
      }
      this.wakeUp = done;
    });
  }
}

function errorText(error: unknown, depth = 0): string {
  if (depth > 5 || error === null || typeof error !== "object") return typeof error === "string" ? error : "";
  const e = error as Record<string, unknown>;
  const own = [e.message, e.shortMessage].filter((m) => typeof m === "string").join(" ");
  return [own, ...["error", "info", "cause", "data"].map((k) => errorText(e[k], depth + 1))].join(" ");
}

function isInsufficientFunds(error: unknown): boolean {
  return /insufficient funds|doesn't have enough funds|not enough funds/i.test(errorText(error));
}

function isAlreadyKnown(error: unknown): boolean {
  return /already known|known transaction|already imported|AlreadyKnown/i.test(errorText(error));
}

function toEngineError(error: unknown): EngineError {
  return error instanceof EngineError ? error : decodeChainError(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
