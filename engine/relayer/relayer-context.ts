/**
 * What the relayer's parts share: its settings, the keys it sends from, the outbox and the chain, and the
 * events it tells. The facade (relayer.ts) builds one and hands it to the worker, the reconciliation, the
 * sending and the out-of-funds pause, so that none of them reaches into another's state.
 */
import type { EventEmitter } from "node:events";
import type { BaseWallet, Provider } from "ethers";
import type { EngineError } from "../errors";
import type { CausalOrder } from "./causal-order";
import type { RelayerOutOfFundsError } from "./errors";
import type { Outbox } from "./outbox";
import type { SentTransaction, Submission } from "./types";

export interface RelayerTimings {
  /** How often the worker polls receipts when idle. */
  pollIntervalMs: number;
  /** A broadcast that has not answered by then is left to reconciliation. */
  sendTimeoutMs: number;
  /** Polls a transaction may wait in the pool, priced out by the base fee, before it is bumped. */
  underpricedPolls: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface RelayerEvents {
  /** A submission reached `confirmed` or `failed`. */
  settled: [Submission];
  /**
   * A transaction was handed to the node (and accepted). On an automining chain it is mined already: whoever
   * follows the chain may read now rather than at its next tick.
   */
  broadcast: [SentTransaction];
  /** A sender ran out of funds. */
  paused: [RelayerOutOfFundsError];
  /** A paused sender has funds again (its address). */
  resumed: [string];
  /** A poll failed on an RPC fault; the worker backs off and tries again. */
  retrying: [EngineError, number];
}

/** A key the relayer sends from. */
export interface SenderState {
  wallet: BaseWallet;
  paused: RelayerOutOfFundsError | null;
  /** Polls seen per transaction hash while it waits in the pool. */
  waitingPolls: Map<string, number>;
}

export interface RelayerContext {
  readonly outbox: Outbox;
  readonly provider: Provider;
  readonly order: CausalOrder;
  readonly events: EventEmitter<RelayerEvents>;
  readonly escrowAddress: string;
  /** Blocks on top of (and including) the one holding a transaction before it counts as confirmed. */
  readonly confirmations: number;
  readonly batchWindowMs: number;
  readonly maxBatchSize: number;
  readonly maxInFlight: number;
  /** Gas a relayed sign-off may use in a batch sent without an estimate (see `Sending.batchAllowance`). */
  readonly signOffItemGas: bigint;
  readonly feeBumpPercent: number;
  readonly timings: RelayerTimings;
  readonly random: () => number;
  readonly now: () => number;
  /** Every key, by checksummed address. */
  readonly senders: Map<string, SenderState>;
  /** Senders whose nonce counter is not yet started from the chain (a key added after the first poll, or every key before it). */
  readonly senderNoncesToInit: Set<string>;
  /** Asks the worker for a poll in `delayMs` (at once if 0). */
  scheduleWake(delayMs: number): void;
}
