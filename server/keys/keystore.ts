/**
 * Managed keys: one encrypted JSON keystore per key (ethers' `encryptKeystoreJson`, as `Wallet.encrypt` writes it, the format geth and MetaMask
 * read) in `DATA_DIR/keys/<address>.json`, all under one password from `KEYSTORE_PASSWORD`. Back them up with
 * the data folder.
 *
 * Decrypting is deliberately slow (scrypt, about a second a key at ethers' default cost), so the server loads
 * every key once at start and keeps the wallets in memory.
 */
import { Wallet, encryptKeystoreJson, getAddress, isAddress } from "ethers";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StartError } from "../settings";

/**
 * The password of the embedded demo chain's keystores when `KEYSTORE_PASSWORD` is not set. Those keys are the
 * dev accounts of the well-known test mnemonic, public anyway: the password guards nothing there, and a
 * demo that asks for one first is a worse demo. Never used against an external chain.
 */
export const DEV_KEYSTORE_PASSWORD = "mortgage-signoff-dev-only";

/**
 * scrypt's cost for the dev accounts' keystores on the embedded chain only (ethers' default is 2^17): their
 * keys are public, so a slow key derivation protects nothing, and seven keys at 2^17 would add seconds to every
 * `npm start`. Keys that are not public (generated or imported ones) always get the default cost.
 */
export const DEV_SCRYPT_N = 1 << 14;

export interface KeystorePassword {
  password: string;
  /** Set when the dev password stands in for an unset `KEYSTORE_PASSWORD`. */
  warning: string | null;
}

/** The password to use: `KEYSTORE_PASSWORD`, or on the embedded chain only the dev password, with a warning. */
export function keystorePassword(given: string | undefined, mode: "embedded" | "external"): KeystorePassword {
  if (given !== undefined) return { password: given, warning: null };
  if (mode === "external")
    throw new StartError("KEYSTORE_PASSWORD: is required against an external chain (it decrypts the keystores)");
  return {
    password: DEV_KEYSTORE_PASSWORD,
    warning:
      "KEYSTORE_PASSWORD is not set: the embedded demo chain's keystores use the built-in dev password (fine for the public dev accounts, never for real keys)",
  };
}

export class Keystore {
  readonly dir: string;

  constructor(
    dataDir: string,
    private readonly password: string,
  ) {
    this.dir = join(dataDir, "keys");
  }

  fileOf(address: string): string {
    return join(this.dir, `${getAddress(address)}.json`);
  }

  has(address: string): boolean {
    return existsSync(this.fileOf(address));
  }

  /** The addresses of every key in the folder, from the file names (no decryption). */
  addresses(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((name) => name.endsWith(".json") && isAddress(name.slice(0, -5)))
      .map((name) => getAddress(name.slice(0, -5)))
      .sort();
  }

  /**
   * Encrypts `wallet` into the folder (readable by its owner only). Written to a temporary file first and renamed,
   * so a crash never leaves half a keystore under the key's name.
   */
  async save(wallet: Wallet, options: { scryptN?: number } = {}): Promise<string> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const json = await encryptKeystoreJson(
      { address: wallet.address, privateKey: wallet.privateKey },
      this.password,
      options.scryptN ? { scrypt: { N: options.scryptN } } : {},
    );
    const file = this.fileOf(wallet.address);
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, json, { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, file);
    return file;
  }

  /** A keystore made elsewhere (and already opened with this password), kept as it is under its address. */
  saveJson(address: string, json: string): string {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.fileOf(address);
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, json, { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, file);
    return file;
  }

  /** A new random key, saved at the default (slow) scrypt cost. */
  async generate(): Promise<Wallet> {
    const created = Wallet.createRandom();
    const wallet = new Wallet(created.privateKey);
    await this.save(wallet);
    return wallet;
  }

  async load(address: string): Promise<Wallet> {
    return decryptKeystoreFile(this.fileOf(address), this.password);
  }

  /** Every key in the folder, decrypted (slow: do it once, at start). */
  async loadAll(): Promise<Wallet[]> {
    const wallets: Wallet[] = [];
    for (const address of this.addresses()) wallets.push(await this.load(address));
    return wallets;
  }
}

/** Decrypts one keystore file; a wrong password or a damaged file is a `StartError` naming the file. */
export async function decryptKeystoreFile(file: string, password: string): Promise<Wallet> {
  let json: string;
  try {
    json = readFileSync(file, "utf8");
  } catch (error) {
    throw new StartError(
      `${file}: cannot read the keystore (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  try {
    const wallet = await Wallet.fromEncryptedJson(json, password);
    return wallet instanceof Wallet ? wallet : new Wallet(wallet.privateKey);
  } catch (error) {
    const reason = String((error as Error).message ?? error);
    const hint = /password/i.test(reason) ? "wrong KEYSTORE_PASSWORD?" : "not an encrypted JSON keystore?";
    throw new StartError(`${file}: cannot decrypt the keystore (${hint} ${reason.split("(")[0].trim()})`);
  }
}

/** The address a keystore file names (its `address` field), without decrypting it; null if it names none. */
export function keystoreAddress(file: string): string | null {
  try {
    const address = (JSON.parse(readFileSync(file, "utf8")) as { address?: unknown }).address;
    if (typeof address !== "string") return null;
    const prefixed = address.startsWith("0x") ? address : `0x${address}`;
    return isAddress(prefixed) ? getAddress(prefixed) : null;
  } catch {
    return null;
  }
}
