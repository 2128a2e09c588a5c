/**
 * Finding 3 of issue 10 against Anvil, as the embedded chain lives it: Anvil's state is saved
 * (`anvil_dumpState`); the engine, over JSON-RPC through a proxy, opens cases (201) and takes sign-offs and
 * deposits from several keys (202); at a random moment the engine is cut off for good (the proxy stops
 * answering: its process as good as killed) and Anvil is killed; a new Anvil is started from the save
 * (`anvil_loadState`: its head is below every receipt the outbox recorded), and a new engine on the same data
 * folder must land every 202 exactly once and reopen every 201 case under its id, never reading one unknown.
 *
 * `ANVIL_ROLLBACK_SEEDS` (default 3), `ANVIL_ROLLBACK_SEED` to replay one.
 */
import { expect } from "chai";
import { Wallet, id as keccakId } from "ethers";
import { createEngine, type Engine } from "../../engine";
import { seededRandom } from "../support/seeded-random";
import { sleep, waitFor } from "./engine-helpers";
import { type NodeProcess, startAnvil } from "./support/node-process";
import { type RemoteCase, deployCase, tempDataDir } from "./support/remote-case";
import { RpcProxy } from "./support/rpc-proxy";
import {
  expectEveryAnswerKept,
  openCases,
  requestsFor,
  sendAllUntil,
  watchNeverUnknown,
} from "./support/rollback-script";
import { MortgageEscrow__factory } from "../../typechain-types";

const RELAYER = new Wallet(keccakId("the relayer key of the anvil rollback tests"));
const FIRST_SEED = Number(process.env.ANVIL_ROLLBACK_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SEEDS = process.env.ANVIL_ROLLBACK_SEED ? 1 : Number(process.env.ANVIL_ROLLBACK_SEEDS ?? 3);

function engineAt(c: RemoteCase, url: string, dataDir: string): Engine {
  return createEngine({
    dataDir,
    chain: { kind: "json-rpc", url },
    escrowAddress: c.address,
    relayerKey: RELAYER,
    partyKeys: Object.values(c.parties),
    pollIntervalMs: 50,
    deploymentBlock: c.fromBlock,
    batchWindowMs: 50,
  });
}

describe("engine against Anvil: killed with the chain before it saved (finding 3)", function () {
  this.timeout(600_000);
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async function () {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  it(`lands every 202 once and reopens every 201 case, with Anvil restarted from an older save, over ${SEEDS} seeds from ${FIRST_SEED}`, async function () {
    for (let n = 0; n < SEEDS; n++) {
      const seed = (FIRST_SEED + n) % 2 ** 31;
      console.log(`      finding 3 on Anvil: ANVIL_ROLLBACK_SEED=${seed}`);
      const random = seededRandom(seed);
      const first: NodeProcess = await startAnvil();
      cleanup.push(() => first.stop());
      const c = await deployCase(first, [RELAYER]);
      const save = (await first.provider.send("anvil_dumpState", [])) as string;
      const savedHead = await first.provider.getBlockNumber();

      const proxy = await RpcProxy.start({ port: first.port });
      cleanup.push(() => proxy.close());
      const dataDir = tempDataDir();
      const engine1 = engineAt(c, proxy.url, dataDir);
      await engine1.start();
      const caseIds = await openCases(engine1, c.parties, 2);
      const accepted = await sendAllUntil(
        engine1,
        c.parties,
        requestsFor(caseIds, random),
        Math.max(0, Math.floor(random() * 330) - 30),
      );
      proxy.setMode("stall"); // the engine hears nothing more, and what it sends from now on goes nowhere
      void engine1.stop();
      await first.stop(); // the chain dies with it, before saving again

      const second = await startAnvil();
      cleanup.push(() => second.stop());
      expect(await second.provider.send("anvil_loadState", [save])).to.equal(true);
      expect(await second.provider.getBlockNumber(), "the chain is back at its save").to.equal(savedHead);
      const escrow = MortgageEscrow__factory.connect(c.address, second.provider);
      expect(await escrow.caseCount(), "the openings are lost").to.equal(1n);

      const engine2 = engineAt(c, second.url, dataDir);
      const watch = watchNeverUnknown(engine2, caseIds);
      await engine2.start();
      cleanup.push(() => engine2.stop());
      try {
        await waitFor(
          "every submission settled and the projection at the head",
          async () =>
            engine2.relayer.outbox.countUnsettled() === 0 &&
            caseIds.every((id) => engine2.getCase(id)?.status === "open") &&
            engine2.projection.log.checkpoint().number === (await second.provider.getBlockNumber()),
          60_000,
        );
      } finally {
        const unknown = await watch.stop();
        expect(unknown, `seed ${seed}: case ${unknown} answered 201 read as unknown after the restart`).to.equal(null);
      }
      await expectEveryAnswerKept(`Anvil, seed ${seed}`, engine2, escrow, c.parties, caseIds, accepted);
      for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
      await sleep(10);
    }
  });
});
