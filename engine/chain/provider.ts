/**
 * One provider for the engine: the embedded (in-process) Hardhat network or any EVM node over JSON-RPC.
 *
 * ethers caches identical answers for 250 ms by default, which hands out the same nonce to back-to-back
 * sends: the cache is off (the relayer keeps nonces itself). Against a node over HTTP, ethers' request
 * batching cost about 58 ms a transaction here, so requests go one at a time.
 *
 * Over HTTP every request has a timeout (`timeoutMs`, default 10 s; ethers' own is 5 minutes): a node that
 * accepts the connection and never answers would otherwise hold the projection's poll and the relayer's
 * worker for minutes. A timed-out request fails like a dropped connection, and the callers retry it.
 */
import { BrowserProvider, FetchRequest, JsonRpcProvider, type Eip1193Provider, type Provider } from "ethers";

export const DEFAULT_RPC_TIMEOUT_MS = 10_000;

export type ChainConnection =
  /** An EIP-1193 provider in this process, such as `hre.network.provider`. */
  | { kind: "in-process"; provider: Eip1193Provider }
  | { kind: "json-rpc"; url: string; timeoutMs?: number };

export function createProvider(connection: ChainConnection): Provider {
  if (connection.kind === "in-process") {
    return new BrowserProvider(connection.provider, undefined, { cacheTimeout: -1, pollingInterval: 50 });
  }
  const request = new FetchRequest(connection.url);
  request.timeout = connection.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
  return new JsonRpcProvider(request, undefined, {
    batchMaxCount: 1,
    cacheTimeout: -1,
    pollingInterval: 250,
    staticNetwork: false,
  });
}
