/**
 * What the parties ask the engine to do: sign off a stage (an approval), revoke a sign-off, deposit, vote to
 * cancel, withdraw. Each is checked against the projected case first, so a caller hears a clear reason
 * (NOT_FOUND, FORBIDDEN, CONFLICT, TOO_EARLY) rather than a revert, and then handed to the relayer, which
 * records it durably before anything is sent.
 *
 * A sign-off is always an EIP-712 message relayed by the relayer's own key (so sign-offs that are ready
 * together go in one `signOffWithSignatures` batch): signed by the principal's managed key, or by the
 * party's own wallet (`signature`, rewritten into the one form the contract takes and checked here to recover
 * to the party). The other calls are sent from the party's managed key.
 *
 * Without a caller's idempotency key each action is keyed by what it is (`approve:case:stage:role:epoch`,
 * ...), so the same action asked twice is one submission; once a submission under that key has failed, the
 * next one goes under `...:again-N` (retry-key.ts), so a failure never blocks the action for good.
 */
import { randomUUID } from "node:crypto";
import { REVOKE_TYPES, SIGN_OFF_TYPES, escrowDomainSeparator, signOffDigest } from "../chain/typed-data";
import {
  ZeroHash,
  getAddress,
  isHexString,
  recoverAddress,
  verifyTypedData,
  type BaseWallet,
  type TypedDataDomain,
  type TypedDataField,
} from "ethers";
import { ROLE_NAMES, type RoleName } from "../../workflows/schema";
import { isCompleted } from "../../workflows/case-rules";
import { EngineError } from "../errors";
import type { ChainClock } from "../chain/clock";
import type { CaseView } from "../projection/case-view";
import type { Projection } from "../projection/projection";
import { IdempotencyConflictError } from "../relayer/errors";
import type { Relayer } from "../relayer/relayer";
import type { CallIntent, Submission } from "../relayer/types";
import type { LegalGuards } from "./legal";
import type { Runtime } from "./runtime";
import { keyPastFailures } from "./retry-key";
import { contractSignatureForm } from "./signature-form";
import { SigningPool } from "./signing-pool";
import type { Provider } from "ethers";

export interface ApprovalRequest {
  caseId: string | bigint | number;
  /** The stage's id in the workflow ("consummation"), or its index on chain. */
  stageId: string | number;
  role: RoleName;
  /** The principal's address: it must be the case's party for `role`. */
  principalAddress: string;
  /** 32-byte hash of the document and a secret salt; zero when none is given. */
  evidence?: string;
  /** The party's own EIP-712 signature of the sign-off (see `typedDataFor`); else its managed key signs. */
  signature?: string;
  idempotencyKey?: string;
}

export type RevokeRequest = Omit<ApprovalRequest, "evidence">;

export interface PartyRequest {
  caseId: string | bigint | number;
  principalAddress: string;
  idempotencyKey?: string;
}

export interface DepositRequest extends PartyRequest {
  /** bank or buyer: the payers. */
  role: RoleName;
  /** In the asset's smallest unit, a decimal string. */
  amount: string | bigint;
}

export interface TypedData {
  domain: TypedDataDomain & { chainId: string; verifyingContract: string };
  types: Record<string, TypedDataField[]>;
  primaryType: "SignOff" | "RevokeSignOff" | "Consent";
  message: Record<string, string | number>;
}

export interface ApprovalsOptions {
  projection: Projection;
  relayer: Relayer;
  provider: Provider;
  clock: ChainClock;
  guards: LegalGuards;
  /** The runtime, whose case actors take each approval (see `approve`). */
  runtime: Pick<Runtime, "signOff">;
  escrowAddress: string;
  /** The principals' managed keys. */
  partyKeys: readonly BaseWallet[];
}

interface Resolved {
  view: CaseView;
  stage: number;
  role: number;
  party: string;
}

/** Bounds the memory of `Approvals.checksummed`: parties' addresses, a few per case. */
const MAX_REMEMBERED_ADDRESSES = 10_000;

