/**
 * Fees for EIP-1559 transactions: the first offer, and the bump that replaces a transaction the chain's base
 * fee has outgrown. Nodes accept a replacement for the same nonce only if both fees rise by at least 10%.
 */
export interface Fees {
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

/** Raises `value` by `percent`, rounding up, and by at least one wei. */
export function raiseBy(value: bigint, percent: number): bigint {
  const raised = (value * BigInt(100 + percent) + 99n) / 100n;
  return raised > value ? raised : value + 1n;
}

/**
 * The fees that replace `previous`: each at least `percent` higher, and at least what a fresh transaction
 * would offer (twice the next base fee plus the tip), so the replacement is not stuck as well.
 */
export function bumpedFees(previous: Fees, percent: number, nextBaseFee: bigint, suggestedPriority: bigint): Fees {
  if (percent < 10) throw new RangeError("a replacement must raise its fees by at least 10%");
  const priority = max(raiseBy(previous.maxPriorityFeePerGas, percent), suggestedPriority);
  const maxFee = max(raiseBy(previous.maxFeePerGas, percent), nextBaseFee * 2n + priority);
  return { maxFeePerGas: maxFee, maxPriorityFeePerGas: priority };
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
