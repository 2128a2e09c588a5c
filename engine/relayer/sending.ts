/**
 * Sending: turns a sender's pending submissions into signed transactions and hands them to the node.
 *
 * A group is drafted (one call, or relayed sign-offs batched in one `signOffWithSignatures`, identical
 * signatures as one item, the first waiting `batchWindowMs` for others to join), its gas estimated (a revert
 * here settles it with the decoded custom error and uses no nonce; a batch of sign-offs goes on its gas
 * allowance instead, and is estimated only if it reverted so, see `batchAllowance`), the fees and the balance checked (a key
 * that cannot pay is paused, see funds.ts), the sender's next nonce taken from the outbox's counter and the
 * transaction signed and committed in the same SQLite transaction, and only then broadcast. A broadcast that
 * fails or times out is never signed again here: reconciliation settles it by hash and nonce.
 *
 * Bumps live here too: a transaction priced out of the pool is signed again for the same nonce with both fees
 * raised by at least `feeBumpPercent`.
 */
import { getAddress, Transaction, type JsonRpcApiProvider } from "ethers";
import { decodeChainError } from "../chain/escrow";
import { ChainUnavailableError, ContractRevertError } from "../errors";
import { RelayerOutOfFundsError, toEngineError } from "./errors";
import { bumpedFees, type Fees } from "./fees";
import type { OutOfFundsPause } from "./funds";
import { batchCallData, callData, signOffItemKey } from "./intents";
import type { SignedTransaction } from "./outbox";
import { reopeningNote } from "./causal-order";
import { errorOf, outcomesOfRevert } from "./outcomes";
import type { RelayerContext, SenderState } from "./relayer-context";
import { signEip1559 } from "./sign-tx";
import type { Outcome, RelayedSignOffIntent, SentTransaction, Submission } from "./types";

interface Draft {
  to: string;
  data: string;
  value: bigint;
  items: { submissionId: number; batchIndex: number | null }[];
}

/** The least gas a call can use, for what a sender needs when the node cannot estimate (it cannot pay the value). */
const MIN_CALL_GAS = 21_000n;

/** Room above the estimate for completing a stage, its cascade and the release, which the estimate may not see. */
const COMPLETION_HEADROOM_GAS = 300_000n;

const TX_BASE_GAS = 21_000n;
/** Calldata's cost per byte at most: EIP-7623's floor, 40 gas a non-zero byte. */
const CALLDATA_GAS_PER_BYTE = 40n;
/** A batch whose allowance would be above this is estimated instead: half of Hardhat's and mainnet's 30 million block gas limit. */
const MAX_UNESTIMATED_GAS = 15_000_000n;

export class Sending {
  /** Transactions handed to the node (and accepted) so far; the worker polls again at once after one. */
  broadcasts = 0;
  private chainId: bigint | undefined;
  /** Batches sent on their allowance, without an estimate, by transaction hash, until settled (see `batchAllowance`). */
  private readonly unestimated = new Set<string>();
  /** Submissions whose next batch is estimated before it is sent: the last one, sent without, reverted. */
  private readonly estimateFirst = new Set<number>();
  /** Whether the node takes a block parameter on eth_estimateGas (see `estimateGas`). */
  private estimateAtLatest = true;
  private initialising: Promise<void> | undefined;

  constructor(
    private readonly ctx: RelayerContext,
    private readonly funds: OutOfFundsPause,
    /** See `Reconciliation.openingMissing`. */
    private readonly openingMissing: (s: Submission) => Promise<boolean>,
    /** Once true nothing new is signed; what is already in flight is still reconciled. */
    private readonly stopping: () => boolean,
  ) {}

  /** Learns the chain id once (signing needs it); a failure is tried again at the next call. */
  init(): Promise<void> {
    this.initialising ??= (async () => {
      this.chainId = (await this.ctx.provider.getNetwork()).chainId;
    })().catch((error: unknown) => {
      this.initialising = undefined;
      throw toEngineError(error);
    });
    return this.initialising;
  }