export class Approvals {
  private readonly keys = new Map<string, BaseWallet>();
  private readonly escrowAddress: string;
  private chainId: bigint | undefined;
  private domainSeparator: Promise<string> | undefined;
  /** Addresses as given, checksummed (see `checksummed`). */
  private readonly addresses = new Map<string, string>();
  /** Managed-key signatures, on a worker thread (signing-pool.ts). */
  private readonly signing = new SigningPool();
  /** Revocations sent by this engine, by submission id: the signer's epoch once it is mined. */
  private readonly revoking = new Map<number, { signer: string; epoch: number }>();
  /** Epochs known from this engine's own revocations, settled but perhaps not projected yet, by "case:stage:role". */
  private readonly revokedTo = new Map<string, number>();

  constructor(private readonly options: ApprovalsOptions) {
    this.escrowAddress = getAddress(options.escrowAddress);
    for (const key of options.partyKeys) this.keys.set(getAddress(key.address), key);
    options.relayer.on("settled", (s) => {
      const revoked = this.revoking.get(s.id);
      if (!revoked) return;
      this.revoking.delete(s.id);
      if (s.status === "confirmed")
        this.revokedTo.set(revoked.signer, Math.max(this.revokedTo.get(revoked.signer) ?? 0, revoked.epoch));
    });
  }

  /** Starts the signing worker, if there are managed keys to sign with (the engine's start). */
  warmUp(): void {
    if (this.keys.size > 0) this.signing.warmUp();
  }

  /** Stops the signing worker (the engine's stop). */
  close(): Promise<void> {
    return this.signing.close();
  }

  /** A managed key added while the engine runs (a principal created at runtime): it signs from now on. */
  addKey(wallet: BaseWallet): void {
    this.keys.set(getAddress(wallet.address), wallet);
  }

  /**
   * Signs off `stage` as `role`: checked, asked of the legal guard, signed (or the given signature checked),
   * and recorded in the relayer's outbox. The same idempotency key returns the same submission.
   */
  async approve(request: ApprovalRequest): Promise<Submission> {
    const key = request.idempotencyKey;
    if (key) {
      const existing = this.options.relayer.outbox.getByKey(key);
      if (existing) return existing;
    }
    const r = this.resolve(request);
    const model = r.view.model;
    if (isCompleted(model, r.stage)) throw conflict(`the stage "${request.stageId}" has already completed`, r);
    if ((model.signedOff[r.stage] >> r.role) & 1)
      throw conflict(`the ${request.role} has already signed off "${request.stageId}"`, r);
    const verdict = this.options.guards
      .of(r.view.template.templateId)
      ?.mayComplete(model, r.stage, new Date(this.options.clock.nowMs()));
    if (verdict && !verdict.allowed) {
      throw new EngineError("TOO_EARLY", verdict.reason, {
        details: {
          caseId: r.view.id,
          stage: request.stageId,
          availableAt: verdict.availableAt ? verdict.availableAt.toISOString() : null,
          waitsFor: verdict.waitsFor,
        },
      });
    }
    const evidence = (request.evidence ?? ZeroHash).toLowerCase();
    if (!isHexString(evidence, 32)) throw invalid("the evidence must be a 32-byte hex string");
    const epoch = this.epochOf(r);
    const signature = await this.signOffSignature(
      r,
      { caseId: r.view.id, stage: r.stage, role: r.role, epoch, evidence },
      request.signature,
    );
    try {
      // The case's actor has the last word (its guards are the contract's rules and the law's, as the case is
      // now: signing may have taken a while). It hands the sign-off to the relayer, which records it with the
      // other approvals of this moment in one transaction (one fsync), durable before this resolves.
      const submitted = this.options.runtime.signOff(r.view.id, r.stage, r.role, () =>
        this.options.relayer.submitDurably(
          {
            kind: "relayed-sign-off",
            message: { caseId: r.view.id, stage: r.stage, role: r.role, epoch, evidence },
            signature,
          },
          key ?? this.defaultKey(`approve:${r.view.id}:${r.stage}:${r.role}:${epoch}`),
        ),
      );
      if (!submitted) throw this.movedOn(request, r);
      return await submitted;
    } catch (error) {
      // Without a key of the caller's, the default key names the sign-off: another one is already on its way.
      if (!key && error instanceof IdempotencyConflictError)
        throw conflict(`a sign-off of "${request.stageId}" by the ${request.role} is already submitted`, r);
      throw error;
    }
  }

