/**
 * `npm start` as a user runs it: server/main.ts as a child process (ts-node, in its own process group) on a
 * temp DATA_DIR and a free port, with its embedded Anvil. It serves the demo, survives a restart and a
 * `kill -9` right after the API answered 202 (of the server alone, and of the server and its Anvil together, so
 * that the chain comes back older than the engine's store), and refuses a wrong setting by name. Then the
 * external mode against a `hardhat node` started on its own, where `npm run deploy` put the escrow.
 */
import { expect } from "chai";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encryptKeystoreJson, id as keccakId } from "ethers";
import { deploy } from "../../server/deploy";
import { Keystore, DEV_SCRYPT_N } from "../../server/keys/keystore";
import { principalCli } from "../../server/cli/principal";
import { readDeploymentRecord } from "../../server/chain/deployment-record";
import { waitForSavedState } from "../../server/chain/embedded-demo";
import { startEmbeddedChain } from "../../server/chain/embedded-chain";
import { createServer } from "node:net";
import { devWallet, freePort, startHardhatNode, type NodeProcess } from "../engine/support/node-process";
import {
  alive,
  anvilPid,
  api,
  eventually,
  runMain,
  signalGroup,
  stopGracefully,
  type MainProcess,
} from "./support/main-process";

function stage(progress: any, id: string): { status: string; signedOff: string[] } {
  return progress.stages.find((s: { id: string }) => s.id === id);
}

