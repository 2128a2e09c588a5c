/**
 * `npm start`: the engine and the HTTP API as one process.
 *
 * - Embedded (no `RPC_URL`): starts Anvil with its state in `DATA_DIR/chain/`, deploys the escrow and registers
 *   the templates on the first start (`deployment.json`), creates demo principals on the dev accounts
 *   (`credentials.json`) and one demo case, and enables the dev clock.
 * - External (`RPC_URL`, `ESCROW_ADDRESS`, `SIGNER_KEYSTORE`, `KEYSTORE_PASSWORD`): joins an existing chain where
 *   `npm run deploy` put the escrow; no Anvil, no deploy, no demo data, no dev clock.
 *
 * Managed keys are every keystore in `DATA_DIR/keys/`, decrypted once at start (scrypt is slow). A key that
 * `npm run principal -- add` writes while the server runs is picked up within a few seconds: the server looks at
 * the folder every 2 s and hands a new key to the engine (`engine.addPartyKey`); principals themselves are read
 * per request, so the new principal's token works at once. On the embedded chain every managed key is topped up
 * (`anvil_setBalance`), so that a generated one can pay for its own sends.
 *
 * Shutdown (SIGINT, SIGTERM, SIGHUP, to this process or to npm's whole process group, or the launcher gone):
 * stop accepting, end the event streams, stop the engine (what is in its outbox stays there), then Anvil (a last
 * save of its state, then SIGTERM). Only a second signal during the shutdown forces an exit. A hard kill loses
 * nothing the API reported done: the engine's outbox is durable, a dev clock move is saved before it is
 * answered, and the next start re-submits whatever the chain lacks.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { LISTEN_BACKLOG } from "./http-server";
import type { BaseWallet } from "ethers";
import type { Engine } from "../engine";
import type { App } from "./app";
import type { PrincipalStore } from "./auth/principals";
import type { EmbeddedChain } from "./chain/embedded-chain";
import type { Credentials } from "./chain/embedded-demo";
import type { Keystore } from "./keys/keystore";
import { type Settings, StartError, exitOnStartError, parseSettings, settingsHelp } from "./settings";

// The engine, the app and the chain code are loaded only after the settings parsed: a wrong setting is then
// reported in about a second, not after ts-node has compiled the whole server.
export interface RunningServer {
  url: string;
  engine: Engine;
  app: App;
  /** The graceful shutdown; resolves when everything has stopped. */
  close(): Promise<void>;
}

type Print = (line: string) => void;

