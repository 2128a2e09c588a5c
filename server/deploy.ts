/**
 * `npm run deploy`: deploys MortgageEscrow to the node at `RPC_URL`, registers the workflow templates, and writes
 * the settings `npm start` needs to serve it to `DATA_DIR/deployment.env` (and prints them):
 *
 *   RPC_URL=http://127.0.0.1:8545 DATA_DIR=.data-ext SIGNER_KEYSTORE=deployer.json KEYSTORE_PASSWORD=... npm run deploy
 *   set -a; . .data-ext/deployment.env; set +a; npm start
 *
 * The deployer's key comes from an encrypted JSON keystore and a password in the environment, never from a raw
 * key in a file; it becomes the escrow's admin (or `ADMIN_ADDRESS` does). The relayer's key, which pays for
 * relayed sign-offs, is `DATA_DIR/relayer.json`, made here (a new random key, under the same password) when it
 * does not exist yet.
 *
 * One escrow per data folder: where `deployment.env` records one, a second run deploys nothing and says so;
 * `--new` deploys another, in a folder the server has not served from yet. With `ESCROW_ADDRESS` it deploys
 * nothing and only registers the templates that escrow lacks (for instance a new template file); running it
 * twice on the same escrow registers nothing twice.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Wallet, encryptKeystoreJson, formatEther } from "ethers";
import { deployEscrow, hasCode, registerTemplates } from "./chain/deploy-escrow";
import { deploymentFile, readDeploymentRecord, writeDeploymentRecord } from "./chain/deployment-record";
import { connectRpc } from "./chain/rpc";
import { decryptKeystoreFile } from "./keys/keystore";
import { StartError, exitOnStartError, parseDeploySettings } from "./settings";

const USAGE =
  "usage: npm run deploy [-- --new]   (--new: deploy another escrow where DATA_DIR/deployment.env records one)";

export interface DeployResult {
  address: string;
  block: number | null;
  /** `DATA_DIR/deployment.env`. */
  file: string;
  relayer: string;
}

