/**
 * A case's read model, folded from its on-chain events: a `CaseModel` (workflows/case-rules.ts) fed exactly as
 * the contract's state evolves, plus what the API shows besides the rules (terms, parties, money, the
 * transaction of each completion). `progressOf` turns it into the API's progress at a given chain time; the
 * statuses are the rules' `stageStatus`, the same function the contract's `stageOf` computes.
 *
 * A view is plain JSON (amounts as decimal strings), so it is stored as is and survives a restart.
 */
import { ROLE_NAMES, type RoleName } from "../../workflows/schema";
import {
  type CaseModel,
  availableAt,
  deadlineOf,
  indexesOf,
  isCompleted,
  newCaseModel,
  prerequisitesComplete,
  stageStatus,
  type StageStatus,
} from "../../workflows/case-rules";
import type { LegalGuard } from "../../workflows/legal-guard";
import { type AmendmentRecord, applyAmendmentEvent, cloneAmendments } from "./amendment-events";
import { amendmentsProgressOf } from "./amendment-progress";
import type { ChainEvent, JsonValue } from "./event-log";
import type { CaseProgress, StageProgress, StageProgressStatus } from "./progress-schema";
import type { TemplateInfo } from "./templates";

export interface CaseView {
  id: string;
  template: Omit<TemplateInfo, "rules">;
  model: CaseModel;
  parties: Record<RoleName, string>;
  terms: { price: string; deposit: string; loan: string };
  asset: string;
  paidByBank: string;
  paidByBuyer: string;
  /** What each payee may still withdraw: Credited minus Withdrawn; payees with nothing left are dropped. */
  credits: Record<string, string>;
  /** The transaction that completed each stage, or null. */
  stageTx: Array<string | null>;
  /**
   * Each signer's revocation count where it is not 0, by "stage:role" (the `newEpoch` of its last
   * `SignOffRevoked`): the epoch a new sign-off is signed under.
   */
  epochs: Record<string, number>;
  /**
   * How many times a cancel vote stopped standing (withdrawn, or cleared by a binding stage): after each, a
   * party may vote again, so the engine's default idempotency keys for votes carry it. Absent: none yet.
   */
  cancelVoteRound?: number;
  /** The case's amendments, amendment n at index n - 1 (their rules' part is in `model.amendments`). Absent: none. */
  amendments?: AmendmentRecord[];
  /** The last event applied. */
  updatedAt: { block: number; blockHash: string; time: number };
}

/** The progress's shape is declared once, in zod, where the server's OpenAPI document takes it from. */
export type { CaseProgress, StageProgress, StageProgressStatus };

/** Resolves a template id to its info; the projection fills it before folding (synchronously, in a transaction). */
export type TemplateLookup = (templateId: string) => TemplateInfo;

function str(args: Record<string, JsonValue>, key: string): string {
  const value = args[key];
  if (typeof value !== "string") throw new TypeError(`event argument ${key} is not a string: ${JSON.stringify(value)}`);
  return value;
}

function num(args: Record<string, JsonValue>, key: string): number {
  return Number(str(args, key));
}

function add(a: string, b: string): string {
  return (BigInt(a) + BigInt(b)).toString();
}

/** A fresh view of a case from its CaseOpened event. */
export function openedView(event: ChainEvent, lookup: TemplateLookup): CaseView {
  const terms = event.args.terms as Record<string, JsonValue>;
  const info = lookup(str(terms, "templateId"));
  const deposit = str(terms, "deposit");
  const loan = str(terms, "loan");
  const { rules: stageRules, ...template } = info;
  return {
    id: event.caseId as string,
    template,
    // A case with nothing to pay is funded from the start, as the contract opens it.
    model: newCaseModel(
      stageRules,
      event.blockTime,
      deposit === "0" && loan === "0",
      info.amendmentRules?.reopenedByTerms ?? 0,
    ),
    parties: {
      bank: str(terms, "bank"),
      lawyer: str(terms, "lawyer"),
      buyer: str(terms, "buyer"),
      seller: str(terms, "seller"),
    },
    terms: { price: str(terms, "price"), deposit, loan },
    asset: str(terms, "asset"),
    paidByBank: "0",
    paidByBuyer: "0",
    credits: {},
    stageTx: stageRules.map(() => null),
    epochs: {},
    updatedAt: { block: event.blockNumber, blockHash: event.blockHash, time: event.blockTime },
  };
}

