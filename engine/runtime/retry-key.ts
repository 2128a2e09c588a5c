/**
 * The idempotency key an action goes under when an earlier submission of the same action failed: `base`
 * while it holds no failed submission, else the first of `base:again-1`, `base:again-2`, ... that holds none.
 * A failed submission had no effect on chain, so it must not hold the key for good: the same action asked
 * again is tried again, while one still on its way (or done) is still found under its key.
 */
import type { Outbox } from "../relayer/outbox";

export function keyPastFailures(outbox: Pick<Outbox, "getByKey">, base: string): string {
  for (let attempt = 0; ; attempt += 1) {
    const key = attempt === 0 ? base : `${base}:again-${attempt}`;
    if (outbox.getByKey(key)?.status !== "failed") return key;
  }
}
