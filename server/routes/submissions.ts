/**
 * Submissions: what a sign-off, revocation, deposit, withdrawal or cancellation became in the engine's
 * outbox. The POSTs answer 202 with one; `GET /submissions/:id` follows it to its end, for its own caller only.
 */
import type { Submission } from "../../engine";
import { submissionView } from "../../engine/relayer/submission-schema";
import { notFound } from "../errors";
import { SubmissionParams, SubmissionResponse, ErrorResponse } from "../schemas";
import type { Principal } from "../auth/principals";
import type { RouteContext } from "./context";
import { defineRoute, type AnyRouteSpec, type Reply } from "./define";

/** Remembers who asked for the submission (so only they may read it) and answers 202 with it. */
export function accepted(ctx: RouteContext, principal: Principal, caseId: string, submission: Submission): Reply {
  ctx.owners.record(submission.id, principal.id, caseId);
  return { status: 202, body: submissionView(submission), headers: { Location: `/submissions/${submission.id}` } };
}

export function submissionRoutes(ctx: RouteContext): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "get",
      path: "/submissions/:id",
      tag: "submissions",
      summary: "The state of one of the caller's own submissions",
      description:
        "A submission from a POST (or DELETE) of the caller's, followed through pending, sent, mined to confirmed or failed. Anyone else's: 404.",
      auth: true,
      params: SubmissionParams,
      responses: {
        200: { description: "The submission", schema: SubmissionResponse },
        404: { description: "No such submission of the caller's", schema: ErrorResponse },
      },
      handler: ({ params, principal }) => {
        const id = Number(params.id);
        const submission = ctx.owners.ownerOf(id) === principal.id ? ctx.engine.submission(id) : null;
        if (!submission) throw notFound(`no submission ${params.id} of yours`);
        return { status: 200, body: submissionView(submission) };
      },
    }),
  ];
}