export async function startServer(settings: Settings, print: Print = console.log): Promise<RunningServer> {
  mkdirSync(settings.dataDir, { recursive: true });
  const releaseLock = claimDataDir(settings.dataDir);
  const { createServer } = await import("node:http");
  const { join } = await import("node:path");
  const { defaultLogger } = await import("./logging");
  const { createEngine } = await import("../engine");
  const { createApp } = await import("./app");
  const { createHttpServer } = await import("./http-server");
  const { PrincipalStore } = await import("./auth/principals");
  const { hasCode } = await import("./chain/deploy-escrow");
  const { startEmbeddedChain } = await import("./chain/embedded-chain");
  const {
    RELAYER_ACCOUNT,
    DEMO_ACCOUNTS,
    devWallet,
    ensureDemoCase,
    ensureDemoPrincipals,
    ensureDeployment,
    ensureDevKeys,
    fundOnDevChain,
  } = await import("./chain/embedded-demo");
  const { connectRpc } = await import("./chain/rpc");
  const { readDeploymentRecord } = await import("./chain/deployment-record");
  const { Keystore, decryptKeystoreFile, keystorePassword } = await import("./keys/keystore");
  const { password, warning } = keystorePassword(settings.keystorePassword, settings.chain.mode);
  if (warning) print(`warning: ${warning}`);
  const keystore = new Keystore(settings.dataDir, password);
  const cleanups: Array<() => Promise<void> | void> = [releaseLock];
  const cleanUp = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        print(`shutdown: ${String(error)}`);
      }
    }
  };

  try {
    // Before Anvil and the deploy, so that a taken port is said at once rather than after them.
    await listen(createServer(), settings).then(
      (probe) => new Promise<void>((resolve) => probe.close(() => resolve())),
    );
    let rpcUrl: string;
    let escrowAddress: string;
    let deploymentBlock: number;
    let relayerKey: BaseWallet;
    let credentials: Credentials | null = null;
    let chain: EmbeddedChain | null = null;
    let chainLabel: string;

    if (settings.chain.mode === "embedded") {
      chain = await startEmbeddedChain({
        dataDir: settings.dataDir,
        port: settings.chainPort ?? undefined,
        log: print,
      });
      const anvil = chain;
      cleanups.push(() => anvil.stop());
      rpcUrl = chain.url;
      await ensureDevKeys(keystore);
      const { provider } = await connectRpc(rpcUrl, { name: "embedded chain" });
      try {
        const { deployment, templates, fresh } = await ensureDeployment({
          dataDir: settings.dataDir,
          provider,
          operator: devWallet(DEMO_ACCOUNTS.operator),
          stateFile: chain.stateFile,
          log: print,
        });
        escrowAddress = deployment.address;
        deploymentBlock = deployment.block;
        for (const t of templates.filter((t) => t.outcome === "registered"))
          print(`embedded chain: registered template ${t.workflow}@${t.version} ${t.templateId}`);
        if (fresh) print(`embedded chain: escrow deployed at ${escrowAddress} in block ${deploymentBlock}`);
      } finally {
        provider.destroy();
      }
      relayerKey = await keystore.load(devWallet(RELAYER_ACCOUNT).address);
      chainLabel = `embedded Anvil (chain 31337, state in ${chain.stateFile})`;
    } else {
      const external = settings.chain;
      const recorded = readDeploymentRecord(settings.dataDir);
      if (recorded?.ESCROW_ADDRESS && recorded.ESCROW_ADDRESS.toLowerCase() !== external.escrowAddress.toLowerCase()) {
        throw new StartError(
          `ESCROW_ADDRESS: ${external.escrowAddress} is not the escrow ${recorded.ESCROW_ADDRESS} that ${settings.dataDir}/deployment.env records for this data folder; set DATA_DIR to the folder of ${external.escrowAddress}, or start with the recorded settings (set -a; . ${settings.dataDir}/deployment.env; set +a)`,
        );
      }
      const { provider, chainId } = await connectRpc(external.rpcUrl);
      try {
        if (!(await hasCode(provider, external.escrowAddress))) {
          throw new StartError(
            `ESCROW_ADDRESS: there is no contract at ${external.escrowAddress} on chain ${chainId} (${external.rpcUrl}); run npm run deploy first`,
          );
        }
        relayerKey = await decryptKeystoreFile(external.signerKeystore, password);
        if ((await provider.getBalance(relayerKey.address)) === 0n) {
          print(
            `warning: the relayer ${relayerKey.address} (SIGNER_KEYSTORE) has no funds on chain ${chainId}: relayed sign-offs, advance and expire will wait until it has (npm run principal -- fund --from <the deployer's keystore>)`,
          );
        }
      } finally {
        provider.destroy();
      }
      rpcUrl = external.rpcUrl;
      escrowAddress = external.escrowAddress;
      deploymentBlock = external.deploymentBlock;
      chainLabel = `${external.rpcUrl} (chain ${chainId})`;
    }

    const partyKeys = (await keystore.loadAll()).filter((w) => w.address !== relayerKey.address);
    const principals = PrincipalStore.open(join(settings.dataDir, "server.sqlite"));
    cleanups.push(() => principals.close());
    /**
     * On the embedded chain, managed keys (a generated one included) get funds to pay for their own sends; on an
     * external one nothing can fund them for us, so each key holding nothing is named, with the way to fund it.
     */
    const fund = async (addresses: string[]) => {
      const { provider } = await connectRpc(rpcUrl, { name: chain ? "embedded chain" : "RPC_URL" });
      try {
        if (chain) {
          for (const address of await fundOnDevChain(provider, addresses))
            print(`embedded chain: funded the managed key ${address}`);
          return;
        }
        for (const address of addresses) {
          if ((await provider.getBalance(address)) !== 0n) continue;
          const owners = principals.list().filter((p) => p.address === address && p.revokedAt === null);
          const whose =
            owners.length > 0 ? owners.map((p) => `${p.role} ${JSON.stringify(p.name)}`).join(", ") : "no principal";
          print(
            `warning: the managed key ${address} (${whose}) has no funds on ${chainLabel}: it cannot open cases or pay deposits until funded (npm run principal -- fund --from <the deployer's keystore>)`,
          );
        }
      } finally {
        provider.destroy();
      }
    };
    await fund(partyKeys.map((w) => w.address));

    const engine = createEngine({
      dataDir: settings.dataDir,
      chain: { kind: "json-rpc", url: rpcUrl },
      escrowAddress,
      relayerKey,
      partyKeys,
      deploymentBlock,
      confirmations: settings.confirmations,
      pollIntervalMs: settings.pollIntervalMs,
    });
    cleanups.push(() => engine.stop());
    await engine.start();

    let demoCaseId: string | null = null;
    if (settings.chain.mode === "embedded") {
      const demo = ensureDemoPrincipals(principals, settings.dataDir);
      for (const problem of demo.problems) print(`warning: ${problem}`);
      credentials = demo.credentials;
      demoCaseId = (await ensureDemoCase(engine, settings.dataDir, credentials)).caseId;
    }

    const stopWatching = watchNewKeys(
      keystore,
      engine,
      new Set([relayerKey.address, ...partyKeys.map((w) => w.address)]),
      print,
      fund,
    );
    cleanups.push(stopWatching);

    const logger = defaultLogger();
    logger.level = settings.logLevel;
    const app = createApp(engine, {
      principals,
      devClock: settings.chain.mode === "embedded",
      saveChain: chain ? chain.save : undefined,
      rateLimit: {
        requestsPerMinute: settings.rateLimitPerMinute,
        anonymous: { requestsPerMinute: settings.rateLimitAnonymousPerMinute },
      },
      display: settings.display,
      logger,
      webhooks: settings.webhooks,
    });
    const server = createHttpServer(app);
    await listen(server, settings);
    cleanups.push(() => closeServer(server, app));
    const address = server.address() as { port: number };
    const url = `http://${settings.host.includes(":") ? `[${settings.host}]` : settings.host}:${address.port}`;

    printBanner(print, {
      url,
      chainLabel,
      rpcUrl,
      escrowAddress,
      deploymentBlock,
      credentials,
      demoCaseId,
      dataDir: settings.dataDir,
      principals,
    });
    return { url, engine, app, close: cleanUp };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/**
 * One server per data folder: a second one would stop the first one's Anvil (it looks like a leftover) and
 * share its store and nonces. `DATA_DIR/server.pid` names the server using it; a pid that is gone, or now
 * belongs to another program, is stale (a hard kill leaves it behind).
 */
function claimDataDir(dataDir: string): () => void {
  const file = `${dataDir}/server.pid`;
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    if (pid !== process.pid && isRunningServer(pid)) {
      throw new StartError(
        `DATA_DIR: ${dataDir} is in use by another npm start (pid ${pid}); stop it first, or set DATA_DIR to another folder`,
      );
    }
  } catch (error) {
    if (error instanceof StartError) throw error;
  }
  writeFileSync(file, `${process.pid}\n`);
  return () => {
    try {
      if (Number(readFileSync(file, "utf8").trim()) === process.pid) rmSync(file);
    } catch {
      // gone already
    }
  };
}

