/**
 * The graph of a case machine over a reduced set of events, shared by the graph test (what is reachable)
 * and the differential test (every shortest path replayed on chain).
 *
 * The reduced events keep the graph small while still reaching every outcome:
 * - SIGN_OFF by the next missing role (in role order) of a stage whose prerequisites are complete; once a
 *   stage has a sign-off, only its next one is offered (with EXPIRE and CANCEL_VOTE), so "every required role
 *   signs stage i" is a run of consecutive SIGN_OFFs, not interleaved with other sign-offs, funding or waits;
 * - FUNDED while the escrow is not funded;
 * - ADVANCE at the next moment a waiting time ends (`nextWaitingTimeEnd`);
 * - EXPIRE at the next moment a deadline is missed (`nextDeadlineMiss`);
 * - CANCEL_VOTE by all four roles at once (mask 0b1111), before the release;
 * - between stages, CANCEL_VOTE by the buyer alone before the release, and WITHDRAW_CANCEL_VOTE by the buyer
 *   while its vote stands (so a vote can be withdrawn, or cleared by a binding stage's completion).
 * Every event but ADVANCE and EXPIRE happens at the machine's `now`, so time moves only when the graph waits
 * for it and a state's times are few.
 */
import {
  getAdjacencyMap,
  getShortestPaths,
  type AdjacencyMap,
  type AdjacencyValue,
  type StatePath,
} from "xstate/graph";
import type { SnapshotFrom } from "xstate";
import {
  type CaseEvent,
  type CaseMachineInput,
  caseMachine,
  nextDeadlineMiss,
  nextWaitingTimeEnd,
} from "../../workflows/machine";
import { awaitedRoles, isCompleted, isFullySigned, prerequisitesComplete } from "../../workflows/case-rules";

export type CaseSnapshot = SnapshotFrom<typeof caseMachine>;
export type CasePath = StatePath<CaseSnapshot, CaseEvent>;

export const TEMPLATE_IDS = ["us-purchase", "uk-purchase", "uk-remortgage"] as const;

export const ALL_ROLES = 0b1111;
/** The buyer's role mask: the one party whose vote the graph casts and withdraws alone. */
export const BUYER = 0b0100;

export function reducedEvents(snapshot: CaseSnapshot): CaseEvent[] {
  if (snapshot.status !== "active") return [];
  const { model, now } = snapshot.context;
  const events: CaseEvent[] = [];
  const partlySigned = model.rules.findIndex((_, s) => model.signedOff[s] !== 0 && !isFullySigned(model, s));
  if (partlySigned >= 0) {
    events.push({ type: "SIGN_OFF", stage: partlySigned, role: awaitedRoles(model, partlySigned)[0], at: now });
  } else {
    model.rules.forEach((_, stage) => {
      if (isCompleted(model, stage) || !prerequisitesComplete(model, stage)) return;
      const [role] = awaitedRoles(model, stage);
      if (role !== undefined) events.push({ type: "SIGN_OFF", stage, role, at: now });
    });
    if (!model.funded) events.push({ type: "FUNDED", at: now });
    const waitingTimeEnd = nextWaitingTimeEnd(model, now);
    if (waitingTimeEnd !== null) events.push({ type: "ADVANCE", at: waitingTimeEnd });
    if (model.cancelVotes & BUYER) events.push({ type: "WITHDRAW_CANCEL_VOTE", roles: BUYER, at: now });
    else if (!model.released) events.push({ type: "CANCEL_VOTE", roles: BUYER, at: now });
  }
  // Expiry and cancellation stay on offer in the middle of a stage's sign-offs too.
  const deadlineMiss = nextDeadlineMiss(model, now);
  if (deadlineMiss !== null) events.push({ type: "EXPIRE", at: deadlineMiss });
  if (!model.released) events.push({ type: "CANCEL_VOTE", roles: ALL_ROLES, at: now });
  return events;
}

/** A state is its value, its clock and its model (the rules, the same everywhere, left out). */
export function serializeCase(snapshot: CaseSnapshot): string {
  const { rules: _rules, ...model } = snapshot.context.model;
  return JSON.stringify([snapshot.value, snapshot.context.now, model]);
}

export interface CaseGraph {
  adjacency: AdjacencyMap<CaseSnapshot, CaseEvent>;
  /** One shortest path to every reachable state; each one's prefix is the path to an earlier state. */
  paths: CasePath[];
}

/** Walks the machine of `input` over the reduced events. */
export function exploreCase(input: CaseMachineInput, limit = 50_000): CaseGraph {
  const options = { input, events: reducedEvents, serializeState: serializeCase, limit };
  return {
    adjacency: getAdjacencyMap(caseMachine, options),
    paths: getShortestPaths(caseMachine, options),
  };
}

/** The events of a path, in order (without the machine's own start, which the paths list first). */
export function eventsOf(path: CasePath): CaseEvent[] {
  return path.steps.map((step) => step.event).filter((event) => !event.type.startsWith("xstate."));
}

/** The graph's states, each with its serialized key and the states its events lead to. */
export function statesOf(graph: CaseGraph): [string, AdjacencyValue<CaseSnapshot, CaseEvent>][] {
  return Object.entries(graph.adjacency) as [string, AdjacencyValue<CaseSnapshot, CaseEvent>][];
}
