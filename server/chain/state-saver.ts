/**
 * Saves the embedded Anvil's state to `DATA_DIR/chain/state.json`, the one writer of that file: every second
 * while the chain moves, on demand (`save()`: the dev clock answers only once its move is on disk), and once
 * more before Anvil is stopped.
 *
 * Why the server and not Anvil's own `--state-interval`: Anvil writes the file in place, so a kill in the
 * middle of a write leaves it damaged (the next start then falls back to an older copy), and it saves neither
 * on demand nor reliably on every signal. Here each save asks Anvil for its state (`anvil_dumpState`: the same
 * JSON as its state file, gzipped), writes it to a temporary file beside the state file and renames it over
 * it: a reader, or a start after a `kill -9` at any moment, sees the previous save or this one, whole.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { gunzipSync } from "node:zlib";

export interface StateSaver {
  /** Saves the chain's current state; resolves once it is on disk. Saves asked for during a save share the next one. */
  save(): Promise<void>;
  /** Stops the periodic saves (a save in progress finishes first). */
  stop(): Promise<void>;
}

export interface StateSaverOptions {
  url: string;
  stateFile: string;
  /** How often to look whether the chain moved (and save it if so); default 1 s. */
  intervalMs?: number;
  /** Told about a periodic save that failed (the next one tries again). */
  log?: (line: string) => void;
}

/** One JSON-RPC call to Anvil, with a timeout (a hung node must not hold a stop forever). */
export async function anvilCall<T>(
  url: string,
  method: string,
  params: unknown[] = [],
  timeoutMs = 10_000,
): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await response.json()) as { result?: T; error?: { message?: string } };
  if (body.error || body.result === undefined) throw new Error(`${method}: ${body.error?.message ?? "no result"}`);
  return body.result;
}

/** Asks Anvil at `url` for its state and writes it to `stateFile` atomically (temporary file, fsync, rename). */
export async function dumpStateTo(url: string, stateFile: string): Promise<void> {
  const dump = await anvilCall<string>(url, "anvil_dumpState");
  const json = gunzipSync(Buffer.from(dump.replace(/^0x/, ""), "hex"));
  const temporary = `${stateFile}.saving`;
  const fd = openSync(temporary, "w", 0o644);
  try {
    writeSync(fd, json);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, stateFile);
}

export function startStateSaver(options: StateSaverOptions): StateSaver {
  const log = options.log ?? (() => undefined);
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  let savedHead: string | null = null;
  let failing = false;

  /** The head block's hash, then the state: a block mined in between is in the dump, and saved again next time. */
  const saveNow = async () => {
    const head = await anvilCall<{ hash: string } | null>(options.url, "eth_getBlockByNumber", ["latest", false]);
    await dumpStateTo(options.url, options.stateFile);
    savedHead = head?.hash ?? null;
  };
  const save = (): Promise<void> => {
    if (queued) return queued;
    const after = running ?? Promise.resolve();
    const next: Promise<void> = after
      .catch(() => undefined)
      .then(() => {
        queued = null;
        running = next;
        return saveNow();
      })
      .finally(() => {
        if (running === next) running = null;
      });
    queued = next;
    return next;
  };

  const tick = async () => {
    try {
      const head = await anvilCall<{ hash: string } | null>(options.url, "eth_getBlockByNumber", ["latest", false]);
      if ((head?.hash ?? null) !== savedHead) await save();
      if (failing) log("embedded chain: saving its state works again");
      failing = false;
    } catch (error) {
      if (!failing)
        log(`embedded chain: saving its state failed (tried again every second): ${(error as Error).message}`);
      failing = true;
    }
  };
  let ticking: Promise<void> | null = null;
  const timer = setInterval(() => {
    ticking ??= tick().finally(() => {
      ticking = null;
    });
  }, options.intervalMs ?? 1_000);
  timer.unref();

  return {
    save,
    async stop() {
      clearInterval(timer);
      await ticking;
      await running?.catch(() => undefined);
    },
  };
}
