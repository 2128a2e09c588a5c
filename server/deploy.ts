/**
 * `npm run deploy`: deploys MortgageEscrow to the node at `RPC_URL` and registers the workflow templates, then
 * prints what `npm start` needs to join that chain (the address and the deployment block).
 *
 *   RPC_URL=http://127.0.0.1:8545 SIGNER_KEYSTORE=deployer.json KEYSTORE_PASSWORD=... npm run deploy
 *
 * The deployer's key comes from an encrypted JSON keystore and a password in the environment, never from a raw
 * key in a file. With `ESCROW_ADDRESS` it deploys nothing and only registers the templates that escrow lacks
 * (for instance a new template file); running it twice on the same escrow registers nothing twice.
 */
import { deployEscrow, hasCode, registerTemplates } from "./chain/deploy-escrow";
import { connectRpc } from "./chain/rpc";
import { decryptKeystoreFile } from "./keys/keystore";
import { StartError, exitOnStartError, parseDeploySettings } from "./settings";

export async function deploy(env: NodeJS.ProcessEnv = process.env, print: (line: string) => void = console.log): Promise<{ address: string; block: number | null }> {
  const settings = parseDeploySettings(env);
  const { provider, chainId } = await connectRpc(settings.rpcUrl);
  try {
    const signer = (await decryptKeystoreFile(settings.signerKeystore, settings.keystorePassword)).connect(provider);
    print(`deployer ${signer.address} on chain ${chainId} (${settings.rpcUrl})`);

    let address = settings.escrowAddress;
    let block: number | null = null;
    if (address) {
      if (!(await hasCode(provider, address))) throw new StartError(`ESCROW_ADDRESS: there is no contract at ${address} on chain ${chainId}`);
      print(`escrow ${address} (already deployed): registering the templates it lacks`);
    } else {
      const deployed = await deployEscrow(signer, { admin: settings.adminAddress, confirmations: settings.confirmations });
      address = deployed.address;
      block = deployed.block;
      print(`escrow deployed at ${address} in block ${block} (tx ${deployed.txHash}), admin ${deployed.admin}`);
    }
    for (const t of await registerTemplates(signer, address, { confirmations: settings.confirmations })) {
      print(`template ${t.workflow}@${t.version} ${t.templateId} ${t.outcome === "registered" ? `registered (tx ${t.txHash})` : "already registered"}`);
    }
    print("");
    print("to serve it:");
    print(`  RPC_URL=${settings.rpcUrl} ESCROW_ADDRESS=${address}${block !== null ? ` DEPLOYMENT_BLOCK=${block}` : ""} SIGNER_KEYSTORE=<relayer keystore> KEYSTORE_PASSWORD=... npm start`);
    return { address, block };
  } finally {
    provider.destroy();
  }
}

if (require.main === module) {
  deploy().then(
    () => process.exit(0),
    (error: unknown) => exitOnStartError("npm run deploy", error),
  );
}
