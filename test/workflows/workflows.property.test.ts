import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { type SnapshotFrom, initialTransition, transition } from "xstate";
import {
  type ContractEvent as CaseEvent,
  caseMachine,
  nextDeadlineMiss,
  nextWaitingTimeEnd,
} from "../../workflows/machine";
import { awaitedRoles, deadlineOf, isCompleted, prerequisitesComplete } from "../../workflows/case-rules";
import { STAGE_RULE_ABI, ruleFields } from "./helpers";
import {
  MAX_CLOCKS,
  ROLE_NAMES,
  checkWorkflow,
  compileWorkflow,
  encodeTemplate,
  hashWorkflow,
  type IssueCode,
  type WorkflowInput,
} from "../../workflows";

type StageInput = WorkflowInput["stages"][number];

/** One thing a party (or time) does to a case, drawn at random; `stage` and `role` are taken modulo the case's. */
const caseAction = fc.record({
  kind: fc.constantFrom(
    "sign",
    "revoke",
    "fund",
    "advance",
    "expire",
    "vote",
    "withdraw",
    "wait",
    "propose",
    "consent",
    "withdrawConsent",
  ),
  stage: fc.nat(),
  role: fc.nat({ max: 3 }),
  roles: fc.integer({ min: 1, max: 15 }),
  seconds: fc.nat({ max: 40 * 86_400 }),
});

type CaseState = SnapshotFrom<typeof caseMachine>;

function eventOf(
  snapshot: CaseState,
  action: { kind: string; stage: number; role: number; roles: number; seconds: number },
): CaseEvent {
  const { model, now } = snapshot.context;
  const stage = action.stage % model.rules.length;
  switch (action.kind) {
    case "sign":
      return { type: "SIGN_OFF", stage, role: action.role, at: now + 1 };
    case "revoke":
      return { type: "REVOKE", stage, role: action.role, at: now + 1 };
    case "fund":
      return { type: "FUNDED", at: now + 1 };
    case "advance":
      return { type: "ADVANCE", at: nextWaitingTimeEnd(model, now) ?? now + 1 + action.seconds };
    case "expire":
      return { type: "EXPIRE", at: nextDeadlineMiss(model, now) ?? now + 1 + action.seconds };
    case "vote":
      return { type: "CANCEL_VOTE", roles: action.roles, at: now + 1 };
    case "withdraw":
      return { type: "WITHDRAW_CANCEL_VOTE", roles: action.roles, at: now + 1 };
    case "propose":
      // A deadline moved to a later time than now (or a proposal the contract refuses: a stage with none).
      return {
        type: "PROPOSE_AMENDMENT",
        proposal: {
          proposer: action.role,
          expiresAt: now + 1 + action.seconds,
          content: { kind: "deadline", stage, longStop: (action.roles & 1) === 1, at: now + 1 + action.seconds },
          required: action.roles,
        },
        at: now + 1,
      };
    case "consent":
    case "withdrawConsent": {
      const amendment = 1 + (action.stage % ((model.amendments?.length ?? 0) + 1));
      const type = action.kind === "consent" ? "CONSENT" : "WITHDRAW_CONSENT";
      return { type, amendment, role: action.role, at: now + 1 };
    }
    default:
      // Time passes: an ADVANCE that nothing is ready for is ignored, but moves no clock either, so sign later.
      return { type: "SIGN_OFF", stage, role: action.role, at: now + 1 + action.seconds };
  }
}

const UNITS = ["days", "hours", "business days", "working days", "weeks"] as const;

/**
 * Random valid definitions: 1-16 stages generated in dependency order (each waits only for earlier ones),
 * then listed in a random order so the compiler has to sort them. Deadlines are long enough for any chain of
 * waits (16 stages of at most 10 weeks each); the number of stages whose completion time is needed is kept
 * within the contract's 12 by dropping the rules that would pass it.
 */
