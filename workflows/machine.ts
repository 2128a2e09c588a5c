/**
 * The XState machine of one case of a workflow. It mirrors `MortgageEscrow` exactly: fed the same
 * transactions (as events carrying the block time), its context holds the same state and `stageStatus`
 * gives the same status for every stage. Its timers say when the contract will let time complete a stage
 * (`requestAdvance`) or let a missed deadline be acted on (`requestExpire`); the engine provides those two
 * actions with `.provide()`, tests provide fakes. It never imports ethers.
 *
 * The law can ask for more than the contract's floor (business days): that is the legal guard's to say
 * (`legal-guard.ts`), not this machine's.
 */
import { and, assign, setup } from "xstate";
import type { CompiledWorkflow } from "./compile";
import {
  type CaseModel,
  TimeOverflowError,
  availableAt,
  canComplete,
  completeReadyStages,
  deadlineOf,
  fundingCandidates,
  isCompleted,
  isFullySigned,
  missedDeadlines,
  newCaseModel,
  prerequisitesComplete,
  signedCandidates,
} from "./case-rules";

/** Every event carries `at`: the time, in chain seconds, of the block that holds the transaction. */
export type CaseEvent =
  | { type: "SIGN_OFF"; stage: number; role: number; at: number }
  | { type: "REVOKE"; stage: number; role: number; at: number }
  | { type: "FUNDED"; at: number }
  | { type: "ADVANCE"; at: number }
  | { type: "EXPIRE"; at: number }
  /** `roles`: the role mask of the voter (a party holding two roles votes for both at once). */
  | { type: "CANCEL_VOTE"; roles: number; at: number }
  /** `withdrawCancelVote`: `roles` is the role mask of the caller, whose every standing vote is withdrawn. */
  | { type: "WITHDRAW_CANCEL_VOTE"; roles: number; at: number };

export interface CaseMachineInput {
  workflow: Pick<CompiledWorkflow, "stages">;
  openedAt: number;
  /** Whether the case opened with nothing to pay in (deposit and loan zero). */
  funded?: boolean;
}

export interface CaseMachineContext {
  model: CaseModel;
  /** The time of the latest event or timer: the machine's clock, in chain seconds. */
  now: number;
  /** The stages that the latest event completed, in order. */
  justCompleted: number[];
}

/** setTimeout's limit, in milliseconds. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/**
 * A longer wait is taken in steps of this many whole seconds (24.8 days): the machine's clock counts chain
 * seconds, so each step must wait exactly what it adds to the clock, or the last step fires late (by 0.647 s
 * per step with steps of MAX_TIMEOUT_MS).
 */
const MAX_STEP_SECONDS = Math.floor(MAX_TIMEOUT_MS / 1000);

function cloneModel(model: CaseModel): CaseModel {
  return {
    ...model,
    signedOff: [...model.signedOff],
    completedAt: [...model.completedAt],
    overdue: [...model.overdue],
  };
}

/** The next moment, after `now`, at which time alone lets the contract complete a stage. */
export function nextWaitingTimeEnd(model: CaseModel, now: number): number | null {
  let next: number | null = null;
  model.rules.forEach((rule, s) => {
    if (rule.waitSeconds === 0 || isCompleted(model, s) || !isFullySigned(model, s)) return;
    if (!prerequisitesComplete(model, s) || (rule.action !== 0 && !model.funded)) return;
    const at = availableAt(model, s) as number;
    if (at > now && (next === null || at < next)) next = at;
  });
  return next;
}

/** The next moment, after `now`, at which a stage's deadline is missed (the contract's `now > deadline`). */
export function nextDeadlineMiss(model: CaseModel, now: number): number | null {
  let next: number | null = null;
  model.rules.forEach((_, s) => {
    if (isCompleted(model, s) || model.overdue[s]) return;
    const deadline = deadlineOf(model, s);
    if (deadline === null) return;
    const missAt = deadline + 1;
    if (missAt > now && (next === null || missAt < next)) next = missAt;
  });
  return next;
}

/**
 * What a sign-off, the funding deposit or `advance` does to a copy of the model: the stages it completes.
 * Throws `TimeOverflowError` where the contract reverts with `MortgageEscrowTimeOverflow`.
 */
