/**
 * The out-of-funds pause: a sender that cannot pay (its balance below gas x maxFeePerGas + value, or the node
 * says so) is paused with `RelayerOutOfFundsError`, signs nothing and uses no nonce, and resumes on its own
 * once funded. What waits for the key says why on each submission (its error and note), since the API shows
 * a submission's error and note, not the relayer's health.
 */
import { getAddress } from "ethers";
import { RelayerOutOfFundsError } from "./errors";
import { errorOf } from "./outcomes";
import type { RelayerContext, SenderState } from "./relayer-context";

export class OutOfFundsPause {
  constructor(private readonly ctx: RelayerContext) {}

  pause(state: SenderState, balance: bigint, needed: bigint): void {
    const address = getAddress(state.wallet.address);
    const wasPaused = state.paused !== null;
    state.paused = new RelayerOutOfFundsError(address, balance, needed);
    this.ctx.outbox.noteWaiting(address, errorOf(state.paused));
    if (!wasPaused) this.ctx.events.emit("paused", state.paused);
  }

  resume(state: SenderState, address: string): void {
    if (!state.paused) return;
    state.paused = null;
    this.ctx.outbox.noteWaiting(address, null);
    this.ctx.events.emit("resumed", address);
  }

  /** A paused sender with nothing to send resumes when its balance covers what it last lacked. */
  async checkFunds(state: SenderState, address: string): Promise<void> {
    const needed = BigInt(String(state.paused?.details?.needed ?? "0"));
    if ((await this.ctx.provider.getBalance(address, "latest")) >= needed) this.resume(state, address);
  }
}
