/**
 * Reconciliation: what the chain did with the transactions the outbox holds, learned from receipts and nonces.
 *
 * Each poll, per sender and nonce in flight: a receipt with enough confirmations settles its submissions
 * (decoded from the logs, or from the custom error a revert replays to); one with fewer marks them mined; none
 * while the chain's nonce is past ours means something else used the key (back to pending); none while the
 * node has not even seen the transaction means it was dropped or never arrived, and the same bytes go again;
 * one waiting priced out of the pool for `underpricedPolls` polls is bumped (see sending.ts).
 *
 * Rollback recovery: after `noticeRollback` (or a block counted above the head, or at the first poll a
 * receipt gone in the last `RECHECK_BLOCKS` blocks) what the chain lost is in flight again, and a nonce gap
 * left by the lost blocks puts the counter back to it, so what was above is signed again.
 */
import { getAddress, Transaction, type JsonRpcApiProvider } from "ethers";
import { connectEscrow, decodeChainError } from "../chain/escrow";
import { ContractRevertError, type EngineError } from "../errors";
import { reopeningNote } from "./causal-order";
import { openedCaseIds, outcomesOfRevert, outcomesOfSuccess, skipError, type ReceiptLog } from "./outcomes";
import type { RelayerContext } from "./relayer-context";
import type { Sending } from "./sending";
import type { Outcome, SentTransaction, Submission } from "./types";

const UNESTIMATED_BATCH_REVERTED =
  "its batch, sent without a gas estimate, reverted (out of gas?): nothing of it applied; sent again, estimated first";

/** What reconciliation reads of a receipt. */
interface Receipt {
  blockNumber: number;
  /** 1: succeeded, 0: reverted. */
  status: number;
  logs: readonly ReceiptLog[];
}

/** How far below the head a restarted relayer checks that the receipts it counted are still there. */
const RECHECK_BLOCKS = 256;

export class Reconciliation {
  /** The lowest fork point noticed since the last poll: blocks above it were lost. */
  rolledBackTo: number | null = null;
  /** Whether the first poll has checked the receipts of what the outbox counted in recent blocks. */
  checkedAtStart = false;

  constructor(
    private readonly ctx: RelayerContext,
    private readonly sending: Sending,
  ) {}

  /** See `Relayer.noticeRollback`. */
  noticeRollback(forkPoint: number): void {
    this.rolledBackTo = Math.min(this.rolledBackTo ?? forkPoint, forkPoint);
    this.ctx.scheduleWake(0);
  }

  /**
   * Finds lost blocks (see `noticeLostBlocks`) and puts back in flight what they held. Returns the head it
   * asked for, if it asked: the poll's `reconcile` counts confirmations with it.
   */
  async recoverRollback(): Promise<number | null> {
    const head = await this.noticeLostBlocks();
    if (this.rolledBackTo !== null) {
      const forkPoint = this.rolledBackTo;
      await this.recoverLost(forkPoint);
      if (this.rolledBackTo === forkPoint) this.rolledBackTo = null;
    }
    return head;
  }

  /**
   * Blocks the outbox counted that the chain no longer has, noticed by the relayer itself (the projection may
   * not see it: its checkpoint can be the restored head): a recorded block above the head means the blocks
   * above the head were lost. At the first poll (a restart, perhaps onto a chain restored from an older save
   * that has grown again since) every transaction settled in the last `RECHECK_BLOCKS` blocks has its
   * receipt checked.
   */
  private async noticeLostBlocks(): Promise<number | null> {
    const recorded = this.ctx.outbox.highestRecordedBlock();
    if (recorded === null) {
      this.checkedAtStart = true;
      return null;
    }
    const head = await this.ctx.provider.getBlockNumber();
    const lostAbove = this.checkedAtStart ? head : Math.max(0, Math.min(head, recorded) - RECHECK_BLOCKS);
    if (recorded > lostAbove) this.rolledBackTo = Math.min(this.rolledBackTo ?? lostAbove, lostAbove);
    this.checkedAtStart = true;
    return head;
  }

  private async recoverLost(forkPoint: number): Promise<void> {
    const { outbox, provider } = this.ctx;
    for (const tx of outbox.settledAbove(forkPoint)) {
      const receipt = await this.receiptOf(tx.txHash);
      // Mined again elsewhere (a reorganisation that kept it): the block it is in now is the one to watch.
      if (receipt) outbox.moveToBlock(tx, receipt.blockNumber);
      else outbox.unsettle(tx);
    }
    for (const sender of this.ctx.senders.keys()) {
      const counter = outbox.nextNonce(sender);
      if (counter === undefined) continue;
      const chainNonce = await provider.getTransactionCount(sender, "pending");
      const inFlight = new Set(outbox.inFlightNonces(sender));
      let gap = chainNonce;
      while (gap < counter && inFlight.has(gap)) gap += 1;
      if (gap >= counter) continue;
      const reason = {
        code: "NONCE_GAP",
        message: `nonce ${gap} of ${sender} was lost with the chain: signed again from there`,
      };
      for (const nonce of inFlight) if (nonce > gap) outbox.release(sender, nonce, reason, { giveBackNonce: false });
      outbox.setNextNonce(sender, gap);
    }
  }

