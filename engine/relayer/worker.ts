/**
 * The relayer's worker: one poll at a time on a `PollingLoop`. A poll learns the chain id, starts the nonce
 * counter of any new key, recovers what a rollback lost, reconciles every sender's transactions in flight
 * (all senders first: a submission held for another sender's opening or deposit sees that it landed in the
 * same poll), then sends what each has pending.
 *
 * Between polls it waits `pollIntervalMs`, or backs off with jitter after an RPC fault, or polls again at once
 * after a poll that broadcast (an automining node has the receipt already). `scheduleWake` brings the next
 * poll forward: a new submission, the end of a batch window, a rollback noticed.
 */
import { EngineError } from "../errors";
import { PollingLoop } from "../polling-loop";
import { sleep } from "../sleep";
import { backoffDelay } from "./backoff";
import { RelayerOutOfFundsError, toEngineError } from "./errors";
import type { Reconciliation } from "./reconciliation";
import type { RelayerContext } from "./relayer-context";
import type { Sending } from "./sending";

export class RelayerWorker {
  running = false;
  /** Once stop() is called nothing new is signed; what is already in flight is still reconciled. */
  stopping = false;
  /** The last RPC fault, if the last poll failed. */
  lastError: EngineError | null = null;
  private failures = 0;
  private ticking: Promise<void> | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private readonly loop = new PollingLoop(() => this.pollInLoop());
  private broadcastsBefore = 0;

  constructor(
    private readonly ctx: RelayerContext,
    private readonly sending: Sending,
    private readonly reconciliation: Reconciliation,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.failures = 0;
    this.loop.start(
      () => this.nextDelay(),
      (error) => {
        this.failures += 1;
        this.lastError = toEngineError(error);
        this.ctx.events.emit("retrying", this.lastError, this.failures);
      },
    );
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    try {
      await this.loop.stop();
    } finally {
      this.stopping = false;
    }
  }

  scheduleWake(delayMs: number): void {
    if (!this.running) return;
    if (delayMs <= 0) return this.loop.wake();
    if (this.wakeTimer) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.loop.wake();
    }, delayMs);
  }

  /** One poll; a poll asked for while one runs is that one. */
  tick(): Promise<void> {
    this.ticking ??= this.poll().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  /** See `Relayer.drain`. */
  async drain(options: { timeoutMs?: number }, pausedError: () => EngineError | null): Promise<void> {
    const { outbox, timings } = this.ctx;
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    let failures = 0;
    while (
      outbox.countUnsettled() > 0 ||
      this.reconciliation.rolledBackTo !== null ||
      !this.reconciliation.checkedAtStart
    ) {
      if (Date.now() > deadline) {
        throw new EngineError("RELAYER_DRAIN_TIMEOUT", `${outbox.countUnsettled()} submissions have not settled`, {
          details: outbox.countByStatus(),
        });
      }
      try {
        await this.tick();
        failures = 0;
      } catch (error) {
        const e = toEngineError(error);
        if (!e.retryable) throw e;
        failures += 1;
        await sleep(backoffDelay(failures, this.backoff(), this.ctx.random));
        continue;
      }
      const paused = pausedError();
      if (paused instanceof RelayerOutOfFundsError) throw paused;
      if (outbox.countUnsettled() > 0 || this.reconciliation.rolledBackTo !== null)
        await sleep(Math.min(timings.pollIntervalMs, 20));
    }
  }

  private async pollInLoop(): Promise<void> {
    this.broadcastsBefore = this.sending.broadcasts;
    await this.tick();
    this.failures = 0;
    this.lastError = null;
  }

  private nextDelay(): number {
    if (this.failures > 0) return backoffDelay(this.failures, this.backoff(), this.ctx.random);
    // Something was just sent: look for its receipt at once rather than a poll interval later. Once only: a
    // chain that mines later is polled at the usual pace.
    return this.sending.broadcasts !== this.broadcastsBefore ? 0 : this.ctx.timings.pollIntervalMs;
  }

  private async poll(): Promise<void> {
    await this.sending.init();
    await this.initSenderNonces();
    const head = await this.reconciliation.recoverRollback();
    let firstError: unknown;
    // A snapshot: a key added while this poll runs waits for the next one, which starts its nonce first.
    const senders = [...this.ctx.senders].filter(([address]) => !this.ctx.senderNoncesToInit.has(address));
    const reconciled = new Set<string>();
    for (const [address] of senders) {
      try {
        await this.reconciliation.reconcile(address, head);
        reconciled.add(address);
      } catch (error) {
        firstError ??= error;
      }
    }
    for (const [address, state] of senders) {
      if (!reconciled.has(address)) continue;
      try {
        await this.sending.sendPending(address, state);
      } catch (error) {
        firstError ??= error;
      }
    }
    if (firstError !== undefined) throw toEngineError(firstError);
  }

  /** Starts the nonce counter of every sender that has none yet, from the chain's pending count. */
  private async initSenderNonces(): Promise<void> {
    for (const address of [...this.ctx.senderNoncesToInit]) {
      this.ctx.outbox.initNonce(address, await this.ctx.provider.getTransactionCount(address, "pending"));
      this.ctx.senderNoncesToInit.delete(address);
    }
  }

  private backoff() {
    return { baseMs: this.ctx.timings.backoffBaseMs, maxMs: this.ctx.timings.backoffMaxMs };
  }
}
