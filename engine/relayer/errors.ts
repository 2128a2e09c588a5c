import { decodeChainError } from "../chain/escrow";
import { EngineError } from "../errors";

/** The idempotency key was used before for a different intent: the caller reused a key by mistake. */
export class IdempotencyConflictError extends EngineError {
  constructor(key: string, existingId: number) {
    super("IDEMPOTENCY_CONFLICT", `the idempotency key "${key}" was already used for a different request`, {
      details: { idempotencyKey: key, submissionId: existingId },
    });
  }
}

/** The intent cannot become a transaction (unknown function, arguments that do not encode, unknown key). */
export class InvalidIntentError extends EngineError {
  constructor(message: string, cause?: unknown) {
    super("INVALID_INTENT", message, { cause });
  }
}

/**
 * A sender cannot pay for its next transaction. The relayer pauses that sender without consuming a nonce and
 * resumes by itself once the balance suffices.
 */
export class RelayerOutOfFundsError extends EngineError {
  constructor(address: string, balance: bigint, needed: bigint, cause?: unknown) {
    const shortfall = needed > balance ? needed - balance : 0n;
    super(
      "RELAYER_OUT_OF_FUNDS",
      `the account ${address}, a key the engine sends from, cannot pay for its next transaction: it holds ${balance} wei ` +
        `and needs ${needed} wei (value and gas; short by ${shortfall} wei); it waits, and sends once the account is funded`,
      {
        cause,
        retryable: true,
        details: { address, balance: balance.toString(), needed: needed.toString(), shortfall: shortfall.toString() },
      },
    );
  }
}

/** Any error a poll meets as an EngineError: the node's own errors decoded, the engine's kept. */
export function toEngineError(error: unknown): EngineError {
  return error instanceof EngineError ? error : decodeChainError(error);
}
