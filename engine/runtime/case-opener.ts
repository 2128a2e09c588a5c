/**
 * Opening a case for a principal (its own bank, or the operator): checked here first, so a caller hears a
 * clear reason (NOT_FOUND, INVALID_REQUEST, FORBIDDEN) rather than a revert; the request's shape is the zod
 * schema `OpenCaseRequest`, from the same parts (value-schemas.ts) as the server's POST /cases body; then `openCase(terms)` is
 * recorded in the relayer's outbox (durable, and one case per idempotency key; a failed opening does not
 * hold its key: retry-key.ts) to be sent from the
 * principal's managed key; then the opener waits for the chain to settle it and for the projection to hold
 * the new case, and returns its progress.
 *
 * The chain has the last word on who may open: a principal that is neither the terms' bank nor the escrow's
 * admin is refused by the contract (`MortgageEscrowUnauthorizedOpener`), which becomes FORBIDDEN here.
 */
import { randomUUID } from "node:crypto";
import { ZeroAddress, getAddress, type Provider } from "ethers";
import { z } from "zod";
import type { CompiledWorkflow } from "../../workflows";
import { ROLE_NAMES, type RoleName } from "../../workflows/schema";
import { parseEscrowLog } from "../chain/escrow";
import { EngineError, isEngineErrorCode } from "../errors";
import type { CaseProgress } from "../projection/case-view";
import type { Projection } from "../projection/projection";
import type { RelayerOutOfFundsError } from "../relayer/errors";
import { sleep } from "../sleep";
import type { Relayer } from "../relayer/relayer";
import type { Submission } from "../relayer/types";
import { Address, CaseParties, CaseTerms } from "../value-schemas";
import { findWorkflow } from "../workflow-summaries";
import { keyPastFailures } from "./retry-key";

/** What opening a case takes; `open` checks a request against it before anything is recorded or sent. */
export const OpenCaseRequest = z.object({
  /** Who asks: its managed key sends the transaction. */
  principalAddress: Address,
  /** A workflow id ("us-purchase") or a template id. */
  workflow: z.string(),
  parties: CaseParties,
  /** In the asset's smallest unit, decimal strings. */
  terms: CaseTerms,
  /** An ERC-20's address; ETH when absent (or the zero address). */
  asset: Address.optional(),
  /** The same key (from the same principal) again returns the same case: one case, never two. */
  idempotencyKey: z.string().optional(),
});
export type OpenCaseRequest = z.input<typeof OpenCaseRequest>;

export interface CaseOpenerOptions {
  projection: Projection;
  relayer: Relayer;
  provider: Provider;
  workflows: readonly CompiledWorkflow[];
  escrowAddress: string;
  /** One poll of the projection (the engine's, so a reorganisation it notices reaches the relayer). */
  followChain: () => Promise<void>;
  /** How long `open` waits for the chain to settle the case and the projection to hold it. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const POLL_MS = 25;

export class CaseOpener {
  /** Case ids already read from a settled submission's receipt: a repeat costs no RPC call. */
  private readonly caseIdOfSubmission = new Map<number, string>();
  private readonly escrowAddress: string;

  constructor(private readonly options: CaseOpenerOptions) {
    this.escrowAddress = getAddress(options.escrowAddress);
  }

