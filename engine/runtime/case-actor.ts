/**
 * One case's XState actor, from the workflow's `caseMachine`, whose context is the projection's view of the
 * chain.
 *
 * Why re-create it from the projected `CaseModel` rather than feed it the chain's events: the projection is
 * already the one fold of the events (reorganisations and restarts included), so a second fold could only
 * disagree with it; and XState measures `after` delays from the moment an actor enters a state, not from
 * the event's block time, nor does it restore pending delays from a snapshot. So each time the case changes
 * on chain, or the chain clock jumps (a dev clock moved forward), the runtime stops the case's actor and
 * starts a new one whose context is the projected model at the chain clock's `now`: entering `open` arms the
 * machine's own timers afresh. The machine and its guards are `caseMachine`'s, unchanged; only the source of
 * its context differs (`input` is the context itself), and its two delays are measured on the chain clock.
 */
import { type AnyActorRef, createActor, createMachine } from "xstate";
import { caseMachine, nextDeadlineMiss, nextWaitingTimeEnd, type CaseMachineContext, type CaseMachineInput } from "../../workflows/machine";
import type { CaseModel } from "../../workflows/case-rules";
import type { ChainClock } from "../chain/clock";

/** setTimeout's limit, and the machine's longest step in whole seconds (as in workflows/machine.ts). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const MAX_STEP_SECONDS = Math.floor(MAX_TIMEOUT_MS / 1000);

/** `caseMachine` with its context taken from `input` (a projected model) instead of a new case. */
const restoredCaseMachine = createMachine(
  { ...caseMachine.config, context: ({ input }: { input: CaseMachineContext }) => input } as typeof caseMachine.config,
  caseMachine.implementations,
) as unknown as typeof caseMachine;

export interface CaseTimerHandlers {
  /** The machine's timer found that time lets the contract complete a stage at chain second `at`. */
  requestAdvance(at: number): void;
  /** The machine's timer found that a deadline was missed at chain second `at`. */
  requestExpire(at: number): void;
}

export interface CaseActor {
  readonly caseId: string;
  /** The machine's context: the projected model. */
  context(): CaseMachineContext;
  stop(): void;
}

/** What an actor's actions and delays need besides the machine's context: kept in its context as `env`. */
interface ActorEnv {
  clock: ChainClock;
  handlers: CaseTimerHandlers;
}

const envOf = (context: CaseMachineContext) => (context as CaseMachineContext & { env: ActorEnv }).env;
/** The delay until chain second `second`, measured on the actor's chain clock. */
export const untilChainSecond = (clock: ChainClock, second: number) => Math.min(MAX_TIMEOUT_MS, Math.max(0, second * 1000 - clock.nowMs()));
const wakeAt = (target: number | null, now: number) => Math.min(target ?? now + MAX_STEP_SECONDS, now + MAX_STEP_SECONDS);

/**
 * `restoredCaseMachine` with its actions and delays, provided once: they find the case's clock and handlers
 * in the actor's context (`env`, which the machine's assignments carry along), so starting an actor does not
 * build a new machine (`provide` per actor was a third of the runtime's time).
 */
const providedCaseMachine = restoredCaseMachine.provide({
  actions: {
    requestAdvance: ({ context }) => envOf(context).handlers.requestAdvance(context.now),
    requestExpire: ({ context }) => envOf(context).handlers.requestExpire(context.now),
  },
  delays: {
    untilWaitingTimeEnds: ({ context }) =>
      untilChainSecond(envOf(context).clock, wakeAt(nextWaitingTimeEnd(context.model, context.now), context.now)),
    untilDeadlinePasses: ({ context }) => untilChainSecond(envOf(context).clock, wakeAt(nextDeadlineMiss(context.model, context.now), context.now)),
  },
});

/**
 * Starts the actor of one case from its projected model, `now` being the chain clock's second. Its timers
 * wake at chain moments: the delay is that moment minus the chain clock's `nowMs()`, so a wake-up is never
 * early and never late by more than the event loop.
 */
export function startCaseActor(caseId: string, model: CaseModel, clock: ChainClock, handlers: CaseTimerHandlers): CaseActor {
  const env: ActorEnv = { clock, handlers };
  const input = { model: structuredClone(model), now: clock.nowSeconds(), justCompleted: [], env };
  // The restored machine reads its context from `input`; its declared input type is the new case's.
  const actor: AnyActorRef = createActor(providedCaseMachine, { input: input as unknown as CaseMachineInput });
  actor.start();
  return {
    caseId,
    context: () => {
      const { env: _env, ...context } = actor.getSnapshot().context as CaseMachineContext & { env: ActorEnv };
      return context;
    },
    stop: () => actor.stop(),
  };
}