describe("npm start (server/main.ts)", function () {
  this.timeout(120_000);

  describe("on the embedded chain", function () {
    const dataDir = mkdtempSync(join(tmpdir(), "npm-start-"));
    let port: number;
    let chainPort: number;
    let main: MainProcess | null = null;
    const env = () => ({ DATA_DIR: dataDir, PORT: String(port), CHAIN_PORT: String(chainPort) });
    let credentials: Record<string, { token: string; address: string }>;
    let caseId: string;

    before(async function () {
      port = await freePort();
      chainPort = await freePort();
      main = await runMain(env());
    });

    after(async function () {
      if (main && main.child.exitCode === null && main.child.signalCode === null) await stopGracefully(main);
      const pid = anvilPid(dataDir);
      if (pid !== null && alive(pid)) process.kill(pid, "SIGKILL");
    });

    it("serves /health with the escrow it deployed", async function () {
      const deployment = JSON.parse(readFileSync(join(dataDir, "deployment.json"), "utf8"));
      const health = await api(main!.url, null, "GET", "/health");
      expect(health.status).to.equal(200);
      expect(health.body).to.include({ status: "ok", chainId: "31337", contract: deployment.address });
      expect(deployment).to.include({ chainId: 31337 });
    });

    it("prints the embedded chain's RPC URL, on CHAIN_PORT, which answers as chain 31337 (for a wallet or an explorer)", async function () {
      const rpc = /^ {2}RPC {10}(http:\/\/127\.0\.0\.1:\d+)/m.exec(main!.output());
      expect(rpc, main!.output()).not.to.equal(null);
      expect(rpc![1]).to.equal(`http://127.0.0.1:${chainPort}`);
      const res = await fetch(rpc![1], {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      expect(((await res.json()) as { result: string }).result).to.equal("0x7a69");
    });

    it("writes credentials.json (mode 0600) with a working token for each of the five roles, as printed", async function () {
      const file = join(dataDir, "credentials.json");
      expect(statSync(file).mode & 0o777).to.equal(0o600);
      credentials = JSON.parse(readFileSync(file, "utf8"));
      expect(Object.keys(credentials).sort()).to.deep.equal(["bank", "buyer", "lawyer", "operator", "seller"]);
      expect(credentials.bank.address).to.equal(devWallet(1).address);
      for (const { token } of Object.values(credentials)) {
        expect(main!.output()).to.contain(token);
        expect((await api(main!.url, token, "GET", "/cases")).status).to.equal(200);
      }
    });

    it("opens one demo case, which the buyer's token sees", async function () {
      caseId = JSON.parse(readFileSync(join(dataDir, "demo-case.json"), "utf8")).caseId;
      expect(main!.output()).to.contain(`/ui/cases/${caseId}`);
      const res = await api(main!.url, credentials.buyer.token, "GET", `/cases/${caseId}`);
      expect(res.status).to.equal(200);
      expect(res.body.workflow.id).to.equal("us-purchase");
      expect(res.body.terms).to.include({
        price: "400000000000000000000",
        deposit: "40000000000000000000",
        loan: "360000000000000000000",
      });
      expect(res.body.parties.buyer).to.equal(credentials.buyer.address);
      expect((await api(main!.url, null, "GET", `/cases/${caseId}`)).status).to.equal(401);
    });

    it("keeps a sign-off answered 202 through a kill -9 of the server and its Anvil, with the chain back from an older save", async function () {
      // An older save made certain: Anvil's state as it was before the sign-off is put back after the kill, as if
      // Anvil had died before its next save (it saves every second).
      const stateFile = join(dataDir, "chain", "state.json");
      const head = (await api(main!.url, null, "GET", "/health")).body.blockNumber as number;
      await waitForSavedState(stateFile, head);
      const older = `${stateFile}.older`;
      copyFileSync(stateFile, older);

      const answered = await api(
        main!.url,
        credentials.bank.token,
        "POST",
        `/cases/${caseId}/stages/application/sign-offs`,
        { evidence: keccakId("application by the bank") },
      );
      expect(answered.status).to.equal(202);
      await eventually("the bank's sign-off shown before the kill", async () => {
        const res = await api(main!.url, credentials.buyer.token, "GET", `/cases/${caseId}`);
        return stage(res.body, "application").signedOff.includes("bank");
      });
      const anvil = anvilPid(dataDir)!;
      signalGroup(main!.child, "SIGKILL");
      process.kill(anvil, "SIGKILL");
      await main!.exited;
      copyFileSync(older, stateFile);

      main = await runMain(env());
      expect(main.output(), "the same tokens, printed again").to.contain(credentials.buyer.token);
      const progress = await eventually("the bank's sign-off after the restart", async () => {
        const res = await api(main!.url, credentials.buyer.token, "GET", `/cases/${caseId}`);
        return res.status === 200 && stage(res.body, "application").signedOff.includes("bank") && res.body;
      });
      expect(progress.terms.price).to.equal("400000000000000000000");
      const history = await api(main.url, credentials.buyer.token, "GET", `/cases/${caseId}/history`);
      const signedOff = history.body.events.filter((e: { event: string }) => e.event === "SignedOff");
      expect(signedOff, JSON.stringify(history.body)).to.have.length(1);
      expect(signedOff[0].block, "re-submitted onto the older chain, in its next block").to.equal(head + 1);
      const creds = JSON.parse(readFileSync(join(dataDir, "credentials.json"), "utf8"));
      expect(creds).to.deep.equal(credentials);
    });

    it("keeps a sign-off through a kill -9 of the server alone: the next start stops the Anvil it left, and keeps the moved clock", async function () {
      const moved = await api(main!.url, credentials.operator.token, "POST", "/dev/clock", { seconds: 30 * 86_400 });
      expect(moved.status, JSON.stringify(moved.body)).to.equal(200);
      const movedTo = Date.parse(moved.body.now);
      const answered = await api(
        main!.url,
        credentials.buyer.token,
        "POST",
        `/cases/${caseId}/stages/application/sign-offs`,
        { evidence: keccakId("application by the buyer") },
      );
      expect(answered.status).to.equal(202);
      const leftover = anvilPid(dataDir)!;
      signalGroup(main!.child, "SIGKILL");
      await main!.exited;
      expect(alive(leftover), "Anvil outlives a hard-killed server").to.equal(true);

      main = await runMain(env());
      expect(main.output(), "the same RPC URL after a restart").to.contain(
        `RPC          http://127.0.0.1:${chainPort} `,
      );
      expect(main.output()).to.contain(
        `stopping the Anvil left over from an earlier run (pid ${leftover}) after saving its state`,
      );
      expect(alive(leftover)).to.equal(false);
      await eventually("the application stage completed on chain", async () => {
        const res = await api(main!.url, credentials.buyer.token, "GET", `/cases/${caseId}`);
        return res.status === 200 && stage(res.body, "application").status === "completed";
      });
      const history = await api(main.url, credentials.buyer.token, "GET", `/cases/${caseId}/history`);
      const completed = history.body.events.find((e: { event: string }) => e.event === "StageCompleted");
      expect(
        Date.parse(completed.time),
        "Anvil's saved state lost the clock's offset; the start put it back",
      ).to.be.at.least(movedTo);
      const cases = await api(main.url, credentials.operator.token, "GET", "/cases");
      expect(
        cases.body.cases.map((c: { id: string }) => c.id),
        "no second demo case",
      ).to.deep.equal([caseId]);
    });

    it("refuses a second server on the same DATA_DIR, naming it (it would stop the first one's Anvil)", async function () {
      const second = await runMain({ DATA_DIR: dataDir, PORT: String(await freePort()) }, { expectExit: true });
      expect((await second.exited).code).to.equal(1);
      expect(second.output()).to.contain(
        `npm start: DATA_DIR: ${dataDir} is in use by another npm start (pid ${main!.child.pid})`,
      );
      expect((await api(main!.url, null, "GET", "/health")).status, "the first one still serves").to.equal(200);
    });

    it("lets a principal added by the CLI while it runs authenticate at once, and loads and funds its new managed key", async function () {
      const printed: string[] = [];
      await principalCli(["add", "--name", "Late Bank", "--role", "bank"], { DATA_DIR: dataDir }, (line) =>
        printed.push(line),
      );
      const token = /token \(shown this once; only its hash is kept\): (msk_\S+)/.exec(printed.join("\n"))![1];
      const address = /added \S+ bank "Late Bank" (0x[0-9a-fA-F]{40})/.exec(printed.join("\n"))![1];
      expect((await api(main!.url, token, "GET", "/cases")).body).to.deep.equal({ cases: [], nextCursor: null });
      await eventually(
        "the server loading the new key",
        async () => main!.output().includes(`managed key ${address} loaded`),
        20_000,
      );
      expect(main!.output()).to.contain(`embedded chain: funded the managed key ${address}`);
      // The new bank opens a case from its new (funded) managed key, with no restart.
      const parties = {
        bank: address,
        lawyer: credentials.lawyer.address,
        buyer: credentials.buyer.address,
        seller: credentials.seller.address,
      };
      const opened = await api(main!.url, token, "POST", "/cases", {
        workflow: "uk-purchase",
        parties,
        terms: { price: "1000", deposit: "100", loan: "900" },
      });
      expect(opened.status, JSON.stringify(opened.body)).to.equal(201);
      expect(opened.body.parties.bank).to.equal(address);
    });

    it("stops on SIGTERM with exit code 0, and stops its Anvil", async function () {
      const anvil = anvilPid(dataDir)!;
      const result = await stopGracefully(main!);
      expect(result.code).to.equal(0);
      expect(alive(anvil)).to.equal(false);
      expect(existsSync(join(dataDir, "chain", "anvil.pid"))).to.equal(false);
    });

    it("shuts down, Anvil included, when its launcher is killed (as `kill <pid of npm>` kills npm and its shell)", async function () {
      main = await runMain(env(), { via: "shell" });
      const server = Number(readFileSync(join(dataDir, "server.pid"), "utf8"));
      const anvil = anvilPid(dataDir)!;
      process.kill(main.child.pid!, "SIGKILL"); // the shell alone
      await eventually("the server and its Anvil gone", async () => !alive(server) && !alive(anvil), 20_000);
      expect(existsSync(join(dataDir, "server.pid")), "a graceful stop, which releases the data folder").to.equal(
        false,
      );
    });
  });

  describe("npm run principal (server/cli/principal.ts)", function () {
    const dataDir = mkdtempSync(join(tmpdir(), "principal-cli-"));
    const run = async (...args: string[]) => {
      const lines: string[] = [];
      await principalCli(args, { DATA_DIR: dataDir, KEYSTORE_PASSWORD: "cli password" }, (line) => lines.push(line));
      return lines.join("\n");
    };
    const failure = (...args: string[]) =>
      run(...args).then(
        () => expect.fail("accepted"),
        (error: Error) => error.message,
      );

    it("adds a principal bound to a given address and prints its token once", async function () {
      const out = await run(
        "add",
        "--name",
        "Acme Bank",
        "--role",
        "bank",
        "--address",
        devWallet(1).address.toLowerCase(),
      );
      expect(out).to.match(new RegExp(`^added prn_\\w+ bank "Acme Bank" ${devWallet(1).address}$`, "m"));
      expect(out).to.match(/^token \(shown this once; only its hash is kept\): msk_[\w-]{43}$/m);
      expect(out).not.to.contain("managed key");
    });

    it("generates an encrypted managed key when no address is given", async function () {
      const out = await run("add", "--name", "Jones Law", "--role", "lawyer");
      const address = /"Jones Law" (0x[0-9a-fA-F]{40})/.exec(out)![1];
      const [wallet] = await new Keystore(dataDir, "cli password").loadAll();
      expect(wallet.address).to.equal(address);
    });

    it("lists every principal with its key, and revokes by name, id or address", async function () {
      expect(await run("list"))
        .to.match(/Acme Bank .* own wallet +active/)
        .and.match(/Jones Law .* managed +active/);
      expect(await run("revoke", devWallet(1).address)).to.match(/^revoked prn_\w+ bank "Acme Bank"/);
      expect(await run("list")).to.match(/Acme Bank .* revoked \d{4}-/);
      expect(await failure("revoke", "Acme Bank")).to.contain(
        'no active principal with the id, name or address "Acme Bank"',
      );
    });

    it("refuses a KEYSTORE_PASSWORD that does not open the keys already there, leaving no key and no principal", async function () {
      const lines: string[] = [];
      const refused = await principalCli(
        ["add", "--name", "Other Law", "--role", "lawyer"],
        { DATA_DIR: dataDir, KEYSTORE_PASSWORD: "another password" },
        (line) => lines.push(line),
      ).then(
        () => expect.fail(`accepted: ${lines.join("\n")}`),
        (error: Error) => error.message,
      );
      expect(refused).to.match(/^add: KEYSTORE_PASSWORD does not open .*\.json, a key already in this data folder/);
      expect(new Keystore(dataDir, "").addresses()).to.have.length(1);
      expect(await run("list")).not.to.contain("Other Law");
    });

    it("answers bad arguments with a message and the usage", async function () {
      expect(await failure()).to.match(/^usage: npm run principal -- <command>/);
      expect(await failure("add", "--name", "X", "--role", "pilot")).to.equal(
        'add: --role must be one of operator, bank, lawyer, buyer, seller, not "pilot"',
      );
      expect(await failure("add", "--role", "bank")).to.match(/^add: --name is required/);
      expect(await failure("add", "--name", "Y", "--role", "bank", "--address", "0x12")).to.contain(
        "--address must be a 20-byte hex address",
      );
      expect(await failure("add", "--name", "Jones Law", "--role", "lawyer")).to.contain(
        'a principal named "Jones Law" already exists',
      );
      expect(await failure("remove", "x")).to.match(/^unknown or incomplete command "remove x"/);
      expect((await new Keystore(dataDir, "").addresses()).length, "a refused add leaves no key behind").to.equal(1);
    });
  });

  describe("with a wrong setting", function () {
    const cases: Array<[string, NodeJS.ProcessEnv, string]> = [
      ["RPC_URL=not-a-url", { RPC_URL: "not-a-url" }, "RPC_URL: must be an http(s) URL"],
      ["ESCROW_ADDRESS=xyz", { ESCROW_ADDRESS: "xyz" }, "ESCROW_ADDRESS: must be a 20-byte hex address"],
      ["PORT=http", { PORT: "http" }, "PORT: must be a whole number"],
      [
        "RPC_URL without ESCROW_ADDRESS",
        { RPC_URL: "http://127.0.0.1:8545", SIGNER_KEYSTORE: "k.json", KEYSTORE_PASSWORD: "p" },
        "ESCROW_ADDRESS: is required with RPC_URL",
      ],
    ];
    const results = new Map<string, { code: number | null; output: string }>();

    before(async function () {
      // In parallel: each is a whole ts-node start, which is what is slow here.
      await Promise.all(
        cases.map(async ([title, env]) => {
          const main = await runMain(
            { DATA_DIR: mkdtempSync(join(tmpdir(), "npm-start-bad-")), ...env },
            { expectExit: true },
          );
          results.set(title, { code: (await main.exited).code, output: main.output() });
        }),
      );
    });

    it("names a CHAIN_PORT in use before Anvil starts", async function () {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", () => resolve()));
      const busy = (taken.address() as { port: number }).port;
      try {
        const error = await startEmbeddedChain({
          dataDir: mkdtempSync(join(tmpdir(), "chain-port-")),
          port: busy,
        }).then(
          (chain) => chain.stop().then(() => expect.fail("started on a taken port")),
          (e: Error) => e,
        );
        expect(error.message).to.equal(
          `CHAIN_PORT: ${busy} on 127.0.0.1 is in use (EADDRINUSE); set CHAIN_PORT to a free port, or unset it for any free one`,
        );
      } finally {
        taken.close();
      }
    });

    for (const [title, , message] of cases) {
      it(`exits 1 with ${title}, naming it, with no stack trace`, function () {
        const { code, output } = results.get(title)!;
        expect(code).to.equal(1);
        expect(output).to.match(/^npm start: the settings are not valid:\n {2}/);
        expect(output).to.contain(`\n  ${message}`);
        expect(output).not.to.match(/^\s+at /m);
      });
    }
  });

  describe("against an external node (hardhat node started on its own)", function () {
    let node: NodeProcess;
    let main: MainProcess | null = null;
    const dataDir = mkdtempSync(join(tmpdir(), "npm-start-external-"));
    const password = "external test password";

    before(async function () {
      node = await startHardhatNode();
    });

    after(async function () {
      if (main && main.child.exitCode === null && main.child.signalCode === null) await stopGracefully(main);
      await node?.stop();
    });

    it("deploys with npm run deploy, then serves the escrow with the relayer's keystore and a principal added by the CLI", async function () {
      // Keystores at the low scrypt cost to keep the test quick: these are public dev keys.
      const deployerFile = join(dataDir, "deployer.json");
      writeFileSync(
        deployerFile,
        await encryptKeystoreJson({ address: devWallet(5).address, privateKey: devWallet(5).privateKey }, password, {
          scrypt: { N: DEV_SCRYPT_N },
        }),
      );
      const deployed = await deploy(
        { RPC_URL: node.url, SIGNER_KEYSTORE: deployerFile, KEYSTORE_PASSWORD: password, DATA_DIR: dataDir },
        () => undefined,
      );
      await new Keystore(dataDir, password).save(devWallet(1), { scryptN: DEV_SCRYPT_N });
      const printed: string[] = [];
      await principalCli(
        ["add", "--name", "Acme Bank", "--role", "bank", "--address", devWallet(1).address],
        { DATA_DIR: dataDir },
        (line) => printed.push(line),
      );
      const token = /token \(shown this once; only its hash is kept\): (msk_\S+)/.exec(printed.join("\n"))![1];
      await principalCli(
        ["add", "--name", "Jones Law", "--role", "lawyer"],
        { DATA_DIR: dataDir, KEYSTORE_PASSWORD: password },
        (line) => printed.push(line),
      );
      const lawyerKey = /added \S+ lawyer "Jones Law" (0x[0-9a-fA-F]{40})/.exec(printed.join("\n"))![1];

      // The settings as npm run deploy recorded them, and nothing else about the chain.
      const recorded = readDeploymentRecord(dataDir)!;
      main = await runMain({
        DATA_DIR: dataDir,
        PORT: String(await freePort()),
        KEYSTORE_PASSWORD: password,
        ...recorded,
      });
      expect(main.output()).not.to.contain("Anvil");
      expect(main.output()).to.contain(
        `warning: the managed key ${lawyerKey} (lawyer "Jones Law") has no funds on ${node.url} (chain 31337)`,
      );
      expect(main.output(), "a funded key is not named").not.to.contain(`the managed key ${devWallet(1).address}`);
      expect(main.output()).to.match(new RegExp(`^ {2}RPC {10}${node.url.replaceAll(".", "\\.")}`, "m"));
      expect(existsSync(join(dataDir, "credentials.json")), "no demo data").to.equal(false);
      const health = await api(main.url, null, "GET", "/health");
      expect(health.body).to.include({ status: "ok", chainId: "31337", contract: deployed.address });

      const parties = {
        bank: devWallet(1).address,
        lawyer: devWallet(2).address,
        buyer: devWallet(3).address,
        seller: devWallet(4).address,
      };
      const opened = await api(main.url, token, "POST", "/cases", {
        workflow: "us-purchase",
        parties,
        terms: { price: "1000", deposit: "100", loan: "900" },
      });
      expect(opened.status, JSON.stringify(opened.body)).to.equal(201);
      expect((await api(main.url, token, "GET", `/cases/${opened.body.id}`)).body.parties).to.deep.equal(parties);
      expect(
        (await node.provider.getLogs({ address: deployed.address, fromBlock: deployed.block ?? 0 })).length,
      ).to.be.greaterThan(3);

      const clock = await api(main.url, token, "POST", "/dev/clock", { seconds: 60 });
      expect(clock.status, "no dev clock against an external chain").to.equal(404);
    });

    it("refuses an ESCROW_ADDRESS other than the one DATA_DIR/deployment.env records", async function () {
      await stopGracefully(main!);
      const recorded = readDeploymentRecord(dataDir)!;
      const other = await runMain(
        {
          DATA_DIR: dataDir,
          PORT: String(await freePort()),
          KEYSTORE_PASSWORD: password,
          ...recorded,
          ESCROW_ADDRESS: devWallet(9).address,
        },
        { expectExit: true },
      );
      expect((await other.exited).code).to.equal(1);
      expect(other.output()).to.contain(
        `npm start: ESCROW_ADDRESS: ${devWallet(9).address} is not the escrow ${recorded.ESCROW_ADDRESS} that ${dataDir}/deployment.env records`,
      );
    });
  });
});