const validDefinition: fc.Arbitrary<WorkflowInput> = fc.integer({ min: 1, max: 16 }).chain((n) =>
  fc
    .record({
      stages: fc.tuple(
        ...Array.from({ length: n }, (_, i) =>
          fc.record({
            signedBy: fc.subarray([...ROLE_NAMES]),
            after: fc.subarray(Array.from({ length: i }, (_, k) => k)),
            wait: fc.option(fc.record({ amount: fc.integer({ min: 1, max: 10 }), unit: fc.constantFrom(...UNITS) }), {
              nil: undefined,
            }),
            deadline: fc.option(
              fc.record({
                anchor: fc.option(fc.nat(), { nil: undefined }),
                days: fc.integer({ min: 1200, max: 4000 }),
              }),
              {
                nil: undefined,
              },
            ),
            funding: fc.boolean(),
            binding: fc.boolean(),
          }),
        ),
      ),
      release: fc.nat({ max: n - 1 }),
      fileOrder: fc.shuffledSubarray(
        Array.from({ length: n }, (_, k) => k),
        { minLength: n, maxLength: n },
      ),
      version: fc.integer({ min: 1, max: 1_000_000 }),
      us: fc.boolean(),
      longStopDays: fc.option(fc.integer({ min: 1200, max: 4000 }), { nil: undefined }),
    })
    .map(({ stages, release, fileOrder, version, us, longStopDays }) => {
      const id = (i: number) => `stage-${i}`;
      // The times the contract keeps: anchors' completions, and the starts of waits after prerequisites.
      const anchors = new Set<number>();
      let waits = 0;
      const built: StageInput[] = stages.map((s, i) => {
        const stage: StageInput = { id: id(i), title: `Stage ${i}`, signedBy: s.signedBy, after: s.after.map(id) };
        if (s.wait) stage.wait = `${s.wait.amount} ${s.wait.unit}`;
        if (s.deadline) {
          const anchor = s.deadline.anchor === undefined || i === 0 ? undefined : s.deadline.anchor % i;
          stage.deadline = { within: `${s.deadline.days} days`, from: anchor === undefined ? "opening" : id(anchor) };
        }
        const neededAnchors = new Set(anchors);
        if (stage.deadline && stage.deadline.from !== "opening")
          neededAnchors.add(Number(stage.deadline.from.slice(6)));
        const neededWaits = waits + (stage.wait && s.after.length > 0 ? 1 : 0);
        if (neededAnchors.size + neededWaits > MAX_CLOCKS) {
          delete stage.wait;
          delete stage.deadline;
        } else {
          neededAnchors.forEach((a) => anchors.add(a));
          waits = neededWaits;
        }
        if (stage.signedBy.length === 0 && (stage.after!.length === 0 || !stage.wait)) stage.signedBy = ["lawyer"];
        stage.action = i === release ? "release" : s.funding ? "require-funding" : "none";
        stage.binding = s.binding;
        return stage;
      });
      // The releasing stage needs a deadline from the opening, or the workflow a long-stop.
      const days = longStopDays ?? (built[release].deadline?.from === "opening" ? undefined : 3650);
      return {
        id: "random",
        ...(days === undefined ? {} : { longStop: { within: `${days} days`, basis: "a random figure" } }),
        version,
        jurisdiction: us ? ("US" as const) : ("England and Wales" as const),
        calendar: us ? ("us-federal" as const) : ("england-and-wales" as const),
        title: "A random workflow",
        roles: { bank: "Lender", lawyer: "Lawyer", buyer: "Buyer", seller: "Seller" },
        stages: fileOrder.map((k) => built[k]),
      };
    }),
);

