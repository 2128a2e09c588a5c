import { expect } from "chai";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { Wallet, type BaseWallet } from "ethers";
import { EngineError, createEngine, type Engine, type OpenCaseRequest } from "../../engine";
import { getTemplate } from "../../workflows";
import {
  MANAGED,
  RELAYER,
  approval,
  newEngine,
  senderOf,
  setUp,
  stageIndex,
  waitFor,
  type EngineSetup,
} from "./engine-helpers";
import { hardhatWallet, setBalance } from "./relayer-helpers";
import { type NodeKind, type NodeProcess, latestTimestamp, startNode } from "./support/node-process";
import { approvalOf, deployCase, rpcEngine } from "./support/remote-case";

/** The escrow's admin (the operator) and an account that is no party of anything, as managed keys. */
const OPERATOR = hardhatWallet(0);
const STRANGER = hardhatWallet(5);

const TERMS = {
  price: ethers.parseEther("90").toString(),
  deposit: ethers.parseEther("20").toString(),
  loan: ethers.parseEther("80").toString(),
};

function request(over: Partial<OpenCaseRequest> = {}): OpenCaseRequest {
  return {
    principalAddress: MANAGED.bank.address,
    workflow: "us-purchase",
    parties: {
      bank: MANAGED.bank.address,
      lawyer: MANAGED.lawyer.address,
      buyer: MANAGED.buyer.address,
      seller: MANAGED.seller.address,
    },
    terms: TERMS,
    ...over,
  };
}

async function refusalOf(promise: Promise<unknown>): Promise<EngineError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, "refused").to.be.instanceOf(EngineError);
  return error as EngineError;
}

