/**
 * The runtime: one XState actor per open case (see `case-actor.ts`), kept equal to the projection's view,
 * and what the engine does by itself when time or the chain says so:
 *
 * - advance: when a waiting time ends (the machine's timer), at the later of the contract's and the law's
 *   moment (a second timer of the runtime's own covers the law's business days beyond the contract's floor);
 * - expire: when a deadline passes unmet;
 * - withdrawFor(seller): once the releasing stage has completed, the seller's credit is pushed to it;
 * - at a stage's legal moment, its progress published again (it now accepts sign-offs: no event says so).
 *
 * Every submission goes through the relayer under an idempotency key derived from (case, kind, moment), so a
 * timer that fires twice, or again after a restart, finds the submission already there. An `advance` or
 * `expire` refused because it came too early (the chain clock is the wall clock plus an offset measured to
 * the second; a node may estimate against a block some seconds old) is tried again under the next key
 * `...#n`, each time waiting twice as long (1 s, 2 s, 4 s... up to 30 s), so the tries span minutes, not
 * seconds: the keys are the moment's, so once they are spent the engine never tries that moment again.
 *
 * Restart: `start()` builds every open case's actor from the projection (the store, then the chain) at the
 * chain clock's now. What fell due while the engine was down is submitted at once; later moments re-arm.
 */
import {
  type CaseModel,
  deadlineOf,
  isCompleted,
  isFullySigned,
  isPastDeadline,
  missedDeadlines,
  prerequisitesComplete,
} from "../../workflows/case-rules";
import { nextDeadlineMiss, nextWaitingTimeEnd } from "../../workflows/machine";
import type { ChainClock } from "../chain/clock";
import type { CaseView } from "../projection/case-view";
import type { Projection } from "../projection/projection";
import { exponentialDelay } from "../relayer/backoff";
import type { Relayer } from "../relayer/relayer";
import type { CallIntent, Submission } from "../relayer/types";
import { type CaseActor, startCaseActor, untilChainSecond } from "./case-actor";
import type { LegalGuards } from "./legal";

export interface RuntimeOptions {
  projection: Projection;
  relayer: Relayer;
  clock: ChainClock;
  /** How long after a too-early `advance`/`expire` was first refused it is tried again; each later try waits twice as long. */
  retryDelayMs?: number;
  /** The longest wait between two tries. */
  maxRetryDelayMs?: number;
  /** Tries of one `advance`/`expire` moment before the runtime gives up on it (until the case changes). */
  maxAttempts?: number;
  /** A chain clock that moved by more than this (a dev clock moved forward) re-arms every case's timers. */
  clockJumpMs?: number;
  onError?: (error: unknown) => void;
}

/** How near (chain seconds) a case's next moment must be for a forward jump of the chain clock to re-arm it. */
const REARM_HORIZON_SECONDS = 60;

/** The contract's refusals that mean "too early, or already done": worth one more look a moment later. */
const TRY_AGAIN_ERRORS = ["MortgageEscrowNothingToAdvance", "MortgageEscrowNothingToExpire"];

interface RunningCase {
  actor: CaseActor;
  /** The chain clock's offset when the actor's timers were armed. */
  offsetMs: number;
  /** The runtime's own timer for a legal moment later than the contract's, and the moment it is for. */
  legalTimer?: { at: number; timer: NodeJS.Timeout };
  /** The next legal moment of a stage still to complete (ms): its progress is published again then. */
  momentTimer?: { at: number; timer: NodeJS.Timeout };
}

