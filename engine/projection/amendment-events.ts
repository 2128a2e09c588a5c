/**
 * A case's amendments in its read model, folded from their events exactly as the contract's state changed:
 * the rules' part in the `CaseModel` (who must consent, who has, the terms version, the moved deadlines, the
 * stages a change of terms re-opened), and what the API shows besides (the proposal's amounts and addresses,
 * who proposed it, when and in which transaction it was proposed and applied, the hash of the terms it
 * replaced).
 *
 * The machine works the same changes out from the calls (workflows/case-amendments.ts); the runtime checks
 * after every block that both came out alike.
 */
import { AMENDMENT_KIND_CODES, MAX_TIME, type AmendmentModel, type CaseModel } from "../../workflows/case-rules";
import type { ChainEvent, JsonValue } from "./event-log";

export type AmendmentKindName = keyof typeof AMENDMENT_KIND_CODES;
const KIND_NAMES = Object.keys(AMENDMENT_KIND_CODES) as AmendmentKindName[];

/** What a proposal changes, with what it replaces where the view knew it then. Amounts are decimal strings. */
export type AmendmentChange =
  | { kind: "deadline"; stage: number; longStop: boolean; at: number }
  | {
      kind: "terms";
      price: string;
      deposit: string;
      loan: string;
      before: { price: string; deposit: string; loan: string };
    }
  | { kind: "party"; role: number; account: string; previous: string };

/** An amendment as the API shows it, besides its rules' part (`CaseModel.amendments`, at the same index). */
export interface AmendmentRecord {
  number: number;
  proposer: number;
  proposedAt: number;
  proposedTx: string;
  change: AmendmentChange;
  appliedAt: number | null;
  appliedTx: string | null;
  /** The hash of the terms version it replaced (`AmendmentApplied`); null until it applies. */
  replacedTermsHash: string | null;
  /** Each role's withdrawal count where it is not 0: the epoch a new consent is signed under. */
  consentEpochs: Record<string, number>;
}

/** The part of a case's view that amendments change. */
export interface AmendableView {
  model: CaseModel;
  parties: Record<"bank" | "lawyer" | "buyer" | "seller", string>;
  terms: { price: string; deposit: string; loan: string };
  paidByBank: string;
  paidByBuyer: string;
  stageTx: Array<string | null>;
  epochs: Record<string, number>;
  amendments?: AmendmentRecord[];
}

const ROLE_KEYS = ["bank", "lawyer", "buyer", "seller"] as const;

function str(args: Record<string, JsonValue>, key: string): string {
  const value = args[key];
  if (typeof value !== "string") throw new TypeError(`event argument ${key} is not a string: ${JSON.stringify(value)}`);
  return value;
}

const num = (args: Record<string, JsonValue>, key: string) => Number(str(args, key));