  /**
   * Settles, marks or re-sends each of the sender's nonces in flight, from their receipts and the sender's
   * nonce on chain. `head`: the chain's head asked earlier in this poll, to count confirmations (an older
   * head counts fewer: a transaction is confirmed a poll later at worst); asked here if not given.
   */
  async reconcile(sender: string, head?: number | null): Promise<void> {
    const nonces = this.ctx.outbox.inFlightNonces(sender);
    if (nonces.length === 0) return;
    // The nonce, the head and every receipt asked at once: one wait for the node (each waits behind its other
    // work, mining a batch), not one each. A receipt asked before the nonce may miss a transaction mined
    // between the two answers: where that matters (the nonce used, no receipt), it is asked again.
    const txsByNonce = nonces.map((nonce) => this.ctx.outbox.transactionsForNonce(sender, nonce));
    const receipts = new Map<string, Promise<Receipt | null>>();
    for (const tx of txsByNonce.flat()) receipts.set(tx.txHash, this.receiptOf(tx.txHash));
    for (const receipt of receipts.values()) receipt.catch(() => undefined);
    const [chainNonce, chainHead] = await Promise.all([
      this.ctx.provider.getTransactionCount(sender, "latest"),
      head ?? this.ctx.provider.getBlockNumber(),
    ]);
    head = chainHead;
    // Once a nonce is held back (what it carries waits for another sender's opening or deposit), no later one
    // is handed to the node: it would be mined as soon as the held one is.
    let holding = false;
    for (const [i, nonce] of nonces.entries()) {
      holding =
        (await this.reconcileNonce(sender, nonce, txsByNonce[i], receipts, chainNonce, head, holding)) || holding;
    }
  }

  /** Reconciles one nonce; true if its transaction is held back, not handed to the node (see `reconcile`). */
  private async reconcileNonce(
    sender: string,
    nonce: number,
    txs: readonly SentTransaction[],
    receipts: ReadonlyMap<string, Promise<Receipt | null>>,
    chainNonce: number,
    head: number,
    holding: boolean,
  ): Promise<boolean> {
    const { outbox, provider } = this.ctx;
    let found = await this.receiptAmong(txs, receipts);
    // The nonce is used and none of our transactions for it had a receipt when asked (before the nonce): one
    // of them may have been mined since; asked again, after the nonce, before anything is concluded.
    if (!found && chainNonce > nonce)
      found = await this.receiptAmong(txs, new Map(txs.map((tx) => [tx.txHash, this.receiptOf(tx.txHash)])));
    if (found) {
      const { tx, receipt } = found;
      const confirmations = Math.max(head, receipt.blockNumber) - receipt.blockNumber + 1;
      if (confirmations >= this.ctx.confirmations) await this.settle(tx, receipt);
      else if (tx.status !== "mined") {
        const carried = outbox.submissionsForNonce(tx.sender, tx.nonce);
        outbox.markMined(
          tx,
          receipt.blockNumber,
          receipt.status === 1 ? openedCaseIds(this.ctx.escrowAddress, receipt.logs, carried) : new Map(),
        );
      }
      return false;
    }
    const current = txs.find((t) => t.status === "sent" || t.status === "mined");
    if (!current) return false;
    if (current.status === "mined") outbox.markUnmined(current);
    const state = this.ctx.senders.get(sender)!;
    if (chainNonce > nonce) {
      // The nonce is used and none of our transactions for it has a receipt: something else used this key.
      state.waitingPolls.delete(current.txHash);
      outbox.release(
        sender,
        nonce,
        {
          code: "NONCE_USED_ELSEWHERE",
          message: `nonce ${nonce} of ${sender} was used by a transaction the relayer did not send`,
        },
        { giveBackNonce: false },
      );
      return false;
    }
    const known = await provider.getTransaction(current.txHash);
    if (!known) {
      // Dropped from the pool, never reached it (a crash or a lost send), or lost with the chain's blocks: the
      // same bytes again, once what they carry may land (the case's opening, its deposits, from other keys).
      if (holding || this.ctx.order.mustWait(outbox.submissionsForNonce(sender, nonce))) return true;
      outbox.countAttempt(sender, nonce);
      await this.sending.broadcast(sender, current);
      return false;
    }
    const polls = (state.waitingPolls.get(current.txHash) ?? 0) + 1;
    state.waitingPolls.set(current.txHash, polls);
    if (polls < this.ctx.timings.underpricedPolls) return false;
    await this.sending.bumpIfPricedOut(state, current);
    return false;
  }

