import { expect } from "chai";
import {
  MAX_SECONDS,
  WorkflowValidationError,
  checkWorkflow,
  compileWorkflow,
  validateWorkflow,
  type IssueCode,
  type WorkflowIssue,
} from "../../workflows";
import { getCalendar } from "../../workflows/calendars";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TEMPLATES_DIR } from "../../workflows";
import { chainOf, smallPurchase, withStage } from "./helpers";

/** The issues of a definition that must be rejected. */
function issuesOf(definition: unknown): WorkflowIssue[] {
  const result = checkWorkflow(definition);
  expect(result.ok, "the definition should be rejected").to.equal(false);
  return result.ok ? [] : result.issues;
}

/** Asserts exactly one issue, with this code, stage and message. */
function expectOnly(definition: unknown, code: IssueCode, stage: string | undefined, message: string | RegExp): void {
  const issues = issuesOf(definition);
  expect(issues, JSON.stringify(issues, null, 2)).to.have.length(1);
  expect(issues[0].code).to.equal(code);
  expect(issues[0].stage).to.equal(stage);
  if (typeof message === "string") expect(issues[0].message).to.equal(message);
  else expect(issues[0].message).to.match(message);
}

describe("workflows/validate", function () {
  describe("checkWorkflow", function () {
    it("accepts the small purchase and normalises it", function () {
      const result = checkWorkflow(smallPurchase());
      expect(result.ok).to.equal(true);
      if (!result.ok) return;
      expect(result.analysis.stages.map((s) => s.id)).to.deep.equal([
        "agreement",
        "exchange",
        "completion",
        "registration",
      ]);
      expect(result.analysis.workflow.timeZone).to.equal("Europe/London");
      expect(result.analysis.workflow.stages[0]).to.include({ action: "none", binding: false });
      // The completion of "completion" (the registration deadline's anchor) and the start of the exchange's wait.
      expect(result.analysis.clockCount).to.equal(2);
    });

    describe("the shape", function () {
      it("rejects an unknown role, naming the stage and the role", function () {
        expectOnly(
          withStage("exchange", (s) => ({ ...s, signedBy: ["lawyer", "notary" as never] })),
          "unknown-role",
          "exchange",
          'stage "exchange": unknown role "notary" (the roles are bank, lawyer, buyer, seller)',
        );
      });

      it("rejects a duration it cannot read, naming the stage", function () {
        expectOnly(
          withStage("exchange", (s) => ({ ...s, wait: "three days" })),
          "invalid-shape",
          "exchange",
          /^stage "exchange": wait: cannot read the duration "three days"/,
        );
      });

      it("rejects a zero duration", function () {
        expectOnly(
          withStage("exchange", (s) => ({ ...s, wait: "0 days" })),
          "invalid-shape",
          "exchange",
          /is zero/,
        );
      });

      it('rejects "opening" as a stage id, which deadlines use for the case\'s opening', function () {
        const def = smallPurchase();
        def.stages[0] = { ...def.stages[0], id: "opening" };
        def.stages[1] = { ...def.stages[1], after: ["opening"] };
        expectOnly(def, "invalid-shape", "opening", /^stage "opening": id: "opening" is reserved/);
      });

      it("rejects an unknown field, a missing title and a version that is not a positive integer", function () {
        const def = { ...smallPurchase(), version: 0, colour: "blue" } as unknown as Record<string, unknown>;
        (def.stages as Array<Record<string, unknown>>)[3] = {
          ...(def.stages as Array<Record<string, unknown>>)[3],
          title: undefined,
        };
        const issues = issuesOf(def);
        expect(issues.map((i) => i.message)).to.have.members([
          'workflow "small-purchase": version: Too small: expected number to be >0',
          'workflow "small-purchase": definition: Unrecognized key: "colour"',
          'stage "registration": title: Invalid input: expected string, received undefined',
        ]);
      });

      it("rejects a time zone that is not an IANA zone", function () {
        expectOnly(
          { ...smallPurchase(), timeZone: "Mars/Olympus" },
          "invalid-shape",
          undefined,
          /timeZone: not an IANA time zone/,
        );
      });
    });

    describe("the meaning", function () {
      it("rejects a prerequisite cycle, naming the stage and the cycle", function () {
        expectOnly(
          withStage("exchange", (s) => ({ ...s, after: ["agreement", "completion"] })),
          "prerequisite-cycle",
          "exchange",
          'stage "exchange": prerequisite cycle exchange -> completion -> exchange',
        );
      });

      it("rejects a stage that waits for itself", function () {
        expectOnly(
          withStage("agreement", (s) => ({ ...s, after: ["agreement"] })),
          "prerequisite-cycle",
          "agreement",
          'stage "agreement": prerequisite cycle agreement -> agreement',
        );
      });

      it("rejects an unknown stage in after", function () {
        expectOnly(
          withStage("completion", (s) => ({ ...s, after: ["exchange", "survey"] })),
          "unknown-stage",
          "completion",
          'stage "completion": "after" names an unknown stage "survey"',
        );
      });

      it("rejects a deadline from an unknown stage", function () {
        expectOnly(
          withStage("registration", (s) => ({ ...s, deadline: { within: "14 days", from: "complettion" } })),
          "unknown-stage",
          "registration",
          'stage "registration": the deadline counts from an unknown stage "complettion" (use "opening" or a stage id)',
        );
      });

      it("rejects a stage that no role signs and no time completes", function () {
        const message =
          'stage "registration": no role signs it and no time completes it (a stage that no one signs needs "after" and a "wait")';
        expectOnly(
          withStage("registration", (s) => ({ ...s, signedBy: [] })),
          "no-completion",
          "registration",
          message,
        );
        // A waiting time alone is not enough: the contract counts it from a prerequisite.
        expectOnly(
          withStage("registration", (s) => ({ ...s, signedBy: [], after: [], deadline: undefined, wait: "2 days" })),
          "no-completion",
          "registration",
          message,
        );
      });

      it("accepts a stage that time alone completes after its prerequisites", function () {
        expect(checkWorkflow(withStage("registration", (s) => ({ ...s, signedBy: [], wait: "2 days" }))).ok).to.equal(
          true,
        );
      });

      it("rejects more stages than the contract holds, naming the first stage too many", function () {
        expect(checkWorkflow(chainOf(16)).ok).to.equal(true);
        expectOnly(
          chainOf(17),
          "too-many-stages",
          "s17",
          'stage "s17": one stage too many: the workflow has 17 stages, more than the 16 the contract holds',
        );
      });

      it("rejects a duplicate stage id", function () {
        const def = smallPurchase();
        def.stages[3] = { ...def.stages[3], id: "exchange", after: ["completion"] };
        expectOnly(
          def,
          "duplicate-stage",
          "exchange",
          'stage "exchange": duplicate stage id (stages 2 and 4 both use it)',
        );
      });

      it("rejects a workflow with no releasing stage", function () {
        expectOnly(
          withStage("completion", (s) => ({ ...s, action: "require-funding" })),
          "release-count",
          undefined,
          'workflow "small-purchase": no stage releases the funds (exactly one stage must have "action": "release")',
        );
      });

      it("rejects a second releasing stage, naming it", function () {
        expectOnly(
          withStage("registration", (s) => ({ ...s, action: "release" })),
          "release-count",
          "registration",
          'stage "registration": a second releasing stage (stage "completion" releases already; exactly one may)',
        );
      });

      it("rejects a deadline from opening before the earliest moment the stage can complete", function () {
        expectOnly(
          withStage("completion", (s) => ({ ...s, wait: "2 days", deadline: { within: "3 days", from: "opening" } })),
          "deadline-before-earliest",
          "completion",
          'stage "completion": the deadline (within 3 days from opening, at most 4 days 1 hour) falls before the earliest moment the stage can complete (5 days after the opening)',
        );
      });

      it("rejects a deadline from an ancestor before the earliest moment the stage can complete after it", function () {
        expectOnly(
          withStage("registration", (s) => ({
            ...s,
            wait: "2 days",
            deadline: { within: "12 hours", from: "agreement" },
          })),
          "deadline-before-earliest",
          "registration",
          'stage "registration": the deadline (within 12 hours from agreement, at most 12 hours) falls before the earliest moment the stage can complete (5 days after "agreement" completes)',
        );
      });

      it("accepts a deadline exactly at the earliest completion", function () {
        expect(
          checkWorkflow(
            withStage("completion", (s) => ({
              ...s,
              wait: "9 hours",
              deadline: { within: "81 hours", from: "opening" },
            })),
          ).ok,
        ).to.equal(true);
      });

      it("counts a business-day wait at its floor and a business-day deadline at its ceiling", function () {
        const calendar = getCalendar("england-and-wales");
        const def = {
          ...withStage("exchange", (s) => ({ ...s, wait: "10 working days" })),
          longStop: { within: "365 days", basis: "a test's figure" },
        };
        const ok = withStage(
          "completion",
          (s) => ({ ...s, deadline: { within: "10 working days", from: "agreement" } }),
          def,
        );
        expect(checkWorkflow(ok).ok, "floor(10) <= ceiling(10) + a day").to.equal(true);
        const tooShort = withStage(
          "completion",
          (s) => ({ ...s, deadline: { within: "3 working days", from: "agreement" } }),
          def,
        );
        const issues = issuesOf(tooShort);
        expect(issues[0].code).to.equal("deadline-before-earliest");
        expect(calendar.floorSeconds(10)).to.be.greaterThan(calendar.ceilingSeconds(3) + 25 * 3600);
      });

      it("does not compare a deadline from a stage that is not an ancestor", function () {
        const def = withStage("agreement", (s) => ({ ...s, wait: "30 days" }));
        const parallel = {
          ...def,
          stages: [
            { id: "survey", title: "Survey", signedBy: ["lawyer" as const] },
            ...def.stages.map((s) =>
              s.id === "exchange" ? { ...s, deadline: { within: "1 hour", from: "survey" } } : s,
            ),
          ],
        };
        expect(checkWorkflow(parallel).ok).to.equal(true);
      });

      it("rejects a deadline from the stage itself or from a stage after it", function () {
        expectOnly(
          withStage("registration", (s) => ({ ...s, deadline: { within: "14 days", from: "registration" } })),
          "deadline-anchor",
          "registration",
          'stage "registration": the deadline counts from the stage\'s own completion',
        );
        expectOnly(
          withStage("exchange", (s) => ({ ...s, deadline: { within: "14 days", from: "registration" } })),
          "deadline-anchor",
          "exchange",
          'stage "exchange": the deadline counts from "registration", which cannot complete before this stage does',
        );
      });

      it("rejects deadlines that count from each other", function () {
        const def = smallPurchase();
        def.stages.push(
          { id: "survey", title: "Survey", signedBy: ["lawyer"], deadline: { within: "10 days", from: "searches" } },
          { id: "searches", title: "Searches", signedBy: ["lawyer"], deadline: { within: "10 days", from: "survey" } },
        );
        expectOnly(
          def,
          "deadline-anchor",
          "survey",
          /^stage "survey": deadlines and prerequisites form a cycle among "survey", "searches"/,
        );
      });

      it("rejects a waiting time longer than the contract's 32 bits of seconds", function () {
        expect(50_000 * 86_400).to.be.greaterThan(MAX_SECONDS);
        expectOnly(
          withStage("exchange", (s) => ({ ...s, wait: "50000 days" })),
          "too-long",
          "exchange",
          `stage "exchange": the wait "50000 days" is ${50_000 * 86_400} seconds, longer than the contract's ${MAX_SECONDS}`,
        );
      });

      it("rejects more kept times (deadline anchors, waiting times after prerequisites) than the contract keeps", function () {
        const anchored = (n: number) =>
          chainOf(16, (i) => (i > 0 && i <= n ? { deadline: { within: "30 days", from: `s${i}` } } : {}));
        expect(checkWorkflow(anchored(12)).ok).to.equal(true);
        expectOnly(
          anchored(13),
          "too-many-clocks",
          undefined,
          'workflow "chain": 13 times are needed (the completion of each deadline anchor and the start of each waiting time after prerequisites), more than the 12 the contract keeps',
        );
      });

      it("rejects a calendar that is not the jurisdiction's", function () {
        expectOnly(
          { ...smallPurchase(), calendar: "us-federal" },
          "calendar-mismatch",
          undefined,
          'workflow "small-purchase": the calendar "us-federal" is not the England and Wales one ("england-and-wales")',
        );
      });

      it("reports every problem at once", function () {
        const def = withStage("registration", (s) => ({ ...s, signedBy: [], action: "release" }));
        expect(issuesOf(def).map((i) => i.code)).to.deep.equal(["no-completion", "release-count"]);
      });
    });
  });

  describe("the amendment rules", function () {
    it("accepts rules per kind, a kind left out needing every party, and compiles them to role and stage masks", function () {
      const definition = {
        ...smallPurchase(),
        amendments: { deadline: ["seller", "buyer"], reopenedByTerms: ["agreement"] },
      };
      const compiled = compileWorkflow(definition);
      expect(compiled.amendmentRules).to.deep.equal({
        deadlineConsent: 0b1100,
        termsConsent: 0xf,
        partyConsent: 0xf,
        reopenedByTerms: 1 << compiled.stageIndex["agreement"],
      });
      // The roles are a set: their order does not change the hash.
      const reordered = { ...definition, amendments: { ...definition.amendments, deadline: ["buyer", "seller"] } };
      expect(compileWorkflow(reordered).definitionHash).to.equal(compiled.definitionHash);
    });

    it("rejects a kind that no one consents to", function () {
      const issues = issuesOf({ ...smallPurchase(), amendments: { terms: [] } });
      expect(issues.map((i) => i.message)).to.deep.equal([
        `workflow "small-purchase": amendments.terms: an amendment needs someone's consent: name at least one role`,
      ]);
    });

    it("rejects re-opening an unknown stage, and one that binds or moves money", function () {
      const issues = issuesOf({
        ...smallPurchase(),
        amendments: { reopenedByTerms: ["nowhere", "exchange", "completion"] },
      });
      // The stages are a set, checked in id order.
      expect(issues.map((i) => [i.code, i.stage])).to.deep.equal([
        ["amendment-rule", "completion"],
        ["amendment-rule", "exchange"],
        ["unknown-stage", undefined],
      ]);
      expect(issues[2].message).to.equal(
        `workflow "small-purchase": "reopenedByTerms" names an unknown stage "nowhere"`,
      );
    });
  });

  describe("the long-stop", function () {
    const noLongStop = (stage: string) =>
      `stage ${JSON.stringify(stage)}: the releasing stage has no deadline counted from the opening and the workflow has no "longStop": ` +
      `a case whose other deadlines never start (a party that never signs their anchor) could hold the deposits forever; ` +
      `add "longStop": { "within": "<duration>", "basis": "<the practice and its source>" } or a deadline from "opening"`;
    const longStop = { within: "90 days", basis: "a test's figure" };

    for (const [file, release] of [
      ["uk-purchase.json", "completion"],
      ["uk-remortgage.json", "completion"],
      ["us-purchase.json", "funding"],
    ] as const) {
      it(`refuses ${file} without its long-stop, naming the releasing stage ${JSON.stringify(release)}`, function () {
        const definition = JSON.parse(readFileSync(join(TEMPLATES_DIR, file), "utf8")) as Record<string, unknown>;
        delete definition.longStop;
        expectOnly(definition, "no-long-stop", release, noLongStop(release));
      });
    }

    it("refuses a releasing stage whose only deadline counts from another stage", function () {
      const def = withStage("completion", (s) => ({ ...s, deadline: { within: "60 days", from: "agreement" } }));
      expectOnly(def, "no-long-stop", "completion", noLongStop("completion"));
    });

    it("refuses a releasing stage with no deadline at all", function () {
      expectOnly(
        withStage("completion", (s) => ({ ...s, deadline: undefined })),
        "no-long-stop",
        "completion",
        noLongStop("completion"),
      );
    });

    it("accepts a releasing stage with a deadline counted from the opening and no long-stop", function () {
      expect(checkWorkflow(smallPurchase()).ok).to.equal(true);
    });

    it("accepts a long-stop in place of a deadline from the opening", function () {
      const def = {
        ...withStage("completion", (s) => ({ ...s, deadline: { within: "60 days", from: "exchange" } })),
        longStop,
      };
      expect(checkWorkflow(def).ok).to.equal(true);
    });

    it("rejects a long-stop that falls before the earliest moment the releasing stage can complete, naming it", function () {
      const def = {
        ...withStage("completion", (s) => ({ ...s, deadline: undefined, wait: "5 days" })),
        longStop: { ...longStop, within: "2 days" },
      };
      const issues = issuesOf(def);
      expect(issues, JSON.stringify(issues, null, 2)).to.have.length(1);
      expect(issues[0]).to.deep.equal({
        code: "deadline-before-earliest",
        stage: "completion",
        path: ["longStop", "within"],
        message:
          'stage "completion": the long-stop (within 2 days from opening, at most 3 days 1 hour) falls before the earliest moment the releasing stage can complete (8 days after the opening)',
      });
    });

    it("rejects a long-stop longer than the contract's 32 bits of seconds", function () {
      const def = { ...smallPurchase(), longStop: { ...longStop, within: "50000 days" } };
      const seconds = 50_000 * 86_400 + 25 * 3_600;
      expectOnly(
        def,
        "too-long",
        "completion",
        `stage "completion": the long-stop "50000 days" is ${seconds} seconds, longer than the contract's ${MAX_SECONDS}`,
      );
    });

    it("rejects a long-stop without its basis or with a duration it cannot read", function () {
      expectOnly(
        { ...smallPurchase(), longStop: { within: "90 days" } },
        "invalid-shape",
        undefined,
        /^workflow "small-purchase": longStop\.basis: /,
      );
      expectOnly(
        { ...smallPurchase(), longStop: { ...longStop, within: "a season" } },
        "invalid-shape",
        undefined,
        /^workflow "small-purchase": longStop\.within: cannot read the duration "a season"/,
      );
      expectOnly(
        { ...smallPurchase(), longStop: { ...longStop, from: "exchange" } },
        "invalid-shape",
        undefined,
        /^workflow "small-purchase": longStop: Unrecognized key: "from"/,
      );
    });
  });

  describe("validateWorkflow", function () {
    it("returns the normalised definition", function () {
      const workflow = validateWorkflow(
        withStage("exchange", (s) => ({ ...s, wait: "2 weeks", signedBy: ["buyer", "lawyer"] })),
      );
      expect(workflow.stages[1].wait).to.equal("14 days");
      expect(workflow.stages[1].signedBy).to.deep.equal(["lawyer", "buyer"]);
    });

    it("throws a WorkflowValidationError with a stable code and every issue", function () {
      try {
        validateWorkflow(withStage("exchange", (s) => ({ ...s, after: ["completion"] })));
        expect.fail("should have thrown");
      } catch (error) {
        expect(error).to.be.instanceOf(WorkflowValidationError);
        const e = error as WorkflowValidationError;
        expect(e.code).to.equal("WORKFLOW_INVALID");
        expect(e.retryable).to.equal(false);
        expect(e.workflowId).to.equal("small-purchase");
        expect(e.issues.map((i) => i.code)).to.deep.equal(["prerequisite-cycle"]);
        expect(e.message).to.contain('stage "exchange": prerequisite cycle exchange -> completion -> exchange');
      }
    });
  });
});
