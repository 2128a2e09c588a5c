/**
 * Unit tests of the case machine (workflows/machine.ts): what each guard lets through, what each event does to
 * the model, the timers that ask the engine to advance or expire (on XState's SimulatedClock), and a snapshot
 * that survives persistence. The differential test shows the same behaviour against the contract itself.
 */
import { expect } from "chai";
import { type Actor, SimulatedClock, createActor } from "xstate";
import { getTemplate } from "../../workflows";
import type { StageRule } from "../../workflows/compile";
import { roles, rule } from "./helpers";
import { type ContractEvent as CaseEvent, type CaseMachineInput, caseMachine } from "../../workflows/machine";
import { type StageStatus, stageStatus } from "../../workflows/case-rules";

const BANK = 0;
const LAWYER = 1;
const BUYER = 2;
const SELLER = 3;
const DAY = 86_400;
const T0 = 1_750_000_000;

/**
 * 0 agreement (buyer, seller) -> 1 exchange (lawyer, buyer; 3 days after 0; binding) ->
 * 2 completion (bank, lawyer; releases; within 60 days of opening) -> 3 registration (lawyer; within 14 days of 2).
 */
const SMALL: StageRule[] = [
  rule({ roles: roles(BUYER, SELLER) }),
  rule({ roles: roles(LAWYER, BUYER), prerequisites: 0b1, waitSeconds: 3 * DAY, binding: true }),
  rule({ roles: roles(BANK, LAWYER), prerequisites: 0b10, action: 2, deadlineSeconds: 60 * DAY }),
  rule({ roles: roles(LAWYER), prerequisites: 0b100, deadlineSeconds: 14 * DAY, deadlineAnchor: 3 }),
];

/** 0 buyer -> 1 seller -> 2 role-less, after 0 and 1 -> 3 lawyer, after 2, releases. */
const CASCADE: StageRule[] = [
  rule({ roles: roles(BUYER) }),
  rule({ roles: roles(SELLER) }),
  rule({ roles: 0, prerequisites: 0b11 }),
  rule({ roles: roles(LAWYER), prerequisites: 0b100, action: 2 }),
];

type CaseActor = Actor<typeof caseMachine>;

/**
 * A SimulatedClock that, moved forward, stops at every timer due on the way, as real time does. (`increment`
 * alone jumps straight to the end, so a timer set when an earlier one fires would start late.)
 */
class SteppingClock extends SimulatedClock {
  private readonly due = new Map<number, number>();

  setTimeout(fn: (...args: unknown[]) => void, timeout: number): number {
    const id = super.setTimeout(fn, timeout);
    this.due.set(id, this.now() + timeout);
    return id;
  }

  clearTimeout(id: number): void {
    this.due.delete(id);
    super.clearTimeout(id);
  }

  /** Moves the clock forward by `ms`, firing each timer at its own moment. */
  advance(ms: number): void {
    const end = this.now() + ms;
    for (;;) {
      const next = Math.min(...[...this.due.values()].filter((t) => t > this.now()));
      if (!(next <= end)) break;
      this.increment(next - this.now());
    }
    this.increment(end - this.now());
  }
}

interface Harness {
  actor: CaseActor;
  clock: SteppingClock;
  /** The chain time of each requestAdvance / requestExpire, as the clock says (T0 at clock 0). */
  advances: number[];
  expiries: number[];
  send(event: CaseEvent): void;
  statuses(now?: number): StageStatus[];
}

const running: CaseActor[] = [];
afterEach(function () {
  while (running.length > 0) running.pop()?.stop();
});

function start(rules: StageRule[], options: Partial<CaseMachineInput> = {}): Harness {
  const clock = new SteppingClock();
  const advances: number[] = [];
  const expiries: number[] = [];
  const at = () => T0 + clock.now() / 1000;
  const machine = caseMachine.provide({
    actions: { requestAdvance: () => void advances.push(at()), requestExpire: () => void expiries.push(at()) },
  });
  const actor = createActor(machine, {
    input: { workflow: { stages: rules }, openedAt: T0, ...options },
    clock,
  }).start();
  running.push(actor);
  return {
    actor,
    clock,
    advances,
    expiries,
    send: (event) => actor.send(event),
    statuses: (now) => {
      const { model, now: machineNow } = actor.getSnapshot().context;
      return rules.map((_, s) => stageStatus(model, s, now ?? machineNow));
    },
  };
}

