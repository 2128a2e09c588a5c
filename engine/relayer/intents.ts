/**
 * Intents in canonical form (so "the same request" can be compared byte for byte under an idempotency key)
 * and as calldata.
 */
import { getAddress, isHexString, type FunctionFragment } from "ethers";
import { canonicalJson } from "../../workflows/canonical-json";
import { escrowInterface } from "../chain/escrow";
import { InvalidIntentError } from "./errors";
import type { CallIntent, Intent, RelayedSignOffIntent, SignOffMessage } from "./types";

/** The outbox compares intents by these bytes under an idempotency key. */
export { canonicalJson };

/** Checks an intent and puts it in canonical form (checksummed addresses, lower-case hex, decimal strings). */
export function normaliseIntent(intent: Intent): Intent {
  if (intent.kind === "relayed-sign-off") {
    const m = intent.message;
    const message: SignOffMessage = {
      caseId: BigInt(m.caseId).toString(),
      stage: Number(m.stage),
      role: Number(m.role),
      epoch: Number(m.epoch),
      evidence: String(m.evidence).toLowerCase(),
    };
    if (!isHexString(message.evidence, 32)) throw new InvalidIntentError("the evidence must be 32 bytes of hex");
    if (!isHexString(intent.signature)) throw new InvalidIntentError("the signature must be hex");
    const signOff: RelayedSignOffIntent = {
      kind: "relayed-sign-off",
      message,
      signature: intent.signature.toLowerCase(),
    };
    return signOff;
  }
  if (intent.kind === "call") {
    const fragment = escrowInterface.getFunction(intent.method);
    if (!fragment) throw new InvalidIntentError(`the escrow has no function ${intent.method}`);
    if (fragment.constant) throw new InvalidIntentError(`${intent.method} is a view: there is nothing to send`);
    const call: CallIntent = {
      kind: "call",
      from: getAddress(intent.from),
      method: fragment.name,
      args: canonicalArgs(intent),
      ...(intent.value !== undefined && BigInt(intent.value) !== 0n ? { value: BigInt(intent.value).toString() } : {}),
    };
    callData(call); // fails now, not in the worker, when the arguments do not encode
    return call;
  }
  throw new InvalidIntentError(`unknown intent kind ${(intent as { kind: unknown }).kind}`);
}

/** The arguments as JSON says them (bigints as decimal strings); a value JSON cannot say is the caller's error. */
function canonicalArgs(intent: CallIntent): unknown[] {
  try {
    return JSON.parse(canonicalJson(intent.args)) as unknown[];
  } catch (error) {
    throw new InvalidIntentError(`the arguments of ${intent.method} are not JSON: ${(error as Error).message}`, error);
  }
}

export function callData(intent: CallIntent): string {
  try {
    return escrowInterface.encodeFunctionData(intent.method, intent.args);
  } catch (error) {
    throw new InvalidIntentError(`the arguments of ${intent.method} do not encode: ${(error as Error).message}`, error);
  }
}

/** A sign-off's identity on chain, for packing one item where two submissions carry the same signature. */
export function signOffItemKey(intent: RelayedSignOffIntent): string {
  return canonicalJson(intent);
}

const SIGN_OFF_BATCH_SELECTOR = escrowInterface.getFunction("signOffWithSignatures")!.selector;
/** A `SignedSignOff`'s head: five static words and the offset of its signature's bytes. */
const SIGNED_SIGN_OFF_HEAD_BYTES = 6 * 32;
const UINT256_LIMIT = 1n << 256n;

/**
 * The calldata of `signOffWithSignatures` for the given items, in order: the bytes ethers' ABI coder gives
 * (the encoding tests check it), written out word by word; ethers walks the types and copies each value
 * through bytes, about 5 ms of the event loop for a batch of 64.
 */
export function batchCallData(items: readonly RelayedSignOffIntent[]): string {
  const tuples = items.map(signedSignOffTuple);
  const offsets: string[] = [];
  let offset = tuples.length * 32;
  for (const tuple of tuples) {
    offsets.push(word(offset));
    offset += tuple.length / 2;
  }
  return `${SIGN_OFF_BATCH_SELECTOR}${word(32)}${word(tuples.length)}${offsets.join("")}${tuples.join("")}`;
}

function signedSignOffTuple(item: RelayedSignOffIntent): string {
  const m = item.message;
  const evidence = String(m.evidence).toLowerCase();
  if (!/^0x[0-9a-f]{64}$/.test(evidence)) throw new InvalidIntentError("the evidence must be 32 bytes of hex");
  const signature = item.signature.toLowerCase();
  if (!/^0x([0-9a-f]{2})*$/.test(signature)) throw new InvalidIntentError("the signature must be hex bytes");
  const bytes = (signature.length - 2) / 2;
  const padded = signature.slice(2).padEnd(Math.ceil(bytes / 32) * 64, "0");
  return `${uintWord(m.caseId, 256, "caseId")}${uintWord(m.stage, 8, "stage")}${uintWord(m.role, 8, "role")}${uintWord(m.epoch, 8, "epoch")}${evidence.slice(2)}${word(SIGNED_SIGN_OFF_HEAD_BYTES)}${word(bytes)}${padded}`;
}

function uintWord(value: string | number | bigint, bits: number, name: string): string {
  const v = BigInt(value);
  if (v < 0n || v >= (bits === 256 ? UINT256_LIMIT : 1n << BigInt(bits)))
    throw new InvalidIntentError(`${name} ${v} does not fit a uint${bits}`);
  return word(v);
}

function word(value: number | bigint): string {
  return value.toString(16).padStart(64, "0");
}

/** The escrow's functions that act on one case, named by their first argument `caseId`. */
export const CASE_METHODS: readonly string[] = escrowInterface.fragments
  .filter((f) => f.type === "function")
  .map((f) => f as FunctionFragment)
  .filter((f) => !f.constant && f.inputs[0]?.name === "caseId")
  .map((f) => f.name);

/**
 * The case an intent is about, as a decimal string: a sign-off's, or a case method's first argument. Null for
 * an opening (the chain names its case when it is mined) and for calls about no case.
 */
export function caseIdOf(intent: Intent): string | null {
  if (intent.kind === "relayed-sign-off") return intent.message.caseId;
  if (!CASE_METHODS.includes(intent.method)) return null;
  return BigInt(intent.args[0] as string | number).toString();
}