/** Applies an amendment event to the view (mutating it); false for an event that is not one of them. */
export function applyAmendmentEvent(view: AmendableView, event: ChainEvent): boolean {
  const { model } = view;
  const a = event.args;
  switch (event.name) {
    case "AmendmentProposed": {
      const p = a.proposal as Record<string, JsonValue>;
      const kind = KIND_NAMES[num(p, "kind")];
      const change = changeOf(view, kind, p);
      const rules: AmendmentModel = {
        kind,
        version: num(a, "version"),
        expiresAt: num(p, "expiresAt"),
        required: num(a, "required"),
        // The proposer's own consent follows as its own `AmendmentConsented`.
        consents: 0,
        applied: false,
        ...(change.kind === "deadline"
          ? { deadline: { stage: change.stage, longStop: change.longStop, at: change.at } }
          : {}),
      };
      model.amendments = [...(model.amendments ?? []), rules];
      const record: AmendmentRecord = {
        number: num(a, "amendment"),
        proposer: num(a, "proposer"),
        proposedAt: event.blockTime,
        proposedTx: event.txHash,
        change,
        appliedAt: null,
        appliedTx: null,
        replacedTermsHash: null,
        consentEpochs: {},
      };
      view.amendments = [...(view.amendments ?? []), record];
      return true;
    }
    case "AmendmentConsented":
      rulesOf(view, a).consents |= 1 << num(a, "role");
      return true;
    case "AmendmentConsentWithdrawn":
      rulesOf(view, a).consents &= ~(1 << num(a, "role"));
      recordOf(view, a).consentEpochs[String(num(a, "role"))] = num(a, "newEpoch");
      return true;
    case "AmendmentApplied": {
      const rules = rulesOf(view, a);
      const record = recordOf(view, a);
      rules.applied = true;
      model.termsVersion = num(a, "version");
      record.appliedAt = event.blockTime;
      record.appliedTx = event.txHash;
      record.replacedTermsHash = str(a, "replacedTermsHash");
      const change = record.change;
      if (change.kind === "deadline") {
        const moved = (model.movedDeadlines ??= model.rules.map(() => ({ own: null, longStop: null })));
        moved[change.stage] = {
          ...moved[change.stage],
          [change.longStop ? "longStop" : "own"]: Math.min(change.at, MAX_TIME),
        };
      } else if (change.kind === "terms") {
        view.terms = { price: change.price, deposit: change.deposit, loan: change.loan };
        // What a payer paid beyond its new share is credited back to it (its `Credited` follows): it holds no more.
        view.paidByBank = minOf(view.paidByBank, change.loan);
        view.paidByBuyer = minOf(view.paidByBuyer, change.deposit);
      }
      return true;
    }
    case "PartyReplaced":
      view.parties[ROLE_KEYS[num(a, "role")]] = str(a, "account");
      return true;
    case "StageReopened": {
      // Its sign-offs are cleared and every role it requires has its epoch raised (`_reopenStages`).
      const stage = num(a, "stage");
      model.completedAt[stage] = null;
      model.signedOff[stage] = 0;
      view.stageTx[stage] = null;
      for (let role = 0; role < ROLE_KEYS.length; role++) {
        if (((model.rules[stage].roles >> role) & 1) === 0) continue;
        const key = `${stage}:${role}`;
        view.epochs[key] = (view.epochs[key] ?? 0) + 1;
      }
      return true;
    }
    case "EscrowNoLongerFunded":
      model.funded = false;
      return true;
    case "AmendmentConsentSkipped":
      return true;
    default:
      return false;
  }
}

function minOf(a: string, b: string): string {
  return BigInt(a) < BigInt(b) ? a : b;
}

function changeOf(view: AmendableView, kind: AmendmentKindName, p: Record<string, JsonValue>): AmendmentChange {
  if (kind === "deadline")
    return { kind, stage: num(p, "stage"), longStop: p.longStop === true, at: num(p, "deadline") };
  if (kind === "terms")
    return {
      kind,
      price: str(p, "price"),
      deposit: str(p, "deposit"),
      loan: str(p, "loan"),
      before: { ...view.terms },
    };
  const role = num(p, "party");
  return { kind, role, account: str(p, "account"), previous: view.parties[ROLE_KEYS[role]] };
}

function rulesOf(view: AmendableView, a: Record<string, JsonValue>): AmendmentModel {
  const found = view.model.amendments?.[num(a, "amendment") - 1];
  if (!found) throw new TypeError(`an event names amendment ${str(a, "amendment")}, which the view never saw proposed`);
  return found;
}

function recordOf(view: AmendableView, a: Record<string, JsonValue>): AmendmentRecord {
  const found = view.amendments?.[num(a, "amendment") - 1];
  if (!found) throw new TypeError(`an event names amendment ${str(a, "amendment")}, which the view never saw proposed`);
  return found;
}

/** A deep copy of the amendment parts of a model and a view (see `cloneView`). */
export function cloneAmendments(model: CaseModel, records: readonly AmendmentRecord[] | undefined) {
  return {
    model: {
      ...(model.amendments
        ? {
            amendments: model.amendments.map((x) => ({ ...x, ...(x.deadline ? { deadline: { ...x.deadline } } : {}) })),
          }
        : {}),
      ...(model.movedDeadlines ? { movedDeadlines: model.movedDeadlines.map((m) => ({ ...m })) } : {}),
    },
    records: records?.map((r) => ({
      ...r,
      change: r.change.kind === "terms" ? { ...r.change, before: { ...r.change.before } } : { ...r.change },
      consentEpochs: { ...r.consentEpochs },
    })),
  };
}
