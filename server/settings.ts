/**
 * The process settings, parsed once from the environment at start. A missing or wrong setting stops the start
 * with a message that names it (`ESCROW_ADDRESS: must be a 20-byte hex address`), never with a stack trace:
 * the reader is someone starting the server, not someone debugging it.
 *
 * Two modes follow from the settings:
 * - embedded (no `RPC_URL`): the server runs its own chain (Anvil) in the data folder, deploys the escrow and
 *   creates demo data on it. Its keys are the public dev accounts, so a default keystore password may stand in.
 * - external (`RPC_URL`): the server joins an existing chain where `npm run deploy` put the escrow; it needs
 *   `ESCROW_ADDRESS`, the relayer's keystore (`SIGNER_KEYSTORE`) and `KEYSTORE_PASSWORD`, which
 *   `DATA_DIR/deployment.env` records (all but the password).
 *
 * `SETTINGS` below documents each one (what it does, its default); `npm start -- --help` prints it, and a test
 * holds it to the schemas and to the README's table.
 */
import { isAddress, getAddress } from "ethers";
import { resolve } from "node:path";
import { z } from "zod";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** A setting given as an empty string counts as not given (`RPC_URL= npm start` means "no RPC_URL"). */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === "" ? undefined : v), schema.optional());

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { message: `must be a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { message: `must be at least ${min}` })
        .max(max, { message: `must be at most ${max}` }),
    );

const httpUrl = z.string().refine(
  (value) => {
    try {
      return ["http:", "https:"].includes(new URL(value).protocol);
    } catch {
      return false;
    }
  },
  { message: "must be an http(s) URL, such as http://127.0.0.1:8545" },
);

const address = z
  .string()
  .refine((value) => isAddress(value), { message: "must be a 20-byte hex address (0x followed by 40 hex digits)" })
  .transform((value) => getAddress(value));

const Environment = z.object({
  PORT: optional(integer(0, 65_535)),
  HOST: optional(
    z.string().regex(/^[\w.:-]+$/, { message: "must be a host name or an IP address, such as 127.0.0.1" }),
  ),
  DATA_DIR: optional(z.string()),
  LOG_LEVEL: optional(z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(", ")}` })),
  RATE_LIMIT_PER_MINUTE: optional(integer(1, 1_000_000)),
  /** Requests without a token, per client address (many people may share one); the page's files never count. */
  RATE_LIMIT_ANONYMOUS_PER_MINUTE: optional(integer(1, 1_000_000)),
  KEYSTORE_PASSWORD: optional(z.string()),
  RPC_URL: optional(httpUrl),
  ESCROW_ADDRESS: optional(address),
  SIGNER_KEYSTORE: optional(z.string()),
  CONFIRMATIONS: optional(integer(1, 64)),
  /** External mode: the block the escrow was deployed in (`npm run deploy` prints it); following starts there. */
  DEPLOYMENT_BLOCK: optional(integer(0, Number.MAX_SAFE_INTEGER)),
  POLL_INTERVAL_MS: optional(integer(10, 60_000)),
  /** Embedded chain only: Anvil's port, fixed so that a wallet or an explorer pointed at it keeps working. */
  CHAIN_PORT: optional(integer(1, 65_535)),
  /** Lets webhook subscriptions name loopback and private addresses: for local testing only. */
  WEBHOOKS_ALLOW_PRIVATE_URLS: optional(z.enum(["true", "false"], { message: "must be true or false" })),
  WEBHOOKS_TIMEOUT_MS: optional(integer(100, 120_000)),
  WEBHOOKS_RETRY_WINDOW_SECONDS: optional(integer(1, 7 * 86_400)),
  /** The case page's indicative conversion: a currency code and how much of it one whole ETH is worth. */
  DISPLAY_CURRENCY: optional(
    z.string().regex(/^[A-Z]{3}$/, { message: "must be a currency code of 3 capitals, such as GBP" }),
  ),
  DISPLAY_RATE: optional(
    z.string().regex(/^\d{1,15}(\.\d{1,8})?$/, { message: "must be a positive decimal number, such as 2500 or 0.75" }),
  ),
});

export type ChainSettings =
  | { mode: "embedded" }
  | { mode: "external"; rpcUrl: string; escrowAddress: string; signerKeystore: string; deploymentBlock: number };

