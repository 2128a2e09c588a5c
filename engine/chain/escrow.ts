/**
 * The contract binding: typechain's typed `MortgageEscrow`, and the one place where a revert becomes a typed
 * error. Business logic sees `ContractRevertError` with the custom error's name and arguments, never raw
 * revert data.
 */
import { Interface, LogDescription, isError, type ContractRunner, type EventFragment } from "ethers";
import { MortgageEscrow__factory, type MortgageEscrow } from "../../typechain-types";
import { ChainUnavailableError, ContractRevertError, EngineError } from "../errors";

export type { MortgageEscrow };

export const escrowInterface: Interface = MortgageEscrow__factory.createInterface();

/**
 * The escrow's events by topic. ethers' `parseLog` finds an event by recomputing every fragment's topic hash
 * (a keccak each) for every log; with this map a log costs one lookup and its decoding.
 */
const eventsByTopic: ReadonlyMap<string, EventFragment> = new Map(
  escrowInterface.fragments.filter((f): f is EventFragment => f.type === "event").map((f) => [f.topicHash, f]),
);

/** Decodes one of the escrow's logs; null for a log that is not one of its events (or does not decode). */
export function parseEscrowLog(log: { topics: readonly string[]; data: string }): LogDescription | null {
  const fragment = eventsByTopic.get(log.topics[0]);
  if (!fragment) return null;
  try {
    return new LogDescription(
      fragment,
      fragment.topicHash,
      escrowInterface.decodeEventLog(fragment, log.data, log.topics),
    );
  } catch {
    return null;
  }
}

export function connectEscrow(address: string, runner: ContractRunner): MortgageEscrow {
  return MortgageEscrow__factory.connect(address, runner);
}

/** Finds revert data anywhere in an error from ethers or a node (the nesting varies by node and by call). */
function revertDataOf(error: unknown, depth = 0): string | undefined {
  if (depth > 6 || error === null || typeof error !== "object") return undefined;
  const e = error as Record<string, unknown>;
  for (const key of ["data", "revertData"]) {
    const value = e[key];
    if (typeof value === "string" && /^0x[0-9a-fA-F]{8}/.test(value)) return value;
  }
  for (const key of ["error", "info", "cause", "data"]) {
    const found = revertDataOf(e[key], depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * Turns an error from a call or a send into an `EngineError`: the contract's custom error decoded (or an
 * undecodable revert), or a `ChainUnavailableError` for transport faults, which may be retried.
 */
export function decodeChainError(error: unknown): EngineError {
  if (error instanceof EngineError) return error;
  const data = revertDataOf(error);
  if (data) {
    const parsed = (() => {
      try {
        return escrowInterface.parseError(data);
      } catch {
        return null;
      }
    })();
    if (parsed) return new ContractRevertError(parsed.name, [...parsed.args], error);
    return new ContractRevertError("unknown", [data], error);
  }
  if (isError(error, "CALL_EXCEPTION")) {
    // ethers reports every failed call or gas estimate as CALL_EXCEPTION, a dropped connection included:
    // without revert data, and with a node message that is not about a revert, it is a fault to retry.
    const e = error as { info?: { error?: { message?: unknown } }; error?: { message?: unknown } };
    const nodeMessage = e.info?.error?.message ?? e.error?.message;
    if (typeof nodeMessage === "string" && !/revert/i.test(nodeMessage)) {
      return new ChainUnavailableError(`the chain did not answer: ${nodeMessage}`, error);
    }
    return new ContractRevertError("unknown", [], error);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ChainUnavailableError(`the chain did not answer: ${message}`, error);
}
