/**
 * `GET /me`: who the token is. The page needs the caller's address to know which parties' buttons are its
 * own; a bank's system can check its token with it.
 */
import { MeResponse } from "../schemas";
import { defineRoute, type AnyRouteSpec } from "./define";

export function meRoutes(): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "get",
      path: "/me",
      tag: "meta",
      summary: "The principal the token belongs to",
      auth: true,
      responses: { 200: { description: "The caller", schema: MeResponse } },
      handler: ({ principal }) => ({
        status: 200,
        body: { id: principal.id, name: principal.name, role: principal.role, address: principal.address },
      }),
    }),
  ];
}
