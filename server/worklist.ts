/**
 * The worklist behind `GET /cases`: every case's small worklist facts (what it waits for and from whom, its
 * next legal deadline, when it opened, its parties), kept in memory and recomputed only when the case changes
 * (the engine's notices) or one of its moments comes (a legal moment, a deadline, an amendment's expiry), so
 * that a page filters and sorts ten thousand cases without computing ten thousand progresses.
 *
 * Order: the next legal deadline, soonest first, cases with none after, then the id. Paging is by keyset: a
 * cursor holds the position (deadline, id) after which the next page starts, and the walk it belongs to. A
 * case's position moves when its next deadline does (a stage completes, an amendment moves a deadline), so
 * the index remembers each case's earlier positions for WALK_RETAIN_MS: a walk's later pages order the cases
 * as they stood when its first page was read, so a case whose deadline moves mid-walk is neither repeated
 * nor skipped. Filters are applied as things are now (a case that stopped awaiting the caller is not shown
 * on a later page), and each item shows its case as it is now.
 */
import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import { type CaseProgress, type WorklistFacts, worklistFactsOf } from "../engine";
import { ROLE_NAMES, type RoleName } from "../workflows/schema";
import type { Principal } from "./auth/principals";
import { isOperator } from "./auth/case-access";
import { validationError } from "./errors";
import type { ServerEngine } from "./routes/context";
import { loadTemplates } from "../workflows";
import { createLegalGuard, type LegalGuard } from "../workflows/legal-guard";

/** The legal guard of each template a workflow here compiles to, by template id (lower case). */
const GUARDS = new Map<string, LegalGuard>(
  loadTemplates().map((w) => [w.templateId.toLowerCase(), createLegalGuard(w)]),
);
const guardOf = (templateId: string) => GUARDS.get(templateId.toLowerCase());

/** How long a walk keeps the order of its first page (on this instance); after that pages follow the current order. */
export const WALK_RETAIN_MS = 60 * 60 * 1000;

export type CaseStatusFilter = CaseProgress["status"];

export interface WorklistFilter {
  awaiting?: "me";
  role?: RoleName;
  status?: CaseStatusFilter[];
  workflow?: string;
  /** Milliseconds since the epoch. */
  deadlineBefore?: number;
  /** Only cases whose next legal deadline comes within this many business days, in each case's own calendar. */
  deadlineWithinBusinessDays?: number;
  openedAfter?: number;
  openedBefore?: number;
}

export interface WorklistPage {
  /** Each item as JSON: the case's whole progress with `waitingFor` and `nextDeadline`. */
  items: string[];
  nextCursor: string | null;
}

interface Entry {
  id: string;
  status: CaseStatusFilter;
  workflowId: string | null;
  templateId: string;
  /** The parties' addresses, lower case, in ROLE_NAMES order. */
  parties: string[];
  facts: WorklistFacts;
  /**
   * The case's item as JSON (its progress with `waitingFor` and `nextDeadline`), made when first shown and kept
   * while the facts hold: the progress changes only at the same moments as the facts (see `validUntilSeconds`).
   */
  json?: string;
  /** The index's version when the case entered it. */
  since: number;
  /** Earlier deadlines (positions) of the case, oldest first, each with the version at which it stopped holding. */
  past: Array<{ deadlineMs: number; until: number; at: number }>;
}

/** The cursor's content: opaque to clients (base64url JSON). */
interface Cursor {
  /** The index instance that made it: versions mean nothing to another. */
  e: string;
  /** The walk's version: the index's version when its first page was read. */
  w: number;
  /** When the walk began (ms). */
  t: number;
  /** The last item's position: its deadline (null: none) and id. */
  d: number | null;
  i: string;
  /** A hash of the filters: a cursor continues the query it came from. */
  f: string;
}

function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function comparePositions(da: number, ia: string, db: number, ib: string): number {
  if (da !== db) return da < db ? -1 : 1;
  return compareIds(ia, ib);
}

function cursorError(message: string): never {
  throw validationError("query", new z.ZodError([{ code: "custom", path: ["cursor"], message, input: undefined }]));
}

export class Worklist {
  private readonly entries = new Map<string, Entry>();
  private readonly dirty = new Set<string>();
  private readonly epoch = randomBytes(6).toString("base64url");
  private readonly unsubscribe: () => void;
  private loaded = false;
  private version = 0;
  /** The earliest `validUntilSeconds` of any entry: before it, time alone changes nothing. */
  private nextMoment = Infinity;

