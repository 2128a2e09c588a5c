/**
 * The HTTP API on a real listening port, for the server's tests (and the page's, the authorization matrix's,
 * the fuzz test's and the HTTP benchmark's): the in-process Hardhat chain, a fresh escrow with the three
 * templates registered, an engine on a SQLite file in a temp folder holding managed keys for the dev
 * accounts, a PrincipalStore (server.sqlite) with principals operator, bank, lawyer, buyer, seller, stranger
 * and one revoked, and two cases opened before the engine starts:
 *
 * - `caseId`: its parties are the principals bank, lawyer, buyer, seller (accounts 1-4);
 * - `otherCaseId`: opened by the operator for parties none of the principals are (accounts 6-9), so only the
 *   operator sees it.
 *
 * `startApp()` returns once the server listens; `close()` ends the streams, the server and the engine.
 * Only one harness may run at a time: engines share the dev accounts' keys and their nonces.
 */
import hre, { ethers } from "hardhat";
import { mkdtempSync } from "node:fs";
import type { Server } from "node:http";
import { LISTEN_BACKLOG, createHttpServer } from "../../../server/http-server";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet, type HDNodeWallet } from "ethers";
import pino, { type Logger } from "pino";
import { createEngine, type Engine } from "../../../engine";
import { getTemplate } from "../../../workflows";
import { MortgageEscrow__factory } from "../../../typechain-types";
import { createApp, type App, type AppOptions } from "../../../server/app";
import { PrincipalStore, type PrincipalRole } from "../../../server/auth/principals";
import { deployEscrow, registerTemplates } from "../../../server/chain/deploy-escrow";
import { hardhatWallet, setBalance } from "../../engine/relayer-helpers";

export const PRINCIPAL_NAMES = ["operator", "bank", "lawyer", "buyer", "seller", "stranger"] as const;
export type PrincipalName = (typeof PRINCIPAL_NAMES)[number];
/** Every token the harness hands out, the revoked one included. */
export type TokenName = PrincipalName | "revoked";

/** Dev account index and principal role of each principal. */
const ACCOUNTS: Record<PrincipalName, { index: number; role: PrincipalRole }> = {
  operator: { index: 0, role: "operator" },
  bank: { index: 1, role: "bank" },
  lawyer: { index: 2, role: "lawyer" },
  buyer: { index: 3, role: "buyer" },
  seller: { index: 4, role: "seller" },
  stranger: { index: 5, role: "buyer" },
};

/** The parties of `otherCaseId`: dev accounts none of the principals hold. */
const OTHER_PARTY_INDEXES = { bank: 6, lawyer: 7, buyer: 8, seller: 9 } as const;

export const RELAYER_WALLET = new Wallet(ethers.id("the relayer key of the server tests"));

/** Small amounts (wei): the dev accounts hold plenty, and the numbers stay readable in a failure. */
export const DEFAULT_TERMS = { price: "900000000000000000", deposit: "100000000000000000", loan: "800000000000000000" };

export interface HarnessOptions {
  /** The workflow of `caseId` (and the default of `openCase`); default uk-remortgage. */
  workflow?: string;
  terms?: { price: string; deposit: string; loan: string };
  rateLimit?: AppOptions["rateLimit"];
  /** Default true: POST /dev/clock is mounted. */
  devClock?: boolean;
  heartbeatMs?: number;
  /** Default: silent (LOG_LEVEL=debug shows the request lines). */
  logger?: Logger;
  /** The webhooks' settings; default: private URLs allowed (the tests' receivers listen on 127.0.0.1). */
  webhooks?: AppOptions["webhooks"];
  /**
   * Runs once the escrow is deployed and the two cases opened, before the engine starts (so it reads
   * whatever this puts on chain as it catches up): the HTTP benchmark opens its 10,000 cases here.
   */
  beforeEngineStart?: (deployment: {
    address: string;
    parties: Record<"bank" | "lawyer" | "buyer" | "seller", string>;
  }) => Promise<void>;
  /** Display names of the principals (default: each principal's harness name, "bank", "buyer", ...). */
  displayNames?: Partial<Record<PrincipalName, string>>;
  /** The operator's display currency (DISPLAY_CURRENCY, DISPLAY_RATE); default none. */
  display?: AppOptions["display"];
}

