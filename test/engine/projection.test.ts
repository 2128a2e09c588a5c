import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import {
  Action,
  DAY,
  EVERY_PARTY,
  Role,
  fundCase,
  openCase,
  registerTemplate,
  roles,
  rule,
  stages,
} from "../contracts/fixtures";
import type { ProgressNotice } from "../../engine/projection/projection";
import {
  TERMS,
  chainNow,
  deployEscrow,
  expectMatchesChain,
  newProjection,
  openUsCase,
  sign,
  statusKey,
  tempDbFile,
  type Deployment,
} from "./projection-helpers";
import type { Projection } from "../../engine/projection/projection";

/**
 * Walks a us-purchase case through every stage with the parties' own signers, funding it only when the
 * releasing stage waits for the money, and calls `check` after every step (label, stage index).
 */
async function walkUsPurchase(d: Deployment, caseId: bigint, check: (label: string) => Promise<void>): Promise<void> {
  for (const stage of d.template.details) {
    const [first, ...rest] = stage.signedBy;
    if (first && rest.length > 0) {
      await sign(d, caseId, stage.index, first);
      await check(`${stage.id} partly signed`);
    }
    for (const role of first && rest.length > 0 ? rest : stage.signedBy) await sign(d, caseId, stage.index, role);
    let view = await d.escrow.stageOf(caseId, stage.index);
    if (stage.action === "release" && !(await d.escrow.caseOf(caseId)).funded) {
      await check(`${stage.id} waiting for funds`);
      await fundCase(d.escrow, d.parties, caseId, TERMS);
      view = await d.escrow.stageOf(caseId, stage.index);
    }
    if (Number(view.status) !== 4) {
      await check(`${stage.id} waiting for time`);
      await time.setNextBlockTimestamp(Math.max(Number(view.availableAt), (await time.latest()) + 1));
      await (await d.escrow.advance(caseId)).wait();
    }
    await check(`${stage.id} done`);
  }
}

