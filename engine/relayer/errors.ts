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
      `the relayer's account ${address} is out of funds: it holds ${balance} wei and needs ${needed} wei ` +
        `for its next transaction (short by ${shortfall} wei); send it funds and it resumes by itself`,
      {
        cause,
        retryable: true,
        details: { address, balance: balance.toString(), needed: needed.toString(), shortfall: shortfall.toString() },
      },
    );
  }
}
