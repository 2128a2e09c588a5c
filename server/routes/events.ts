/** `GET /cases/:id/events`: the case's progress as Server-Sent Events (see server/sse.ts). */
import { z } from "zod";
import { visibleCaseEntry } from "../auth/case-access";
import { CaseParams, CaseViewResponse, ErrorResponse, NoQuery } from "../schemas";
import type { CaseStreams } from "../sse";
import type { RouteContext } from "./context";
import { defineRoute, type AnyRouteSpec } from "./define";

export function eventRoutes(ctx: RouteContext, streams: CaseStreams): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "get",
      path: "/cases/:id/events",
      tag: "cases",
      summary: "The case's progress as Server-Sent Events",
      description:
        "`event: progress`, data the case's whole progress, first on connecting and then after each change, each with an increasing `id`. Send `Last-Event-ID` to resume: nothing is sent until the next change if the case has not changed since. A correction after a chain reorganisation carries `\"reorg\": true`. A comment line every heartbeat. Only the case's parties and the operator; anyone else gets 404.",
      auth: true,
      params: CaseParams,
      query: NoQuery,
      headers: [
        {
          name: "Last-Event-ID",
          description: "The id of the last event received: resume after it.",
          schema: z.string().regex(/^\d+$/),
        },
      ],
      responses: {
        200: {
          description: "The stream (text/event-stream); each event's data is the progress, with the parties' names",
          schema: CaseViewResponse,
          contentType: "text/event-stream",
        },
        404: { description: "No such case that the caller may see", schema: ErrorResponse },
      },
      handler: ({ params, principal, req, res }) => {
        const { progress, json } = visibleCaseEntry(ctx.progress, principal, params.id);
        streams.open(req, res, principal.id, progress.id, json);
        return undefined;
      },
    }),
  ];
}
