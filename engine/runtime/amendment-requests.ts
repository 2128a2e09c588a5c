/**
 * What the parties ask of amendments: propose one, consent to one (from the managed key, or relayed with the
 * party's own EIP-712 signature), withdraw a consent, and the typed data a wallet signs to consent.
 *
 * Each request is checked against the projected case with the contract's own rules (workflows/
 * case-amendments.ts), so a caller hears why (404, 403, 409) instead of a revert, and is then recorded in the
 * relayer's outbox like every other action. A proposal and a withdrawal are calls from the party's managed key
 * (the contract takes no signed proposal or withdrawal); a consent with a signature is sent by the relayer's
 * key in `consentToAmendmentsWithSignatures`, where an item that cannot count is skipped, not reverted, and the
 * submission fails with the contract's reason (outcomes.ts).
 *
 * Default idempotency keys name the action: the same proposal of the same terms version asked twice, or the
 * same consent, is one submission (retry-key.ts lets a failed one be asked again).
 */
import { createHash } from "node:crypto";
import { ZeroAddress, getAddress, isAddress, verifyTypedData } from "ethers";
import {
  amendmentOf,
  consentRefusalOf,
  mayWithdrawConsent,
  proposalRefusalOf,
  type AmendmentContent,
  type ConsentSkipReason,
} from "../../workflows/case-amendments";
import { AMENDMENT_KIND_CODES, MAX_TIME } from "../../workflows/case-rules";
import { ROLE_NAMES, type RoleName } from "../../workflows/schema";
import { canonicalJson } from "../../workflows/canonical-json";
import { CONSENT_TYPES } from "../chain/typed-data";
import type { ChainClock } from "../chain/clock";
import { EngineError } from "../errors";
import type { CaseView } from "../projection/case-view";
import type { Relayer } from "../relayer/relayer";
import type { Submission } from "../relayer/types";
import type { Approvals, TypedData } from "./approvals";
import type { LegalGuards } from "./legal";
import { contractSignatureForm } from "./signature-form";

/** How long a proposal collects consents when the request names no expiry: 7 days. */
export const DEFAULT_PROPOSAL_LIFETIME_SECONDS = 7 * 24 * 3600;

/** What a proposal changes, as a caller says it. */
export type ProposedChange =
  | {
      kind: "deadline";
      /** The stage's id ("completion") or index. */
      stage: string | number;
      /** The case's long-stop on the stage, not its own deadline. */
      longStop?: boolean;
      /** An instant (ISO 8601 with a zone), or a local date (YYYY-MM-DD): the end of that day in the case's zone. */
      to: string;
    }
  | { kind: "terms"; price: string; deposit: string; loan: string }
  | { kind: "party"; role: RoleName; account: string };

export interface ProposalRequest {
  caseId: string;
  /** The role the principal proposes as (its consent counts at once where it is required). */
  role: RoleName;
  principalAddress: string;
  change: ProposedChange;
  /** The last instant at which a consent counts (ISO 8601); default: 7 days from now. */
  expiresAt?: string;
  idempotencyKey?: string;
}

export interface ConsentRequest {
  caseId: string;
  amendment: number;
  role: RoleName;
  principalAddress: string;
  /** The party's own EIP-712 signature of the consent (see `consentTypedData`); else its managed key consents. */
  signature?: string;
  idempotencyKey?: string;
}

export interface AmendmentRequestsOptions {
  relayer: Relayer;
  clock: ChainClock;
  guards: LegalGuards;
  /** The party checks, managed keys and EIP-712 domain that the sign-offs use. */
  approvals: Approvals;
}

export class AmendmentRequests {
  constructor(private readonly options: AmendmentRequestsOptions) {}

  /** Proposes an amendment as `role`, from the party's managed key. */
  propose(request: ProposalRequest): Submission {
    const { approvals, relayer, clock } = this.options;
    const view = approvals.caseOf(request.caseId);
    const role = roleIndex(request.role);
    const party = approvals.partyOf(view, role, request.principalAddress);
    const now = clock.nowSeconds();
    const expiresAt =
      request.expiresAt === undefined
        ? now + DEFAULT_PROPOSAL_LIFETIME_SECONDS
        : instantSeconds(request.expiresAt, "expiresAt");
    if (expiresAt <= now)
      throw invalid(`the expiry ${request.expiresAt} is not in the future (the chain's now is ${iso(now)})`);
    if (expiresAt > MAX_TIME)
      throw invalid(`the expiry ${request.expiresAt} is past what the contract holds (early 2106)`);
    const { content, proposal } = this.proposalOf(view, request.change);
    const refusal = proposalRefusalOf(view.model, { proposer: role, expiresAt, content }, now);
    if (refusal) throw proposalRefused(view, refusal, request.change);
    const args = [view.id, role, { ...proposal, expiresAt }];
    const digest = createHash("sha256").update(canonicalJson(args)).digest("hex").slice(0, 16);
    return relayer.submit(
      { kind: "call", from: approvals.managedKey(party).address, method: "proposeAmendment", args },
      request.idempotencyKey ??
        approvals.defaultKey(`propose:${view.id}:v${view.model.termsVersion ?? 0}:${role}:${digest}`),
    );
  }

