/**
 * The README's "Against an existing chain" recipe, run as written: its shell block is read out of README.md and
 * run by `sh -e` at the repository's root (the real `npm run deploy`, `npm run principal`, `npm start`) against a
 * separate Anvil. Only three things differ from a reader's run, each named here: the line that starts a node is
 * left out (the test's own Anvil stands in), and the node's URL and the data folder are the test's (a free port,
 * a temp folder); PORT is set in the shell's environment so the server does not need 3000.
 *
 * Then, as the reader would next: the operator opens a case over HTTP with the token the recipe printed, the
 * bank and the buyer sign off the first stage with their managed keys, and the stage completes on chain.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet, id as keccakId } from "ethers";
import { freePort, startAnvil, type NodeProcess } from "../engine/support/node-process";
import { ROOT, api, eventually, signalGroup } from "./support/main-process";

/** The first ```sh block under the README's "### Against an existing chain". */
export function externalRecipe(readme: string = readFileSync(join(ROOT, "README.md"), "utf8")): string {
  const section = readme.split(/^### Against an existing chain\s*$/m)[1];
  if (section === undefined) throw new Error('README.md has no "### Against an existing chain" section');
  const block = /```sh\n([\s\S]*?)```/.exec(section.split(/^#{2,3} /m)[0]);
  if (!block) throw new Error('the "Against an existing chain" section has no ```sh block');
  return block[1];
}

/** The recipe as the test runs it: without the line that starts a node, with the test's node and folder. */
export function adapt(recipe: string, rpcUrl: string, dataDir: string): string {
  const lines = recipe.replace(/\\\n/g, " ").split("\n");
  const kept = lines.filter((line) => !/&\s*(#.*)?$/.test(line) || /^\s*#/.test(line));
  expect(lines.length - kept.length, "exactly one line starts a node in the background").to.equal(1);
  // `npm start` serves until stopped: in the background, so that anything after it runs too, and the shell waits.
  const script = kept
    .map((line) =>
      !/^\s*#/.test(line) && /\bnpm start\b/.test(line) ? line.replace(/(npm start[^#]*)(#.*)?$/, "$1 &") : line,
    )
    .join("\n");
  return `${script.replaceAll("http://127.0.0.1:8545", rpcUrl).replaceAll(".data-ext", dataDir)}\nwait\n`;
}

describe("the README's external-chain recipe, run as written against a separate Anvil", function () {
  this.timeout(600_000);
  let node: NodeProcess;
  let shell: ChildProcess | null = null;
  let output = "";
  let exited: Promise<number | null>;
  const dataDir = mkdtempSync(join(tmpdir(), "recipe-"));

  before(async function () {
    node = await startAnvil();
  });

  after(async function () {
    if (shell && shell.exitCode === null) {
      signalGroup(shell, "SIGTERM");
      const killer = setTimeout(() => shell && signalGroup(shell, "SIGKILL"), 20_000);
      await exited;
      clearTimeout(killer);
    }
    await node?.stop();
  });

  it("deploys, adds the principals, funds them and starts; the operator opens a case and the bank and the buyer complete its first stage", async function () {
    const script = adapt(externalRecipe(), node.url, join(dataDir, ".data-ext"));
    shell = spawn("/bin/sh", ["-e", "-c", script], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(await freePort()), LOG_LEVEL: "warn" },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const child = shell;
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    let code: number | null | undefined;
    void exited.then((c) => (code = c));
    const url = await eventually(
      "npm start listening",
      async () => {
        if (code !== undefined)
          throw new Error(`the recipe stopped (exit ${code}) before npm start listened:\n${output}`);
        return /listening on (http:\/\/\S+)/.exec(output)?.[1];
      },
      500_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n--- the recipe's output ---\n${output}`);
    });

    const tokens = new Map<string, { token: string; address: string }>();
    for (const m of output.matchAll(
      /^added prn_\S+ (\w+) "[^"]*" (0x[0-9a-fA-F]{40})[\s\S]*?^token \(shown this once; only its hash is kept\): (msk_\S+)$/gm,
    )) {
      tokens.set(m[1], { address: m[2], token: m[3] });
    }
    expect([...tokens.keys()].sort(), output).to.include.members(["bank", "buyer", "operator"]);
    const { operator, bank, buyer } = Object.fromEntries(tokens) as Record<string, { token: string; address: string }>;

    const parties = {
      bank: bank.address,
      lawyer: Wallet.createRandom().address,
      buyer: buyer.address,
      seller: Wallet.createRandom().address,
    };
    const opened = await api(url, operator.token, "POST", "/cases", {
      workflow: "uk-remortgage",
      parties,
      terms: { price: "1000", deposit: "100", loan: "900" },
    });
    expect(opened.status, `${JSON.stringify(opened.body)}\n${output}`).to.equal(201);
    const caseId = opened.body.id as string;
    for (const [who, party] of [
      ["bank", bank],
      ["buyer", buyer],
    ] as const) {
      const signed = await api(url, party.token, "POST", `/cases/${caseId}/stages/application/sign-offs`, {
        evidence: keccakId(`application by the ${who}`),
      });
      expect(signed.status, JSON.stringify(signed.body)).to.equal(202);
    }
    await eventually(
      "the application stage completed",
      async () => {
        const res = await api(url, bank.token, "GET", `/cases/${caseId}`);
        return res.body.stages.find((s: { id: string }) => s.id === "application").status === "completed";
      },
      60_000,
    );
    const history = await api(url, operator.token, "GET", `/cases/${caseId}/history`);
    expect(history.body.events.map((e: { event: string }) => e.event)).to.include.members([
      "CaseOpened",
      "SignedOff",
      "StageCompleted",
    ]);
  });
});