function isRunningServer(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("main");
  } catch {
    return true; // no /proc: trust the pid
  }
}

/** Looks at the keys folder every 2 s and hands a key written since (by `npm run principal`) to the engine. */
function watchNewKeys(
  keystore: Keystore,
  engine: Engine,
  known: Set<string>,
  print: Print,
  onNewKey: (addresses: string[]) => Promise<void>,
): () => void {
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      for (const address of keystore.addresses()) {
        if (known.has(address)) continue;
        known.add(address);
        engine.addPartyKey(await keystore.load(address));
        await onNewKey([address]);
        print(`managed key ${address} loaded`);
      }
    } catch (error) {
      print(`warning: a new managed key could not be loaded: ${(error as Error).message}`);
    } finally {
      busy = false;
    }
  }, 2_000);
  timer.unref();
  return () => clearInterval(timer);
}

function listen(server: Server, settings: Settings): Promise<Server> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE")
        reject(new StartError(`PORT: ${settings.port} on ${settings.host} is in use; set PORT to a free one`));
      else if (error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND")
        reject(new StartError(`HOST: cannot listen on ${settings.host} (${error.code})`));
      else reject(error);
    };
    server.once("error", onError);
    server.listen({ port: settings.port, host: settings.host, backlog: LISTEN_BACKLOG }, () => {
      server.off("error", onError);
      resolve(server);
    });
  });
}

/** Stops accepting, ends the event streams (they would hold the close forever), then drops idle connections. */
function closeServer(server: Server, app: App): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    app.closeStreams();
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 5_000).unref();
  });
}

