/**
 * Follows the escrow's events from the checkpoint to the chain's head, in bounded block ranges, and notices
 * reorganisations by block hash.
 *
 * Each poll first checks that the checkpoint block is still the chain's (same number, same hash). If not, or
 * if the chain is now shorter than the checkpoint (a node restarted from an earlier save), it walks the stored
 * block hashes back to the newest one the chain still holds, the fork point, and rolls back every event above
 * it. Then it reads forward: each range's logs, their blocks and the range's last block are written in ONE
 * transaction, together with whatever the sink writes (the projection's case views), so a crash at any moment
 * leaves a store that a replay from its checkpoint completes.
 */
import { toQuantity, type Block, type JsonRpcApiProvider, type Provider } from "ethers";
import { ChainUnavailableError, EngineError } from "../errors";
import { relaxedTransaction } from "../store/database";
import { decodeLog, type RawLog } from "./decode";
import { type ChainEvent, type Checkpoint, EventLog } from "./event-log";

/**
 * Blocks of a range read at once (their hashes and times): over JSON-RPC each is a round trip, and a few at
 * once stay gentle on the node.
 */
const BLOCKS_AT_ONCE = 16;

/** The chain changed under a range while it was being read: the range is read again at the next poll. */
export class ChainMovedError extends EngineError {
  constructor(message: string) {
    super("CHAIN_MOVED", message, { retryable: true });
  }
}

/** What one transaction of the follower did; handed to the sink inside that transaction. */
export type FollowerStep =
  | { kind: "rollback"; forkPoint: Checkpoint; removed: ChainEvent[] }
  | {
      kind: "range";
      from: number;
      to: number;
      head: { number: number; hash: string; timestamp: number };
      events: ChainEvent[];
    };

/**
 * Whoever builds on the events. `prepare` runs before the transaction (it may read the chain); `write` runs
 * inside it (synchronously; a throw rolls the whole step back); then exactly one of `committed` or `discarded`.
 */
export interface FollowerSink {
  prepare?(step: FollowerStep): Promise<void>;
  write(step: FollowerStep): void;
  committed(step: FollowerStep): void;
  discarded(step: FollowerStep, error: unknown): void;
}

export interface FollowerOptions {
  provider: Provider;
  log: EventLog;
  /** The escrow's address. */
  address: string;
  sink: FollowerSink;
  /** Blocks per `eth_getLogs` call. */
  rangeSize?: number;
  /** Blocks below the head that are left unread (0: read up to the latest block). */
  confirmations?: number;
  /** How far back block hashes are kept; a deeper reorganisation replays from the start. */
  historyDepth?: number;
}

export interface PollResult {
  /** Set when the chain no longer holds what was read: the fork point and the events rolled back. */
  reorg: { forkPoint: number; removed: ChainEvent[] } | null;
  /** Events read and committed by this poll, in chain order. */
  added: ChainEvent[];
  checkpoint: Checkpoint;
}

export class ChainFollower {
  private readonly provider: Provider;
  private readonly log: EventLog;
  private readonly address: string;
  private readonly sink: FollowerSink;
  private readonly rangeSize: number;
  private readonly confirmations: number;
  private readonly historyDepth: number;
  private running: Promise<PollResult> | null = null;

  constructor(options: FollowerOptions) {
    this.provider = options.provider;
    this.log = options.log;
    this.address = options.address;
    this.sink = options.sink;
    this.rangeSize = options.rangeSize ?? 1000;
    this.confirmations = options.confirmations ?? 0;
    this.historyDepth = options.historyDepth ?? 10_000;
    if (this.rangeSize < 1) throw new RangeError("rangeSize must be at least 1");
  }

