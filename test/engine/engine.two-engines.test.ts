/**
 * Fault 13: two engines on one `hardhat node` child process over JSON-RPC, a bank's and a law firm's, each
 * with its own relayer key and only its own party's managed key (the bank's engine also holds the buyer's;
 * the seller signs with its own wallet through the law firm's engine). Each submits its own party's
 * sign-offs; the chain is the only state they share. Both projections end equal to each other and to the
 * contract's views, and every sign-off is on chain exactly once, the buyer's application sign-off too,
 * though both engines relayed it.
 */
import { expect } from "chai";
import { Wallet, id as keccakId } from "ethers";
import type { Engine, Submission } from "../../engine";
import { EngineError } from "../../engine";
import type { RoleName } from "../../workflows/schema";
import { waitFor } from "./engine-helpers";
import { type NodeProcess, startHardhatNode } from "./support/node-process";
import {
  ROLE_INDEX,
  approvalOf,
  approveWithOwnWallet,
  deployCase,
  expectProjectionMatchesChain,
  requiredSignOffs,
  rpcEngine,
  signedOffOnChain,
  walkUsPurchase,
} from "./support/remote-case";

const BANK_RELAYER = new Wallet(keccakId("the bank engine's relayer key"));
const LAW_RELAYER = new Wallet(keccakId("the law firm engine's relayer key"));

describe("two engines with their own keys on one hardhat node (fault 13)", function () {
  this.timeout(120_000);
  let node: NodeProcess;
  const engines: Engine[] = [];

  before(async function () {
    node = await startHardhatNode();
  });
  after(async function () {
    for (const engine of engines) await engine.stop();
    await node?.stop();
  });

  it("each submits its own party's sign-offs; both projections agree with each other and the chain; every sign-off once", async function () {
    const c = await deployCase(node, [BANK_RELAYER, LAW_RELAYER]);
    const bankEngine = rpcEngine(c, {
      url: node.url,
      relayerKey: BANK_RELAYER,
      partyKeys: [c.parties.bank, c.parties.buyer],
    });
    const lawEngine = rpcEngine(c, { url: node.url, relayerKey: LAW_RELAYER, partyKeys: [c.parties.lawyer] });
    engines.push(bankEngine, lawEngine);
    await Promise.all(engines.map((e) => e.start()));

    // Neither engine can sign for the other's party.
    const refused = await lawEngine.approve(approvalOf(c, "application", "bank")).catch((e: unknown) => e);
    expect(refused).to.be.instanceOf(EngineError);
    expect((refused as EngineError).details?.reason).to.equal("NO_MANAGED_KEY");

    const relayedBy = new Map<string, string>(); // "stage:role" -> the relayer expected to send it
    const duplicated: Array<Submission | EngineError> = [];
    const approve = async (stageId: string, role: RoleName): Promise<unknown> => {
      const key = `${c.template.stageIndex[stageId]}:${ROLE_INDEX[role]}`;
      if (stageId === "application" && role === "buyer") {
        // The buyer's own signature handed to both engines at once: two relayers, one sign-off on chain.
        const results = await Promise.all(
          engines.map((e) => approveWithOwnWallet(e, c, stageId, role).catch((error: unknown) => error as EngineError)),
        );
        duplicated.push(...results);
        return results;
      }
      if (role === "bank" || role === "buyer") {
        relayedBy.set(key, BANK_RELAYER.address);
        return bankEngine.approve(approvalOf(c, stageId, role));
      }
      relayedBy.set(key, LAW_RELAYER.address);
      if (role === "seller") return approveWithOwnWallet(lawEngine, c, stageId, role);
      return lawEngine.approve(approvalOf(c, stageId, role));
    };

    await walkUsPurchase(c, {
      primary: bankEngine,
      engines,
      approve,
      deposit: (role, amount) =>
        bankEngine.deposit({ caseId: c.caseId, role, principalAddress: c.parties[role].address, amount }),
    });

    // Every sign-off exactly once, counted per (stage, role) from the chain's SignedOff events.
    expect(await signedOffOnChain(c), "each required sign-off exactly once").to.deep.equal(requiredSignOffs(c));
    const events = await c.escrow.queryFilter(c.escrow.filters.SignedOff(c.caseId), c.fromBlock);
    for (const event of events) {
      const key = `${event.args.stage}:${event.args.role}`;
      const expected = relayedBy.get(key);
      if (expected)
        expect((await node.provider.getTransaction(event.transactionHash))!.from, `the relayer of ${key}`).to.equal(
          expected,
        );
    }
    // The doubly relayed sign-off: accepted by at least one engine, applied once, the other copy skipped or refused.
    const accepted = duplicated.filter((x): x is Submission => !(x instanceof EngineError));
    expect(accepted.length, "the buyer's application sign-off accepted").to.be.at.least(1);
    for (const x of duplicated) if (x instanceof EngineError) expect(x.code).to.equal("CONFLICT");

    // Both engines settle everything; a duplicate of the runtime's own calls (advance, the seller's payout)
    // made by the second engine fails harmlessly, and the chain shows each effect once.
    await waitFor("every submission settled", () => engines.every((e) => e.relayer.outbox.countUnsettled() === 0));
    for (const e of engines) {
      const notConfirmed = e.relayer.outbox.list().filter((x) => x.status !== "confirmed");
      for (const x of notConfirmed)
        expect(x.idempotencyKey, `only the runtime's duplicates fail: ${JSON.stringify(x.error)}`).to.match(
          /^runtime:(advance|withdraw-for):/,
        );
    }
    for (const submission of accepted) {
      const owner = engines.find((e) => e.relayer.get(submission.id)?.idempotencyKey === submission.idempotencyKey)!;
      expect(
        owner.relayer.get(submission.id)!.status,
        "a relayed copy of the buyer's sign-off counts as done",
      ).to.equal("confirmed");
    }
    const waiting = c.template.stageIndex["loan-estimate-waiting-period"];
    expect(await c.escrow.queryFilter(c.escrow.filters.StageCompleted(c.caseId, waiting), c.fromBlock)).to.have.length(
      1,
    );
    expect(
      await c.escrow.queryFilter(c.escrow.filters.Withdrawn(c.caseId, c.parties.seller.address), c.fromBlock),
    ).to.have.length(1);

    // The two projections are equal, and each equals a projection rebuilt from the chain and the contract's views.
    const head = await node.provider.getBlockNumber();
    await waitFor("both projections at the head", () =>
      engines.every((e) => e.projection.log.checkpoint().number >= head),
    );
    const now = (await node.provider.getBlock("latest"))!.timestamp;
    expect(lawEngine.projection.getCase(c.caseId, now), "the law firm's projection equals the bank's").to.deep.equal(
      bankEngine.projection.getCase(c.caseId, now),
    );
    expect(lawEngine.historyOf(c.caseId)).to.deep.equal(bankEngine.historyOf(c.caseId));
    await expectProjectionMatchesChain(bankEngine, c, "the bank's engine");
    await expectProjectionMatchesChain(lawEngine, c, "the law firm's engine");
  });
});
