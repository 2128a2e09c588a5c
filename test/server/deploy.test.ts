/**
 * `npm run deploy` (server/deploy.ts) against a real node over JSON-RPC (Anvil as a child process): it
 * deploys the escrow from an encrypted keystore, registers the three templates, writes the settings to start
 * with to DATA_DIR/deployment.env, refuses to deploy a second escrow for the same folder, and a second run on the
 * same escrow registers nothing twice. Then what follows it on an external chain: `npm run principal -- add
 * --role operator` (the operator must be the escrow's admin) and `npm run principal -- fund`.
 */
import { expect } from "chai";
import { encryptKeystoreJson, parseEther } from "ethers";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deploy } from "../../server/deploy";
import { principalCli } from "../../server/cli/principal";
import { readDeploymentRecord } from "../../server/chain/deployment-record";
import { DEV_SCRYPT_N, Keystore, decryptKeystoreFile } from "../../server/keys/keystore";
import { StartError, SettingsError, parseSettings } from "../../server/settings";
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
    writeFileSync(
      keystoreFile,
      await encryptKeystoreJson({ address: deployer.address, privateKey: deployer.privateKey }, password, {
        scrypt: { N: DEV_SCRYPT_N },
      }),
    );
  });

  after(async function () {
    await node?.stop();
  });

  /** Each call its own data folder, unless one is given: one escrow per folder. */
  const env = (dataDir = mkdtempSync(join(tmpdir(), "deploy-data-"))) => ({
    RPC_URL: node.url,
    SIGNER_KEYSTORE: keystoreFile,
    KEYSTORE_PASSWORD: password,
    DATA_DIR: dataDir,
  });
  const failure = (e: Promise<unknown>) =>
    e.then(
      () => expect.fail("succeeded"),
      (error: Error) => error,
    );

  it("deploys the escrow with the keystore's account as admin, registers every template, and prints the address", async function () {
    const lines: string[] = [];
    const { address, block } = await deploy(env(), (line) => lines.push(line));
    const escrow = MortgageEscrow__factory.connect(address, node.provider);
    expect(await escrow.hasRole(await escrow.DEFAULT_ADMIN_ROLE(), deployer.address)).to.equal(true);
    expect(
      (await node.provider.getTransactionReceipt((await node.provider.getBlock(block!))!.transactions[0]))!
        .contractAddress,
    ).to.equal(address);
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
    const missing = await failure(deploy({ RPC_URL: node.url }, () => undefined));
    expect(missing).to.be.instanceOf(SettingsError);
    expect((missing as SettingsError).problems.map((p) => p.split(":")[0])).to.deep.equal([
      "SIGNER_KEYSTORE",
      "KEYSTORE_PASSWORD",
    ]);
    const unreachable = await failure(deploy({ ...env(), RPC_URL: "http://127.0.0.1:1" }, () => undefined));
    expect(unreachable).to.be.instanceOf(StartError);
    expect(unreachable.message).to.match(/^RPC_URL: no EVM node answered eth_chainId at http:\/\/127\.0\.0\.1:1/);
    const wrongPassword = await failure(deploy({ ...env(), KEYSTORE_PASSWORD: "wrong" }, () => undefined));
    expect(wrongPassword.message).to.contain("deployer.json: cannot decrypt the keystore (wrong KEYSTORE_PASSWORD?");
    const noCode = await failure(deploy({ ...env(), ESCROW_ADDRESS: devWallet(9).address }, () => undefined));
    expect(noCode.message).to.match(/^ESCROW_ADDRESS: there is no contract at/);
  });

  it("writes the settings to start with to DATA_DIR/deployment.env, prints them, and they are npm start's settings", async function () {
    const dataDir = mkdtempSync(join(tmpdir(), "deploy-data-"));
    const lines: string[] = [];
    const { address, block, relayer } = await deploy(env(dataDir), (line) => lines.push(line));
    const recorded = readDeploymentRecord(dataDir)!;
    expect(recorded).to.deep.equal({
      RPC_URL: node.url,
      ESCROW_ADDRESS: address,
      DEPLOYMENT_BLOCK: String(block),
      SIGNER_KEYSTORE: join(dataDir, "relayer.json"),
    });
    expect(lines.join("\n")).to.contain(
      `RPC_URL=${node.url} ESCROW_ADDRESS=${address} DEPLOYMENT_BLOCK=${block} SIGNER_KEYSTORE=${join(dataDir, "relayer.json")}`,
    );
    expect(lines.join("\n")).to.contain(`written to ${join(dataDir, "deployment.env")}`);
    const settings = parseSettings({ ...recorded, KEYSTORE_PASSWORD: password, DATA_DIR: dataDir });
    expect(settings.chain).to.deep.equal({
      mode: "external",
      rpcUrl: node.url,
      escrowAddress: address,
      signerKeystore: join(dataDir, "relayer.json"),
      deploymentBlock: block,
    });
    // The relayer's keystore was made, under the same password, and its empty balance is said with the way to fund it.
    expect((await decryptKeystoreFile(join(dataDir, "relayer.json"), password)).address).to.equal(relayer);
    expect(lines.join("\n")).to.contain(
      `the relayer ${relayer} holds 0 ETH: fund it and the managed keys with npm run principal -- fund --from ${keystoreFile}`,
    );
  });

  it("refuses to deploy a second escrow where DATA_DIR records one, unless --new asks, in a folder no server has used", async function () {
    const dataDir = mkdtempSync(join(tmpdir(), "deploy-data-"));
    const first = await deploy(env(dataDir), () => undefined);
    const nonce = await node.provider.getTransactionCount(deployer.address);
    const refused = await failure(deploy(env(dataDir), () => undefined));
    expect(refused).to.be.instanceOf(StartError);
    expect(refused.message).to.contain(`records the escrow ${first.address}`).and.contain("--new");
    expect(await node.provider.getTransactionCount(deployer.address), "nothing sent").to.equal(nonce);

    const second = await deploy(env(dataDir), () => undefined, ["--new"]);
    expect(second.address).not.to.equal(first.address);
    expect(readDeploymentRecord(dataDir)!.ESCROW_ADDRESS).to.equal(second.address);
    expect(second.relayer, "the same relayer key").to.equal(first.relayer);

    writeFileSync(join(dataDir, "engine.sqlite"), "");
    expect((await failure(deploy(env(dataDir), () => undefined, ["--new"]))).message).to.contain(
      "holds the cases of the escrow",
    );
    expect((await failure(deploy(env(dataDir), () => undefined, ["--fresh"]))).message).to.contain(
      'unknown option "--fresh"',
    );
  });

  it("refuses the embedded chain's data folder, and the relayer's keystore as the deployer's", async function () {
    const embedded = mkdtempSync(join(tmpdir(), "deploy-embedded-"));
    writeFileSync(join(embedded, "deployment.json"), "{}");
    expect((await failure(deploy(env(embedded), () => undefined))).message).to.match(
      /^DATA_DIR: .* is the embedded chain's data folder/,
    );
    const dataDir = mkdtempSync(join(tmpdir(), "deploy-data-"));
    await deploy(env(dataDir), () => undefined);
    const asRelayer = await failure(
      deploy({ ...env(dataDir), SIGNER_KEYSTORE: join(dataDir, "relayer.json") }, () => undefined, ["--new"]),
    );
    expect(asRelayer.message).to.match(/^SIGNER_KEYSTORE: .* is the relayer's keystore/);
  });

  describe("then npm run principal on that chain", function () {
    let dataDir: string;
    let escrowAddress: string;
    const run = async (args: string[], extra: NodeJS.ProcessEnv = {}) => {
      const lines: string[] = [];
      await principalCli(args, { DATA_DIR: dataDir, KEYSTORE_PASSWORD: password, ...extra }, (line) =>
        lines.push(line),
      );
      return lines.join("\n");
    };

    before(async function () {
      dataDir = mkdtempSync(join(tmpdir(), "deploy-principal-"));
      escrowAddress = (await deploy(env(dataDir), () => undefined)).address;
    });

    it("makes the operator of the admin's keystore, and refuses a new key or an address without the admin role, saying how", async function () {
      const newKey = await failure(run(["add", "--name", "Operator", "--role", "operator"]));
      expect(newKey.message)
        .to.contain("an operator with a new key would not be the escrow's admin")
        .and.contain("--keystore");
      const notAdmin = await failure(
        run(["add", "--name", "Operator", "--role", "operator", "--address", devWallet(7).address]),
      );
      expect(notAdmin.message)
        .to.contain(`${devWallet(7).address} is not the admin of the escrow ${escrowAddress}`)
        .and.contain("--keystore");
      expect(new Keystore(dataDir, password).addresses(), "no key left behind").to.deep.equal([]);

      const out = await run(["add", "--name", "Operator", "--role", "operator", "--keystore", keystoreFile]);
      expect(out).to.match(new RegExp(`^added prn_\\w+ operator "Operator" ${deployer.address}$`, "m"));
      expect(new Keystore(dataDir, password).addresses()).to.deep.equal([deployer.address]);
      expect((await new Keystore(dataDir, password).load(deployer.address)).address).to.equal(deployer.address);
      // Without RPC_URL in the environment the chain is the one deployment.env records: checked the same.
      expect(
        (
          await failure(
            run(["add", "--name", "Op 2", "--role", "operator", "--address", devWallet(8).address], { RPC_URL: "" }),
          )
        ).message,
      ).to.contain("is not the admin");
    });

    it("tops up the relayer and every managed key to --amount from the deployer's key, and sends nothing the second time", async function () {
      await run(["add", "--name", "Acme Bank", "--role", "bank"]);
      const bank = new Keystore(dataDir, password).addresses().find((a) => a !== deployer.address)!;
      const relayer = readDeploymentRecord(dataDir)!.SIGNER_KEYSTORE!;
      const relayerAddress = (await decryptKeystoreFile(relayer, password)).address;
      const out = await run(["fund", "--from", keystoreFile, "--amount", "0.5"]);
      expect(out).to.contain(`funded ${bank} (managed key of bank "Acme Bank") with 0.5 ETH`);
      expect(out).to.contain(`funded ${relayerAddress} (the relayer) with 0.5 ETH`);
      expect(out).to.contain(`${deployer.address} (managed key of operator "Operator") is the paying account itself`);
      expect(await node.provider.getBalance(bank)).to.equal(parseEther("0.5"));
      expect(await node.provider.getBalance(relayerAddress)).to.equal(parseEther("0.5"));
      const nonce = await node.provider.getTransactionCount(deployer.address);
      expect(await run(["fund", "--from", keystoreFile, "--amount", "0.5"])).to.contain(
        `${bank} (managed key of bank "Acme Bank") holds 0.5 ETH already`,
      );
      expect(await node.provider.getTransactionCount(deployer.address)).to.equal(nonce);
      expect((await failure(run(["fund", "--from", keystoreFile, "--amount", "lots"]))).message).to.contain(
        "--amount must be an amount of ETH",
      );
    });
  });
});
