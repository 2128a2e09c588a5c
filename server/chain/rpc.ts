/**
 * A JSON-RPC provider for the server's own calls (deploying, checking the escrow's code), made only after the
 * node has answered: ethers' provider, given a URL where nothing listens, retries its network detection forever
 * and logs about it, where a person starting the server needs one clear line naming RPC_URL.
 */
import { JsonRpcProvider, Network } from "ethers";
import { StartError } from "../settings";

export async function connectRpc(
  url: string,
  options: { name?: string; timeoutMs?: number } = {},
): Promise<{ provider: JsonRpcProvider; chainId: bigint }> {
  const name = options.name ?? "RPC_URL";
  let chainId: bigint;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    const body = (await response.json()) as { result?: string };
    if (typeof body.result !== "string") throw new Error(`answered ${JSON.stringify(body).slice(0, 200)}`);
    chainId = BigInt(body.result);
  } catch (error) {
    const inner = (error as { cause?: { code?: string; errors?: Array<{ code?: string }> } }).cause;
    const cause = inner?.code ?? inner?.errors?.[0]?.code ?? (error as Error).message;
    throw new StartError(`${name}: no EVM node answered eth_chainId at ${url} (${cause})`);
  }
  const provider = new JsonRpcProvider(url, Network.from(chainId), {
    staticNetwork: true,
    batchMaxCount: 1,
    cacheTimeout: -1,
  });
  return { provider, chainId };
}