function completionsOf(model: CaseModel, event: CaseEvent): { model: CaseModel; justCompleted: number[] } {
  const next = cloneModel(model);
  switch (event.type) {
    case "SIGN_OFF":
      next.signedOff[event.stage] |= 1 << event.role;
      // As the contract: only the last missing sign-off can complete the stage (and its cascade).
      return { model: next, justCompleted: isFullySigned(next, event.stage) ? completeReadyStages(next, event.at, [event.stage]) : [] };
    case "FUNDED":
      next.funded = true;
      return { model: next, justCompleted: completeReadyStages(next, event.at, fundingCandidates(next)) };
    default:
      return { model: next, justCompleted: completeReadyStages(next, event.at, signedCandidates(next)) };
  }
}

/** Whether the contract would take the transaction: every time it has to keep fits its 32-bit field. */
function timesFit(model: CaseModel, event: CaseEvent): boolean {
  try {
    completionsOf(model, event);
    return true;
  } catch (error) {
    if (error instanceof TimeOverflowError) return false;
    throw error;
  }
}

function reachedByOneTimer(target: number | null, now: number): boolean {
  return target !== null && target - now <= MAX_STEP_SECONDS;
}

function delayUntil(target: number | null, now: number): number {
  return (target === null ? MAX_STEP_SECONDS : Math.min(MAX_STEP_SECONDS, Math.max(0, target - now))) * 1000;
}