  /** The EIP-712 typed data that the party's own wallet signs to sign off the stage (or to revoke its sign-off). */
  async typedDataFor(
    request: Omit<ApprovalRequest, "signature" | "idempotencyKey"> & { purpose?: "sign-off" | "revoke" },
  ): Promise<TypedData> {
    const r = this.resolve(request);
    const epoch = this.epochOf(r);
    if (request.purpose === "revoke") return this.revokeTypedData(r, epoch);
    return this.signOffTypedData(r, epoch, (request.evidence ?? ZeroHash).toLowerCase());
  }

  /** Revokes the party's sign-off until the stage completes: from its managed key, or relayed with its signature. */
  async revoke(request: RevokeRequest): Promise<Submission> {
    const r = this.resolve(request);
    if (isCompleted(r.view.model, r.stage)) throw conflict(`the stage "${request.stageId}" has already completed`, r);
    if (!((r.view.model.signedOff[r.stage] >> r.role) & 1))
      throw conflict(`the ${request.role} has not signed off "${request.stageId}"`, r);
    const epoch = this.epochOf(r);
    const key = request.idempotencyKey ?? this.defaultKey(`revoke:${r.view.id}:${r.stage}:${r.role}:${epoch}`);
    let submission: Submission;
    if (request.signature) {
      const typed = await this.revokeTypedData(r, epoch);
      const signature = contractSignatureForm(request.signature);
      this.checkSigner(r, signature, () => verifyTypedData(typed.domain, typed.types, typed.message, signature));
      submission = this.options.relayer.submit(
        this.call(this.options.relayer.relayerAddress, "revokeSignOffWithSignature", [
          r.view.id,
          r.stage,
          r.role,
          epoch,
          signature,
        ]),
        key,
      );
    } else {
      submission = this.options.relayer.submit(
        this.call(this.managedKey(r.party).address, "revokeSignOff", [r.view.id, r.stage, r.role]),
        key,
      );
    }
    if (submission.status !== "confirmed" && submission.status !== "failed")
      this.revoking.set(submission.id, { signer: signerKey(r), epoch: epoch + 1 });
    return submission;
  }

  /** Pays `amount` of ETH into the escrow from the payer's managed key. */
  deposit(request: DepositRequest): Submission {
    const view = this.caseOf(request.caseId);
    const role = roleIndex(request.role);
    if (request.role !== "bank" && request.role !== "buyer")
      throw forbidden(`only the bank and the buyer pay into the escrow, not the ${request.role}`);
    const party = this.partyOf(view, role, request.principalAddress);
    if (view.model.status !== "open") throw conflict(`case ${view.id} is ${view.model.status}`, { view });
    if (view.asset !== "0x0000000000000000000000000000000000000000") {
      throw new EngineError(
        "NOT_SUPPORTED",
        "deposits of an ERC-20 need the payer's own approve first: pay from the payer's wallet",
        { details: { asset: view.asset } },
      );
    }
    const amount = parseAmount(request.amount);
    const from = this.managedKey(party).address;
    return this.options.relayer.submit(
      { ...this.call(from, "deposit", [view.id, role, amount.toString()]), value: amount.toString() },
      request.idempotencyKey ?? `deposit:${view.id}:${role}:${randomUUID()}`,
    );
  }

