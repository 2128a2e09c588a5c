/**
 * The embedded chain of `npm start`: Anvil (from the npm package `@foundry-rs/anvil`) as a child process on a
 * free 127.0.0.1 port, chain id 31337, the accounts of the default test mnemonic, its state in
 * `DATA_DIR/chain/state.json` so that the chain (blocks, receipts, balances, contracts) survives a restart.
 *
 * Why Anvil and not Hardhat's in-process network: Hardhat keeps nothing on disk, Anvil loads a saved state
 * (`--load-state`). The server writes that file (see state-saver.ts): every second while the chain moves, on
 * demand, and before it stops Anvil, each time atomically; so a hard kill loses at most about a second of
 * blocks, and the engine treats a chain that came back older than its store like a reorganisation and
 * re-submits what the chain lacks from its outbox.
 *
 * Anvil runs in a session and process group of its own, so a signal to the server's group (Ctrl-C, a service
 * manager's SIGTERM to npm's group) reaches only the server, which stops the engine first and Anvil last: a
 * last save, then SIGTERM. Its pid and port are kept in `DATA_DIR/chain/anvil.pid`: if the server was killed
 * hard and its Anvil lives on, the next start saves that one's state and stops it before starting a new one on
 * the same state.
 */
import { spawn } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { createServer } from "node:net";
import { JsonRpcProvider } from "ethers";
import { StartError } from "../settings";
import { freePort, stopGroup, watchUntilReady } from "./child-process";
import { dumpStateTo, startStateSaver } from "./state-saver";

/** The mnemonic of Anvil's (and Hardhat's) dev accounts. Public: never for real money. */
export const DEV_MNEMONIC = "test test test test test test test test test test test junk";
export const EMBEDDED_CHAIN_ID = 31337;

export interface EmbeddedChain {
  url: string;
  port: number;
  pid: number;
  stateFile: string;
  /** The last lines Anvil printed (it also writes them to `chain/anvil.log`). */
  output(): string;
  /** Writes the chain's state to `stateFile` now; resolves once it is on disk. */
  save(): Promise<void>;
  /** A last save, then SIGTERM, SIGKILL after `graceMs`; resolves once Anvil has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface EmbeddedChainOptions {
  dataDir: string;
  /** The port to serve on (`CHAIN_PORT`), so that a wallet pointed at it keeps working across starts; default a free one. */
  port?: number;
  /** Told about a leftover Anvil it stopped, a clock it restored, and the like. */
  log?: (line: string) => void;
}

const ROOT = join(__dirname, "..", "..");

/**
 * The platform binary that `@foundry-rs/anvil` installs as an optional dependency. Its `bin.mjs` wrapper only
 * spawns this file; running the binary itself leaves one process to signal instead of two.
 */
