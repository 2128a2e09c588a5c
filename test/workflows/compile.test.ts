import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import {
  type AmendmentRules,
  EVERY_PARTY_CONSENTS,
  compileWorkflow,
  encodeTemplate,
  loadTemplates,
  templateIdOf,
  type StageRule,
} from "../../workflows";
import { getCalendar } from "../../workflows/calendars";
import { STAGE_RULE_ABI, ruleFields, smallPurchase } from "./helpers";

const AMENDMENT_RULES_ABI = "tuple(uint8 deadlineConsent,uint8 termsConsent,uint8 partyConsent,uint16 reopenedByTerms)";

function ethersEncoding(
  definitionHash: string,
  stages: StageRule[],
  amendments: AmendmentRules = EVERY_PARTY_CONSENTS,
): string {
  return ethers.AbiCoder.defaultAbiCoder().encode(
    ["bytes32", `${STAGE_RULE_ABI}[]`, AMENDMENT_RULES_ABI],
    [
      definitionHash,
      stages.map(ruleFields),
      [amendments.deadlineConsent, amendments.termsConsent, amendments.partyConsent, amendments.reopenedByTerms],
    ],
  );
}

async function deployEscrow() {
  const [admin] = await ethers.getSigners();
  const escrow = await ethers.deployContract("MortgageEscrow", [admin.address]);
  return { escrow, admin };
}

