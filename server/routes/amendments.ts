/**
 * Amendments by consent: the case's proposals, a party's proposal, its consent (from the managed key, or
 * relayed with its own wallet's EIP-712 signature, whose typed data is here too) and its withdrawal. Only the
 * case's parties act: the operator reads and hears 403, anyone else 404; a consent is for a role the
 * amendment needs (403 otherwise).
 */
import type { AmendmentProgress, CaseProgress } from "../../engine";
import { ROLE_NAMES } from "../../workflows/schema";
import { actingRole, visibleCase } from "../auth/case-access";
import { notFound } from "../errors";
import {
  AmendmentListResponse,
  AmendmentParams,
  AmendmentResponse,
  CaseParams,
  ConsentBody,
  ConsentTypedDataQuery,
  ErrorResponse,
  NoQuery,
  ProposeAmendmentBody,
  SubmissionResponse,
  TypedDataResponse,
  WithdrawConsentBody,
} from "../schemas";
import type { RouteContext } from "./context";
import { defineRoute, type AnyRouteSpec } from "./define";
import { accepted } from "./submissions";

const ERRORS = {
  400: { description: "Not a valid request", schema: ErrorResponse },
  403: {
    description: "The operator, a party whose consent the amendment does not need, or a signature by someone else",
    schema: ErrorResponse,
  },
  404: { description: "No such case (that the caller may see), stage or amendment", schema: ErrorResponse },
};

function amendmentOf(progress: CaseProgress, n: number): AmendmentProgress {
  const found = progress.amendments.find((a) => a.number === n);
  if (!found) throw notFound(`case ${progress.id} has no amendment ${n}`, { caseId: progress.id, amendment: n });
  return found;
}

