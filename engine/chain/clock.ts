/**
 * The engine's clock is the chain's. An idle chain makes no blocks, so block timestamps alone would stop the
 * clock; instead the engine keeps the wall clock plus the offset seen at the latest block. Timers then agree
 * with what the contract accepts, and a dev chain whose clock was moved forward moves them too. An `advance`
 * sent a moment too early (the node's clock a little behind ours) is simply retried.
 */
export class ChainClock {
  private offsetMs = 0;
  private latestBlock = -1;

  constructor(private readonly wallNow: () => number = Date.now) {}

  /** Takes the offset from a block, if it is the latest seen (by number): older blocks say nothing new. */
  observeBlock(blockNumber: number, timestampSeconds: number): void {
    if (blockNumber <= this.latestBlock) return;
    this.latestBlock = blockNumber;
    this.offsetMs = timestampSeconds * 1000 - this.wallNow();
  }

  /**
   * Takes the timestamp of the block being built (`eth_getBlockByNumber("pending")`) as a reading of the chain's
   * clock now, where it is ahead of what the latest block says. The latest block of an idle chain can be hours
   * old (a node restarted from yesterday's save), and its offset would put the engine's clock, its timers and
   * every status it shows that far behind until the next block; a dev node (Hardhat, Anvil) stamps the pending
   * block with its clock as it is now. Never moves the clock back.
   */
  observePending(timestampSeconds: number): void {
    this.offsetMs = Math.max(this.offsetMs, timestampSeconds * 1000 - this.wallNow());
  }

  /** Forgets the blocks seen, e.g. after a reorganisation or a chain restored from an older save. */
  reset(): void {
    this.latestBlock = -1;
  }

  nowMs(): number {
    return this.wallNow() + this.offsetMs;
  }

  /** Chain seconds, as `block.timestamp` would be for a block made now. */
  nowSeconds(): number {
    return Math.floor(this.nowMs() / 1000);
  }
}
