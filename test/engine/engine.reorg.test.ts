/**
 * Fault 8 at the engine level, and a chain that comes back older than the store: approvals made through the
 * engine are mined in blocks that the chain then loses. The projection notices (block hashes), the relayer
 * re-submits what the chain lost although its outbox had it confirmed, and in the end every sign-off is on
 * chain exactly once; once the engine has read the new chain, it reports nothing complete that the chain
 * does not hold.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { Engine, ProgressNotice, Submission } from "../../engine";
import { expectMatchesChain, rpc } from "./projection-helpers";
import {
  BEFORE_CONSUMMATION,
  RELAYER,
  approval,
  newEngine,
  setUp,
  stageIndex,
  waitFor,
  type EngineSetup,
} from "./engine-helpers";

const COMPLETED = 4;

/** The stages the chain holds completed for the case, by id. */
async function completedOnChain(s: EngineSetup): Promise<Set<string>> {
  const done = new Set<string>();
  for (const [id, index] of Object.entries(s.d.template.stageIndex)) {
    const view = await s.d.escrow.stageOf(s.caseId, index);
    if (Number(view.status) === COMPLETED) done.add(id);
  }
  return done;
}

function completedInProjection(engine: Engine, s: EngineSetup): string[] {
  return (engine.getCase(s.caseId)?.stages ?? []).filter((x) => x.status === "completed").map((x) => x.id);
}

/** True once the projection's checkpoint block is the chain's own: it has read the chain as it now is. */
async function projectionOnChain(engine: Engine): Promise<boolean> {
  const checkpoint = engine.projection.log.checkpoint();
  const block = await ethers.provider.getBlock(checkpoint.number);
  return (
    block !== null && block.hash === checkpoint.hash && checkpoint.number === (await ethers.provider.getBlockNumber())
  );
}

async function approveAll(engine: Engine, s: EngineSetup, signOffs: typeof BEFORE_CONSUMMATION): Promise<Submission[]> {
  return Promise.all(signOffs.map(([stage, role]) => engine.approve(approval(s, stage, role))));
}

/** Every (stage, role) signed off on chain, one entry per `SignedOff` event. */
async function signedOffOnChain(s: EngineSetup): Promise<string[]> {
  const events = await s.d.escrow.queryFilter(s.d.escrow.filters.SignedOff(s.caseId));
  return events.map((e) => `${e.args.stage}:${e.args.role}`).sort();
}

function expectedSignOffs(s: EngineSetup): string[] {
  const role = { bank: 0, lawyer: 1, buyer: 2, seller: 3 };
  return BEFORE_CONSUMMATION.map(([stage, r]) => `${stageIndex(s, stage)}:${role[r]}`).sort();
}

