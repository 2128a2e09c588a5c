/**
 * `createApp(engine, options)`: the Express 5 app of the HTTP API, without `listen` (server/main.ts and the
 * tests listen). Order of the layers: request log, security headers, the page's own files (before the rate
 * limit, so that no limit keeps the page from loading), rate limit, strict media type (a body must be
 * application/json: else 415), JSON body (64 kB), the routes (each authenticates, validates and honours
 * Idempotency-Key itself, see routes/define.ts), then 404 and the one error middleware.
 */
import express from "express";
import type { Logger } from "pino";
import { PrincipalStore } from "./auth/principals";
import { errorHandler, unknownRoute } from "./errors";
import { IdempotencyStore } from "./idempotency";
import { defaultLogger, requestLog } from "./logging";
import { requireJsonBody } from "./media-type";
import { buildOpenApi } from "./openapi";
import { DEFAULT_RATE_LIMITS, rateLimit, type RateLimits } from "./rate-limit";
import { amendmentRoutes } from "./routes/amendments";
import { caseRoutes } from "./routes/cases";
import type { RouteContext, ServerEngine } from "./routes/context";
import { defineRoute, mount, type AnyRouteSpec, type Reply } from "./routes/define";
import { devClockRoutes } from "./routes/dev-clock";
import { meRoutes } from "./routes/me";
import { eventRoutes } from "./routes/events";
import { moneyRoutes } from "./routes/money";
import { publicRoutes } from "./routes/public";
import { signOffRoutes } from "./routes/sign-offs";
import { submissionRoutes } from "./routes/submissions";
import { uiRoutes } from "./routes/ui";
import { securityHeaders } from "./security";
import { CaseStreams } from "./sse";
import { SubmissionOwners } from "./store";
import { ProgressCache } from "./progress-cache";
import { webhookRoutes } from "./webhooks/routes";
import { WebhookService, type WebhookSettings } from "./webhooks/service";
import { Worklist } from "./worklist";
import { withNames } from "./case-names";
import { pageRoutes } from "./routes/page-settings";
import type { DisplaySettings } from "./settings";
import type { CaseProgress } from "../engine";

export type { ServerEngine } from "./routes/context";

export interface AppOptions {
  principals: PrincipalStore;
  /** Per token, and per address for requests without one (`anonymous`); default 600 and 6000 a minute. */
  rateLimit?: RateLimits;
  /** True only on the embedded chain: enables POST /dev/clock. */
  devClock?: boolean;
  /**
   * On the embedded chain: writes the chain's state to disk, resolving once it is there. POST /dev/clock answers
   * only after it, so that a move it answered survives a kill.
   */
  saveChain?: () => Promise<void>;
  /** Default: pino to stdout, its level from LOG_LEVEL. */
  logger?: Logger;
  /** The event streams' heartbeat; default 15 s. */
  heartbeatMs?: number;
  /** Largest JSON body accepted; default 64 kB. */
  bodyLimit?: string;
  /** The webhooks' timings and URL policy (server/webhooks/service.ts has the defaults). */
  webhooks?: Partial<WebhookSettings>;
  /** The case page's indicative display currency (DISPLAY_CURRENCY, DISPLAY_RATE); default none. */
  display?: DisplaySettings;
}

export type App = express.Express & {
  /** Ends every event stream (before the server closes: open streams would keep it waiting), and stops the webhooks. */
  closeStreams(): void;
  /** The webhooks' dispatcher and deliveries, running from createApp until closeStreams. */
  webhooks: WebhookService;
  /** The declared routes, as the OpenAPI document lists them. */
  routes: readonly AnyRouteSpec[];
};

const OPENAPI_INFO = { title: "Mortgage sign-off engine", version: "1.0.0" };

export function createApp(engine: ServerEngine, options: AppOptions): App {
  const logger = options.logger ?? defaultLogger();
  const named = (progress: CaseProgress) => withNames(progress, options.principals);
  const ctx: RouteContext = {
    engine,
    principals: options.principals,
    idempotency: new IdempotencyStore(options.principals.db),
    owners: new SubmissionOwners(options.principals.db),
    progress: new ProgressCache(engine, named),
    worklist: new Worklist(engine, named),
    logger,
    devClock: options.devClock ?? false,
    saveChain: options.saveChain ?? null,
  };
  const streams = new CaseStreams(engine, {
    heartbeatMs: options.heartbeatMs ?? 15_000,
    logger,
    stillAllowed: (principalId) => {
      const principal = options.principals.get(principalId);
      return principal !== null && principal.revokedAt === null;
    },
    present: named,
  });

  const webhooks = new WebhookService(engine, options.principals, options.webhooks ?? {}, logger);

  const routes: AnyRouteSpec[] = [
    ...publicRoutes(ctx),
    ...meRoutes(),
    ...caseRoutes(ctx),
    ...eventRoutes(ctx, streams),
    ...signOffRoutes(ctx),
    ...moneyRoutes(ctx),
    ...amendmentRoutes(ctx),
    ...submissionRoutes(ctx),
    ...devClockRoutes(ctx),
    ...webhookRoutes(webhooks),
    ...pageRoutes(ctx, options.display ?? { currency: null }),
  ];
  let document: Record<string, unknown> | undefined;
  const openApiRoute: AnyRouteSpec = defineRoute({
    method: "get",
    path: "/openapi.json",
    tag: "meta",
    summary: "This document",
    auth: false,
    responses: { 200: { description: "The OpenAPI 3.1 document" } },
    handler: (): Reply => ({ status: 200, body: (document ??= buildOpenApi([...routes, openApiRoute], OPENAPI_INFO)) }),
  });
  const documented = [...routes, openApiRoute];

  const app = express() as App;
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use(requestLog(logger));
  app.use(securityHeaders());
  app.use(uiRoutes());
  app.use(rateLimit(options.rateLimit ?? DEFAULT_RATE_LIMITS));
  app.use(requireJsonBody());
  app.use(express.json({ limit: options.bodyLimit ?? "64kb" }));

  const router = express.Router();
  for (const route of documented) {
    // The dev clock exists only on the embedded chain; elsewhere its path is a plain 404.
    if (route.path === "/dev/clock" && !ctx.devClock) continue;
    mount(router, route, ctx);
  }
  app.use(router);
  app.use(unknownRoute);
  app.use(errorHandler(logger));

  app.closeStreams = () => {
    webhooks.stop();
    streams.closeAll();
  };
  app.webhooks = webhooks;
  app.routes = documented;
  return app;
}