export interface Settings {
  port: number;
  host: string;
  /** Absolute. */
  dataDir: string;
  logLevel: (typeof LOG_LEVELS)[number];
  rateLimitPerMinute: number;
  rateLimitAnonymousPerMinute: number;
  /** Undefined when not set: only the embedded chain may then fall back to the dev password. */
  keystorePassword: string | undefined;
  confirmations: number;
  pollIntervalMs: number;
  /** The embedded chain's port, or null for any free one. */
  chainPort: number | null;
  chain: ChainSettings;
  webhooks: { allowPrivateUrls: boolean; timeoutMs: number; retryWindowMs: number };
  /** The case page's indicative display currency, or null for none (amounts in the asset's unit alone). */
  display: DisplaySettings;
}

/** One whole ETH is worth `rate` of `currency`: set by the operator, shown on the page as indicative. */
export interface DisplaySettings {
  currency: { code: string; rate: string } | null;
}

/** Every problem found, each as `NAME: what is wrong`. */
export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`the settings are not valid:\n${problems.map((p) => `  ${p}`).join("\n")}`);
    this.name = "SettingsError";
  }
}

/** Parses `env` (the process environment by default); throws a `SettingsError` naming every bad setting. */
export function parseSettings(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): Settings {
  const parsed = Environment.safeParse(pick(env));
  if (!parsed.success) {
    throw new SettingsError(parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  let chain: ChainSettings = { mode: "embedded" };
  if (e.RPC_URL !== undefined) {
    const need = (name: string, value: unknown, why: string) => {
      if (value === undefined) problems.push(`${name}: is required with RPC_URL (${why})`);
    };
    need("ESCROW_ADDRESS", e.ESCROW_ADDRESS, "the escrow that `npm run deploy` printed");
    need("SIGNER_KEYSTORE", e.SIGNER_KEYSTORE, "the path of the relayer's encrypted JSON keystore");
    need(
      "KEYSTORE_PASSWORD",
      e.KEYSTORE_PASSWORD,
      "the password of the keystores; only the embedded demo chain has a default",
    );
    if (e.CHAIN_PORT !== undefined)
      problems.push(
        "CHAIN_PORT: is the embedded chain's port; with RPC_URL there is no embedded chain, so unset CHAIN_PORT",
      );
    if (problems.length === 0) {
      chain = {
        mode: "external",
        rpcUrl: e.RPC_URL,
        escrowAddress: e.ESCROW_ADDRESS!,
        signerKeystore: resolve(cwd, e.SIGNER_KEYSTORE!),
        deploymentBlock: e.DEPLOYMENT_BLOCK ?? 0,
      };
    }
  } else {
    // Without RPC_URL these would be silently ignored, which hides a forgotten RPC_URL: say so instead.
    for (const name of ["ESCROW_ADDRESS", "SIGNER_KEYSTORE", "DEPLOYMENT_BLOCK"] as const) {
      if (e[name] !== undefined)
        problems.push(
          `${name}: is only used with RPC_URL (an external chain); set RPC_URL too, or unset ${name} for the embedded chain`,
        );
    }
  }
  if ((e.DISPLAY_CURRENCY === undefined) !== (e.DISPLAY_RATE === undefined))
    problems.push(
      e.DISPLAY_CURRENCY === undefined
        ? "DISPLAY_RATE: is a rate to DISPLAY_CURRENCY; set DISPLAY_CURRENCY too, or unset DISPLAY_RATE"
        : "DISPLAY_CURRENCY: needs DISPLAY_RATE, what one ETH is worth in it (such as 2500)",
    );
  else if (e.DISPLAY_RATE !== undefined && !(Number(e.DISPLAY_RATE) > 0))
    problems.push("DISPLAY_RATE: must be more than 0");
  if (problems.length > 0) throw new SettingsError(problems);
  return {
    port: e.PORT ?? 3000,
    host: e.HOST ?? "127.0.0.1",
    dataDir: resolve(cwd, e.DATA_DIR ?? ".data"),
    logLevel: e.LOG_LEVEL ?? "info",
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE ?? 600,
    rateLimitAnonymousPerMinute: e.RATE_LIMIT_ANONYMOUS_PER_MINUTE ?? 6_000,
    keystorePassword: e.KEYSTORE_PASSWORD,
    confirmations: e.CONFIRMATIONS ?? 1,
    pollIntervalMs: e.POLL_INTERVAL_MS ?? (chain.mode === "embedded" ? 200 : 1_000),
    chainPort: e.CHAIN_PORT ?? null,
    chain,
    webhooks: {
      allowPrivateUrls: e.WEBHOOKS_ALLOW_PRIVATE_URLS === "true",
      timeoutMs: e.WEBHOOKS_TIMEOUT_MS ?? 10_000,
      retryWindowMs: (e.WEBHOOKS_RETRY_WINDOW_SECONDS ?? 86_400) * 1000,
    },
    display: {
      currency:
        e.DISPLAY_CURRENCY !== undefined && e.DISPLAY_RATE !== undefined
          ? { code: e.DISPLAY_CURRENCY, rate: e.DISPLAY_RATE }
          : null,
    },
  };
}

/** Only our own names, so that zod's messages never mention (or echo) anything else in the environment. */
function pick(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return Object.fromEntries(Object.keys(Environment.shape).map((name) => [name, env[name]]));
}

/**
 * Runs `main` and turns a `SettingsError` (or any other `StartError`) into its message and exit code 1, with no
 * stack trace. Anything else is a bug and keeps its stack.
 */
export class StartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartError";
  }
}

