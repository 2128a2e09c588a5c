/**
 * `npm run deploy` (server/deploy.ts) against a real node over JSON-RPC (Anvil as a child process): it
 * deploys the escrow from an encrypted keystore, registers the three templates, and a second run on the same
 * escrow registers nothing twice.
 */
import { expect } from "chai";
import { encryptKeystoreJson } from "ethers";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deploy } from "../../server/deploy";
import { DEV_SCRYPT_N } from "../../server/keys/keystore";
import { StartError, SettingsError } from "../../server/settings";
import { loadTemplates } from "../../workflows";
import { MortgageEscrow__factory } from "../../typechain-types";
import { devWallet, startAnvil, type NodeProcess } from "../engine/support/node-process";

describe("npm run deploy (server/deploy.ts)", function () {
  let node: NodeProcess;
  let keystoreFile: string;
  const password = "deployer password";
  const deployer = devWallet(0);

  before(async function () {
    node = await startAnvil();
    keystoreFile = join(mkdtempSync(join(tmpdir(), "deploy-")), "deployer.json");
    // The low scrypt cost keeps the test quick: dev account 0's key is public anyway.
    writeFileSync(keystoreFile, await encryptKeystoreJson({ address: deployer.address, privateKey: deployer.privateKey }, password, { scrypt: { N: DEV_SCRYPT_N } }));
  });

  after(async function () {
    await node?.stop();
  });

  const env = () => ({ RPC_URL: node.url, SIGNER_KEYSTORE: keystoreFile, KEYSTORE_PASSWORD: password });

  it("deploys the escrow with the keystore's account as admin, registers every template, and prints the address", async function () {
    const lines: string[] = [];
    const { address, block } = await deploy(env(), (line) => lines.push(line));
    const escrow = MortgageEscrow__factory.connect(address, node.provider);
    expect(await escrow.hasRole(await escrow.DEFAULT_ADMIN_ROLE(), deployer.address)).to.equal(true);
    expect((await node.provider.getTransactionReceipt((await node.provider.getBlock(block!))!.transactions[0]))!.contractAddress).to.equal(address);
    for (const t of loadTemplates()) {
      expect(await escrow.isTemplateRegistered(t.templateId), t.workflow.id).to.equal(true);
      expect(lines.join("\n")).to.contain(`template ${t.workflow.id}@${t.workflow.version} ${t.templateId} registered`);
    }
    expect(lines.join("\n")).to.contain(`escrow deployed at ${address} in block ${block}`);
    expect(lines.join("\n")).to.contain(`ESCROW_ADDRESS=${address} DEPLOYMENT_BLOCK=${block}`);
  });

  it("registers nothing twice when run again on the same escrow", async function () {
    const first = await deploy(env(), () => undefined);
    const before = await node.provider.getTransactionCount(deployer.address);
    const lines: string[] = [];
    await deploy({ ...env(), ESCROW_ADDRESS: first.address }, (line) => lines.push(line));
    expect(await node.provider.getTransactionCount(deployer.address)).to.equal(before);
    expect(lines.filter((l) => l.endsWith("already registered"))).to.have.length(loadTemplates().length);
  });

  it("names a missing setting, an unreachable RPC_URL, a wrong password and an ESCROW_ADDRESS without code", async function () {
    const failure = (e: Promise<unknown>) => e.then(() => expect.fail("deploy succeeded"), (error: Error) => error);
    const missing = await failure(deploy({ RPC_URL: node.url }, () => undefined));
    expect(missing).to.be.instanceOf(SettingsError);
    expect((missing as SettingsError).problems.map((p) => p.split(":")[0])).to.deep.equal(["SIGNER_KEYSTORE", "KEYSTORE_PASSWORD"]);
    const unreachable = await failure(deploy({ ...env(), RPC_URL: "http://127.0.0.1:1" }, () => undefined));
    expect(unreachable).to.be.instanceOf(StartError);
    expect(unreachable.message).to.match(/^RPC_URL: no EVM node answered eth_chainId at http:\/\/127\.0\.0\.1:1/);
    const wrongPassword = await failure(deploy({ ...env(), KEYSTORE_PASSWORD: "wrong" }, () => undefined));
    expect(wrongPassword.message).to.contain("deployer.json: cannot decrypt the keystore (wrong KEYSTORE_PASSWORD?");
    const noCode = await failure(deploy({ ...env(), ESCROW_ADDRESS: devWallet(9).address }, () => undefined));
    expect(noCode.message).to.match(/^ESCROW_ADDRESS: there is no contract at/);
  });
});
