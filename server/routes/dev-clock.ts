/**
 * `POST /dev/clock`: moves the embedded chain's clock forward so that a case walks through its waiting
 * periods in seconds. Mounted only on the embedded chain (`devClock`); elsewhere the path does not exist.
 * The answer waits for the chain's state to be on disk (`saveChain`): a move answered 200 outlives a kill -9,
 * where the periodic save (every second) could miss it and the chain's time would go back.
 */
import { forbidden } from "../errors";
import { isOperator } from "../auth/case-access";
import { ClockBody, ClockResponse, ErrorResponse } from "../schemas";
import type { RouteContext } from "./context";
import { defineRoute, type AnyRouteSpec } from "./define";

export function devClockRoutes(ctx: RouteContext): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "post",
      path: "/dev/clock",
      tag: "dev",
      summary: "Move the embedded chain's clock forward (the operator; embedded chain only)",
      description: "404 when the server runs against an external chain.",
      auth: true,
      body: ClockBody,
      responses: {
        200: { description: "The chain's time after the move", schema: ClockResponse },
        403: { description: "Not the operator", schema: ErrorResponse },
        404: { description: "Not on the embedded chain", schema: ErrorResponse },
      },
      handler: async ({ body, principal }) => {
        if (!isOperator(principal)) throw forbidden("only the operator moves the dev clock");
        const moved = await ctx.engine.increaseTime(body.seconds);
        await ctx.saveChain?.();
        return { status: 200, body: moved };
      },
    }),
  ];
}
