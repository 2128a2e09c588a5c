/**
 * Amendments by consent (issue 13): proposing, consenting directly and by relayed signatures, withdrawing,
 * and what each kind does when its last consent applies it (a deadline moved, terms changed with the money
 * that follows, a party replaced), with the attacks the issue names: a consent replayed on another case,
 * version or kind; a stale proposal applied after a newer one; a party replaced without its consent; a price
 * change that would strand or double money; an amendment racing the release.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { IMortgageEscrow, MortgageEscrow } from "../../typechain-types";
import {
  AmendmentKind,
  CASCADE,
  CONSENT_TYPES,
  ConsentSkip,
  DAY,
  DEFAULT_TERMS,
  EVERY_PARTY,
  SMALL_PURCHASE,
  SkipReason,
  US_PURCHASE,
  caseTerms,
  fundCase,
  getParties,
  openCase,
  partyFor,
  proposal,
  registerTemplate,
  Role,
  type RoleName,
  roles,
  rule,
  signConsent,
  signSignOff,
  signStage,
  stages,
  templateIdOf,
  walkSmallPurchaseToRelease,
} from "./fixtures";

const reason = (tag: string) => ethers.encodeBytes32String(tag);

/** The buyer and seller move deadlines; bank and buyer change terms (re-opening stage 0); the lawyer replaces. */
const RULES: IMortgageEscrow.AmendmentRulesStruct = {
  deadlineConsent: roles("Buyer", "Seller"),
  termsConsent: roles("Bank", "Buyer"),
  partyConsent: roles("Lawyer"),
  reopenedByTerms: stages(0),
};
/** A template that asks the bank alone: whatever it says, the contract adds the parties an amendment harms. */
const BANK_ONLY: IMortgageEscrow.AmendmentRulesStruct = {
  deadlineConsent: roles("Bank"),
  termsConsent: roles("Bank"),
  partyConsent: roles("Bank"),
  reopenedByTerms: 0,
};

const CASE_TERMS_TUPLE =
  "tuple(bytes32 templateId,address bank,address lawyer,address buyer,address seller,address asset,uint96 price,uint96 deposit,uint96 loan)";
const PROPOSAL_TUPLE =
  "tuple(uint8 kind,uint32 expiresAt,uint8 stage,bool longStop,uint32 deadline,uint96 price,uint96 deposit,uint96 loan,uint8 party,address account)";

async function deployWithAmendableCases() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const templateId = await registerTemplate(escrow, parties.admin, SMALL_PURCHASE, ethers.id("amendable@1"), RULES);
  const bankOnly = await registerTemplate(escrow, parties.admin, SMALL_PURCHASE, ethers.id("bank-only@1"), BANK_ONLY);
  const caseId = await openCase(escrow, parties, templateId);
  const bankOnlyCase = await openCase(escrow, parties, bankOnly);
  return { escrow, parties, templateId, bankOnly, caseId, bankOnlyCase };
}

async function soon(days = 7): Promise<number> {
  return (await time.latest()) + days * DAY;
}

async function propose(
  escrow: MortgageEscrow,
  signer: HardhatEthersSigner,
  caseId: bigint,
  role: number,
  p: IMortgageEscrow.AmendmentProposalStruct,
): Promise<number> {
  const id = await escrow.connect(signer).proposeAmendment.staticCall(caseId, role, p);
  await (await escrow.connect(signer).proposeAmendment(caseId, role, p)).wait();
  return Number(id);
}

function consent(escrow: MortgageEscrow, signer: HardhatEthersSigner, caseId: bigint, id: number, role: number) {
  return escrow.connect(signer).consentToAmendment(caseId, id, role);
}

async function signedConsent(
  escrow: MortgageEscrow,
  signer: HardhatEthersSigner,
  caseId: bigint,
  amendment: number,
  role: number,
  overrides: Partial<{ kind: number; version: number; epoch: number }> = {},
): Promise<IMortgageEscrow.SignedConsentStruct> {
  const a = await escrow.amendmentOf(caseId, amendment).catch(() => null);
  const message = {
    caseId,
    amendment,
    kind: overrides.kind ?? Number(a?.proposal.kind ?? 0),
    version: overrides.version ?? Number(a?.version ?? 0),
    role,
    epoch: overrides.epoch ?? 0,
  };
  return { caseId, amendment, role, epoch: message.epoch, signature: await signConsent(escrow, signer, message) };
}

/** The release's deadline (stage 2: 60 days from the opening) moved to `deadline`. */
const moveRelease = (expiresAt: number, deadline: number) =>
  proposal({ kind: AmendmentKind.Deadline, expiresAt, stage: 2, deadline });

