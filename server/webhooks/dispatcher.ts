/**
 * The dispatcher: reads the engine's STORED events (the projection's event log) after its own cursor, derives the
 * webhook events of each block of each case, and inserts one delivery per event per subscription that hears it,
 * moving its cursor in that same transaction (store.commit): a kill at any moment leaves either both or neither,
 * so no event is lost and none doubled. Nothing comes from memory: a change the projection announces only wakes
 * it early.
 *
 * Each case is folded from its stored events up to the block, and its progress taken at the block's time, so the
 * events derived are the same whenever the dispatcher runs (a restart hours later derives what it would have).
 * Each event's key says what happened, not where: the case, the event and its arguments, and how many such
 * events the case had before (a stage completes again after a reopening). So when the chain loses blocks (a
 * reorganisation, a node restored from an older save after a kill) and the engine sends the same transactions
 * again, the events they make again are the same deliveries, not new ones. After the event at the cursor was
 * lost, the dispatcher reads the whole log again, which those keys make a no-op for what it had derived.
 */
import type { CaseView } from "../../engine/projection/case-view";
import { foldCase, progressOf } from "../../engine/projection/case-view";
import type { ChainEvent } from "../../engine/projection/event-log";
import type { Projection } from "../../engine/projection/projection";
import { templateInfoOf, type TemplateInfo } from "../../engine/projection/templates";
import type { CompiledWorkflow } from "../../workflows";
import type { Principal } from "../auth/principals";
import { deliveryFor, hears, receivers } from "./audience";
import { awaitedOf, caseData, stageData, type DerivedEvent } from "./event-types";
import type { Cursor, NewDelivery, WebhookStore } from "./store";

const BATCH_EVENTS = 500;

export type WebhookProjection = Pick<Projection, "log" | "guards" | "viewOf" | "caseIds" | "getCase" | "clock">;

export class Dispatcher {
  private readonly templates = new Map<string, TemplateInfo>();

  constructor(
    private readonly store: WebhookStore,
    private readonly projection: WebhookProjection,
    workflows: readonly CompiledWorkflow[],
    private readonly principalOf: (id: string) => Principal | null,
  ) {
    for (const w of workflows) this.templates.set(w.templateId.toLowerCase(), templateInfoOf(w));
  }

  /** Where the dispatcher has read to: the first thing read after it is what a new subscription receives from. */
  position(): { block: number; logIndex: number } {
    return this.projection.log.lastPosition() ?? { block: -1, logIndex: -1 };
  }

  /** Reads one batch of stored events; returns how many it read (0: caught up). */
  tick(now = Date.now()): number {
    const log = this.projection.log;
    let cursor: Cursor = this.store.cursor() ?? { block: -1, logIndex: -1, blockHash: null };
    if (cursor.blockHash !== null && log.eventAt(cursor.block, cursor.logIndex)?.blockHash !== cursor.blockHash)
      cursor = { block: -1, logIndex: -1, blockHash: null };
    const events = log.eventsAfter(cursor.block, cursor.logIndex, BATCH_EVENTS);
    if (events.length === 0) {
      if (this.store.cursor() === null || cursor.blockHash === null) this.store.commit([], cursor, now);
      return 0;
    }
    const listening = receivers(this.store.liveSubscriptions(), this.principalOf);
    const deliveries: NewDelivery[] = [];
    if (listening.length > 0) {
      // Blocks before every subscription began (a log read again from its start) need no folding.
      const from = Math.min(...listening.map((r) => r.subscription.from.block));
      for (const group of byBlockAndCase(events))
        if (group[0].blockNumber >= from) deliveries.push(...this.deliveriesOf(group, listening));
    }
    const last = events[events.length - 1];
    this.store.commit(deliveries, { block: last.blockNumber, logIndex: last.logIndex, blockHash: last.blockHash }, now);
    return events.length;
  }

