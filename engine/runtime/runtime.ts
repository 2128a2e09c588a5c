/**
 * The runtime: one durable XState actor per open case (case-actor.ts), the engine's one brain.
 *
 * The life of an actor:
 * - **Born** when the projection reads the case's `CaseOpened`: started from the opening, then sent the rest
 *   of that block's events.
 * - **Fed** every later transaction of the case as the machine's event (contract-events.ts), a party's
 *   approval (`APPROVE`, whose `requestSignOff` hands the sign-off to the relayer), and the chain clock: its
 *   timers run on the engine's chain scheduler (chain-scheduler.ts), the one timer system, so a dev clock
 *   moved forward fires what is due with no actor rebuilt.
 * - **Checked**: after each block its model must be the projection's (the one fold of the chain, which a
 *   reorganisation corrects); where it is not, it takes the projection's (`RESYNC`) and `stats().resynced`
 *   counts it.
 * - **Persisted** after every change (`getPersistedSnapshot`, snapshot-store.ts), with its machine's version.
 * - **Restored** at start from its snapshot if that was written by the running machine and its model is the
 *   projection's; otherwise rebuilt from the projection. Then a `CLOCK` event at the chain's now submits what
 *   fell due while the engine was down and sets its timers again (XState does not restore pending delays).
 * - **Done** when the case completes, expires or is cancelled: stopped, its snapshot deleted.
 *
 * What comes out goes through the relayer under an idempotency key derived from (case, kind, moment), so a
 * timer that fires twice, or again after a restart, finds its submission already there: `advance` when a
 * waiting time ends at the later of the contract's and the law's moment; `expire` when a deadline passes
 * unmet; `withdrawFor(seller)` once the escrow is released. An `advance` or `expire` refused because it came
 * too early (the chain clock is the wall clock plus an offset measured to the second) is tried again under the
 * next key `...#n`, each time waiting twice as long (1 s, 2 s, 4 s... up to 30 s): the wait is a wake-up on the
 * same scheduler, which sends the actor a `CLOCK` event.
 */
import type { AmendmentModel, CaseModel } from "../../workflows/case-rules";
import { EVERY_PARTY_CONSENTS } from "../../workflows/compile";
import type { ChainClock } from "../chain/clock";
import type { CaseView } from "../projection/case-view";
import type { ChainEvent } from "../projection/event-log";
import type { CaseChange, Projection } from "../projection/projection";
import { exponentialDelay } from "../relayer/backoff";
import type { Relayer } from "../relayer/relayer";
import type { CallIntent, Submission } from "../relayer/types";
import type { Db } from "../store/database";
import { migrate } from "../store/database";
import { type CaseActor, CaseActors } from "./case-actor";
import { ChainScheduler } from "./chain-scheduler";
import { machineEventsOf } from "./contract-events";
import type { LegalGuards } from "./legal";
import { SNAPSHOT_MIGRATIONS, SnapshotStore } from "./snapshot-store";

export interface RuntimeOptions {
  projection: Projection;
  relayer: Relayer;
  clock: ChainClock;
  /** The engine's store: the actors' snapshots are kept there. */
  db: Db;
  /** How long after a too-early `advance`/`expire` was first refused it is tried again; each later try waits twice as long. */
  retryDelayMs?: number;
  /** The longest wait between two tries. */
  maxRetryDelayMs?: number;
  /** Tries of one `advance`/`expire` moment before the runtime gives up on it (until the case changes). */
  maxAttempts?: number;
  onError?: (error: unknown) => void;
}

/** The runtime's actors now, and what it did with them since it started: for health checks and tests. */
export interface RuntimeStats {
  /** Actors running: one per open case. */
  actors: number;
  /** Wake-ups set on the chain scheduler (each actor's next moment, and tries of refused calls again). */
  timers: number;
  /** Actors started from a persisted snapshot. */
  restored: number;
  /** Actors built from the projection: no snapshot, one of another machine version, or one that disagreed. */
  rebuilt: number;
  /** Times an actor's model came out different from the projection's and took the projection's. */
  resynced: number;
}

/** The contract's refusals that mean "too early, or already done": worth one more look a moment later. */
const TRY_AGAIN_ERRORS = ["MortgageEscrowNothingToAdvance", "MortgageEscrowNothingToExpire"];

interface RunningCase {
  actor: CaseActor;
  version: string;
}