  async sendPending(sender: string, state: SenderState): Promise<void> {
    const { outbox, order, maxBatchSize, maxInFlight, batchWindowMs } = this.ctx;
    if (state.paused) await this.funds.checkFunds(state, sender);
    for (;;) {
      if (this.stopping()) return;
      if (outbox.inFlightNonces(sender).length >= maxInFlight) return;
      const pending = order.ready(outbox.pending(sender, maxBatchSize));
      if (pending.length === 0) return;
      let group: Submission[];
      if (pending[0].kind === "relayed-sign-off") {
        const firstCall = pending.findIndex((s) => s.kind !== "relayed-sign-off");
        group = firstCall === -1 ? pending : pending.slice(0, firstCall);
        const waited = this.ctx.now() - group[0].createdAt;
        if (group.length < maxBatchSize && firstCall === -1 && waited < batchWindowMs) {
          this.ctx.scheduleWake(batchWindowMs - waited);
          return;
        }
      } else {
        group = [pending[0]];
      }
      if (!(await this.send(sender, state, group))) return;
    }
  }

  /** Sends one transaction for `group` (or settles it without one). False when the sender must stop for now. */
  private async send(sender: string, state: SenderState, group: readonly Submission[]): Promise<boolean> {
    const { provider } = this.ctx;
    const draft = this.draft(group);
    // The fees and the balance are asked together with the estimate (one wait for the node, not three);
    // they are used only if the estimate succeeds.
    const feesAsked = this.freshFees();
    const balanceAsked = provider.getBalance(sender, "latest");
    feesAsked.catch(() => undefined);
    balanceAsked.catch(() => undefined);
    const allowance = this.batchAllowance(group, draft);
    let gas: bigint;
    try {
      gas =
        allowance ??
        (await this.estimateGas(
          { from: sender, to: draft.to, data: draft.data, value: draft.value },
          group[0].kind === "relayed-sign-off",
        ));
      for (const s of group) this.estimateFirst.delete(s.id);
    } catch (error) {
      if (isInsufficientFunds(error)) {
        // The node could not estimate the gas: what is needed is the value and at least a plain call's gas.
        const fees = await feesAsked.catch(() => ({ maxFeePerGas: 0n }));
        this.funds.pause(state, await balanceAsked, draft.value + MIN_CALL_GAS * fees.maxFeePerGas);
        return false;
      }
      const decoded = decodeChainError(error);
      if (!(decoded instanceof ContractRevertError)) throw decoded;
      await this.refuse(sender, group, decoded);
      return true;
    }
    // The estimate is made against the chain as it is now; by the time the transaction is mined another
    // engine's or party's sign-off may have landed first, making this one the last that completes the stage
    // and its cascade (and perhaps the release). Gas left over is refunded, so the limit is generous.
    const gasLimit = allowance ?? (gas * 6n) / 5n + COMPLETION_HEADROOM_GAS;
    const fees = await feesAsked;
    const needed = gasLimit * fees.maxFeePerGas + draft.value;
    const balance = await balanceAsked;
    if (balance < needed) {
      this.funds.pause(state, balance, needed);
      return false;
    }
    this.funds.resume(state, sender);
    const tx = this.ctx.outbox.assign(sender, draft.items, (nonce) =>
      this.sign(state, { nonce, to: draft.to, data: draft.data, value: draft.value, gasLimit, fees }),
    );
    if (allowance !== null) this.unestimated.add(tx.txHash);
    await this.broadcast(sender, tx);
    return !state.paused;
  }

