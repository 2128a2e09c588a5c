/**
 * Bearer tokens on each request: `Authorization: Bearer msk_...`. A missing, malformed, unknown or revoked
 * token is a 401, and the principal is looked up on every request (no cache), so a revocation made by
 * `npm run principal -- revoke` in another process counts at once.
 */
import type { Request } from "express";
import { unauthenticated } from "../errors";
import type { Principal, PrincipalStore } from "./principals";

/** The token of the Authorization header, or null when there is none or it is not a bearer token. */
export function bearerTokenOf(req: Request): string | null {
  const header = req.headers.authorization;
  if (typeof header !== "string") return null;
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return match ? match[1] : null;
}

/** The calling principal, or a 401. */
export function authenticate(principals: PrincipalStore, req: Request): Principal {
  const token = bearerTokenOf(req);
  if (token === null)
    throw unauthenticated(
      req.headers.authorization === undefined
        ? "a bearer token is required"
        : 'the Authorization header must be "Bearer <token>"',
    );
  const principal = principals.authenticate(token);
  if (!principal) throw unauthenticated("the token is unknown or revoked");
  return principal;
}
