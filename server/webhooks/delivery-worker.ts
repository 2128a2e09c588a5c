/**
 * Sends what is due: each pending delivery whose earlier deliveries (same subscription, same case) are done, a
 * few at a time. A failure is retried with exponential backoff and full jitter (a random wait up to
 * base * 2^attempts, capped) until the retry window (a day by default) since its first attempt has passed; then
 * the delivery fails and its subscription is disabled, with the reason stated on it.
 */
import { sendAttempt } from "./sender";
import { webhookHeaders } from "./signer";
import type { Delivery, WebhookStore } from "./store";
import { publicOnlyLookup, refusalOf } from "./url-guard";

export interface DeliverySettings {
  allowPrivateUrls: boolean;
  timeoutMs: number;
  retryWindowMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  concurrency: number;
}

export class DeliveryWorker {
  private readonly inFlight = new Set<string>();
  private stopped = false;
  private readonly random: () => number;

  constructor(
    private readonly store: WebhookStore,
    private readonly settings: DeliverySettings,
    private readonly onSettled: () => void,
    random: () => number = Math.random,
  ) {
    this.random = random;
  }

  /** Starts what is due now and free to go; returns the earliest moment something else comes due, or null. */
  pump(now = Date.now()): number | null {
    if (this.stopped) return null;
    const free = this.settings.concurrency - this.inFlight.size;
    if (free > 0) {
      for (const delivery of this.store.due(now, free + this.inFlight.size)) {
        if (this.inFlight.has(delivery.id) || this.inFlight.size >= this.settings.concurrency) continue;
        this.inFlight.add(delivery.id);
        void this.attempt(delivery)
          // A throw (the store closed under it by a stop mid-attempt) leaves the delivery pending: it is tried again.
          .catch(() => undefined)
          .finally(() => {
            this.inFlight.delete(delivery.id);
            this.onSettled();
          });
      }
    }
    return this.store.nextDueAt();
  }

  busy(): boolean {
    return this.inFlight.size > 0;
  }

  stop(): void {
    this.stopped = true;
  }

  private async attempt(delivery: Delivery): Promise<void> {
    const subscription = this.store.subscription(delivery.subscriptionId);
    if (!subscription) return;
    const startedAt = Date.now();
    const refusal = await refusalOf(subscription.url, this.settings.allowPrivateUrls);
    if (this.stopped) return;
    const timestamp = Math.floor(Date.now() / 1000);
    const result = refusal
      ? { ok: false, statusCode: null, durationMs: 0, error: `not sent: ${refusal}`, responseBody: "" }
      : await sendAttempt(
          subscription.url,
          webhookHeaders(this.store.secretsOf(subscription.id, Date.now()), delivery.id, timestamp, delivery.body),
          delivery.body,
          this.settings.timeoutMs,
          this.settings.allowPrivateUrls ? undefined : publicOnlyLookup,
        );
    if (this.stopped) return;
    const attempt = {
      startedAt,
      durationMs: result.durationMs,
      statusCode: result.statusCode,
      error: result.error,
      responseBody: result.responseBody,
    };
    if (result.ok) {
      this.store.recordAttempt(delivery, attempt, { status: "delivered", nextAttemptAt: startedAt });
      return;
    }
    const firstAttemptAt = delivery.firstAttemptAt ?? startedAt;
    const now = Date.now();
    if (now - firstAttemptAt >= this.settings.retryWindowMs) {
      this.store.recordAttempt(delivery, attempt, { status: "failed", nextAttemptAt: now });
      this.store.disable(
        subscription.id,
        `disabled at ${new Date(now).toISOString()}: delivery ${delivery.id} (${delivery.type}) still failed after ` +
          `${delivery.attempts + 1} attempts over ${Math.round((now - firstAttemptAt) / 1000)} s, the retry window ` +
          `being ${Math.round(this.settings.retryWindowMs / 1000)} s; the last attempt: ${result.error}`,
        now,
      );
      return;
    }
    const cap = Math.min(this.settings.backoffMaxMs, this.settings.backoffBaseMs * 2 ** delivery.attempts);
    this.store.recordAttempt(delivery, attempt, {
      status: "pending",
      nextAttemptAt: now + Math.floor(this.random() * cap),
    });
  }
}
