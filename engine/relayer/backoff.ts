/**
 * The engine's one backoff: after the n-th failure in a row, wait the base, then twice it, four times it...
 * up to a cap. The relayer's worker adds full jitter (a random time between half that delay and all of it),
 * so many engines that lost the same node do not retry in step; the runtime's retries of a case's `advance`
 * or `expire` take the delay as it is, one timer per case, which has no crowd to spread.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/** The capped exponential delay after `failures` failures in a row (0 after none). */
export function exponentialDelay(failures: number, options: BackoffOptions): number {
  if (failures <= 0) return 0;
  return Math.min(options.maxMs, options.baseMs * 2 ** Math.min(failures - 1, 30));
}

/** `exponentialDelay` with full jitter. */
export function backoffDelay(failures: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = exponentialDelay(failures, options);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