function printBanner(
  write: Print,
  s: {
    url: string;
    chainLabel: string;
    rpcUrl: string;
    escrowAddress: string;
    deploymentBlock: number;
    credentials: Credentials | null;
    demoCaseId: string | null;
    dataDir: string;
    principals: PrincipalStore;
  },
): void {
  // Written at once, so that whoever reads the output sees the whole banner together.
  const lines: string[] = [];
  const print = (line: string) => lines.push(line);
  print("");
  print(`Mortgage sign-off engine listening on ${s.url}`);
  print(`  chain        ${s.chainLabel}`);
  // The node's own URL, for a wallet or a block explorer pointed at the same chain.
  print(`  RPC          ${s.rpcUrl}  (chain JSON-RPC: for a wallet or an explorer)`);
  print(`  escrow       ${s.escrowAddress} (deployed in block ${s.deploymentBlock})`);
  print(`  data         ${s.dataDir}`);
  print(`  health       ${s.url}/health`);
  print(`  OpenAPI      ${s.url}/openapi.json`);
  print(`  workflows    ${s.url}/workflows`);
  if (s.demoCaseId !== null) {
    print(`  demo case    ${s.url}/ui/cases/${s.demoCaseId}  (us-purchase, price 400 ETH: deposit 40, loan 360)`);
  }
  if (s.credentials) {
    print("");
    print(`Tokens (also in ${s.dataDir}/credentials.json):`);
    for (const [role, c] of Object.entries(s.credentials)) print(`  ${role.padEnd(9)} ${c.address}  ${c.token}`);
    print("");
    print("Try:");
    print(`  curl -s -H "Authorization: Bearer ${s.credentials.buyer.token}" ${s.url}/cases/${s.demoCaseId}`);
    print(
      `  curl -s -X POST -H "Authorization: Bearer ${s.credentials.bank.token}" -H "Content-Type: application/json" -d '{}' ${s.url}/cases/${s.demoCaseId}/stages/application/sign-offs`,
    );
    print(
      `  curl -s -X POST -H "Authorization: Bearer ${s.credentials.operator.token}" -H "Content-Type: application/json" -d '{"seconds":432000}' ${s.url}/dev/clock`,
    );
  } else {
    const active = s.principals.list().filter((p) => p.revokedAt === null);
    print(
      `  principals   ${active.length} active${active.length === 0 ? ': add one with npm run principal -- add --name "Acme Bank" --role bank' : ""}`,
    );
  }
  print("");
  write(lines.join("\n"));
}

if (require.main === module) {
  let running: RunningServer | null = null;
  let stopping = false;
  /** Starts the one graceful shutdown; `why` is what the log says asked for it. */
  const shutDown = (why: string) => {
    stopping = true;
    if (!running) {
      // Mid-start: Anvil runs in its own process group and would outlive an exit now; the start finishes, then closes.
      console.log(`${why}: shutting down once the start has finished (a signal again forces an exit)`);
      return;
    }
    console.log(`${why}: shutting down (a signal again forces an exit)`);
    void running.close().then(
      () => process.exit(0),
      (error) => {
        console.error(`shutdown failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  /** A signal starts the shutdown; only a second signal, sent while it runs, forces an exit (Anvil may then live on). */
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`${signal} again: exiting now`);
      process.exit(130);
    }
    shutDown(signal);
  };
  // Signals that arrive during the start are handled after it: the pending cleanups run either way.
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  // `kill <pid of npm>` ends npm and its shell but not this process, which would live on as an orphan holding the
  // port and Anvil: when the process that launched us is gone, shut down as on SIGTERM. A signal to npm's whole
  // group also ends the launcher, a moment after this process got the same signal: that is the same stop, not a
  // second one, so this never forces. (Under a supervisor that starts us directly, the launcher lives as long as
  // we do, so this never fires.)
  const launcher = process.ppid;
  const orphaned = setInterval(() => {
    if (process.ppid === launcher) return;
    clearInterval(orphaned);
    if (!stopping) shutDown("the process that started npm start is gone");
  }, 1_000).unref();
  // With the launcher gone its terminal may be too: a write to a closed pipe must not end the shutdown early.
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
  if (process.argv.includes("--help")) {
    console.log(`npm start: the engine and the HTTP API (see the README)\n${settingsHelp()}`);
    process.exit(0);
  }
  (async () => {
    const settings = parseSettings();
    running = await startServer(settings);
    if (stopping) await running.close().then(() => process.exit(0));
  })().catch((error: unknown) => exitOnStartError("npm start", error));
}