describe("engine/projection/Projection", function () {
  describe("poll", function () {
    it("projects a whole us-purchase case with the statuses stageOf reports at every step, with credits and history", async function () {
      const d = await deployEscrow();
      const projection = newProjection(d, tempDbFile());
      const caseId = await openUsCase(d);
      const seen = new Set<string>();
      const check = async (label: string) => {
        await projection.poll();
        const progress = projection.getCase(caseId, await chainNow());
        await expectMatchesChain(progress, d, caseId, label);
        for (const s of progress!.stages) seen.add(statusKey(s));
      };
      await check("opened");
      expect(projection.getCase(caseId, await chainNow())!.stages.map((s) => s.id)).to.deep.equal(
        d.template.details.map((s) => s.id),
      );
      await walkUsPurchase(d, caseId, check);

      const done = projection.getCase(caseId, await chainNow())!;
      expect(done.status).to.equal("completed");
      expect(done.progress).to.deep.equal({ completed: 12, total: 12 });
      expect(done.workflow).to.deep.equal({
        id: "us-purchase",
        version: 1,
        title: d.template.workflow.title,
        templateId: d.template.templateId.toLowerCase(),
      });
      expect(done.terms).to.deep.equal({
        price: TERMS.price.toString(),
        deposit: TERMS.deposit.toString(),
        loan: TERMS.loan.toString(),
      });
      expect(done.escrow.credits).to.deep.equal({
        [d.parties.seller.address]: TERMS.price.toString(),
        [d.parties.buyer.address]: (TERMS.deposit + TERMS.loan - TERMS.price).toString(),
      });
      // Every status a purchase passes through was seen and matched the chain's.
      expect([...seen].sort()).to.include.members(["completed", "locked", "open", "waiting:funds", "waiting:time"]);

      // The engine pushes the seller's credit: the projection drops it once it is withdrawn.
      await (await d.escrow.withdrawFor(caseId, d.parties.seller.address)).wait();
      await check("seller paid");
      expect(projection.getCase(caseId)!.escrow.credits).to.deep.equal({
        [d.parties.buyer.address]: (TERMS.deposit + TERMS.loan - TERMS.price).toString(),
      });

      // The history is every event of the case on chain, with its block, time and transaction.
      const onChain = (await d.escrow.queryFilter("*" as never, d.fromBlock)).filter(
        (e) => "args" in e && e.fragment.inputs[0]?.name === "caseId" && e.args[0] === caseId,
      );
      const history = projection.historyOf(caseId);
      expect(history.map((h) => [h.event, h.block, h.tx, h.logIndex])).to.deep.equal(
        onChain.map((e) => ["eventName" in e ? e.eventName : "", e.blockNumber, e.transactionHash, e.index]),
      );
      expect(history.filter((h) => h.event === "StageCompleted")).to.have.length(12);
      const withdrawn = history.find((h) => h.event === "Withdrawn")!;
      expect(withdrawn.args).to.deep.include({ payee: d.parties.seller.address, amount: TERMS.price.toString() });
      const block = await ethers.provider.getBlock(withdrawn.block);
      expect(withdrawn.time).to.equal(new Date(block!.timestamp * 1000).toISOString());
      const funding = done.stages[10];
      const release = await ethers.provider.getTransactionReceipt(funding.tx!);
      expect(release!.logs.some((l) => l.topics[0] === d.escrow.interface.getEvent("Credited")!.topicHash)).to.equal(
        true,
      );
    });

    it("projects a case on a template no workflow compiles to, with its rules from the chain and generic stage ids", async function () {
      const d = await deployEscrow();
      const rules = d.template.stages.slice(0, 3).map((r, i) => ({
        ...r,
        action: i === 2 ? 2 : 0,
        deadlineSeconds: 0,
        deadlineAnchor: 0,
        longStopSeconds: i === 2 ? 90 * 86_400 : 0,
      }));
      const templateId = await d.escrow.registerTemplate.staticCall(ethers.id("elsewhere@1"), rules, EVERY_PARTY);
      await (await d.escrow.registerTemplate(ethers.id("elsewhere@1"), rules, EVERY_PARTY)).wait();
      const caseId = await d.escrow.connect(d.parties.bank).openCase.staticCall({
        templateId,
        bank: d.parties.bank.address,
        lawyer: d.parties.lawyer.address,
        buyer: d.parties.buyer.address,
        seller: d.parties.seller.address,
        asset: ethers.ZeroAddress,
        price: 1n,
        deposit: 0n,
        loan: 1n,
      });
      await (
        await d.escrow.connect(d.parties.bank).openCase({
          templateId,
          bank: d.parties.bank.address,
          lawyer: d.parties.lawyer.address,
          buyer: d.parties.buyer.address,
          seller: d.parties.seller.address,
          asset: ethers.ZeroAddress,
          price: 1n,
          deposit: 0n,
          loan: 1n,
        })
      ).wait();
      await sign(d, caseId, 0, "bank");
      const file = tempDbFile();
      const projection = newProjection(d, file);
      await projection.poll();
      const progress = projection.getCase(caseId, await chainNow())!;
      expect(progress.workflow).to.deep.equal({
        id: null,
        version: null,
        title: null,
        templateId: templateId.toLowerCase(),
      });
      expect(progress.stages.map((s) => s.id)).to.deep.equal(["stage-0", "stage-1", "stage-2"]);
      await expectMatchesChain(progress, d, caseId);
      // After a restart the template is known from the stored view, without the chain.
      const again = newProjection(d, file);
      expect(again.getCase(caseId, await chainNow())).to.deep.equal(progress);
    });
  });

  describe("cancel votes", function () {
    it("follows the votes the chain counts: a vote withdrawn no longer stands", async function () {
      const d = await deployEscrow();
      const caseId = await openUsCase(d);
      await (await d.escrow.connect(d.parties.buyer).cancel(caseId)).wait();
      await (await d.escrow.connect(d.parties.seller).cancel(caseId)).wait();
      await (await d.escrow.connect(d.parties.buyer).withdrawCancelVote(caseId)).wait();
      const projection = newProjection(d, tempDbFile());
      await projection.poll();
      const onChain = Number((await d.escrow.caseOf(caseId)).cancelVotes);
      expect(onChain, "the seller's vote alone stands").to.equal(1 << Role.Seller);
      expect(projection.viewOf(caseId)!.model.cancelVotes).to.equal(onChain);
    });

    it("clears the votes cast before a binding stage completes, as the chain does", async function () {
      const d = await deployEscrow();
      const rules = [
        rule({ roles: roles("Buyer"), binding: true }),
        rule({ roles: roles("Bank"), prerequisites: stages(0), action: Action.Release, longStopSeconds: 60 * DAY }),
      ];
      const templateId = await registerTemplate(d.escrow, d.parties.admin, rules, ethers.id("binding@1"));
      const caseId = await openCase(d.escrow, d.parties, templateId, TERMS);
      await (await d.escrow.connect(d.parties.seller).cancel(caseId)).wait();
      await sign(d, caseId, 0, "buyer");
      const projection = newProjection(d, tempDbFile());
      await projection.poll();
      expect(Number((await d.escrow.caseOf(caseId)).cancelVotes), "the chain cleared the seller's vote").to.equal(0);
      expect(projection.viewOf(caseId)!.model.cancelVotes).to.equal(0);
    });
  });

  describe("subscribe", function () {
    it("publishes each change once, one notice per case per block, in block order, across ranges", async function () {
      const d = await deployEscrow();
      const projection = newProjection(d, tempDbFile(), { rangeSize: 3 });
      const notices: ProgressNotice[] = [];
      projection.subscribe((n) => notices.push(n));
      const a = await openUsCase(d);
      const b = await openUsCase(d);
      await sign(d, a, 0, "buyer");
      await projection.poll();
      await sign(d, b, 0, "buyer");
      await sign(d, a, 0, "bank"); // completes stage 0 of case a
      await (
        await d.escrow.connect(d.parties.buyer).deposit(b, Role.Buyer, TERMS.deposit, { value: TERMS.deposit })
      ).wait();
      await projection.poll();
      await projection.poll(); // nothing new: nothing published

      for (const caseId of [a, b]) {
        const mine = notices.filter((n) => n.caseId === caseId.toString());
        const blocks = mine.map((n) => n.progress!.updatedAt.block);
        const eventBlocks = [...new Set(projection.historyOf(caseId).map((h) => h.block))];
        expect(blocks, `case ${caseId}`).to.deep.equal(eventBlocks);
        expect(mine.every((n) => !n.reorg)).to.equal(true);
      }
      const allBlocks = notices.map((n) => n.progress!.updatedAt.block);
      expect(allBlocks).to.deep.equal([...allBlocks].sort((x, y) => x - y));
      const last = notices.filter((n) => n.caseId === a.toString()).pop()!;
      expect(last.progress!.stages[0].status).to.equal("completed");
      expect(notices.filter((n) => n.caseId === b.toString()).pop()!.progress!.escrow.paidByBuyer).to.equal(
        TERMS.deposit.toString(),
      );
    });

    it("stops calling a listener once it unsubscribes, and a throwing listener does not stop the others", async function () {
      const d = await deployEscrow();
      const projection = newProjection(d, tempDbFile());
      const heard: string[] = [];
      projection.subscribe(() => {
        throw new Error("a broken subscriber");
      });
      const unsubscribe = projection.subscribe((n) => heard.push(n.caseId));
      const a = await openUsCase(d);
      await projection.poll();
      unsubscribe();
      await sign(d, a, 0, "buyer");
      await projection.poll();
      expect(heard).to.deep.equal([a.toString()]);
      expect(projection.getCase(a)!.stages[0].signedOff).to.deep.equal(["buyer"]);
    });
  });

  describe("rebuild", function () {
    let d: Deployment;
    let projection: Projection;
    let file: string;
    let cases: bigint[];

    before(async function () {
      d = await deployEscrow();
      file = tempDbFile();
      projection = newProjection(d, file, { rangeSize: 5 });
      cases = [await openUsCase(d), await openUsCase(d), await openUsCase(d)];
      await projection.poll();
      await walkUsPurchase(d, cases[0], async () => {
        await projection.poll();
      });
      await sign(d, cases[1], 0, "buyer");
      await sign(d, cases[1], 0, "bank");
      for (const party of [d.parties.bank, d.parties.lawyer, d.parties.buyer, d.parties.seller]) {
        await (await d.escrow.connect(party).cancel(cases[2])).wait();
      }
      await projection.poll();
    });

    it("rebuilds from the chain alone what the incremental projection built, and publishes nothing", async function () {
      const now = await chainNow();
      const incremental = projection.listCases(now);
      const histories = cases.map((c) => projection.historyOf(c));
      const notices: ProgressNotice[] = [];
      projection.subscribe((n) => notices.push(n));
      await projection.rebuild();
      expect(projection.listCases(now)).to.deep.equal(incremental);
      expect(cases.map((c) => projection.historyOf(c))).to.deep.equal(histories);
      expect(notices).to.deep.equal([]);
      expect(incremental.map((c) => c.status)).to.deep.equal(["completed", "open", "cancelled"]);
      for (const c of cases) await expectMatchesChain(projection.getCase(c, now), d, c);
    });

    it("equals a projection that replayed the chain into a new store", async function () {
      const fresh = newProjection(d, tempDbFile());
      await fresh.poll();
      const now = await chainNow();
      expect(fresh.listCases(now)).to.deep.equal(projection.listCases(now));
    });

    it("corrects a store that disagrees with the chain, and tells subscribers", async function () {
      // Damage the stored view of case 2 (as a bug or a hand edit might), then restart on that store.
      projection.log.db
        .prepare("UPDATE projection_case_views SET view = json_set(view, '$.model.status', 'open') WHERE case_id = ?")
        .run(cases[2].toString());
      const damaged = newProjection(d, file);
      expect(damaged.getCase(cases[2])!.status).to.equal("open");
      const notices: ProgressNotice[] = [];
      damaged.subscribe((n) => notices.push(n));
      await damaged.rebuild();
      expect(damaged.getCase(cases[2])!.status).to.equal("cancelled");
      expect(notices.map((n) => [n.caseId, n.reorg, n.progress?.status])).to.deep.equal([
        [cases[2].toString(), true, "cancelled"],
      ]);
    });
  });
});
