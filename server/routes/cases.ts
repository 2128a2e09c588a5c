/** Cases: open one (its bank or the operator), list the caller's, read one's progress and its on-chain history. */
import { isOperator, visibleCase, visibleCaseEntry } from "../auth/case-access";
import { forbidden, validationError } from "../errors";
import { derivedEngineKey } from "../idempotency";
import {
  CaseListResponse,
  CaseParams,
  CaseProgressResponse,
  CaseViewResponse,
  ErrorResponse,
  HistoryResponse,
  NoQuery,
  OpenCaseBody,
} from "../schemas";
import { ZeroAddress, getAddress } from "ethers";
import type { RouteContext } from "./context";
import { defineRoute, type AnyRouteSpec } from "./define";
import { z } from "zod";

/** What makes two openings the same request: the template, the parties, the amounts as integers and the asset, however written. */
function canonicalOpening(ctx: RouteContext, body: OpenCaseBody): unknown {
  const address = (a: string) => getAddress(a.toLowerCase());
  return {
    templateId: ctx.engine.workflow(body.workflow)?.templateId.toLowerCase() ?? body.workflow,
    parties: Object.fromEntries(Object.entries(body.parties).map(([role, a]) => [role, address(a)])),
    terms: Object.fromEntries(Object.entries(body.terms).map(([name, amount]) => [name, BigInt(amount).toString()])),
    asset: body.asset === undefined ? ZeroAddress : address(body.asset),
  };
}

const SEE_CASE = "Only the case's parties and the operator see it; anyone else gets 404.";

export function caseRoutes(ctx: RouteContext): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "post",
      path: "/cases",
      tag: "cases",
      summary: "Open a case",
      description:
        "By a bank naming itself as the case's bank, or by the operator. The case is opened from the caller's managed key; the answer comes once it is mined and projected. " +
        "The terms must have price <= deposit + loan (400 otherwise; in a remortgage the price is the redemption amount and the deposit may be zero).\n\n" +
        "Idempotent with or without a key: without an `Idempotency-Key` the key is derived from the caller and the canonical body (the workflow's template, the parties' addresses, " +
        "the amounts as integers, the asset), so the same request again returns the same case (201), never a second one, also after a 503 or a timeout. " +
        "To open a second case with the same parties and terms, send a new Idempotency-Key. " +
        "503 RELAYER_OUT_OF_FUNDS names the caller's key that cannot pay (`details.address`, `balance`, `needed` in wei): the opening waits in the engine's outbox and is sent once the key is funded; the same request again returns that case.",
      auth: true,
      body: OpenCaseBody,
      responses: {
        201: { description: "The case, opened", schema: CaseProgressResponse },
        400: {
          description: "Not a valid request (unknown workflow, amounts that don't add up, ...)",
          schema: ErrorResponse,
        },
        403: { description: "Neither the case's bank nor the operator", schema: ErrorResponse },
      },
      handler: async ({ body, principal, engineKey }) => {
        const ownBank =
          principal.role === "bank" && body.parties.bank.toLowerCase() === principal.address.toLowerCase();
        if (!isOperator(principal) && !ownBank) {
          throw forbidden("a case is opened by its own bank (naming itself as the bank) or by the operator", {
            reason: "NOT_THE_CASES_BANK",
          });
        }
        if (!ctx.engine.workflow(body.workflow)) {
          throw validationError(
            "body",
            new z.ZodError([
              {
                code: "custom",
                path: ["workflow"],
                message: `no workflow ${JSON.stringify(body.workflow)}: see GET /workflows`,
                input: body.workflow,
              },
            ]),
          );
        }
        const progress = await ctx.engine.openCase({
          principalAddress: principal.address,
          workflow: body.workflow,
          parties: body.parties,
          terms: body.terms,
          asset: body.asset,
          idempotencyKey: engineKey ?? derivedEngineKey(principal.id, "open-case", canonicalOpening(ctx, body)),
        });
        return { status: 201, body: progress, headers: { Location: `/cases/${progress.id}` } };
      },
    }),
    defineRoute({
      method: "get",
      path: "/cases",
      tag: "cases",
      summary: "The cases the caller is a party to (the operator: every case)",
      auth: true,
      query: NoQuery,
      responses: { 200: { description: "The cases, by id", schema: CaseListResponse } },
      handler: ({ principal }) => ({
        status: 200,
        body: {
          cases: isOperator(principal) ? ctx.engine.listCases() : ctx.engine.listCases({ party: principal.address }),
        },
      }),
    }),
    defineRoute({
      method: "get",
      path: "/cases/:id",
      tag: "cases",
      summary: "A case's progress",
      description: SEE_CASE,
      auth: true,
      params: CaseParams,
      query: NoQuery,
      responses: {
        200: { description: "The progress, with the parties' names", schema: CaseViewResponse },
        404: { description: "No such case that the caller may see", schema: ErrorResponse },
      },
      handler: ({ params, principal }) => {
        const { progress, json } = visibleCaseEntry(ctx.progress, principal, params.id);
        return { status: 200, body: progress, raw: json };
      },
    }),
    defineRoute({
      method: "get",
      path: "/cases/:id/history",
      tag: "cases",
      summary: "Every on-chain event of a case, with its block, time and transaction",
      description: SEE_CASE,
      auth: true,
      params: CaseParams,
      query: NoQuery,
      responses: {
        200: { description: "The events, in chain order", schema: HistoryResponse },
        404: { description: "No such case that the caller may see", schema: ErrorResponse },
      },
      handler: ({ params, principal }) => {
        const progress = visibleCase(ctx.progress, principal, params.id);
        return { status: 200, body: { caseId: progress.id, events: ctx.engine.historyOf(progress.id) } };
      },
    }),
  ];
}
