/**
 * The case machine with a law (`caseMachineFor(law)`), as the engine runs it: the events beyond the
 * contract's transactions (a party's approval, the chain clock, a correction from the projection) and its one
 * timer, which acts on every kind of moment that falls on the same second.
 */
import { expect } from "chai";
import { type Actor, SimulatedClock, createActor } from "xstate";
import type { StageRule } from "../../workflows/compile";
import { roles, rule } from "./helpers";
import { availableAt, newCaseModel, type CaseModel } from "../../workflows/case-rules";
import type { CaseLaw } from "../../workflows/case-moments";
import { type CaseMachine, type CaseMachineInput, caseMachineFor } from "../../workflows/machine";

const BUYER = 2;
const SELLER = 3;
const DAY = 86_400;
const HOUR = 3_600;
const T0 = 1_750_000_000;

/** 0 agreement (buyer) -> 1 cooling off (seller; 2 days after 0, by the law 2 days and 5 hours). */
const RULES: StageRule[] = [
  rule({ roles: roles(BUYER) }),
  rule({ roles: roles(SELLER), prerequisites: 0b1, waitSeconds: 2 * DAY }),
];
const LAW_EXTRA = 5 * HOUR;

/** A law whose waiting time of stage 1 lasts five hours longer than the contract's floor. */
const law: CaseLaw = {
  legalMomentOf: (model, stage) => {
    if (stage !== 1) return undefined;
    const floor = availableAt(model, stage);
    return floor === null ? null : new Date((floor + LAW_EXTRA) * 1000);
  },
  mayComplete: (model, stage, now) => {
    const floor = stage === 1 ? availableAt(model, stage) : undefined;
    if (floor === undefined) return { allowed: true };
    const moment = floor === null ? null : new Date((floor + LAW_EXTRA) * 1000);
    if (moment !== null && now.getTime() >= moment.getTime()) return { allowed: true };
    return { allowed: false, availableAt: moment, reason: "too early", waitsFor: "the cooling off" };
  },
};

interface Harness {
  actor: Actor<CaseMachine>;
  clock: SimulatedClock;
  requests: string[];
}

const running: Actor<CaseMachine>[] = [];
afterEach(function () {
  while (running.length > 0) running.pop()?.stop();
});

/** An actor of the law's machine whose effects are written down as "kind@the machine's clock". */
function start(input: CaseMachineInput, options: { snapshot?: unknown } = {}): Harness {
  const clock = new SimulatedClock();
  const requests: string[] = [];
  const machine = caseMachineFor(law).provide({
    actions: {
      requestAdvance: (_, params: { at: number }) => void requests.push(`advance@${params.at}`),
      requestExpire: (_, params: { at: number }) => void requests.push(`expire@${params.at}`),
      requestSignOff: ({ context }, params: { ticket: number }) =>
        void requests.push(`sign-off#${params.ticket}@${context.now}`),
      announceLegalMoment: ({ context }) => void requests.push(`legal-moment@${context.now}`),
    },
  });
  const actor = createActor(machine, {
    input,
    clock,
    ...(options.snapshot ? { snapshot: options.snapshot as never } : {}),
  }).start();
  running.push(actor);
  return { actor, clock, requests };
}

function agreedAt(at: number): CaseModel {
  const model = newCaseModel(RULES, T0);
  model.signedOff[0] = roles(BUYER);
  model.completedAt[0] = at;
  return model;
}

