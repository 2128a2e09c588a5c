import { expect } from "chai";
import { type SnapshotRestorer, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import { CaseStatus, DAY, caseTerms, deployWithTemplate, openCase, signStage } from "./fixtures";

/**
 * Times past early 2106 no longer fit the contract's packed 32-bit fields (finding 6 of issue 10: the opening
 * time spilled into the stage count, and a completion time was cut silently). They are refused, never wrapped.
 */

const MAX_TIME = 2n ** 32n - 1n;

/** SMALL_PURCHASE registered, the chain's clock ten days before the 32-bit limit, one case opened then. */
async function deployCaseOpenedBeforeTheLimit() {
  const f = await deployWithTemplate();
  await time.setNextBlockTimestamp(MAX_TIME - 10n * BigInt(DAY));
  const caseId = await openCase(f.escrow, f.parties, f.templateId);
  return { ...f, caseId };
}

describe("MortgageEscrow times past 2106", function () {
  // The chain's clock only moves forward: each test starts from the chain as the file found it, and the files
  // after this one get it back as it was (not in 2106). No fixture is cached across these tests for that reason.
  let start: SnapshotRestorer;
  before(async function () {
    start = await takeSnapshot();
  });
  afterEach(async function () {
    await start.restore();
  });

  describe("openCase", function () {
    it("reverts with TimeOverflow when the block time no longer fits 32 bits", async function () {
      const { escrow, parties, templateId } = await deployWithTemplate();
      await time.setNextBlockTimestamp(MAX_TIME + 1n);

      await expect(escrow.connect(parties.bank).openCase(caseTerms(parties, templateId)))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowTimeOverflow")
        .withArgs(MAX_TIME + 1n, MAX_TIME);
      expect(await escrow.caseCount()).to.equal(0n);
    });

    it("opens a case at the last second that fits", async function () {
      const { escrow, parties, templateId } = await deployWithTemplate();
      await time.setNextBlockTimestamp(MAX_TIME);
      const caseId = await openCase(escrow, parties, templateId);

      const v = await escrow.caseOf(caseId);
      expect([v.openedAt, v.stageCount, v.status]).to.deep.equal([MAX_TIME, 4n, BigInt(CaseStatus.Open)]);
    });
  });

  describe("completing a stage whose time is recorded", function () {
    it("reverts with TimeOverflow rather than recording a wrapped time", async function () {
      const { escrow, parties, caseId } = await deployCaseOpenedBeforeTheLimit();
      await escrow.connect(parties.buyer).signOff(caseId, 0, 2, "0x" + "22".repeat(32));
      await time.setNextBlockTimestamp(MAX_TIME + 1n);

      // Stage 0's completion is the unlock time of stage 1 (which waits three days after it).
      await expect(escrow.connect(parties.seller).signOff(caseId, 0, 3, "0x" + "22".repeat(32)))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowTimeOverflow")
        .withArgs(MAX_TIME + 1n, MAX_TIME);
    });

    it("lets the case expire by its deadline instead", async function () {
      const { escrow, caseId } = await deployCaseOpenedBeforeTheLimit();
      await time.increase(61 * DAY);
      await expect(escrow.expire(caseId)).to.emit(escrow, "CaseExpired").withArgs(caseId, 2);
    });
  });

  describe("stageOf", function () {
    it("reads a deadline past the limit as the largest 32-bit time, not a wrapped one", async function () {
      const { escrow, caseId } = await deployCaseOpenedBeforeTheLimit();
      expect((await escrow.stageOf(caseId, 2)).deadline).to.equal(MAX_TIME);
    });

    it("reads a waiting stage's availability past the limit as the largest 32-bit time", async function () {
      const { escrow, parties, caseId } = await deployCaseOpenedBeforeTheLimit();
      await time.setNextBlockTimestamp(MAX_TIME - 1n * BigInt(DAY));
      await signStage(escrow, parties, caseId, 0, "Buyer", "Seller");

      expect((await escrow.stageOf(caseId, 1)).availableAt).to.equal(MAX_TIME);
    });
  });
});
