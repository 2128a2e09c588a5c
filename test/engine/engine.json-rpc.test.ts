/**
 * The same engine over JSON-RPC against real node processes: `hardhat node` and Anvil (`@foundry-rs/anvil`),
 * a second, independent implementation. On each, a whole us-purchase case runs end to end through
 * `createEngine`, with the node's clock moved by `evm_setNextBlockTimestamp` and `evm_mine`.
 */
import { expect } from "chai";
import { Wallet, id as keccakId } from "ethers";
import type { Engine } from "../../engine";
import { waitFor } from "./engine-helpers";
import { type NodeKind, type NodeProcess, startNode } from "./support/node-process";
import {
  approvalOf,
  deployCase,
  expectProjectionMatchesChain,
  requiredSignOffs,
  rpcEngine,
  signedOffOnChain,
  walkUsPurchase,
} from "./support/remote-case";

const RELAYER = new Wallet(keccakId("the relayer key of the json-rpc engine tests"));

for (const kind of ["hardhat", "anvil"] as NodeKind[]) {
  describe(`engine over JSON-RPC against ${kind === "hardhat" ? "`hardhat node`" : "Anvil"}`, function () {
    this.timeout(120_000);
    let node: NodeProcess;
    let engine: Engine | undefined;

    before(async function () {
      node = await startNode(kind);
    });
    after(async function () {
      await engine?.stop();
      await node?.stop();
    });

    it("runs a whole us-purchase case end to end: every sign-off once, the seller paid, the projection the chain's", async function () {
      const c = await deployCase(node, [RELAYER]);
      const parties = Object.values(c.parties);
      engine = rpcEngine(c, { url: node.url, relayerKey: RELAYER, partyKeys: parties });
      await engine.start();
      const health = await engine.health();
      expect(health).to.include({ status: "ok", chainId: "31337", contract: c.address });
      const e = engine;

      await walkUsPurchase(c, {
        primary: e,
        engines: [e],
        approve: (stageId, role) => e.approve(approvalOf(c, stageId, role)),
        deposit: (role, amount) =>
          e.deposit({ caseId: c.caseId, role, principalAddress: c.parties[role].address, amount }),
      });

      expect(e.getCase(c.caseId)!.progress).to.deep.equal({ completed: 12, total: 12 });
      expect(await signedOffOnChain(c), "each required sign-off exactly once").to.deep.equal(requiredSignOffs(c));
      // Every sign-off was relayed by the engine's own key, in batches.
      const events = await c.escrow.queryFilter(c.escrow.filters.SignedOff(c.caseId), c.fromBlock);
      const txs = [...new Set(events.map((x) => x.transactionHash))];
      expect(txs.length).to.be.lessThan(events.length);
      for (const tx of txs) expect((await node.provider.getTransaction(tx))!.from).to.equal(RELAYER.address);
      await waitFor("every submission settled", () => e.relayer.outbox.countUnsettled() === 0);
      const outbox = e.relayer.outbox.list();
      expect(
        outbox.filter((x) => x.status !== "confirmed"),
        "every submission confirmed",
      ).to.deep.equal([]);
      expect(outbox.filter((x) => x.idempotencyKey.startsWith(`runtime:advance:${c.caseId}:`))).to.have.length(1);
      await expectProjectionMatchesChain(e, c, `${kind}`);
    });
  });
}