async function deployEscrow() {
  const [admin] = await ethers.getSigners();
  const escrow = await ethers.deployContract("MortgageEscrow", [admin.address]);
  return { escrow, admin };
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The same value with object keys in a random order (from `seed`) and arrays of sets shuffled. */
function relayout(value: unknown, seed: number): unknown {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0), s / 2 ** 32);
  const shuffle = <T>(xs: T[]) =>
    xs
      .map((x) => [rand(), x] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, x]) => x);
  const walk = (v: unknown, key?: string): unknown => {
    if (Array.isArray(v)) return (key === "signedBy" || key === "after" ? shuffle(v) : v).map((x) => walk(x));
    if (v && typeof v === "object")
      return Object.fromEntries(shuffle(Object.entries(v)).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  return walk(value);
}

/** A breaking change and what the validator must say about it. */
interface Breakage {
  definition: unknown;
  code: IssueCode;
  stage?: string;
}

const breakings: Record<string, (def: WorkflowInput, pick: number) => Breakage | undefined> = {
  "drop a referenced stage": (def, pick) => {
    const referenced = def.stages.filter((s) =>
      def.stages.some((o) => o.after?.includes(s.id) || o.deadline?.from === s.id),
    );
    if (referenced.length === 0) return undefined;
    const dropped = referenced[pick % referenced.length].id;
    const stages = def.stages.filter((s) => s.id !== dropped);
    const referrer = stages.find((o) => o.after?.includes(dropped) || o.deadline?.from === dropped)!;
    return { definition: { ...def, stages }, code: "unknown-stage", stage: referrer.id };
  },
  "add a cycle": (def, pick) => {
    const withAfter = def.stages.filter((s) => (s.after ?? []).length > 0);
    if (withAfter.length === 0) return undefined;
    const stage = withAfter[pick % withAfter.length];
    const prerequisite = stage.after![pick % stage.after!.length];
    const stages = def.stages.map((s) => (s.id === prerequisite ? { ...s, after: [...(s.after ?? []), stage.id] } : s));
    return { definition: { ...def, stages }, code: "prerequisite-cycle" };
  },
  "an unknown role": (def, pick) => {
    const stages = clone(def.stages);
    const stage = stages[pick % stages.length];
    stage.signedBy = [...stage.signedBy, "notary" as never];
    return { definition: { ...def, stages }, code: "unknown-role", stage: stage.id };
  },
  "a duplicate id": (def, pick) => {
    if (def.stages.length < 2) return undefined;
    const stages = clone(def.stages);
    const j = 1 + (pick % (stages.length - 1));
    stages[j].id = stages[0].id;
    return { definition: { ...def, stages }, code: "duplicate-stage", stage: stages[0].id };
  },
  "17 stages": (def) => {
    const extra = Array.from({ length: 17 - def.stages.length }, (_, k) => ({
      id: `extra-${k}`,
      title: "Extra",
      signedBy: ["lawyer" as const],
    }));
    const stages = [...def.stages, ...extra];
    return { definition: { ...def, stages }, code: "too-many-stages", stage: stages[16].id };
  },
  "two releases": (def, pick) => {
    if (def.stages.length < 2) return undefined;
    const releasing = def.stages.findIndex((s) => s.action === "release");
    const other = (releasing + 1 + (pick % (def.stages.length - 1))) % def.stages.length;
    const stages = def.stages.map((s, k) => (k === other ? { ...s, action: "release" as const } : s));
    return { definition: { ...def, stages }, code: "release-count", stage: stages[Math.max(releasing, other)].id };
  },
  "no release": (def) => {
    const stages = def.stages.map((s) => (s.action === "release" ? { ...s, action: "none" as const } : s));
    return { definition: { ...def, stages }, code: "release-count" };
  },
  "a deadline before the earliest completion": (def, pick) => {
    const stages = clone(def.stages);
    const stage = stages[pick % stages.length];
    stage.wait = "5 days";
    stage.deadline = { within: "3 days", from: "opening" };
    return { definition: { ...def, stages }, code: "deadline-before-earliest", stage: stage.id };
  },
  "no long-stop": (def) => {
    const stages = def.stages.map((s) =>
      s.action === "release" && s.deadline?.from === "opening" ? { ...s, deadline: undefined } : s,
    );
    const { longStop: _dropped, ...rest } = def;
    return {
      definition: { ...rest, stages },
      code: "no-long-stop",
      stage: stages.find((s) => s.action === "release")!.id,
    };
  },
  "a long-stop before the earliest completion": (def) => {
    const stages = def.stages.map((s) => (s.action === "release" ? { ...s, wait: "5 days" } : s));
    const release = stages.find((s) => s.action === "release")!;
    return {
      definition: { ...def, stages, longStop: { within: "1 hour", basis: "too short" } },
      code: "deadline-before-earliest",
      stage: release.id,
    };
  },
};

describe("workflows (properties)", function () {
  it("compiles every valid definition, and the contract registers it under the compiler's template id", async function () {
    const { escrow, admin } = await loadFixture(deployEscrow);
    const coder = ethers.AbiCoder.defaultAbiCoder();
    await fc.assert(
      fc.asyncProperty(validDefinition, async (def) => {
        const compiled = compileWorkflow(def);
        expect(compiled.stages).to.have.length(def.stages.length);
        const encoded = encodeTemplate(compiled.definitionHash, compiled.stages, compiled.amendmentRules);
        const r = compiled.amendmentRules;
        expect(encoded).to.equal(
          coder.encode(
            ["bytes32", `${STAGE_RULE_ABI}[]`, "tuple(uint8,uint8,uint8,uint16)"],
            [
              compiled.definitionHash,
              compiled.stages.map(ruleFields),
              [r.deadlineConsent, r.termsConsent, r.partyConsent, r.reopenedByTerms],
            ],
          ),
        );
        const id = await escrow
          .connect(admin)
          .registerTemplate.staticCall(compiled.definitionHash, compiled.stages, compiled.amendmentRules);
        expect(id).to.equal(compiled.templateId);
      }),
      { numRuns: 60 },
    );
  });

  it("gives the same hash for any key order, layout and order of sets", function () {
    fc.assert(
      fc.property(validDefinition, fc.integer(), fc.integer({ min: 0, max: 8 }), (def, seed, indent) => {
        const text = JSON.stringify(relayout(def, seed), null, indent);
        expect(hashWorkflow(JSON.parse(text))).to.equal(hashWorkflow(def));
      }),
      { numRuns: 100 },
    );
  });

  it("gives another hash for any change of meaning, the version included", function () {
    const changes: Array<(def: WorkflowInput, pick: number) => WorkflowInput> = [
      (def) => ({ ...def, version: def.version + 1 }),
      (def) => ({ ...def, title: `${def.title}!` }),
      (def, pick) => ({
        ...def,
        stages: def.stages.map((s, k) => (k === pick % def.stages.length ? { ...s, title: `${s.title}.` } : s)),
      }),
      (def, pick) => ({
        ...def,
        stages: def.stages.map((s, k) => (k === pick % def.stages.length ? { ...s, binding: !s.binding } : s)),
      }),
      (def, pick) => ({
        ...def,
        stages: def.stages.map((s, k) =>
          k === pick % def.stages.length
            ? {
                ...s,
                signedBy: s.signedBy.includes("seller")
                  ? s.signedBy.filter((r) => r !== "seller")
                  : [...s.signedBy, "seller" as const],
              }
            : s,
        ),
      }),
      (def, pick) => ({
        ...def,
        stages: def.stages.map((s, k) =>
          k === pick % def.stages.length ? { ...s, wait: s.wait === "11 hours" ? "12 hours" : "11 hours" } : s,
        ),
      }),
    ];
    fc.assert(
      fc.property(validDefinition, fc.nat(), fc.nat({ max: changes.length - 1 }), (def, pick, which) => {
        expect(hashWorkflow(changes[which](def, pick))).not.to.equal(hashWorkflow(def));
      }),
      { numRuns: 200 },
    );
  });

  it("brings every case to an end by time and the honest parties alone, whichever parties stop acting and when, deadlines moved by amendment included", function () {
    const OPENED_AT = 1_750_000_000;
    fc.assert(
      fc.property(
        validDefinition,
        fc.array(caseAction, { maxLength: 40 }),
        fc.nat({ max: 15 }),
        (def, actions, silentRoles) => {
          const compiled = compileWorkflow(def);
          const release = compiled.details.find((d) => d.action === "release")!;
          let [snapshot] = initialTransition(caseMachine, { workflow: compiled, openedAt: OPENED_AT });
          for (const action of actions) [snapshot] = transition(caseMachine, snapshot, eventOf(snapshot, action));

          // Time alone: every party silent from here, only expiry called when a deadline is missed.
          let alone = snapshot;
          for (let step = 0; alone.value === "open" && !alone.context.model.released; step++) {
            expect(step, "time alone ends the case in a few expiries").to.be.below(20);
            const missAt = nextDeadlineMiss(alone.context.model, alone.context.now);
            expect(missAt, "a deadline runs in every open case before the release").to.not.equal(null);
            [alone] = transition(caseMachine, alone, { type: "EXPIRE", at: missAt! });
          }
          if (!alone.context.model.released) {
            expect(["expired", "cancelled"]).to.include(alone.value);
            // An agreed amendment may have moved the release's deadline later than the template's.
            const moved = (deadlineOf(snapshot.context.model, release.index) ?? OPENED_AT) - OPENED_AT;
            const limit = Math.max(release.rule.longStopSeconds || release.rule.deadlineSeconds, moved);
            if (alone.value === "expired")
              expect(alone.context.now - OPENED_AT, "by the long-stop at the latest").to.be.at.most(limit + 1);
          }

          // The honest parties (the roles not in `silentRoles`) sign what they can, pay in if both payers are
          // honest, and time completes what it may: the case ends, or its funds are released.
          let honest = snapshot;
          for (let step = 0; honest.value === "open"; step++) {
            expect(step, "the honest parties end the case in bounded steps").to.be.below(400);
            const { model, now } = honest.context;
            const signable = model.rules
              .map((_, s) => s)
              .filter((s) => !isCompleted(model, s) && prerequisitesComplete(model, s))
              .flatMap((s) =>
                awaitedRoles(model, s)
                  .filter((r) => ((silentRoles >> r) & 1) === 0)
                  .map((role) => ({ stage: s, role })),
              );
            let event: CaseEvent | null = null;
            if (signable.length > 0) event = { type: "SIGN_OFF", ...signable[0], at: now + 1 };
            else if (!model.funded && (silentRoles & 0b0101) === 0) event = { type: "FUNDED", at: now + 1 };
            else {
              const ready = nextWaitingTimeEnd(model, now);
              const missed = nextDeadlineMiss(model, now);
              if (ready !== null && (missed === null || ready <= missed)) event = { type: "ADVANCE", at: ready };
              else if (missed !== null) event = { type: "EXPIRE", at: missed };
            }
            if (event === null) break;
            const before = JSON.stringify(honest.context);
            [honest] = transition(caseMachine, honest, event);
            expect(JSON.stringify(honest.context), `the machine takes ${JSON.stringify(event)}`).to.not.equal(before);
          }
          const ended = honest.value !== "open" || honest.context.model.released;
          expect(ended, `the case ends or releases its funds: ${JSON.stringify(honest.context.model)}`).to.equal(true);
          if (silentRoles === 0 && honest.value === "open")
            expect.fail("with every party honest an open case must complete");
        },
      ),
      { numRuns: 300 },
    );
  });

  for (const [name, breakIt] of Object.entries(breakings)) {
    it(`rejects ${name}, naming the stage and the problem`, function () {
      fc.assert(
        fc.property(validDefinition, fc.nat(), (def, pick) => {
          const broken = breakIt(def, pick);
          fc.pre(broken !== undefined);
          const result = checkWorkflow(broken!.definition);
          expect(result.ok).to.equal(false);
          if (result.ok) return;
          const found = result.issues.find(
            (i) => i.code === broken!.code && (broken!.stage === undefined || i.stage === broken!.stage),
          );
          expect(found, `${broken!.code} ${broken!.stage ?? ""} in ${JSON.stringify(result.issues)}`).to.not.equal(
            undefined,
          );
          if (found!.stage !== undefined) expect(found!.message.startsWith(`stage "${found!.stage}": `)).to.equal(true);
          else expect(found!.message.startsWith('workflow "random": ')).to.equal(true);
        }),
        { numRuns: 100 },
      );
    });
  }
});
