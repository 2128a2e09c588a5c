/**
 * Rate limits per token: a token bucket each, in memory, refilled at `requestsPerMinute` and holding at most
 * `burst`. Requests without a token count against their client's IP instead, under limits of their own
 * (`anonymous`): many people may share one address (an office, a mobile carrier's NAT), so that limit is
 * usually the larger. Over the limit: 429 with Retry-After (whole seconds until a request would be allowed).
 * The page's own files are served before this (server/routes/ui.ts), so no limit ever keeps a page from loading.
 */
import { hashToken } from "./auth/principals";
import type { RequestHandler } from "express";
import { bearerTokenOf } from "./auth/middleware";
import { ApiError } from "./errors";

export interface RateLimitOptions {
  requestsPerMinute: number;
  /** How many requests may come at once after a quiet spell; default a tenth of a minute's worth, at least 10. */
  burst?: number;
}

export interface RateLimits extends RateLimitOptions {
  /** Requests without a token, per client address; default the same as per token. */
  anonymous?: RateLimitOptions;
}

/** As `npm start` has them unless told otherwise (RATE_LIMIT_PER_MINUTE, RATE_LIMIT_ANONYMOUS_PER_MINUTE). */
export const DEFAULT_RATE_LIMITS: RateLimits = { requestsPerMinute: 600, anonymous: { requestsPerMinute: 6_000 } };

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets idle long enough to be full again are dropped when the map grows past this. */
const PRUNE_ABOVE = 10_000;

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  readonly perMs: number;
  readonly burst: number;

  constructor(readonly options: RateLimitOptions) {
    if (!(options.requestsPerMinute > 0))
      throw new Error(`rateLimit.requestsPerMinute must be positive, not ${options.requestsPerMinute}`);
    this.perMs = options.requestsPerMinute / 60_000;
    this.burst = options.burst ?? Math.max(10, Math.ceil(options.requestsPerMinute / 10));
  }

  /** Takes one request from the key's bucket: 0 if allowed, else the milliseconds until one would be. */
  take(key: string, now = Date.now()): number {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= PRUNE_ABOVE) this.prune(now);
      bucket = { tokens: this.burst, at: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.perMs);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - bucket.tokens) / this.perMs);
  }

  private prune(now: number): void {
    const fullAfterMs = this.burst / this.perMs;
    for (const [key, bucket] of this.buckets) if (now - bucket.at >= fullAfterMs) this.buckets.delete(key);
  }
}

export function rateLimit(options: RateLimits): RequestHandler {
  const perToken = new TokenBuckets(options);
  const perAddress = new TokenBuckets(options.anonymous ?? options);
  return (req, _res, next) => {
    const token = bearerTokenOf(req);
    // The token's hash, not the token: nothing in memory that a heap dump could replay.
    const [buckets, key, per] = token
      ? [perToken, `t:${hashToken(token)}`, "token"]
      : [perAddress, `ip:${req.ip}`, "address without a token"];
    const waitMs = buckets.take(key);
    if (waitMs === 0) return next();
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    const limit = `at most ${buckets.options.requestsPerMinute} a minute (bursts of ${buckets.burst}) per ${per}`;
    next(
      new ApiError(
        429,
        "RATE_LIMITED",
        `too many requests: ${limit}`,
        { retryAfterSeconds: seconds },
        { "Retry-After": String(seconds) },
      ),
    );
  };
}
