/**
 * Events that time alone makes, which no stored event announces: a sign-off that becomes possible at its legal
 * moment (the end of a waiting time, counted in business days in law), and a legal deadline N business days away
 * (N per subscription) in the case's jurisdiction calendar. Run on the chain clock (a moved dev clock moves it
 * too) and idempotent: each event's key (case, stage, role, or the deadline's moment) is unique per subscription,
 * so running it again, or after a restart, makes nothing twice. A sign-off awaited at a legal moment is judged
 * as the case stood AT that moment (its stored events before it), so a scheduler that runs late, or a party that
 * signs within milliseconds of the moment, changes nothing of what is sent. A case is looked at only once the
 * dispatcher has read its latest block, so a time-made event never overtakes the chain event before it.
 */
import type { CompiledWorkflow } from "../../workflows";
import { getCalendar, type Calendar } from "../../workflows/calendars";
import { formatDate } from "../../workflows/calendars/local-dates";
import { localDayOf, startOfLocalDay } from "../../workflows/calendars/time-zones";
import type { CaseProgress } from "../../engine/projection/case-view";
import type { Principal } from "../auth/principals";
import { deliveryFor, hears, receivers } from "./audience";
import { progressOf } from "../../engine/projection/case-view";
import type { Dispatcher, WebhookProjection } from "./dispatcher";
import { awaitedOf, caseData, stageData, type DerivedEvent } from "./event-types";
import type { NewDelivery, WebhookStore } from "./store";

const TIME_TYPES = new Set(["signoff.awaited", "deadline.approaching"]);

/**
 * The moment a deadline is `n` business days away: 00:00 local of the nth business day before the deadline's
 * last day (a deadline is 00:00 local of the day after its last day).
 */
export function approachingMoment(deadlineMs: number, n: number, calendar: Calendar): number {
  let day = localDayOf(deadlineMs - 1, calendar.timeZone);
  for (let counted = 0; counted < n;) {
    day -= 1;
    if (calendar.isBusinessDay(formatDate(day))) counted += 1;
  }
  return startOfLocalDay(day, calendar.timeZone);
}

export class Scheduler {
  private readonly calendars = new Map<string, Calendar>();
  /** Legal moments already judged (case, stage, moment): each is folded once per process. */
  private readonly judged = new Set<string>();
  /**
   * The chain moment (ms) each case needs looking at again, as far as its progress when last looked at says
   * (Infinity: not until it changes). A hint in memory: a change of the case, or a new subscription, forgets it;
   * after a restart every case is looked at once. It keeps a tick from computing every case's progress.
   */
  private readonly nextLook = new Map<string, number>();

  constructor(
    private readonly store: WebhookStore,
    private readonly projection: WebhookProjection,
    private readonly dispatcher: Dispatcher,
    workflows: readonly CompiledWorkflow[],
    private readonly principalOf: (id: string) => Principal | null,
  ) {
    for (const w of workflows) this.calendars.set(w.templateId.toLowerCase(), getCalendar(w.calendar, w.timeZone));
  }

  /** Forgets when to look at a case again (it changed), or at every case (the subscriptions changed). */
  invalidate(caseId?: string): void {
    if (caseId === undefined) this.nextLook.clear();
    else this.nextLook.delete(caseId);
  }

  /** Inserts whatever time has made due by chain time `nowSeconds`; returns how many deliveries it inserted. */
  tick(nowSeconds = this.projection.clock.nowSeconds(), wallNow = Date.now()): number {
    const listening = receivers(
      this.store.liveSubscriptions().filter((s) => s.eventTypes.some((t) => TIME_TYPES.has(t))),
      this.principalOf,
    );
    if (listening.length === 0) return 0;
    const read = this.store.cursor();
    if (read === null) return 0;
    const nowMs = nowSeconds * 1000;
    const out: NewDelivery[] = [];
    const ns = new Set(
      listening
        .filter((r) => r.subscription.eventTypes.includes("deadline.approaching"))
        .map((r) => r.subscription.businessDaysBefore ?? 1),
    );
    for (const caseId of this.projection.caseIds()) {
      const look = this.nextLook.get(caseId);
      if (look !== undefined && nowMs < look) continue;
      const progress = this.projection.getCase(caseId, nowSeconds);
      if (!progress || progress.status !== "open") {
        this.nextLook.set(caseId, Infinity);
        continue;
      }
      if (progress.updatedAt.block > read.block) continue;
      let next = Infinity;
      const events: DerivedEvent[] = this.awaitedAtLegalMoments(progress, nowMs);
      for (const stage of progress.stages) {
        const moment = stage.availableAt === null || stage.contractFloor === null ? NaN : Date.parse(stage.availableAt);
        if (moment > nowMs) next = Math.min(next, moment);
      }
      const calendar = this.calendars.get(progress.workflow.templateId.toLowerCase());
      if (calendar && ns.size > 0) {
        for (const stage of progress.stages) {
          if (stage.deadline === null || !["locked", "open", "waiting"].includes(stage.status)) continue;
          const deadline = Date.parse(stage.deadline);
          for (const n of ns) {
            const moment = approachingMoment(deadline, n, calendar);
            if (moment > nowMs) next = Math.min(next, moment);
            if (nowMs < moment || nowMs >= deadline) continue;
            events.push({
              type: "deadline.approaching",
              caseId,
              key: `deadline.approaching:${caseId}:${stage.id}:${stage.deadline}:${n}`,
              occurredAt: moment,
              businessDaysBefore: n,
              data: { ...caseData(progress), stage: stageData(stage), businessDaysBefore: n, deadline: stage.deadline },
            });
          }
        }
      }
      this.nextLook.set(caseId, next);
      for (const event of events)
        for (const r of listening) if (hears(r, event, progress.parties)) out.push(deliveryFor(r, event));
    }
    return out.length === 0 ? 0 : this.store.commit(out, null, wallNow);
  }

  /** The sign-offs that each stage's waiting time, ended by now, made awaited at its end. */
  private awaitedAtLegalMoments(progress: CaseProgress, nowMs: number): DerivedEvent[] {
    const found: DerivedEvent[] = [];
    for (const stage of progress.stages) {
      // A waiting time's end is known (availableAt) once the prerequisites are complete (contractFloor then too).
      if (stage.availableAt === null || stage.contractFloor === null) continue;
      const moment = Date.parse(stage.availableAt);
      const judged = `${progress.id}:${stage.id}:${stage.availableAt}`;
      if (moment > nowMs || this.judged.has(judged)) continue;
      this.judged.add(judged);
      const at = Math.ceil(moment / 1000);
      const view = this.dispatcher.viewAt(progress.id, (e) => e.blockTime <= at);
      if (!view) continue;
      const then = progressOf(view, at, this.projection.guards.of(view.template.templateId));
      for (const e of awaitedOf(then, moment))
        if (e.type === "signoff.awaited" && (e.data.stage as { id: string }).id === stage.id) found.push(e);
    }
    return found;
  }
}
