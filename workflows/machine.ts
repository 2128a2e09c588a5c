/**
 * The XState machine of one case of a workflow: the engine runs it as each open case's durable actor, and the
 * differential test feeds it the same transactions as `MortgageEscrow` to show that its context and
 * `stageStatus` agree with the contract after every one.
 *
 * Events in: the contract's transactions of the case (each carrying its block's time; amendments included:
 * proposals, consents and their withdrawal, by the rules of `case-amendments.ts`), a party's approval, and the
 * chain clock. Actions out: a sign-off (`requestSignOff`), `advance` and `expire` when time lets the
 * contract take them (`requestAdvance`, `requestExpire`), the seller's payout once the escrow is released
 * (`requestSellerPayout`), and word that a stage's legal moment has come (`announceLegalMoment`). The engine
 * provides those actions with `.provide()`, tests provide fakes. It never imports ethers.
 *
 * Guards are the contract's rules (`case-rules.ts`) and, for a workflow's machine (`caseMachineFor(law)`),
 * the law's: a waiting time in business days lasts until its legal moment, not the contract's floor.
 * Delays are counted on the machine's own clock (`context.now`, chain seconds), which moves only with its
 * events and timers, so a timer is set for an exact chain moment whatever the wall clock says; the engine's
 * scheduler (engine/runtime/chain-scheduler.ts) turns them into wake-ups on the chain clock.
 */
import { and, assign, enqueueActions, setup } from "xstate";
import type { CompiledWorkflow } from "./compile";
import { createLegalGuard } from "./legal-guard";
import {
  type CaseModel,
  TimeOverflowError,
  canComplete,
  completeReadyStages,
  fundingCandidates,
  isCompleted,
  isFullySigned,
  missedDeadlines,
  newCaseModel,
  signedCandidates,
} from "./case-rules";
import { type CaseLaw, dueDeadlineMiss, dueWaitingTimeEnd, nextMoment } from "./case-moments";
import {
  type Proposal,
  consentRefusalOf,
  mayWithdrawConsent,
  proposalRefusalOf,
  recordConsent,
  recordProposal,
  recordWithdrawal,
} from "./case-amendments";

export { nextDeadlineMiss, nextWaitingTimeEnd } from "./case-moments";

/** The contract's transactions of a case, each with `at`: the time, in chain seconds, of its block. */
export type ContractEvent =
  | { type: "SIGN_OFF"; stage: number; role: number; at: number }
  | { type: "REVOKE"; stage: number; role: number; at: number }
  | { type: "FUNDED"; at: number }
  | { type: "ADVANCE"; at: number }
  | { type: "EXPIRE"; at: number }
  /** `roles`: the role mask of the voter (a party holding two roles votes for both at once). */
  | { type: "CANCEL_VOTE"; roles: number; at: number }
  /** `withdrawCancelVote`: `roles` is the role mask of the caller, whose every standing vote is withdrawn. */
  | { type: "WITHDRAW_CANCEL_VOTE"; roles: number; at: number }
  /**
   * `proposeAmendment` by `proposal.proposer`, with the roles the chain requires (`AmendmentProposed`).
   * `funded`: for a terms change that the proposer's own consent applies, whether the escrow is funded under
   * the new terms (the chain's word, as `FUNDED` is).
   */
  | { type: "PROPOSE_AMENDMENT"; proposal: Proposal; at: number; funded?: boolean }
  /** A consent to amendment `amendment` (direct, or one relayed item); `funded` as above. */
  | { type: "CONSENT"; amendment: number; role: number; at: number; funded?: boolean }
  | { type: "WITHDRAW_CONSENT"; amendment: number; role: number; at: number };

export type CaseEvent =
  | ContractEvent
  /**
   * The chain clock reads `at`: what time has made due since the machine's clock (while the engine was
   * stopped, or when a timer's submission was refused as too early) is requested now, and the timers are set
   * again from `at`. XState does not restore pending delays from a snapshot: this is how they come back.
   */
  | { type: "CLOCK"; at: number }
  /**
   * A party asks to sign off: `requestSignOff` runs if the contract and the law take that sign-off at the
   * chain moment `atMs`. `ticket` names the engine's pending submission; the machine only passes it on.
   */
  | { type: "APPROVE"; stage: number; role: number; atMs: number; ticket: number }
  /**
   * The case as the chain holds it, for when the transactions fed here cannot say it: a reorganisation, or a
   * model the engine found to disagree with its projection. `at` becomes the machine's clock.
   */
  | { type: "RESYNC"; model: CaseModel; at: number };

