/**
 * One provider for the engine: the embedded (in-process) Hardhat network or any EVM node over JSON-RPC.
 *
 * ethers caches identical answers for 250 ms by default, which hands out the same nonce to back-to-back
 * sends: the cache is off (the relayer keeps nonces itself). Against a node over HTTP, ethers' request
 * batching cost about 58 ms a transaction here, so requests go one at a time.
 */
import { BrowserProvider, JsonRpcProvider, type Eip1193Provider, type Provider } from "ethers";

export type ChainConnection =
  /** An EIP-1193 provider in this process, such as `hre.network.provider`. */
  | { kind: "in-process"; provider: Eip1193Provider }
  | { kind: "json-rpc"; url: string };

export function createProvider(connection: ChainConnection): Provider {
  if (connection.kind === "in-process") {
    return new BrowserProvider(connection.provider, undefined, { cacheTimeout: -1, pollingInterval: 50 });
  }
  return new JsonRpcProvider(connection.url, undefined, {
    batchMaxCount: 1,
    cacheTimeout: -1,
    pollingInterval: 250,
    staticNetwork: false,
  });
}