  /**
   * The gas of a batch of relayed sign-offs sent without an estimate, or null to estimate it: every item's
   * allowance and the calldata's, if that stays well under a block's gas limit and no item is to be
   * estimated first (its batch reverted, see `revertedUnestimated`). The contract skips an item it cannot
   * apply rather than reverting, so for a batch the estimate mostly learns the gas, and on a node in this
   * process it was most of the relayer's cost: Hardhat executes the batch several times to estimate it
   * (about 70 ms for 64 sign-offs, against 40 ms to mine it). Gas left over is refunded.
   */
  private batchAllowance(group: readonly Submission[], draft: Draft): bigint | null {
    if (group[0].kind !== "relayed-sign-off" || group.some((s) => this.estimateFirst.has(s.id))) return null;
    const items = BigInt(new Set(draft.items.map((i) => i.batchIndex)).size);
    const calldataBytes = BigInt((draft.data.length - 2) / 2);
    const gas = TX_BASE_GAS + calldataBytes * CALLDATA_GAS_PER_BYTE + items * this.ctx.signOffItemGas;
    return gas <= MAX_UNESTIMATED_GAS ? gas : null;
  }

  /**
   * Whether `tx` was a batch sent on its allowance (see `batchAllowance`), forgetting it. If it reverted (out of
   * gas, or an item that does not decode), nothing of it applied: its submissions go back to pending, and the
   * next batch that carries them is estimated first, where an item that reverts alone is refused (`refuse`).
   */
  revertedUnestimated(tx: SentTransaction, reverted: boolean, carried: readonly Submission[]): boolean {
    const unestimated = this.unestimated.delete(tx.txHash);
    if (!unestimated || !reverted) return false;
    for (const s of carried) this.estimateFirst.add(s.id);
    return true;
  }

  private draft(group: readonly Submission[]): Draft {
    const { escrowAddress } = this.ctx;
    const first = group[0].payload;
    if (first.kind === "call") {
      return {
        to: escrowAddress,
        data: callData(first),
        value: BigInt(first.value ?? 0),
        items: [{ submissionId: group[0].id, batchIndex: null }],
      };
    }
    // The same signed sign-off under two keys is one item: both submissions settle with it.
    const indexOf = new Map<string, number>();
    const intents: RelayedSignOffIntent[] = [];
    const items = group.map((s) => {
      const intent = s.payload as RelayedSignOffIntent;
      const key = signOffItemKey(intent);
      let index = indexOf.get(key);
      if (index === undefined) {
        index = intents.length;
        intents.push(intent);
        indexOf.set(key, index);
      }
      return { submissionId: s.id, batchIndex: index };
    });
    return { to: escrowAddress, data: batchCallData(intents), value: 0n, items };
  }

  /** The estimate reverted: settle the submissions it names, without a nonce. */
  private async refuse(sender: string, group: readonly Submission[], error: ContractRevertError): Promise<void> {
    if (group[0].kind === "call") {
      await this.settleRefused(group[0], outcomesOfRevert(error, group).get(group[0].id)!);
      return;
    }
    if (group.length === 1) {
      await this.settleRefused(group[0], { status: "failed", error: errorOf(error) });
      return;
    }
    // The contract skips every item it cannot apply (with its index and reason), so a batch that reverts
    // whole was refused for something of the calldata (an item that does not decode): find the ones that
    // revert alone; the others go in the next batch.
    for (const s of group) {
      try {
        await this.estimateGas(
          {
            from: sender,
            to: this.ctx.escrowAddress,
            data: batchCallData([s.payload as RelayedSignOffIntent]),
            value: 0n,
          },
          true,
        );
      } catch (e) {
        const decoded = decodeChainError(e);
        if (!(decoded instanceof ContractRevertError)) throw decoded;
        await this.settleRefused(s, { status: "failed", error: errorOf(decoded) });
      }
    }
  }

  /** Settles a submission refused at estimation, unless it failed only for want of its case's opening, which is being re-sent. */
  private async settleRefused(s: Submission, outcome: Outcome): Promise<void> {
    if (outcome.status === "failed" && (await this.openingMissing(s))) {
      this.ctx.outbox.noteWhy(s.id, reopeningNote(s));
      return;
    }
    this.ctx.events.emit("settled", this.ctx.outbox.settleWithoutTransaction(s.id, outcome));
  }

