import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import {
  EVERY_PARTY,
  Action,
  CASCADE,
  DAY,
  DEFAULT_ADMIN_ROLE,
  DEFINITION_HASH,
  SMALL_PURCHASE,
  US_PURCHASE,
  type StageRule,
  getParties,
  roles,
  rule,
  ruleTuple,
  stages,
  templateIdOf,
} from "./fixtures";

const reason = (tag: string) => ethers.encodeBytes32String(tag);

/** A chain of `count` stages, each after the one before, the last one releasing (with a year's long-stop). */
function chain(count: number, waitSeconds = 0): StageRule[] {
  return Array.from({ length: count }, (_, i) =>
    rule({
      roles: roles("Lawyer"),
      prerequisites: i === 0 ? 0 : stages(i - 1),
      waitSeconds: i === 0 ? 0 : waitSeconds,
      action: i === count - 1 ? Action.Release : Action.None,
      longStopSeconds: i === count - 1 ? 365 * DAY : 0,
    }),
  );
}

async function deployEscrow() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  return { escrow, parties };
}

describe("MortgageEscrow templates", function () {
  describe("registerTemplate", function () {
    it("returns keccak256(abi.encode(definitionHash, stages, amendmentRules)) as the template id", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const id = await escrow
        .connect(parties.admin)
        .registerTemplate.staticCall(DEFINITION_HASH, SMALL_PURCHASE, EVERY_PARTY);
      expect(id).to.equal(templateIdOf(DEFINITION_HASH, SMALL_PURCHASE));
    });

    it("emits TemplateRegistered with the id, the definition hash, a sequential index and the stage count", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, SMALL_PURCHASE, EVERY_PARTY))
        .to.emit(escrow, "TemplateRegistered")
        .withArgs(templateIdOf(DEFINITION_HASH, SMALL_PURCHASE), DEFINITION_HASH, 1, 4);
      const usHash = ethers.id("us-purchase@1");
      await expect(escrow.connect(parties.admin).registerTemplate(usHash, US_PURCHASE, EVERY_PARTY))
        .to.emit(escrow, "TemplateRegistered")
        .withArgs(templateIdOf(usHash, US_PURCHASE), usHash, 2, 11);
    });

    it("is a no-op that returns the same id when the same template is registered again", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      await escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, SMALL_PURCHASE, EVERY_PARTY);
      const again = await escrow
        .connect(parties.admin)
        .registerTemplate.staticCall(DEFINITION_HASH, SMALL_PURCHASE, EVERY_PARTY);
      expect(again).to.equal(templateIdOf(DEFINITION_HASH, SMALL_PURCHASE));
      await expect(
        escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, SMALL_PURCHASE, EVERY_PARTY),
      ).not.to.emit(escrow, "TemplateRegistered");
      // The next new template still gets index 2: the repeat did not take one.
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, CASCADE, EVERY_PARTY))
        .to.emit(escrow, "TemplateRegistered")
        .withArgs(templateIdOf(DEFINITION_HASH, CASCADE), DEFINITION_HASH, 2, 5);
    });

    it("gives the same stages under another definition hash another id", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const other = ethers.id("small-purchase@2");
      await expect(escrow.connect(parties.admin).registerTemplate(other, SMALL_PURCHASE, EVERY_PARTY))
        .to.emit(escrow, "TemplateRegistered")
        .withArgs(templateIdOf(other, SMALL_PURCHASE), other, 1, 4);
      expect(templateIdOf(other, SMALL_PURCHASE)).to.not.equal(templateIdOf(DEFINITION_HASH, SMALL_PURCHASE));
    });

    it("accepts a template of the maximum of 16 stages", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const sixteen = chain(16);
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, sixteen, EVERY_PARTY))
        .to.emit(escrow, "TemplateRegistered")
        .withArgs(templateIdOf(DEFINITION_HASH, sixteen), DEFINITION_HASH, 1, 16);
    });

    it("reverts when the caller is not the operator", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      await expect(escrow.connect(parties.bank).registerTemplate(DEFINITION_HASH, SMALL_PURCHASE, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
        .withArgs(parties.bank.address, DEFAULT_ADMIN_ROLE);
    });

    it("reverts when the template has no stages", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, [], EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidStageCount")
        .withArgs(0, 16);
    });

    it("reverts when the template has more than 16 stages", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, chain(17), EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidStageCount")
        .withArgs(17, 16);
    });

    it("reverts with 'unknown role' when a stage's role mask has a bit beyond the four roles", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const bad = [rule({ roles: roles("Bank") }), rule({ roles: 0x10 | roles("Lawyer"), action: Action.Release })];
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, bad, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidStageRule")
        .withArgs(1, reason("unknown role"));
    });

    it("reverts with 'prerequisite not earlier' when a stage requires itself", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const bad = [
        rule({ roles: roles("Bank") }),
        rule({ roles: roles("Lawyer"), prerequisites: stages(1), action: Action.Release }),
      ];
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, bad, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidStageRule")
        .withArgs(1, reason("prerequisite not earlier"));
    });

    it("reverts with 'prerequisite not earlier' when a stage requires a later stage", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const bad = [
        rule({ roles: roles("Bank"), prerequisites: stages(1) }),
        rule({ roles: roles("Lawyer"), action: Action.Release }),
      ];
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, bad, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidStageRule")
        .withArgs(0, reason("prerequisite not earlier"));
    });

    it("reverts with 'nothing to wait for' when a stage has neither roles nor prerequisites", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const bad = [rule({ roles: roles("Bank"), action: Action.Release }), rule({ roles: 0, waitSeconds: DAY })];
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, bad, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidStageRule")
        .withArgs(1, reason("nothing to wait for"));
    });

    it("reverts with 'anchor not earlier' when a deadline counts from the stage itself", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const bad = [
        rule({ roles: roles("Bank") }),
        rule({ roles: roles("Lawyer"), action: Action.Release, deadlineSeconds: DAY, deadlineAnchor: 2 }),
      ];
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, bad, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidStageRule")
        .withArgs(1, reason("anchor not earlier"));
    });

    it("reverts with 'anchor without deadline' when a stage names an anchor but no deadline", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const bad = [
        rule({ roles: roles("Bank") }),
        rule({ roles: roles("Lawyer"), action: Action.Release, deadlineAnchor: 1 }),
      ];
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, bad, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidStageRule")
        .withArgs(1, reason("anchor without deadline"));
    });

    it("reverts when no stage releases the escrow", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const none = [rule({ roles: roles("Bank") }), rule({ roles: roles("Lawyer"), action: Action.RequireFunding })];
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, none, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidReleaseStageCount")
        .withArgs(0);
    });

    it("reverts when two stages release the escrow", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const two = [
        rule({ roles: roles("Bank"), action: Action.Release }),
        rule({ roles: roles("Lawyer"), action: Action.Release }),
      ];
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, two, EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidReleaseStageCount")
        .withArgs(2);
    });

    it("reverts when more stages' completion times are needed than a case can hold", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const maxClocks = await escrow.MAX_CLOCKS();
      // Every stage but the first waits after its prerequisite: 15 waiting times to start, 15 clocks.
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, chain(16, DAY), EVERY_PARTY))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowTooManyClockStages")
        .withArgs(15, maxClocks);
    });

    it("accepts exactly as many clock stages as a case can hold", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const maxClocks = Number(await escrow.MAX_CLOCKS());
      const atLimit = chain(maxClocks + 1, DAY);
      await expect(escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, atLimit, EVERY_PARTY))
        .to.emit(escrow, "TemplateRegistered")
        .withArgs(templateIdOf(DEFINITION_HASH, atLimit), DEFINITION_HASH, 1, maxClocks + 1);
    });
  });

  describe("templateStages", function () {
    it("returns the stages exactly as registered", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      await escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, US_PURCHASE, EVERY_PARTY);
      const stored = await escrow.templateStages(templateIdOf(DEFINITION_HASH, US_PURCHASE));
      const plain = (rows: unknown[][]) => rows.map((r) => r.map((v) => (typeof v === "boolean" ? v : String(v))));
      expect(plain(Array.from(stored, (s) => [...s]))).to.deep.equal(plain(US_PURCHASE.map(ruleTuple)));
    });

    it("reverts for an unknown template id", async function () {
      const { escrow } = await loadFixture(deployEscrow);
      const unknown = templateIdOf(DEFINITION_HASH, SMALL_PURCHASE);
      await expect(escrow.templateStages(unknown))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownTemplate")
        .withArgs(unknown);
    });
  });

  describe("isTemplateRegistered", function () {
    it("is false before registration and true after", async function () {
      const { escrow, parties } = await loadFixture(deployEscrow);
      const id = templateIdOf(DEFINITION_HASH, SMALL_PURCHASE);
      expect(await escrow.isTemplateRegistered(id)).to.equal(false);
      await escrow.connect(parties.admin).registerTemplate(DEFINITION_HASH, SMALL_PURCHASE, EVERY_PARTY);
      expect(await escrow.isTemplateRegistered(id)).to.equal(true);
      expect(await escrow.isTemplateRegistered(templateIdOf(ethers.id("other"), SMALL_PURCHASE))).to.equal(false);
    });
  });
});
