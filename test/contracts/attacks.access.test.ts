import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  EVERY_PARTY,
  EVIDENCE,
  Role,
  type RoleName,
  SMALL_PURCHASE,
  caseTerms,
  getParties,
  openCase,
  registerTemplate,
  rule,
  roles,
  Action,
  DAY,
  SkipReason,
  signRevocation,
  signSignOff,
  type Parties,
} from "./fixtures";
import { expectSolvent, roleBit } from "./attacks.helpers";

const ACTORS = ["bank", "lawyer", "buyer", "seller", "stranger", "admin"] as const;
type ActorName = (typeof ACTORS)[number];
const ROLE_NAMES: RoleName[] = ["Bank", "Lawyer", "Buyer", "Seller"];
const ADMIN_ROLE = ethers.ZeroHash;

/** The role each actor holds in the fixture's cases (the stranger and the admin hold none). */
const HELD: Record<ActorName, RoleName | null> = {
  bank: "Bank",
  lawyer: "Lawyer",
  buyer: "Buyer",
  seller: "Seller",
  stranger: null,
  admin: null,
};

/** A SMALL_PURCHASE stage that requires each role. */
const STAGE_OF: Record<RoleName, number> = { Buyer: 0, Seller: 0, Lawyer: 1, Bank: 2 };

/**
 * Two ETH cases of the same parties: `fresh`, with no sign-off, and `signed`, where every role has signed
 * the stage that STAGE_OF names for it without completing any (stage 1 still waits for stage 0).
 */
async function deployTwoCases() {
  const parties = await getParties();
  const escrow = await ethers.deployContract("MortgageEscrow", [parties.admin.address]);
  const templateId = await registerTemplate(escrow, parties.admin, SMALL_PURCHASE);
  const fresh = await openCase(escrow, parties, templateId);
  const signed = await openCase(escrow, parties, templateId);
  for (const role of ROLE_NAMES) {
    const who = { Bank: parties.bank, Lawyer: parties.lawyer, Buyer: parties.buyer, Seller: parties.seller }[role];
    await (await escrow.connect(who).signOff(signed, STAGE_OF[role], Role[role], EVIDENCE)).wait();
  }
  return { escrow, parties, templateId, fresh, signed };
}

function actorOf(parties: Parties, name: ActorName): HardhatEthersSigner {
  return parties[name];
}

function rolesNotHeld(name: ActorName): RoleName[] {
  return ROLE_NAMES.filter((r) => r !== HELD[name]);
}

const ANOTHER_TEMPLATE = [rule({ roles: roles("Lawyer"), action: Action.Release, longStopSeconds: 30 * DAY })];