describe("engine: a chain that loses blocks", function () {
  this.timeout(120_000);
  const engines: Engine[] = [];
  afterEach(async function () {
    await rpc("evm_setAutomine", [true]);
    for (const engine of engines.splice(0)) await engine.stop();
  });
  async function started(s: EngineSetup): Promise<Engine> {
    const engine = newEngine(s);
    engines.push(engine);
    await engine.start();
    return engine;
  }

  describe("a reorganisation (fault 8)", function () {
    it("is noticed, the projection corrected, and the confirmed sign-offs the chain lost re-submitted, each exactly once", async function () {
      const s = await setUp();
      const engine = await started(s);
      const first = BEFORE_CONSUMMATION.slice(0, 5);
      const lost = BEFORE_CONSUMMATION.slice(5);
      await approveAll(engine, s, first);
      await waitFor("the first sign-offs confirmed", () => engine.relayer.outbox.countUnsettled() === 0);
      await waitFor("rate-lock projected", () => completedInProjection(engine, s).includes("rate-lock"));

      const snapshot = await rpc<string>("evm_snapshot");
      const submitted = await approveAll(engine, s, lost);
      await waitFor("the later sign-offs confirmed", () =>
        submitted.every((x) => engine.relayer.get(x.id)!.status === "confirmed"),
      );
      await waitFor("the closing disclosure projected", () =>
        completedInProjection(engine, s).includes("closing-disclosure"),
      );
      const lostTxs = new Set(submitted.map((x) => engine.relayer.get(x.id)!.txHash!));
      const notices: ProgressNotice[] = [];
      engine.subscribe((n) => notices.push(n));

      // The reorganisation: the blocks since the snapshot are replaced by one empty block at the same height.
      // Automine off, so that whatever the relayer re-sends waits in the pool where the test can see it.
      await rpc("evm_setAutomine", [false]);
      await rpc("evm_revert", [snapshot]);
      await rpc("evm_mine");
      for (const tx of lostTxs)
        expect(await ethers.provider.getTransactionReceipt(tx), "the chain lost the batch").to.equal(null);
      const chainAfterFork = await completedOnChain(s);
      expect(chainAfterFork.has("closing-disclosure")).to.equal(false);

      await waitFor("the reorganisation noticed", () => notices.some((n) => n.reorg && n.caseId === String(s.caseId)));
      await waitFor("the projection on the new chain", () => projectionOnChain(engine));
      const projected = completedInProjection(engine, s);
      expect(projected, "the projection reports only what the chain holds").to.deep.equal(
        (engine.getCase(s.caseId)?.stages ?? []).map((x) => x.id).filter((id) => chainAfterFork.has(id)),
      );
      expect(projected).to.include("rate-lock");
      // The outbox no longer calls them confirmed: they are in flight again, the same transactions re-sent.
      await waitFor("the lost sign-offs back in flight", () =>
        submitted.every((x) => engine.relayer.get(x.id)!.status === "sent"),
      );
      for (const x of submitted)
        expect(lostTxs.has(engine.relayer.get(x.id)!.txHash!), "re-broadcast byte for byte").to.equal(true);
      for (const hash of lostTxs) {
        const pooled = await waitFor("the re-sent transaction in the pool", () => ethers.provider.getTransaction(hash));
        expect(pooled.blockNumber, "it waits in the pool, not mined").to.equal(null);
      }
      // While they wait, the projection still reports nothing the chain does not hold.
      expect(completedInProjection(engine, s)).to.deep.equal(projected);

      await rpc("evm_mine");
      await rpc("evm_setAutomine", [true]);
      await waitFor("the lost sign-offs confirmed again", () =>
        submitted.every((x) => engine.relayer.get(x.id)!.status === "confirmed"),
      );
      await waitFor("the closing disclosure projected again", () =>
        completedInProjection(engine, s).includes("closing-disclosure"),
      );
      await waitFor("the projection on the chain", () => projectionOnChain(engine));

      expect(await signedOffOnChain(s), "every approval on chain exactly once").to.deep.equal(expectedSignOffs(s));
      await expectMatchesChain(engine.getCase(s.caseId), s.d, s.caseId, "after the reorganisation");
      expect(engine.relayer.outbox.list().map((x) => x.status)).to.deep.equal(
        BEFORE_CONSUMMATION.map(() => "confirmed"),
      );
      const corrected = notices.filter((n) => n.reorg);
      expect(
        corrected.some((n) => n.progress!.stages[stageIndex(s, "closing-disclosure")].status !== "completed"),
      ).to.equal(true);
    });
  });

  describe("a chain older than the store (a node restarted from an earlier save)", function () {
    it("is noticed at restart: everything the engine had confirmed since that save is sent again and ends on chain once", async function () {
      const s = await setUp();
      const save = await rpc<string>("evm_snapshot");
      const first = await started(s);
      const submitted = await approveAll(first, s, BEFORE_CONSUMMATION);
      await waitFor("every sign-off confirmed", () => first.relayer.outbox.countUnsettled() === 0);
      await waitFor("the closing disclosure projected", () =>
        completedInProjection(first, s).includes("closing-disclosure"),
      );
      expect(submitted.map((x) => first.relayer.get(x.id)!.status)).to.deep.equal(
        BEFORE_CONSUMMATION.map(() => "confirmed"),
      );
      // The store runs well ahead of the save.
      await rpc("hardhat_mine", ["0x40"]);
      await waitFor("the projection at the head", () => projectionOnChain(first));
      const storeCheckpoint = first.projection.log.checkpoint().number;
      engines.splice(engines.indexOf(first), 1);
      await first.stop();

      await rpc("evm_revert", [save]);
      const head = await ethers.provider.getBlockNumber();
      expect(head, "the chain is older than the store").to.be.lessThan(storeCheckpoint - 60);
      expect(await signedOffOnChain(s)).to.deep.equal([]);

      const second = newEngine(s);
      engines.push(second);
      const notices: ProgressNotice[] = [];
      second.subscribe((n) => notices.push(n));
      await second.start();
      // Right after start the projection has read the older chain: nothing beyond it is reported complete.
      expect(completedInProjection(second, s)).to.deep.equal([]);
      expect(notices.some((n) => n.reorg && n.caseId === String(s.caseId))).to.equal(true);

      await waitFor(
        "the lost sign-offs re-submitted and confirmed",
        async () =>
          second.relayer.outbox.countUnsettled() === 0 &&
          (await signedOffOnChain(s)).length === BEFORE_CONSUMMATION.length,
      );
      await waitFor("the closing disclosure projected", () =>
        completedInProjection(second, s).includes("closing-disclosure"),
      );
      await waitFor("the projection at the head", () => projectionOnChain(second));
      expect(await signedOffOnChain(s), "every approval on chain exactly once").to.deep.equal(expectedSignOffs(s));
      await expectMatchesChain(second.getCase(s.caseId), s.d, s.caseId, "after the older chain");
      expect(second.relayer.outbox.list().map((x) => x.status)).to.deep.equal(
        BEFORE_CONSUMMATION.map(() => "confirmed"),
      );
    });

    it("signs again from the chain's nonce when a nonce below its counter was lost and none of its own transactions fills it", async function () {
      const s = await setUp();
      const save = await rpc<string>("evm_snapshot");
      // Something else uses the relayer's key first (its next nonce): the engine's counter starts above it.
      const outsider = RELAYER.connect(ethers.provider);
      const outsiderNonce = await ethers.provider.getTransactionCount(RELAYER.address, "latest");
      await (await outsider.sendTransaction({ to: outsider.address, value: 0n })).wait();
      const first = await started(s);
      const submitted = await approveAll(first, s, BEFORE_CONSUMMATION);
      await waitFor("every sign-off confirmed", () => first.relayer.outbox.countUnsettled() === 0);
      const before = submitted.map((x) => first.relayer.get(x.id)!);
      expect(Math.min(...before.map((x) => x.nonce!)), "the engine's nonces start after the outsider's").to.equal(
        outsiderNonce + 1,
      );
      engines.splice(engines.indexOf(first), 1);
      await first.stop();

      // The node comes back from the save: the outsider's nonce is lost too, and nothing of the engine's fills it.
      await rpc("evm_revert", [save]);
      expect(await ethers.provider.getTransactionCount(RELAYER.address, "pending")).to.equal(outsiderNonce);
      const second = await started(s);
      await waitFor(
        "the lost sign-offs signed again and confirmed",
        async () =>
          second.relayer.outbox.countUnsettled() === 0 &&
          (await signedOffOnChain(s)).length === BEFORE_CONSUMMATION.length,
      );
      const after = submitted.map((x) => second.relayer.get(x.id)!);
      expect(Math.min(...after.map((x) => x.nonce!)), "signed again from the chain's nonce").to.equal(outsiderNonce);
      expect(after.every((x) => x.status === "confirmed")).to.equal(true);
      expect(second.relayer.outbox.nextNonce(RELAYER.address)).to.equal(
        await ethers.provider.getTransactionCount(RELAYER.address, "latest"),
      );
      expect(await signedOffOnChain(s), "every approval on chain exactly once").to.deep.equal(expectedSignOffs(s));
      await waitFor("the closing disclosure projected", () =>
        completedInProjection(second, s).includes("closing-disclosure"),
      );
      await waitFor("the projection at the head", () => projectionOnChain(second));
      await expectMatchesChain(second.getCase(s.caseId), s.d, s.caseId, "after the gap");
    });
  });
});