describe("MortgageEscrow amendments", function () {
  describe("registerTemplate with amendment rules", function () {
    it("computes the id from the definition hash, the stages and the amendment rules", async function () {
      const { escrow, templateId } = await loadFixture(deployWithAmendableCases);
      expect(templateId).to.equal(templateIdOf(ethers.id("amendable@1"), SMALL_PURCHASE, RULES));
      expect(templateId).to.not.equal(templateIdOf(ethers.id("amendable@1"), SMALL_PURCHASE, EVERY_PARTY));
      const stored = await escrow.templateAmendmentRules(templateId);
      expect(stored.map(Number)).to.deep.equal([
        RULES.deadlineConsent,
        RULES.termsConsent,
        RULES.partyConsent,
        RULES.reopenedByTerms,
      ]);
    });

    it("reverts for the rules of an unknown template", async function () {
      const { escrow } = await loadFixture(deployWithAmendableCases);
      await expect(escrow.templateAmendmentRules(ethers.ZeroHash))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownTemplate")
        .withArgs(ethers.ZeroHash);
    });

    for (const [what, rules, tag] of [
      ["a kind no one consents to", { ...EVERY_PARTY, termsConsent: 0 }, "consent roles"],
      ["an unknown role", { ...EVERY_PARTY, partyConsent: 0x10 }, "consent roles"],
      ["re-opening an unknown stage", { ...EVERY_PARTY, reopenedByTerms: stages(4) }, "reopened stage unknown"],
      ["re-opening a binding stage", { ...EVERY_PARTY, reopenedByTerms: stages(1) }, "stage cannot reopen"],
      ["re-opening the releasing stage", { ...EVERY_PARTY, reopenedByTerms: stages(2) }, "stage cannot reopen"],
    ] as const) {
      it(`refuses ${what}`, async function () {
        const { escrow, parties } = await loadFixture(deployWithAmendableCases);
        await expect(escrow.connect(parties.admin).registerTemplate(ethers.id("bad"), SMALL_PURCHASE, rules))
          .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidAmendmentRules")
          .withArgs(reason(tag));
      });
    }

    it("refuses re-opening a stage that time alone completes", async function () {
      const { escrow, parties } = await loadFixture(deployWithAmendableCases);
      const timed = [...SMALL_PURCHASE, rule({ roles: 0, prerequisites: stages(3), waitSeconds: DAY })];
      await expect(
        escrow
          .connect(parties.admin)
          .registerTemplate(ethers.id("timed"), timed, { ...EVERY_PARTY, reopenedByTerms: stages(4) }),
      )
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidAmendmentRules")
        .withArgs(reason("stage cannot reopen"));
    });
  });

  describe("proposeAmendment", function () {
    it("records the proposal against the current version, the proposer's consent counted", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const p = moveRelease(await soon(), (await time.latest()) + 70 * DAY);
      await expect(escrow.connect(parties.buyer).proposeAmendment(caseId, Role.Buyer, p))
        .to.emit(escrow, "AmendmentProposed")
        .withArgs(caseId, 1, Role.Buyer, 0, roles("Buyer", "Seller"), anyValue)
        .and.to.emit(escrow, "AmendmentConsented")
        .withArgs(caseId, 1, Role.Buyer);
      const a = await escrow.amendmentOf(caseId, 1);
      expect(a.version).to.equal(0);
      expect(a.required).to.equal(roles("Buyer", "Seller"));
      expect(a.consents).to.equal(roles("Buyer"));
      expect(a.applied).to.equal(false);
      expect(a.proposal.deadline).to.equal(p.deadline);
      expect((await escrow.caseOf(caseId)).amendmentCount).to.equal(1);
    });

    it("applies at once when the proposer's consent is the only one needed", async function () {
      const { escrow, parties, bankOnlyCase } = await loadFixture(deployWithAmendableCases);
      const later = (await time.latest()) + 70 * DAY;
      await expect(
        escrow.connect(parties.bank).proposeAmendment(bankOnlyCase, Role.Bank, moveRelease(await soon(), later)),
      )
        .to.emit(escrow, "AmendmentApplied")
        .withArgs(bankOnlyCase, 1, 1, anyValue);
      expect((await escrow.stageOf(bankOnlyCase, 2)).deadline).to.equal(later);
    });

    it("does not count a proposer whose consent is not required", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await expect(
        escrow
          .connect(parties.bank)
          .proposeAmendment(caseId, Role.Bank, moveRelease(await soon(), (await time.latest()) + 70 * DAY)),
      ).to.not.emit(escrow, "AmendmentConsented");
      expect((await escrow.amendmentOf(caseId, 1)).consents).to.equal(0);
    });

    it("reverts for a caller that is not the role's party, and for a case not open", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const p = moveRelease(await soon(), (await time.latest()) + 70 * DAY);
      await expect(escrow.connect(parties.stranger).proposeAmendment(caseId, Role.Buyer, p))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
        .withArgs(caseId, parties.stranger.address, Role.Buyer);
      await expect(escrow.connect(parties.buyer).proposeAmendment(99, Role.Buyer, p))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase")
        .withArgs(99);
    });

    it("refuses a malformed proposal, naming what is wrong", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const now = await time.latest();
      const expiresAt = now + DAY;
      const cases: Array<[IMortgageEscrow.AmendmentProposalStruct, string, unknown[]]> = [
        [
          moveRelease(now, now + 70 * DAY),
          "MortgageEscrowInvalidAmendment",
          [caseId, reason("expiry not in the future")],
        ],
        [
          { ...moveRelease(expiresAt, now + 70 * DAY), price: 1n },
          "MortgageEscrowInvalidAmendment",
          [caseId, reason("unused field set")],
        ],
        [
          proposal({ kind: AmendmentKind.Terms, expiresAt, stage: 1, price: 1n, deposit: 1n }),
          "MortgageEscrowInvalidAmendment",
          [caseId, reason("unused field set")],
        ],
        [
          proposal({ kind: AmendmentKind.Party, expiresAt, deadline: 5, account: parties.stranger.address }),
          "MortgageEscrowInvalidAmendment",
          [caseId, reason("unused field set")],
        ],
        [
          proposal({ kind: AmendmentKind.Deadline, expiresAt, stage: 4, deadline: now }),
          "MortgageEscrowUnknownStage",
          [caseId, 4],
        ],
        [
          proposal({ kind: AmendmentKind.Deadline, expiresAt, stage: 0, deadline: now }),
          "MortgageEscrowInvalidAmendment",
          [caseId, reason("no movable deadline")],
        ],
        [
          proposal({ kind: AmendmentKind.Deadline, expiresAt, stage: 2, longStop: true, deadline: now }),
          "MortgageEscrowInvalidAmendment",
          [caseId, reason("no movable deadline")],
        ],
        [moveRelease(expiresAt, 0), "MortgageEscrowInvalidAmendment", [caseId, reason("zero deadline")]],
        [
          proposal({ kind: AmendmentKind.Terms, expiresAt, price: 101n, deposit: 50n, loan: 50n }),
          "MortgageEscrowPriceExceedsShares",
          [101n, 50n, 50n],
        ],
        [
          proposal({ kind: AmendmentKind.Party, expiresAt, party: Role.Seller }),
          "MortgageEscrowZeroParty",
          [Role.Seller],
        ],
        [
          proposal({ kind: AmendmentKind.Party, expiresAt, party: Role.Seller, account: parties.seller.address }),
          "MortgageEscrowInvalidAmendment",
          [caseId, reason("already the party")],
        ],
      ];
      for (const [p, error, args] of cases) {
        await expect(escrow.connect(parties.buyer).proposeAmendment(caseId, Role.Buyer, p), error)
          .to.be.revertedWithCustomError(escrow, error)
          .withArgs(...args);
      }
    });

    it("refuses to move the deadline of a completed stage, and a change of terms after the release", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await walkSmallPurchaseToRelease(escrow, parties, caseId);
      await signStage(escrow, parties, caseId, 2, "Lawyer");
      await expect(
        escrow.connect(parties.buyer).proposeAmendment(caseId, Role.Buyer, moveRelease(await soon(), await soon(90))),
      )
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowStageAlreadyCompleted")
        .withArgs(caseId, 2);
      const terms = proposal({ kind: AmendmentKind.Terms, expiresAt: await soon(), price: 1n, deposit: 1n });
      await expect(escrow.connect(parties.buyer).proposeAmendment(caseId, Role.Buyer, terms))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowAlreadyReleased")
        .withArgs(caseId);
    });

    describe("adds, whatever the template says, the consent of whom it harms", function () {
      const terms = (price: bigint, deposit: bigint, loan: bigint) => ({ price, deposit, loan });
      const { price, deposit, loan } = DEFAULT_TERMS;
      for (const [what, t, expected] of [
        ["the bank's, when the loan grows", terms(price, deposit - 1n, loan + 1n), roles("Bank")],
        ["the seller's, when the price falls", terms(price - 1n, deposit, loan), roles("Bank", "Seller")],
        ["the buyer's, when the deposit grows", terms(price, deposit + 1n, loan), roles("Bank", "Buyer")],
        ["the buyer's, when the price grows", terms(price + 1n, deposit + 1n, loan), roles("Bank", "Buyer")],
        [
          "no one else's, when price and loan fall alike",
          terms(price - 2n, deposit, loan - 2n),
          roles("Bank", "Seller"),
        ],
      ] as const) {
        it(`terms: ${what}`, async function () {
          const { escrow, parties, bankOnlyCase } = await loadFixture(deployWithAmendableCases);
          const p = proposal({ kind: AmendmentKind.Terms, expiresAt: await soon(), ...t });
          await expect(escrow.connect(parties.bank).proposeAmendment(bankOnlyCase, Role.Bank, p))
            .to.emit(escrow, "AmendmentProposed")
            .withArgs(bankOnlyCase, 1, Role.Bank, 0, expected, anyValue);
        });
      }

      it("party: the replaced party's, so that no one is replaced without its own consent", async function () {
        const { escrow, parties, bankOnlyCase } = await loadFixture(deployWithAmendableCases);
        const p = proposal({
          kind: AmendmentKind.Party,
          expiresAt: await soon(),
          party: Role.Buyer,
          account: parties.stranger.address,
        });
        await expect(escrow.connect(parties.bank).proposeAmendment(bankOnlyCase, Role.Bank, p))
          .to.emit(escrow, "AmendmentProposed")
          .withArgs(bankOnlyCase, 1, Role.Bank, 0, roles("Bank", "Buyer"), anyValue)
          .and.to.not.emit(escrow, "PartyReplaced");
        // The bank alone cannot finish it: the buyer keeps its role.
        await expect(consent(escrow, parties.bank, bankOnlyCase, 1, Role.Bank))
          .to.be.revertedWithCustomError(escrow, "MortgageEscrowConsentRefused")
          .withArgs(bankOnlyCase, 1, Role.Bank, ConsentSkip.AlreadyConsented);
        expect((await escrow.caseOf(bankOnlyCase)).parties[Role.Buyer]).to.equal(parties.buyer.address);
      });

      it("deadline: the buyer's for a move earlier before the release, not for a move later", async function () {
        const { escrow, parties, bankOnlyCase } = await loadFixture(deployWithAmendableCases);
        const deadline = Number((await escrow.stageOf(bankOnlyCase, 2)).deadline);
        await expect(
          escrow
            .connect(parties.bank)
            .proposeAmendment(bankOnlyCase, Role.Bank, moveRelease(await soon(), deadline - DAY)),
        )
          .to.emit(escrow, "AmendmentProposed")
          .withArgs(bankOnlyCase, 1, Role.Bank, 0, roles("Bank", "Buyer"), anyValue);
        // Stage 3's deadline counts from stage 2, which has not completed: not running, so no "later" to trust.
        await expect(
          escrow.connect(parties.bank).proposeAmendment(
            bankOnlyCase,
            Role.Bank,
            proposal({
              kind: AmendmentKind.Deadline,
              expiresAt: await soon(),
              stage: 3,
              deadline: deadline + 90 * DAY,
            }),
          ),
        )
          .to.emit(escrow, "AmendmentProposed")
          .withArgs(bankOnlyCase, 2, Role.Bank, 0, roles("Bank", "Buyer"), anyValue);
      });
    });
  });

  describe("consentToAmendment", function () {
    it("applies the amendment with its last consent: the version rises, the event names the terms replaced", async function () {
      const { escrow, parties, caseId, templateId } = await loadFixture(deployWithAmendableCases);
      const p = moveRelease(await soon(), (await time.latest()) + 70 * DAY);
      await propose(escrow, parties.buyer, caseId, Role.Buyer, p);
      const coder = ethers.AbiCoder.defaultAbiCoder();
      const t = caseTerms(parties, templateId);
      const opened = ethers.keccak256(
        coder.encode(
          ["uint256", CASE_TERMS_TUPLE],
          [caseId, [t.templateId, t.bank, t.lawyer, t.buyer, t.seller, t.asset, t.price, t.deposit, t.loan]],
        ),
      );
      await expect(consent(escrow, parties.seller, caseId, 1, Role.Seller))
        .to.emit(escrow, "AmendmentConsented")
        .withArgs(caseId, 1, Role.Seller)
        .and.to.emit(escrow, "AmendmentApplied")
        .withArgs(caseId, 1, 1, opened);
      expect((await escrow.caseOf(caseId)).termsVersion).to.equal(1);
      expect((await escrow.amendmentOf(caseId, 1)).applied).to.equal(true);
      expect((await escrow.stageOf(caseId, 2)).deadline).to.equal(p.deadline);

      // The next version's hash chains from this one and the proposal that made it.
      const next = moveRelease(await soon(), (await time.latest()) + 80 * DAY);
      await propose(escrow, parties.seller, caseId, Role.Seller, next);
      const asTuple = (q: IMortgageEscrow.AmendmentProposalStruct) => [
        q.kind,
        q.expiresAt,
        q.stage,
        q.longStop,
        q.deadline,
        q.price,
        q.deposit,
        q.loan,
        q.party,
        q.account,
      ];
      const version1 = ethers.keccak256(
        coder.encode(["bytes32", "uint256", "uint32", PROPOSAL_TUPLE], [opened, caseId, 1, asTuple(p)]),
      );
      expect((await escrow.amendmentOf(caseId, 2)).replacedTermsHash).to.equal(version1);
      await expect(consent(escrow, parties.buyer, caseId, 2, Role.Buyer))
        .to.emit(escrow, "AmendmentApplied")
        .withArgs(caseId, 2, 2, version1);
    });

    it("refuses a consent that cannot count, with the reason", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const p = moveRelease(await soon(1), (await time.latest()) + 70 * DAY);
      await propose(escrow, parties.buyer, caseId, Role.Buyer, p);
      const refused = (signer: HardhatEthersSigner, id: number, role: number, why: number) =>
        expect(consent(escrow, signer, caseId, id, role))
          .to.be.revertedWithCustomError(escrow, "MortgageEscrowConsentRefused")
          .withArgs(caseId, id, role, why);
      await refused(parties.bank, 1, Role.Bank, ConsentSkip.RoleNotRequired);
      await refused(parties.buyer, 1, Role.Buyer, ConsentSkip.AlreadyConsented);
      await refused(parties.seller, 2, Role.Seller, ConsentSkip.UnknownAmendment);
      await expect(consent(escrow, parties.buyer, caseId, 1, Role.Seller))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
        .withArgs(caseId, parties.buyer.address, Role.Seller);
      await time.increaseTo(Number(p.expiresAt) + 1);
      await refused(parties.seller, 1, Role.Seller, ConsentSkip.Expired);
    });

    it("refuses a consent to a stale proposal once a newer one applied (it leaves the case as it was)", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const first = moveRelease(await soon(), (await time.latest()) + 70 * DAY);
      const second = moveRelease(await soon(), (await time.latest()) + 80 * DAY);
      await propose(escrow, parties.buyer, caseId, Role.Buyer, first);
      await propose(escrow, parties.buyer, caseId, Role.Buyer, second);
      await consent(escrow, parties.seller, caseId, 2, Role.Seller);
      await expect(consent(escrow, parties.seller, caseId, 1, Role.Seller))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowConsentRefused")
        .withArgs(caseId, 1, Role.Seller, ConsentSkip.Superseded);
      await expect(consent(escrow, parties.seller, caseId, 2, Role.Seller))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowConsentRefused")
        .withArgs(caseId, 2, Role.Seller, ConsentSkip.AlreadyApplied);
      expect((await escrow.stageOf(caseId, 2)).deadline).to.equal(second.deadline);
    });

    it("refuses a consent on a case that has ended", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(await soon(), await soon(70)));
      for (const voter of [parties.bank, parties.lawyer, parties.buyer, parties.seller])
        await escrow.connect(voter).cancel(caseId);
      await expect(consent(escrow, parties.seller, caseId, 1, Role.Seller))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnexpectedCaseStatus")
        .withArgs(caseId, 4, 2);
    });
  });

  describe("consentToAmendmentsWithSignatures", function () {
    it("applies relayed consents of an EOA and of an ERC-1271 wallet", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithAmendableCases);
      const wallet = await ethers.deployContract("ERC1271Wallet", [parties.seller.address]);
      const t = { ...caseTerms(parties, templateId), seller: await wallet.getAddress() };
      const caseId = await escrow.connect(parties.bank).openCase.staticCall(t);
      await escrow.connect(parties.bank).openCase(t);
      await propose(escrow, parties.bank, caseId, Role.Bank, moveRelease(await soon(), await soon(70)));
      const items = [
        await signedConsent(escrow, parties.buyer, caseId, 1, Role.Buyer),
        await signedConsent(escrow, parties.seller, caseId, 1, Role.Seller), // the wallet's owner signs
      ];
      await expect(escrow.connect(parties.relayer).consentToAmendmentsWithSignatures(items))
        .to.emit(escrow, "AmendmentConsented")
        .withArgs(caseId, 1, Role.Seller)
        .and.to.emit(escrow, "AmendmentApplied")
        .withArgs(caseId, 1, 1, anyValue)
        .and.to.not.emit(escrow, "AmendmentConsentSkipped");
    });

    it("skips, never reverting the batch, a consent forged, replayed on another case, version or kind, stale or not counting", async function () {
      const { escrow, parties, caseId, bankOnlyCase } = await loadFixture(deployWithAmendableCases);
      await propose(escrow, parties.bank, caseId, Role.Bank, moveRelease(await soon(), await soon(70)));
      await propose(
        escrow,
        parties.bank,
        caseId,
        Role.Bank,
        proposal({ kind: AmendmentKind.Terms, expiresAt: await soon(), price: 90n, deposit: 20n, loan: 80n }),
      );
      // The buyer consents to amendment 1, then withdraws: its signature for epoch 0 is void.
      const stale = await signedConsent(escrow, parties.buyer, caseId, 1, Role.Buyer);
      await consent(escrow, parties.buyer, caseId, 1, Role.Buyer);
      await escrow.connect(parties.buyer).withdrawAmendmentConsent(caseId, 1, Role.Buyer);
      await propose(
        escrow,
        parties.bank,
        bankOnlyCase,
        Role.Bank,
        moveRelease(await soon(), (await time.latest()) + DAY),
      );
      const items = [
        await signedConsent(escrow, parties.stranger, caseId, 1, Role.Seller), // forged
        // Signed for the other case's amendment 1: replayed here.
        { ...(await signedConsent(escrow, parties.seller, bankOnlyCase, 1, Role.Seller)), caseId },
        await signedConsent(escrow, parties.seller, caseId, 1, Role.Seller, { version: 1 }), // another version
        await signedConsent(escrow, parties.seller, caseId, 1, Role.Seller, { kind: AmendmentKind.Terms }), // kind
        stale,
        await signedConsent(escrow, parties.lawyer, caseId, 1, Role.Lawyer), // not required
        await signedConsent(escrow, parties.seller, caseId, 9, Role.Seller), // unknown
        { ...(await signedConsent(escrow, parties.seller, 77n, 1, Role.Seller)), caseId: 77n }, // no such case
      ];
      const tx = escrow.connect(parties.relayer).consentToAmendmentsWithSignatures(items);
      const expected: Array<[bigint, number, number, number]> = [
        [caseId, Role.Seller, 0, ConsentSkip.InvalidSignature],
        [caseId, Role.Seller, 1, ConsentSkip.InvalidSignature],
        [caseId, Role.Seller, 2, ConsentSkip.InvalidSignature],
        [caseId, Role.Seller, 3, ConsentSkip.InvalidSignature],
        [caseId, Role.Buyer, 4, ConsentSkip.StaleEpoch],
        [caseId, Role.Lawyer, 5, ConsentSkip.RoleNotRequired],
      ];
      for (const [id, role, index, why] of expected) {
        await expect(tx).to.emit(escrow, "AmendmentConsentSkipped").withArgs(id, 1, role, index, why);
      }
      await expect(tx)
        .to.emit(escrow, "AmendmentConsentSkipped")
        .withArgs(caseId, 9, Role.Seller, 6, ConsentSkip.UnknownAmendment);
      await expect(tx)
        .to.emit(escrow, "AmendmentConsentSkipped")
        .withArgs(77n, 1, Role.Seller, 7, ConsentSkip.CaseNotOpen);
      await expect(tx).to.not.emit(escrow, "AmendmentConsented");
      // A fresh signature for the new epoch counts.
      const fresh = await signedConsent(escrow, parties.buyer, caseId, 1, Role.Buyer, { epoch: 1 });
      await expect(escrow.connect(parties.relayer).consentToAmendmentsWithSignatures([fresh]))
        .to.emit(escrow, "AmendmentConsented")
        .withArgs(caseId, 1, Role.Buyer);
    });

    it("skips a consent to a proposal superseded, applied or expired, and a terms change racing the release", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await walkSmallPurchaseToRelease(escrow, parties, caseId);
      const expiresAt = await soon(1);
      const terms = proposal({
        kind: AmendmentKind.Terms,
        expiresAt,
        price: 90n * 10n ** 18n,
        deposit: DEFAULT_TERMS.deposit,
        loan: DEFAULT_TERMS.loan,
      });
      await propose(escrow, parties.bank, caseId, Role.Bank, terms); // needs the buyer (and the seller: the price falls)
      await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(expiresAt, await soon(70)));
      await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(expiresAt, await soon(80)));
      const racing = await signedConsent(escrow, parties.buyer, caseId, 1, Role.Buyer);
      await signStage(escrow, parties, caseId, 2, "Lawyer"); // the release
      await consent(escrow, parties.seller, caseId, 3, Role.Seller);
      await expect(escrow.connect(parties.relayer).consentToAmendmentsWithSignatures([racing]))
        .to.emit(escrow, "AmendmentConsentSkipped")
        .withArgs(caseId, 1, Role.Buyer, 0, ConsentSkip.Superseded);
      await propose(
        escrow,
        parties.bank,
        caseId,
        Role.Bank,
        proposal({ kind: AmendmentKind.Deadline, expiresAt: await soon(1), stage: 3, deadline: await soon(30) }),
      );
      const items = [
        await signedConsent(escrow, parties.seller, caseId, 3, Role.Seller),
        await signedConsent(escrow, parties.seller, caseId, 2, Role.Seller),
      ];
      const tx = escrow.connect(parties.relayer).consentToAmendmentsWithSignatures(items);
      await expect(tx)
        .to.emit(escrow, "AmendmentConsentSkipped")
        .withArgs(caseId, 3, Role.Seller, 0, ConsentSkip.AlreadyApplied);
      await expect(tx)
        .to.emit(escrow, "AmendmentConsentSkipped")
        .withArgs(caseId, 2, Role.Seller, 1, ConsentSkip.Superseded);
      await time.increase(2 * DAY);
      await expect(
        escrow
          .connect(parties.relayer)
          .consentToAmendmentsWithSignatures([
            await signedConsent(escrow, parties.seller, caseId, 4, Role.Seller, { version: 1 }),
          ]),
      )
        .to.emit(escrow, "AmendmentConsentSkipped")
        .withArgs(caseId, 4, Role.Seller, 0, ConsentSkip.Expired);
    });

    it("skips a terms change racing the release: the release wins, the money as the terms of the release say", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await walkSmallPurchaseToRelease(escrow, parties, caseId);
      const cheaper = proposal({
        kind: AmendmentKind.Terms,
        expiresAt: await soon(),
        price: DEFAULT_TERMS.price - 10n,
        deposit: DEFAULT_TERMS.deposit,
        loan: DEFAULT_TERMS.loan,
      });
      await propose(escrow, parties.bank, caseId, Role.Bank, cheaper);
      await consent(escrow, parties.buyer, caseId, 1, Role.Buyer);
      await signStage(escrow, parties, caseId, 2, "Lawyer"); // released at the price agreed before
      const last = await signedConsent(escrow, parties.seller, caseId, 1, Role.Seller);
      await expect(escrow.connect(parties.relayer).consentToAmendmentsWithSignatures([last]))
        .to.emit(escrow, "AmendmentConsentSkipped")
        .withArgs(caseId, 1, Role.Seller, 0, ConsentSkip.AlreadyReleased);
      await expect(consent(escrow, parties.seller, caseId, 1, Role.Seller))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowConsentRefused")
        .withArgs(caseId, 1, Role.Seller, ConsentSkip.AlreadyReleased);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(DEFAULT_TERMS.price);
    });
  });

  describe("withdrawAmendmentConsent", function () {
    it("withdraws a consent until the amendment applies, raising the role's epoch", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(await soon(), await soon(70)));
      await expect(escrow.connect(parties.buyer).withdrawAmendmentConsent(caseId, 1, Role.Buyer))
        .to.emit(escrow, "AmendmentConsentWithdrawn")
        .withArgs(caseId, 1, Role.Buyer, 1);
      const a = await escrow.amendmentOf(caseId, 1);
      expect(a.consents).to.equal(0);
      expect(a.epochs).to.equal(1 << (4 * Role.Buyer));
      await expect(escrow.connect(parties.buyer).withdrawAmendmentConsent(caseId, 1, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNotConsented")
        .withArgs(caseId, 1, Role.Buyer);
      await consent(escrow, parties.buyer, caseId, 1, Role.Buyer);
      await consent(escrow, parties.seller, caseId, 1, Role.Seller);
      await expect(escrow.connect(parties.buyer).withdrawAmendmentConsent(caseId, 1, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowConsentRefused")
        .withArgs(caseId, 1, Role.Buyer, ConsentSkip.AlreadyApplied);
    });

    it("reverts for an unknown amendment, a stranger, and the sixteenth withdrawal", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await expect(escrow.connect(parties.buyer).withdrawAmendmentConsent(caseId, 1, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowConsentRefused")
        .withArgs(caseId, 1, Role.Buyer, ConsentSkip.UnknownAmendment);
      await expect(escrow.connect(parties.stranger).withdrawAmendmentConsent(caseId, 1, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
        .withArgs(caseId, parties.stranger.address, Role.Buyer);
      await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(await soon(), await soon(70)));
      for (let n = 0; n < 15; n++) {
        if (n > 0) await consent(escrow, parties.buyer, caseId, 1, Role.Buyer);
        await escrow.connect(parties.buyer).withdrawAmendmentConsent(caseId, 1, Role.Buyer);
      }
      await consent(escrow, parties.buyer, caseId, 1, Role.Buyer);
      await expect(escrow.connect(parties.buyer).withdrawAmendmentConsent(caseId, 1, Role.Buyer))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowTooManyWithdrawals")
        .withArgs(caseId, 1, Role.Buyer);
    });
  });

  describe("amendmentOf and consentDigest", function () {
    it("reverts for an unknown amendment or case", async function () {
      const { escrow, caseId } = await loadFixture(deployWithAmendableCases);
      await expect(escrow.amendmentOf(caseId, 1))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownAmendment")
        .withArgs(caseId, 1);
      await expect(escrow.amendmentOf(99, 1))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnknownCase")
        .withArgs(99);
    });

    it("gives the digest that the party's wallet signs", async function () {
      const { escrow, caseId } = await loadFixture(deployWithAmendableCases);
      const { chainId } = await ethers.provider.getNetwork();
      const message = { caseId, amendment: 3, kind: AmendmentKind.Party, version: 2, role: Role.Seller, epoch: 1 };
      const digest = ethers.TypedDataEncoder.hash(
        { name: "MortgageEscrow", version: "1", chainId, verifyingContract: await escrow.getAddress() },
        CONSENT_TYPES,
        message,
      );
      expect(await escrow.consentDigest(caseId, 3, AmendmentKind.Party, 2, Role.Seller, 1)).to.equal(digest);
    });
  });

  describe("a deadline amendment", function () {
    it("moves the release's deadline later: the case no longer expires at the old one, and does at the new", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const old = Number((await escrow.stageOf(caseId, 2)).deadline);
      const later = old + 10 * DAY;
      await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(await soon(), later));
      await consent(escrow, parties.seller, caseId, 1, Role.Seller);
      await time.increaseTo(old + 1);
      await expect(escrow.expire(caseId))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowNothingToExpire")
        .withArgs(caseId);
      await time.increaseTo(later + 1);
      await expect(escrow.expire(caseId)).to.emit(escrow, "CaseExpired").withArgs(caseId, 2);
    });

    it("moves it earlier, so that the case expires sooner", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const earlier = (await time.latest()) + 5 * DAY;
      await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(await soon(1), earlier));
      await consent(escrow, parties.seller, caseId, 1, Role.Seller);
      await time.increaseTo(earlier + 1);
      await expect(escrow.expire(caseId)).to.emit(escrow, "CaseExpired").withArgs(caseId, 2);
    });

    it("moves the long-stop, and a deadline whose anchor has not completed runs from the agreed time", async function () {
      const { escrow, parties } = await loadFixture(deployWithAmendableCases);
      const us = await registerTemplate(escrow, parties.admin, US_PURCHASE, ethers.id("us@1"));
      const caseId = await openCase(escrow, parties, us);
      const longStop = Number((await escrow.stageOf(caseId, 9)).deadline);
      const p = proposal({
        kind: AmendmentKind.Deadline,
        expiresAt: await soon(),
        stage: 9,
        longStop: true,
        deadline: longStop + 30 * DAY,
      });
      await propose(escrow, parties.bank, caseId, Role.Bank, p);
      for (const r of ["Lawyer", "Buyer", "Seller"] as RoleName[])
        await consent(escrow, partyFor(parties, r), caseId, 1, Role[r]);
      expect((await escrow.stageOf(caseId, 9)).deadline).to.equal(longStop + 30 * DAY);
      const recording = proposal({
        kind: AmendmentKind.Deadline,
        expiresAt: await soon(),
        stage: 10,
        deadline: longStop,
      });
      await propose(escrow, parties.bank, caseId, Role.Bank, recording);
      for (const r of ["Lawyer", "Buyer", "Seller"] as RoleName[])
        await consent(escrow, partyFor(parties, r), caseId, 2, Role[r]);
      expect((await escrow.stageOf(caseId, 10)).deadline).to.equal(longStop);
    });

    it("completes, in the applying transaction, a fully signed stage that only its missed deadline held back", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await signStage(escrow, parties, caseId, 0, "Buyer", "Seller");
      await signStage(escrow, parties, caseId, 1, "Lawyer", "Buyer");
      await time.increase(3 * DAY);
      await escrow.advance(caseId);
      await fundCase(escrow, parties, caseId);
      const deadline = Number((await escrow.stageOf(caseId, 2)).deadline);
      await time.increaseTo(deadline + 1);
      await signStage(escrow, parties, caseId, 2, "Bank", "Lawyer"); // too late: not completed
      expect((await escrow.caseOf(caseId)).released).to.equal(false);
      await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(await soon(), deadline + 20 * DAY));
      await expect(consent(escrow, parties.seller, caseId, 1, Role.Seller))
        .to.emit(escrow, "StageCompleted")
        .withArgs(caseId, 2);
      expect((await escrow.caseOf(caseId)).released).to.equal(true);
    });

    it("marks, after the release, a moved deadline overdue as any other", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await walkSmallPurchaseToRelease(escrow, parties, caseId);
      await signStage(escrow, parties, caseId, 2, "Lawyer");
      const soonAfter = (await time.latest()) + 2 * DAY;
      await propose(
        escrow,
        parties.buyer,
        caseId,
        Role.Buyer,
        proposal({ kind: AmendmentKind.Deadline, expiresAt: soonAfter, stage: 3, deadline: soonAfter }),
      );
      await consent(escrow, parties.seller, caseId, 1, Role.Seller);
      await time.increaseTo(soonAfter + 1);
      await expect(escrow.expire(caseId)).to.emit(escrow, "StageOverdue").withArgs(caseId, 3);
      expect((await escrow.caseOf(caseId)).overdueStages).to.equal(stages(3));
    });
  });

  describe("a terms amendment", function () {
    const expiresSoon = () => soon();

    it("credits a payer whose share shrank the excess at once, the escrow still funded", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await fundCase(escrow, parties, caseId);
      const cut = 10n * 10n ** 18n;
      const p = proposal({
        kind: AmendmentKind.Terms,
        expiresAt: await expiresSoon(),
        price: DEFAULT_TERMS.price - cut,
        deposit: DEFAULT_TERMS.deposit,
        loan: DEFAULT_TERMS.loan - cut,
      });
      await propose(escrow, parties.bank, caseId, Role.Bank, p);
      await expect(consent(escrow, parties.seller, caseId, 1, Role.Seller)).to.not.emit(escrow, "AmendmentApplied");
      await expect(consent(escrow, parties.buyer, caseId, 1, Role.Buyer))
        .to.emit(escrow, "Credited")
        .withArgs(caseId, parties.bank.address, cut)
        .and.to.not.emit(escrow, "EscrowNoLongerFunded");
      const c = await escrow.caseOf(caseId);
      expect([c.price, c.deposit, c.loan, c.paidByBank, c.funded]).to.deep.equal([
        p.price,
        p.deposit,
        p.loan,
        p.loan,
        true,
      ]);
    });

    it("makes a payer whose share grew pay the difference before the funding stages complete; nothing stranded or doubled", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await walkSmallPurchaseToRelease(escrow, parties, caseId); // funded, the bank's sign-off of the release in
      const more = 5n * 10n ** 18n;
      const p = proposal({
        kind: AmendmentKind.Terms,
        expiresAt: await expiresSoon(),
        price: DEFAULT_TERMS.price + more,
        deposit: DEFAULT_TERMS.deposit + more,
        loan: DEFAULT_TERMS.loan,
      });
      await propose(escrow, parties.buyer, caseId, Role.Buyer, p);
      await expect(consent(escrow, parties.bank, caseId, 1, Role.Bank))
        .to.emit(escrow, "EscrowNoLongerFunded")
        .withArgs(caseId);
      expect((await escrow.caseOf(caseId)).funded).to.equal(false);
      await signStage(escrow, parties, caseId, 2, "Lawyer");
      expect((await escrow.stageOf(caseId, 2)).status).to.equal(3); // waiting for funds
      await expect(escrow.connect(parties.buyer).deposit(caseId, Role.Buyer, more, { value: more }))
        .to.emit(escrow, "EscrowFunded")
        .withArgs(caseId)
        .and.to.emit(escrow, "StageCompleted")
        .withArgs(caseId, 2);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(p.price);
      expect(await escrow.creditOf(caseId, parties.buyer.address)).to.equal(0n);
      expect(await escrow.creditOf(caseId, parties.bank.address)).to.equal(0n);
      const escrowBalance = await ethers.provider.getBalance(await escrow.getAddress());
      expect(escrowBalance).to.be.at.least(BigInt(p.price));
    });

    it("funds the escrow, and completes the stages waiting for it, when a share shrinks to what was paid", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await signStage(escrow, parties, caseId, 0, "Buyer", "Seller");
      await signStage(escrow, parties, caseId, 1, "Lawyer", "Buyer");
      await time.increase(3 * DAY);
      await escrow.advance(caseId);
      await escrow
        .connect(parties.buyer)
        .deposit(caseId, Role.Buyer, DEFAULT_TERMS.deposit, { value: DEFAULT_TERMS.deposit });
      const paid = DEFAULT_TERMS.loan - 10n;
      await escrow.connect(parties.bank).deposit(caseId, Role.Bank, paid, { value: paid });
      await signStage(escrow, parties, caseId, 2, "Bank", "Lawyer");
      const p = proposal({
        kind: AmendmentKind.Terms,
        expiresAt: await expiresSoon(),
        price: DEFAULT_TERMS.price - 10n,
        deposit: DEFAULT_TERMS.deposit,
        loan: paid,
      });
      await propose(escrow, parties.bank, caseId, Role.Bank, p);
      await consent(escrow, parties.buyer, caseId, 1, Role.Buyer);
      await expect(consent(escrow, parties.seller, caseId, 1, Role.Seller))
        .to.emit(escrow, "EscrowFunded")
        .withArgs(caseId)
        .and.to.emit(escrow, "StageCompleted")
        .withArgs(caseId, 2);
      expect(await escrow.creditOf(caseId, parties.seller.address)).to.equal(p.price);
    });

    it("re-opens the template's stages for it: sign-offs cleared, their old signatures void", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const oldSignature = await signSignOff(escrow, parties.buyer, {
        caseId,
        stage: 0,
        role: Role.Buyer,
        epoch: 0,
        evidence: ethers.ZeroHash,
      });
      await signStage(escrow, parties, caseId, 0, "Buyer", "Seller");
      const p = proposal({ kind: AmendmentKind.Terms, expiresAt: await expiresSoon(), ...DEFAULT_TERMS });
      await propose(escrow, parties.bank, caseId, Role.Bank, p);
      await expect(consent(escrow, parties.buyer, caseId, 1, Role.Buyer))
        .to.emit(escrow, "StageReopened")
        .withArgs(caseId, 0);
      const stage0 = await escrow.stageOf(caseId, 0);
      expect([stage0.status, stage0.signedOffRoles]).to.deep.equal([1n, 0n]);
      const replay = {
        caseId,
        stage: 0,
        role: Role.Buyer,
        epoch: 0,
        evidence: ethers.ZeroHash,
        signature: oldSignature,
      };
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([replay]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(caseId, 0, Role.Buyer, 0, SkipReason.StaleEpoch);
      // Stage 1 completed after stage 0 completes again: a second change re-opens nothing.
      await signStage(escrow, parties, caseId, 0, "Buyer", "Seller");
      await signStage(escrow, parties, caseId, 1, "Lawyer", "Buyer");
      await time.increase(3 * DAY);
      await escrow.advance(caseId);
      await propose(escrow, parties.bank, caseId, Role.Bank, { ...p, expiresAt: await expiresSoon() });
      await expect(consent(escrow, parties.buyer, caseId, 2, Role.Buyer)).to.not.emit(escrow, "StageReopened");
    });
  });

  describe("a party amendment", function () {
    it("gives the role to the new address; past sign-offs stay, and credits stay with the address they were made to", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const [newBuyer] = (await ethers.getSigners()).slice(9);
      await signStage(escrow, parties, caseId, 0, "Buyer");
      await escrow
        .connect(parties.buyer)
        .deposit(caseId, Role.Buyer, DEFAULT_TERMS.deposit + 5n, { value: DEFAULT_TERMS.deposit + 5n });
      // A terms change credits the buyer's excess to the buyer's address of the time.
      await propose(
        escrow,
        parties.bank,
        caseId,
        Role.Bank,
        proposal({ kind: AmendmentKind.Terms, expiresAt: await soon(), ...DEFAULT_TERMS }),
      );
      await consent(escrow, parties.buyer, caseId, 1, Role.Buyer);
      expect(await escrow.creditOf(caseId, parties.buyer.address)).to.equal(5n);
      const p = proposal({
        kind: AmendmentKind.Party,
        expiresAt: await soon(),
        party: Role.Buyer,
        account: newBuyer.address,
      });
      await propose(escrow, parties.lawyer, caseId, Role.Lawyer, p);
      await expect(consent(escrow, parties.buyer, caseId, 2, Role.Buyer))
        .to.emit(escrow, "PartyReplaced")
        .withArgs(caseId, Role.Buyer, parties.buyer.address, newBuyer.address);
      expect((await escrow.caseOf(caseId)).parties[Role.Buyer]).to.equal(newBuyer.address);
      expect((await escrow.stageOf(caseId, 0)).signedOffRoles).to.equal(roles("Buyer"));
      await expect(escrow.connect(parties.buyer).signOff(caseId, 1, Role.Buyer, ethers.ZeroHash))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
        .withArgs(caseId, parties.buyer.address, Role.Buyer);
      await expect(escrow.connect(newBuyer).signOff(caseId, 1, Role.Buyer, ethers.ZeroHash)).to.emit(
        escrow,
        "SignedOff",
      );
      await expect(escrow.connect(parties.buyer).withdraw(caseId)).to.changeEtherBalance(parties.buyer, 5n);
      // Refunds of the role's deposit now go to its new address.
      for (const voter of [parties.bank, parties.lawyer, newBuyer, parties.seller])
        await escrow.connect(voter).cancel(caseId);
      expect(await escrow.creditOf(caseId, newBuyer.address)).to.equal(DEFAULT_TERMS.deposit);
    });
  });

  describe("an address holding two roles", function () {
    it("consents for each role apart", async function () {
      const { escrow, parties, templateId } = await loadFixture(deployWithAmendableCases);
      const t = { ...caseTerms(parties, templateId), seller: parties.buyer.address };
      const caseId = await escrow.connect(parties.bank).openCase.staticCall(t);
      await escrow.connect(parties.bank).openCase(t);
      await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(await soon(), await soon(70)));
      await expect(consent(escrow, parties.buyer, caseId, 1, Role.Seller)).to.emit(escrow, "AmendmentApplied");
    });
  });

  describe("the rarer paths", function () {
    it("refuses every field that its kind does not use", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const expiresAt = await soon();
      const set = {
        stage: { stage: 1 },
        longStop: { longStop: true },
        deadline: { deadline: 5 },
        price: { price: 1n },
        deposit: { deposit: 1n },
        loan: { loan: 1n },
        party: { party: Role.Seller },
        account: { account: parties.stranger.address },
      };
      const unused: Record<number, Array<keyof typeof set>> = {
        [AmendmentKind.Deadline]: ["price", "deposit", "loan", "party", "account"],
        [AmendmentKind.Terms]: ["stage", "longStop", "deadline", "party", "account"],
        [AmendmentKind.Party]: ["stage", "longStop", "deadline", "price", "deposit", "loan"],
      };
      for (const [kind, fields] of Object.entries(unused)) {
        for (const field of fields) {
          const base =
            Number(kind) === AmendmentKind.Deadline
              ? { stage: 2, deadline: await soon(70) }
              : Number(kind) === AmendmentKind.Party
                ? { party: Role.Seller, account: parties.stranger.address }
                : {};
          const p = proposal({ kind: Number(kind), expiresAt, ...base, ...set[field] });
          await expect(escrow.connect(parties.buyer).proposeAmendment(caseId, Role.Buyer, p), `${kind} ${field}`)
            .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidAmendment")
            .withArgs(caseId, reason("unused field set"));
        }
      }
    });

    for (const name of ["Bank", "Lawyer", "Seller"] as RoleName[]) {
      it(`replaces the ${name.toLowerCase()}, with its own consent`, async function () {
        const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
        const [next] = (await ethers.getSigners()).slice(11);
        const p = proposal({
          kind: AmendmentKind.Party,
          expiresAt: await soon(),
          party: Role[name],
          account: next.address,
        });
        const replaced = partyFor(parties, name);
        await propose(escrow, replaced, caseId, Role[name], p);
        if (name !== "Lawyer") {
          await expect(consent(escrow, parties.lawyer, caseId, 1, Role.Lawyer))
            .to.emit(escrow, "PartyReplaced")
            .withArgs(caseId, Role[name], replaced.address, next.address);
        }
        expect((await escrow.caseOf(caseId)).parties[Role[name]]).to.equal(next.address);
        const a = await escrow.amendmentOf(caseId, 1);
        expect([a.proposal.party, a.proposal.account]).to.deep.equal([BigInt(Role[name]), next.address]);
        // The next version's hash chains from a party amendment too.
        await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(await soon(), await soon(70)));
        expect((await escrow.amendmentOf(caseId, 2)).replacedTermsHash).to.not.equal(a.replacedTermsHash);
      });
    }

    it("proposes nothing on a case that has ended", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      for (const voter of [parties.bank, parties.lawyer, parties.buyer, parties.seller])
        await escrow.connect(voter).cancel(caseId);
      await expect(
        escrow.connect(parties.buyer).proposeAmendment(caseId, Role.Buyer, moveRelease(await soon(), await soon(70))),
      )
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnexpectedCaseStatus")
        .withArgs(caseId, 4, 2);
    });

    it("refuses a case's 65,536th proposal", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      // `_extras` is the storage contract's eleventh variable (slot 10); the count is bits 16-31 of its word.
      const slot = ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["uint256", "uint256"], [caseId, 10]));
      await ethers.provider.send("hardhat_setStorageAt", [
        await escrow.getAddress(),
        slot,
        ethers.toBeHex(0xffffn << 16n, 32),
      ]);
      expect((await escrow.caseOf(caseId)).amendmentCount).to.equal(0xffff);
      await expect(
        escrow.connect(parties.buyer).proposeAmendment(caseId, Role.Buyer, moveRelease(await soon(), await soon(70))),
      )
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowTooManyAmendments")
        .withArgs(caseId);
    });

    it("skips a relayed consent of a role that consented already; a relayed last consent completes the stage a deadline held back", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      await signStage(escrow, parties, caseId, 0, "Buyer", "Seller");
      await signStage(escrow, parties, caseId, 1, "Lawyer", "Buyer");
      await time.increase(3 * DAY);
      await escrow.advance(caseId);
      await fundCase(escrow, parties, caseId);
      const deadline = Number((await escrow.stageOf(caseId, 2)).deadline);
      await time.increaseTo(deadline + 1);
      await signStage(escrow, parties, caseId, 2, "Bank", "Lawyer");
      await propose(escrow, parties.buyer, caseId, Role.Buyer, moveRelease(await soon(), deadline + 20 * DAY));
      const items = [
        await signedConsent(escrow, parties.buyer, caseId, 1, Role.Buyer),
        await signedConsent(escrow, parties.seller, caseId, 1, Role.Seller),
      ];
      const tx = escrow.connect(parties.relayer).consentToAmendmentsWithSignatures(items);
      await expect(tx)
        .to.emit(escrow, "AmendmentConsentSkipped")
        .withArgs(caseId, 1, Role.Buyer, 0, ConsentSkip.AlreadyConsented);
      await expect(tx).to.emit(escrow, "StageCompleted").withArgs(caseId, 2);
    });

    it("re-opens, of its stages, only those completed, and moves a moved long-stop again", async function () {
      const { escrow, parties } = await loadFixture(deployWithAmendableCases);
      const rules = { ...EVERY_PARTY, reopenedByTerms: stages(0, 3) };
      const templateId = await registerTemplate(
        escrow,
        parties.admin,
        SMALL_PURCHASE,
        ethers.id("reopen-two@1"),
        rules,
      );
      const caseId = await openCase(escrow, parties, templateId);
      await signStage(escrow, parties, caseId, 0, "Buyer", "Seller");
      await propose(
        escrow,
        parties.bank,
        caseId,
        Role.Bank,
        proposal({ kind: AmendmentKind.Terms, expiresAt: await soon(), ...DEFAULT_TERMS }),
      );
      await consent(escrow, parties.seller, caseId, 1, Role.Seller);
      await consent(escrow, parties.lawyer, caseId, 1, Role.Lawyer);
      await expect(consent(escrow, parties.buyer, caseId, 1, Role.Buyer))
        .to.emit(escrow, "StageReopened")
        .withArgs(caseId, 0);

      const us = await registerTemplate(escrow, parties.admin, US_PURCHASE, ethers.id("us@1"));
      const usCase = await openCase(escrow, parties, us);
      const longStop = Number((await escrow.stageOf(usCase, 9)).deadline);
      for (const [n, by] of [
        [1, 30 * DAY],
        [2, 10 * DAY],
      ]) {
        const p = proposal({
          kind: AmendmentKind.Deadline,
          expiresAt: await soon(),
          stage: 9,
          longStop: true,
          deadline: longStop + by,
        });
        await propose(escrow, parties.bank, usCase, Role.Bank, p);
        for (const r of ["Lawyer", "Buyer", "Seller"] as RoleName[])
          await consent(escrow, partyFor(parties, r), usCase, n, Role[r]);
      }
      // The second move was earlier than the first: it needed the buyer, whom the template asks anyway.
      expect((await escrow.stageOf(usCase, 9)).deadline).to.equal(longStop + 10 * DAY);
    });

    it("reads the kept time of the deadline's anchor, wherever the case keeps it, to tell a move earlier from a later one", async function () {
      const { escrow, parties } = await loadFixture(deployWithAmendableCases);
      const count = 7;
      const chain = Array.from({ length: count }, (_, i) =>
        rule({
          roles: roles("Lawyer"),
          prerequisites: i === 0 ? 0 : stages(i - 1),
          waitSeconds: i === 0 ? 0 : DAY,
          deadlineSeconds: i === 0 ? 0 : 2 * DAY,
          deadlineAnchor: i,
          action: i === count - 1 ? 2 : 0,
          longStopSeconds: i === count - 1 ? 365 * DAY : 0,
        }),
      );
      const templateId = await registerTemplate(escrow, parties.admin, chain, ethers.id("clock-chain@1"), BANK_ONLY);
      const caseId = await openCase(escrow, parties, templateId);
      for (let i = 1; i < count; i++)
        await escrow.connect(parties.lawyer).signOff(caseId, i, Role.Lawyer, ethers.ZeroHash);
      await escrow.connect(parties.lawyer).signOff(caseId, 0, Role.Lawyer, ethers.ZeroHash);
      // A move later than the running deadline needs the bank alone; one earlier, the buyer too.
      const required = async (stage: number, by: number) => {
        const current = Number((await escrow.stageOf(caseId, stage)).deadline);
        const p = proposal({ kind: AmendmentKind.Deadline, expiresAt: await soon(), stage, deadline: current + by });
        const id = await escrow.connect(parties.lawyer).proposeAmendment.staticCall(caseId, Role.Lawyer, p);
        await escrow.connect(parties.lawyer).proposeAmendment(caseId, Role.Lawyer, p);
        return Number((await escrow.amendmentOf(caseId, id)).required);
      };
      expect(await required(1, DAY)).to.equal(roles("Bank")); // its anchor's time: clock 1, in the hot word
      expect(await required(1, -DAY)).to.equal(roles("Bank", "Buyer"));
      await time.increase(DAY);
      await escrow.advance(caseId);
      expect(await required(2, DAY)).to.equal(roles("Bank")); // clock 2, in the lawyer's slot
      await time.increase(DAY);
      await escrow.advance(caseId);
      await time.increase(DAY);
      await escrow.advance(caseId);
      expect(await required(4, DAY)).to.equal(roles("Bank")); // clock 6, in the extra word
    });

    it("asks the buyer when the price grows while the deposit does not", async function () {
      const { escrow, parties, bankOnlyCase } = await loadFixture(deployWithAmendableCases);
      const { price, deposit, loan } = DEFAULT_TERMS;
      const lower = proposal({ kind: AmendmentKind.Terms, expiresAt: await soon(), price: price - 10n, deposit, loan });
      await propose(escrow, parties.bank, bankOnlyCase, Role.Bank, lower);
      await consent(escrow, parties.seller, bankOnlyCase, 1, Role.Seller);
      const higher = { ...lower, price: price - 5n };
      await expect(escrow.connect(parties.bank).proposeAmendment(bankOnlyCase, Role.Bank, higher))
        .to.emit(escrow, "AmendmentProposed")
        .withArgs(bankOnlyCase, 2, Role.Bank, 1, roles("Bank", "Buyer"), anyValue);
    });

    it("re-opens a stage after others not to re-open, and refuses, whole, a change whose re-opening would overflow a counter", async function () {
      const { escrow, parties } = await loadFixture(deployWithAmendableCases);
      const rules = { ...EVERY_PARTY, reopenedByTerms: stages(1) };
      const templateId = await registerTemplate(escrow, parties.admin, CASCADE, ethers.id("cascade-reopen@1"), rules);
      const caseId = await openCase(escrow, parties, templateId);
      await signStage(escrow, parties, caseId, 1, "Seller");
      const change = async (id: number) => {
        await propose(
          escrow,
          parties.bank,
          caseId,
          Role.Bank,
          proposal({ kind: AmendmentKind.Terms, expiresAt: await soon(), ...DEFAULT_TERMS }),
        );
        await consent(escrow, parties.lawyer, caseId, id, Role.Lawyer);
        await consent(escrow, parties.seller, caseId, id, Role.Seller);
        return consent(escrow, parties.buyer, caseId, id, Role.Buyer);
      };
      await expect(change(1)).to.emit(escrow, "StageReopened").withArgs(caseId, 1);
      await signStage(escrow, parties, caseId, 1, "Seller");
      // The seller's revocation counter for stage 1 at its limit: re-opening cannot void its signatures.
      const inner = ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["uint256", "uint256"], [caseId, 8]));
      const slot = ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["uint256", "bytes32"], [0, inner]));
      const shift = BigInt((1 * 4 + Role.Seller) * 8);
      await ethers.provider.send("hardhat_setStorageAt", [
        await escrow.getAddress(),
        slot,
        ethers.toBeHex(0xffn << shift, 32),
      ]);
      await expect(change(2))
        .to.be.revertedWithCustomError(escrow, "MortgageEscrowTooManyRevocations")
        .withArgs(caseId, 1, Role.Seller);
    });

    it("refuses, from anyone but itself, the call by which the module completes stages", async function () {
      const { escrow, parties, caseId } = await loadFixture(deployWithAmendableCases);
      const selector = ethers.id("completeReadyStages(uint256,uint256)").slice(0, 10);
      const data = selector + ethers.AbiCoder.defaultAbiCoder().encode(["uint256", "uint256"], [caseId, 1]).slice(2);
      await expect(parties.stranger.sendTransaction({ to: await escrow.getAddress(), data })).to.be.reverted;
      await expect(parties.stranger.sendTransaction({ to: await escrow.getAddress(), data: "0x12345678" })).to.be
        .reverted;
      // A case whose seller is the escrow's own address: the seller's relayed signature is asked of the escrow
      // (ERC-1271), which calls itself with another selector, and is refused.
      const t = { ...caseTerms(parties, (await escrow.caseOf(caseId)).templateId), seller: await escrow.getAddress() };
      const selfCase = await escrow.connect(parties.bank).openCase.staticCall(t);
      await escrow.connect(parties.bank).openCase(t);
      const item = {
        caseId: selfCase,
        stage: 0,
        role: Role.Seller,
        epoch: 0,
        evidence: ethers.ZeroHash,
        signature: "0x",
      };
      await expect(escrow.connect(parties.relayer).signOffWithSignatures([item]))
        .to.emit(escrow, "SignOffSkipped")
        .withArgs(selfCase, 0, Role.Seller, 0, SkipReason.InvalidSignature);
    });
  });
});