  /** Consents to amendment `amendment` as `role`: from the managed key, or relayed with the party's signature. */
  async consent(request: ConsentRequest): Promise<Submission> {
    const { approvals, relayer } = this.options;
    const { view, role, party } = this.resolve(request);
    const refusal = consentRefusalOf(view.model, request.amendment, role, this.options.clock.nowSeconds());
    if (refusal) throw consentRefused(view, request, refusal);
    const epoch = this.epochOf(view, request.amendment, role);
    const key =
      request.idempotencyKey ?? approvals.defaultKey(`consent:${view.id}:${request.amendment}:${role}:${epoch}`);
    if (request.signature === undefined) {
      return relayer.submit(
        {
          kind: "call",
          from: approvals.managedKey(party).address,
          method: "consentToAmendment",
          args: [view.id, request.amendment, role],
        },
        key,
      );
    }
    const typed = await this.typedDataOf(view, request.amendment, role);
    const signature = contractSignatureForm(request.signature);
    let signer: string;
    try {
      signer = verifyTypedData(typed.domain, typed.types, typed.message, signature);
    } catch (error) {
      throw forbidden(`the signature does not decode: ${(error as Error).message}`, { reason: "BAD_SIGNATURE" });
    }
    if (signer.toLowerCase() !== party.toLowerCase()) {
      if (this.signedBeforeAWithdrawal(typed, signature, party)) {
        throw conflict(
          view,
          `the ${request.role} signed this consent before withdrawing one (epoch ${typed.message.epoch} now): the signature is void, sign the typed data again`,
          { amendment: request.amendment, reason: "StaleEpoch" },
        );
      }
      throw forbidden(`the signature is ${signer}'s, not the ${request.role}'s (${party})`, {
        reason: "BAD_SIGNATURE",
        signer,
        party,
      });
    }
    return relayer.submit(
      {
        kind: "call",
        from: relayer.relayerAddress,
        method: "consentToAmendmentsWithSignatures",
        args: [[{ caseId: view.id, amendment: request.amendment, role, epoch, signature }]],
      },
      key,
    );
  }

  /** Withdraws `role`'s consent until the amendment applies, from the party's managed key. */
  withdrawConsent(request: Omit<ConsentRequest, "signature">): Submission {
    const { approvals, relayer } = this.options;
    const { view, role, party } = this.resolve(request);
    if (!mayWithdrawConsent(view.model, request.amendment, role)) {
      const rules = amendmentOf(view.model, request.amendment)!;
      throw conflict(
        view,
        rules.applied
          ? `amendment ${request.amendment} of case ${view.id} has applied: its consents stand`
          : `the ${request.role} has no consent to amendment ${request.amendment} of case ${view.id} standing`,
        { amendment: request.amendment, reason: rules.applied ? "ALREADY_APPLIED" : "NOT_CONSENTED" },
      );
    }
    const epoch = this.epochOf(view, request.amendment, role);
    return relayer.submit(
      {
        kind: "call",
        from: approvals.managedKey(party).address,
        method: "withdrawAmendmentConsent",
        args: [view.id, request.amendment, role],
      },
      request.idempotencyKey ??
        approvals.defaultKey(`withdraw-consent:${view.id}:${request.amendment}:${role}:${epoch}`),
    );
  }

  /** The EIP-712 typed data the party's own wallet signs to consent to the amendment. */
  async consentTypedData(request: Omit<ConsentRequest, "signature" | "idempotencyKey">): Promise<TypedData> {
    const { view, role } = this.resolve(request);
    return this.typedDataOf(view, request.amendment, role);
  }

  // ------------------------------------------------------------------------------ checks

