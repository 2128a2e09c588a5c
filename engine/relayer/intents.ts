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
    const signOff: RelayedSignOffIntent = { kind: "relayed-sign-off", message, signature: intent.signature.toLowerCase() };
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

/** The calldata of `signOffWithSignatures` for the given items, in order. */
export function batchCallData(items: readonly RelayedSignOffIntent[]): string {
  return escrowInterface.encodeFunctionData("signOffWithSignatures", [
    items.map((i) => ({
      caseId: i.message.caseId,
      stage: i.message.stage,
      role: i.message.role,
      epoch: i.message.epoch,
      evidence: i.message.evidence,
      signature: i.signature,
    })),
  ]);
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