export class Runtime {
  readonly guards: LegalGuards;
  private readonly projection: Projection;
  private readonly relayer: Relayer;
  private readonly clock: ChainClock;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly maxAttempts: number;
  private readonly onError: (error: unknown) => void;
  private readonly scheduler: ChainScheduler;
  private readonly actors: CaseActors;
  private readonly snapshots: SnapshotStore;
  private readonly cases = new Map<string, RunningCase>();
  /** A wake-up per case for a refused `advance`/`expire` to be tried again. */
  private readonly rechecks = new Map<string, number>();
  /** Sign-offs waiting for their actor's word (see `signOff`), and what became of them. */
  private readonly tickets = new Map<number, { submit: () => Promise<Submission>; submitted?: Promise<Submission> }>();
  private nextTicket = 1;
  private readonly counts = { restored: 0, rebuilt: 0, resynced: 0 };
  private unsubscribe: (() => void) | null = null;
  private readonly onSettled = (s: Submission) => this.settled(s);
  private running = false;

  constructor(options: RuntimeOptions) {
    this.projection = options.projection;
    this.relayer = options.relayer;
    this.clock = options.clock;
    this.guards = options.projection.guards;
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.onError = options.onError ?? (() => {});
    migrate(options.db, SNAPSHOT_MIGRATIONS);
    this.snapshots = new SnapshotStore(options.db);
    this.scheduler = new ChainScheduler(options.clock, this.onError);
    // An effect that throws (the store or the relayer failing) must not kill the actor: it is reported, and
    // what was due is asked for again a moment later.
    const timed = (kind: "advance" | "expire") => (caseId: string, at: number) => {
      try {
        this.submitTimed(caseId, `runtime:${kind}:${caseId}:${at}`, this.relayerCall(kind, [caseId]));
      } catch (error) {
        this.onError(error);
        this.recheck(caseId, this.retryDelay(0));
      }
    };
    this.actors = new CaseActors(this.scheduler, {
      requestAdvance: timed("advance"),
      requestExpire: timed("expire"),
      requestSignOff: (ticket) => {
        const pending = this.tickets.get(ticket);
        if (pending) pending.submitted = pending.submit();
      },
      requestSellerPayout: (caseId) => {
        try {
          this.payOutSeller(caseId);
        } catch (error) {
          this.onError(error);
        }
      },
      announceLegalMoment: (caseId) => this.projection.republish(caseId),
    });
  }

  /** Restores (or rebuilds) every open case's actor, then follows the projection's changes. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.projection.subscribeChanges((change) => this.changed(change));
    this.relayer.on("settled", this.onSettled);
    for (const caseId of this.projection.caseIds()) {
      const view = this.projection.viewOf(caseId);
      if (!view) continue;
      if (view.model.status === "open") this.revive(view);
      // A release whose payout was not yet asked for when the engine stopped: the case may have ended with it.
      else this.payOutSeller(view.id, view);
    }
  }

  stop(): void {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.relayer.off("settled", this.onSettled);
    this.snapshots.flush();
    for (const { actor } of this.cases.values()) actor.stop();
    this.cases.clear();
    this.rechecks.clear();
    this.scheduler.stop();
  }

  /** The chain clock took a new block: it may have jumped, so what is due now runs now. */
  clockObserved(): void {
    if (this.running) this.scheduler.clockMoved();
  }

  /** The machine's context of a case's actor (its model is the projection's), or null if none runs. */
  contextOf(caseId: string | bigint | number) {
    return this.cases.get(String(caseId))?.actor.getSnapshot().context ?? null;
  }

  /** The case ids whose actors run. */
  activeCases(): string[] {
    return [...this.cases.keys()];
  }

  stats(): RuntimeStats {
    return { actors: this.cases.size, timers: this.scheduler.size, ...this.counts };
  }

  /**
   * A party's approval, sent to the case's actor: `submit` (which records the sign-off with the relayer) runs
   * if the machine's guards take the sign-off now (the contract's rules and the law's). Null when they do
   * not, or no actor runs for the case: the case moved on since the caller looked.
   */
  signOff(caseId: string, stage: number, role: number, submit: () => Promise<Submission>): Promise<Submission> | null {
    const running = this.cases.get(caseId);
    if (!running) return null;
    const ticket = this.nextTicket++;
    const pending: { submit: () => Promise<Submission>; submitted?: Promise<Submission> } = { submit };
    this.tickets.set(ticket, pending);
    try {
      this.send(
        running,
        { type: "APPROVE", stage, role, atMs: this.clock.nowMs(), ticket },
        running.actor.getSnapshot().context.now,
      );
    } finally {
      this.tickets.delete(ticket);
    }
    return pending.submitted ?? null;
  }

  // ----------------------------------------------------------------------------- actors