  /**
   * The gas of `tx`; of a batch of sign-offs (`signOffs`) against the latest block. `eth_estimateGas` without
   * a block estimates against "pending", for which Hardhat builds the block being mined first: about 50 ms of
   * the node's time per estimate, more than executing a batch of 64 sign-offs. A batch never reverts for the
   * time (an item it cannot apply is skipped), and the headroom over its estimate covers a sign-off that
   * completes more in the next block than in the latest. A call is estimated against "pending": an `advance`
   * or `expire` is possible at the next block's time, not the latest's. A node that refuses the block
   * parameter is asked the default way from then on.
   */
  private async estimateGas(
    tx: { from: string; to: string; data: string; value: bigint },
    signOffs: boolean,
  ): Promise<bigint> {
    const provider = this.ctx.provider as Partial<JsonRpcApiProvider>;
    if (
      signOffs &&
      this.estimateAtLatest &&
      typeof provider.send === "function" &&
      typeof provider.getRpcTransaction === "function"
    ) {
      try {
        return BigInt((await provider.send("eth_estimateGas", [provider.getRpcTransaction(tx), "latest"])) as string);
      } catch (error) {
        if (!refusesBlockParameter(error)) throw error;
        this.estimateAtLatest = false;
      }
    }
    return this.ctx.provider.estimateGas(tx);
  }

  private async freshFees(): Promise<Fees> {
    const data = await this.ctx.provider.getFeeData();
    if (data.maxFeePerGas != null && data.maxPriorityFeePerGas != null) {
      return { maxFeePerGas: data.maxFeePerGas, maxPriorityFeePerGas: data.maxPriorityFeePerGas };
    }
    const price = data.gasPrice ?? 0n;
    return { maxFeePerGas: price, maxPriorityFeePerGas: price };
  }

  private sign(
    state: SenderState,
    fields: { nonce: number; to: string; data: string; value: bigint; gasLimit: bigint; fees: Fees },
  ): SignedTransaction {
    if (this.chainId === undefined) throw new Error("the relayer signs only after init");
    // Signed synchronously, inside the SQLite transaction that takes the nonce; the same bytes as ethers'
    // Transaction gives, at a fraction of its cost for a batch's calldata (see sign-tx.ts).
    const { rawTx, txHash } = signEip1559(state.wallet.signingKey, {
      chainId: this.chainId,
      nonce: fields.nonce,
      to: fields.to,
      data: fields.data,
      value: fields.value,
      gasLimit: fields.gasLimit,
      maxFeePerGas: fields.fees.maxFeePerGas,
      maxPriorityFeePerGas: fields.fees.maxPriorityFeePerGas,
    });
    return { rawTx, txHash, ...fields.fees };
  }

  /** Replaces `current` with higher fees if the next block's base fee is above its maxFeePerGas. */
  async bumpIfPricedOut(state: SenderState, current: SentTransaction): Promise<void> {
    const nextBaseFee = await this.nextBaseFee();
    if (nextBaseFee > current.maxFeePerGas) await this.bump(state, current, nextBaseFee);
  }

  private async bump(state: SenderState, current: SentTransaction, nextBaseFee: bigint): Promise<void> {
    const { provider, outbox } = this.ctx;
    const old = Transaction.from(current.rawTx);
    const suggested = (await provider.getFeeData()).maxPriorityFeePerGas ?? 0n;
    const fees = bumpedFees(current, this.ctx.feeBumpPercent, nextBaseFee, suggested);
    const needed = old.gasLimit * fees.maxFeePerGas + old.value;
    const balance = await provider.getBalance(current.sender, "latest");
    if (balance < needed) {
      this.funds.pause(state, balance, needed);
      return;
    }
    const signed = this.sign(state, {
      nonce: current.nonce,
      to: old.to!,
      data: old.data,
      value: old.value,
      gasLimit: old.gasLimit,
      fees,
    });
    const next = outbox.replace(current, signed);
    if (this.unestimated.has(current.txHash)) this.unestimated.add(next.txHash);
    state.waitingPolls.delete(current.txHash);
    await this.broadcast(current.sender, next);
  }

