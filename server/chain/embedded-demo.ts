/**
 * What `npm start` puts on its embedded chain, once: the escrow and its templates (remembered in
 * `DATA_DIR/deployment.json`), demo principals on the dev accounts with their managed keys (tokens in
 * `DATA_DIR/credentials.json`), and one demo case (`DATA_DIR/demo-case.json`). Every step checks what is there
 * first, so a restart (or a start after a crash halfway through the first one) creates nothing twice.
 */
import { HDNodeWallet, Wallet, type Provider, parseEther } from "ethers";
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Engine } from "../../engine";
import type { PrincipalRole, PrincipalStore } from "../auth/principals";
import { DEV_SCRYPT_N, type Keystore } from "../keys/keystore";
import { StartError } from "../settings";
import { deployEscrow, hasCode, registerTemplates, type TemplateRegistration } from "./deploy-escrow";
import { DEV_MNEMONIC, EMBEDDED_CHAIN_ID } from "./embedded-chain";

/** The dev accounts of the demo: operator (the escrow's admin) #0, bank #1, lawyer #2, buyer #3, seller #4. */
export const DEMO_ACCOUNTS: Record<PrincipalRole, number> = { operator: 0, bank: 1, lawyer: 2, buyer: 3, seller: 4 };
/** The engine's relayer (pays for relayed sign-offs, advance, expire): dev account #5. */
export const RELAYER_ACCOUNT = 5;

export const DEMO_NAMES: Record<PrincipalRole, string> = {
  operator: "Demo operator",
  bank: "Demo bank",
  lawyer: "Demo lawyer",
  buyer: "Demo buyer",
  seller: "Demo seller",
};

/** A us-purchase in ETH: price 400, the buyer's deposit 40, the bank's loan 360 (wei, decimal strings). */
export const DEMO_CASE = {
  workflow: "us-purchase",
  terms: { price: parseEther("400").toString(), deposit: parseEther("40").toString(), loan: parseEther("360").toString() },
};

export interface Deployment {
  chainId: number;
  address: string;
  block: number;
}

export type Credentials = Record<PrincipalRole, { token: string; address: string }>;

export function devWallet(index: number): Wallet {
  return new Wallet(HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`).privateKey);
}

/** The dev accounts' keystores (the five principals and the relayer), written once, at the low dev scrypt cost. */
export async function ensureDevKeys(keystore: Keystore): Promise<void> {
  for (const index of [...Object.values(DEMO_ACCOUNTS), RELAYER_ACCOUNT]) {
    const wallet = devWallet(index);
    if (!keystore.has(wallet.address)) await keystore.save(wallet, { scryptN: DEV_SCRYPT_N });
  }
}

/**
 * The escrow on the embedded chain: deployed and remembered on the first start; on a restart, checked to still
 * be there. If the chain has no code at the remembered address, its saved state was lost (`chain/state.json`
 * deleted or replaced): the engine's store then describes cases that chain never had. Rather than deploy a new
 * escrow under an engine whose store and outbox point at the old one, the start stops and says what to do.
 */
export async function ensureDeployment(options: {
  dataDir: string;
  provider: Provider;
  operator: Wallet;
  stateFile: string;
  log: (line: string) => void;
}): Promise<{ deployment: Deployment; templates: TemplateRegistration[]; fresh: boolean }> {
  const file = join(options.dataDir, "deployment.json");
  const admin = options.operator.connect(options.provider);
  if (existsSync(file)) {
    const deployment = JSON.parse(readFileSync(file, "utf8")) as Deployment;
    if (deployment.chainId !== EMBEDDED_CHAIN_ID || !(await hasCode(options.provider, deployment.address))) {
      throw new StartError(
        `${file}: the embedded chain has no contract at ${deployment.address}: its saved state (${options.stateFile}) was lost or replaced, ` +
          `so the engine's store no longer matches it. Move ${options.dataDir} aside (or delete it) to start afresh with a new demo`,
      );
    }
    // Cheap when nothing is missing (one call per template); registers a template file added since.
    const templates = await registerTemplates(admin, deployment.address);
    return { deployment, templates, fresh: false };
  }
  options.log("embedded chain: deploying the escrow and registering the templates (first start)");
  const deployed = await deployEscrow(admin);
  const templates = await registerTemplates(admin, deployed.address);
  // Remembered only once Anvil has saved a state that holds it, so a kill right now can't leave a
  // deployment.json that points at a contract the restarted chain does not have.
  await waitForSavedState(options.stateFile, await options.provider.getBlockNumber());
  const deployment: Deployment = { chainId: deployed.chainId, address: deployed.address, block: deployed.block };
  writeJsonAtomically(file, deployment, 0o644);
  return { deployment, templates, fresh: true };
}

