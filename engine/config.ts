/**
 * The engine's configuration, parsed at `createEngine` so that a bad value fails at once with a message
 * naming it (a `ConfigError` whose details list every problem by its path).
 */
import { BaseWallet, isAddress } from "ethers";
import { z } from "zod";
import { ConfigError } from "./errors";

const wallet = z.custom<BaseWallet>((value) => value instanceof BaseWallet, {
  message: "must be an ethers Wallet (a private key the engine signs with)",
});

const eip1193 = z.custom<{ request: (args: { method: string; params?: unknown[] | object }) => Promise<unknown> }>(
  (value) =>
    typeof value === "object" && value !== null && typeof (value as { request?: unknown }).request === "function",
  { message: "must be an EIP-1193 provider (with a request function), such as hre.network.provider" },
);

export const EngineConfig = z
  .object({
    /** The data folder: the SQLite store is `engine.sqlite` in it. */
    dataDir: z.string().min(1).optional(),
    /** Or the SQLite file itself. */
    dbFile: z.string().min(1).optional(),
    chain: z.discriminatedUnion("kind", [
      z.object({ kind: z.literal("in-process"), provider: eip1193 }),
      z.object({
        kind: z.literal("json-rpc"),
        url: z.url({ protocol: /^https?$/, message: "must be an http(s) URL" }),
        /** How long one request may take before it counts as failed (and is retried). */
        timeoutMs: z.number().int().positive().optional(),
      }),
    ]),
    escrowAddress: z.string().refine((a) => isAddress(a), { message: "must be a 20-byte hex address" }),
    /** The relayer's own key: it pays for relayed sign-offs, `advance`, `expire` and `withdrawFor`. */
    relayerKey: wallet,
    /** The principals' managed keys. */
    partyKeys: z.array(wallet).default([]),
    confirmations: z.number().int().min(1).default(1),
    pollIntervalMs: z.number().int().positive().default(500),
    /** The block the escrow was deployed in: where following (and a rebuild) starts. */
    deploymentBlock: z.number().int().nonnegative().default(0),
    /** How long the first ready sign-off waits for others to join its batch. */
    batchWindowMs: z.number().int().nonnegative().default(50),
  })
  .refine((c) => c.dataDir !== undefined || c.dbFile !== undefined, {
    message: "give dataDir or dbFile",
    path: ["dataDir"],
  });

export type EngineConfigInput = z.input<typeof EngineConfig>;
export type EngineConfig = z.output<typeof EngineConfig>;

export function parseEngineConfig(input: unknown): EngineConfig {
  const parsed = EngineConfig.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join(".") : "config"}: ${i.message}`);
  throw new ConfigError(`the engine's configuration is not valid: ${problems.join("; ")}`, { problems });
}