  /** The party's vote to cancel (for every role its address holds); the last vote cancels the case. */
  cancel(request: PartyRequest): Submission {
    const view = this.caseOf(request.caseId);
    const party = this.anyPartyOf(view, request.principalAddress);
    if (view.model.status !== "open") throw conflict(`case ${view.id} is ${view.model.status}`, { view });
    if (view.model.released)
      throw conflict(`case ${view.id} has released its escrow: it can no longer be cancelled`, { view });
    const round = view.cancelVoteRound ? `:${view.cancelVoteRound}` : "";
    return this.options.relayer.submit(
      this.call(this.managedKey(party).address, "cancel", [view.id]),
      request.idempotencyKey ?? this.defaultKey(`cancel:${view.id}:${party}${round}`),
    );
  }

  /** Withdraws the party's vote to cancel, for every role its address holds that voted, while the case is open. */
  withdrawCancelVote(request: PartyRequest): Submission {
    const view = this.caseOf(request.caseId);
    const party = this.anyPartyOf(view, request.principalAddress);
    if (view.model.status !== "open") throw conflict(`case ${view.id} is ${view.model.status}`, { view });
    const roles = ROLE_NAMES.reduce(
      (mask, name, role) => (sameAddress(view.parties[name], party) ? mask | (1 << role) : mask),
      0,
    );
    if ((roles & view.model.cancelVotes) === 0)
      throw conflict(`${party} has no vote to cancel case ${view.id} standing`, { view });
    return this.options.relayer.submit(
      this.call(this.managedKey(party).address, "withdrawCancelVote", [view.id]),
      request.idempotencyKey ??
        this.defaultKey(`withdraw-cancel-vote:${view.id}:${party}:${view.cancelVoteRound ?? 0}`),
    );
  }

  /** Pays the party's whole credit in the case out to its address. */
  withdraw(request: PartyRequest): Submission {
    const view = this.caseOf(request.caseId);
    const party = this.anyPartyOf(view, request.principalAddress);
    if (BigInt(view.credits[party] ?? "0") === 0n)
      throw conflict(`nothing is credited to ${party} in case ${view.id}`, { view });
    return this.options.relayer.submit(
      this.call(this.managedKey(party).address, "withdraw", [view.id]),
      request.idempotencyKey ?? `withdraw:${view.id}:${party}:${randomUUID()}`,
    );
  }

  /** Why the case's actor refused a sign-off that the checks before signing let through: the case changed meanwhile. */
  private movedOn(request: ApprovalRequest, before: Resolved): EngineError {
    const view = this.options.projection.viewOf(before.view.id);
    if (view && view.model.status === "open") {
      if (isCompleted(view.model, before.stage))
        return conflict(`the stage "${request.stageId}" has already completed`, { view });
      if ((view.model.signedOff[before.stage] >> before.role) & 1)
        return conflict(`the ${request.role} has already signed off "${request.stageId}"`, { view });
    }
    return conflict(`case ${before.view.id} changed while the sign-off was being signed: look at it again`, {
      view: view ?? before.view,
    });
  }

  /** The engine's own key for an action asked without a caller's key: `base`, unless a failed submission holds it (retry-key.ts). */
  /** Shared with the amendment requests (amendment-requests.ts), as are the checks below. */
  defaultKey(base: string): string {
    return keyPastFailures(this.options.relayer.outbox, base);
  }

  // ------------------------------------------------------------------------------ checks

  caseOf(caseId: string | bigint | number): CaseView {
    const id = String(caseId);
    const view = /^\d+$/.test(id) ? this.options.projection.viewOf(id) : null;
    if (view) return view;
    // A case answered before whose opening the chain lost: it exists again once its re-sent opening lands.
    const opening = /^\d+$/.test(id) ? this.options.relayer.outbox.openingOf(BigInt(id).toString()) : undefined;
    if (opening) {
      throw new EngineError(
        "CONFLICT",
        `case ${id} is being opened again (the chain lost its opening; submission ${opening.id} sends it again): try again once it reads open`,
        {
          retryable: true,
          details: { caseId: id, reason: "CASE_OPENING", submissionId: opening.id },
        },
      );
    }
    throw new EngineError("NOT_FOUND", `no case ${id}`, { details: { caseId: id } });
  }