describe("engine: the API the HTTP server uses", function () {
  this.timeout(120_000);
  const engines: Engine[] = [];
  afterEach(async function () {
    for (const engine of engines.splice(0)) await engine.stop();
  });
  async function started(s: EngineSetup, partyKeys?: BaseWallet[]): Promise<Engine> {
    const engine = partyKeys ? engineWithKeys(s, partyKeys) : newEngine(s);
    engines.push(engine);
    await engine.start();
    return engine;
  }

  describe("workflows", function () {
    it("lists every template with its stages, JSON-safe, and knows which one the chain has registered", async function () {
      const s = await setUp();
      const engine = await started(s);
      const list = engine.workflows();
      expect(list.map((w) => w.id)).to.deep.equal(["uk-purchase", "uk-remortgage", "us-purchase"]);
      expect(JSON.parse(JSON.stringify(list)), "JSON-safe").to.deep.equal(list);

      const us = list.find((w) => w.id === "us-purchase")!;
      const compiled = getTemplate("us-purchase");
      expect(us.templateId).to.equal(compiled.templateId.toLowerCase());
      expect(us).to.include({ version: 1, jurisdiction: "US", title: compiled.workflow.title });
      expect(us.registered, "the helpers register us-purchase only").to.equal(true);
      expect(list.filter((w) => w.registered).map((w) => w.id)).to.deep.equal(["us-purchase"]);
      // The stages in on-chain order, as a case's stages are.
      expect(us.stages.map((st) => st.id)).to.deep.equal(compiled.details.map((d) => d.id));
      expect(us.stages.map((st) => st.id)).to.deep.equal(engine.getCase(s.caseId)!.stages.map((st) => st.id));
      const loanEstimate = us.stages.find((st) => st.id === "loan-estimate")!;
      expect(loanEstimate).to.deep.include({
        roles: ["bank"],
        prerequisites: ["application"],
        waitingPeriod: null,
        deadline: { within: "3 business days", from: "application" },
        action: "none",
      });
      const consummation = us.stages.find((st) => st.id === "consummation")!;
      expect(consummation).to.deep.include({
        waitingPeriod: "3 business days",
        prerequisites: ["closing-disclosure", "loan-estimate-waiting-period"],
      });
      expect(us.stages.find((st) => st.id === "funding")!.action).to.equal("release");

      expect(engine.workflow("us-purchase")).to.deep.equal(us);
      expect(engine.workflow(compiled.templateId.toUpperCase().replace("0X", "0x"))).to.deep.equal(us);
      expect(engine.workflow("no-such-workflow")).to.equal(null);
    });
  });

  describe("submission", function () {
    it("returns the relayer's record of what approve returned, and null for an unknown id", async function () {
      const s = await setUp();
      const engine = await started(s);
      const submitted = await engine.approve(approval(s, "application", "buyer"));
      const settled = await waitFor("the sign-off confirmed", () => {
        const found = engine.submission(submitted.id);
        return found?.status === "confirmed" ? found : null;
      });
      expect(settled.id).to.equal(submitted.id);
      expect(settled.sender).to.equal(engine.relayer.relayerAddress);
      expect(settled.txHash).to.match(/^0x[0-9a-f]{64}$/);
      expect(engine.submission(submitted.id + 1000)).to.equal(null);
      expect(MANAGED.buyer.address).to.equal(ethers.getAddress(engine.getCase(s.caseId)!.parties.buyer));
    });
  });

  describe("openCase", function () {
    it("opens a case from the bank's managed key and returns its progress, projected", async function () {
      const s = await setUp();
      const engine = await started(s);
      const before = await s.d.escrow.caseCount();
      const opened = await engine.openCase(request());
      expect(opened.id).to.equal((before + 1n).toString());
      expect(await s.d.escrow.caseCount()).to.equal(before + 1n);
      expect(opened.status).to.equal("open");
      expect(opened.workflow).to.deep.include({ id: "us-purchase", templateId: s.d.template.templateId.toLowerCase() });
      expect(opened.parties).to.deep.equal({
        bank: MANAGED.bank.address,
        lawyer: MANAGED.lawyer.address,
        buyer: MANAGED.buyer.address,
        seller: MANAGED.seller.address,
      });
      expect(opened.terms).to.deep.include(TERMS);
      expect(engine.getCase(opened.id)).to.deep.equal(opened);
      const [event] = await s.d.escrow.queryFilter(s.d.escrow.filters.CaseOpened(BigInt(opened.id)));
      expect(await senderOf(event.transactionHash), "sent from the bank's own key").to.equal(MANAGED.bank.address);
    });

    it("opens one for the operator (the escrow's admin) naming another bank, and the workflow may be named by its template id", async function () {
      const s = await setUp();
      const engine = await started(s, [...Object.values(MANAGED), OPERATOR]);
      const opened = await engine.openCase(
        request({ principalAddress: OPERATOR.address, workflow: s.d.template.templateId }),
      );
      expect(opened.parties.bank).to.equal(MANAGED.bank.address);
      const [event] = await s.d.escrow.queryFilter(s.d.escrow.filters.CaseOpened(BigInt(opened.id)));
      expect(await senderOf(event.transactionHash)).to.equal(OPERATOR.address);
    });

    it("refuses a stranger: without a managed key at once, with one by the chain's refusal (FORBIDDEN either way), and no case opens", async function () {
      const s = await setUp();
      const withoutKey = await started(s);
      const before = await s.d.escrow.caseCount();
      const noKey = await refusalOf(withoutKey.openCase(request({ principalAddress: STRANGER.address })));
      expect(noKey.code).to.equal("FORBIDDEN");
      expect(noKey.details?.reason).to.equal("NO_MANAGED_KEY");
      await withoutKey.stop();
      engines.splice(0);

      const engine = await started(s, [...Object.values(MANAGED), STRANGER]);
      const refused = await refusalOf(engine.openCase(request({ principalAddress: STRANGER.address })));
      expect(refused.code).to.equal("FORBIDDEN");
      expect(refused.message).to.match(/neither the case's bank nor the operator/);
      expect((refused.details?.error as { details: { error: string } }).details.error).to.equal(
        "MortgageEscrowUnauthorizedOpener",
      );
      // A bank naming another bank is no better.
      const otherBank = await refusalOf(
        engine.openCase(request({ parties: { ...request().parties, bank: STRANGER.address } })),
      );
      expect(otherBank.code).to.equal("FORBIDDEN");
      expect(await s.d.escrow.caseCount()).to.equal(before);
    });

    it("gives the same case for the same idempotency key (one case on chain, asked twice at once and again later); another request under it conflicts", async function () {
      const s = await setUp();
      const engine = await started(s);
      const before = await s.d.escrow.caseCount();
      const [a, b] = await Promise.all([
        engine.openCase(request({ idempotencyKey: "open-1" })),
        engine.openCase(request({ idempotencyKey: "open-1" })),
      ]);
      expect(a.id).to.equal(b.id);
      const again = await engine.openCase(request({ idempotencyKey: "open-1" }));
      expect(again.id).to.equal(a.id);
      expect(await s.d.escrow.caseCount()).to.equal(before + 1n);
      const other = await engine.openCase(request({ idempotencyKey: "open-2" }));
      expect(other.id).to.equal((before + 2n).toString());

      const conflict = await refusalOf(
        engine.openCase(request({ idempotencyKey: "open-1", terms: { ...TERMS, price: "1" } })),
      );
      expect(conflict.code).to.equal("IDEMPOTENCY_CONFLICT");
      expect(await s.d.escrow.caseCount()).to.equal(before + 2n);
    });

    it("refuses what cannot be a case with a clear reason, before anything is recorded or sent", async function () {
      const s = await setUp();
      const engine = await started(s);
      const recorded = engine.relayer.outbox.list().length;
      const cases: Array<[Partial<OpenCaseRequest>, string, RegExp]> = [
        [{ workflow: "no-such-workflow" }, "NOT_FOUND", /no workflow "no-such-workflow"/],
        [
          { terms: { ...TERMS, price: ethers.parseEther("100.5").toString() } },
          "INVALID_REQUEST",
          /price .* must be at most the deposit plus the loan/,
        ],
        [{ terms: { ...TERMS, loan: "1.5" } }, "INVALID_REQUEST", /terms.loan must be a decimal string/],
        [{ terms: { ...TERMS, deposit: "-1" } }, "INVALID_REQUEST", /terms.deposit must be a decimal string/],
        [
          { terms: { ...TERMS, loan: (1n << 96n).toString() } },
          "INVALID_REQUEST",
          /terms.loan is larger than the escrow holds/,
        ],
        [
          { parties: { ...request().parties, seller: "0x1234" } },
          "INVALID_REQUEST",
          /parties.seller must be a 20-byte hex address/,
        ],
        [
          { parties: { ...request().parties, lawyer: ethers.ZeroAddress } },
          "INVALID_REQUEST",
          /parties.lawyer must not be the zero address/,
        ],
        [{ asset: "not an address" }, "INVALID_REQUEST", /asset must be a 20-byte hex address/],
      ];
      for (const [over, code, message] of cases) {
        const refused = await refusalOf(engine.openCase(request(over)));
        expect(refused.code, JSON.stringify(over)).to.equal(code);
        expect(refused.message).to.match(message);
      }
      expect(engine.relayer.outbox.list(), "nothing recorded").to.have.length(recorded);
    });

    it("gives up with a retryable TIMEOUT when the chain does not settle it in time, and the same key picks the case up later", async function () {
      const s = await setUp();
      const engine = await started(s);
      await hre.network.provider.send("evm_setAutomine", [false]);
      let timedOut: EngineError;
      try {
        timedOut = await refusalOf(engine.openCase(request({ idempotencyKey: "slow" }), { timeoutMs: 1_000 }));
      } finally {
        await hre.network.provider.send("evm_setAutomine", [true]);
      }
      expect(timedOut.code).to.equal("TIMEOUT");
      expect(timedOut.retryable).to.equal(true);
      await hre.network.provider.send("evm_mine", []);
      const opened = await engine.openCase(request({ idempotencyKey: "slow" }));
      expect(await s.d.escrow.caseCount()).to.equal(BigInt(opened.id));
    });
  });

  describe("increaseTime", function () {
    it("moves the chain's clock and the engine's at once: a waiting period's advance happens without waiting real time", async function () {
      const s = await setUp();
      const engine = await started(s);
      for (const [stage, role] of [
        ["application", "buyer"],
        ["application", "bank"],
        ["loan-estimate", "bank"],
      ] as const)
        await engine.approve(approval(s, stage, role));
      const waiting = () => engine.getCase(s.caseId)!.stages[stageIndex(s, "loan-estimate-waiting-period")];
      await waitFor(
        "the waiting period waiting for time",
        () => waiting().status === "waiting" && waiting().waitingFor === "time",
      );
      const chainBefore = await time.latest();

      const { now } = await engine.increaseTime(10 * 86_400);
      const after = await time.latest();
      expect(Date.parse(now) / 1000).to.equal(after);
      expect(after - chainBefore).to.be.within(10 * 86_400, 10 * 86_400 + 5);
      expect(engine.clock.nowSeconds(), "the engine's clock moved with it").to.be.within(after, after + 2);
      const movedAt = Date.now();
      await waitFor("the waiting period completed", () => waiting().status === "completed", 5_000);
      expect(Date.now() - movedAt, "at once, not after a timer of days").to.be.below(5_000);
      const [completed] = await s.d.escrow.queryFilter(
        s.d.escrow.filters.StageCompleted(s.caseId, stageIndex(s, "loan-estimate-waiting-period")),
      );
      expect(await senderOf(completed.transactionHash), "the engine's own advance").to.equal(RELAYER.address);
    });

    it("refuses a clock that does not move forward", async function () {
      const s = await setUp();
      const engine = await started(s);
      for (const seconds of [0, -5, 1.5, Number.NaN])
        expect((await refusalOf(engine.increaseTime(seconds))).code).to.equal("INVALID_REQUEST");
    });
  });

  describe("addPartyKey", function () {
    it("lets a key added while the engine runs deposit and sign off", async function () {
      const s = await setUp();
      const engine = await started(s);
      const newBuyer = Wallet.createRandom();
      await setBalance(newBuyer.address, ethers.parseEther("50"));
      const opened = await engine.openCase(request({ parties: { ...request().parties, buyer: newBuyer.address } }));
      const deposit = {
        caseId: opened.id,
        role: "buyer" as const,
        principalAddress: newBuyer.address,
        amount: TERMS.deposit,
      };
      const signOff = {
        caseId: opened.id,
        stageId: "application",
        role: "buyer" as const,
        principalAddress: newBuyer.address,
      };
      expect((await refusalOf(Promise.resolve().then(() => engine.deposit(deposit)))).details?.reason).to.equal(
        "NO_MANAGED_KEY",
      );
      expect((await refusalOf(engine.approve(signOff))).details?.reason).to.equal("NO_MANAGED_KEY");

      engine.addPartyKey(newBuyer);
      engine.addPartyKey(newBuyer); // twice is once
      const paid = engine.deposit(deposit);
      const signed = await engine.approve(signOff);
      await waitFor(
        "both settled",
        () =>
          engine.submission(paid.id)?.status === "confirmed" && engine.submission(signed.id)?.status === "confirmed",
      );
      const progress = await waitFor("both projected", () => {
        const p = engine.getCase(opened.id)!;
        return p.escrow.paidByBuyer !== "0" && p.stages[stageIndex(s, "application")].signedOff.length > 0 ? p : null;
      });
      expect(progress.escrow.paidByBuyer).to.equal(TERMS.deposit);
      expect(progress.stages[stageIndex(s, "application")].signedOff).to.deep.equal(["buyer"]);
      expect(await senderOf(engine.submission(paid.id)!.txHash!)).to.equal(newBuyer.address);
    });
  });

  for (const kind of ["hardhat", "anvil"] as NodeKind[]) {
    describe(`over JSON-RPC against ${kind === "hardhat" ? "`hardhat node`" : "Anvil"}`, function () {
      let node: NodeProcess;
      before(async function () {
        node = await startNode(kind);
      });
      after(async function () {
        await node?.stop();
      });

      it("opens a case and moves the node's clock so that a waiting period's advance happens at once", async function () {
        const relayerKey = new Wallet(ethers.id(`the relayer key of the engine API tests on ${kind}`));
        const c = await deployCase(node, [relayerKey]);
        const engine = rpcEngine(c, { url: node.url, relayerKey, partyKeys: Object.values(c.parties) });
        engines.push(engine);
        await engine.start();
        const opened = await engine.openCase({
          principalAddress: c.parties.bank.address,
          workflow: "us-purchase",
          parties: {
            bank: c.parties.bank.address,
            lawyer: c.parties.lawyer.address,
            buyer: c.parties.buyer.address,
            seller: c.parties.seller.address,
          },
          terms: TERMS,
          idempotencyKey: "rpc-open",
        });
        expect(opened.id).to.equal((c.caseId + 1n).toString());

        for (const [stage, role] of [
          ["application", "buyer"],
          ["application", "bank"],
          ["loan-estimate", "bank"],
        ] as const)
          await engine.approve(approvalOf(c, stage, role));
        const waiting = () => engine.getCase(c.caseId)!.stages[c.template.stageIndex["loan-estimate-waiting-period"]];
        await waitFor("waiting for time", () => waiting().waitingFor === "time");
        const before = await latestTimestamp(node);
        const { now } = await engine.increaseTime(10 * 86_400);
        expect(Date.parse(now) / 1000 - before).to.be.within(10 * 86_400, 10 * 86_400 + 5);
        await waitFor("the waiting period completed", () => waiting().status === "completed", 5_000);
      });
    });
  }
});

function engineWithKeys(s: EngineSetup, partyKeys: BaseWallet[]): Engine {
  return createEngine({
    dataDir: s.dataDir,
    chain: { kind: "in-process", provider: hre.network.provider },
    escrowAddress: s.d.address,
    relayerKey: RELAYER,
    partyKeys,
    pollIntervalMs: 50,
    deploymentBlock: s.d.fromBlock,
    batchWindowMs: 100,
  });
}
