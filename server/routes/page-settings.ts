/**
 * What the case page needs besides the case, for anyone (no token: nothing here is about a case): the
 * operator's indicative display currency, and a template's typical stage durations with their sources, from
 * which the page estimates when a case may finish.
 */
import { notFound } from "../errors";
import { DisplayResponse, ErrorResponse, NoQuery, TypicalDurationsResponse, WorkflowParams } from "../schemas";
import type { DisplaySettings } from "../settings";
import { typicalDurationsOf } from "../../workflows/typical-stage-durations";
import type { RouteContext } from "./context";
import { defineRoute, type AnyRouteSpec } from "./define";

export function pageRoutes(ctx: RouteContext, display: DisplaySettings): AnyRouteSpec[] {
  const currency = display.currency && { code: display.currency.code, perEth: display.currency.rate, indicative: true };
  return [
    defineRoute({
      method: "get",
      path: "/display",
      tag: "meta",
      summary: "The display currency the operator set for ETH amounts (indicative), if any",
      description:
        "From DISPLAY_CURRENCY and DISPLAY_RATE. The case page shows ETH amounts in it beside the ETH, marked indicative; amounts in a token are not converted.",
      auth: false,
      query: NoQuery,
      responses: { 200: { description: "The display currency, or null", schema: DisplayResponse } },
      handler: () => ({ status: 200, body: { currency } }),
    }),
    defineRoute({
      method: "get",
      path: "/workflows/:id/typical-durations",
      tag: "workflows",
      summary: "How long each stage of a workflow typically takes, with the source of each figure",
      description:
        "Common practice, not law: the case page adds them up along the workflow's graph for an estimated finish. Kept apart from the definition, so revising a figure never changes the template's id.",
      auth: false,
      params: WorkflowParams,
      query: NoQuery,
      responses: {
        200: { description: "The typical durations", schema: TypicalDurationsResponse },
        404: { description: "No such workflow, or none written down for it", schema: ErrorResponse },
      },
      handler: ({ params }) => {
        const workflow = ctx.engine.workflow(params.id);
        const typical = workflow && typicalDurationsOf(workflow.id);
        if (!workflow || !typical) throw notFound(`no typical durations for the workflow ${JSON.stringify(params.id)}`);
        return { status: 200, body: { workflow: workflow.id, ...typical } };
      },
    }),
  ];
}