  async open(input: OpenCaseRequest, options: { timeoutMs?: number } = {}): Promise<CaseProgress> {
    const checked = OpenCaseRequest.safeParse(input, { reportInput: true });
    if (!checked.success) throw invalidRequest(checked.error);
    const request = checked.data;
    const principal = getAddress(request.principalAddress);
    const compiled = findWorkflow(this.options.workflows, request.workflow);
    if (!compiled) {
      throw new EngineError(
        "NOT_FOUND",
        `no workflow ${JSON.stringify(request.workflow)} (the engine knows ${this.options.workflows.map((w) => w.workflow.id).join(", ")})`,
        {
          details: { workflow: request.workflow },
        },
      );
    }
    const parties = Object.fromEntries(ROLE_NAMES.map((role) => [role, getAddress(request.parties[role])])) as Record<
      RoleName,
      string
    >;
    // Amounts as the chain will echo them (no leading zeros), so the same terms make the same intent.
    const terms = {
      price: BigInt(request.terms.price).toString(),
      deposit: BigInt(request.terms.deposit).toString(),
      loan: BigInt(request.terms.loan).toString(),
    };
    const asset = request.asset === undefined ? ZeroAddress : getAddress(request.asset);
    if (!this.options.relayer.holdsKey(principal)) {
      throw new EngineError(
        "FORBIDDEN",
        `the engine holds no managed key for ${principal}: it cannot open a case for it`,
        {
          details: { reason: "NO_MANAGED_KEY", principal },
        },
      );
    }
    const caseTerms = { templateId: compiled.templateId, ...parties, asset, ...terms };
    const key = keyPastFailures(
      this.options.relayer.outbox,
      request.idempotencyKey === undefined
        ? `open-case:${principal}:${randomUUID()}`
        : `open-case:${principal}:${request.idempotencyKey}`,
    );
    const submission = this.options.relayer.submit(
      { kind: "call", from: principal, method: "openCase", args: [caseTerms] },
      key,
    );
    const deadline = Date.now() + (options.timeoutMs ?? this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const caseId = await this.caseIdOnceSettled(submission, principal, deadline);
    return this.projected(caseId, submission, deadline);
  }

  /** Waits for the submission to be mined without a revert (its `CaseOpened` names the case) or to fail. */
  private async caseIdOnceSettled(submitted: Submission, principal: string, deadline: number): Promise<string> {
    for (;;) {
      const known = this.caseIdOfSubmission.get(submitted.id);
      if (known) return known;
      const s = this.options.relayer.get(submitted.id) ?? submitted;
      if (s.status === "failed") throw refusal(s, principal);
      if ((s.status === "mined" || s.status === "confirmed") && s.txHash) {
        const receipt = await this.options.provider.getTransactionReceipt(s.txHash);
        if (receipt?.status === 1) {
          const opened = receipt.logs
            .filter((log) => getAddress(log.address) === this.escrowAddress)
            .map((log) => parseEscrowLog(log))
            .find((parsed) => parsed?.name === "CaseOpened");
          if (!opened)
            throw new EngineError("INTERNAL", `transaction ${s.txHash} opened no case`, {
              details: { submissionId: s.id },
            });
          const caseId = (opened.args.caseId as bigint).toString();
          this.caseIdOfSubmission.set(s.id, caseId);
          return caseId;
        }
        // A reverted receipt: the relayer decodes why and fails the submission; wait for that.
      }
      const paused = this.options.relayer.health().senders.find((x) => x.address === s.sender)?.paused;
      if (paused) throw cannotPay(paused, s);
      if (Date.now() > deadline)
        throw timeout(`the chain has not settled the opening of the case (submission ${s.id} is ${s.status})`, s);
      await sleep(POLL_MS);
    }
  }

  /** Polls the projection until it holds the case. */
  private async projected(caseId: string, submission: Submission, deadline: number): Promise<CaseProgress> {
    for (;;) {
      const progress = this.options.projection.getCase(caseId);
      if (progress) return progress;
      if (Date.now() > deadline)
        throw timeout(`case ${caseId} is open on chain but not projected yet`, submission, { caseId });
      await this.options.followChain().catch(() => sleep(POLL_MS));
    }
  }
}

/**
 * The first thing wrong with a request, as INVALID_REQUEST naming the field: "parties.seller must be a 20-byte
 * hex address (...), not "0x1234"". The value-schemas' messages are predicates of the field (a "must be" one
 * is followed by the value given); zod's own are sentences, after a colon.
 */
function invalidRequest(error: z.ZodError): EngineError {
  const issue = error.issues[0];
  const field = issue.path.join(".") || "the request";
  if (!/^[a-z]/.test(issue.message))
    return new EngineError("INVALID_REQUEST", `${field}: ${issue.message}`, { details: { field } });
  const input = (issue as { input?: unknown }).input;
  const given =
    issue.message.startsWith("must be ") && typeof input === "string" ? `, not ${JSON.stringify(input)}` : "";
  return new EngineError("INVALID_REQUEST", `${field} ${issue.message}${given}`, { details: { field } });
}

/** The contract's refusal of a failed opening, as the code a caller acts on. */
function refusal(s: Submission, principal: string): EngineError {
  const name = String(s.error?.details?.error ?? "");
  const details = { submissionId: s.id, error: s.error };
  switch (name) {
    case "MortgageEscrowUnauthorizedOpener":
      return new EngineError(
        "FORBIDDEN",
        `${principal} is neither the case's bank nor the operator: it may not open this case`,
        { details: { ...details, reason: "NOT_BANK_OR_OPERATOR" } },
      );
    case "MortgageEscrowPaused":
      return new EngineError("CONFLICT", "the escrow is paused: no case opens until the operator unpauses it", {
        details,
      });
    case "MortgageEscrowUnknownTemplate":
      return new EngineError(
        "CONFLICT",
        "this workflow's template is not registered on the chain's escrow: the operator registers it first",
        { details },
      );
    case "MortgageEscrowZeroParty":
    case "MortgageEscrowPriceExceedsShares":
      return new EngineError("INVALID_REQUEST", s.error?.message ?? name, { details });
    default:
      return new EngineError(
        s.error?.code === "CONTRACT_REVERTED" || !s.error
          ? "CONFLICT"
          : isEngineErrorCode(s.error.code)
            ? s.error.code
            : "INTERNAL",
        `the case was not opened: ${s.error?.message ?? "unknown"}`,
        {
          details,
        },
      );
  }
}

/**
 * The opener's key cannot pay: said of that key (the caller's own, not "the relayer"), with what it holds and
 * needs. The opening stays in the outbox and is sent once the key is funded; the same request again (same
 * idempotency key, which the server derives from the body when the client sends none) returns that case.
 */
function cannotPay(paused: RelayerOutOfFundsError, s: Submission): EngineError {
  const { address, balance, needed, shortfall } = paused.details as {
    address: string;
    balance: string;
    needed: string;
    shortfall: string;
  };
  return new EngineError(
    "RELAYER_OUT_OF_FUNDS",
    `the key ${address} that opens this case (the caller's managed key) cannot pay for it: it holds ${balance} wei and needs ${needed} wei (gas; short by ${shortfall} wei). ` +
      `Fund ${address}; the opening waits (submission ${s.id}) and is sent once it is funded. Send the same request again (the same body, or the same Idempotency-Key) to get that case, never a second one`,
    { retryable: true, cause: paused, details: { address, balance, needed, shortfall, submissionId: s.id } },
  );
}

function timeout(message: string, s: Submission, extra: Record<string, unknown> = {}): EngineError {
  return new EngineError("TIMEOUT", `${message}; ask again with the same idempotency key to pick it up`, {
    retryable: true,
    details: { submissionId: s.id, ...extra },
  });
}
