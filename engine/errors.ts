/**
 * The engine's errors: one base class with a stable `code` that callers (the HTTP layer) map to a status in
 * one place, the `cause` that led to it, and whether trying again may succeed.
 */

/** Every code an `EngineError` may carry: a union, so the server's status map must name each one. */
export const ENGINE_ERROR_CODES = [
  "NOT_FOUND",
  "FORBIDDEN",
  "CONFLICT",
  "TOO_EARLY",
  "INVALID_REQUEST",
  "NOT_SUPPORTED",
  "IDEMPOTENCY_CONFLICT",
  "INVALID_INTENT",
  "CONTRACT_REVERTED",
  "CHAIN_UNAVAILABLE",
  "CHAIN_MOVED",
  "TIMEOUT",
  "NOT_RUNNING",
  "ENGINE_STOPPED",
  "RELAYER_OUT_OF_FUNDS",
  "RELAYER_DRAIN_TIMEOUT",
  "CONFIG_INVALID",
  "INTERNAL",
] as const;

export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[number];

/** A code read back from storage (a submission's error) is one of ours only if it is in the list. */
export function isEngineErrorCode(code: string): code is EngineErrorCode {
  return (ENGINE_ERROR_CODES as readonly string[]).includes(code);
}

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  readonly retryable: boolean;
  readonly details?: Record<string, unknown>;

  constructor(
    code: EngineErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean; details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

/** A configuration value is missing or wrong: the engine does not start. */
export class ConfigError extends EngineError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("CONFIG_INVALID", message, { details });
  }
}

/** The chain refused a call with one of the contract's custom errors (decoded), or reverted without one. */
export class ContractRevertError extends EngineError {
  /** The custom error's name, e.g. "MortgageEscrowAlreadySignedOff"; "unknown" when the data did not decode. */
  readonly errorName: string;
  readonly args: readonly unknown[];

  constructor(errorName: string, args: readonly unknown[], cause?: unknown) {
    super("CONTRACT_REVERTED", `the contract refused: ${errorName}(${args.map(String).join(", ")})`, {
      cause,
      details: { error: errorName, args: args.map((a) => (typeof a === "bigint" ? a.toString() : a)) },
    });
    this.errorName = errorName;
    this.args = args;
  }
}

/** The node could not be reached or answered with an error that is not the contract's: try again later. */
export class ChainUnavailableError extends EngineError {
  constructor(message: string, cause?: unknown) {
    super("CHAIN_UNAVAILABLE", message, { cause, retryable: true });
  }
}