export class Runtime {
  readonly guards: LegalGuards;
  private readonly projection: Projection;
  private readonly relayer: Relayer;
  private readonly clock: ChainClock;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly maxAttempts: number;
  private readonly clockJumpMs: number;
  private readonly onError: (error: unknown) => void;
  private readonly cases = new Map<string, RunningCase>();
  private readonly rechecks = new Map<string, NodeJS.Timeout>();
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
    this.clockJumpMs = options.clockJumpMs ?? 1_000;
    this.onError = options.onError ?? (() => {});
  }

  /** Builds every case's actor from the projection and follows its changes. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.projection.subscribe((notice) => this.sync(notice.caseId));
    this.relayer.on("settled", this.onSettled);
    for (const progress of this.projection.listCases()) this.sync(progress.id);
  }

  stop(): void {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.relayer.off("settled", this.onSettled);
    for (const caseId of [...this.cases.keys()]) this.drop(caseId);
    for (const timer of this.rechecks.values()) clearTimeout(timer);
    this.rechecks.clear();
  }

  /**
   * After the chain clock took a new block: if it jumped, the actors' timers are re-armed on it. A jump
   * back re-arms every case. A jump forward re-arms the cases with a moment (a waiting time's end, a
   * deadline, the law's moment) after the one their timers were armed at and at most `REARM_HORIZON_SECONDS`
   * from now, passed ones included; a case whose next moment is further away keeps its timers (they would
   * only be late) and is re-armed at a later block, once its moment comes that near. Re-creating every
   * case's actor at every block was most of the engine's time on a chain whose clock runs ahead of the wall
   * clock (an automining node stamps each block at least a second after the one before).
   */
  clockObserved(): void {
    if (!this.running) return;
    const offset = this.offsetMs();
    const now = this.clock.nowSeconds();
    for (const [caseId, running] of this.cases) {
      const jump = offset - running.offsetMs;
      if (Math.abs(jump) <= this.clockJumpMs) continue;
      if (jump > 0) {
        const { model, now: armedAt } = running.actor.context();
        const legalMoment = running.momentTimer ? Math.ceil(running.momentTimer.at / 1000) : null;
        const moments = [nextWaitingTimeEnd(model, armedAt), nextDeadlineMiss(model, armedAt), running.legalTimer?.at ?? null, legalMoment];
        if (moments.every((m) => m === null || m > now + REARM_HORIZON_SECONDS)) continue;
      }
      this.sync(caseId);
    }
  }

  /** The machine's context of a case's actor (its model is the projection's), or null if none runs. */
  contextOf(caseId: string | bigint | number) {
    return this.cases.get(String(caseId))?.actor.context() ?? null;
  }

  /** The case ids whose actors run. */
  activeCases(): string[] {
    return [...this.cases.keys()];
  }

  // ----------------------------------------------------------------------------- per case

  /** Re-creates the case's actor from its projected view, then does at once whatever is already due. */
  private sync(caseId: string): void {
    if (!this.running) return;
    // A legal moment that came while its timer was being re-armed (a jump of the clock) is published still.
    const pendingMoment = this.cases.get(caseId)?.momentTimer?.at;
    this.drop(caseId);
    if (pendingMoment !== undefined && pendingMoment <= this.clock.nowMs()) setImmediate(() => this.running && this.projection.republish(caseId));
    const view = this.projection.viewOf(caseId);
    if (!view) return;
    try {
      this.pushSellerCredit(view);
      if (view.model.status !== "open") return;
      const actor = startCaseActor(caseId, view.model, this.clock, {
        requestAdvance: (at) => this.checkAdvance(caseId, at),
        requestExpire: (at) => this.checkExpire(caseId, at),
      });
      this.cases.set(caseId, { actor, offsetMs: this.offsetMs() });
      this.armMomentTimer(caseId, view);
      this.checkAdvance(caseId);
      this.checkExpire(caseId);
    } catch (error) {
      this.onError(error);
    }
  }

  private drop(caseId: string): void {
    const running = this.cases.get(caseId);
    if (!running) return;
    running.actor.stop();
    if (running.legalTimer) clearTimeout(running.legalTimer.timer);
    if (running.momentTimer) clearTimeout(running.momentTimer.timer);
    this.cases.delete(caseId);
  }

  /**
   * At the next legal moment of a stage still to complete, the case's progress is published again: the stage
   * then reads open and accepts sign-offs, which no chain event would tell the event stream.
   */
  private armMomentTimer(caseId: string, view: CaseView): void {
    const guard = this.guards.of(view.template.templateId);
    const running = this.cases.get(caseId);
    if (!guard || !running) return;
    const nowMs = this.clock.nowMs();
    const later = view.model.rules
      .map((_, s) => (isCompleted(view.model, s) ? undefined : guard.legalMomentOf(view.model, s)))
      .filter((m): m is Date => m instanceof Date && m.getTime() > nowMs)
      .map((m) => m.getTime());
    if (later.length === 0) return;
    const at = Math.min(...later);
    const timer = setTimeout(() => {
      if (this.cases.get(caseId) !== running) return;
      running.momentTimer = undefined;
      // A timer may wake a moment early on the chain's clock: wait for the moment itself.
      if (this.clock.nowMs() < at) this.armMomentTimer(caseId, view);
      else this.projection.republish(caseId);
    }, untilChainSecond(this.clock, Math.ceil(at / 1000)));
    running.momentTimer = { at, timer };
  }

  /**
   * Submits `advance` if a stage may complete by time now (by the contract and by the law); otherwise, if
   * the law's moment is later than the contract's, arms the runtime's own timer for it.
   */
  private checkAdvance(caseId: string, at = 0): void {
    const view = this.projection.viewOf(caseId);
    if (!view || view.model.status !== "open") return;
    const now = Math.max(this.clock.nowSeconds(), at);
    const moments = this.advanceMoments(view, now);
    const due = moments.filter((m) => m <= now);
    if (due.length > 0) {
      this.submitTimed(caseId, `runtime:advance:${caseId}:${Math.min(...due)}`, this.relayerCall("advance", [caseId]));
    }
    const later = moments.filter((m) => m > now);
    if (later.length > 0) this.armLegalTimer(caseId, Math.min(...later));
  }

  /** The moment each stage that only time holds back may complete (contract and law), for open stages. */
  private advanceMoments(view: CaseView, now: number): number[] {
    const model: CaseModel = view.model;
    const moments: number[] = [];
    model.rules.forEach((rule, s) => {
      if (isCompleted(model, s) || !isFullySigned(model, s) || !prerequisitesComplete(model, s)) return;
      if (rule.action !== 0 && !model.funded) return;
      const moment = this.guards.advanceMomentOf(view.template.templateId, model, s);
      if (moment === null) return;
      // Before the release a missed deadline is `expire`'s, not `advance`'s.
      if (!model.released && isPastDeadline(model, s, Math.max(moment, now))) return;
      moments.push(moment);
    });
    return moments;
  }

  private armLegalTimer(caseId: string, at: number): void {
    const running = this.cases.get(caseId);
    if (!running || running.legalTimer?.at === at) return;
    if (running.legalTimer) clearTimeout(running.legalTimer.timer);
    running.legalTimer = { at, timer: setTimeout(() => this.checkAdvance(caseId, at), untilChainSecond(this.clock, at)) };
  }

  /** Submits `expire` if a deadline has passed unmet (before the release it ends the case; after, overdue). */
  private checkExpire(caseId: string, at = 0): void {
    const view = this.projection.viewOf(caseId);
    if (!view || view.model.status !== "open") return;
    const now = Math.max(this.clock.nowSeconds(), at);
    const missed = missedDeadlines(view.model, now);
    if (missed.length === 0) return;
    const moment = Math.min(...missed.map((s) => (deadlineOf(view.model, s) as number) + 1));
    this.submitTimed(caseId, `runtime:expire:${caseId}:${moment}`, this.relayerCall("expire", [caseId]));
  }

  /** Right after the release: the seller's credit, pushed to the seller, once. */
  private pushSellerCredit(view: CaseView): void {
    if (!view.model.released) return;
    const seller = view.parties.seller;
    if (BigInt(view.credits[seller] ?? "0") === 0n) return;
    this.relayer.submit(this.relayerCall("withdrawFor", [view.id, seller]), `runtime:withdraw-for:${view.id}:${seller}`);
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

  private recheck(caseId: string, delayMs: number): void {
    if (!this.running || this.rechecks.has(caseId)) return;
    this.rechecks.set(
      caseId,
      setTimeout(() => {
        this.rechecks.delete(caseId);
        this.checkAdvance(caseId);
        this.checkExpire(caseId);
      }, delayMs),
    );
  }

  private relayerCall(method: string, args: unknown[]): CallIntent {
    return { kind: "call", from: this.relayer.relayerAddress, method, args };
  }

  private offsetMs(): number {
    return this.clock.nowMs() - Date.now();
  }
}

function isTryAgain(submission: Submission): boolean {
  return TRY_AGAIN_ERRORS.includes(String(submission.error?.details?.error ?? ""));
}