  /**
   * `present`: what the server adds to a case's progress before showing it (the parties' display names), as
   * GET /cases/:id shows it. A name given to a principal later shows once the case's item is made again.
   */
  constructor(
    private readonly engine: Pick<ServerEngine, "getCase" | "caseIds" | "subscribe" | "clock">,
    private readonly present: (progress: CaseProgress) => CaseProgress = (progress) => progress,
  ) {
    this.unsubscribe = engine.subscribe((notice) => this.dirty.add(notice.caseId));
  }

  /** The start of the Nth business day after the chain's now in the template's calendar (UTC days without one). */
  private businessDaysAhead(templateId: string, days: number): number {
    const key = `${templateId}:${days}`;
    let found = this.horizons.get(key);
    const now = this.engine.clock.nowMs();
    if (found === undefined || found.at !== Math.floor(now / 1000)) {
      const guard = guardOf(templateId);
      const ms = guard ? guard.businessDaysAfter(new Date(now), days).getTime() : now + days * 86_400_000;
      found = { at: Math.floor(now / 1000), ms };
      this.horizons.set(key, found);
    }
    return found.ms;
  }
  /** `businessDaysAhead`'s answers for the current chain second, by template and count. */
  private readonly horizons = new Map<string, { at: number; ms: number }>();

  close(): void {
    this.unsubscribe();
    this.entries.clear();
  }

  /** One page of the cases `principal` sees that match `filter`, after `cursor` (from a previous page). */
  page(principal: Principal, filter: WorklistFilter, limit: number, cursorText?: string): WorklistPage {
    const operator = isOperator(principal);
    if (operator && (filter.awaiting !== undefined || filter.role !== undefined)) {
      const field = filter.awaiting !== undefined ? "awaiting" : "role";
      throw validationError(
        "query",
        new z.ZodError([
          {
            code: "custom",
            path: [field],
            message: `the operator is a party to no case, so nothing awaits it and it holds no role: drop ${field}`,
            input: filter[field],
          },
        ]),
      );
    }
    const filterHash = createHash("sha256").update(JSON.stringify(filter)).digest("base64url").slice(0, 12);
    const cursor = cursorText === undefined ? null : this.decode(cursorText, filterHash);
    this.refresh();

    const nowMs = Date.now();
    // The walk's order: as it stood at its first page, while this instance still remembers it.
    const walk =
      cursor === null ? this.version : cursor.e === this.epoch && nowMs - cursor.t <= WALK_RETAIN_MS ? cursor.w : null;
    const startedAt = cursor === null ? nowMs : cursor.t;
    const after = cursor === null ? null : { d: cursor.d === null ? Infinity : cursor.d, i: cursor.i };

    const address = principal.address.toLowerCase();
    const statuses = filter.status ? new Set(filter.status) : null;
    const workflow = filter.workflow?.toLowerCase();
    const candidates: Array<{ entry: Entry; d: number }> = [];
    for (const entry of this.entries.values()) {
      let roles = 0;
      if (!operator) {
        for (let r = 0; r < entry.parties.length; r++) if (entry.parties[r] === address) roles |= 1 << r;
        if (roles === 0) continue;
        if (filter.role !== undefined && (roles & (1 << ROLE_NAMES.indexOf(filter.role))) === 0) continue;
      }
      if (statuses && !statuses.has(entry.status)) continue;
      if (workflow !== undefined && entry.workflowId !== workflow && entry.templateId !== workflow) continue;
      const { facts } = entry;
      if (filter.deadlineBefore !== undefined && !(facts.deadlineMs < filter.deadlineBefore)) continue;
      if (
        filter.deadlineWithinBusinessDays !== undefined &&
        !(facts.deadlineMs < this.businessDaysAhead(entry.templateId, filter.deadlineWithinBusinessDays))
      )
        continue;
      if (filter.openedAfter !== undefined && !(facts.openedAtMs > filter.openedAfter)) continue;
      if (filter.openedBefore !== undefined && !(facts.openedAtMs < filter.openedBefore)) continue;
      if (
        filter.awaiting === "me" &&
        !facts.waitingFor.some((w) => w.roles.some((role) => (roles & (1 << ROLE_NAMES.indexOf(role))) !== 0))
      )
        continue;
      const d = walk === null ? facts.deadlineMs : this.positionAt(entry, walk);
      if (after && comparePositions(d, entry.id, after.d, after.i) <= 0) continue;
      candidates.push({ entry, d });
    }
    candidates.sort((a, b) => comparePositions(a.d, a.entry.id, b.d, b.entry.id));
    const shown = candidates.slice(0, limit);
    const last = shown[shown.length - 1];
    const nextCursor =
      candidates.length > limit && last
        ? this.encode({
            e: this.epoch,
            w: walk ?? this.version,
            t: walk === null ? nowMs : startedAt,
            d: Number.isFinite(last.d) ? last.d : null,
            i: last.entry.id,
            f: filterHash,
          })
        : null;
    const items: string[] = [];
    for (const { entry } of shown) {
      const json = this.itemJson(entry);
      if (json !== null) items.push(json);
    }
    return { items, nextCursor };
  }

