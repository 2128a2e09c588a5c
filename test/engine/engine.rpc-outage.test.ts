/**
 * Fault 9: an RPC outage. The engine talks to a `hardhat node` child process through a TCP proxy on
 * 127.0.0.1 that first drops every connection, then stalls them (accepts, never answers), then lets them
 * through again, in the middle of a us-purchase case. The relayer backs off, recovers, and nothing is lost:
 * every sign-off on chain exactly once, each deposit once, the projection equal to one rebuilt from the chain.
 */
import { expect } from "chai";
import { Wallet, id as keccakId } from "ethers";
import type { Engine } from "../../engine";
import { BEFORE_CONSUMMATION, sleep, waitFor } from "./engine-helpers";
import { type NodeProcess, startHardhatNode } from "./support/node-process";
import { RpcProxy } from "./support/rpc-proxy";
import {
  approvalOf,
  deployCase,
  expectProjectionMatchesChain,
  requiredSignOffs,
  rpcEngine,
  signedOffOnChain,
  walkUsPurchase,
} from "./support/remote-case";

const RELAYER = new Wallet(keccakId("the relayer key of the rpc outage test"));
/** The relayer's default backoff (`DEFAULT_TIMINGS` in engine/relayer/relayer.ts): the floor of each wait is half the ceiling. */
const BACKOFF = { baseMs: 200, maxMs: 15_000 };
const CUT_MS = 3_000;
const STALL_MS = 3_000;

interface Retry {
  at: number;
  code: string;
  failures: number;
}

describe("engine over JSON-RPC through an outage (fault 9)", function () {
  this.timeout(120_000);
  let node: NodeProcess;
  let proxy: RpcProxy | undefined;
  let engine: Engine | undefined;

  before(async function () {
    node = await startHardhatNode();
  });
  after(async function () {
    await engine?.stop();
    await proxy?.close();
    await node?.stop();
  });

  it("backs off while the connection is dropped and then stalled, recovers, and loses nothing", async function () {
    const c = await deployCase(node, [RELAYER]);
    proxy = await RpcProxy.start({ port: node.port });
    const p = proxy;
    engine = rpcEngine(c, { url: p.url, relayerKey: RELAYER, partyKeys: Object.values(c.parties), timeoutMs: 1_000 });
    const e = engine;
    const retries: Retry[] = [];
    e.relayer.on("retrying", (error, failures) => retries.push({ at: Date.now(), code: error.code, failures }));
    await e.start();

    // The deposits carry their own keys, so the walk's later call returns the submission made during the outage.
    const deposit = (role: "buyer" | "bank", amount: bigint) =>
      e.deposit({
        caseId: c.caseId,
        role,
        principalAddress: c.parties[role].address,
        amount,
        idempotencyKey: `fault-9:deposit:${role}`,
      });
    let restoredAt = 0;
    let depositsAt = 0;
    const outage = async () => {
      // The first batch goes to the node's pool and stays there: the line is cut with it in flight.
      await waitFor("the first sign-offs sent", () => {
        const sent = e.relayer.outbox.list().filter((x) => x.kind === "relayed-sign-off" && x.status === "sent");
        return sent.length === BEFORE_CONSUMMATION.length;
      });
      p.setMode("drop");
      const cutAt = Date.now();
      // Accepted while cut off: recorded in the outbox, sent once the line is back.
      depositsAt = Date.now();
      const deposits = [deposit("buyer", 20n * 10n ** 18n), deposit("bank", 80n * 10n ** 18n)];
      expect(deposits.map((d) => d.status)).to.deep.equal(["pending", "pending"]);
      await waitFor("the relayer retrying", () => retries.length >= 2, 10_000);
      const cutHealth = await e.health();
      expect(cutHealth.status).to.equal("degraded");
      expect(cutHealth.error?.code).to.equal("CHAIN_UNAVAILABLE");
      expect(cutHealth.blockNumber).to.equal(null);
      expect(cutHealth.relayer.error?.code).to.equal("CHAIN_UNAVAILABLE");
      // The batch is mined while the engine cannot see it.
      await node.provider.send("evm_mine", []);
      await node.provider.send("evm_setAutomine", [true]);
      await sleep(Math.max(0, cutAt + CUT_MS - Date.now()));

      p.setMode("stall");
      const beforeStall = retries.length;
      await waitFor("the relayer retrying a stalled node", () => retries.length > beforeStall, 15_000);
      await sleep(STALL_MS);
      expect(
        e.getCase(c.caseId)!.stages[c.template.stageIndex["closing-disclosure"]].status,
        "nothing seen during the outage",
      ).to.not.equal("completed");
      p.setMode("pass");
      restoredAt = Date.now();
    };

    await node.provider.send("evm_setAutomine", [false]);
    try {
      await walkUsPurchase(c, {
        primary: e,
        engines: [e],
        approve: (stageId, role) => e.approve(approvalOf(c, stageId, role)),
        deposit,
        afterFirstApprovals: outage,
      });
    } finally {
      await node.provider.send("evm_setAutomine", [true]);
    }

    // The proxy really cut and stalled connections.
    expect(p.stats.dropped, "connections dropped").to.be.greaterThan(0);
    expect(p.stats.stalled, "connections stalled").to.be.greaterThan(0);

    // Backed off: failures counting up with no success between them, and each retry after the previous one's
    // backoff floor. The deposits' submission wakes the worker once (new work is tried at once), so the waits
    // are checked from the first retry after them.
    const during = retries.filter((r) => r.at <= restoredAt);
    expect(during.map((r) => r.code)).to.satisfy((codes: string[]) =>
      codes.every((code) => code === "CHAIN_UNAVAILABLE"),
    );
    expect(during.map((r) => r.failures)).to.deep.equal(during.map((_, i) => i + 1));
    const woken = during.findIndex((r) => r.at > depositsAt);
    const paced = during.slice(woken + 1);
    expect(paced.length, "retries paced by the backoff").to.be.at.least(3);
    for (let i = 1; i < paced.length; i++) {
      const floor = Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** (paced[i - 1].failures - 1)) / 2;
      expect(paced[i].at - paced[i - 1].at, `wait after failure ${paced[i - 1].failures}`).to.be.at.least(floor - 5);
    }
    // Recovered: no retry since the line came back, and the engine healthy.
    expect(
      retries.filter((r) => r.at > restoredAt + 1_000),
      "retries after recovery",
    ).to.deep.equal([]);
    const health = await e.health();
    expect(health.status).to.equal("ok");
    expect(health.relayer.error).to.equal(null);

    // Nothing lost, nothing doubled.
    expect(await signedOffOnChain(c), "each required sign-off exactly once").to.deep.equal(requiredSignOffs(c));
    const deposited = await c.escrow.queryFilter(c.escrow.filters.Deposited(c.caseId), c.fromBlock);
    expect(deposited.map((x) => Number(x.args.payer)).sort(), "each deposit once").to.deep.equal([0, 2]);
    await waitFor("every submission settled", () => e.relayer.outbox.countUnsettled() === 0);
    expect(
      e.relayer.outbox.list().filter((x) => x.status !== "confirmed"),
      "every submission confirmed",
    ).to.deep.equal([]);
    await expectProjectionMatchesChain(e, c, "after the outage");
  });
});