  private resolve(request: { caseId: string; amendment: number; role: RoleName; principalAddress: string }) {
    const view = this.options.approvals.caseOf(request.caseId);
    const role = roleIndex(request.role);
    const party = this.options.approvals.partyOf(view, role, request.principalAddress);
    if (!amendmentOf(view.model, request.amendment)) {
      throw new EngineError("NOT_FOUND", `case ${view.id} has no amendment ${request.amendment}`, {
        details: { caseId: view.id, amendment: request.amendment },
      });
    }
    return { view, role, party };
  }

  /** Whether `signature` is the party's for an earlier epoch of the same consent (one withdrawn since). */
  private signedBeforeAWithdrawal(typed: TypedData, signature: string, party: string): boolean {
    for (let epoch = 0; epoch < Number(typed.message.epoch); epoch++) {
      try {
        const signer = verifyTypedData(typed.domain, typed.types, { ...typed.message, epoch }, signature);
        if (signer.toLowerCase() === party.toLowerCase()) return true;
      } catch {
        return false;
      }
    }
    return false;
  }

  /** The role's withdrawal count for the amendment: the epoch its signature must name. */
  private epochOf(view: CaseView, amendment: number, role: number): number {
    return view.amendments?.[amendment - 1]?.consentEpochs[String(role)] ?? 0;
  }

  private async typedDataOf(view: CaseView, amendment: number, role: number): Promise<TypedData> {
    const rules = amendmentOf(view.model, amendment)!;
    return {
      domain: await this.options.approvals.domain(),
      types: CONSENT_TYPES,
      primaryType: "Consent",
      message: {
        caseId: view.id,
        amendment,
        kind: AMENDMENT_KIND_CODES[rules.kind],
        version: rules.version,
        role,
        epoch: this.epochOf(view, amendment, role),
      },
    };
  }

  /** The change in the contract's terms: the model's content and the `AmendmentProposal` to send. */
  private proposalOf(view: CaseView, change: ProposedChange) {
    const blank = {
      stage: 0,
      longStop: false,
      deadline: 0,
      price: "0",
      deposit: "0",
      loan: "0",
      party: 0,
      account: ZeroAddress,
    };
    if (change.kind === "deadline") {
      const stage =
        typeof change.stage === "number" ? change.stage : view.template.stages.findIndex((s) => s.id === change.stage);
      if (!Number.isInteger(stage) || stage < 0 || stage >= view.model.rules.length) {
        throw new EngineError("NOT_FOUND", `case ${view.id} has no stage ${JSON.stringify(change.stage)}`, {
          details: { caseId: view.id, stage: change.stage },
        });
      }
      const at = this.deadlineSeconds(view, change.to);
      const longStop = change.longStop === true;
      const content: AmendmentContent = { kind: "deadline", stage, longStop, at };
      return { content, proposal: { ...blank, kind: 0, stage, longStop, deadline: at } };
    }
    if (change.kind === "terms") {
      const [price, deposit, loan] = (["price", "deposit", "loan"] as const).map((field) => {
        const text = String(change[field]);
        if (!/^\d+$/.test(text) || BigInt(text) >= 1n << 96n)
          throw invalid(
            `the ${field} must be an integer in the asset's smallest unit below 2^96, not ${JSON.stringify(text)}`,
          );
        return BigInt(text);
      });
      const content: AmendmentContent = { kind: "terms", price, deposit, loan };
      return {
        content,
        proposal: { ...blank, kind: 1, price: price.toString(), deposit: deposit.toString(), loan: loan.toString() },
      };
    }
    const party = roleIndex(change.role);
    if (!isAddress(change.account) || getAddress(change.account) === ZeroAddress)
      throw invalid(`the new ${change.role} must be a non-zero address, not ${JSON.stringify(change.account)}`);
    const account = getAddress(change.account);
    if (account.toLowerCase() === view.parties[change.role].toLowerCase())
      throw conflict(view, `${account} is already the ${change.role} of case ${view.id}`, {
        reason: "ALREADY_THE_PARTY",
      });
    const content: AmendmentContent = { kind: "party", party };
    return { content, proposal: { ...blank, kind: 2, party, account } };
  }

  /** A deadline given as an instant, or as a local date: the end of that day in the case's jurisdiction. */
  private deadlineSeconds(view: CaseView, to: string): number {
    let seconds: number;
    if (/^\d{4}-\d{2}-\d{2}$/.test(to)) {
      const day = new Date(`${to}T00:00:00Z`);
      if (Number.isNaN(day.getTime()) || !day.toISOString().startsWith(to))
        throw invalid(`${JSON.stringify(to)} is not a date`);
      // The end of that day in the case's jurisdiction; a template no workflow here compiles to keeps UTC's days.
      const guard = this.options.guards.of(view.template.templateId);
      seconds = guard ? guard.endOfLocalDate(to).getTime() / 1000 : day.getTime() / 1000 + 86_400;
    } else {
      seconds = instantSeconds(to, "to");
    }
    if (seconds <= 0 || seconds > MAX_TIME) throw invalid(`the deadline ${to} is outside what the contract holds`);
    return seconds;
  }
}