  /** The deliveries of one block's events of one case. */
  private deliveriesOf(group: ChainEvent[], listening: ReturnType<typeof receivers>): NewDelivery[] {
    const first = group[0];
    const caseId = first.caseId as string;
    const history = this.projection.log.eventsOf(caseId).filter((e) => e.blockNumber <= first.blockNumber);
    const view = this.fold(history);
    if (!view) return [];
    const progress = progressOf(view, first.blockTime, this.projection.guards.of(view.template.templateId));
    const seen = new Map<string, number>();
    for (const e of history) {
      if (e.blockNumber === first.blockNumber) break;
      const what = whatHappened(e);
      seen.set(what, (seen.get(what) ?? 0) + 1);
    }
    const derived: DerivedEvent[] = [];
    for (const e of group) {
      const what = whatHappened(e);
      const ordinal = seen.get(what) ?? 0;
      seen.set(what, ordinal + 1);
      derived.push(...chainEventsOf(e, progress, `${what}#${ordinal}`));
    }
    derived.push(...awaitedOf(progress, first.blockTime * 1000));
    const out: NewDelivery[] = [];
    for (const event of derived) {
      for (const r of listening) {
        const from = r.subscription.from;
        const position = group[group.length - 1];
        const after =
          position.blockNumber > from.block ||
          (position.blockNumber === from.block && position.logIndex > from.logIndex);
        if (after && hears(r, event, progress.parties)) out.push(deliveryFor(r, event));
      }
    }
    return out;
  }

  /** The case as those of its stored events that `upTo` keeps make it (a prefix: up to a block, or a moment). */
  viewAt(caseId: string, upTo: (e: ChainEvent) => boolean): CaseView | null {
    return this.fold(this.projection.log.eventsOf(caseId).filter(upTo));
  }

  private fold(events: readonly ChainEvent[]): CaseView | null {
    if (events.length === 0) return null;
    const current = this.projection.viewOf(events[0].caseId as string);
    try {
      return foldCase(events, (templateId) => {
        const known = this.templates.get(templateId.toLowerCase());
        if (known) return known;
        if (current) return { ...current.template, rules: current.model.rules.map((r) => ({ ...r })) };
        throw new Error(`template ${templateId} is not known`);
      });
    } catch {
      return null;
    }
  }
}

function byBlockAndCase(events: readonly ChainEvent[]): ChainEvent[][] {
  const groups = new Map<string, ChainEvent[]>();
  for (const e of events) {
    if (e.caseId === null) continue;
    const key = `${e.blockNumber}:${e.caseId}`;
    const group = groups.get(key);
    if (group) group.push(e);
    else groups.set(key, [e]);
  }
  return [...groups.values()];
}

/** What an event says, wherever it landed: its case, name and arguments. */
function whatHappened(e: ChainEvent): string {
  return `${e.caseId}:${e.name}:${JSON.stringify(e.args)}`;
}

/** The webhook events one chain event makes, with the case's progress after its block; `what` keys them. */
function chainEventsOf(e: ChainEvent, progress: ReturnType<typeof progressOf>, what: string): DerivedEvent[] {
  const caseId = e.caseId as string;
  const at = e.blockTime * 1000;
  const key = (type: string) => `${type}:${what}`;
  const chain = { block: e.blockNumber, tx: e.txHash };
  const base = { ...caseData(progress), ...chain };
  const one = (type: DerivedEvent["type"], data: Record<string, unknown>): DerivedEvent[] => [
    { type, caseId, key: key(type), occurredAt: at, data: { ...base, ...data } },
  ];
  switch (e.name) {
    case "StageCompleted": {
      const stage = progress.stages[Number(e.args.stage)];
      return stage ? one("stage.completed", { stage: stageData(stage) }) : [];
    }
    case "CaseCompleted":
      return one("case.completed", {});
    case "CaseExpired": {
      const stage = progress.stages[Number(e.args.stage)];
      return one("case.expired", { stage: stage ? stageData(stage) : null });
    }
    case "CaseCancelled":
      return one("case.cancelled", {});
    case "Credited": {
      const payee = String(e.args.payee);
      const roles = Object.entries(progress.parties)
        .filter(([, a]) => a.toLowerCase() === payee.toLowerCase())
        .map(([r]) => r);
      return one("party.credited", { payee, roles, amount: String(e.args.amount), asset: progress.asset });
    }
    case "AmendmentProposed":
    case "AmendmentApplied": {
      const amendment = progress.amendments[Number(e.args.amendment) - 1];
      const type = e.name === "AmendmentProposed" ? "amendment.proposed" : "amendment.applied";
      return one(type, { amendment: amendment ?? { number: Number(e.args.amendment) } });
    }
    default:
      return [];
  }
}