  private itemJson(entry: Entry): string | null {
    if (entry.json !== undefined) return entry.json;
    const progress = this.engine.getCase(entry.id);
    if (!progress) return null;
    const { waitingFor, nextDeadline } = entry.facts;
    entry.json = JSON.stringify({ ...this.present(progress), waitingFor, nextDeadline });
    return entry.json;
  }

  /** The deadline that placed the case in the walk of version `walk`. */
  private positionAt(entry: Entry, walk: number): number {
    // A case that entered after the walk began takes its current place.
    if (entry.since > walk) return entry.facts.deadlineMs;
    for (const past of entry.past) if (past.until > walk) return past.deadlineMs;
    return entry.facts.deadlineMs;
  }

  /** Brings every entry up to date: all of them the first time, then the changed ones and those whose moment came. */
  private refresh(): void {
    const now = this.engine.clock.nowSeconds();
    if (!this.loaded) {
      this.loaded = true;
      this.dirty.clear();
      for (const id of this.engine.caseIds()) this.update(id, now);
    }
    for (const id of this.dirty) this.update(id, now);
    this.dirty.clear();
    if (now >= this.nextMoment) {
      this.nextMoment = Infinity;
      for (const entry of this.entries.values()) {
        if (now >= entry.facts.validUntilSeconds) this.update(entry.id, now);
        else this.nextMoment = Math.min(this.nextMoment, entry.facts.validUntilSeconds);
      }
    }
  }

  private update(id: string, now: number): void {
    const progress = this.engine.getCase(id);
    const entry = this.entries.get(id);
    if (!progress) {
      this.entries.delete(id);
      return;
    }
    const facts = worklistFactsOf(progress, now);
    this.nextMoment = Math.min(this.nextMoment, facts.validUntilSeconds);
    const fields = {
      status: progress.status,
      workflowId: progress.workflow.id,
      templateId: progress.workflow.templateId.toLowerCase(),
      parties: ROLE_NAMES.map((role) => progress.parties[role].toLowerCase()),
      facts,
    };
    if (!entry) {
      this.entries.set(id, { id, since: ++this.version, past: [], ...fields });
      return;
    }
    if (entry.facts.deadlineMs !== facts.deadlineMs) {
      const at = Date.now();
      entry.past = entry.past.filter((p) => at - p.at <= WALK_RETAIN_MS);
      entry.past.push({ deadlineMs: entry.facts.deadlineMs, until: ++this.version, at });
    }
    Object.assign(entry, fields, { json: undefined });
  }

  private encode(cursor: Cursor): string {
    return Buffer.from(JSON.stringify(cursor)).toString("base64url");
  }

  private decode(text: string, filterHash: string): Cursor {
    let cursor: Cursor;
    try {
      cursor = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as Cursor;
    } catch {
      cursorError("not a cursor this server gave: pass a page's nextCursor as it came");
    }
    const valid =
      cursor !== null &&
      typeof cursor === "object" &&
      typeof cursor.e === "string" &&
      Number.isSafeInteger(cursor.w) &&
      Number.isSafeInteger(cursor.t) &&
      (cursor.d === null || Number.isFinite(cursor.d)) &&
      typeof cursor.i === "string" &&
      /^\d{1,78}$/.test(cursor.i) &&
      typeof cursor.f === "string";
    if (!valid) cursorError("not a cursor this server gave: pass a page's nextCursor as it came");
    if (cursor.f !== filterHash)
      cursorError("this cursor belongs to a query with other filters: send the same filters with it, or start again");
    return cursor;
  }
}