/**
 * Applies one event to a view (mutating it) as the contract's state changed in that event. Returns the view;
 * a CaseOpened starts a new one. Events that change nothing of the read model (SignOffSkipped) only move
 * `updatedAt`.
 */
export function applyEvent(view: CaseView | null, event: ChainEvent, lookup: TemplateLookup): CaseView | null {
  if (event.name === "CaseOpened") return openedView(event, lookup);
  if (view === null) return null;
  const { model } = view;
  const a = event.args;
  switch (event.name) {
    case "SignedOff":
      model.signedOff[num(a, "stage")] |= 1 << num(a, "role");
      break;
    case "SignOffRevoked":
      model.signedOff[num(a, "stage")] &= ~(1 << num(a, "role"));
      view.epochs[`${num(a, "stage")}:${num(a, "role")}`] = num(a, "newEpoch");
      break;
    case "StageCompleted": {
      const stage = num(a, "stage");
      model.completedAt[stage] = event.blockTime;
      view.stageTx[stage] = event.txHash;
      if (model.rules[stage].action === 2) model.released = true;
      break;
    }
    case "CaseCompleted":
      model.status = "completed";
      break;
    case "EscrowFunded":
      model.funded = true;
      break;
    case "StageOverdue":
      model.overdue[num(a, "stage")] = true;
      break;
    case "CaseExpired":
      model.status = "expired";
      break;
    case "CaseCancelled":
      model.status = "cancelled";
      break;
    case "CancellationVoted":
      model.cancelVotes |= 1 << num(a, "role");
      break;
    case "CancellationVoteWithdrawn":
      model.cancelVotes &= ~(1 << num(a, "role"));
      view.cancelVoteRound = (view.cancelVoteRound ?? 0) + 1;
      break;
    case "CancellationVotesCleared":
      model.cancelVotes = 0;
      view.cancelVoteRound = (view.cancelVoteRound ?? 0) + 1;
      break;
    case "Deposited":
      if (num(a, "payer") === 0) view.paidByBank = add(view.paidByBank, str(a, "amount"));
      else view.paidByBuyer = add(view.paidByBuyer, str(a, "amount"));
      break;
    case "Credited": {
      const payee = str(a, "payee");
      view.credits[payee] = add(view.credits[payee] ?? "0", str(a, "amount"));
      break;
    }
    case "Withdrawn": {
      const payee = str(a, "payee");
      const left = BigInt(view.credits[payee] ?? "0") - BigInt(str(a, "amount"));
      if (left > 0n) view.credits[payee] = left.toString();
      else delete view.credits[payee];
      break;
    }
    default:
      applyAmendmentEvent(view, event);
      break;
  }
  view.updatedAt = { block: event.blockNumber, blockHash: event.blockHash, time: event.blockTime };
  return view;
}

/** A case's view from all its events, in chain order; null if it has none (or no CaseOpened). */
export function foldCase(events: readonly ChainEvent[], lookup: TemplateLookup): CaseView | null {
  let view: CaseView | null = null;
  for (const event of events) view = applyEvent(view, event, lookup);
  return view;
}

/**
 * A deep copy, field by field: much cheaper than `structuredClone`, and views are copied for every event,
 * notice and request. A field added to `CaseView` that holds an object or array is copied here too.
 */
export function cloneView(view: CaseView): CaseView {
  const m = view.model;
  const t = view.template;
  const amendments = cloneAmendments(m, view.amendments);
  return {
    ...view,
    template: {
      ...t,
      workflow: t.workflow && { ...t.workflow },
      stages: t.stages.map((s) => ({ ...s })),
      ...(t.amendmentRules ? { amendmentRules: { ...t.amendmentRules } } : {}),
    },
    model: {
      ...m,
      rules: m.rules.map((r) => ({ ...r })),
      signedOff: [...m.signedOff],
      completedAt: [...m.completedAt],
      overdue: [...m.overdue],
      ...amendments.model,
    },
    parties: { ...view.parties },
    terms: { ...view.terms },
    credits: { ...view.credits },
    stageTx: [...view.stageTx],
    epochs: { ...view.epochs },
    ...(amendments.records ? { amendments: amendments.records } : {}),
    updatedAt: { ...view.updatedAt },
  };
}