  private resolve(request: {
    caseId: string | bigint | number;
    stageId: string | number;
    role: RoleName;
    principalAddress: string;
  }): Resolved {
    const view = this.caseOf(request.caseId);
    const stage =
      typeof request.stageId === "number"
        ? request.stageId
        : view.template.stages.findIndex((s) => s.id === request.stageId);
    if (!Number.isInteger(stage) || stage < 0 || stage >= view.model.rules.length) {
      throw new EngineError("NOT_FOUND", `case ${view.id} has no stage ${JSON.stringify(request.stageId)}`, {
        details: { caseId: view.id, stage: request.stageId },
      });
    }
    const role = roleIndex(request.role);
    const party = this.partyOf(view, role, request.principalAddress);
    if (!((view.model.rules[stage].roles >> role) & 1)) {
      throw new EngineError(
        "FORBIDDEN",
        `the stage "${view.template.stages[stage].id}" does not need the ${request.role}'s sign-off`,
        {
          details: {
            reason: "ROLE_NOT_REQUIRED",
            caseId: view.id,
            stage: view.template.stages[stage].id,
            role: request.role,
          },
        },
      );
    }
    if (view.model.status !== "open") throw conflict(`case ${view.id} is ${view.model.status}`, { view });
    return { view, stage, role, party };
  }

  partyOf(view: CaseView, role: number, principal: string): string {
    const party = this.checksummed(view.parties[ROLE_NAMES[role]]);
    if (!sameAddress(party, principal)) {
      throw forbidden(`${principal} is not the ${ROLE_NAMES[role]} of case ${view.id}`, {
        reason: "NOT_THE_PARTY",
        caseId: view.id,
        role: ROLE_NAMES[role],
      });
    }
    return party;
  }

  private anyPartyOf(view: CaseView, principal: string): string {
    const party = Object.values(view.parties).find((p) => sameAddress(p, principal));
    if (!party)
      throw forbidden(`${principal} is not a party of case ${view.id}`, { reason: "NOT_A_PARTY", caseId: view.id });
    return this.checksummed(party);
  }

  /**
   * `getAddress(address)`, remembered: the checksum is a keccak of the address, twice per approval, and a
   * burst of a thousand approvals was checksumming the same few parties' addresses before the first was signed.
   */
  private checksummed(address: string): string {
    let checksummed = this.addresses.get(address);
    if (checksummed === undefined) {
      checksummed = getAddress(address);
      if (this.addresses.size >= MAX_REMEMBERED_ADDRESSES) this.addresses.clear();
      this.addresses.set(address, checksummed);
    }
    return checksummed;
  }

  managedKey(address: string): BaseWallet {
    const key = this.keys.get(this.checksummed(address));
    if (!key)
      throw forbidden(`the engine holds no managed key for ${address}: sign with the party's own wallet`, {
        reason: "NO_MANAGED_KEY",
      });
    return key;
  }

  /**
   * The signer's epoch (its revocation count for this stage): the projection's (each `SignOffRevoked` carries
   * `newEpoch`), or higher where a revocation this engine sent is mined but not projected yet. No chain read:
   * an `eth_call` per approval would queue behind everything else the node is doing. What this cannot see is
   * a revocation made elsewhere (the party's own wallet, another engine) in a block the projection has not
   * read yet: a sign-off approved in that moment is signed for the old epoch, and the contract skips it
   * (`StaleEpoch`): the submission fails with SIGN_OFF_STALE_EPOCH, "sign again", never reported done. The
   * same holds for a revocation still in the pool, which a chain read would not see either.
   */
  private epochOf(r: Resolved): number {
    return Math.max(r.view.epochs[`${r.stage}:${r.role}`] ?? 0, this.revokedTo.get(signerKey(r)) ?? 0);
  }

