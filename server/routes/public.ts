/** What anyone may read without a token: the server's health and the workflows on offer. */
import { notFound } from "../errors";
import { healthReasons } from "../health";
import {
  ErrorResponse,
  HealthResponse,
  NoQuery,
  WorkflowListResponse,
  WorkflowParams,
  WorkflowResponse,
} from "../schemas";
import type { RouteContext } from "./context";
import { defineRoute, type AnyRouteSpec } from "./define";

export function publicRoutes(ctx: RouteContext): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "get",
      path: "/health",
      tag: "health",
      summary: "Whether the server and its chain are well",
      description:
        "Always 200 while the server runs; `status` is `degraded` when the chain does not answer, the last poll of it failed, or the relayer is paused or failing, and `reasons` says which (a key that cannot pay: its address, balance and what it needs).",
      auth: false,
      query: NoQuery,
      responses: { 200: { description: "The health", schema: HealthResponse } },
      handler: async () => {
        const h = await ctx.engine.health();
        const reasons = healthReasons(h);
        const status = reasons.length > 0 ? "degraded" : "ok";
        return {
          status: 200,
          body: {
            status,
            chainId: h.chainId,
            blockNumber: h.blockNumber,
            contract: h.contract,
            checkpoint: h.checkpoint,
            reasons,
            runtime: h.runtime,
          },
        };
      },
    }),
    defineRoute({
      method: "get",
      path: "/workflows",
      tag: "workflows",
      summary: "The workflows a case may be opened under, with their stages",
      auth: false,
      query: NoQuery,
      responses: { 200: { description: "Every workflow", schema: WorkflowListResponse } },
      handler: () => ({ status: 200, body: { workflows: ctx.engine.workflows() } }),
    }),
    defineRoute({
      method: "get",
      path: "/workflows/:id",
      tag: "workflows",
      summary: "One workflow, by its id or its on-chain template id",
      auth: false,
      params: WorkflowParams,
      query: NoQuery,
      responses: {
        200: { description: "The workflow", schema: WorkflowResponse },
        404: { description: "No such workflow", schema: ErrorResponse },
      },
      handler: ({ params }) => {
        const workflow = ctx.engine.workflow(params.id);
        if (!workflow) throw notFound(`no workflow ${JSON.stringify(params.id)}`);
        return { status: 200, body: workflow };
      },
    }),
  ];
}