export function amendmentRoutes(ctx: RouteContext): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "get",
      path: "/cases/:id/amendments",
      tag: "amendments",
      summary: "The case's amendments: every proposal, who has consented, and the terms version",
      auth: true,
      params: CaseParams,
      query: NoQuery,
      responses: { 200: { description: "The amendments, in order", schema: AmendmentListResponse }, 404: ERRORS[404] },
      handler: ({ params, principal }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        return {
          status: 200,
          body: { caseId: progress.id, termsVersion: progress.termsVersion, amendments: progress.amendments },
        };
      },
    }),
    defineRoute({
      method: "get",
      path: "/cases/:id/amendments/:n",
      tag: "amendments",
      summary: "One amendment of the case",
      auth: true,
      params: AmendmentParams,
      query: NoQuery,
      responses: { 200: { description: "The amendment", schema: AmendmentResponse }, 404: ERRORS[404] },
      handler: ({ params, principal }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        return { status: 200, body: amendmentOf(progress, params.n) };
      },
    }),
    defineRoute({
      method: "post",
      path: "/cases/:id/amendments",
      tag: "amendments",
      summary: "Propose an amendment: move a deadline, change price, deposit and loan, or replace a party's address",
      description:
        "Sent from the caller's managed key as `proposeAmendment`; the caller's own consent counts at once where it is needed, and an amendment that needs only it applies at once. " +
        "It needs the consent of the roles the workflow names for its kind (GET /workflows/{id}, `amendments`) and, whatever the workflow says, of each party it moves money away from or replaces. " +
        "It applies in the transaction of its last consent, unless it expired or another amendment applied first. " +
        "Without an Idempotency-Key the same proposal of the same terms version asked twice is one submission.",
      auth: true,
      params: CaseParams,
      body: ProposeAmendmentBody,
      responses: {
        202: { description: "The submission, recorded in the engine's outbox", schema: SubmissionResponse },
        ...ERRORS,
        409: {
          description:
            "The case is closed, the stage has completed, the escrow has released (a terms change), or the address is the party's already",
          schema: ErrorResponse,
        },
      },
      handler: ({ params, body, principal, engineKey }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        const role = actingRole(progress, principal, ROLE_NAMES, body.role, "propose an amendment");
        const change =
          body.kind === "deadline"
            ? { kind: body.kind, stage: body.stage, longStop: body.deadline === "longStop", to: body.to }
            : body.kind === "terms"
              ? { kind: body.kind, price: body.price, deposit: body.deposit, loan: body.loan }
              : { kind: body.kind, role: body.party, account: body.account };
        const submission = ctx.engine.proposeAmendment({
          caseId: progress.id,
          role,
          principalAddress: principal.address,
          change,
          expiresAt: body.expiresAt,
          idempotencyKey: engineKey,
        });
        return accepted(ctx, principal, progress.id, submission);
      },
    }),
    defineRoute({
      method: "get",
      path: "/cases/:id/amendments/:n/consents/typed-data",
      tag: "amendments",
      summary: "The EIP-712 typed data the caller's own wallet signs to consent to the amendment",
      description:
        "Sign `{domain, types, message}` with eth_signTypedData_v4 and POST the signature to /cases/{id}/amendments/{n}/consents. The message names the terms version and kind it amends and the consent's epoch: after a withdrawal, fetch it again.",
      auth: true,
      params: AmendmentParams,
      query: ConsentTypedDataQuery,
      responses: {
        200: { description: "The typed data", schema: TypedDataResponse },
        ...ERRORS,
        503: { description: "The chain did not answer (its chain id is read once): retry", schema: ErrorResponse },
      },
      handler: async ({ params, query, principal }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        const amendment = amendmentOf(progress, params.n);
        const role = actingRole(
          progress,
          principal,
          amendment.requires,
          query.role,
          `consent to amendment ${params.n}`,
        );
        const typed = await ctx.engine.consentTypedData({
          caseId: progress.id,
          amendment: params.n,
          role,
          principalAddress: principal.address,
        });
        return { status: 200, body: typed };
      },
    }),
    defineRoute({
      method: "post",
      path: "/cases/:id/amendments/:n/consents",
      tag: "amendments",
      summary: "Consent to the amendment as the caller's role",
      description:
        "With `signature` (from the typed data) the server checks that it is the party's and relays it in `consentToAmendmentsWithSignatures`; without, the principal's managed key consents. " +
        "The last consent the amendment needs applies it in the same transaction.",
      auth: true,
      params: AmendmentParams,
      body: ConsentBody,
      responses: {
        202: { description: "The submission, recorded in the engine's outbox", schema: SubmissionResponse },
        ...ERRORS,
        409: {
          description: "Consented already, applied, expired, superseded by another amendment, or the case is closed",
          schema: ErrorResponse,
        },
      },
      handler: async ({ params, body, principal, engineKey }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        const amendment = amendmentOf(progress, params.n);
        const role = actingRole(progress, principal, amendment.requires, body.role, `consent to amendment ${params.n}`);
        const submission = await ctx.engine.consentToAmendment({
          caseId: progress.id,
          amendment: params.n,
          role,
          principalAddress: principal.address,
          signature: body.signature,
          idempotencyKey: engineKey,
        });
        return accepted(ctx, principal, progress.id, submission);
      },
    }),
    defineRoute({
      method: "delete",
      path: "/cases/:id/amendments/:n/consents",
      tag: "amendments",
      summary: "Withdraw the caller's consent, until the amendment applies",
      description:
        "Sent from the caller's managed key (the contract takes no signed withdrawal). Signatures of the withdrawn consent are void from then on.",
      auth: true,
      params: AmendmentParams,
      body: WithdrawConsentBody,
      responses: {
        202: { description: "The submission, recorded in the engine's outbox", schema: SubmissionResponse },
        ...ERRORS,
        409: { description: "No consent standing, or the amendment has applied", schema: ErrorResponse },
      },
      handler: ({ params, body, principal, engineKey }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        const amendment = amendmentOf(progress, params.n);
        const role = actingRole(
          progress,
          principal,
          amendment.requires,
          body.role,
          `withdraw a consent to amendment ${params.n}`,
        );
        const submission = ctx.engine.withdrawAmendmentConsent({
          caseId: progress.id,
          amendment: params.n,
          role,
          principalAddress: principal.address,
          idempotencyKey: engineKey,
        });
        return accepted(ctx, principal, progress.id, submission);
      },
    }),
  ];
}