/** A new case, from its opening; or a case's model as the chain holds it now, at chain second `now`. */
export type CaseMachineInput =
  | {
      workflow: Pick<CompiledWorkflow, "stages"> & Partial<Pick<CompiledWorkflow, "amendmentRules">>;
      openedAt: number;
      /** Whether the case opened with nothing to pay in (deposit and loan zero). */
      funded?: boolean;
    }
  | { model: CaseModel; now: number };

export interface CaseMachineContext {
  model: CaseModel;
  /** The time of the latest event or timer: the machine's clock, in chain seconds. */
  now: number;
  /**
   * The last moment (a waiting time's end, a deadline missed, a legal moment) the machine's timer acted on.
   * Moments after it are acted on in order, each once, even when an event moved the clock past them first
   * (a deposit mined in the very second a waiting time ends): the timer for such a moment fires at once.
   */
  actedUntil: number;
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
    movedDeadlines: model.movedDeadlines?.map((m) => ({ ...m })),
    amendments: model.amendments?.map((a) => ({ ...a })),
  };
}

/**
 * What a sign-off, the funding deposit or `advance` does to a copy of the model: the stages it completes.
 * Throws `TimeOverflowError` where the contract reverts with `MortgageEscrowTimeOverflow`.
 */
function completionsOf(
  model: CaseModel,
  event: CaseEvent & { at: number },
): { model: CaseModel; justCompleted: number[] } {
  const next = cloneModel(model);
  switch (event.type) {
    case "SIGN_OFF":
      next.signedOff[event.stage] |= 1 << event.role;
      // As the contract: only the last missing sign-off can complete the stage (and its cascade).
      return {
        model: next,
        justCompleted: isFullySigned(next, event.stage) ? completeReadyStages(next, event.at, [event.stage]) : [],
      };
    case "FUNDED":
      next.funded = true;
      return { model: next, justCompleted: completeReadyStages(next, event.at, fundingCandidates(next)) };
    default:
      return { model: next, justCompleted: completeReadyStages(next, event.at, signedCandidates(next)) };
  }
}

