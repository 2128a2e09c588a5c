/**
 * One route, declared once: its method and path, who may call it, the zod schema of each request part and
 * its answers. `mount` turns the declaration into an Express handler (authenticate, validate, honour the
 * Idempotency-Key, call the thin handler, answer), and the same declaration feeds the OpenAPI document, so
 * the document can't drift from what the server checks.
 */
import type { Request, Response, Router } from "express";
import type { z } from "zod";
import { authenticate } from "../auth/middleware";
import type { Principal } from "../auth/principals";
import { ApiError, validationError } from "../errors";
import { requestHash } from "../idempotency";
import { IdempotencyKeyHeader } from "../schemas";
import type { RouteContext } from "./context";

type Schema = z.ZodType;
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface Reply {
  status: number;
  body: unknown;
  /** The body already serialised as JSON (sent as is, instead of `body`). */
  raw?: string;
  headers?: Record<string, string>;
}

export interface HandlerInput<P, Q, B, A extends boolean> {
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
  principal: A extends true ? Principal : Principal | null;
  /** The Idempotency-Key header if given, prefixed with the principal's id: the engine's own idempotency key. */
  engineKey: string | undefined;
  req: Request;
  res: Response;
}

export interface RouteSpec<
  P extends Schema | undefined,
  Q extends Schema | undefined,
  B extends Schema | undefined,
  A extends boolean,
> {
  method: "get" | "post" | "delete";
  /** Express syntax: /cases/:id */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  /** Whether a bearer token is required. */
  auth: A;
  params?: P;
  query?: Q;
  body?: B;
  /** Request headers the route reads besides Authorization and Idempotency-Key (for the OpenAPI document). */
  headers?: Array<{ name: string; description: string; schema: Schema }>;
  responses: Record<number, { description: string; schema?: Schema; contentType?: string }>;
  /** Returns the answer, or undefined when it answered itself (the event stream). */
  handler: (input: HandlerInput<P, Q, B, A>) => Reply | undefined | Promise<Reply | undefined>;
}

// The specs are kept loosely typed once declared: only `mount` and the OpenAPI builder read them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRouteSpec = RouteSpec<any, any, any, boolean>;

export function defineRoute<
  P extends Schema | undefined = undefined,
  Q extends Schema | undefined = undefined,
  B extends Schema | undefined = undefined,
  A extends boolean = true,
>(spec: RouteSpec<P, Q, B, A>): AnyRouteSpec {
  return spec as AnyRouteSpec;
}

/** Whether a method changes something: these honour Idempotency-Key. */
function isMutation(method: string): boolean {
  return method === "post" || method === "delete";
}

export function mount(router: Router, spec: AnyRouteSpec, ctx: RouteContext): void {
  router[spec.method](spec.path, async (req: Request, res: Response) => {
    const principal = spec.auth ? authenticate(ctx.principals, req) : null;
    res.locals.principalId = principal?.id;
    const params = parse(spec.params, req.params, "params");
    const query = parse(spec.query, req.query, "query");
    const body = spec.body ? parse(spec.body, req.body ?? {}, "body") : undefined;

    const rawKey = req.headers["idempotency-key"];
    let key: string | undefined;
    if (rawKey !== undefined && isMutation(spec.method) && principal) {
      const checked = IdempotencyKeyHeader.safeParse(Array.isArray(rawKey) ? rawKey[0] : rawKey);
      if (!checked.success) throw validationError("headers", checked.error);
      key = checked.data;
    }
    const input = {
      params,
      query,
      body,
      principal,
      engineKey: key && principal ? `${principal.id}:${key}` : undefined,
      req,
      res,
    } as HandlerInput<unknown, unknown, unknown, boolean>;

    if (key === undefined || !principal) {
      send(res, await spec.handler(input));
      return;
    }

    const start = ctx.idempotency.begin(principal.id, key, requestHash(req.method, req.path, req.body ?? null));
    if (start.kind === "replay") {
      const stored = start.body as { body: unknown; headers?: Record<string, string> };
      send(res, {
        status: start.status,
        body: stored.body,
        headers: { ...stored.headers, "Idempotent-Replayed": "true" },
      });
      return;
    }
    if (start.kind === "mismatch") {
      throw new ApiError(
        409,
        "IDEMPOTENCY_CONFLICT",
        "this Idempotency-Key was used with another request (method, path or body): use a new key for a new request",
        { reason: "REQUEST_DIFFERS" },
      );
    }
    if (start.kind === "in-flight") {
      throw new ApiError(
        409,
        "IDEMPOTENCY_CONFLICT",
        "a request with this Idempotency-Key is still in progress: try again shortly",
        { reason: "IN_FLIGHT" },
        { "Retry-After": "1" },
      );
    }
    let reply: Reply | undefined;
    try {
      reply = await spec.handler(input);
    } catch (error) {
      // A refusal had no effect, so the key may be used again; after a fault the engine's own key (the same
      // one on the retry) still keeps what reached its outbox to one submission.
      ctx.idempotency.abandon(principal.id, key);
      throw error;
    }
    if (reply && reply.status < 300)
      ctx.idempotency.finish(principal.id, key, reply.status, {
        body: reply.raw === undefined ? reply.body : JSON.parse(reply.raw),
        headers: reply.headers,
      });
    else ctx.idempotency.abandon(principal.id, key);
    send(res, reply);
  });
}

function parse(schema: Schema | undefined, value: unknown, where: "params" | "query" | "body"): unknown {
  if (!schema) return undefined;
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(where, result.error);
  return result.data;
}

function send(res: Response, reply: Reply | undefined): void {
  if (!reply) return;
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  if (reply.raw !== undefined) res.status(reply.status).type("application/json").send(reply.raw);
  else res.status(reply.status).json(reply.body);
}
