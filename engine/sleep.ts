/**
 * A promise that settles after `ms` milliseconds: the engine's one way to wait a fixed time between tries
 * (a loop that must also be woken early is a `PollingLoop`).
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
