/**
 * What running a local node as a child process takes, for the embedded chain and for the tests' nodes alike:
 * a free port, its output watched until it says it is ready, and its whole process group stopped.
 */
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";

/** A port on `host` that nothing listened on a moment ago. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface ReadinessOptions {
  /** How the child is named in errors ("Anvil", "hardhat node"). */
  name: string;
  /** The line the child prints once it serves. */
  ready: RegExp;
  timeoutMs: number;
  /** How many of its last lines to keep, for error messages and `output()`. */
  keepLines: number;
  /** Every chunk it prints, e.g. to keep a log file. */
  onChunk?: (chunk: Buffer) => void;
  /** The error type to reject with (the server's StartError, say). */
  fail?: (message: string) => Error;
}

export interface WatchedChild {
  /** Resolves at the ready line; rejects if the child exits or stays silent past the timeout. */
  ready: Promise<void>;
  exited: Promise<void>;
  output(): string;
}

/** Watches a child's output until its ready line. Its pipes are drained always: a child writing to a full pipe would block. */
export function watchUntilReady(child: ChildProcess, options: ReadinessOptions): WatchedChild {
  const fail = options.fail ?? ((message: string) => new Error(message));
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(fail(`${options.name} did not start within ${options.timeoutMs / 1000} s:\n${lines.join("\n")}`)),
      options.timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      options.onChunk?.(chunk);
      for (const line of chunk.toString().split("\n")) {
        if (line.trim() === "") continue;
        lines.push(line);
        if (lines.length > options.keepLines) lines.shift();
        if (options.ready.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(fail(`${options.name} exited (${code ?? signal}) before it was ready:\n${lines.join("\n")}`));
    });
  });
  return { ready, exited, output: () => lines.join("\n") };
}

/** Signals the child's whole process group (it was spawned `detached`), or the child alone if that fails. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      process.kill(child.pid, signal);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopGroup(child: ChildProcess, exited: Promise<void>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  signalGroup(child, "SIGTERM");
  const killer = setTimeout(() => signalGroup(child, "SIGKILL"), graceMs);
  await exited;
  clearTimeout(killer);
}