describe("MortgageEscrow attacks: every role against every function it must not call", function () {
  for (const name of ACTORS) {
    const isAdmin = name === "admin";

    describe(`the ${name}`, function () {
      if (isAdmin) {
        it("may register a template, pause, unpause and open a case for another bank (it is the operator)", async function () {
          const { escrow, parties, templateId } = await loadFixture(deployTwoCases);
          const admin = parties.admin;
          await expect(
            escrow.connect(admin).registerTemplate(ethers.id("another"), ANOTHER_TEMPLATE, EVERY_PARTY),
          ).to.emit(escrow, "TemplateRegistered");
          const terms = { ...caseTerms(parties, templateId), bank: parties.relayer.address };
          await expect(escrow.connect(admin).openCase(terms))
            .to.emit(escrow, "CaseOpened")
            .withArgs(3n, Object.values(terms));
          await expect(escrow.connect(admin).pause()).to.emit(escrow, "PauseChanged").withArgs(admin.address, true);
          await expect(escrow.connect(admin).unpause()).to.emit(escrow, "PauseChanged").withArgs(admin.address, false);
        });
      } else {
        it(`reverts when the ${name} registers a template`, async function () {
          const { escrow, parties } = await loadFixture(deployTwoCases);
          const actor = actorOf(parties, name);
          await expect(escrow.connect(actor).registerTemplate(ethers.id("another"), ANOTHER_TEMPLATE, EVERY_PARTY))
            .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
            .withArgs(actor.address, ADMIN_ROLE);
        });

        it(`reverts when the ${name} pauses`, async function () {
          const { escrow, parties } = await loadFixture(deployTwoCases);
          const actor = actorOf(parties, name);
          await expect(escrow.connect(actor).pause())
            .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
            .withArgs(actor.address, ADMIN_ROLE);
          expect(await escrow.paused()).to.equal(false);
        });

        it(`reverts when the ${name} unpauses`, async function () {
          const { escrow, parties } = await loadFixture(deployTwoCases);
          const actor = actorOf(parties, name);
          await (await escrow.connect(parties.admin).pause()).wait();
          await expect(escrow.connect(actor).unpause())
            .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
            .withArgs(actor.address, ADMIN_ROLE);
          expect(await escrow.paused()).to.equal(true);
        });

        it(`reverts when the ${name} opens a case for someone else's bank`, async function () {
          const { escrow, parties, templateId } = await loadFixture(deployTwoCases);
          const actor = actorOf(parties, name);
          const terms = { ...caseTerms(parties, templateId), bank: parties.relayer.address };
          await expect(escrow.connect(actor).openCase(terms))
            .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedOpener")
            .withArgs(actor.address);
          expect(await escrow.caseCount()).to.equal(2n);
        });
      }

      it(`reverts when the ${name} signs off as each role it does not hold`, async function () {
        const { escrow, parties, fresh } = await loadFixture(deployTwoCases);
        const actor = actorOf(parties, name);
        for (const role of rolesNotHeld(name)) {
          await expect(escrow.connect(actor).signOff(fresh, STAGE_OF[role], Role[role], EVIDENCE), role)
            .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
            .withArgs(fresh, actor.address, Role[role]);
        }
        expect((await escrow.caseOf(fresh)).signedOffRoles).to.equal(0n);
      });

      it(`skips, as InvalidSignature, the ${name}'s own signature relayed as each role it does not hold`, async function () {
        const { escrow, parties, fresh } = await loadFixture(deployTwoCases);
        const actor = actorOf(parties, name);
        for (const role of rolesNotHeld(name)) {
          const message = { caseId: fresh, stage: STAGE_OF[role], role: Role[role], epoch: 0, evidence: EVIDENCE };
          const signature = await signSignOff(escrow, actor, message);
          await expect(escrow.connect(actor).signOffWithSignatures([{ ...message, signature }]), role)
            .to.emit(escrow, "SignOffSkipped")
            .withArgs(fresh, STAGE_OF[role], Role[role], 0, SkipReason.InvalidSignature);
        }
        expect((await escrow.caseOf(fresh)).signedOffRoles).to.equal(0n);
      });

      it(`reverts when the ${name} revokes another party's sign-off, directly or by its own signature`, async function () {
        const { escrow, parties, signed } = await loadFixture(deployTwoCases);
        const actor = actorOf(parties, name);
        const before = (await escrow.caseOf(signed)).signedOffRoles;
        for (const role of rolesNotHeld(name)) {
          const stage = STAGE_OF[role];
          expect(before & roleBit(stage, Role[role]), `${role} has signed`).not.to.equal(0n);
          await expect(escrow.connect(actor).revokeSignOff(signed, stage, Role[role]), role)
            .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
            .withArgs(signed, actor.address, Role[role]);
          const signature = await signRevocation(escrow, actor, { caseId: signed, stage, role: Role[role], epoch: 0 });
          await expect(escrow.connect(actor).revokeSignOffWithSignature(signed, stage, Role[role], 0, signature), role)
            .to.be.revertedWithCustomError(escrow, "MortgageEscrowInvalidSignature")
            .withArgs(0, signed, stage, Role[role]);
        }
        expect((await escrow.caseOf(signed)).signedOffRoles).to.equal(before);
      });

      it(`reverts when the ${name} deposits as a payer it is not`, async function () {
        const { escrow, parties, fresh } = await loadFixture(deployTwoCases);
        const actor = actorOf(parties, name);
        const amount = ethers.parseEther("1");
        for (const payer of ["Bank", "Buyer"] as RoleName[]) {
          if (HELD[name] === payer) continue;
          await expect(escrow.connect(actor).deposit(fresh, Role[payer], amount, { value: amount }), payer)
            .to.be.revertedWithCustomError(escrow, "MortgageEscrowUnauthorizedParty")
            .withArgs(fresh, actor.address, Role[payer]);
        }
        // The lawyer and the seller are never payers, not even the lawyer or the seller themselves.
        for (const payer of ["Lawyer", "Seller"] as RoleName[]) {
          await expect(escrow.connect(actor).deposit(fresh, Role[payer], amount, { value: amount }), payer)
            .to.be.revertedWithCustomError(escrow, "MortgageEscrowNotAPayer")
            .withArgs(Role[payer]);
        }
        const c = await escrow.caseOf(fresh);
        expect([c.paidByBank, c.paidByBuyer]).to.deep.equal([0n, 0n]);
        await expectSolvent(escrow, [fresh]);
      });

      if (HELD[name] === null) {
        it(`reverts when the ${name}, not a party, votes to cancel`, async function () {
          const { escrow, parties, fresh } = await loadFixture(deployTwoCases);
          const actor = actorOf(parties, name);
          await expect(escrow.connect(actor).cancel(fresh))
            .to.be.revertedWithCustomError(escrow, "MortgageEscrowNotAParty")
            .withArgs(fresh, actor.address);
          expect((await escrow.caseOf(fresh)).cancelVotes).to.equal(0n);
        });
      } else {
        it(`counts the ${name}'s cancellation vote once, for its own role only`, async function () {
          const { escrow, parties, fresh } = await loadFixture(deployTwoCases);
          const actor = actorOf(parties, name);
          const role = Role[HELD[name]!];
          await expect(escrow.connect(actor).cancel(fresh)).to.emit(escrow, "CancellationVoted").withArgs(fresh, role);
          expect((await escrow.caseOf(fresh)).cancelVotes).to.equal(BigInt(1 << role));
          await expect(escrow.connect(actor).cancel(fresh))
            .to.be.revertedWithCustomError(escrow, "MortgageEscrowAlreadyVoted")
            .withArgs(fresh, actor.address);
        });
      }
    });
  }
});