/** Sends `event` and checks that it changed nothing at all. */
function expectIgnored(h: Harness, event: CaseEvent): void {
  const before = h.actor.getSnapshot();
  h.send(event);
  const after = h.actor.getSnapshot();
  expect(after.value).to.equal(before.value);
  expect(after.context).to.deep.equal(before.context);
}

function signAll(h: Harness, rules: StageRule[], stage: number, at: number): void {
  for (let r = 0; r < 4; r++) if ((rules[stage].roles >> r) & 1) h.send({ type: "SIGN_OFF", stage, role: r, at });
}

describe("workflows/machine", function () {
  describe("SIGN_OFF", function () {
    it("records a sign-off by a role that the stage requires", function () {
      const h = start(SMALL);
      h.send({ type: "SIGN_OFF", stage: 0, role: BUYER, at: T0 + 5 });
      const { model, now } = h.actor.getSnapshot().context;
      expect(model.signedOff).to.deep.equal([roles(BUYER), 0, 0, 0]);
      expect(now).to.equal(T0 + 5);
      expect(h.statuses()).to.deep.equal(["open", "locked", "locked", "locked"]);
    });

    it("ignores a sign-off by a role that the stage does not require", function () {
      const h = start(SMALL);
      expectIgnored(h, { type: "SIGN_OFF", stage: 0, role: LAWYER, at: T0 + 5 });
      expectIgnored(h, { type: "SIGN_OFF", stage: 3, role: BANK, at: T0 + 5 });
    });

    it("ignores a sign-off of a stage the template does not have", function () {
      const h = start(SMALL);
      expectIgnored(h, { type: "SIGN_OFF", stage: 4, role: LAWYER, at: T0 + 5 });
    });

    it("ignores a second sign-off by the same role", function () {
      const h = start(SMALL);
      h.send({ type: "SIGN_OFF", stage: 0, role: SELLER, at: T0 + 5 });
      expectIgnored(h, { type: "SIGN_OFF", stage: 0, role: SELLER, at: T0 + 6 });
    });

    it("accepts a sign-off of a locked stage, which stays locked", function () {
      const h = start(SMALL);
      h.send({ type: "SIGN_OFF", stage: 2, role: BANK, at: T0 + 5 });
      h.send({ type: "SIGN_OFF", stage: 2, role: LAWYER, at: T0 + 6 });
      expect(h.actor.getSnapshot().context.model.signedOff[2]).to.equal(roles(BANK, LAWYER));
      expect(h.statuses()[2]).to.equal("locked");
    });

    it("completes the stage on its last sign-off, and the stages after it that waited only for it (the cascade)", function () {
      const h = start(CASCADE, { funded: true });
      h.send({ type: "SIGN_OFF", stage: 3, role: LAWYER, at: T0 + 1 });
      h.send({ type: "SIGN_OFF", stage: 1, role: SELLER, at: T0 + 2 });
      expect(h.actor.getSnapshot().context.justCompleted).to.deep.equal([1]);
      h.send({ type: "SIGN_OFF", stage: 0, role: BUYER, at: T0 + 3 });
      const { context, value } = h.actor.getSnapshot();
      expect(context.justCompleted).to.deep.equal([0, 2, 3]);
      expect(context.model.completedAt).to.deep.equal([T0 + 3, T0 + 2, T0 + 3, T0 + 3]);
      expect(context.model.released).to.equal(true);
      expect(value).to.equal("completed");
    });

    it("starts the pass at the signed stage, as the contract does: an earlier stage that became ready is left to advance", function () {
      // Stage 0 waits a day from the opening; stage 1 is signed after that day, before anyone calls advance.
      const rules = [
        rule({ roles: roles(BUYER), waitSeconds: DAY }),
        rule({ roles: roles(SELLER) }),
        rule({ roles: roles(LAWYER), prerequisites: 0b11, action: 2 }),
      ];
      const h = start(rules, { funded: true });
      h.send({ type: "SIGN_OFF", stage: 0, role: BUYER, at: T0 + 1 });
      h.send({ type: "SIGN_OFF", stage: 1, role: SELLER, at: T0 + DAY + 5 });
      expect(h.actor.getSnapshot().context.justCompleted).to.deep.equal([1]);
      expect(h.statuses()).to.deep.equal(["waiting-for-time", "completed", "locked"]);
      h.send({ type: "ADVANCE", at: T0 + DAY + 6 });
      expect(h.actor.getSnapshot().context.justCompleted).to.deep.equal([0]);
    });

    it("passes once more from the first stage after a release, which completes an earlier stage that became ready", function () {
      const rules = [rule({ roles: roles(BUYER), waitSeconds: DAY }), rule({ roles: roles(SELLER), action: 2 })];
      const h = start(rules, { funded: true });
      h.send({ type: "SIGN_OFF", stage: 0, role: BUYER, at: T0 + 1 });
      h.send({ type: "SIGN_OFF", stage: 1, role: SELLER, at: T0 + DAY + 5 });
      expect(h.actor.getSnapshot().context.justCompleted).to.deep.equal([1, 0]);
      expect(h.actor.getSnapshot().value).to.equal("completed");
    });
  });

  describe("REVOKE", function () {
    it("withdraws a sign-off of a stage that has not completed", function () {
      const h = start(SMALL);
      h.send({ type: "SIGN_OFF", stage: 1, role: LAWYER, at: T0 + 1 });
      h.send({ type: "REVOKE", stage: 1, role: LAWYER, at: T0 + 2 });
      expect(h.actor.getSnapshot().context.model.signedOff[1]).to.equal(0);
      expect(h.actor.getSnapshot().context.now).to.equal(T0 + 2);
    });

    it("ignores a revocation once the stage has completed", function () {
      const h = start(SMALL);
      signAll(h, SMALL, 0, T0 + 1);
      expect(h.statuses()[0]).to.equal("completed");
      expectIgnored(h, { type: "REVOKE", stage: 0, role: BUYER, at: T0 + 2 });
    });

    it("ignores a revocation by a role that has not signed off", function () {
      const h = start(SMALL);
      expectIgnored(h, { type: "REVOKE", stage: 0, role: BUYER, at: T0 + 2 });
      expectIgnored(h, { type: "REVOKE", stage: 0, role: BANK, at: T0 + 2 });
    });

    it("turns a stage waiting for time back to open", function () {
      const h = start(SMALL);
      signAll(h, SMALL, 0, T0 + 1);
      signAll(h, SMALL, 1, T0 + 2);
      expect(h.statuses()[1]).to.equal("waiting-for-time");
      h.send({ type: "REVOKE", stage: 1, role: BUYER, at: T0 + 3 });
      expect(h.statuses()[1]).to.equal("open");
    });
  });

  describe("FUNDED", function () {
    it("completes a releasing stage that waited only for the money", function () {
      const h = start(CASCADE);
      signAll(h, CASCADE, 0, T0 + 1);
      signAll(h, CASCADE, 1, T0 + 1);
      signAll(h, CASCADE, 3, T0 + 1);
      expect(h.statuses()).to.deep.equal(["completed", "completed", "completed", "waiting-for-funds"]);
      h.send({ type: "FUNDED", at: T0 + 9 });
      expect(h.actor.getSnapshot().context.justCompleted).to.deep.equal([3]);
      expect(h.actor.getSnapshot().value).to.equal("completed");
    });

    it("is ignored when the case opened with nothing to pay in", function () {
      const h = start(CASCADE, { funded: true });
      expectIgnored(h, { type: "FUNDED", at: T0 + 1 });
    });
  });

  describe("ADVANCE", function () {
    it("is ignored while nothing is ready, up to the last second of a waiting time", function () {
      const h = start(SMALL);
      expectIgnored(h, { type: "ADVANCE", at: T0 + 1 });
      signAll(h, SMALL, 0, T0 + 1);
      signAll(h, SMALL, 1, T0 + 2);
      expectIgnored(h, { type: "ADVANCE", at: T0 + 1 + 3 * DAY - 1 });
    });

    it("completes the stage whose waiting time has ended, at the first second it may", function () {
      const h = start(SMALL);
      signAll(h, SMALL, 0, T0 + 1);
      signAll(h, SMALL, 1, T0 + 2);
      h.send({ type: "ADVANCE", at: T0 + 1 + 3 * DAY });
      expect(h.actor.getSnapshot().context.justCompleted).to.deep.equal([1]);
      expect(h.statuses()[1]).to.equal("completed");
    });
  });

  describe("EXPIRE", function () {
    it("is ignored at the deadline itself: a deadline is missed only once it has passed", function () {
      const h = start(SMALL);
      expectIgnored(h, { type: "EXPIRE", at: T0 + 60 * DAY });
      expect(h.statuses(T0 + 60 * DAY)[2]).to.equal("locked");
      expect(h.statuses(T0 + 60 * DAY + 1)[2]).to.equal("overdue");
    });

    it("expires the case when a deadline before the release has passed", function () {
      const h = start(SMALL);
      signAll(h, SMALL, 0, T0 + 1);
      h.send({ type: "EXPIRE", at: T0 + 60 * DAY + 1 });
      const { value, context } = h.actor.getSnapshot();
      expect(value).to.equal("expired");
      expect(context.model.status).to.equal("expired");
      expect(h.statuses()).to.deep.equal(["completed", "expired", "expired", "expired"]);
    });

    it("after the release marks the late stage overdue, keeps the case open, and lets the stage still complete", function () {
      const h = start(SMALL, { funded: true });
      signAll(h, SMALL, 0, T0 + 1);
      signAll(h, SMALL, 1, T0 + 1);
      h.send({ type: "ADVANCE", at: T0 + 1 + 3 * DAY });
      signAll(h, SMALL, 2, T0 + 4 * DAY);
      expect(h.actor.getSnapshot().context.model.released).to.equal(true);
      const late = T0 + 4 * DAY + 14 * DAY + 1;
      h.send({ type: "EXPIRE", at: late });
      expect(h.actor.getSnapshot().value).to.equal("open");
      expect(h.actor.getSnapshot().context.model.overdue).to.deep.equal([false, false, false, true]);
      expect(h.statuses()[3]).to.equal("overdue");
      expectIgnored(h, { type: "EXPIRE", at: late + 1 });
      h.send({ type: "SIGN_OFF", stage: 3, role: LAWYER, at: late + 2 });
      expect(h.actor.getSnapshot().value).to.equal("completed");
    });

    it("is ignored while no deadline has passed", function () {
      const h = start(SMALL);
      expectIgnored(h, { type: "EXPIRE", at: T0 + DAY });
    });
  });

  describe("CANCEL_VOTE", function () {
    it("records each party's vote, and the last one cancels the case", function () {
      const h = start(SMALL);
      for (const role of [BANK, LAWYER, BUYER]) h.send({ type: "CANCEL_VOTE", roles: roles(role), at: T0 + 1 });
      expect(h.actor.getSnapshot().context.model.cancelVotes).to.equal(roles(BANK, LAWYER, BUYER));
      expect(h.actor.getSnapshot().value).to.equal("open");
      h.send({ type: "CANCEL_VOTE", roles: roles(SELLER), at: T0 + 2 });
      expect(h.actor.getSnapshot().value).to.equal("cancelled");
      expect(h.statuses()).to.deep.equal(["cancelled", "cancelled", "cancelled", "cancelled"]);
    });

    it("counts the vote of a party holding two roles for both", function () {
      const h = start(SMALL);
      h.send({ type: "CANCEL_VOTE", roles: roles(BANK, SELLER), at: T0 + 1 });
      expect(h.actor.getSnapshot().context.model.cancelVotes).to.equal(roles(BANK, SELLER));
      h.send({ type: "CANCEL_VOTE", roles: roles(LAWYER), at: T0 + 2 });
      h.send({ type: "CANCEL_VOTE", roles: roles(BUYER), at: T0 + 3 });
      expect(h.actor.getSnapshot().value).to.equal("cancelled");
    });

    it("ignores a vote that brings no new role, and one from someone holding no role", function () {
      const h = start(SMALL);
      h.send({ type: "CANCEL_VOTE", roles: roles(BANK, SELLER), at: T0 + 1 });
      expectIgnored(h, { type: "CANCEL_VOTE", roles: roles(SELLER), at: T0 + 2 });
      expectIgnored(h, { type: "CANCEL_VOTE", roles: 0, at: T0 + 2 });
    });

    it("ignores every vote after the release", function () {
      const h = start(SMALL, { funded: true });
      signAll(h, SMALL, 0, T0 + 1);
      signAll(h, SMALL, 1, T0 + 1);
      h.send({ type: "ADVANCE", at: T0 + 1 + 3 * DAY });
      signAll(h, SMALL, 2, T0 + 4 * DAY);
      expectIgnored(h, { type: "CANCEL_VOTE", roles: 0b1111, at: T0 + 5 * DAY });
    });
  });

  describe("WITHDRAW_CANCEL_VOTE", function () {
    it("withdraws the vote of every role the caller holds, and the case then needs it again", function () {
      const h = start(SMALL);
      h.send({ type: "CANCEL_VOTE", roles: roles(BANK, SELLER), at: T0 + 1 });
      h.send({ type: "CANCEL_VOTE", roles: roles(LAWYER), at: T0 + 1 });
      h.send({ type: "WITHDRAW_CANCEL_VOTE", roles: roles(BANK, SELLER), at: T0 + 2 });
      expect(h.actor.getSnapshot().context.model.cancelVotes).to.equal(roles(LAWYER));
      h.send({ type: "CANCEL_VOTE", roles: roles(BUYER), at: T0 + 3 });
      expect(h.actor.getSnapshot().value).to.equal("open");
      h.send({ type: "CANCEL_VOTE", roles: roles(BANK, SELLER), at: T0 + 4 });
      expect(h.actor.getSnapshot().value).to.equal("cancelled");
    });

    it("is ignored for a party with no vote standing and for someone holding no role", function () {
      const h = start(SMALL);
      h.send({ type: "CANCEL_VOTE", roles: roles(BANK), at: T0 + 1 });
      expectIgnored(h, { type: "WITHDRAW_CANCEL_VOTE", roles: roles(BUYER), at: T0 + 2 });
      expectIgnored(h, { type: "WITHDRAW_CANCEL_VOTE", roles: 0, at: T0 + 2 });
    });

    it("withdraws only the caller's roles that voted, when it holds two", function () {
      const h = start(SMALL);
      h.send({ type: "CANCEL_VOTE", roles: roles(BUYER), at: T0 + 1 });
      h.send({ type: "WITHDRAW_CANCEL_VOTE", roles: roles(BUYER, SELLER), at: T0 + 2 });
      expect(h.actor.getSnapshot().context.model.cancelVotes).to.equal(0);
    });
  });

  describe("a binding stage", function () {
    it("clears, when it completes, every cancel vote cast before it", function () {
      const h = start(SMALL, { funded: true });
      signAll(h, SMALL, 0, T0 + 1);
      h.send({ type: "CANCEL_VOTE", roles: roles(BANK, LAWYER, BUYER), at: T0 + 2 });
      signAll(h, SMALL, 1, T0 + 3);
      expect(h.actor.getSnapshot().context.model.cancelVotes, "exchange still waits its 3 days").to.equal(
        roles(BANK, LAWYER, BUYER),
      );
      h.send({ type: "ADVANCE", at: T0 + 1 + 3 * DAY });
      expect(h.statuses()[1]).to.equal("completed");
      expect(h.actor.getSnapshot().context.model.cancelVotes).to.equal(0);
      // The seller's vote alone no longer cancels: the others must vote again, now that exchange binds.
      h.send({ type: "CANCEL_VOTE", roles: roles(SELLER), at: T0 + 1 + 3 * DAY + 1 });
      expect(h.actor.getSnapshot().value).to.equal("open");
    });

    it("leaves the votes alone when a stage that does not bind completes", function () {
      const h = start(SMALL);
      h.send({ type: "CANCEL_VOTE", roles: roles(BANK), at: T0 + 1 });
      signAll(h, SMALL, 0, T0 + 2);
      expect(h.statuses()[0]).to.equal("completed");
      expect(h.actor.getSnapshot().context.model.cancelVotes).to.equal(roles(BANK));
    });
  });

  describe("the long-stop", function () {
    /** 0 offer (bank) -> 1 completion (lawyer; releases; within 30 days of 0, and a long-stop of 90 days). */
    const LONG_STOP: StageRule[] = [
      rule({ roles: roles(BANK) }),
      rule({
        roles: roles(LAWYER),
        prerequisites: 0b1,
        action: 2,
        deadlineSeconds: 30 * DAY,
        deadlineAnchor: 1,
        longStopSeconds: 90 * DAY,
      }),
    ];

    it("expires the case at the long-stop when the party that starts the other deadline never signs", function () {
      const h = start(LONG_STOP);
      expectIgnored(h, { type: "EXPIRE", at: T0 + 90 * DAY });
      expect(h.statuses(T0 + 90 * DAY + 1)).to.deep.equal(["open", "overdue"]);
      h.send({ type: "EXPIRE", at: T0 + 90 * DAY + 1 });
      expect(h.actor.getSnapshot().value).to.equal("expired");
    });

    it("asks for expiry the second after the long-stop, with no one acting", function () {
      const h = start(LONG_STOP);
      h.clock.advance((90 * DAY + 1) * 1000);
      expect(h.expiries).to.deep.equal([T0 + 90 * DAY + 1]);
    });

    it("takes the earlier of the two once the anchored deadline runs", function () {
      const early = start(LONG_STOP);
      early.send({ type: "SIGN_OFF", stage: 0, role: BANK, at: T0 + DAY });
      expectIgnored(early, { type: "EXPIRE", at: T0 + 31 * DAY });
      early.send({ type: "EXPIRE", at: T0 + 31 * DAY + 1 });
      expect(early.actor.getSnapshot().value).to.equal("expired");

      const late = start(LONG_STOP);
      late.send({ type: "SIGN_OFF", stage: 0, role: BANK, at: T0 + 80 * DAY });
      expectIgnored(late, { type: "EXPIRE", at: T0 + 90 * DAY });
      late.send({ type: "EXPIRE", at: T0 + 90 * DAY + 1 });
      expect(late.actor.getSnapshot().value).to.equal("expired");
    });
  });

  describe("times past early 2106 (MortgageEscrowTimeOverflow)", function () {
    const MAX = 2 ** 32 - 1;

    it("ignores a completion that would keep a time that no longer fits, and takes one that keeps none", function () {
      // Stage 0 anchors stage 1's deadline, so its completion time is kept; stage 2 keeps nothing.
      const rules = [
        rule({ roles: roles(BANK) }),
        rule({ roles: roles(LAWYER), prerequisites: 0b1, deadlineSeconds: 10 * DAY, deadlineAnchor: 1 }),
        rule({ roles: roles(BUYER), action: 2, deadlineSeconds: 100 * 365 * DAY }),
      ];
      const h = start(rules, { openedAt: MAX - DAY, funded: true });
      expectIgnored(h, { type: "SIGN_OFF", stage: 0, role: BANK, at: MAX + 1 });
      h.send({ type: "SIGN_OFF", stage: 2, role: BUYER, at: MAX + 1 });
      expect(h.statuses()[2]).to.equal("completed");
      const inTime = start(rules, { openedAt: MAX - DAY, funded: true });
      inTime.send({ type: "SIGN_OFF", stage: 0, role: BANK, at: MAX });
      expect(inTime.statuses()[0]).to.equal("completed");
    });

    it("ignores a completion that would start a dependent's waiting time past it", function () {
      const rules = [
        rule({ roles: roles(BANK), action: 2, deadlineSeconds: DAY * 400 }),
        rule({ roles: 0, prerequisites: 0b1, waitSeconds: DAY }),
      ];
      const funded = start(rules, { openedAt: MAX - DAY, funded: true });
      expectIgnored(funded, { type: "SIGN_OFF", stage: 0, role: BANK, at: MAX + 1 });
      const unfunded = start(rules, { openedAt: MAX - DAY });
      unfunded.send({ type: "SIGN_OFF", stage: 0, role: BANK, at: MAX - 10 });
      expect(unfunded.statuses()[0]).to.equal("waiting-for-funds");
      expectIgnored(unfunded, { type: "FUNDED", at: MAX + 1 });
    });
  });

  describe("completion", function () {
    it("reaches the final state completed when every stage has, and then takes no event", function () {
      const h = start(SMALL, { funded: true });
      signAll(h, SMALL, 0, T0 + 1);
      signAll(h, SMALL, 1, T0 + 1);
      h.send({ type: "ADVANCE", at: T0 + 1 + 3 * DAY });
      signAll(h, SMALL, 2, T0 + 4 * DAY);
      expect(h.actor.getSnapshot().value).to.equal("open");
      h.send({ type: "SIGN_OFF", stage: 3, role: LAWYER, at: T0 + 5 * DAY });
      const snapshot = h.actor.getSnapshot();
      expect(snapshot.value).to.equal("completed");
      expect(snapshot.status).to.equal("done");
      expect(snapshot.context.model.status).to.equal("completed");
      expect(h.statuses()).to.deep.equal(["completed", "completed", "completed", "completed"]);
      expectIgnored(h, { type: "EXPIRE", at: T0 + 200 * DAY });
    });
  });

  describe("timers", function () {
    it("requests advance exactly when a waiting time ends, not a millisecond earlier", function () {
      const h = start(SMALL, { funded: true });
      signAll(h, SMALL, 0, T0);
      signAll(h, SMALL, 1, T0);
      h.clock.advance(3 * DAY * 1000 - 1);
      expect(h.advances).to.deep.equal([]);
      h.clock.advance(1);
      expect(h.advances).to.deep.equal([T0 + 3 * DAY]);
      expect(h.actor.getSnapshot().context.now).to.equal(T0 + 3 * DAY);
      h.clock.advance(10 * DAY * 1000);
      expect(h.advances, "once").to.have.length(1);
    });

    it("sets the advance timer from the latest event: a stage fully signed later waits from its prerequisite", function () {
      const h = start(SMALL, { funded: true });
      signAll(h, SMALL, 0, T0);
      h.clock.advance(DAY * 1000);
      h.send({ type: "SIGN_OFF", stage: 1, role: LAWYER, at: T0 + DAY });
      h.send({ type: "SIGN_OFF", stage: 1, role: BUYER, at: T0 + DAY });
      h.clock.advance(2 * DAY * 1000 - 1);
      expect(h.advances).to.deep.equal([]);
      h.clock.advance(1);
      expect(h.advances).to.deep.equal([T0 + 3 * DAY]);
    });

    it("requests expiry exactly when a deadline is missed (the second after it), and only once", function () {
      const rules = [rule({ roles: roles(BUYER), deadlineSeconds: DAY }), rule({ roles: roles(LAWYER), action: 2 })];
      const h = start(rules);
      h.clock.advance((DAY + 1) * 1000 - 1);
      expect(h.expiries).to.deep.equal([]);
      h.clock.advance(1);
      expect(h.expiries).to.deep.equal([T0 + DAY + 1]);
      h.clock.advance(400 * DAY * 1000);
      expect(h.expiries).to.have.length(1);
    });

    it("requests expiry at the right millisecond for a deadline beyond setTimeout's 24.8 days: the 180-day mortgage offer", function () {
      const uk = getTemplate("uk-purchase");
      const completion = uk.stageIndex["completion"];
      expect(uk.stages[completion].deadlineSeconds).to.equal(180 * DAY + 25 * 3600);
      const h = start(uk.stages);
      const at = T0 + 1000;
      h.clock.advance(1000 * 1000);
      signAll(h, uk.stages, uk.stageIndex["offer-accepted"], at);
      signAll(h, uk.stages, uk.stageIndex["mortgage-offer"], at);
      const missed = at + 180 * DAY + 25 * 3600 + 1;
      h.clock.advance((missed - at) * 1000 - 1);
      expect(h.expiries).to.deep.equal([]);
      expect(h.advances).to.deep.equal([]);
      h.clock.advance(1);
      expect(h.expiries).to.deep.equal([missed]);
      expect(h.actor.getSnapshot().context.now).to.equal(missed);
    });

    it("requests advance at the right millisecond for a waiting time beyond setTimeout's limit", function () {
      const rules = [rule({ roles: roles(BUYER), waitSeconds: 40 * DAY }), rule({ roles: roles(LAWYER), action: 2 })];
      const h = start(rules);
      h.send({ type: "SIGN_OFF", stage: 0, role: BUYER, at: T0 });
      h.clock.advance(40 * DAY * 1000 - 1);
      expect(h.advances).to.deep.equal([]);
      h.clock.advance(1);
      expect(h.advances).to.deep.equal([T0 + 40 * DAY]);
    });
  });

  describe("persistence", function () {
    it("restores a persisted snapshot to the same state, which then takes events as the original does", function () {
      const h = start(SMALL);
      signAll(h, SMALL, 0, T0 + 1);
      h.send({ type: "SIGN_OFF", stage: 1, role: LAWYER, at: T0 + 2 });
      h.send({ type: "CANCEL_VOTE", roles: roles(BANK), at: T0 + 3 });
      h.send({ type: "FUNDED", at: T0 + 4 });
      const persisted = JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot()));
      const input = { workflow: { stages: SMALL }, openedAt: T0 };
      const restored = createActor(caseMachine, { snapshot: persisted, input, clock: new SimulatedClock() }).start();
      running.push(restored);
      expect(restored.getSnapshot().value).to.equal(h.actor.getSnapshot().value);
      expect(restored.getSnapshot().context).to.deep.equal(h.actor.getSnapshot().context);

      for (const event of [
        { type: "SIGN_OFF", stage: 1, role: BUYER, at: T0 + 5 },
        { type: "ADVANCE", at: T0 + 1 + 3 * DAY },
        { type: "CANCEL_VOTE", roles: roles(LAWYER, BUYER, SELLER), at: T0 + 4 * DAY },
      ] as CaseEvent[]) {
        h.send(event);
        restored.send(event);
        expect(restored.getSnapshot().context).to.deep.equal(h.actor.getSnapshot().context);
      }
      // The bank's vote was cast before the binding exchange completed, which cleared it.
      expect(restored.getSnapshot().value).to.equal("open");
      for (const actor of [h.actor, restored])
        actor.send({ type: "CANCEL_VOTE", roles: roles(BANK), at: T0 + 4 * DAY + 1 });
      expect(restored.getSnapshot().context).to.deep.equal(h.actor.getSnapshot().context);
      expect(restored.getSnapshot().value).to.equal("cancelled");
    });

    it("restores a finished case as finished", function () {
      const h = start(SMALL);
      h.send({ type: "EXPIRE", at: T0 + 60 * DAY + 1 });
      const restored = createActor(caseMachine, {
        snapshot: JSON.parse(JSON.stringify(h.actor.getPersistedSnapshot())),
        input: { workflow: { stages: SMALL }, openedAt: T0 },
        clock: new SimulatedClock(),
      }).start();
      running.push(restored);
      expect(restored.getSnapshot().value).to.equal("expired");
      expect(restored.getSnapshot().status).to.equal("done");
    });
  });
});