  /** Restores the case's actor from its snapshot if it can be trusted, or rebuilds it from the projection. */
  private revive(view: CaseView): void {
    const law = this.guards.of(view.template.templateId);
    const version = this.actors.versionFor(law);
    const stored = this.snapshots.get(view.id);
    const context = (stored?.snapshot as { context?: { model?: CaseModel; now?: number }; value?: unknown } | null)
      ?.context;
    let actor: CaseActor | null = null;
    if (
      stored?.machineVersion === version &&
      context?.model &&
      typeof context.now === "number" &&
      sameModel(context.model, view.model)
    ) {
      try {
        actor = this.actors.restored(view.id, law, stored.snapshot, view.model, context.now);
        this.counts.restored += 1;
      } catch (error) {
        // A snapshot XState cannot read: rebuilt below, as one that was never written.
        this.onError(error);
      }
    }
    if (!actor) {
      actor = this.actors.rebuilt(view.id, law, view.model, view.updatedAt.time);
      this.counts.rebuilt += 1;
    }
    const running = this.track(view.id, actor, version);
    if (running) this.send(running, { type: "CLOCK", at: this.clock.nowSeconds() }, this.clock.nowSeconds());
  }

  /** A case the projection changed: its events go to its actor, which must come out as the projection has it. */
  private changed(change: CaseChange): void {
    if (!this.running) return;
    const { caseId, view } = change;
    try {
      let running = this.cases.get(caseId);
      if (!view) {
        if (running) this.drop(caseId, running);
        return;
      }
      let events = change.events;
      const opening = events.findIndex((e) => e.name === "CaseOpened");
      if (opening >= 0 && !change.reorg) {
        if (running) this.drop(caseId, running);
        const law = this.guards.of(view.template.templateId);
        const openedAt = events[opening].blockTime;
        const funded = view.terms.deposit === "0" && view.terms.loan === "0";
        const actor = this.actors.opened(caseId, law, {
          workflow: {
            stages: [...view.model.rules],
            amendmentRules: { ...EVERY_PARTY_CONSENTS, reopenedByTerms: view.model.reopenedByTerms ?? 0 },
          },
          openedAt,
          funded,
        });
        running = this.track(caseId, actor, this.actors.versionFor(law)) ?? undefined;
        events = events.slice(opening + 1);
      } else if (!running) {
        if (view.model.status === "open") this.revive(view);
        else this.payOutSeller(caseId, view);
        return;
      }
      this.payOutReplaced(view, events);
      if (!running) return;
      if (change.reorg) {
        this.send(running, { type: "RESYNC", model: view.model, at: view.updatedAt.time }, view.updatedAt.time);
      } else {
        for (const event of machineEventsOf(events)) {
          if (running.actor.getSnapshot().status !== "active") break;
          this.send(running, event, event.at);
        }
        const context = running.actor.getSnapshot().context;
        if (!sameModel(context.model, view.model)) {
          this.counts.resynced += 1;
          const at = Math.max(context.now, view.updatedAt.time);
          if (running.actor.getSnapshot().status === "active")
            this.send(running, { type: "RESYNC", model: view.model, at }, at);
          else this.drop(caseId, running);
        }
      }
    } catch (error) {
      this.onError(error);
    }
  }

  /** Sends `event` to the actor as happening at chain second `at` (its timers count from there). */
  private send(running: RunningCase, event: Parameters<CaseActor["send"]>[0], at: number): void {
    this.scheduler.at(at * 1000, () => running.actor.send(event));
  }

  /** Keeps a started actor: persisted at every change, dropped once it is done. Null if it already is. */
  private track(caseId: string, actor: CaseActor, version: string): RunningCase | null {
    const running: RunningCase = { actor, version };
    if (actor.getSnapshot().status !== "active") {
      actor.stop();
      this.snapshots.delete(caseId);
      return null;
    }
    this.cases.set(caseId, running);
    actor.subscribe({
      next: (snapshot) => {
        if (this.cases.get(caseId) !== running) return;
        if (snapshot.status === "active") this.snapshots.put(caseId, version, () => actor.getPersistedSnapshot());
        else this.drop(caseId, running);
      },
      error: (error) => this.onError(error),
    });
    this.snapshots.put(caseId, version, () => actor.getPersistedSnapshot());
    return running;
  }

  private drop(caseId: string, running: RunningCase): void {
    if (this.cases.get(caseId) === running) this.cases.delete(caseId);
    running.actor.stop();
    this.snapshots.delete(caseId);
    const recheck = this.rechecks.get(caseId);
    if (recheck !== undefined) this.scheduler.clearTimeout(recheck);
    this.rechecks.delete(caseId);
  }

  // ----------------------------------------------------------------------------- effects

  /** Once the escrow is released: the seller's credit, pushed to the seller, once. */
  private payOutSeller(caseId: string, known?: CaseView): void {
    const view = known ?? this.projection.viewOf(caseId);
    if (!view?.model.released) return;
    const seller = view.parties.seller;
    if (BigInt(view.credits[seller] ?? "0") === 0n) return;
    this.relayer.submit(
      this.relayerCall("withdrawFor", [view.id, seller]),
      `runtime:withdraw-for:${view.id}:${seller}`,
    );
  }