export function anvilBinary(): string {
  const arch = ({ x64: "amd64", arm64: "arm64" } as Record<string, string>)[process.arch];
  if (!arch)
    throw new StartError(
      `@foundry-rs/anvil ships no binary for ${process.platform}/${process.arch}: run with RPC_URL against a node of your own`,
    );
  let pkg: string;
  try {
    pkg = require.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/package.json`, { paths: [ROOT] });
  } catch {
    throw new StartError(
      `the Anvil binary (@foundry-rs/anvil-${process.platform}-${arch}) is not installed: run npm install`,
    );
  }
  return join(dirname(pkg), "bin", process.platform === "win32" ? "anvil.exe" : "anvil");
}

export async function startEmbeddedChain(options: EmbeddedChainOptions): Promise<EmbeddedChain> {
  const log = options.log ?? (() => undefined);
  const dir = join(options.dataDir, "chain");
  mkdirSync(dir, { recursive: true });
  const pidFile = join(dir, "anvil.pid");
  const stateFile = join(dir, "state.json");

  await stopLeftover(pidFile, stateFile, log);
  checkState(stateFile, log);

  const port = options.port ?? (await freePort());
  if (options.port !== undefined) await requireFree(options.port);
  const logFd = openSync(join(dir, "anvil.log"), "a");
  const child = spawn(
    anvilBinary(),
    [
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--chain-id",
      String(EMBEDDED_CHAIN_ID),
      "--mnemonic",
      DEV_MNEMONIC,
      "--accounts",
      "10",
      "--hardfork",
      "prague",
      ...(existsSync(stateFile) ? ["--load-state", stateFile] : []),
    ],
    { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
  );
  writeFileSync(pidFile, `${child.pid}\n${port}\n`);

  const watched = watchUntilReady(child, {
    name: "Anvil",
    ready: /Listening on 127\.0\.0\.1:\d+/,
    timeoutMs: 30_000,
    keepLines: 100,
    fail: (message) => new StartError(message),
    // Also kept in anvil.log.
    onChunk: (chunk) => {
      try {
        writeFileSync(logFd, chunk);
      } catch {
        // the log is a convenience
      }
    },
  });
  child.once("exit", () => {
    removePidFile(pidFile, child.pid);
    try {
      closeSync(logFd);
    } catch {
      // already closed
    }
  });

  try {
    await watched.ready;
  } catch (error) {
    await stopGroup(child, watched.exited, 2_000);
    throw error;
  }
  const url = `http://127.0.0.1:${port}`;
  try {
    await restoreClock(url, log);
  } catch (error) {
    await stopGroup(child, watched.exited, 2_000);
    throw error;
  }
  const saver = startStateSaver({ url, stateFile, log });
  const stop = async (graceMs = 10_000) => {
    await saver.stop();
    if (child.exitCode === null && child.signalCode === null) {
      try {
        await saver.save();
      } catch (error) {
        log(
          `embedded chain: its last save before stopping failed (the previous one, at most a second older, stays): ${(error as Error).message}`,
        );
      }
    }
    await stopGroup(child, watched.exited, graceMs);
  };
  return { url, port, pid: child.pid!, stateFile, output: watched.output, save: saver.save, stop };
}

/**
 * Anvil's saved state keeps the blocks but not the offset that `evm_increaseTime` (the dev clock) added, so a
 * chain whose clock was moved forward would come back with its next block dated before its latest one, and the
 * contract would see waiting periods un-pass. Setting the offset back to at least the latest block's time keeps
 * the clock monotonic (time that passed while the chain was down is not added back: a demo convenience).
 */
async function restoreClock(url: string, log: (line: string) => void): Promise<void> {
  const provider = new JsonRpcProvider(url, EMBEDDED_CHAIN_ID, { staticNetwork: true, cacheTimeout: -1 });
  try {
    const latest = await provider.getBlock("latest");
    const now = Math.floor(Date.now() / 1000);
    if (latest && latest.number > 0 && latest.timestamp > now) {
      const ahead = latest.timestamp - now + 1;
      await provider.send("evm_increaseTime", [ahead]);
      log(`embedded chain: its clock was ${ahead} s ahead of the wall clock (the dev clock had been moved); restored`);
    }
  } finally {
    provider.destroy();
  }
}

/**
 * Anvil writes its state file in place, so a kill in the middle of a write can leave it damaged, and Anvil
 * refuses to start on a file it cannot parse. A copy of the last state that parsed is kept beside it
 * (`state.good.json`) and used instead: the chain then comes back older, which the engine handles like any older
 * chain (it re-submits what the chain lacks from its outbox).
 */
function checkState(stateFile: string, log: (line: string) => void): void {
  const good = stateFile.replace(/\.json$/, ".good.json");
  if (!existsSync(stateFile)) {
    if (existsSync(good)) {
      copyFileSync(good, stateFile);
      log(
        `embedded chain: ${stateFile} is missing; loading the previous copy (${good}): the engine re-submits what that chain lacks`,
      );
    }
    return;
  }
  if (parses(stateFile)) {
    copyFileSync(stateFile, good);
    log(`embedded chain: loading its state from ${stateFile}`);
    return;
  }
  const damaged = `${stateFile}.damaged-${Date.now()}`;
  renameSync(stateFile, damaged);
  if (!existsSync(good)) {
    throw new StartError(
      `${stateFile}: the embedded chain's saved state is damaged (kept as ${damaged}) and there is no earlier copy. Move the data folder aside to start afresh`,
    );
  }
  copyFileSync(good, stateFile);
  log(
    `embedded chain: its saved state was damaged (kept as ${damaged}); loading the previous copy (${good}): the engine re-submits what that chain lacks`,
  );
}

function parses(file: string): boolean {
  try {
    JSON.parse(readFileSync(file, "utf8"));
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the Anvil that a hard-killed server left running (its pid still alive and still an Anvil), after saving
 * its state (from the port in the pid file). A pid that now belongs to another program is left alone.
 */
async function stopLeftover(pidFile: string, stateFile: string, log: (line: string) => void): Promise<void> {
  if (!existsSync(pidFile)) return;
  const [pid, port] = readFileSync(pidFile, "utf8").trim().split("\n").map(Number);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid) || !isAnvil(pid)) {
    rmSync(pidFile, { force: true });
    return;
  }
  log(`embedded chain: stopping the Anvil left over from an earlier run (pid ${pid}) after saving its state`);
  if (Number.isInteger(port) && port > 0) {
    try {
      await dumpStateTo(`http://127.0.0.1:${port}`, stateFile);
    } catch (error) {
      log(
        `embedded chain: the leftover Anvil's state could not be saved (its last periodic save stays): ${(error as Error).message}`,
      );
    }
  }
  signal(pid, "SIGTERM");
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) {
    log(`embedded chain: Anvil ${pid} did not stop within 10 s; killing it (its last second of state may be lost)`);
    signal(pid, "SIGKILL");
    while (alive(pid)) await new Promise((r) => setTimeout(r, 50));
  }
  rmSync(pidFile, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // A zombie (exited, not yet reaped by its parent) still answers signal 0.
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/** Where /proc exists (Linux), checks the pid's program; elsewhere trusts the pid file. */
function isAnvil(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0].includes("anvil");
  } catch {
    return !existsSync("/proc");
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

function removePidFile(pidFile: string, pid: number | undefined): void {
  try {
    if (Number(readFileSync(pidFile, "utf8").split("\n")[0]) === pid) rmSync(pidFile, { force: true });
  } catch {
    // gone already
  }
}

/** A taken CHAIN_PORT said by name before Anvil starts, rather than as Anvil's own exit. */
function requireFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new StartError(
          `CHAIN_PORT: ${port} on 127.0.0.1 is in use (${error.code}); set CHAIN_PORT to a free port, or unset it for any free one`,
        ),
      ),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}
