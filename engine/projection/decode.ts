/**
 * A raw log of the escrow becomes a `ChainEvent`: its name and named arguments (nested structs as objects,
 * bigints and enums as decimal strings), so that what is stored is JSON and nothing downstream sees ethers.
 */
import { Result, type Log } from "ethers";
import { parseEscrowLog } from "../chain/escrow";
import type { ChainEvent, JsonValue } from "./event-log";

function toJson(value: unknown): JsonValue {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Result) return toJson(value.toObject(true));
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return value as JsonValue;
}

/** Decodes one log; null for a log that is not one of the escrow's events. */
export function decodeLog(log: Log, blockTime: number): ChainEvent | null {
  const parsed = parseEscrowLog(log);
  if (!parsed) return null;
  const args = toJson(parsed.args.toObject(true)) as Record<string, JsonValue>;
  const caseId = typeof args.caseId === "string" ? args.caseId : null;
  return {
    blockNumber: log.blockNumber,
    blockHash: log.blockHash,
    logIndex: log.index,
    txHash: log.transactionHash,
    blockTime,
    caseId,
    name: parsed.name,
    args,
  };
}