function instantSeconds(text: string, field: string): number {
  const ms = Date.parse(text);
  if (!/[Zz]|[+-]\d{2}:\d{2}$/.test(text) || Number.isNaN(ms))
    throw invalid(
      `${field} must be an ISO 8601 instant with its zone (e.g. 2027-03-14T17:00:00Z), not ${JSON.stringify(text)}`,
    );
  // The contract keeps whole seconds; a fraction would be lost, so it is refused rather than rounded.
  if (ms % 1000 !== 0) throw invalid(`${field} must be a whole second, not ${text}`);
  return ms / 1000;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

function roleIndex(role: RoleName): number {
  const index = ROLE_NAMES.indexOf(role);
  if (index < 0) throw invalid(`unknown role ${JSON.stringify(role)} (the roles are ${ROLE_NAMES.join(", ")})`);
  return index;
}

/** The contract's reason for refusing a proposal, said for the caller. */
function proposalRefused(view: CaseView, refusal: string, change: ProposedChange): EngineError {
  const words: Record<string, string> = {
    MortgageEscrowUnexpectedCaseStatus: `case ${view.id} is ${view.model.status}`,
    MortgageEscrowTooManyAmendments: `case ${view.id} has had as many amendments as it can hold (65,535)`,
    MortgageEscrowUnknownStage: `case ${view.id} has no such stage`,
    MortgageEscrowStageAlreadyCompleted: `the stage "${change.kind === "deadline" ? change.stage : ""}" has completed: its deadline no longer runs`,
    "zero deadline": "the deadline cannot be zero",
    "no movable deadline": `the stage "${change.kind === "deadline" ? change.stage : ""}" has no ${change.kind === "deadline" && change.longStop ? "long-stop" : "deadline of its own"} that an amendment can move`,
    MortgageEscrowAlreadyReleased: `case ${view.id} has released its escrow: its price and shares can no longer change`,
    MortgageEscrowPriceExceedsShares: "the price must be at most the deposit plus the loan",
  };
  const invalidInput =
    refusal === "zero deadline" || refusal === "MortgageEscrowPriceExceedsShares" || refusal === "no movable deadline";
  const message = words[refusal] ?? refusal;
  return invalidInput
    ? new EngineError("INVALID_REQUEST", message, { details: { caseId: view.id, reason: refusal } })
    : conflict(view, message, { reason: refusal });
}

/** Why a consent would not count, said for the caller: 403 for a role not asked, else 409. */
function consentRefused(view: CaseView, request: ConsentRequest, reason: ConsentSkipReason): EngineError {
  const n = request.amendment;
  const words: Record<ConsentSkipReason, string> = {
    CaseNotOpen: `case ${view.id} is ${view.model.status}`,
    UnknownAmendment: `case ${view.id} has no amendment ${n}`,
    AlreadyApplied: `amendment ${n} has applied already`,
    Superseded: `amendment ${n} amends terms version ${amendmentOf(view.model, n)?.version}, and another amendment has applied since: propose it again`,
    Expired: `amendment ${n} expired at ${iso(amendmentOf(view.model, n)?.expiresAt ?? 0)}`,
    AlreadyReleased: `case ${view.id} has released its escrow: a change of terms can no longer apply`,
    RoleNotRequired: `amendment ${n} does not need the ${request.role}'s consent`,
    AlreadyConsented: `the ${request.role} has consented to amendment ${n} already`,
    StaleEpoch: "the signature is for an earlier consent that was withdrawn: sign again",
    InvalidSignature: "the signature does not verify",
  };
  if (reason === "RoleNotRequired")
    return forbidden(words[reason], { reason: "ROLE_NOT_REQUIRED", caseId: view.id, amendment: n, role: request.role });
  return conflict(view, words[reason], { amendment: n, reason });
}

function conflict(view: CaseView, message: string, details: Record<string, unknown> = {}): EngineError {
  return new EngineError("CONFLICT", message, { details: { caseId: view.id, ...details } });
}

function forbidden(message: string, details?: Record<string, unknown>): EngineError {
  return new EngineError("FORBIDDEN", message, { details });
}

function invalid(message: string): EngineError {
  return new EngineError("INVALID_REQUEST", message);
}