  /**
   * Pays out what is credited to a party that an amendment replaced, to its own address (`withdrawFor`), as
   * the seller's credit is after the release: its credits stay its own, but it is no party of the case any
   * more, so it could not withdraw them through the API.
   */
  private payOutReplaced(view: CaseView, events: readonly ChainEvent[]): void {
    for (const event of events) {
      if (event.name !== "PartyReplaced") continue;
      const previous = String(event.args.previous);
      if (Object.values(view.parties).some((p) => p.toLowerCase() === previous.toLowerCase())) continue;
      if (BigInt(view.credits[previous] ?? "0") === 0n) continue;
      this.relayer.submit(
        this.relayerCall("withdrawFor", [view.id, previous]),
        `runtime:withdraw-for:${view.id}:${previous}:replaced:${event.blockNumber}:${event.logIndex}`,
      );
    }
  }

  /**
   * One submission per key; a try refused as too early is followed, after `retryDelay(attempt)`, by the next
   * key (`base#1`, `base#2`...). Whatever else exists under the key (pending, sent, done) is left as it is.
   */
  private submitTimed(caseId: string, base: string, intent: CallIntent): Submission | undefined {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const key = attempt === 0 ? base : `${base}#${attempt}`;
      const existing = this.relayer.outbox.getByKey(key);
      if (!existing) return this.relayer.submit(intent, key);
      if (existing.status !== "failed" || !isTryAgain(existing)) return existing;
      const waited = Date.now() - existing.updatedAt;
      if (waited < this.retryDelay(attempt)) {
        this.recheck(caseId, this.retryDelay(attempt) - waited);
        return existing;
      }
    }
    return undefined;
  }

  private settled(submission: Submission): void {
    if (submission.status !== "failed" || !isTryAgain(submission)) return;
    const match = /^runtime:(?:advance|expire):(\d+):\d+(?:#(\d+))?$/.exec(submission.idempotencyKey);
    if (match) this.recheck(match[1], this.retryDelay(Number(match[2] ?? 0)));
  }

  /** How long after the failed try number `attempt` (0 for the first) the next one is made. */
  private retryDelay(attempt: number): number {
    return exponentialDelay(attempt + 1, { baseMs: this.retryDelayMs, maxMs: this.maxRetryDelayMs });
  }

  /** In `delayMs`, the case's actor hears the chain clock again, and asks once more for what is due. */
  private recheck(caseId: string, delayMs: number): void {
    if (!this.running || this.rechecks.has(caseId)) return;
    const id = this.scheduler.setTimeout(() => {
      this.rechecks.delete(caseId);
      const running = this.cases.get(caseId);
      const now = this.clock.nowSeconds();
      if (running) this.send(running, { type: "CLOCK", at: now }, now);
    }, delayMs);
    this.rechecks.set(caseId, id);
  }

  private relayerCall(method: string, args: unknown[]): CallIntent {
    return { kind: "call", from: this.relayer.relayerAddress, method, args };
  }
}

function isTryAgain(submission: Submission): boolean {
  return TRY_AGAIN_ERRORS.includes(String(submission.error?.details?.error ?? ""));
}

/** Whether two models of a case hold the same state (their rules are the template's, the same for both). */
function sameModel(a: CaseModel, b: CaseModel): boolean {
  return (
    a.status === b.status &&
    a.funded === b.funded &&
    a.released === b.released &&
    a.cancelVotes === b.cancelVotes &&
    a.openedAt === b.openedAt &&
    a.rules.length === b.rules.length &&
    sameList(a.signedOff, b.signedOff) &&
    sameList(a.completedAt, b.completedAt) &&
    sameList(a.overdue, b.overdue) &&
    (a.termsVersion ?? 0) === (b.termsVersion ?? 0) &&
    sameAmendments(a.amendments ?? [], b.amendments ?? []) &&
    sameMovedDeadlines(a, b)
  );
}

function sameAmendments(a: readonly AmendmentModel[], b: readonly AmendmentModel[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (x, i) =>
        x.kind === b[i].kind &&
        x.version === b[i].version &&
        x.expiresAt === b[i].expiresAt &&
        x.required === b[i].required &&
        x.consents === b[i].consents &&
        x.applied === b[i].applied,
    )
  );
}

function sameMovedDeadlines(a: CaseModel, b: CaseModel): boolean {
  return a.rules.every(
    (_, s) =>
      (a.movedDeadlines?.[s]?.own ?? null) === (b.movedDeadlines?.[s]?.own ?? null) &&
      (a.movedDeadlines?.[s]?.longStop ?? null) === (b.movedDeadlines?.[s]?.longStop ?? null),
  );
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
