/**
 * The API's errors: one class, one body shape `{ error: { code, message, details } }`, and the one place
 * where the engine's error codes become HTTP statuses. Nothing else in the server picks a status for an
 * engine error, and no answer ever carries a stack trace.
 */
import type { ErrorRequestHandler, RequestHandler } from "express";
import type { Logger } from "pino";
import { z } from "zod";
import { EngineError, type EngineErrorCode } from "../engine";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export const unauthenticated = (message = "a valid bearer token is required") =>
  new ApiError(401, "UNAUTHENTICATED", message, undefined, { "WWW-Authenticate": 'Bearer realm="mortgage-signoff"' });
export const forbidden = (message: string, details?: unknown) => new ApiError(403, "FORBIDDEN", message, details);
export const notFound = (message: string, details?: unknown) => new ApiError(404, "NOT_FOUND", message, details);
export const conflict = (message: string, details?: unknown) => new ApiError(409, "CONFLICT", message, details);
export const badRequest = (message: string, details?: unknown) =>
  new ApiError(400, "VALIDATION_FAILED", message, details);

/**
 * The engine's codes and their statuses, every code named (a new one is a compile error until it has its
 * status). `null`: the server's own fault, answered with the generic 500 that tells the client nothing.
 */
const ENGINE_STATUS: Record<EngineErrorCode, number | null> = {
  NOT_FOUND: 404,
  FORBIDDEN: 403,
  CONFLICT: 409,
  TOO_EARLY: 409,
  INVALID_REQUEST: 400,
  NOT_SUPPORTED: 422,
  IDEMPOTENCY_CONFLICT: 409,
  CHAIN_UNAVAILABLE: 503,
  // The contract refused what the engine's checks let through (a race with another engine): a state conflict.
  CONTRACT_REVERTED: 409,
  // In the outbox but not settled in time (openCase waits for the chain): retry with the same Idempotency-Key.
  TIMEOUT: 503,
  NOT_RUNNING: 503,
  ENGINE_STOPPED: 503,
  // The sender's key cannot pay for gas: the relayer paused it, consumed no nonce, and resumes once funded.
  RELAYER_OUT_OF_FUNDS: 503,
  INVALID_INTENT: null,
  CHAIN_MOVED: null,
  RELAYER_DRAIN_TIMEOUT: null,
  CONFIG_INVALID: null,
  INTERNAL: null,
};

/** A zod failure as the 400 answer: the flattened field errors as details. */
export function validationError(where: "params" | "query" | "body" | "headers", error: z.ZodError): ApiError {
  const flat = z.flattenError(error);
  return badRequest(`the request's ${where} ${where === "body" || where === "query" ? "is" : "are"} not valid`, {
    in: where,
    formErrors: flat.formErrors,
    fieldErrors: flat.fieldErrors,
  });
}

/** Turns anything thrown into an ApiError; unknown errors become a generic 500 (logged by the caller). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof EngineError) {
    const status = ENGINE_STATUS[error.code];
    if (status !== null) {
      const details =
        error.code === "TOO_EARLY" ? { availableAt: null, waitsFor: null, ...error.details } : error.details;
      return new ApiError(status, error.code, error.message, details, status === 503 ? { "Retry-After": "5" } : {});
    }
  }
  const http = httpErrorOf(error);
  if (http) return http;
  return new ApiError(500, "INTERNAL", "something went wrong on the server; it has been logged");
}

/** Errors that Express's body parser throws: malformed JSON, a body too large, a wrong charset. */
function httpErrorOf(error: unknown): ApiError | null {
  if (typeof error !== "object" || error === null) return null;
  const e = error as { status?: unknown; type?: unknown; expose?: unknown; message?: unknown };
  if (typeof e.status !== "number" || e.status < 400 || e.status >= 500) return null;
  if (e.type === "entity.too.large") return new ApiError(413, "PAYLOAD_TOO_LARGE", "the request body is too large");
  if (e.type === "entity.parse.failed") return badRequest("the request body is not valid JSON", { in: "body" });
  if (e.type === "encoding.unsupported" || e.type === "charset.unsupported")
    return new ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "the body's encoding or charset is not supported");
  if (e.status === 400) return badRequest("the request could not be read (a bad percent-encoding in its path, say)");
  return new ApiError(
    e.status,
    "HTTP_ERROR",
    e.expose === true && typeof e.message === "string" ? e.message : "the request was refused",
  );
}

export function errorBody(error: ApiError): ErrorBody {
  return {
    error:
      error.details === undefined
        ? { code: error.code, message: error.message }
        : { code: error.code, message: error.message, details: error.details },
  };
}

export function sendError(res: Parameters<RequestHandler>[1], error: ApiError): void {
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res.status(error.status).json(errorBody(error));
}

/** The one error middleware: maps, logs the unexpected with its stack (to the log, never the client), answers. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) return next(error);
    const api = toApiError(error);
    if (api.status >= 500) logger.error({ err: error, method: req.method, path: req.path }, "request failed");
    sendError(res, api);
  };
}

/** The last route: anything not matched is a 404 in the error shape. */
export const unknownRoute: RequestHandler = (req, _res, next) => {
  next(notFound(`no route ${req.method} ${req.path}`));
};