function iso(seconds: number | null): string | null {
  return seconds === null ? null : new Date(seconds * 1000).toISOString();
}

function roleNames(mask: number): RoleName[] {
  return indexesOf(mask)
    .filter((r) => r < ROLE_NAMES.length)
    .map((r) => ROLE_NAMES[r]);
}

/**
 * The API's progress of a case at chain time `nowSeconds`. With the legal guard of the case's workflow, the
 * stages' moments are the law's (the contract's floor and ceiling beside them); without one (a template no
 * workflow here compiles to), the contract's are all there are.
 */
export function progressOf(view: CaseView, nowSeconds: number, guard?: LegalGuard): CaseProgress {
  const { model } = view;
  const now = new Date(nowSeconds * 1000);
  const stages = model.rules.map((rule, s): StageProgress => {
    const legalMoment = guard?.legalMomentOf(model, s);
    // The law holds the stage back until its moment, whatever the contract's floor says.
    const heldByLaw = legalMoment !== undefined && legalMoment !== null && now.getTime() < legalMoment.getTime();
    const contractStatus = stageStatus(model, s, nowSeconds);
    const raw: StageStatus =
      heldByLaw && (contractStatus === "open" || contractStatus === "waiting-for-funds")
        ? "waiting-for-time"
        : contractStatus;
    const waiting = raw === "waiting-for-time" || raw === "waiting-for-funds";
    // As `stageOf` reports it: only for a stage with a waiting time whose prerequisites are complete.
    const contractFloor = rule.waitSeconds !== 0 && prerequisitesComplete(model, s) ? iso(availableAt(model, s)) : null;
    const contractCeiling = iso(deadlineOf(model, s));
    const legalDeadline = guard?.legalDeadlineOf(model, s);
    const legallyBlocked = guard ? !guard.mayComplete(model, s, now).allowed : false;
    const unsigned = rule.roles & ~model.signedOff[s];
    return {
      id: view.template.stages[s].id,
      title: view.template.stages[s].title,
      status: waiting ? "waiting" : raw,
      waitingFor: raw === "waiting-for-time" ? "time" : raw === "waiting-for-funds" ? "funds" : null,
      requires: roleNames(rule.roles),
      signedOff: roleNames(model.signedOff[s] & rule.roles),
      availableAt: legalMoment === undefined ? contractFloor : legalMoment === null ? null : legalMoment.toISOString(),
      deadline:
        legalDeadline === undefined ? contractCeiling : legalDeadline === null ? null : legalDeadline.toISOString(),
      contractFloor,
      contractCeiling,
      acceptsSignOffs: model.status === "open" && !isCompleted(model, s) && unsigned !== 0 && !legallyBlocked,
      waitsFor: model.status === "open" && !isCompleted(model, s) ? (guard?.waitsFor(model, s, now) ?? null) : null,
      completedAt: iso(model.completedAt[s]),
      tx: view.stageTx[s],
    };
  });
  return {
    id: view.id,
    workflow: {
      id: view.template.workflow?.id ?? null,
      version: view.template.workflow?.version ?? null,
      title: view.template.workflow?.title ?? null,
      templateId: view.template.templateId,
    },
    timeZone: guard?.timeZone ?? "UTC",
    status: model.status,
    openedAt: iso(model.openedAt) as string,
    parties: { ...view.parties },
    terms: { ...view.terms },
    asset: view.asset,
    escrow: {
      paidByBank: view.paidByBank,
      paidByBuyer: view.paidByBuyer,
      funded: model.funded,
      released: model.released,
      credits: { ...view.credits },
    },
    cancelVotes: roleNames(model.cancelVotes),
    progress: { completed: model.completedAt.filter((t) => t !== null).length, total: model.rules.length },
    stages,
    termsVersion: model.termsVersion ?? 0,
    amendments: amendmentsProgressOf(
      model,
      view.amendments,
      view.template.stages.map((s) => s.id),
      nowSeconds,
    ),
    updatedAt: { block: view.updatedAt.block, time: iso(view.updatedAt.time) as string },
  };
}
