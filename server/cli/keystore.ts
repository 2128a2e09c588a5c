/**
 * Makes the encrypted JSON keystore that `npm run deploy` and `npm start` (with RPC_URL) take as
 * `SIGNER_KEYSTORE`, so that no raw key ever sits in a file. The password is `KEYSTORE_PASSWORD`.
 *
 *   npx ts-node --transpile-only server/cli/keystore.ts new <file>          a new random key
 *   npx ts-node --transpile-only server/cli/keystore.ts import <file>       the private key read from stdin
 *   npx ts-node --transpile-only server/cli/keystore.ts dev <index> <file>  dev account <index> of the public test
 *                                                                           mnemonic (hardhat node, Anvil): local only
 *
 * <file> may be a folder ending in "/" (such as DATA_DIR/keys/): the keystore is then named <address>.json in it,
 * which makes it one of the server's managed keys.
 *
 * Any geth-style keystore works as well (for instance `cast wallet new`).
 */
import { HDNodeWallet, Wallet, encryptKeystoreJson } from "ethers";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DEV_MNEMONIC } from "../chain/embedded-chain";
import { StartError, exitOnStartError } from "../settings";

const USAGE = `usage: keystore.ts new <file> | import <file> (private key on stdin) | dev <index 0-19> <file>
  the password comes from KEYSTORE_PASSWORD`;

export async function keystoreCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  print: (line: string) => void = console.log,
): Promise<void> {
  const [command, ...rest] = args;
  const password = env.KEYSTORE_PASSWORD;
  if (!password) throw new StartError("KEYSTORE_PASSWORD: is required (it encrypts the keystore)");
  let wallet: Wallet;
  let file: string | undefined;
  if (command === "new" && rest.length === 1) {
    file = rest[0];
    wallet = new Wallet(Wallet.createRandom().privateKey);
  } else if (command === "import" && rest.length === 1) {
    file = rest[0];
    const key = readFileSync(0, "utf8").trim();
    try {
      wallet = new Wallet(key.startsWith("0x") ? key : `0x${key}`);
    } catch {
      throw new StartError("stdin: not a private key (64 hex digits)");
    }
  } else if (command === "dev" && rest.length === 2 && /^\d+$/.test(rest[0]) && Number(rest[0]) < 20) {
    file = rest[1];
    wallet = new Wallet(HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${rest[0]}`).privateKey);
    print(`warning: dev account ${rest[0]} of the public test mnemonic: for a local node only, never for real money`);
  } else {
    throw new StartError(USAGE);
  }
  // A folder (DATA_DIR/keys/, say) gets the file named after the address, as the server's managed keys are.
  if (file.endsWith("/") || (existsSync(file) && statSync(file).isDirectory()))
    file = join(file, `${wallet.address}.json`);
  if (existsSync(file)) throw new StartError(`${file}: exists already; not overwritten`);
  const json = await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, password);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, json, { mode: 0o600, flag: "wx" });
  print(`${wallet.address} -> ${file}`);
}

if (require.main === module) {
  keystoreCli(process.argv.slice(2)).then(
    () => process.exit(0),
    (error: unknown) => exitOnStartError("keystore", error),
  );
}
