/**
 * `npm run principal -- <command>`: the API's principals (who may call it, bound to one address each).
 *
 *   add --name "Acme Bank" --role bank [--address 0x..]   prints the new token once; without --address a new
 *                                                          managed key is generated into DATA_DIR/keys/
 *   add --name Operator --role operator --keystore <file>  the key of a keystore (the deployer's) becomes the
 *                                                          principal's managed key
 *   list                                                   every principal, revoked ones included
 *   revoke <id|name|address>                               its token stops working at the next request
 *   fund --from <keystore> [--amount <ETH>]                tops up the relayer and every managed key to the
 *                                                          amount (default 1 ETH), sent from the keystore's account
 *
 * Every managed key is under one password, KEYSTORE_PASSWORD, which the server decrypts them all with: `add`
 * refuses a password that does not open the keys already there. On an external chain the operator must hold the
 * escrow's admin role (the contract lets only a case's bank or the admin open it): `add --role operator` checks
 * it on chain and refuses a key that lacks it, naming the way (`--keystore` with the admin's keystore). The chain
 * is `RPC_URL` and `ESCROW_ADDRESS`, or else what `DATA_DIR/deployment.env` records.
 *
 * The principals live in DATA_DIR/server.sqlite, which the running server reads per request: a principal added
 * or revoked here counts at once, with no restart. A managed key generated here is picked up by a running
 * server within a few seconds (it looks at DATA_DIR/keys/ every 2 s).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Wallet, formatEther, getAddress, parseEther } from "ethers";
import { PRINCIPAL_ROLES, type Principal, type PrincipalRole, PrincipalStore } from "../auth/principals";
import { readDeploymentRecord } from "../chain/deployment-record";
import { connectRpc } from "../chain/rpc";
import { Keystore, decryptKeystoreFile, keystoreAddress, keystorePassword } from "../keys/keystore";
import { StartError, exitOnStartError } from "../settings";
import { MortgageEscrow__factory } from "../../typechain-types";

const USAGE = `usage: npm run principal -- <command>
  add --name <name> --role <${PRINCIPAL_ROLES.join("|")}> [--address 0x... | --keystore <file>]
      without either, a new managed key is generated (encrypted with KEYSTORE_PASSWORD into DATA_DIR/keys/);
      --keystore makes that keystore's key (the deployer's, for the operator) the managed key
  list
  revoke <id|name|address>
  fund --from <keystore> [--amount <ETH, default 1>]
      tops up the relayer and every managed key to the amount, from the keystore's account (external chain)
the data folder is DATA_DIR (default .data); the chain is RPC_URL and ESCROW_ADDRESS, or DATA_DIR/deployment.env`;

type Print = (line: string) => void;

export async function principalCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  print: Print = console.log,
): Promise<void> {
  const dataDir = resolve(env.DATA_DIR || ".data");
  const [command, ...rest] = args;
  if (command === "add")
    return add(parseFlags(rest, ["--name", "--role", "--address", "--keystore"]), dataDir, env, print);
  if (command === "fund") return fund(parseFlags(rest, ["--from", "--amount"]), dataDir, env, print);
  if (command === "list" && rest.length === 0)
    return withStore(dataDir, (store) => list(store, new Keystore(dataDir, ""), print));
  if (command === "revoke" && rest.length === 1) {
    return withStore(dataDir, (store) => {
      const revoked = store.revoke(rest[0]);
      if (!revoked)
        throw new StartError(`revoke: no active principal with the id, name or address ${JSON.stringify(rest[0])}`);
      print(
        `revoked ${revoked.id} ${revoked.role} ${JSON.stringify(revoked.name)} ${revoked.address}: its token no longer works`,
      );
    });
  }
  throw new StartError(
    command === undefined || command === "help" || command === "--help"
      ? USAGE
      : `unknown or incomplete command ${JSON.stringify(args.join(" "))}\n${USAGE}`,
  );
}

function parseFlags(rest: string[], known: string[]): Record<string, string> {
  const flags: Record<string, string> = {};
  const command = known.includes("--from") ? "fund" : "add";
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]];
    if (!known.includes(flag)) throw new StartError(`${command}: unknown option ${JSON.stringify(flag)}\n${USAGE}`);
    if (value === undefined || value.startsWith("--"))
      throw new StartError(`${command}: ${flag} needs a value\n${USAGE}`);
    flags[flag.slice(2)] = value;
  }
  return flags;
}

async function add(
  flags: Record<string, string>,
  dataDir: string,
  env: NodeJS.ProcessEnv,
  print: Print,
): Promise<void> {
  if (!flags.name?.trim()) throw new StartError(`add: --name is required\n${USAGE}`);
  if (!PRINCIPAL_ROLES.includes(flags.role as PrincipalRole)) {
    throw new StartError(
      `add: --role must be one of ${PRINCIPAL_ROLES.join(", ")}${flags.role ? `, not ${JSON.stringify(flags.role)}` : ""}`,
    );
  }
  if (flags.address !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(flags.address))
    throw new StartError(`add: --address must be a 20-byte hex address, not ${JSON.stringify(flags.address)}`);
  if (flags.address !== undefined && flags.keystore !== undefined)
    throw new StartError("add: give --address (the party's own wallet) or --keystore (a managed key), not both");

  await withStore(dataDir, async (store) => {
    const name = flags.name.trim();
    const role = flags.role as PrincipalRole;
    // Every check comes before a key is written, so a refused add leaves no orphan keystore behind.
    if (store.list().some((p) => p.name === name))
      throw new StartError(`add: a principal named ${JSON.stringify(name)} already exists`);
    let address = flags.address === undefined ? undefined : getAddress(flags.address);
    let keystore: Keystore | null = null;
    let imported: { wallet: Wallet; json: string } | null = null;
    if (address === undefined) {
      // The embedded demo's folder (it has deployment.json) may use the dev password; any other needs KEYSTORE_PASSWORD.
      const { password, warning } = keystorePassword(
        env.KEYSTORE_PASSWORD || undefined,
        embedded(dataDir, env) ? "embedded" : "external",
      );
      if (warning) print(`warning: ${warning}`);
      keystore = new Keystore(dataDir, password);
      await requireSamePassword(keystore, password, dataDir, env);
      if (flags.keystore !== undefined) {
        const file = resolve(flags.keystore);
        const wallet = await decryptKeystoreFile(file, password).catch((error: Error) => {
          throw new StartError(`add: --keystore ${error.message}`);
        });
        imported = { wallet, json: readFileSync(file, "utf8") };
        address = wallet.address;
      }
    }
    if (role === "operator") await requireAdmin(address, dataDir, env);

    let keyFile: string | null = null;
    if (keystore && imported) {
      keyFile = keystore.has(imported.wallet.address)
        ? keystore.fileOf(imported.wallet.address)
        : keystore.saveJson(imported.wallet.address, imported.json);
    } else if (keystore) {
      address = (await keystore.generate()).address;
      keyFile = keystore.fileOf(address);
    }
    let added: { principal: Principal; token: string };
    try {
      added = store.add({ name, role, address: address! });
    } catch (error) {
      throw new StartError(`add: ${(error as Error).message}`);
    }
    const { principal, token } = added;
    print(`added ${principal.id} ${principal.role} ${JSON.stringify(principal.name)} ${principal.address}`);
    if (keyFile)
      print(
        `managed key: ${keyFile} (a running server loads it within a few seconds; back it up with the data folder)`,
      );
    print(`token (shown this once; only its hash is kept): ${token}`);
  });
}

/** The embedded demo's folder: it has the embedded chain's deployment.json, and no RPC_URL points elsewhere. */
function embedded(dataDir: string, env: NodeJS.ProcessEnv): boolean {
  return existsSync(join(dataDir, "deployment.json")) && !env.RPC_URL;
}

