/**
 * The webhooks as one part, started and stopped with the app: the store (in the server's SQLite file), the
 * dispatcher (stored events to deliveries), the scheduler (time-made events) and the delivery worker. One loop
 * drives them: woken by the projection's changes and by the next delivery coming due, and at least every
 * `pollMs` (the stored log is the truth; a wake-up is only a hint).
 */
import type { Logger } from "pino";
import { loadTemplates, type CompiledWorkflow } from "../../workflows";
import type { PrincipalStore } from "../auth/principals";
import { DeliveryWorker, type DeliverySettings } from "./delivery-worker";
import { Dispatcher, type WebhookProjection } from "./dispatcher";
import { Scheduler } from "./scheduler";
import { WebhookStore } from "./store";

export interface WebhookSettings extends DeliverySettings {
  /** How long an old secret still signs after a rotation. */
  secretGraceMs: number;
  pollMs: number;
  /** How often the scheduler looks for time-made events. */
  schedulerMs: number;
}

export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  allowPrivateUrls: false,
  timeoutMs: 10_000,
  retryWindowMs: 24 * 3_600_000,
  backoffBaseMs: 1_000,
  backoffMaxMs: 3_600_000,
  concurrency: 16,
  secretGraceMs: 24 * 3_600_000,
  pollMs: 250,
  schedulerMs: 1_000,
};

export type WebhookEngine = {
  projection: WebhookProjection & { subscribeChanges(listener: (change: { caseId: string }) => void): () => void };
};

export class WebhookService {
  readonly store: WebhookStore;
  readonly dispatcher: Dispatcher;
  readonly scheduler: Scheduler;
  readonly settings: WebhookSettings;
  private readonly worker: DeliveryWorker;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private unsubscribe: (() => void) | null = null;
  private lastSchedule = 0;

  constructor(
    engine: WebhookEngine,
    principals: PrincipalStore,
    settings: Partial<WebhookSettings>,
    private readonly logger: Logger,
    workflows: readonly CompiledWorkflow[] = loadTemplates(),
  ) {
    this.settings = { ...DEFAULT_WEBHOOK_SETTINGS, ...settings };
    this.store = new WebhookStore(principals.db);
    const principalOf = (id: string) => principals.get(id);
    this.dispatcher = new Dispatcher(this.store, engine.projection, workflows, principalOf);
    this.scheduler = new Scheduler(this.store, engine.projection, this.dispatcher, workflows, principalOf);
    this.worker = new DeliveryWorker(this.store, this.settings, () => this.wake());
    this.unsubscribe = engine.projection.subscribeChanges((change) => {
      this.scheduler.invalidate(change.caseId);
      this.wake();
    });
    this.running = true;
    this.wake();
  }

  /** Runs the loop soon (a change, a new subscription, a redelivery). */
  wake(): void {
    if (!this.running) return;
    this.arm(0);
  }

  /** A subscription was made or changed: the scheduler looks at every case again. */
  subscriptionsChanged(): void {
    this.scheduler.invalidate();
    this.wake();
  }

  stop(): void {
    this.running = false;
    this.worker.stop();
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.loop(), Math.max(0, delayMs));
    this.timer.unref();
  }

  private loop(): void {
    this.timer = null;
    if (!this.running) return;
    try {
      for (let i = 0; i < 20 && this.dispatcher.tick() > 0; i++);
      const now = Date.now();
      if (now - this.lastSchedule >= this.settings.schedulerMs) {
        this.lastSchedule = now;
        this.scheduler.tick();
      }
      const next = this.worker.pump();
      const untilNext = next === null ? this.settings.pollMs : Math.min(this.settings.pollMs, next - Date.now());
      // At least a moment: a due delivery held behind an earlier one in flight is woken by that one's end.
      this.arm(Math.max(20, untilNext));
    } catch (error) {
      if (!this.running) return;
      this.logger.error({ err: error }, "webhooks: the dispatch loop failed; trying again");
      this.arm(this.settings.pollMs);
    }
  }
}