export function exitOnStartError(command: string, error: unknown): never {
  if (error instanceof SettingsError || error instanceof StartError) {
    process.stderr.write(`${command}: ${error.message}\n`);
  } else {
    process.stderr.write(`${command}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
}

export interface DeploySettings {
  rpcUrl: string;
  /** Absolute: where `deployment.env` and the relayer's keystore are written. */
  dataDir: string;
  signerKeystore: string;
  keystorePassword: string;
  /** With an existing escrow, only the missing templates are registered. */
  escrowAddress: string | undefined;
  /** The escrow's administrator (default: the signer). */
  adminAddress: string | undefined;
  confirmations: number;
}

const DeployEnvironment = z.object({
  RPC_URL: z
    .preprocess((v) => (v === "" ? undefined : v), httpUrl.optional())
    .refine((v) => v !== undefined, { message: "is required: the node to deploy to, such as http://127.0.0.1:8545" }),
  SIGNER_KEYSTORE: optional(z.string()).refine((v) => v !== undefined, {
    message: "is required: the deployer's encrypted JSON keystore (it becomes the admin)",
  }),
  KEYSTORE_PASSWORD: optional(z.string()).refine((v) => v !== undefined, {
    message: "is required: the password of SIGNER_KEYSTORE",
  }),
  DATA_DIR: optional(z.string()),
  ESCROW_ADDRESS: optional(address),
  ADMIN_ADDRESS: optional(address),
  CONFIRMATIONS: optional(integer(1, 64)),
});

/** `npm run deploy`'s settings: the node, and the deployer's keystore and password (never a raw key). */
export function parseDeploySettings(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): DeploySettings {
  const picked = Object.fromEntries(Object.keys(DeployEnvironment.shape).map((name) => [name, env[name]]));
  const parsed = DeployEnvironment.safeParse(picked);
  if (!parsed.success)
    throw new SettingsError(parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`));
  const e = parsed.data;
  return {
    rpcUrl: e.RPC_URL!,
    dataDir: resolve(cwd, e.DATA_DIR ?? ".data"),
    signerKeystore: resolve(cwd, e.SIGNER_KEYSTORE!),
    keystorePassword: e.KEYSTORE_PASSWORD!,
    escrowAddress: e.ESCROW_ADDRESS,
    adminAddress: e.ADMIN_ADDRESS,
    confirmations: e.CONFIRMATIONS ?? 1,
  };
}

/** One setting as `npm start -- --help` and the README list it. */
export interface SettingDoc {
  name: string;
  /** Who reads it: the server (`npm start`), `npm run deploy`, or both. */
  usedBy: "start" | "deploy" | "start, deploy";
  /** The default, in words ("none" where there is none). */
  default: string;
  what: string;
}