/**
 * The server decrypts every managed key (and the relayer's) with the one KEYSTORE_PASSWORD: a key written under
 * another would stop its next start. One key already there is enough to tell (they share the password).
 */
async function requireSamePassword(
  keystore: Keystore,
  password: string,
  dataDir: string,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const existing = keystore.addresses()[0];
  const file = existing !== undefined ? keystore.fileOf(existing) : chainOf(dataDir, env).signerKeystore;
  if (file === undefined || !existsSync(file)) return;
  try {
    await decryptKeystoreFile(file, password);
  } catch {
    throw new StartError(
      `add: KEYSTORE_PASSWORD does not open ${file}, a key already in this data folder; the server decrypts every key with one password, so use the one they were made with`,
    );
  }
}

interface ChainOf {
  rpcUrl: string | undefined;
  escrowAddress: string | undefined;
  signerKeystore: string | undefined;
}

/** The external chain: RPC_URL, ESCROW_ADDRESS and SIGNER_KEYSTORE, or else what DATA_DIR/deployment.env records. */
function chainOf(dataDir: string, env: NodeJS.ProcessEnv): ChainOf {
  const recorded = readDeploymentRecord(dataDir) ?? {};
  const keystoreFile = env.SIGNER_KEYSTORE || recorded.SIGNER_KEYSTORE;
  return {
    rpcUrl: env.RPC_URL || recorded.RPC_URL,
    escrowAddress: env.ESCROW_ADDRESS || recorded.ESCROW_ADDRESS,
    signerKeystore: keystoreFile ? resolve(keystoreFile) : undefined,
  };
}

