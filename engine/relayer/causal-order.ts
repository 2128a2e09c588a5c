/**
 * The order the contract accepts across all of the relayer's keys, after the chain lost blocks (a
 * reorganisation, a node restored from an older save): nothing about a case before that case's opening,
 * nothing that needs the funds before the deposits, openings in the order of the case ids they were given.
 * Each key's own nonces keep its order; this keeps the order between keys, which the node does not know of.
 *
 * The dependencies come from the intents (`Outbox.blockerOf`): a submission waits while what it depends on is
 * not on chain (pending, or in flight again), and a transaction carrying it is not handed to the node.
 */
import type { Provider } from "ethers";
import type { Outbox } from "./outbox";
import type { Submission } from "./types";

/** How a note of this module that a submission waits begins (to clear it once it no longer does). */
const WAITS_FOR = "waits for ";

export class CausalOrder {
  constructor(
    private readonly outbox: Outbox,
    private readonly provider: Provider,
  ) {}

  /**
   * The pending submissions that may be sent now, in order; each of the others is noted with what it waits
   * for. A sign-off waits only for what it depends on; a call also keeps its place behind every submission of
   * its sender that waits.
   */
  ready(pending: readonly Submission[]): Submission[] {
    const ready: Submission[] = [];
    let waiting = false;
    for (const s of pending) {
      const blocker = this.outbox.blockerOf(s);
      const stale = s.note?.startsWith(WAITS_FOR) ?? false;
      if (blocker) this.outbox.noteWhy(s.id, waitingNote(blocker));
      else if (stale) this.outbox.noteWhy(s.id, null);
      if (blocker) {
        waiting = true;
        continue;
      }
      if (s.kind === "call" && waiting) break;
      ready.push(s);
    }
    return ready;
  }

  /** Whether a transaction carrying `carried` must wait: one of them depends on a submission it does not carry. */
  mustWait(carried: readonly Submission[]): boolean {
    return carried.some((s) => {
      const blocker = this.outbox.blockerOf(s);
      return blocker !== undefined && !carried.some((c) => c.id === blocker.id);
    });
  }

  /**
   * Whether `s` failed (a `CaseNotOpen` skip, an unknown case) only because its case's opening, which this
   * outbox holds, is not on chain now: pending or in flight again, or lost with the chain without the outbox
   * noticing yet (its receipt is gone: it is put back in flight here, and `lostAbove` is the block below the
   * one the outbox had it in). Such a failure passes: `s` is sent again once the opening has landed.
   */
  async openingMissing(s: Submission): Promise<{ lostAbove: number | null } | null> {
    if (s.caseId === null) return null;
    const opening = this.outbox.openingOf(s.caseId);
    if (!opening || opening.id === s.id) return null;
    if (opening.status === "pending" || opening.status === "sent") return { lostAbove: null };
    if (!opening.txHash || (await this.provider.getTransactionReceipt(opening.txHash))) return null;
    for (const tx of this.outbox.transactionsForNonce(opening.sender, opening.nonce!)) {
      if (tx.txHash !== opening.txHash) continue;
      if (tx.status === "confirmed" || tx.status === "failed") this.outbox.unsettle(tx);
      else if (tx.status === "mined") this.outbox.markUnmined(tx);
    }
    return { lostAbove: Math.max(0, (opening.blockNumber ?? 1) - 1) };
  }
}

/** Why a submission is not sent yet: it waits for another submission of the engine to land first. */
function waitingNote(blocker: Submission): string {
  const method = blocker.payload.kind === "call" ? blocker.payload.method : "sign-off";
  const what =
    method === "openCase" ? `the opening of case ${blocker.caseId}` : `the ${method} of case ${blocker.caseId}`;
  return `${WAITS_FOR}${what} (submission ${blocker.id}) to land on chain first: it is not mined yet, or is being sent again after the chain lost it`;
}

/** Why a submission that failed for want of its case is sent again. */
export function reopeningNote(s: Submission): string {
  return `case ${s.caseId} is not open on chain now: its opening is being sent again (the chain lost it); this is sent again once it lands`;
}
