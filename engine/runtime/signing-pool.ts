/**
 * Managed-key signatures of 32-byte digests (EIP-712 sign-offs) on a worker thread, off the event loop.
 *
 * A signature is about half a millisecond of JavaScript (@noble/curves, as ethers' `SigningKey.sign`): a
 * thousand approvals arriving together held the event loop for half a second, while the relayer waited to
 * send and the projection to read. On a worker they are made beside the node and the projection, on another
 * core. The signature is the one ethers makes: the same library, RFC 6979 (deterministic, so the same
 * approval asked again is the same bytes under its idempotency key) and a low `s`.
 *
 * Requests of one turn of the event loop go in messages of `PER_MESSAGE`, answered one message at a time, so
 * the first are back (recorded, sent) while the rest are signed. Where no worker starts, or one dies, the
 * digests are signed here, `PER_MESSAGE` per turn of the event loop, so that timers (the relayer's) still
 * run between them.
 */
import { dirname } from "node:path";
import { Worker } from "node:worker_threads";
import type { BaseWallet } from "ethers";

/** Signatures per message to the worker, and per turn of the event loop where there is none. */
const PER_MESSAGE = 32;

interface Request {
  id: number;
  key: BaseWallet;
  digest: string;
  resolve: (signature: string) => void;
  reject: (error: Error) => void;
}

/** The worker: the private key of an address once, then digests to sign; one answer per message. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { secp256k1 } = require(workerData.secp256k1);
const keys = new Map();
const hex = (n) => n.toString(16).padStart(64, "0");
parentPort.on("message", (requests) => {
  parentPort.postMessage(requests.map((r) => {
    try {
      if (r.privateKey) keys.set(r.address, Buffer.from(r.privateKey.slice(2), "hex"));
      const sig = secp256k1.sign(Buffer.from(r.digest.slice(2), "hex"), keys.get(r.address), { lowS: true });
      return { id: r.id, signature: "0x" + hex(sig.r) + hex(sig.s) + (sig.recovery ? "1c" : "1b") };
    } catch (error) {
      return { id: r.id, error: String((error && error.message) || error) };
    }
  }));
});
`;

export class SigningPool {
  private worker: Worker | null | undefined;
  private nextId = 1;
  private readonly inFlight = new Map<number, Request>();
  /** Addresses whose key the worker holds. */
  private readonly known = new Set<string>();
  private queued: Request[] = [];
  private closed = false;

  /** The signature (65 bytes, hex) of `digest` by `key`, as `key.signingKey.sign(digest).serialized`. */
  sign(key: BaseWallet, digest: string): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.flush());
      this.queued.push({ id: this.nextId++, key, digest, resolve, reject });
    });
  }

  /** Starts the worker now rather than at the first signature (its start is tens of milliseconds). */
  warmUp(): void {
    this.started();
  }

  /** Stops the worker; what it had not answered is signed here. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
    this.signHere([...this.inFlight.values()]);
    this.inFlight.clear();
  }

  private flush(): void {
    const requests = this.queued;
    this.queued = [];
    const worker = this.started();
    if (!worker) return this.signHere(requests);
    for (let i = 0; i < requests.length; i += PER_MESSAGE) {
      const message = requests.slice(i, i + PER_MESSAGE).map((r) => {
        this.inFlight.set(r.id, r);
        const address = r.key.address;
        const first = !this.known.has(address);
        this.known.add(address);
        return { id: r.id, address, digest: r.digest, ...(first ? { privateKey: r.key.privateKey } : {}) };
      });
      worker.postMessage(message);
    }
  }

  private started(): Worker | null {
    if (this.worker !== undefined || this.closed) return this.worker ?? null;
    try {
      // ethers' own copy of the library, so the signature is the one it would make.
      const secp256k1 = require.resolve("@noble/curves/secp256k1", { paths: [dirname(require.resolve("ethers"))] });
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { secp256k1 } });
      // Idle, it keeps no process alive; the engine's stop terminates it.
      worker.unref();
      worker.on("message", (answers: Array<{ id: number; signature?: string; error?: string }>) => {
        for (const a of answers) {
          const r = this.inFlight.get(a.id);
          if (!r) continue;
          this.inFlight.delete(a.id);
          if (a.signature) r.resolve(a.signature);
          else r.reject(new Error(`signing failed: ${a.error}`));
        }
      });
      worker.on("error", () => this.lost(worker));
      worker.on("exit", () => this.lost(worker));
      this.worker = worker;
    } catch {
      this.worker = null;
    }
    return this.worker;
  }

  /** The worker died: from now on, and for what it had not answered, the signatures are made here. */
  private lost(worker: Worker): void {
    if (this.worker === worker) this.worker = null;
    const unanswered = [...this.inFlight.values()];
    this.inFlight.clear();
    this.signHere(unanswered);
  }

  private signHere(requests: Request[]): void {
    const now = requests.slice(0, PER_MESSAGE);
    const later = requests.slice(PER_MESSAGE);
    for (const r of now) {
      try {
        r.resolve(r.key.signingKey.sign(r.digest).serialized);
      } catch (error) {
        r.reject(error as Error);
      }
    }
    if (later.length > 0) setImmediate(() => this.signHere(later));
  }
}
