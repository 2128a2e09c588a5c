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
  WorklistQuery,
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

const DEFAULT_PAGE_SIZE = 50;

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
      summary:
        "The worklist: the caller's cases (the operator: every case), filtered, by next legal deadline, a page at a time",
      description:
        "The cases the caller is a party to (the operator: every case) that match every filter given, ordered by their next legal deadline " +
        "(`nextDeadline`: the earliest `deadline` of a stage not completed), soonest first, cases with none after, then by id. " +
        "Each item is the case's whole progress (as GET /cases/{id}) with `waitingFor` (what it waits for now, and from which roles: every party's part) and `nextDeadline`.\n\n" +
        "Paging: `limit` cases a page (default 50, at most 200); `nextCursor` (null on the last page) with the same filters gives the next page. " +
        "What a cursor guarantees: while a walk through the pages lasts (up to an hour, on the same server instance), its pages keep the order its first page saw, " +
        "so a case whose next deadline moves mid-walk is neither repeated nor skipped; a case opened mid-walk comes where its deadline puts it, if that is after the cursor. " +
        "Filters are applied as things are now: a case that stops matching (its sign-off came) is not shown on a later page, one that starts matching may be. " +
        "After an hour, or from another instance or after a restart, the cursor still works but the next page follows the current order from its position.\n\n" +
        "400 names the field: an unknown parameter, a bad value, a cursor from another query, and `awaiting` or `role` from the operator (a party to no case).",
      auth: true,
      query: WorklistQuery,
      responses: {
        200: { description: "A page of the worklist", schema: CaseListResponse },
        400: { description: "A filter, the limit or the cursor is not valid", schema: ErrorResponse },
      },
      handler: ({ principal, query }) => {
        const { limit, cursor, ...filter } = query;
        const page = ctx.worklist.page(principal, filter, limit ?? DEFAULT_PAGE_SIZE, cursor);
        const raw = `{"cases":[${page.items.join(",")}],"nextCursor":${JSON.stringify(page.nextCursor)}}`;
        return { status: 200, body: undefined, raw };
      },
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