/** On an external chain the operator's key opens cases as the escrow's admin: it must hold the role. */
async function requireAdmin(address: string | undefined, dataDir: string, env: NodeJS.ProcessEnv): Promise<void> {
  if (embedded(dataDir, env)) return; // the embedded demo's operator is the deployer, made by npm start
  const how =
    "give the admin's keystore (the deployer's, unless ADMIN_ADDRESS named another) with --keystore <file>, or have the admin grant the role (grantRole(DEFAULT_ADMIN_ROLE, address))";
  const { rpcUrl, escrowAddress } = chainOf(dataDir, env);
  if (!rpcUrl || !escrowAddress) {
    throw new StartError(
      `add: the operator must be the escrow's admin on chain, which cannot be checked without the chain: set RPC_URL and ESCROW_ADDRESS, or run npm run deploy with this DATA_DIR first (it records them in deployment.env)`,
    );
  }
  if (address === undefined)
    throw new StartError(
      `add: an operator with a new key would not be the escrow's admin, and the contract would refuse its cases: ${how}`,
    );
  const { provider } = await connectRpc(rpcUrl);
  try {
    const escrow = MortgageEscrow__factory.connect(escrowAddress, provider);
    const isAdmin = await escrow.hasRole(await escrow.DEFAULT_ADMIN_ROLE(), address).catch(() => {
      throw new StartError(
        `add: ${escrowAddress} on ${rpcUrl} did not answer as a MortgageEscrow (ESCROW_ADDRESS, or DATA_DIR/deployment.env)`,
      );
    });
    if (!isAdmin)
      throw new StartError(
        `add: ${address} is not the admin of the escrow ${escrowAddress}, so it could not open cases as the operator: ${how}`,
      );
  } finally {
    provider.destroy();
  }
}

/** Tops up the relayer and every managed key to `--amount` ETH, from the `--from` keystore's account. */
async function fund(
  flags: Record<string, string>,
  dataDir: string,
  env: NodeJS.ProcessEnv,
  print: Print,
): Promise<void> {
  if (!flags.from)
    throw new StartError(`fund: --from <keystore> is required (the account that pays: the deployer's, say)\n${USAGE}`);
  let amount: bigint;
  try {
    amount = parseEther(flags.amount ?? "1");
  } catch {
    throw new StartError(`fund: --amount must be an amount of ETH, such as 0.5, not ${JSON.stringify(flags.amount)}`);
  }
  if (amount <= 0n) throw new StartError("fund: --amount must be more than 0");
  const chain = chainOf(dataDir, env);
  if (!chain.rpcUrl)
    throw new StartError(
      "fund: set RPC_URL (or run npm run deploy with this DATA_DIR first: it records it in deployment.env)",
    );
  const { password } = keystorePassword(env.KEYSTORE_PASSWORD || undefined, "external");
  const { provider, chainId } = await connectRpc(chain.rpcUrl);
  try {
    const payer = (await decryptKeystoreFile(resolve(flags.from), password)).connect(provider);
    const names = new Map<string, string>();
    await withStore(dataDir, (store) => {
      for (const p of store.list().filter((p) => p.revokedAt === null))
        names.set(p.address, `${p.role} ${JSON.stringify(p.name)}`);
    });
    const targets: Array<[string, string]> = [];
    const relayer = chain.signerKeystore ? keystoreAddress(chain.signerKeystore) : null;
    if (relayer) targets.push([relayer, "the relayer"]);
    for (const address of new Keystore(dataDir, password).addresses()) {
      if (address !== relayer) targets.push([address, `managed key of ${names.get(address) ?? "no principal"}`]);
    }
    if (targets.length === 0)
      print("nothing to fund: no relayer (SIGNER_KEYSTORE) and no managed keys in DATA_DIR/keys/");
    for (const [address, what] of targets) {
      if (address === payer.address) {
        print(`${address} (${what}) is the paying account itself: not funded`);
        continue;
      }
      const balance = await provider.getBalance(address);
      if (balance >= amount) {
        print(`${address} (${what}) holds ${formatEther(balance)} ETH already`);
        continue;
      }
      const tx = await payer.sendTransaction({ to: address, value: amount - balance });
      const receipt = await tx.wait();
      if (!receipt || receipt.status !== 1)
        throw new StartError(`fund: the transfer to ${address} failed (${tx.hash})`);
      print(
        `funded ${address} (${what}) with ${formatEther(amount - balance)} ETH on chain ${chainId} (tx ${tx.hash}): it holds ${formatEther(amount)} ETH`,
      );
    }
  } finally {
    provider.destroy();
  }
}

function list(store: PrincipalStore, keystore: Keystore, print: Print): void {
  const principals = store.list();
  if (principals.length === 0) {
    print("no principals yet: npm run principal -- add --name <name> --role <role>");
    return;
  }
  const managed = new Set(keystore.addresses());
  const rows = principals.map((p) => [
    p.id,
    p.role,
    p.name,
    p.address,
    managed.has(p.address) ? "managed" : "own wallet",
    p.revokedAt ? `revoked ${p.revokedAt}` : "active",
  ]);
  const header = ["id", "role", "name", "address", "key", "status"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows])
    print(
      row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    );
}

async function withStore(dataDir: string, use: (store: PrincipalStore) => void | Promise<void>): Promise<void> {
  const store = PrincipalStore.open(join(dataDir, "server.sqlite"));
  try {
    await use(store);
  } finally {
    store.close();
  }
}

if (require.main === module) {
  principalCli(process.argv.slice(2)).then(
    () => process.exit(0),
    (error: unknown) => exitOnStartError("npm run principal", error),
  );
}
