/**
 * The case's money: deposits by the payers, withdrawals of a party's credit, and each party's vote to cancel,
 * which it may withdraw until the case is cancelled.
 */
import { actingRole, refuseOperator, visibleCase } from "../auth/case-access";
import { CaseParams, DepositBody, EmptyBody, ErrorResponse, SubmissionResponse } from "../schemas";
import type { RouteContext } from "./context";
import { defineRoute, type AnyRouteSpec } from "./define";
import { accepted } from "./submissions";

const ERRORS = {
  400: { description: "Not a valid request", schema: ErrorResponse },
  403: { description: "A party whose role may not do this, or the operator", schema: ErrorResponse },
  404: { description: "No such case that the caller may see", schema: ErrorResponse },
  409: {
    description: "The case's state does not allow it (closed, nothing credited, released, no vote standing)",
    schema: ErrorResponse,
  },
};

export function moneyRoutes(ctx: RouteContext): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "post",
      path: "/cases/:id/deposits",
      tag: "money",
      summary: "Pay into the escrow from the caller's managed key (the buyer or the bank)",
      auth: true,
      params: CaseParams,
      body: DepositBody,
      responses: {
        202: { description: "The submission", schema: SubmissionResponse },
        ...ERRORS,
        422: { description: "Not possible through the API (an ERC-20 case)", schema: ErrorResponse },
      },
      handler: ({ params, body, principal, engineKey }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        const role = actingRole(progress, principal, ["bank", "buyer"] as const, body.role, "pay into the escrow");
        const submission = ctx.engine.deposit({
          caseId: progress.id,
          role,
          principalAddress: principal.address,
          amount: body.amount,
          idempotencyKey: engineKey,
        });
        return accepted(ctx, principal, progress.id, submission);
      },
    }),
    defineRoute({
      method: "post",
      path: "/cases/:id/withdrawals",
      tag: "money",
      summary: "Pay the caller's whole credit in the case out to its address",
      auth: true,
      params: CaseParams,
      body: EmptyBody,
      responses: { 202: { description: "The submission", schema: SubmissionResponse }, ...ERRORS },
      handler: ({ params, principal, engineKey }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        // A party withdraws or votes as its address, whatever roles it holds (visibleCase let only parties through).
        refuseOperator(principal, "withdraw");
        const submission = ctx.engine.withdraw({
          caseId: progress.id,
          principalAddress: principal.address,
          idempotencyKey: engineKey,
        });
        return accepted(ctx, principal, progress.id, submission);
      },
    }),
    defineRoute({
      method: "post",
      path: "/cases/:id/cancellation",
      tag: "money",
      summary: "The caller's vote to cancel the case; the last party's vote cancels it and refunds the payers",
      auth: true,
      params: CaseParams,
      body: EmptyBody,
      responses: { 202: { description: "The submission", schema: SubmissionResponse }, ...ERRORS },
      handler: ({ params, principal, engineKey }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        refuseOperator(principal, "vote to cancel");
        const submission = ctx.engine.cancel({
          caseId: progress.id,
          principalAddress: principal.address,
          idempotencyKey: engineKey,
        });
        return accepted(ctx, principal, progress.id, submission);
      },
    }),
    defineRoute({
      method: "delete",
      path: "/cases/:id/cancellation",
      tag: "money",
      summary:
        "Withdraw the caller's vote to cancel the case (for every role it holds that voted), while the case is open",
      description:
        "409 when none of the caller's roles has a vote standing on chain (a vote still being sent is not standing yet).",
      auth: true,
      params: CaseParams,
      body: EmptyBody,
      responses: { 202: { description: "The submission", schema: SubmissionResponse }, ...ERRORS },
      handler: ({ params, principal, engineKey }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        refuseOperator(principal, "withdraw a vote to cancel");
        const submission = ctx.engine.withdrawCancelVote({
          caseId: progress.id,
          principalAddress: principal.address,
          idempotencyKey: engineKey,
        });
        return accepted(ctx, principal, progress.id, submission);
      },
    }),
  ];
}
