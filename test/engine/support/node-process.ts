/**
 * Real EVM nodes as child processes, for the tests that run the engine over JSON-RPC: `hardhat node` (this
 * project's Hardhat, with its config) and Anvil (`@foundry-rs/anvil`, a second, independent implementation).
 *
 * Both listen on 127.0.0.1 on a free port, with chain id 31337 and the accounts of the default mnemonic, so
 * keys and typed-data domains are the same on either. Each child is started in its own process group and
 * stopped by signalling the whole group (SIGTERM, then SIGKILL), so nothing outlives the test file; an exit
 * hook does the same if mocha ends abruptly.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { HDNodeWallet, JsonRpcProvider, Wallet, parseEther } from "ethers";
import { freePort, signalGroup, stopGroup, watchUntilReady } from "../../../server/chain/child-process";
import { DEV_MNEMONIC, anvilBinary } from "../../../server/chain/embedded-chain";

export { DEV_MNEMONIC, anvilBinary, freePort };

export const CHAIN_ID = 31337n;

export type NodeKind = "hardhat" | "anvil";

export interface NodeProcess {
  kind: NodeKind;
  url: string;
  port: number;
  pid: number;
  /** A provider for the test's own calls (deploying, moving the clock), not the engine's. */
  provider: JsonRpcProvider;
  /** The last lines the node printed, for failure messages. */
  output(): string;
  /** Stops the node's whole process group; resolves once the process has exited. */
  stop(): Promise<void>;
}

const ROOT = join(__dirname, "..", "..", "..");
const READY: Record<NodeKind, RegExp> = {
  hardhat: /Started HTTP and WebSocket JSON-RPC server/,
  anvil: /Listening on 127\.0\.0\.1:\d+/,
};
const live = new Set<ChildProcess>();

process.once("exit", () => {
  for (const child of live) signalGroup(child, "SIGKILL");
});

/** The dev account `index` of the default mnemonic (0: the deployer and admin). */
export function devWallet(index: number, provider?: JsonRpcProvider): Wallet {
  const hd = HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
  return new Wallet(hd.privateKey, provider);
}

/** `npx hardhat node` on a free port, with this project's config (prague, chain id 31337). */
export async function startHardhatNode(): Promise<NodeProcess> {
  const port = await freePort();
  const cli = require.resolve("hardhat/internal/cli/cli.js", { paths: [ROOT] });
  return launch("hardhat", port, process.execPath, [cli, "node", "--port", String(port), "--hostname", "127.0.0.1"]);
}

/** Anvil from `@foundry-rs/anvil` on a free port, chain id 31337, the default mnemonic, prague. */
export async function startAnvil(): Promise<NodeProcess> {
  const port = await freePort();
  return launch("anvil", port, anvilBinary(), [
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--chain-id",
    String(CHAIN_ID),
    "--mnemonic",
    DEV_MNEMONIC,
    "--accounts",
    "10",
    "--hardfork",
    "prague",
  ]);
}

export function startNode(kind: NodeKind): Promise<NodeProcess> {
  return kind === "hardhat" ? startHardhatNode() : startAnvil();
}

/** Sends `wei` from dev account 0, as a plain transfer (works the same on any node). */
export async function fund(node: NodeProcess, address: string, wei: bigint = parseEther("10")): Promise<void> {
  await (await devWallet(0, node.provider).sendTransaction({ to: address, value: wei })).wait();
}

/** Mines one block at `timestamp` (seconds), as Hardhat's `time.increaseTo` does in-process. */
export async function increaseTo(node: NodeProcess, timestamp: number): Promise<void> {
  await node.provider.send("evm_setNextBlockTimestamp", [timestamp]);
  await node.provider.send("evm_mine", []);
}

export async function latestTimestamp(node: NodeProcess): Promise<number> {
  return (await node.provider.getBlock("latest"))!.timestamp;
}

async function launch(kind: NodeKind, port: number, command: string, args: string[]): Promise<NodeProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HARDHAT_DISABLE_TELEMETRY_PROMPT: "true",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
  };
  delete env.HARDHAT_NETWORK; // the node serves the in-process "hardhat" network of the config, whatever the parent uses
  const child = spawn(command, args, { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  const watched = watchUntilReady(child, {
    name: `${kind} node`,
    ready: READY[kind],
    timeoutMs: 60_000,
    keepLines: 200,
  });
  watched.exited.then(() => live.delete(child));

  const url = `http://127.0.0.1:${port}`;
  const stop = () => stopGroup(child, watched.exited, 5_000);
  try {
    await watched.ready;
  } catch (error) {
    await stop();
    throw error;
  }
  const provider = new JsonRpcProvider(url, undefined, { batchMaxCount: 1, cacheTimeout: -1, staticNetwork: true });
  const chainId = (await provider.getNetwork()).chainId;
  if (chainId !== CHAIN_ID) {
    await stop();
    throw new Error(`${kind} node reports chain id ${chainId}, expected ${CHAIN_ID}`);
  }
  return {
    kind,
    url,
    port,
    pid: child.pid!,
    provider,
    output: watched.output,
    stop: async () => {
      provider.destroy();
      await stop();
    },
  };
}
