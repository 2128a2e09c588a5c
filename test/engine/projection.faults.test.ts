import { expect } from "chai";
import { mine } from "@nomicfoundation/hardhat-network-helpers";
import type { ProgressNotice } from "../../engine/projection/projection";
import {
  chainNow,
  deployEscrow,
  expectMatchesChain,
  newProjection,
  openUsCase,
  rpc,
  sign,
  tempDbFile,
} from "./projection-helpers";

class SimulatedCrash extends Error {}

describe("engine/projection faults", function () {
  describe("fault 2: a crash after the receipt, before the store commits", function () {
    it("recovers on restart to exactly what a full replay from the chain gives", async function () {
      const d = await deployEscrow();
      const file = tempDbFile();
      let crash = false;
      const first = newProjection(d, file, {
        beforeCommit: () => {
          if (crash) throw new SimulatedCrash("killed between reading the logs and committing");
        },
      });
      const caseId = await openUsCase(d);
      await sign(d, caseId, 0, "buyer");
      await first.poll();
      const committed = first.log.checkpoint();

      // These transactions are mined (their receipts are in) when the projection dies mid-write.
      await sign(d, caseId, 0, "bank");
      await sign(d, caseId, 1, "bank");
      crash = true;
      let thrown: unknown;
      await first.poll().catch((error) => (thrown = error));
      expect(thrown).to.be.instanceOf(SimulatedCrash);
      // Nothing of the failed range reached the store or the memory: checkpoint, events and view are as before.
      expect(first.log.checkpoint()).to.deep.equal(committed);
      expect(first.historyOf(caseId).map((h) => h.event)).to.deep.equal(["CaseOpened", "SignedOff"]);
      expect(first.getCase(caseId)!.stages[0].status).to.equal("open");
      first.log.db.close(); // the process is gone

      const restarted = newProjection(d, file);
      expect(restarted.getCase(caseId)!.stages[0].signedOff).to.deep.equal(["buyer"]);
      await restarted.poll();
      const replayed = newProjection(d, tempDbFile());
      await replayed.poll();
      const now = await chainNow();
      expect(restarted.listCases(now)).to.deep.equal(replayed.listCases(now));
      expect(restarted.historyOf(caseId)).to.deep.equal(replayed.historyOf(caseId));
      expect(restarted.log.checkpoint()).to.deep.equal(replayed.log.checkpoint());
      expect(
        restarted
          .getCase(caseId, now)!
          .stages.slice(0, 2)
          .map((s) => s.status),
      ).to.deep.equal(["completed", "completed"]);
      await expectMatchesChain(restarted.getCase(caseId, now), d, caseId);
    });

    it("the same projection retries the range at its next poll once the fault is gone", async function () {
      const d = await deployEscrow();
      let crash = true;
      const projection = newProjection(d, tempDbFile(), {
        beforeCommit: () => {
          if (crash) throw new SimulatedCrash("the write failed");
        },
      });
      const notices: ProgressNotice[] = [];
      projection.subscribe((n) => notices.push(n));
      const caseId = await openUsCase(d);
      await projection.poll().catch(() => undefined);
      expect(projection.getCase(caseId)).to.equal(null);
      expect(notices).to.deep.equal([]);
      crash = false;
      await projection.poll();
      expect(notices.map((n) => n.caseId)).to.deep.equal([caseId.toString()]);
      await expectMatchesChain(projection.getCase(caseId, await chainNow()), d, caseId);
    });
  });

  describe("fault 8: a reorganisation", function () {
    it("is noticed, rolled back and corrected; subscribers get the corrected progress with reorg=true", async function () {
      const d = await deployEscrow();
      const file = tempDbFile();
      const projection = newProjection(d, file);
      const notices: ProgressNotice[] = [];
      projection.subscribe((n) => notices.push(n));
      const caseId = await openUsCase(d);
      await sign(d, caseId, 0, "buyer");
      await projection.poll();
      const before = projection.log.checkpoint();

      const snapshot = await rpc<string>("evm_snapshot");
      await sign(d, caseId, 0, "bank"); // the last sign-off: stage 0 completes in this block
      await projection.poll();
      expect(projection.getCase(caseId)!.stages[0].status).to.equal("completed");
      expect(notices.at(-1)!.progress!.stages[0].status).to.equal("completed");
      const orphaned = projection.getCase(caseId)!.stages[0].tx;

      await rpc("evm_revert", [snapshot]);
      await mine(1); // the same height again, with another block
      notices.length = 0;
      const result = await projection.poll();

      expect(result.reorg).to.not.equal(null);
      expect(result.reorg!.forkPoint).to.equal(before.number);
      expect(result.reorg!.removed.map((e) => e.name)).to.deep.equal(["SignedOff", "StageCompleted"]);
      expect(notices).to.have.length(1);
      expect(notices[0]).to.deep.include({ caseId: caseId.toString(), reorg: true });
      const corrected = notices[0].progress!;
      expect(corrected.stages[0]).to.deep.include({
        status: "open",
        signedOff: ["buyer"],
        completedAt: null,
        tx: null,
      });
      expect(corrected.progress.completed).to.equal(0);
      // Nothing shown complete that the chain does not hold: the projection agrees with stageOf everywhere.
      const now = await chainNow();
      await expectMatchesChain(projection.getCase(caseId, now), d, caseId, "after the reorganisation");
      expect(projection.historyOf(caseId).map((h) => h.tx)).to.not.include(orphaned);
      // The correction is in the store too: a restart shows it.
      expect(newProjection(d, file).getCase(caseId, now)).to.deep.equal(projection.getCase(caseId, now));

      // The sign-off made again on the new branch is projected as a plain change.
      await sign(d, caseId, 0, "bank");
      await projection.poll();
      expect(notices.at(-1)).to.deep.include({ reorg: false });
      expect(notices.at(-1)!.progress!.stages[0].status).to.equal("completed");
      await expectMatchesChain(projection.getCase(caseId, await chainNow()), d, caseId, "signed again");
    });

    it("removes a case whose opening was reorganised away, and says so with progress null", async function () {
      const d = await deployEscrow();
      const projection = newProjection(d, tempDbFile());
      await projection.poll();
      const snapshot = await rpc<string>("evm_snapshot");
      const caseId = await openUsCase(d);
      await projection.poll();
      expect(projection.getCase(caseId)).to.not.equal(null);
      const notices: ProgressNotice[] = [];
      projection.subscribe((n) => notices.push(n));
      await rpc("evm_revert", [snapshot]);
      await mine(2);
      await projection.poll();
      expect(projection.getCase(caseId)).to.equal(null);
      expect(projection.listCases()).to.deep.equal([]);
      expect(notices).to.deep.equal([{ caseId: caseId.toString(), progress: null, reorg: true }]);
    });
  });

  describe("a chain that comes back older than the store", function () {
    it("is treated as a reorganisation to the common ancestor, and ends equal to a full replay", async function () {
      const d = await deployEscrow();
      const projection = newProjection(d, tempDbFile(), { rangeSize: 4 });
      const notices: ProgressNotice[] = [];
      const caseId = await openUsCase(d);
      await sign(d, caseId, 0, "buyer");
      await projection.poll();
      const saved = projection.log.checkpoint();
      const snapshot = await rpc<string>("evm_snapshot"); // the node's last save

      await sign(d, caseId, 0, "bank");
      await sign(d, caseId, 1, "bank");
      await sign(d, caseId, 2, "bank");
      await mine(20);
      await projection.poll();
      const checkpoint = projection.log.checkpoint();
      expect(projection.getCase(caseId)!.progress.completed).to.equal(2);
      projection.subscribe((n) => notices.push(n));

      await rpc("evm_revert", [snapshot]); // the node restarts from its save: fewer blocks than the store has seen
      await mine(1);
      const latest = Number(await rpc<string>("eth_blockNumber"));
      expect(latest).to.be.lessThan(checkpoint.number);
      const result = await projection.poll();

      expect(result.reorg).to.not.equal(null);
      expect(result.reorg!.forkPoint).to.equal(saved.number);
      expect(result.checkpoint.number).to.equal(latest);
      expect(notices.map((n) => [n.caseId, n.reorg, n.progress!.progress.completed])).to.deep.equal([
        [caseId.toString(), true, 0],
      ]);
      const now = await chainNow();
      await expectMatchesChain(projection.getCase(caseId, now), d, caseId, "older chain");
      const replayed = newProjection(d, tempDbFile());
      await replayed.poll();
      expect(projection.listCases(now)).to.deep.equal(replayed.listCases(now));
      expect(projection.historyOf(caseId)).to.deep.equal(replayed.historyOf(caseId));
    });
  });
});
