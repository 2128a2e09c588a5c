/**
 * `npm start` as a child process, for the tests that start the server as a user does: server/main.ts under
 * ts-node (directly, behind a shell, or behind the real `npm start`), in its own process group so that a test
 * can signal the whole group as a terminal's Ctrl-C or a service manager does. Every child still running when
 * the test process exits is killed with its group.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(__dirname, "..", "..", "..");
const TS_NODE = require.resolve("ts-node/dist/bin.js", { paths: [ROOT] });

export interface MainProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface RunOptions {
  /** Resolve when it exits rather than when it listens (a start that must fail). */
  expectExit?: boolean;
  /**
   * How it is launched: "direct" (node ts-node server/main.ts), "shell" (behind `sh -c`, `; true` keeping sh
   * from exec-ing), or "npm" (the real `npm start`: npm, its sh and the server in one process group).
   */
  via?: "direct" | "shell" | "npm";
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) signalGroup(child, "SIGKILL");
});

/** Spawns the server; resolves when it prints the URL it listens on (or rejects with its output). */
export function runMain(env: NodeJS.ProcessEnv, options: RunOptions = {}): Promise<MainProcess> {
  const via = options.via ?? "direct";
  const [command, args] =
    via === "npm"
      ? ["npm", ["start", "--silent"]]
      : via === "shell"
        ? ["/bin/sh", ["-c", `"${process.execPath}" "${TS_NODE}" --transpile-only server/main.ts; true`]]
        : [process.execPath, [TS_NODE, "--transpile-only", "server/main.ts"]];
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: "warn", ...env },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let output = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not listen within 90 s:\n${output}`)), 90_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const listening = /listening on (http:\/\/\S+)/.exec(output);
      if (listening && !options.expectExit) {
        clearTimeout(timer);
        resolve({ child, url: listening[1], output: () => output, exited });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    void exited.then(() => {
      clearTimeout(timer);
      if (options.expectExit) resolve({ child, url: "", output: () => output, exited });
      else reject(new Error(`npm start exited before it listened:\n${output}`));
    });
  });
}

/** Signals the child's whole process group (it was spawned `detached`, so it leads one). */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // gone
  }
}

/** Whether `pid` runs (a zombie, exited but not yet reaped, does not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

export async function api(
  url: string,
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** SIGTERM to the group, SIGKILL after 20 s; resolves with how it exited. */
export async function stopGracefully(
  main: MainProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  signalGroup(main.child, "SIGTERM");
  const killer = setTimeout(() => signalGroup(main.child, "SIGKILL"), 20_000);
  const result = await main.exited;
  clearTimeout(killer);
  return result;
}

/** The pid in `DATA_DIR/chain/anvil.pid`, or null. */
export function anvilPid(dataDir: string): number | null {
  try {
    return Number(readFileSync(join(dataDir, "chain", "anvil.pid"), "utf8").split("\n")[0]);
  } catch {
    return null;
  }
}

/** The latest block Anvil's saved state holds (`best_block_number`), or null if there is no readable file. */
export function savedBlock(dataDir: string): number | null {
  try {
    return Number(
      (JSON.parse(readFileSync(join(dataDir, "chain", "state.json"), "utf8")) as { best_block_number: string | number })
        .best_block_number,
    );
  } catch {
    return null;
  }
}

/** The process group and session of `pid`, from /proc (Linux). */
export function groupAndSession(pid: number): { group: number; session: number } {
  // After the command's closing parenthesis: state, ppid, pgrp, session.
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8")
    .replace(/^.*\) /s, "")
    .split(" ");
  return { group: Number(fields[2]), session: Number(fields[3]) };
}