export const caseMachine = setup({
  types: {
    context: {} as CaseMachineContext,
    events: {} as CaseEvent,
    input: {} as CaseMachineInput,
  },
  guards: {
    stageRequiresRole: ({ context, event }) =>
      "stage" in event && "role" in event && ((context.model.rules[event.stage]?.roles ?? 0) >> event.role) & 1
        ? true
        : false,
    notYetSignedOff: ({ context, event }) =>
      "stage" in event && "role" in event && ((context.model.signedOff[event.stage] >> event.role) & 1) === 0,
    signedOffAndStageNotCompleted: ({ context, event }) =>
      "stage" in event &&
      "role" in event &&
      ((context.model.signedOff[event.stage] >> event.role) & 1) === 1 &&
      !isCompleted(context.model, event.stage),
    notYetFunded: ({ context }) => !context.model.funded,
    /** `MortgageEscrowTimeOverflow`: a completion past early 2106 that must keep its time reverts. */
    keptTimesFit: ({ context, event }) => timesFit(context.model, event),
    aStageIsReady: ({ context, event }) =>
      context.model.rules.some((_, s) => canComplete(context.model, s, event.at)),
    aDeadlineWasMissedBeforeRelease: ({ context, event }) =>
      !context.model.released && missedDeadlines(context.model, event.at).length > 0,
    aDeadlineWasMissedAfterRelease: ({ context, event }) =>
      context.model.released && missedDeadlines(context.model, event.at).length > 0,
    notReleased: ({ context }) => !context.model.released,
    bringsANewVote: ({ context, event }) =>
      event.type === "CANCEL_VOTE" && (event.roles & ~context.model.cancelVotes & 0xf) !== 0,
    isTheLastVote: ({ context, event }) =>
      event.type === "CANCEL_VOTE" && ((context.model.cancelVotes | event.roles) & 0xf) === 0xf,
    /** `withdrawCancelVote` reverts for a stranger and for a party none of whose roles has a vote standing. */
    withdrawsAStandingVote: ({ context, event }) =>
      event.type === "WITHDRAW_CANCEL_VOTE" && (event.roles & context.model.cancelVotes & 0xf) !== 0,
    everyStageCompleted: ({ context }) => context.model.status === "completed",
    /** Whether the timer that fired was the one set for the end of a waiting time (not a step of a long one). */
    timerReachedAWaitingTimeEnd: ({ context }) => reachedByOneTimer(nextWaitingTimeEnd(context.model, context.now), context.now),
    timerReachedADeadline: ({ context }) => reachedByOneTimer(nextDeadlineMiss(context.model, context.now), context.now),
  },
  actions: {
    /** A sign-off completes its stage (and the cascade from it) when it was the last one missing. */
    recordSignOff: assign(({ context, event }) => ({ ...completionsOf(context.model, event), now: event.at })),
    recordRevocation: assign(({ context, event }) => {
      if (event.type !== "REVOKE") return {};
      const model = cloneModel(context.model);
      model.signedOff[event.stage] &= ~(1 << event.role);
      return { model, now: event.at, justCompleted: [] };
    }),
    recordFunding: assign(({ context, event }) => ({ ...completionsOf(context.model, event), now: event.at })),
    completeReadyStages: assign(({ context, event }) => ({ ...completionsOf(context.model, event), now: event.at })),
    markOverdue: assign(({ context, event }) => {
      const model = cloneModel(context.model);
      for (const s of missedDeadlines(model, event.at)) model.overdue[s] = true;
      return { model, now: event.at, justCompleted: [] };
    }),
    markExpired: assign(({ context, event }) => ({
      model: { ...cloneModel(context.model), status: "expired" as const },
      now: event.at,
      justCompleted: [],
    })),
    recordVote: assign(({ context, event }) => {
      if (event.type !== "CANCEL_VOTE") return {};
      const model = cloneModel(context.model);
      model.cancelVotes |= event.roles & 0xf;
      if (model.cancelVotes === 0xf) model.status = "cancelled";
      return { model, now: event.at, justCompleted: [] };
    }),
    withdrawVotes: assign(({ context, event }) => {
      if (event.type !== "WITHDRAW_CANCEL_VOTE") return {};
      const model = cloneModel(context.model);
      model.cancelVotes &= ~event.roles & 0xf;
      return { model, now: event.at, justCompleted: [] };
    }),
    // A timer that fired moves the clock to the moment it was set for, or as far as one timer reaches.
    moveClockToWaitingTimeEnd: assign(({ context }) => ({
      now: nextWaitingTimeEnd(context.model, context.now) as number,
      justCompleted: [],
    })),
    moveClockToDeadlineMiss: assign(({ context }) => ({
      now: nextDeadlineMiss(context.model, context.now) as number,
      justCompleted: [],
    })),
    moveClockByLongestTimer: assign(({ context }) => ({
      now: context.now + MAX_STEP_SECONDS,
      justCompleted: [],
    })),
    // The engine provides these: submit `advance` / `expire` to the chain.
    requestAdvance: () => {},
    requestExpire: () => {},
  },
  delays: {
    untilWaitingTimeEnds: ({ context }) => delayUntil(nextWaitingTimeEnd(context.model, context.now), context.now),
    untilDeadlinePasses: ({ context }) => delayUntil(nextDeadlineMiss(context.model, context.now), context.now),
  },
}).createMachine({
  id: "mortgageCase",
  context: ({ input }) => ({
    model: newCaseModel(input.workflow.stages, input.openedAt, input.funded ?? false),
    now: input.openedAt,
    justCompleted: [],
  }),
  initial: "open",
  states: {
    open: {
      always: { guard: "everyStageCompleted", target: "completed" },
      on: {
        SIGN_OFF: {
          guard: and(["stageRequiresRole", "notYetSignedOff", "keptTimesFit"]),
          target: "open",
          reenter: true,
          actions: "recordSignOff",
        },
        REVOKE: { guard: "signedOffAndStageNotCompleted", target: "open", reenter: true, actions: "recordRevocation" },
        FUNDED: { guard: and(["notYetFunded", "keptTimesFit"]), target: "open", reenter: true, actions: "recordFunding" },
        ADVANCE: { guard: and(["aStageIsReady", "keptTimesFit"]), target: "open", reenter: true, actions: "completeReadyStages" },
        EXPIRE: [
          { guard: "aDeadlineWasMissedBeforeRelease", target: "expired", actions: "markExpired" },
          { guard: "aDeadlineWasMissedAfterRelease", target: "open", reenter: true, actions: "markOverdue" },
        ],
        CANCEL_VOTE: [
          { guard: and(["notReleased", "bringsANewVote", "isTheLastVote"]), target: "cancelled", actions: "recordVote" },
          { guard: and(["notReleased", "bringsANewVote"]), target: "open", reenter: true, actions: "recordVote" },
        ],
        WITHDRAW_CANCEL_VOTE: { guard: "withdrawsAStandingVote", target: "open", reenter: true, actions: "withdrawVotes" },
      },
      after: {
        untilWaitingTimeEnds: [
          {
            guard: "timerReachedAWaitingTimeEnd",
            target: "open",
            reenter: true,
            actions: ["moveClockToWaitingTimeEnd", "requestAdvance"],
          },
          { target: "open", reenter: true, actions: "moveClockByLongestTimer" },
        ],
        untilDeadlinePasses: [
          {
            guard: "timerReachedADeadline",
            target: "open",
            reenter: true,
            actions: ["moveClockToDeadlineMiss", "requestExpire"],
          },
          { target: "open", reenter: true, actions: "moveClockByLongestTimer" },
        ],
      },
    },
    completed: { type: "final" },
    expired: { type: "final" },
    cancelled: { type: "final" },
  },
});