export async function deploy(
  env: NodeJS.ProcessEnv = process.env,
  print: (line: string) => void = console.log,
  args: string[] = [],
): Promise<DeployResult> {
  const unknown = args.filter((a) => a !== "--new");
  if (unknown.length > 0) throw new StartError(`unknown option ${JSON.stringify(unknown[0])}\n${USAGE}`);
  const wantsNew = args.includes("--new");
  const settings = parseDeploySettings(env);
  const { dataDir } = settings;
  if (existsSync(join(dataDir, "deployment.json"))) {
    throw new StartError(
      `DATA_DIR: ${dataDir} is the embedded chain's data folder; set DATA_DIR to a folder of this chain's own, such as .data-ext`,
    );
  }
  const recorded = readDeploymentRecord(dataDir);
  const file = deploymentFile(dataDir);
  if (recorded?.ESCROW_ADDRESS) {
    if (settings.escrowAddress === undefined && !wantsNew) {
      throw new StartError(
        `DATA_DIR: ${file} records the escrow ${recorded.ESCROW_ADDRESS} (block ${recorded.DEPLOYMENT_BLOCK}, ${recorded.RPC_URL}): nothing deployed. ` +
          `Serve it with: set -a; . ${file}; set +a; npm start. To deploy another escrow, pass --new (npm run deploy -- --new) with a new DATA_DIR`,
      );
    }
    if (
      settings.escrowAddress !== undefined &&
      settings.escrowAddress.toLowerCase() !== recorded.ESCROW_ADDRESS.toLowerCase()
    ) {
      throw new StartError(
        `ESCROW_ADDRESS: ${settings.escrowAddress} is not the escrow ${recorded.ESCROW_ADDRESS} that ${file} records; set DATA_DIR to another folder for it`,
      );
    }
    if (wantsNew && existsSync(join(dataDir, "engine.sqlite"))) {
      throw new StartError(
        `--new: ${dataDir} holds the cases of the escrow ${recorded.ESCROW_ADDRESS} (engine.sqlite); set DATA_DIR to a new folder for a new escrow`,
      );
    }
    if (recorded.SIGNER_KEYSTORE && resolve(recorded.SIGNER_KEYSTORE) === settings.signerKeystore) {
      throw new StartError(
        `SIGNER_KEYSTORE: ${settings.signerKeystore} is the relayer's keystore (from ${file}); deploy with the deployer's (the escrow's admin)`,
      );
    }
  }

  const { provider, chainId } = await connectRpc(settings.rpcUrl);
  try {
    const signer = (await decryptKeystoreFile(settings.signerKeystore, settings.keystorePassword)).connect(provider);
    print(`deployer ${signer.address} on chain ${chainId} (${settings.rpcUrl})`);
    const relayer = await ensureRelayerKeystore(join(dataDir, "relayer.json"), settings.keystorePassword, print);

    let address = settings.escrowAddress;
    let block: number | null = null;
    let admin: string | null = null;
    if (address) {
      if (!(await hasCode(provider, address)))
        throw new StartError(`ESCROW_ADDRESS: there is no contract at ${address} on chain ${chainId}`);
      print(`escrow ${address} (already deployed): registering the templates it lacks`);
    } else {
      const deployed = await deployEscrow(signer, {
        admin: settings.adminAddress,
        confirmations: settings.confirmations,
      });
      address = deployed.address;
      block = deployed.block;
      admin = deployed.admin;
      print(`escrow deployed at ${address} in block ${block} (tx ${deployed.txHash}), admin ${deployed.admin}`);
    }
    for (const t of await registerTemplates(signer, address, { confirmations: settings.confirmations })) {
      print(
        `template ${t.workflow}@${t.version} ${t.templateId} ${t.outcome === "registered" ? `registered (tx ${t.txHash})` : "already registered"}`,
      );
    }

    const deploymentBlock = block ?? (recorded?.ESCROW_ADDRESS ? Number(recorded.DEPLOYMENT_BLOCK ?? 0) : 0);
    if (block !== null || !recorded?.ESCROW_ADDRESS) {
      writeDeploymentRecord(
        dataDir,
        {
          RPC_URL: settings.rpcUrl,
          ESCROW_ADDRESS: address,
          DEPLOYMENT_BLOCK: String(deploymentBlock),
          SIGNER_KEYSTORE: relayer.file,
        },
        [
          `npm run deploy, ${new Date().toISOString()}: the escrow on chain ${chainId}${admin ? `, admin ${admin}` : ""}, relayer ${relayer.address}`,
          ...(block === null
            ? [
                "ESCROW_ADDRESS was given: its deployment block is unknown here, so following starts at block 0 (correct, only slower)",
              ]
            : []),
          "npm start's settings: set -a; . <this file>; set +a; npm start (with KEYSTORE_PASSWORD and DATA_DIR set)",
        ],
      );
    }
    const relayerBalance = await provider.getBalance(relayer.address);
    print("");
    print(`the settings to start with (written to ${file}):`);
    print(
      `  RPC_URL=${shellWord(settings.rpcUrl)} ESCROW_ADDRESS=${address} DEPLOYMENT_BLOCK=${deploymentBlock} SIGNER_KEYSTORE=${shellWord(relayer.file)}`,
    );
    print(
      `  with DATA_DIR=${shellWord(dataDir)} and KEYSTORE_PASSWORD as now. To start: set -a; . ${shellWord(file)}; set +a; npm start`,
    );
    print(
      `the operator must be the escrow's admin: npm run principal -- add --name Operator --role operator --keystore ${shellWord(settings.signerKeystore)}`,
    );
    if (relayerBalance === 0n) {
      print(
        `the relayer ${relayer.address} holds 0 ETH: fund it and the managed keys with npm run principal -- fund --from ${shellWord(settings.signerKeystore)}`,
      );
    } else {
      print(`the relayer ${relayer.address} holds ${formatEther(relayerBalance)} ETH`);
    }
    return { address, block, file, relayer: relayer.address };
  } finally {
    provider.destroy();
  }
}

/** The relayer's keystore: made (a new random key) if absent; an existing one must open with the password. */
async function ensureRelayerKeystore(
  file: string,
  password: string,
  print: (line: string) => void,
): Promise<{ file: string; address: string }> {
  if (existsSync(file)) return { file, address: (await decryptKeystoreFile(file, password)).address };
  const wallet = new Wallet(Wallet.createRandom().privateKey);
  mkdirSync(resolve(file, ".."), { recursive: true });
  writeFileSync(file, await encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey }, password), {
    mode: 0o600,
    flag: "wx",
  });
  print(`relayer ${wallet.address}: a new key, encrypted with KEYSTORE_PASSWORD into ${file}`);
  return { file, address: wallet.address };
}

/** A value as it can be pasted into sh: bare when that is safe, single-quoted otherwise. */
function shellWord(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

if (require.main === module) {
  deploy(process.env, console.log, process.argv.slice(2)).then(
    () => process.exit(0),
    (error: unknown) => exitOnStartError("npm run deploy", error),
  );
}