describe("workflows/compile", function () {
  describe("compileWorkflow", function () {
    it("compiles the small purchase into the contract tests' SMALL_PURCHASE rules, in seconds", function () {
      const compiled = compileWorkflow(smallPurchase());
      expect(compiled.stages).to.deep.equal([
        {
          roles: 0b1100,
          prerequisites: 0,
          waitSeconds: 0,
          deadlineSeconds: 0,
          deadlineAnchor: 0,
          action: 0,
          binding: false,
          longStopSeconds: 0,
        },
        {
          roles: 0b0110,
          prerequisites: 0b1,
          waitSeconds: 3 * 86_400,
          deadlineSeconds: 0,
          deadlineAnchor: 0,
          action: 0,
          binding: true,
          longStopSeconds: 0,
        },
        // Deadlines in days run to the end of the last day, so on chain they get one local day (25 hours) more.
        {
          roles: 0b0011,
          prerequisites: 0b10,
          waitSeconds: 0,
          deadlineSeconds: 60 * 86_400 + 90_000,
          deadlineAnchor: 0,
          action: 2,
          binding: false,
          longStopSeconds: 0,
        },
        {
          roles: 0b0010,
          prerequisites: 0b100,
          waitSeconds: 0,
          deadlineSeconds: 14 * 86_400 + 90_000,
          deadlineAnchor: 3,
          action: 0,
          binding: false,
          longStopSeconds: 0,
        },
      ]);
      expect(compiled.stageIndex).to.deep.equal({ agreement: 0, exchange: 1, completion: 2, registration: 3 });
      expect(compiled.timeZone).to.equal("Europe/London");
    });

    it("orders stages topologically, keeping the definition's order where it can", function () {
      const def = smallPurchase();
      // registration first in the file, and a survey that nothing waits for between the others.
      def.stages = [
        def.stages[3],
        def.stages[2],
        { id: "survey", title: "Survey", signedBy: ["lawyer"] },
        def.stages[1],
        def.stages[0],
      ];
      const compiled = compileWorkflow(def);
      expect(compiled.details.map((d) => d.id)).to.deep.equal([
        "survey",
        "agreement",
        "exchange",
        "completion",
        "registration",
      ]);
      expect(compiled.stages[3].prerequisites).to.equal(1 << 2);
      expect(compiled.stages[4].deadlineAnchor).to.equal(3 + 1);
    });

    it("puts a deadline's anchor before the stage even when it is not a prerequisite", function () {
      const def = smallPurchase();
      def.stages[1] = { ...def.stages[1], deadline: { within: "30 days", from: "survey" } };
      def.stages.push({ id: "survey", title: "Survey", signedBy: ["lawyer"] });
      const compiled = compileWorkflow(def);
      expect(compiled.details.map((d) => d.id)).to.deep.equal([
        "agreement",
        "survey",
        "exchange",
        "completion",
        "registration",
      ]);
      expect(compiled.stages[2].deadlineAnchor).to.equal(2);
    });

    it("compiles the long-stop onto the releasing stage's longStopSeconds, at its ceiling, and 0 on every other stage", function () {
      const longStop = { within: "90 days", basis: "a test's figure" };
      const compiled = compileWorkflow({ ...smallPurchase(), longStop });
      expect(compiled.stages.map((r) => r.longStopSeconds)).to.deep.equal([0, 0, 90 * 86_400 + 90_000, 0]);
      // The stage's own deadline from the opening stays as it was: the contract takes the earlier of the two.
      expect(compiled.stages[2].deadlineSeconds).to.equal(60 * 86_400 + 90_000);
      expect(compiled.details[2].longStop).to.deep.equal(longStop);
      expect(compiled.details.filter((d) => d.longStop !== undefined).map((d) => d.id)).to.deep.equal(["completion"]);
    });

    it("counts a long-stop of business days to the end of the last one, at the calendar's ceiling", function () {
      const compiled = compileWorkflow({
        ...smallPurchase(),
        longStop: { within: "60 working days", basis: "a test's figure" },
      });
      const calendar = getCalendar("england-and-wales");
      expect(compiled.stages[2].longStopSeconds).to.equal(calendar.ceilingSeconds(60) + 25 * 3_600);
    });

    it("writes the long-stop's duration one way, so its spelling does not change the template", function () {
      const a = compileWorkflow({ ...smallPurchase(), longStop: { within: "12 weeks", basis: "b" } });
      const b = compileWorkflow({ ...smallPurchase(), longStop: { within: "84 calendar days", basis: "b" } });
      expect(a.workflow.longStop).to.deep.equal({ within: "84 days", basis: "b" });
      expect(a.templateId).to.equal(b.templateId);
      expect(
        compileWorkflow({ ...smallPurchase(), longStop: { within: "84 days", basis: "c" } }).definitionHash,
      ).not.to.equal(a.definitionHash);
    });

    it("throws a WorkflowValidationError for an invalid definition", function () {
      expect(() => compileWorkflow({ ...smallPurchase(), stages: [] })).to.throw(/stages: Too small/);
    });
  });

  describe("encodeTemplate and templateIdOf", function () {
    for (const template of loadTemplates()) {
      it(`encode ${template.workflow.id} exactly as ethers' AbiCoder and keccak256 do`, function () {
        const { definitionHash, stages, amendmentRules } = template;
        expect(encodeTemplate(definitionHash, stages, amendmentRules)).to.equal(
          ethersEncoding(definitionHash, stages, amendmentRules),
        );
        expect(templateIdOf(definitionHash, stages, amendmentRules)).to.equal(
          ethers.keccak256(ethersEncoding(definitionHash, stages, amendmentRules)),
        );
        expect(template.templateId).to.equal(ethers.keccak256(ethersEncoding(definitionHash, stages, amendmentRules)));
        // The amendment rules are part of the id: the same stages under other rules are another template.
        const others = { ...amendmentRules, partyConsent: amendmentRules.partyConsent === 0xf ? 0x7 : 0xf };
        expect(templateIdOf(definitionHash, stages, others)).to.not.equal(template.templateId);
      });
    }

    it("encodes eight words per stage, longStopSeconds last, exactly as ethers' AbiCoder does with the 8-field StageRule", function () {
      const tuple =
        "tuple(uint8 roles,uint16 prerequisites,uint32 waitSeconds,uint32 deadlineSeconds,uint8 deadlineAnchor,uint8 action,bool binding,uint32 longStopSeconds)";
      const compiled = compileWorkflow({
        ...smallPurchase(),
        longStop: { within: "90 days", basis: "a test's figure" },
      });
      const fields = (r: StageRule) => [
        r.roles,
        r.prerequisites,
        r.waitSeconds,
        r.deadlineSeconds,
        r.deadlineAnchor,
        r.action,
        r.binding,
        r.longStopSeconds,
      ];
      const expected = ethers.AbiCoder.defaultAbiCoder().encode(
        ["bytes32", `${tuple}[]`, AMENDMENT_RULES_ABI],
        [compiled.definitionHash, compiled.stages.map(fields), [0xf, 0xf, 0xf, 0]],
      );
      expect(compiled.amendmentRules).to.deep.equal(EVERY_PARTY_CONSENTS);
      expect(encodeTemplate(compiled.definitionHash, compiled.stages)).to.equal(expected);
      expect((expected.length - 2) / 64).to.equal(7 + 8 * compiled.stages.length);
      expect(compiled.templateId).to.equal(ethers.keccak256(expected));
    });

    it("encodes an empty list as the hash, the offset, the amendment rules and a zero length", function () {
      const hash = ethers.id("x");
      expect(encodeTemplate(hash, [])).to.equal(ethersEncoding(hash, []));
    });

    it("refuses a definition hash that is not a bytes32", function () {
      expect(() => encodeTemplate("0x1234", [])).to.throw("not a bytes32");
    });
  });

  describe("registerTemplate on chain", function () {
    for (const template of loadTemplates()) {
      it(`registers ${template.workflow.id} under the template id the compiler computed, with the same rules`, async function () {
        const { escrow, admin } = await loadFixture(deployEscrow);
        const id = await escrow
          .connect(admin)
          .registerTemplate.staticCall(template.definitionHash, template.stages, template.amendmentRules);
        expect(id).to.equal(template.templateId);
        await expect(
          escrow.connect(admin).registerTemplate(template.definitionHash, template.stages, template.amendmentRules),
        )
          .to.emit(escrow, "TemplateRegistered")
          .withArgs(template.templateId, template.definitionHash, 1, template.stages.length);
        const stored = await escrow.templateStages(template.templateId);
        expect(stored.map(ruleFields)).to.deep.equal(template.stages.map(ruleFields));
        const rules = await escrow.templateAmendmentRules(template.templateId);
        expect(rules.map(Number)).to.deep.equal(Object.values(template.amendmentRules));
      });

      it(`registers ${template.workflow.id} a second time as a no-op`, async function () {
        const { escrow, admin } = await loadFixture(deployEscrow);
        await (
          await escrow
            .connect(admin)
            .registerTemplate(template.definitionHash, template.stages, template.amendmentRules)
        ).wait();
        const again = compileWorkflow(JSON.parse(JSON.stringify(template.workflow)));
        expect(again.templateId).to.equal(template.templateId);
        await expect(
          escrow.connect(admin).registerTemplate(again.definitionHash, again.stages, again.amendmentRules),
        ).not.to.emit(escrow, "TemplateRegistered");
        expect(await escrow.isTemplateRegistered(template.templateId)).to.equal(true);
      });
    }
  });
});