export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface AppHarness {
  url: string;
  app: App;
  engine: Engine;
  server: Server;
  principals: PrincipalStore;
  dataDir: string;
  escrowAddress: string;
  /** Bearer tokens by principal name; `revoked` is the token of a revoked principal (bound to the lawyer's address). */
  tokens: Record<TokenName, string>;
  /** Checksummed addresses by principal name. */
  addresses: Record<PrincipalName, string>;
  /** The dev accounts' wallets by principal name: the parties' own wallets for non-custodial signing. */
  wallets: Record<PrincipalName, HDNodeWallet>;
  /** A case of bank, lawyer, buyer and seller (uk-remortgage unless told otherwise). */
  caseId: string;
  /** A case none of the principals is a party to: only the operator sees it. */
  otherCaseId: string;
  /** Opens another case through the engine, by the bank (parties: the principals), and returns its id. */
  openCase(options?: { workflow?: string; terms?: { price: string; deposit: string; loan: string } }): Promise<string>;
  /** A JSON request as `who` (a token name, or null for none); the body is sent as JSON when given. */
  request<T = any>(
    who: TokenName | null,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<JsonResponse<T>>;
  close(): Promise<void>;
}

export async function startApp(options: HarnessOptions = {}): Promise<AppHarness> {
  const workflow = options.workflow ?? "uk-remortgage";
  const terms = options.terms ?? DEFAULT_TERMS;
  const [admin] = await ethers.getSigners();
  const deployment = await deployEscrow(admin);
  await registerTemplates(admin, deployment.address);
  await setBalance(RELAYER_WALLET.address, ethers.parseEther("100"));

  const wallets = Object.fromEntries(
    PRINCIPAL_NAMES.map((name) => [name, hardhatWallet(ACCOUNTS[name].index)]),
  ) as Record<PrincipalName, HDNodeWallet>;
  const addresses = Object.fromEntries(PRINCIPAL_NAMES.map((name) => [name, wallets[name].address])) as Record<
    PrincipalName,
    string
  >;
  const parties = { bank: addresses.bank, lawyer: addresses.lawyer, buyer: addresses.buyer, seller: addresses.seller };
  const otherParties = Object.fromEntries(
    Object.entries(OTHER_PARTY_INDEXES).map(([role, index]) => [role, hardhatWallet(index).address]),
  ) as typeof parties;

  // Both cases go in before the engine starts: after that, only the engine sends from the managed keys.
  const signers = await ethers.getSigners();
  const caseId = await openOnChain(deployment.address, signers[ACCOUNTS.bank.index], workflow, parties, terms);
  const otherCaseId = await openOnChain(deployment.address, admin, workflow, otherParties, terms);
  await options.beforeEngineStart?.({ address: deployment.address, parties });

  const dataDir = mkdtempSync(join(tmpdir(), "server-test-"));
  const engine = createEngine({
    dataDir,
    chain: { kind: "in-process", provider: hre.network.provider },
    escrowAddress: deployment.address,
    relayerKey: RELAYER_WALLET,
    partyKeys: PRINCIPAL_NAMES.map((name) => wallets[name]),
    pollIntervalMs: 50,
    deploymentBlock: deployment.block,
    batchWindowMs: 20,
  });
  await engine.start();

  const principals = PrincipalStore.open(join(dataDir, "server.sqlite"));
  const tokens = {} as Record<TokenName, string>;
  for (const name of PRINCIPAL_NAMES)
    tokens[name] = principals.add({
      name: options.displayNames?.[name] ?? name,
      role: ACCOUNTS[name].role,
      address: addresses[name],
    }).token;
  const revoked = principals.add({ name: "revoked", role: "lawyer", address: addresses.lawyer });
  principals.revoke(revoked.principal.id);
  tokens.revoked = revoked.token;

  const app = createApp(engine, {
    principals,
    rateLimit: options.rateLimit ?? { requestsPerMinute: 1_000_000, burst: 100_000 },
    devClock: options.devClock ?? true,
    heartbeatMs: options.heartbeatMs,
    display: options.display,
    logger: options.logger ?? pino({ level: process.env.LOG_LEVEL ?? "silent" }),
    webhooks: { allowPrivateUrls: true, ...options.webhooks },
  });
  const server = createHttpServer(app);
  await new Promise<void>((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog: LISTEN_BACKLOG }, resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function request<T>(
    who: TokenName | null,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<JsonResponse<T>> {
    const res = await fetch(url + path, {
      method,
      headers: {
        ...(who ? { Authorization: `Bearer ${tokens[who]}` } : {}),
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === "" ? null : JSON.parse(text);
    } catch {
      // Not JSON (the page, say): the text as it came.
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  let closed = false;
  return {
    url,
    app,
    engine,
    server,
    principals,
    dataDir,
    escrowAddress: deployment.address,
    tokens,
    addresses,
    wallets,
    caseId,
    otherCaseId,
    request,
    async openCase(o = {}) {
      const progress = await engine.openCase({
        principalAddress: addresses.bank,
        workflow: o.workflow ?? workflow,
        parties,
        terms: o.terms ?? terms,
      });
      return progress.id;
    },
    async close() {
      if (closed) return;
      closed = true;
      app.closeStreams();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await engine.stop();
      principals.close();
    },
  };
}

async function openOnChain(
  address: string,
  opener: Awaited<ReturnType<typeof ethers.getSigners>>[number],
  workflow: string,
  parties: { bank: string; lawyer: string; buyer: string; seller: string },
  terms: { price: string; deposit: string; loan: string },
): Promise<string> {
  const escrow = MortgageEscrow__factory.connect(address, opener);
  const caseTerms = { templateId: getTemplate(workflow).templateId, ...parties, asset: ethers.ZeroAddress, ...terms };
  const id = await escrow.openCase.staticCall(caseTerms);
  await (await escrow.openCase(caseTerms)).wait();
  return id.toString();
}

// ------------------------------------------------------------------------------------------ event streams

export interface StreamEvent {
  id: string | null;
  event: string;
  data: any;
}

export interface EventStreamReader {
  status: number;
  headers: Headers;
  /** Every event received so far, in order. */
  events: StreamEvent[];
  /** How many heartbeat comments arrived. */
  heartbeats: number;
  /** True once the server ended the stream (or it was closed). */
  ended: boolean;
  /** Resolves with the first event (from `from` on, default: all received) that satisfies `match`. */
  waitFor(match: (e: StreamEvent) => boolean, timeoutMs?: number, from?: number): Promise<StreamEvent>;
  close(): void;
}

/** Opens `GET /cases/:id/events` with fetch and reads it in the background, parsing the event stream. */
export async function openEventStream(
  url: string,
  token: string | null,
  caseId: string,
  lastEventId?: string,
): Promise<EventStreamReader> {
  const controller = new AbortController();
  const res = await fetch(`${url}/cases/${caseId}/events`, {
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}),
      Accept: "text/event-stream",
    },
    signal: controller.signal,
  });
  const reader: EventStreamReader = {
    status: res.status,
    headers: res.headers,
    events: [],
    heartbeats: 0,
    ended: false,
    async waitFor(match, timeoutMs = 20_000, from = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = reader.events.slice(from).find(match);
        if (found) return found;
        if (Date.now() > deadline)
          throw new Error(
            `no matching event within ${timeoutMs} ms; got ${reader.events.length}: ${reader.events.map((e) => e.id).join(", ")}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    close: () => controller.abort(),
  };
  if (!res.body || !(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) return reader;
  const body = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await body.read();
        if (done) {
          reader.ended = true;
          return;
        }
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: StreamEvent = { id: null, event: "message", data: undefined };
          let data = "";
          let isEvent = false;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) reader.heartbeats += 1;
            else if (line.startsWith("id: ")) event.id = line.slice(4);
            else if (line.startsWith("event: ")) event.event = line.slice(7);
            else if (line.startsWith("data: ")) {
              data += line.slice(6);
              isEvent = true;
            }
          }
          if (isEvent) {
            event.data = JSON.parse(data);
            reader.events.push(event);
          }
        }
      }
    } catch {
      // Aborted by close(), or the connection dropped.
      reader.ended = true;
    }
  })();
  return reader;
}
