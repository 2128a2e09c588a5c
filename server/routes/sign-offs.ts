/**
 * Sign-offs of a stage: the typed data for the caller's own wallet, a sign-off (with the wallet's signature,
 * or by the managed key), and its revocation. Only a role the stage requires acts here: another party of the
 * case hears 403, anyone who may not see the case 404, and the operator signs off nothing (403).
 */
import { actingRole, stageOf, visibleCase } from "../auth/case-access";
import {
  ErrorResponse,
  RevokeBody,
  SignOffBody,
  StageParams,
  SubmissionResponse,
  TypedDataQuery,
  TypedDataResponse,
} from "../schemas";
import type { RouteContext } from "./context";
import { defineRoute, type AnyRouteSpec } from "./define";
import { accepted } from "./submissions";

const ERRORS = {
  400: { description: "Not a valid request", schema: ErrorResponse },
  403: {
    description: "A party whose role the stage does not require, the operator, or a signature by someone else",
    schema: ErrorResponse,
  },
  404: { description: "No such case (that the caller may see) or stage", schema: ErrorResponse },
};

export function signOffRoutes(ctx: RouteContext): AnyRouteSpec[] {
  /** The case, the stage and the role the caller acts as, or the refusal. */
  function resolve(
    principal: Parameters<typeof visibleCase>[1],
    caseId: string,
    stageId: string,
    requested: Parameters<typeof actingRole>[3],
    what: string,
  ) {
    const progress = visibleCase(ctx.progress, principal, caseId);
    const stage = stageOf(progress, stageId);
    const role = actingRole(progress, principal, stage.requires, requested, `${what} "${stage.id}"`);
    return { progress, stage, role };
  }

  return [
    defineRoute({
      method: "get",
      path: "/cases/:id/stages/:stage/sign-offs/typed-data",
      tag: "sign-offs",
      summary: "The EIP-712 typed data the caller's own wallet signs to sign off the stage (or to revoke)",
      description:
        "Sign `{domain, types, message}` with eth_signTypedData_v4 and POST (or DELETE) the signature. The message names the sign-off's epoch: after a revocation, fetch it again.",
      auth: true,
      params: StageParams,
      query: TypedDataQuery,
      responses: {
        200: { description: "The typed data", schema: TypedDataResponse },
        ...ERRORS,
        409: { description: "The case is closed", schema: ErrorResponse },
        503: { description: "The chain did not answer (its chain id is read once): retry", schema: ErrorResponse },
      },
      handler: async ({ params, query, principal }) => {
        const { progress, stage, role } = resolve(
          principal,
          params.id,
          params.stage,
          query.role,
          query.purpose === "revoke" ? "revoke a sign-off of" : "sign off",
        );
        const typed = await ctx.engine.typedDataFor({
          caseId: progress.id,
          stageId: stage.id,
          role,
          principalAddress: principal.address,
          evidence: query.evidence,
          purpose: query.purpose,
        });
        return { status: 200, body: typed };
      },
    }),
    defineRoute({
      method: "post",
      path: "/cases/:id/stages/:stage/sign-offs",
      tag: "sign-offs",
      summary: "Sign off the stage as the caller's role",
      description:
        "With `signature` (from the typed data) the server checks that it is the party's and relays it; without, the principal's managed key signs. " +
        "A signature may be 65 bytes with v 27/28 or 0/1, or 64 bytes (EIP-2098): it is relayed in the one form the contract takes (65 bytes, v 27/28); a high s or any other length is 400, another signer's 403. " +
        "Without an Idempotency-Key the same sign-off asked twice is one submission; after that submission failed, asking again makes a new one. " +
        "409 TOO_EARLY with `details.availableAt` while the stage's legal waiting period runs.",
      auth: true,
      params: StageParams,
      body: SignOffBody,
      responses: {
        202: { description: "The submission, recorded in the engine's outbox", schema: SubmissionResponse },
        ...ERRORS,
        409: {
          description: "Already signed off or completed, the case is closed, or TOO_EARLY (details.availableAt)",
          schema: ErrorResponse,
        },
      },
      handler: async ({ params, body, principal, engineKey }) => {
        const { progress, stage, role } = resolve(principal, params.id, params.stage, body.role, "sign off");
        const submission = await ctx.engine.approve({
          caseId: progress.id,
          stageId: stage.id,
          role,
          principalAddress: principal.address,
          evidence: body.evidence,
          signature: body.signature,
          idempotencyKey: engineKey,
        });
        return accepted(ctx, principal, progress.id, submission);
      },
    }),
    defineRoute({
      method: "delete",
      path: "/cases/:id/stages/:stage/sign-offs",
      tag: "sign-offs",
      summary: "Revoke the caller's sign-off of the stage, until the stage completes",
      description:
        "With `signature` (typed data fetched with purpose=revoke) it is relayed; without, the managed key revokes.",
      auth: true,
      params: StageParams,
      body: RevokeBody,
      responses: {
        202: { description: "The submission, recorded in the engine's outbox", schema: SubmissionResponse },
        ...ERRORS,
        409: { description: "Not signed off, or the stage has completed", schema: ErrorResponse },
      },
      handler: async ({ params, body, principal, engineKey }) => {
        const { progress, stage, role } = resolve(
          principal,
          params.id,
          params.stage,
          body.role,
          "revoke a sign-off of",
        );
        const submission = await ctx.engine.revoke({
          caseId: progress.id,
          stageId: stage.id,
          role,
          principalAddress: principal.address,
          signature: body.signature,
          idempotencyKey: engineKey,
        });
        return accepted(ctx, principal, progress.id, submission);
      },
    }),
  ];
}
