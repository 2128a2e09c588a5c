import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  CaseStatus,
  DAY,
  EVIDENCE,
  Role,
  StageStatus,
  type RoleName,
  type Terms,
  fundCase,
  getParties,
  openCase,
  partyFor,
  registerTemplate,
} from "../contracts/fixtures";
import { type CompiledWorkflow, getTemplate, loadTemplates } from "../../workflows";
import { getCalendar } from "../../workflows/calendars";
import { localDayOf, startOfLocalDay } from "../../workflows/calendars/time-zones";

const ROLE: Record<string, RoleName> = { bank: "Bank", lawyer: "Lawyer", buyer: "Buyer", seller: "Seller" };

async function deploy() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  return { escrow, parties };
}

/** The stages of a template as "id: roles, after, wait, deadline, action" lines, for readable assertions. */
function outline(t: CompiledWorkflow): string[] {
  return t.details.map((d) =>
    [
      `${d.index} ${d.id}: ${d.signedBy.join("+") || "time"}`,
      d.after.length ? `after ${d.after.join(",")}` : "",
      d.wait ? `wait ${d.wait}` : "",
      d.deadline ? `within ${d.deadline.within} from ${d.deadline.from}` : "",
      d.action !== "none" ? d.action : "",
      d.binding ? "binding" : "",
    ]
      .filter(Boolean)
      .join("; "),
  );
}

/**
 * Registers the template, opens a case, funds it, then signs every stage in on-chain order with its parties,
 * moving the clock through each waiting time (and checking that the stage does not complete a moment early).
 */
async function runToCompletion(template: CompiledWorkflow, terms: Terms) {
  const { escrow, parties } = await loadFixture(deploy);
  const templateId = await registerTemplate(
    escrow,
    parties.admin,
    template.stages,
    template.definitionHash,
    template.amendmentRules,
  );
  expect(templateId).to.equal(template.templateId);
  const caseId = await openCase(escrow, parties, templateId, terms);
  await fundCase(escrow, parties, caseId, terms);

  for (const stage of template.details) {
    for (const role of stage.signedBy) {
      const name = ROLE[role];
      await (await escrow.connect(partyFor(parties, name)).signOff(caseId, stage.index, Role[name], EVIDENCE)).wait();
    }
    let view = await escrow.stageOf(caseId, stage.index);
    if (Number(view.status) !== StageStatus.Completed) {
      expect(Number(view.status), `${stage.id} waits for time`).to.equal(StageStatus.WaitingForTime);
      expect(stage.rule.waitSeconds, `${stage.id} has a waiting time`).to.be.greaterThan(0);
      const availableAt = Number(view.availableAt);
      if ((await time.latest()) < availableAt - 1) {
        await time.setNextBlockTimestamp(availableAt - 1);
        await expect(escrow.advance(caseId)).to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToAdvance");
      }
      await time.setNextBlockTimestamp(Math.max(availableAt, (await time.latest()) + 1));
      await expect(escrow.advance(caseId)).to.emit(escrow, "StageCompleted").withArgs(caseId, stage.index);
      view = await escrow.stageOf(caseId, stage.index);
    }
    expect(Number(view.status), `${stage.id} completed`).to.equal(StageStatus.Completed);
  }

  const c = await escrow.caseOf(caseId);
  expect(Number(c.status)).to.equal(CaseStatus.Completed);
  expect(c.completedStages).to.equal((1n << BigInt(template.stages.length)) - 1n);
  expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(terms.price);
  expect(await escrow.creditOf(caseId, parties.buyer.address)).to.equal(terms.deposit + terms.loan - terms.price);
  await expect(escrow.withdrawFor(caseId, parties.seller.address)).to.changeEtherBalance(parties.seller, terms.price);
  return { escrow, parties, caseId };
}