  /** The base fee of the block being built; ethers cannot format a pending block (no number), so ask raw. */
  private async nextBaseFee(): Promise<bigint> {
    const { provider } = this.ctx;
    const send = (provider as Partial<JsonRpcApiProvider>).send?.bind(provider);
    if (send) {
      const pending = (await send("eth_getBlockByNumber", ["pending", false])) as { baseFeePerGas?: string } | null;
      if (pending?.baseFeePerGas) return BigInt(pending.baseFeePerGas);
    }
    const latest = await provider.getBlock("latest");
    return latest?.baseFeePerGas ?? 0n;
  }

  /**
   * Hands a stored transaction to the node. Whatever happens, it is not signed again here: a lost answer or a
   * timeout is settled by the next poll's reconciliation.
   */
  async broadcast(sender: string, tx: SentTransaction): Promise<void> {
    const { provider, outbox } = this.ctx;
    try {
      // Raw where the provider can: ethers' broadcastTransaction parses the transaction back (hex to bytes,
      // hashes) to wrap its answer, which the relayer does not use.
      const send = (provider as Partial<JsonRpcApiProvider>).send;
      const sending =
        typeof send === "function"
          ? send.call(provider, "eth_sendRawTransaction", [tx.rawTx])
          : provider.broadcastTransaction(tx.rawTx);
      await withTimeout(sending, this.ctx.timings.sendTimeoutMs);
      this.broadcasts += 1;
      this.ctx.events.emit("broadcast", tx);
    } catch (error) {
      if (isAlreadyKnown(error)) return;
      const state = this.ctx.senders.get(sender)!;
      if (isInsufficientFunds(error)) {
        const signed = Transaction.from(tx.rawTx);
        const onlyVersion = outbox.transactionsForNonce(sender, tx.nonce).length === 1;
        const last = outbox.nextNonce(sender) === tx.nonce + 1;
        // The node refused it outright, so the nonce is free: give it back if no later nonce depends on it.
        const balance = await provider.getBalance(sender, "latest").catch(() => 0n);
        if (onlyVersion && last) {
          outbox.release(
            sender,
            tx.nonce,
            errorOf(
              new RelayerOutOfFundsError(
                getAddress(sender),
                balance,
                signed.gasLimit * signed.maxFeePerGas! + signed.value,
              ),
            ),
            { giveBackNonce: true },
          );
        }
        this.funds.pause(state, balance, signed.gasLimit * signed.maxFeePerGas! + signed.value);
        return;
      }
      throw new ChainUnavailableError(
        `sending transaction ${tx.txHash} (nonce ${tx.nonce} of ${sender}) did not complete; it is reconciled by hash and nonce`,
        error,
      );
    }
  }
}

function errorText(error: unknown, depth = 0): string {
  if (depth > 5 || error === null || typeof error !== "object") return typeof error === "string" ? error : "";
  const e = error as Record<string, unknown>;
  const own = [e.message, e.shortMessage].filter((m) => typeof m === "string").join(" ");
  return [own, ...["error", "info", "cause", "data"].map((k) => errorText(e[k], depth + 1))].join(" ");
}

function isInsufficientFunds(error: unknown): boolean {
  return /insufficient funds|doesn't have enough funds|not enough funds/i.test(errorText(error));
}

/** A node that takes no block parameter on eth_estimateGas answers "invalid params" (-32602) or too many arguments. */
function refusesBlockParameter(error: unknown): boolean {
  const text = errorText(error);
  if (/revert/i.test(text)) return false;
  return hasCode(error, -32602) || /invalid params|too many arguments|expected 1 argument/i.test(text);
}

function hasCode(error: unknown, code: number, depth = 0): boolean {
  if (depth > 5 || error === null || typeof error !== "object") return false;
  const e = error as Record<string, unknown>;
  return e.code === code || ["error", "info", "cause"].some((k) => hasCode(e[k], code, depth + 1));
}

function isAlreadyKnown(error: unknown): boolean {
  return /already known|known transaction|already imported|AlreadyKnown/i.test(errorText(error));
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
