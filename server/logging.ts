/**
 * One log line per request: method, path (never the query string, which could carry a secret), status,
 * milliseconds and the principal's id. Headers are never logged, so neither is a token.
 */
import pino, { type Logger } from "pino";
import type { RequestHandler } from "express";

export function defaultLogger(): Logger {
  return pino({
    level: process.env.LOG_LEVEL ?? "info",
    redact: { paths: ["req.headers.authorization", "*.authorization", "token", "*.token"], censor: "[redacted]" },
  });
}

export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    // Taken now: routers rewrite req.url while they route.
    const path = req.path;
    // "close" comes once for every response: sent in full, an event stream ended, or a client gone.
    res.once("close", () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = {
        method: req.method,
        path,
        status: res.statusCode,
        ms: Math.round(ms * 10) / 10,
        principal: (res.locals.principalId as string | undefined) ?? null,
      };
      if (res.statusCode >= 500) logger.error(line, "request");
      else logger.info(line, "request");
    });
    next();
  };
}