describe("workflows/templates", function () {
  describe("loadTemplates", function () {
    it("loads the three templates, each named after its file", function () {
      expect(loadTemplates().map((t) => t.workflow.id)).to.deep.equal(["uk-purchase", "uk-remortgage", "us-purchase"]);
    });

    it("gives each template a distinct template id", function () {
      const ids = loadTemplates().map((t) => t.templateId);
      expect(new Set(ids).size).to.equal(3);
    });
  });

  describe("long-stops", function () {
    const expected = [
      { id: "uk-purchase", within: "270 days", release: "completion", source: /mortgage offer's validity, 3-6 months/ },
      { id: "uk-remortgage", within: "240 days", release: "completion", source: /valid 3-6 months, often 180 days/ },
      { id: "us-purchase", within: "90 days", release: "funding", source: /rate lock lasts 30, 45 or 60 days/ },
    ];

    for (const { id, within, release, source } of expected) {
      const t = getTemplate(id);
      const days = Number(within.split(" ")[0]);

      it(`gives ${id} a long-stop of ${within} from the opening, with its basis, on its releasing stage ${JSON.stringify(release)} only`, function () {
        expect(t.workflow.longStop?.within).to.equal(within);
        expect(t.workflow.longStop?.basis).to.match(source);
        const r = t.stageIndex[release];
        expect(t.details[r]).to.deep.include({ action: "release", longStop: t.workflow.longStop });
        expect(t.stages.map((rule) => rule.longStopSeconds)).to.deep.equal(
          t.stages.map((_, s) => (s === r ? days * DAY + 25 * 3600 : 0)),
        );
        // The releasing stage keeps its own deadline, counted from a stage: the contract takes the earlier.
        expect(t.details[r].deadline?.from).to.not.equal("opening");
      });

      it(`never lets ${id}'s long-stop fall on chain before the end of the ${days}th day after the opening's local date in ${t.timeZone}`, function () {
        const longStop = t.stages[t.stageIndex[release]].longStopSeconds;
        // Openings every 7 hours for a year and a half: both clock changes, every hour of the day.
        for (
          let opened = Date.parse("2026-01-01T00:00:00Z") / 1000;
          opened < Date.parse("2027-07-01T00:00:00Z") / 1000;
          opened += 7 * 3600
        ) {
          const legalEnd = startOfLocalDay(localDayOf(opened * 1000, t.timeZone) + days + 1, t.timeZone) / 1000;
          const onChain = opened + longStop;
          expect(onChain, new Date(opened * 1000).toISOString()).to.be.at.least(legalEnd);
          expect(onChain - legalEnd, "at most a day and a bit late").to.be.at.most(26 * 3600);
        }
      });
    }
  });

  describe("us-purchase", function () {
    const t = getTemplate("us-purchase");
    const calendar = getCalendar("us-federal");

    it("has the reference's stages, roles and TRID time rules", function () {
      expect(outline(t)).to.deep.equal([
        "0 application: bank+buyer",
        "1 loan-estimate: bank; after application; within 3 business days from application",
        "2 rate-lock: bank+buyer; after loan-estimate",
        "3 appraisal: bank; after loan-estimate",
        "4 title-commitment: lawyer; after loan-estimate",
        "5 underwriting: bank; after loan-estimate",
        "6 clear-to-close: bank; after appraisal,rate-lock,title-commitment,underwriting",
        "7 closing-disclosure: bank+buyer; after clear-to-close",
        "8 loan-estimate-waiting-period: time; after loan-estimate; wait 4 business days",
        "9 consummation: lawyer+buyer+seller; after closing-disclosure,loan-estimate-waiting-period; wait 3 business days",
        "10 funding: bank+lawyer; after consummation; within 60 days from rate-lock; release",
        "11 recording: lawyer; after funding",
      ]);
      expect(t.timeZone).to.equal("America/New_York");
    });

    it("puts waiting times on chain as the calendar's floor and deadlines as its ceiling plus a day", function () {
      expect(t.stages[9].waitSeconds).to.equal(calendar.floorSeconds(3));
      expect(t.stages[8].waitSeconds).to.equal(calendar.floorSeconds(4));
      expect(t.stages[1]).to.include({ deadlineSeconds: calendar.ceilingSeconds(3) + 25 * 3600, deadlineAnchor: 1 });
      expect(t.stages[10]).to.include({ deadlineSeconds: 60 * DAY + 25 * 3600, deadlineAnchor: 3, action: 2 });
    });

    it("runs end to end: the case completes and the seller is paid", async function () {
      await runToCompletion(t, {
        price: ethers.parseEther("100"),
        deposit: ethers.parseEther("20"),
        loan: ethers.parseEther("80"),
      });
    });
  });

  describe("uk-purchase", function () {
    const t = getTemplate("uk-purchase");
    const calendar = getCalendar("england-and-wales");

    it("has the reference's stages, roles and time rules, with exchange binding", function () {
      expect(outline(t)).to.deep.equal([
        "0 offer-accepted: buyer+seller",
        "1 conveyancers-instructed: lawyer; after offer-accepted",
        "2 mortgage-offer: bank; after offer-accepted",
        "3 searches-and-enquiries: lawyer; after conveyancers-instructed",
        "4 contract-signed: lawyer+buyer; after mortgage-offer,searches-and-enquiries",
        "5 exchange: lawyer+buyer+seller; after contract-signed; binding",
        "6 certificate-of-title: lawyer; after exchange",
        "7 pre-completion-search: lawyer; after exchange",
        "8 completion: bank+lawyer; after certificate-of-title,pre-completion-search; within 180 days from mortgage-offer; release",
        "9 stamp-duty: lawyer; after completion; within 14 days from completion",
        "10 registration: lawyer; after stamp-duty; within 30 business days from pre-completion-search",
      ]);
      expect(t.timeZone).to.equal("Europe/London");
    });

    it("puts the deadlines on chain as their ceilings, from the right anchors", function () {
      expect(t.stages[8]).to.include({ deadlineSeconds: 180 * DAY + 25 * 3600, deadlineAnchor: 2 + 1 });
      expect(t.stages[9]).to.include({ deadlineSeconds: 14 * DAY + 25 * 3600, deadlineAnchor: 8 + 1 });
      expect(t.stages[10]).to.include({
        deadlineSeconds: calendar.ceilingSeconds(30) + 25 * 3600,
        deadlineAnchor: 7 + 1,
      });
    });

    it("runs end to end: the case completes and the seller is paid", async function () {
      await runToCompletion(t, {
        price: ethers.parseEther("300"),
        deposit: ethers.parseEther("30"),
        loan: ethers.parseEther("270"),
      });
    });

    it("pays the buyer's deposit to the seller if the case is cancelled after exchange", async function () {
      const { escrow, parties } = await loadFixture(deploy);
      await registerTemplate(escrow, parties.admin, t.stages, t.definitionHash, t.amendmentRules);
      const terms = {
        price: ethers.parseEther("300"),
        deposit: ethers.parseEther("30"),
        loan: ethers.parseEther("270"),
      };
      const caseId = await openCase(escrow, parties, t.templateId, terms);
      await escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, terms.deposit, { value: terms.deposit });
      for (const stage of t.details.slice(0, t.stageIndex["exchange"] + 1)) {
        for (const role of stage.signedBy) {
          await escrow.connect(partyFor(parties, ROLE[role])).signOff(caseId, stage.index, Role[ROLE[role]], EVIDENCE);
        }
      }
      for (const party of [parties.bank, parties.lawyer, parties.buyer, parties.seller])
        await escrow.connect(party).cancel(caseId);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(terms.deposit);
    });
  });

  describe("uk-remortgage", function () {
    const t = getTemplate("uk-remortgage");

    it("has the reference's stages: reflection period, redemption statement, completion paying off the old lender, registration", function () {
      expect(outline(t)).to.deep.equal([
        "0 application: bank+buyer",
        "1 valuation: bank; after application",
        "2 mortgage-offer: bank; after valuation",
        "3 offer-accepted: buyer; after mortgage-offer; wait 7 days",
        "4 title-check: lawyer; after application",
        "5 redemption-statement: seller; after title-check",
        "6 certificate-of-title: lawyer; after offer-accepted,redemption-statement",
        "7 pre-completion-search: lawyer; after title-check",
        "8 completion: bank+lawyer; after certificate-of-title,pre-completion-search; within 180 days from mortgage-offer; release",
        "9 discharge: seller; after completion",
        "10 registration: lawyer; after completion; within 30 business days from pre-completion-search",
      ]);
      expect(t.workflow.roles.seller).to.equal("Existing lender (paid off)");
      expect(t.stages[3].waitSeconds).to.equal(7 * DAY);
      expect(t.details.every((d) => !d.binding)).to.equal(true);
    });

    it("runs end to end with no deposit: the old lender is paid the redemption amount", async function () {
      await runToCompletion(t, { price: ethers.parseEther("150"), deposit: 0n, loan: ethers.parseEther("150") });
    });
  });
});