  /** One poll; concurrent calls share the poll in progress rather than racing it. */
  poll(): Promise<PollResult> {
    if (!this.running) {
      this.running = this.pollOnce().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  private async pollOnce(): Promise<PollResult> {
    // The latest block, not just its number: its hash and parent hash often settle the checkpoint check and
    // stand for the range's head, saving a request each (an idle poll is this one request).
    const latestBlock = await this.block("latest");
    if (!latestBlock?.hash) throw new ChainUnavailableError("the chain returned no latest block", null);
    const latest = latestBlock.number;
    const reorg = await this.checkCheckpoint(latest, latestBlock);
    const added: ChainEvent[] = [];
    const head = latest - this.confirmations;
    for (let checkpoint = this.log.checkpoint(); checkpoint.number < head; checkpoint = this.log.checkpoint()) {
      const from = checkpoint.number + 1;
      const to = Math.min(checkpoint.number + this.rangeSize, head);
      const step = await this.readRange(from, to, to === latestBlock.number ? latestBlock : undefined);
      await this.commit(step, () => {
        this.log.appendEvents(step.events);
        const withEvents = new Map(step.events.map((e) => [e.blockNumber, e.blockHash]));
        withEvents.set(step.head.number, step.head.hash);
        this.log.recordBlocks([...withEvents].map(([number, hash]) => ({ number, hash })));
        this.log.setCheckpoint({ number: step.head.number, hash: step.head.hash });
        this.log.pruneBlocks(step.head.number, this.historyDepth);
      });
      added.push(...step.events);
    }
    return { reorg, added, checkpoint: this.log.checkpoint() };
  }

  /** Rolls back to the fork point if the chain no longer holds the checkpoint block (or is shorter than it). */
  private async checkCheckpoint(latest: number, latestBlock: Block): Promise<PollResult["reorg"]> {
    const checkpoint = this.log.checkpoint();
    if (checkpoint.hash === null) return null;
    // The latest block is the checkpoint, or its child: the chain still holds the checkpoint.
    if (latestBlock.number === checkpoint.number && latestBlock.hash === checkpoint.hash) return null;
    if (latestBlock.number === checkpoint.number + 1 && latestBlock.parentHash === checkpoint.hash) return null;
    if (latest >= checkpoint.number) {
      const block = await this.block(checkpoint.number);
      if (block?.hash === checkpoint.hash) return null;
    }
    const forkPoint = await this.findForkPoint(Math.min(latest, checkpoint.number - 1));
    const step: FollowerStep = { kind: "rollback", forkPoint, removed: [] };
    await this.commit(step, () => {
      step.removed = this.log.rollBackTo(forkPoint);
    });
    return { forkPoint: forkPoint.number, removed: step.removed };
  }

  /** The newest stored block that the chain still holds with the same hash; the origin if there is none. */
  private async findForkPoint(below: number): Promise<Checkpoint> {
    for (const stored of this.log.blocksAtOrBelow(below)) {
      const block = await this.block(stored.number);
      if (block?.hash === stored.hash) return stored;
    }
    return this.log.origin();
  }

  /**
   * Reads one range: the head of the range first, then the logs, then each log's block (its time, and a check
   * that the log's block is still the chain's; a few at once), then the head again. If anything moved, the
   * range is not written: a range is recorded only as one consistent view of the chain.
   */
  private async readRange(from: number, to: number, knownHead?: Block): Promise<FollowerStep & { kind: "range" }> {
    const head = knownHead ?? (await this.block(to));
    if (!head?.hash) throw new ChainMovedError(`block ${to} is gone`);
    const logs = await this.chain(() => this.getLogs(from, to));
    const times = new Map<number, number>();
    const wanted = new Map<number, string>();
    for (const log of logs) {
      if (wanted.has(log.blockNumber)) continue;
      wanted.set(log.blockNumber, log.blockHash);
      // A log of the head block, with the head's hash: the head is its block (no need to read it again).
      if (log.blockNumber === to && log.blockHash === head.hash) times.set(to, head.timestamp);
    }
    const toRead = [...wanted.keys()].filter((n) => !times.has(n));
    for (let i = 0; i < toRead.length; i += BLOCKS_AT_ONCE) {
      const stamps = await Promise.all(toRead.slice(i, i + BLOCKS_AT_ONCE).map((n) => this.stampOf(n)));
      for (const [j, stamp] of stamps.entries()) {
        const number = toRead[i + j];
        if (!stamp || stamp.hash !== wanted.get(number))
          throw new ChainMovedError(`block ${number} changed while it was read`);
        times.set(number, stamp.timestamp);
      }
    }
    const again = await this.block(to);
    if (again?.hash !== head.hash) throw new ChainMovedError(`block ${to} changed while its range was read`);
    const events = logs
      .filter((log) => !log.removed)
      .map((log) => decodeLog(log, times.get(log.blockNumber) as number))
      .filter((e): e is ChainEvent => e !== null)
      .sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex);
    return { kind: "range", from, to, head: { number: to, hash: head.hash, timestamp: head.timestamp }, events };
  }

  private async commit(step: FollowerStep, writeLog: () => void): Promise<void> {
    await this.sink.prepare?.(step);
    try {
      // Not fsynced: all of it is the chain's, read again from the checkpoint if a power cut loses it.
      relaxedTransaction(this.log.db, () => {
        writeLog();
        this.sink.write(step);
      });
    } catch (error) {
      this.sink.discarded(step, error);
      throw error;
    }
    this.sink.committed(step);
  }

  /**
   * The escrow's logs in [from, to]: asked raw where the provider can (ethers wraps every log in a frozen
   * object, a cost per log that a rebuild of thousands of cases felt), else through ethers.
   */
  private async getLogs(from: number, to: number): Promise<RawLog[]> {
    const send = (this.provider as Partial<JsonRpcApiProvider>).send;
    if (typeof send !== "function")
      return this.provider.getLogs({ address: this.address, fromBlock: from, toBlock: to });
    const raw = (await send.call(this.provider, "eth_getLogs", [
      { address: this.address, fromBlock: toQuantity(from), toBlock: toQuantity(to) },
    ])) as Array<{
      blockNumber: string;
      blockHash: string;
      logIndex: string;
      transactionHash: string;
      topics: string[];
      data: string;
      removed?: boolean;
    }>;
    return raw.map((l) => ({
      blockNumber: Number(l.blockNumber),
      blockHash: l.blockHash,
      index: Number(l.logIndex),
      transactionHash: l.transactionHash,
      topics: l.topics,
      data: l.data,
      removed: l.removed === true,
    }));
  }

  /**
   * A block's hash and time, asked raw where the provider can: ethers' `getBlock` builds a whole frozen block
   * (every transaction hash formatted) for the two fields a range needs of each block with logs.
   */
  private async stampOf(number: number): Promise<{ hash: string | null; timestamp: number } | null> {
    const send = (this.provider as Partial<JsonRpcApiProvider>).send;
    if (typeof send !== "function") return this.block(number);
    const raw = (await this.chain(() =>
      send.call(this.provider, "eth_getBlockByNumber", [toQuantity(number), false]),
    )) as {
      hash: string;
      timestamp: string;
    } | null;
    return raw && { hash: raw.hash, timestamp: Number(raw.timestamp) };
  }

  private block(number: number | "latest"): Promise<Block | null> {
    return this.chain(() => this.provider.getBlock(number));
  }

  private async chain<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw error instanceof EngineError
        ? error
        : new ChainUnavailableError(`reading the chain failed: ${String(error)}`, error);
    }
  }
}