/** Waits until Anvil's state file holds block `blockNumber` (it saves every second). */
export async function waitForSavedState(stateFile: string, blockNumber: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const saved = Number((JSON.parse(readFileSync(stateFile, "utf8")) as { best_block_number?: string | number }).best_block_number);
      if (saved >= blockNumber) return;
    } catch {
      // not written yet, or being written
    }
    if (Date.now() > deadline) throw new StartError(`${stateFile}: Anvil did not save its state within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * The demo principals and their tokens. A token is stored only as a hash, so it can be shown again only from
 * `credentials.json` (the demo's own file, mode 0600). Without that file the demo principals get new tokens: the
 * old ones (if any) are revoked first, so there is never a second live principal for the same demo role.
 */
export function ensureDemoPrincipals(principals: PrincipalStore, dataDir: string): { credentials: Credentials; created: boolean; problems: string[] } {
  const file = join(dataDir, "credentials.json");
  if (existsSync(file)) {
    const credentials = JSON.parse(readFileSync(file, "utf8")) as Credentials;
    const problems = Object.entries(credentials)
      .filter(([, c]) => principals.authenticate(c.token) === null)
      .map(([role]) => `the ${role}'s token in ${file} no longer authenticates (revoked?)`);
    return { credentials, created: false, problems };
  }
  const existing = principals.list();
  const credentials = {} as Credentials;
  for (const [role, index] of Object.entries(DEMO_ACCOUNTS) as Array<[PrincipalRole, number]>) {
    const address = devWallet(index).address;
    for (const old of existing.filter((p) => p.revokedAt === null && p.role === role && p.address === address && p.name.startsWith(DEMO_NAMES[role]))) {
      principals.revoke(old.id);
    }
    const taken = new Set(existing.map((p) => p.name));
    let name = DEMO_NAMES[role];
    for (let n = 2; taken.has(name); n++) name = `${DEMO_NAMES[role]} ${n}`;
    const { token } = principals.add({ name, role, address });
    credentials[role] = { token, address };
  }
  writeJsonAtomically(file, credentials, 0o600);
  return { credentials, created: true, problems: [] };
}

/**
 * The demo case, opened by the demo bank on the first start. Its id is remembered in `demo-case.json`; the
 * idempotency key makes a second attempt (after a crash before that file was written) return the same case.
 */
export async function ensureDemoCase(engine: Pick<Engine, "openCase" | "getCase">, dataDir: string, credentials: Credentials): Promise<{ caseId: string; created: boolean }> {
  const file = join(dataDir, "demo-case.json");
  if (existsSync(file)) {
    const { caseId } = JSON.parse(readFileSync(file, "utf8")) as { caseId: string };
    return { caseId, created: false };
  }
  const opened = await engine.openCase(
    {
      principalAddress: credentials.bank.address,
      workflow: DEMO_CASE.workflow,
      parties: { bank: credentials.bank.address, lawyer: credentials.lawyer.address, buyer: credentials.buyer.address, seller: credentials.seller.address },
      terms: DEMO_CASE.terms,
      idempotencyKey: "npm-start-demo-case",
    },
    { timeoutMs: 60_000 },
  );
  const caseId = String(opened.id);
  writeJsonAtomically(file, { caseId }, 0o644);
  return { caseId, created: true };
}

export function writeJsonAtomically(file: string, value: unknown, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(value, null, 2)}\n`, { mode });
  chmodSync(temporary, mode);
  renameSync(temporary, file);
}