  private async settle(tx: SentTransaction, receipt: Receipt): Promise<void> {
    const { outbox, escrowAddress } = this.ctx;
    const carried = outbox.submissionsForNonce(tx.sender, tx.nonce);
    const reverted = receipt.status !== 1;
    const outcomes = this.sending.revertedUnestimated(tx, reverted, carried)
      ? new Map(carried.map((s): [number, Outcome] => [s.id, { status: "pending", note: UNESTIMATED_BATCH_REVERTED }]))
      : reverted
        ? outcomesOfRevert(await this.revertReason(tx, receipt), carried)
        : outcomesOfSuccess(escrowAddress, receipt.logs, carried);
    for (const s of carried) {
      const outcome = outcomes.get(s.id);
      if (outcome?.status !== "failed") continue;
      if (await this.openingMissing(s)) outcomes.set(s.id, { status: "pending", note: reopeningNote(s) });
      else if (outcome.error?.code === "SIGN_OFF_INVALID_SIGNATURE")
        outcomes.set(s.id, {
          ...outcome,
          error: skipError("InvalidSignature", s, await this.partyOf(s, receipt.blockNumber)),
        });
    }
    this.ctx.senders.get(tx.sender)?.waitingPolls.delete(tx.txHash);
    for (const s of outbox.settle(tx, receipt.blockNumber, reverted, outcomes))
      if (s.status === "confirmed" || s.status === "failed") this.ctx.events.emit("settled", s);
  }

  /** The address holding the role of a relayed sign-off in its case, as the chain had it at `blockTag`; undefined if not known. */
  private async partyOf(s: Submission, blockTag: number): Promise<string | undefined> {
    if (s.payload.kind !== "relayed-sign-off") return undefined;
    const { caseId, role } = s.payload.message;
    try {
      const view = await connectEscrow(this.ctx.escrowAddress, this.ctx.provider).caseOf(caseId, { blockTag });
      return view.parties[role] === undefined ? undefined : getAddress(view.parties[role]);
    } catch {
      return undefined; // the message names the role without its address
    }
  }

  /** The first of `txs` (newest first: a bumped transaction's predecessor can still win) that has a receipt. */
  private async receiptAmong(
    txs: readonly SentTransaction[],
    receipts: ReadonlyMap<string, Promise<Receipt | null>>,
  ): Promise<{ tx: SentTransaction; receipt: Receipt } | null> {
    for (const tx of txs) {
      const receipt = await receipts.get(tx.txHash);
      if (receipt) return { tx, receipt };
    }
    return null;
  }

  /**
   * A transaction's receipt, or null while it has none: asked raw where the provider can (ethers wraps each of
   * a batch's hundred or so logs in objects that are not read here, milliseconds of the event loop per batch).
   */
  private async receiptOf(txHash: string): Promise<Receipt | null> {
    const provider = this.ctx.provider as Partial<JsonRpcApiProvider>;
    if (typeof provider.send !== "function") {
      const receipt = await this.ctx.provider.getTransactionReceipt(txHash);
      return receipt && { blockNumber: receipt.blockNumber, status: receipt.status ?? 0, logs: receipt.logs };
    }
    const raw = (await provider.send("eth_getTransactionReceipt", [txHash])) as {
      blockNumber?: string | null;
      status?: string | null;
      logs?: Array<{ address: string; topics: string[]; data: string }>;
    } | null;
    if (!raw || raw.blockNumber == null) return null;
    return { blockNumber: Number(raw.blockNumber), status: Number(raw.status ?? 0), logs: raw.logs ?? [] };
  }

  /** See `CausalOrder.openingMissing`; an opening lost unnoticed is a rollback, recovered at the next poll. */
  async openingMissing(s: Submission): Promise<boolean> {
    const missing = await this.ctx.order.openingMissing(s);
    if (missing?.lostAbove != null) this.noticeRollback(missing.lostAbove);
    return missing !== null;
  }

  /** Replays a reverted transaction on the state before its block to learn the custom error. */
  private async revertReason(tx: SentTransaction, receipt: Receipt): Promise<EngineError> {
    const signed = Transaction.from(tx.rawTx);
    try {
      await this.ctx.provider.call({
        from: tx.sender,
        to: signed.to,
        data: signed.data,
        value: signed.value,
        blockTag: receipt.blockNumber - 1,
      });
    } catch (error) {
      const decoded = decodeChainError(error);
      if (decoded instanceof ContractRevertError) return decoded;
      throw decoded;
    }
    return new ContractRevertError("unknown", []);
  }
}
