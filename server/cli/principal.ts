/**
 * `npm run principal -- <command>`: the API's principals (who may call it, bound to one address each).
 *
 *   add --name "Acme Bank" --role bank [--address 0x..]   prints the new token once; without --address a new
 *                                                          managed key is generated into DATA_DIR/keys/
 *   list                                                   every principal, revoked ones included
 *   revoke <id|name|address>                               its token stops working at the next request
 *
 * The principals live in DATA_DIR/server.sqlite, which the running server reads per request: a principal added
 * or revoked here counts at once, with no restart. A managed key generated here is picked up by a running
 * server within a few seconds (it looks at DATA_DIR/keys/ every 2 s).
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { PRINCIPAL_ROLES, type Principal, type PrincipalRole, PrincipalStore } from "../auth/principals";
import { Keystore, keystorePassword } from "../keys/keystore";
import { StartError, exitOnStartError } from "../settings";

const USAGE = `usage: npm run principal -- <command>
  add --name <name> --role <${PRINCIPAL_ROLES.join("|")}> [--address 0x...]
      without --address, a new managed key is generated (encrypted with KEYSTORE_PASSWORD into DATA_DIR/keys/)
  list
  revoke <id|name|address>
the data folder is DATA_DIR (default .data)`;

type Print = (line: string) => void;

export async function principalCli(args: string[], env: NodeJS.ProcessEnv = process.env, print: Print = console.log): Promise<void> {
  const dataDir = resolve(env.DATA_DIR || ".data");
  const [command, ...rest] = args;
  if (command === "add") return add(parseFlags(rest), dataDir, env, print);
  if (command === "list" && rest.length === 0) return withStore(dataDir, (store) => list(store, new Keystore(dataDir, ""), print));
  if (command === "revoke" && rest.length === 1) {
    return withStore(dataDir, (store) => {
      const revoked = store.revoke(rest[0]);
      if (!revoked) throw new StartError(`revoke: no active principal with the id, name or address ${JSON.stringify(rest[0])}`);
      print(`revoked ${revoked.id} ${revoked.role} ${JSON.stringify(revoked.name)} ${revoked.address}: its token no longer works`);
    });
  }
  throw new StartError(command === undefined || command === "help" || command === "--help" ? USAGE : `unknown or incomplete command ${JSON.stringify(args.join(" "))}\n${USAGE}`);
}

function parseFlags(rest: string[]): Record<string, string> {
  const flags: Record<string, string> = {};
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]];
    if (!["--name", "--role", "--address"].includes(flag)) throw new StartError(`add: unknown option ${JSON.stringify(flag)}\n${USAGE}`);
    if (value === undefined || value.startsWith("--")) throw new StartError(`add: ${flag} needs a value\n${USAGE}`);
    flags[flag.slice(2)] = value;
  }
  return flags;
}

async function add(flags: Record<string, string>, dataDir: string, env: NodeJS.ProcessEnv, print: Print): Promise<void> {
  if (!flags.name?.trim()) throw new StartError(`add: --name is required\n${USAGE}`);
  if (!PRINCIPAL_ROLES.includes(flags.role as PrincipalRole)) {
    throw new StartError(`add: --role must be one of ${PRINCIPAL_ROLES.join(", ")}${flags.role ? `, not ${JSON.stringify(flags.role)}` : ""}`);
  }
  if (flags.address !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(flags.address)) throw new StartError(`add: --address must be a 20-byte hex address, not ${JSON.stringify(flags.address)}`);

  await withStore(dataDir, async (store) => {
    const name = flags.name.trim();
    // Checked before a key is generated, so a refused add leaves no orphan keystore behind.
    if (store.list().some((p) => p.name === name)) throw new StartError(`add: a principal named ${JSON.stringify(name)} already exists`);
    let address = flags.address;
    let keyFile: string | null = null;
    if (address === undefined) {
      // The embedded demo's folder (it has deployment.json) may use the dev password; any other needs KEYSTORE_PASSWORD.
      const mode = existsSync(join(dataDir, "deployment.json")) && !env.RPC_URL ? "embedded" : "external";
      const { password, warning } = keystorePassword(env.KEYSTORE_PASSWORD || undefined, mode);
      if (warning) print(`warning: ${warning}`);
      const keystore = new Keystore(dataDir, password);
      address = (await keystore.generate()).address;
      keyFile = keystore.fileOf(address);
    }
    let added: { principal: Principal; token: string };
    try {
      added = store.add({ name, role: flags.role as PrincipalRole, address });
    } catch (error) {
      throw new StartError(`add: ${(error as Error).message}`);
    }
    const { principal, token } = added;
    print(`added ${principal.id} ${principal.role} ${JSON.stringify(principal.name)} ${principal.address}`);
    if (keyFile) print(`managed key: ${keyFile} (a running server loads it within a few seconds; back it up with the data folder)`);
    print(`token (shown this once; only its hash is kept): ${token}`);
  });
}

function list(store: PrincipalStore, keystore: Keystore, print: Print): void {
  const principals = store.list();
  if (principals.length === 0) {
    print("no principals yet: npm run principal -- add --name <name> --role <role>");
    return;
  }
  const managed = new Set(keystore.addresses());
  const rows = principals.map((p) => [p.id, p.role, p.name, p.address, managed.has(p.address) ? "managed" : "own wallet", p.revokedAt ? `revoked ${p.revokedAt}` : "active"]);
  const header = ["id", "role", "name", "address", "key", "status"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) print(row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
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
