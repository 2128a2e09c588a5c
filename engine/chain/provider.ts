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
  { kind: "in-process"; provider: Eip1193Provider } | { kind: "json-rpc"; url: string; timeoutMs?: number };

/**
 * ethers' provider for an EIP-1193 provider in this process, minus two costs per request: the chain id is
 * asked once (`staticNetwork`; otherwise ethers asks for it again before every request, an extra eth_chainId
 * call for each), and a request goes to the node at once rather than through ethers' batch queue, which waits
 * for a timer (at least a millisecond, more on a busy event loop) even when batches are off. Answers and errors
 * are ethers' own (`_send`, `getRpcError`), as its own `send` gives them.
 */
class InProcessProvider extends BrowserProvider {
  private nextRequestId = 1;

  constructor(ethereum: Eip1193Provider) {
    super(ethereum, undefined, { cacheTimeout: -1, pollingInterval: 50, staticNetwork: true });
  }

  override async send(method: string, params: unknown[] | Record<string, unknown>): Promise<unknown> {
    await this._start();
    if (this.destroyed) throw new Error("provider destroyed; cancelled request");
    const payload = { method, params: params as unknown[], id: this.nextRequestId++, jsonrpc: "2.0" as const };
    const [response] = await this._send(payload);
    if ("error" in response) throw this.getRpcError(payload, response);
    return response.result;
  }
}

export function createProvider(connection: ChainConnection): Provider {
  if (connection.kind === "in-process") return new InProcessProvider(connection.provider);
  const request = new FetchRequest(connection.url);
  request.timeout = connection.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
  return new JsonRpcProvider(request, undefined, {
    batchMaxCount: 1,
    cacheTimeout: -1,
    pollingInterval: 250,
    staticNetwork: false,
  });
}