/** Whether the contract would take the transaction: every time it has to keep fits its 32-bit field. */
function timesFit(model: CaseModel, event: CaseEvent & { at: number }): boolean {
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

/** The machine's clock after an event at `at`: never back (a transaction read after a timer moved it on). */
const later = (now: number, at: number) => Math.max(now, at);

/** The stage and the role an event names (a sign-off, a revocation, an approval), or null. */
function stageAndRole(event: CaseEvent): { stage: number; role: number } | null {
  return "stage" in event && "role" in event ? event : null;
}

/** The case machine with the law `law` (a workflow's legal guard), or the contract's rules alone. */
function createCaseMachine(law?: CaseLaw) {
  return setup({
    types: {
      context: {} as CaseMachineContext,
      events: {} as CaseEvent,
      input: {} as CaseMachineInput,
    },
    guards: {
      stageRequiresRole: ({ context, event }) => {
        const named = stageAndRole(event);
        return named !== null && (((context.model.rules[named.stage]?.roles ?? 0) >> named.role) & 1) === 1;
      },
      notYetSignedOff: ({ context, event }) => {
        const named = stageAndRole(event);
        return named !== null && ((context.model.signedOff[named.stage] >> named.role) & 1) === 0;
      },
      signedOffAndStageNotCompleted: ({ context, event }) =>
        event.type === "REVOKE" &&
        ((context.model.signedOff[event.stage] >> event.role) & 1) === 1 &&
        !isCompleted(context.model, event.stage),
      stageNotCompleted: ({ context, event }) => event.type === "APPROVE" && !isCompleted(context.model, event.stage),
      /** The legal guard: a waiting stage takes no sign-off before the law's moment. */
      lawAllowsTheSignOff: ({ context, event }) =>
        event.type === "APPROVE" &&
        (law?.mayComplete(context.model, event.stage, new Date(event.atMs)).allowed ?? true),
      notYetFunded: ({ context }) => !context.model.funded,
      /** `MortgageEscrowTimeOverflow`: a completion past early 2106 that must keep its time reverts. */
      keptTimesFit: ({ context, event }) => "at" in event && timesFit(context.model, event),
      aStageIsReady: ({ context, event }) =>
        "at" in event && context.model.rules.some((_, s) => canComplete(context.model, s, event.at)),
      aDeadlineWasMissedBeforeRelease: ({ context, event }) =>
        event.type === "EXPIRE" && !context.model.released && missedDeadlines(context.model, event.at).length > 0,
      aDeadlineWasMissedAfterRelease: ({ context, event }) =>
        event.type === "EXPIRE" && context.model.released && missedDeadlines(context.model, event.at).length > 0,
      notReleased: ({ context }) => !context.model.released,
      bringsANewVote: ({ context, event }) =>
        event.type === "CANCEL_VOTE" && (event.roles & ~context.model.cancelVotes & 0xf) !== 0,
      isTheLastVote: ({ context, event }) =>
        event.type === "CANCEL_VOTE" && ((context.model.cancelVotes | event.roles) & 0xf) === 0xf,
      /** `withdrawCancelVote` reverts for a stranger and for a party none of whose roles has a vote standing. */
      withdrawsAStandingVote: ({ context, event }) =>
        event.type === "WITHDRAW_CANCEL_VOTE" && (event.roles & context.model.cancelVotes & 0xf) !== 0,
      proposalTaken: ({ context, event }) =>
        event.type === "PROPOSE_AMENDMENT" && proposalRefusalOf(context.model, event.proposal, event.at) === null,
      consentCounts: ({ context, event }) =>
        event.type === "CONSENT" && consentRefusalOf(context.model, event.amendment, event.role, event.at) === null,
      consentStands: ({ context, event }) =>
        event.type === "WITHDRAW_CONSENT" && mayWithdrawConsent(context.model, event.amendment, event.role),
      everyStageCompleted: ({ context }) => context.model.status === "completed",
      caseIsOpen: ({ context }) => context.model.status === "open",
      /** Whether the timer that fired was set for a moment itself (not a step of a long wait). */
      timerReachedAMoment: ({ context }) =>
        reachedByOneTimer(nextMoment(context.model, context.actedUntil, law)?.at ?? null, context.now),
    },
    actions: {
      /** A sign-off completes its stage (and the cascade from it) when it was the last one missing. */
      recordSignOff: assign(({ context, event }) => ({
        ...completionsOf(context.model, event as ContractEvent),
        now: later(context.now, (event as ContractEvent).at),
      })),
      recordRevocation: assign(({ context, event }) => {
        if (event.type !== "REVOKE") return {};
        const model = cloneModel(context.model);
        model.signedOff[event.stage] &= ~(1 << event.role);
        return { model, now: later(context.now, event.at), justCompleted: [] };
      }),
      recordFunding: assign(({ context, event }) => ({
        ...completionsOf(context.model, event as ContractEvent),
        now: later(context.now, (event as ContractEvent).at),
      })),
      completeReadyStages: assign(({ context, event }) => ({
        ...completionsOf(context.model, event as ContractEvent),
        now: later(context.now, (event as ContractEvent).at),
      })),
      markOverdue: assign(({ context, event }) => {
        if (event.type !== "EXPIRE") return {};
        const model = cloneModel(context.model);
        for (const s of missedDeadlines(model, event.at)) model.overdue[s] = true;
        return { model, now: later(context.now, event.at), justCompleted: [] };
      }),
      markExpired: assign(({ context, event }) => ({
        model: { ...cloneModel(context.model), status: "expired" as const },
        now: later(context.now, (event as ContractEvent).at),
        justCompleted: [],
      })),
      recordVote: assign(({ context, event }) => {
        if (event.type !== "CANCEL_VOTE") return {};
        const model = cloneModel(context.model);
        model.cancelVotes |= event.roles & 0xf;
        if (model.cancelVotes === 0xf) model.status = "cancelled";
        return { model, now: later(context.now, event.at), justCompleted: [] };
      }),
      withdrawVotes: assign(({ context, event }) => {
        if (event.type !== "WITHDRAW_CANCEL_VOTE") return {};
        const model = cloneModel(context.model);
        model.cancelVotes &= ~event.roles & 0xf;
        return { model, now: later(context.now, event.at), justCompleted: [] };
      }),
      /** A proposal, or a consent: the last consent an amendment needs applies it (and what it completes). */
      recordAmendment: assign(({ context, event }) => {
        if (event.type !== "PROPOSE_AMENDMENT" && event.type !== "CONSENT") return {};
        const model = cloneModel(context.model);
        const applied =
          event.type === "PROPOSE_AMENDMENT"
            ? recordProposal(model, event.proposal, event.at, event.funded)
            : recordConsent(model, event.amendment, event.role, event.at, event.funded);
        return { model, now: later(context.now, event.at), justCompleted: applied?.completed ?? [] };
      }),
      withdrawConsent: assign(({ context, event }) => {
        if (event.type !== "WITHDRAW_CONSENT") return {};
        const model = cloneModel(context.model);
        recordWithdrawal(model, event.amendment, event.role);
        return { model, now: later(context.now, event.at), justCompleted: [] };
      }),
      takeModel: assign(({ context, event }) =>
        event.type === "RESYNC"
          ? {
              model: cloneModel(event.model),
              now: event.at,
              actedUntil: Math.min(context.actedUntil, event.at),
              justCompleted: [],
            }
          : {},
      ),
      /** The clock moves to `at`, to which the requests of what time made due meanwhile are then made. */
      moveClockToNow: assign(({ context, event }) =>
        event.type === "CLOCK" ? { now: later(context.now, event.at), justCompleted: [] } : {},
      ),
      // A timer that fired moves the clock to the moment it was set for, or as far as one timer reaches.
      moveClockToNextMoment: assign(({ context }) => {
        const { at } = nextMoment(context.model, context.actedUntil, law) as { at: number };
        return { now: later(context.now, at), actedUntil: at, justCompleted: [] };
      }),
      moveClockByLongestTimer: assign(({ context }) => ({
        now: context.now + MAX_STEP_SECONDS,
        justCompleted: [],
      })),
      // The engine provides these: submit to the chain, or publish. `at` is the moment the request is for
      // (its idempotency key's).
      requestAdvance: (_, _params: { at: number }) => {},
      requestExpire: (_, _params: { at: number }) => {},
      requestSignOff: (_, _params: { ticket: number }) => {},
      /** `released`: whether the escrow is released, so that the seller is owed its payout. */
      requestSellerPayout: (_, _params: { released: boolean }) => {},
      announceLegalMoment: () => {},
    },
    delays: {
      untilNextMoment: ({ context }) =>
        delayUntil(nextMoment(context.model, context.actedUntil, law)?.at ?? null, context.now),
    },
  }).createMachine({
    id: "mortgageCase",
    context: ({ input }) =>
      "model" in input
        ? // Rebuilt from the chain: what was acted on before is not known, so every moment still pending is acted
          // on again (the engine's idempotency keys make a second request of one moment the first one).
          { model: cloneModel(input.model), now: input.now, actedUntil: input.model.openedAt, justCompleted: [] }
        : {
            model: newCaseModel(
              input.workflow.stages,
              input.openedAt,
              input.funded ?? false,
              input.workflow.amendmentRules?.reopenedByTerms ?? 0,
            ),
            now: input.openedAt,
            actedUntil: input.openedAt,
            justCompleted: [],
          },
    initial: "open",
    states: {
      open: {
        always: [
          { guard: "everyStageCompleted", target: "completed" },
          // A case rebuilt from a model the chain already ended.
          { guard: ({ context }) => context.model.status === "expired", target: "expired" },
          { guard: ({ context }) => context.model.status === "cancelled", target: "cancelled" },
        ],
        entry: { type: "requestSellerPayout", params: ({ context }) => ({ released: context.model.released }) },
        on: {
          SIGN_OFF: {
            guard: and(["stageRequiresRole", "notYetSignedOff", "keptTimesFit"]),
            target: "open",
            reenter: true,
            actions: "recordSignOff",
          },
          REVOKE: {
            guard: "signedOffAndStageNotCompleted",
            target: "open",
            reenter: true,
            actions: "recordRevocation",
          },
          FUNDED: {
            guard: and(["notYetFunded", "keptTimesFit"]),
            target: "open",
            reenter: true,
            actions: "recordFunding",
          },
          ADVANCE: {
            guard: and(["aStageIsReady", "keptTimesFit"]),
            target: "open",
            reenter: true,
            actions: "completeReadyStages",
          },
          EXPIRE: [
            { guard: "aDeadlineWasMissedBeforeRelease", target: "expired", actions: "markExpired" },
            { guard: "aDeadlineWasMissedAfterRelease", target: "open", reenter: true, actions: "markOverdue" },
          ],
          CANCEL_VOTE: [
            {
              guard: and(["notReleased", "bringsANewVote", "isTheLastVote"]),
              target: "cancelled",
              actions: "recordVote",
            },
            { guard: and(["notReleased", "bringsANewVote"]), target: "open", reenter: true, actions: "recordVote" },
          ],
          WITHDRAW_CANCEL_VOTE: {
            guard: "withdrawsAStandingVote",
            target: "open",
            reenter: true,
            actions: "withdrawVotes",
          },
          PROPOSE_AMENDMENT: { guard: "proposalTaken", target: "open", reenter: true, actions: "recordAmendment" },
          CONSENT: { guard: "consentCounts", target: "open", reenter: true, actions: "recordAmendment" },
          WITHDRAW_CONSENT: { guard: "consentStands", target: "open", reenter: true, actions: "withdrawConsent" },
          CLOCK: {
            target: "open",
            reenter: true,
            actions: [
              "moveClockToNow",
              enqueueActions(({ context, enqueue }) => {
                const advanceAt = dueWaitingTimeEnd(context.model, context.now, law);
                const expireAt = dueDeadlineMiss(context.model, context.now);
                if (advanceAt !== null) enqueue({ type: "requestAdvance", params: { at: advanceAt } });
                if (expireAt !== null) enqueue({ type: "requestExpire", params: { at: expireAt } });
              }),
            ],
          },
          APPROVE: {
            guard: and([
              "caseIsOpen",
              "stageRequiresRole",
              "notYetSignedOff",
              "stageNotCompleted",
              "lawAllowsTheSignOff",
            ]),
            actions: {
              type: "requestSignOff",
              params: ({ event }) => ({ ticket: event.type === "APPROVE" ? event.ticket : 0 }),
            },
          },
          RESYNC: { target: "open", reenter: true, actions: "takeModel" },
        },
        after: {
          untilNextMoment: [
            {
              guard: "timerReachedAMoment",
              target: "open",
              reenter: true,
              actions: [
                "moveClockToNextMoment",
                // Everything that falls due at the moment just reached, each kind once.
                enqueueActions(({ context, enqueue }) => {
                  const at = context.actedUntil;
                  const reached = nextMoment(context.model, at - 1, law);
                  if (!reached || reached.at !== at) return;
                  if (reached.due.advance) enqueue({ type: "requestAdvance", params: { at } });
                  if (reached.due.expire) enqueue({ type: "requestExpire", params: { at } });
                  if (reached.due.legal) enqueue("announceLegalMoment");
                }),
              ],
            },
            { target: "open", reenter: true, actions: "moveClockByLongestTimer" },
          ],
        },
      },
      completed: {
        type: "final",
        entry: { type: "requestSellerPayout", params: ({ context }) => ({ released: context.model.released }) },
      },
      expired: { type: "final" },
      cancelled: { type: "final" },
    },
  });
}

export type CaseMachine = ReturnType<typeof createCaseMachine>;

/** The contract's rules alone: the machine of a template that no workflow here compiles to. */
export const caseMachine: CaseMachine = createCaseMachine();

const byLaw = new WeakMap<CaseLaw, CaseMachine>();

/** The machine of a workflow whose legal guard is `law` (one machine per guard), or `caseMachine` without one. */
export function caseMachineFor(law: CaseLaw | undefined): CaseMachine {
  if (!law) return caseMachine;
  let machine = byLaw.get(law);
  if (!machine) {
    machine = createCaseMachine(law);
    byLaw.set(law, machine);
  }
  return machine;
}

const byWorkflow = new WeakMap<CompiledWorkflow, CaseMachine>();

/** The machine of a compiled workflow, with that workflow's legal guard: the engine's, and the differential test's. */
export function caseMachineOfWorkflow(workflow: CompiledWorkflow): CaseMachine {
  let machine = byWorkflow.get(workflow);
  if (!machine) {
    machine = caseMachineFor(createLegalGuard(workflow));
    byWorkflow.set(workflow, machine);
  }
  return machine;
}