  /**
   * The signature of a sign-off: the given one, in the contract's form (see signature-form.ts), if it recovers
   * to the party (an EOA's), else the managed key's.
   * The digest is hashed from a precomputed domain separator and signed with the key directly, on a worker
   * thread (signing-pool.ts): ethers' `signTypedData` walks the types again for every message.
   */
  private async signOffSignature(
    r: Resolved,
    message: { caseId: string; stage: number; role: number; epoch: number; evidence: string },
    signature?: string,
  ): Promise<string> {
    this.domainSeparator ??= this.domain().then((d) => escrowDomainSeparator(BigInt(d.chainId), d.verifyingContract));
    this.domainSeparator.catch(() => (this.domainSeparator = undefined));
    const digest = signOffDigest(await this.domainSeparator, message);
    if (signature === undefined) {
      return this.signing.sign(this.managedKey(r.party), digest);
    }
    const canonical = contractSignatureForm(signature);
    return this.checkSigner(r, canonical, () => recoverAddress(digest, canonical));
  }

  async domain() {
    this.chainId ??= (await this.options.provider.getNetwork()).chainId;
    return {
      name: "MortgageEscrow",
      version: "1",
      chainId: this.chainId.toString(),
      verifyingContract: this.escrowAddress,
    };
  }

  private async signOffTypedData(r: Resolved, epoch: number, evidence: string): Promise<TypedData> {
    return {
      domain: await this.domain(),
      types: SIGN_OFF_TYPES,
      primaryType: "SignOff",
      message: { caseId: r.view.id, stage: r.stage, role: r.role, epoch, evidence },
    };
  }

  private async revokeTypedData(r: Resolved, epoch: number): Promise<TypedData> {
    return {
      domain: await this.domain(),
      types: REVOKE_TYPES,
      primaryType: "RevokeSignOff",
      message: { caseId: r.view.id, stage: r.stage, role: r.role, epoch },
    };
  }

  /** `signature` if the address `recover` finds in it is the party's (an EOA's); else 403 BAD_SIGNATURE. */
  private checkSigner(r: Resolved, signature: string, recover: () => string): string {
    let signer: string;
    try {
      signer = recover();
    } catch (error) {
      throw forbidden(`the signature does not decode: ${(error as Error).message}`, { reason: "BAD_SIGNATURE" });
    }
    if (!sameAddress(signer, r.party)) {
      throw forbidden(`the signature is ${signer}'s, not the ${ROLE_NAMES[r.role]}'s (${r.party})`, {
        reason: "BAD_SIGNATURE",
        signer,
        party: r.party,
      });
    }
    return signature;
  }

  private call(from: string, method: string, args: unknown[]): CallIntent {
    return { kind: "call", from, method, args };
  }
}

function signerKey(r: Resolved): string {
  return `${r.view.id}:${r.stage}:${r.role}`;
}

function roleIndex(role: RoleName): number {
  const index = ROLE_NAMES.indexOf(role);
  if (index < 0) throw invalid(`unknown role ${JSON.stringify(role)} (the roles are ${ROLE_NAMES.join(", ")})`);
  return index;
}

function parseAmount(amount: string | bigint): bigint {
  const text = String(amount);
  if (!/^\d+$/.test(text) || BigInt(text) === 0n)
    throw invalid(`the amount must be a positive integer in the asset's smallest unit, not ${JSON.stringify(text)}`);
  return BigInt(text);
}

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function conflict(message: string, r: { view: CaseView }): EngineError {
  return new EngineError("CONFLICT", message, { details: { caseId: r.view.id } });
}

function forbidden(message: string, details?: Record<string, unknown>): EngineError {
  return new EngineError("FORBIDDEN", message, { details });
}

function invalid(message: string): EngineError {
  return new EngineError("INVALID_REQUEST", message);
}