/** Every setting either command reads: a test holds this list, the schemas above and the README to each other. */
export const SETTINGS: readonly SettingDoc[] = [
  { name: "PORT", usedBy: "start", default: "3000", what: "the HTTP port (0: any free one)" },
  {
    name: "HOST",
    usedBy: "start",
    default: "127.0.0.1",
    what: "the address to listen on (0.0.0.0 for every interface)",
  },
  {
    name: "DATA_DIR",
    usedBy: "start, deploy",
    default: ".data",
    what: "the data folder: stores, managed keys, the embedded chain's state; `npm run deploy` writes deployment.env and relayer.json there",
  },
  { name: "LOG_LEVEL", usedBy: "start", default: "info", what: `the log's level: ${LOG_LEVELS.join(", ")}` },
  { name: "RATE_LIMIT_PER_MINUTE", usedBy: "start", default: "600", what: "requests a minute per token" },
  {
    name: "RATE_LIMIT_ANONYMOUS_PER_MINUTE",
    usedBy: "start",
    default: "6000",
    what: "requests a minute per address for requests without a token (an office behind one address; the page's own files are outside every limit)",
  },
  {
    name: "KEYSTORE_PASSWORD",
    usedBy: "start, deploy",
    default: "none (the embedded chain: a built-in dev password, with a warning)",
    what: "the password of every keystore: the managed keys, the relayer's, the deployer's",
  },
  {
    name: "RPC_URL",
    usedBy: "start, deploy",
    default: "none: the embedded chain",
    what: "an existing chain's JSON-RPC URL; with it the server joins that chain",
  },
  {
    name: "ESCROW_ADDRESS",
    usedBy: "start, deploy",
    default: "none (required with RPC_URL)",
    what: "the escrow `npm run deploy` deployed; to `npm run deploy`, an escrow to register missing templates on",
  },
  {
    name: "DEPLOYMENT_BLOCK",
    usedBy: "start",
    default: "0",
    what: "the escrow's deployment block (`npm run deploy` records it): the engine follows the chain from there",
  },
  {
    name: "SIGNER_KEYSTORE",
    usedBy: "start, deploy",
    default: "none (required with RPC_URL)",
    what: "to `npm start`, the relayer's keystore (pays for relayed sign-offs, advance and expire); to `npm run deploy`, the deployer's (the escrow's admin)",
  },
  {
    name: "ADMIN_ADDRESS",
    usedBy: "deploy",
    default: "the deployer",
    what: "the escrow's admin: registers templates, pauses, and may open any case (the operator principal's key must be it)",
  },
  {
    name: "CONFIRMATIONS",
    usedBy: "start, deploy",
    default: "1",
    what: "blocks on top of a transaction before it counts as confirmed (1 to 64)",
  },
  {
    name: "CHAIN_PORT",
    usedBy: "start",
    default: "any free port",
    what: "the embedded chain's port on 127.0.0.1, fixed so that a wallet or an explorer pointed at it keeps working across starts",
  },
  {
    name: "POLL_INTERVAL_MS",
    usedBy: "start",
    default: "200 on the embedded chain, 1000 on an external one",
    what: "how often the engine asks the node for new blocks, in ms (10 to 60000)",
  },
  {
    name: "WEBHOOKS_ALLOW_PRIVATE_URLS",
    usedBy: "start",
    default: "false",
    what: "true lets webhook subscriptions name loopback, private and link-local addresses (local testing only)",
  },
  {
    name: "WEBHOOKS_TIMEOUT_MS",
    usedBy: "start",
    default: "10000",
    what: "how long one webhook delivery attempt may take, in ms (100 to 120000)",
  },
  {
    name: "WEBHOOKS_RETRY_WINDOW_SECONDS",
    usedBy: "start",
    default: "86400",
    what: "how long a failing webhook delivery is retried before its subscription is disabled, in seconds",
  },
  {
    name: "DISPLAY_CURRENCY",
    usedBy: "start",
    default: "none: amounts in the asset's unit alone",
    what: "a currency code (such as GBP) in which the case page shows ETH amounts too, marked indicative; needs DISPLAY_RATE",
  },
  {
    name: "DISPLAY_RATE",
    usedBy: "start",
    default: "none",
    what: "what one ETH is worth in DISPLAY_CURRENCY (2500: 1 ETH = 2,500 GBP), set by the operator; token amounts are not converted",
  },
];

/** The settings as `npm start -- --help` prints them. */
export function settingsHelp(): string {
  const width = Math.max(...SETTINGS.map((s) => s.name.length));
  return [
    "Settings (environment variables):",
    ...SETTINGS.map((s) => `  ${s.name.padEnd(width)}  ${s.what}; default ${s.default} [${s.usedBy}]`),
  ].join("\n");
}

/** The names each command's schema reads, for the test that every one is documented. */
export const SETTING_NAMES = { start: Object.keys(Environment.shape), deploy: Object.keys(DeployEnvironment.shape) };