describe("workflows/machine with a law", function () {
  it("announces the law's moment once, and asks for advance there, not at the contract's floor", function () {
    const h = start({ workflow: { stages: RULES }, openedAt: T0 });
    h.actor.send({ type: "SIGN_OFF", stage: 0, role: BUYER, at: T0 });
    h.actor.send({ type: "SIGN_OFF", stage: 1, role: SELLER, at: T0 });
    h.clock.increment((2 * DAY + LAW_EXTRA - 1) * 1000);
    expect(h.requests, "nothing at the contract's floor, nor a second before the law's moment").to.deep.equal([]);
    h.clock.increment(1000);
    const moment = T0 + 2 * DAY + LAW_EXTRA;
    // The waiting time's end and the legal moment fall on the same second: both are acted on, by one timer.
    expect(h.requests).to.deep.equal([`advance@${moment}`, `legal-moment@${moment}`]);
    expect(h.actor.getSnapshot().context.now).to.equal(moment);
  });

  it("passes a party's approval on only where the contract and the law take it now", function () {
    const h = start({ model: agreedAt(T0), now: T0 });
    const moment = T0 + 2 * DAY + LAW_EXTRA;
    h.actor.send({ type: "APPROVE", stage: 1, role: SELLER, atMs: (moment - 1) * 1000, ticket: 1 });
    h.actor.send({ type: "APPROVE", stage: 1, role: BUYER, atMs: moment * 1000, ticket: 2 });
    expect(h.requests, "too early by the law; a role the stage does not need").to.deep.equal([]);
    h.actor.send({ type: "APPROVE", stage: 1, role: SELLER, atMs: moment * 1000, ticket: 3 });
    expect(h.requests).to.deep.equal([`sign-off#3@${T0}`]);
    h.actor.send({ type: "SIGN_OFF", stage: 1, role: SELLER, at: moment });
    h.actor.send({ type: "APPROVE", stage: 1, role: SELLER, atMs: moment * 1000, ticket: 4 });
    expect(h.requests, "already signed off").to.have.length(1);
  });

  it("asks at once, on the chain clock's CLOCK, for what fell due while no timer ran, under the moment's own key", function () {
    const model = agreedAt(T0);
    model.signedOff[1] = roles(SELLER);
    const moment = T0 + 2 * DAY + LAW_EXTRA;
    const h = start({ model, now: T0 });
    h.actor.send({ type: "CLOCK", at: moment + 7 * DAY });
    expect(h.requests).to.deep.equal([`advance@${moment}`]);
    expect(h.actor.getSnapshot().context.now).to.equal(moment + 7 * DAY);
  });

  it("re-arms a restored snapshot's timers when it hears the clock: restoring alone sets none", function () {
    const first = start({ model: agreedAt(T0), now: T0 });
    first.actor.send({ type: "SIGN_OFF", stage: 1, role: SELLER, at: T0 + 10 });
    const persisted = JSON.parse(JSON.stringify(first.actor.getPersistedSnapshot()));
    const h = start({ model: agreedAt(T0), now: T0 }, { snapshot: persisted });
    h.clock.increment((2 * DAY + LAW_EXTRA + 1) * 1000);
    expect(h.requests, "a restored actor has no timers").to.deep.equal([]);
    h.actor.send({ type: "CLOCK", at: T0 + 11 });
    h.clock.increment((2 * DAY + LAW_EXTRA) * 1000);
    expect(h.requests).to.deep.equal([
      `advance@${T0 + 2 * DAY + LAW_EXTRA}`,
      `legal-moment@${T0 + 2 * DAY + LAW_EXTRA}`,
    ]);
  });

  it("acts on a moment that an event reached first: a vote mined in the very second a waiting time ends", function () {
    const model = agreedAt(T0);
    model.signedOff[1] = roles(SELLER);
    const moment = T0 + 2 * DAY + LAW_EXTRA;
    const h = start({ workflow: { stages: RULES }, openedAt: T0 });
    h.actor.send({ type: "SIGN_OFF", stage: 0, role: BUYER, at: T0 });
    h.actor.send({ type: "SIGN_OFF", stage: 1, role: SELLER, at: T0 });
    // The vote's block has the moment's own time: the machine's clock is there before its timer fires.
    h.actor.send({ type: "CANCEL_VOTE", roles: roles(BUYER), at: moment });
    h.clock.increment(1);
    expect(h.requests).to.deep.equal([`advance@${moment}`, `legal-moment@${moment}`]);
    h.clock.increment(DAY * 1000);
    expect(h.requests, "each moment once").to.have.length(2);
  });

  it("takes the projection's model on RESYNC, its clock at the given time", function () {
    const h = start({ model: agreedAt(T0), now: T0 + 100 });
    const corrected = newCaseModel(RULES, T0);
    h.actor.send({ type: "RESYNC", model: corrected, at: T0 + 50 });
    expect(h.actor.getSnapshot().context.model).to.deep.equal(corrected);
    expect(h.actor.getSnapshot().context.now).to.equal(T0 + 50);
  });
});
