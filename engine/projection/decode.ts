/**
 * A raw log of the escrow becomes a `ChainEvent`: its name and named arguments (nested structs as objects,
 * bigints and enums as decimal strings), so that what is stored is JSON and nothing downstream sees ethers.
 *
 * Every event of the escrow has only static arguments (integers, enums, addresses, bools, bytes32, a struct
 * of those), so each argument is one topic or one 32-byte word of the data at a fixed place: such events are
 * decoded here word by word, giving exactly what ethers' `decodeEventLog` gives (test/engine/encoding.test.ts
 * compares them), at a fraction of its cost (ethers' decoding would be the largest single cost of following
 * the chain). An event with a dynamic argument, or a log that does not fit its event, goes through ethers.
 */
import { Result, getAddress, type EventFragment, type ParamType } from "ethers";
import { escrowInterface, parseEscrowLog } from "../chain/escrow";
import type { ChainEvent, JsonValue } from "./event-log";

/** What `decodeLog` needs of a log: ethers' `Log`, or a raw JSON-RPC log with its numbers parsed. */
export interface RawLog {
  blockNumber: number;
  blockHash: string;
  /** The log's index in its block. */
  index: number;
  transactionHash: string;
  topics: readonly string[];
  data: string;
  removed?: boolean;
}

function toJson(value: unknown): JsonValue {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Result) return toJson(value.toObject(true));
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return value as JsonValue;
}

/** Reads one 32-byte word (64 hex digits, no 0x) as the JSON of a static elementary type; undefined if unsupported. */
type WordReader = (word: string) => JsonValue;

const checksummed = new Map<string, string>();
function address(word: string): string {
  const lower = `0x${word.slice(24)}`;
  let found = checksummed.get(lower);
  if (found === undefined) {
    if (/[^0]/.test(word.slice(0, 24))) throw new RangeError("not an address");
    found = getAddress(lower);
    if (checksummed.size > 100_000) checksummed.clear();
    checksummed.set(lower, found);
  }
  return found;
}

function readerOf(type: ParamType): WordReader | undefined {
  const t = type.baseType;
  let m: RegExpExecArray | null;
  if ((m = /^uint(\d*)$/.exec(t))) {
    const bits = m[1] === "" ? 256 : Number(m[1]);
    const max = (1n << BigInt(bits)) - 1n;
    return (w) => {
      const v = BigInt(`0x${w}`);
      if (v > max) throw new RangeError("out of range");
      return v.toString();
    };
  }
  if (t === "address") return address;
  if (t === "bool") {
    return (w) => {
      const v = BigInt(`0x${w}`);
      if (v > 1n) throw new RangeError("not a bool");
      return v === 1n;
    };
  }
  if ((m = /^bytes(\d+)$/.exec(t))) {
    const size = Number(m[1]);
    return (w) => {
      if (size < 32 && /[^0]/.test(w.slice(size * 2))) throw new RangeError("dirty bytes");
      return `0x${w.slice(0, size * 2).toLowerCase()}`;
    };
  }
  return undefined;
}

/** A decoder for the event's arguments, or undefined if one of them is not static (ethers decodes those). */
type ArgsDecoder = (topics: readonly string[], data: string) => Record<string, JsonValue>;

interface Slot {
  name: string;
  /** A word reader, or the named members of a static struct. */
  read: WordReader | Array<{ name: string; read: WordReader }>;
}

function decoderOf(fragment: EventFragment): ArgsDecoder | undefined {
  const indexed: Slot[] = [];
  const data: Slot[] = [];
  let words = 0;
  for (const input of fragment.inputs) {
    let read: Slot["read"] | undefined;
    if (input.baseType === "tuple") {
      const members = input.components?.map((c) => ({ name: c.name, read: readerOf(c) }));
      if (!members || members.some((c) => c.read === undefined || c.name === "") || input.indexed) return undefined;
      read = members as Array<{ name: string; read: WordReader }>;
    } else {
      read = readerOf(input);
    }
    if (read === undefined || input.name === "") return undefined;
    if (input.indexed) indexed.push({ name: input.name, read });
    else {
      data.push({ name: input.name, read });
      words += Array.isArray(read) ? read.length : 1;
    }
  }
  return (topics, hex) => {
    if (topics.length !== indexed.length + 1 || hex.length !== 2 + words * 64)
      throw new RangeError("the log does not fit its event");
    const args: Record<string, JsonValue> = {};
    // Arguments in their declared order, as ethers' `toObject` lists them.
    const values = new Map<string, JsonValue>();
    indexed.forEach((slot, i) => values.set(slot.name, (slot.read as WordReader)(topics[i + 1].slice(2))));
    let at = 2;
    for (const slot of data) {
      if (Array.isArray(slot.read)) {
        const struct: Record<string, JsonValue> = {};
        for (const member of slot.read) {
          struct[member.name] = member.read(hex.slice(at, at + 64));
          at += 64;
        }
        values.set(slot.name, struct);
      } else {
        values.set(slot.name, slot.read(hex.slice(at, at + 64)));
        at += 64;
      }
    }
    for (const input of fragment.inputs) args[input.name] = values.get(input.name) as JsonValue;
    return args;
  };
}

const decoders = new Map<string, { name: string; decode: ArgsDecoder | undefined }>(
  escrowInterface.fragments
    .filter((f): f is EventFragment => f.type === "event")
    .map((f) => [f.topicHash, { name: f.name, decode: decoderOf(f) }]),
);

/** The event's name and arguments as JSON, through ethers (the reference, and the way for dynamic arguments). */
export function decodeWithEthers(log: {
  topics: readonly string[];
  data: string;
}): { name: string; args: Record<string, JsonValue> } | null {
  const parsed = parseEscrowLog(log);
  if (!parsed) return null;
  return { name: parsed.name, args: toJson(parsed.args.toObject(true)) as Record<string, JsonValue> };
}

/** The event's name and arguments as JSON; null for a log that is not one of the escrow's events. */
export function decodeEscrowEvent(log: {
  topics: readonly string[];
  data: string;
}): { name: string; args: Record<string, JsonValue> } | null {
  const known = log.topics.length > 0 ? decoders.get(log.topics[0]) : undefined;
  if (!known) return null;
  if (known.decode) {
    try {
      return { name: known.name, args: known.decode(log.topics, log.data) };
    } catch {
      // Not as the event says (a foreign contract's log under the same topic): ethers decides.
    }
  }
  return decodeWithEthers(log);
}

/** Decodes one log; null for a log that is not one of the escrow's events. */
export function decodeLog(log: RawLog, blockTime: number): ChainEvent | null {
  const decoded = decodeEscrowEvent(log);
  if (!decoded) return null;
  const { name, args } = decoded;
  const caseId = typeof args.caseId === "string" ? args.caseId : null;
  return {
    blockNumber: log.blockNumber,
    blockHash: log.blockHash,
    logIndex: log.index,
    txHash: log.transactionHash,
    blockTime,
    caseId,
    name,
    args,
  };
}
