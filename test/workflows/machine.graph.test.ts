/**
 * The graph of each template's case machine over the reduced events of ./machine-paths.ts: every stage can
 * complete, the case can complete, and no state is stuck: from every open state completion stays reachable,
 * cancellation too until the release, and expiry wherever a stage that has not completed has a deadline.
 */
import { expect } from "chai";
import { initialTransition, transition } from "xstate";
import { getTemplate } from "../../workflows";
import { caseMachine, nextDeadlineMiss } from "../../workflows/machine";
import { isCompleted, stageStatus } from "../../workflows/case-rules";
import {
  BUYER,
  type CaseGraph,
  type CaseSnapshot,
  TEMPLATE_IDS,
  eventsOf,
  exploreCase,
  serializeCase,
  statesOf,
} from "./machine-paths";

const OPENED_AT = 1_750_000_000;

/** The long-stop of a template, in seconds after the opening (on its releasing stage). */
function longStopOf(template: ReturnType<typeof getTemplate>): number {
  return Math.max(...template.stages.map((r) => r.longStopSeconds));
}

type Outcome = "completed" | "expired" | "cancelled";

/** The states from which some state with `value` is reachable (the states themselves included). */
function statesReaching(graph: CaseGraph, value: Outcome): Set<string> {
  const predecessors = new Map<string, string[]>();
  for (const [key, { transitions }] of statesOf(graph)) {
    for (const { state } of Object.values(transitions)) {
      const next = serializeCase(state);
      predecessors.set(next, [...(predecessors.get(next) ?? []), key]);
    }
  }
  const reaching = new Set(
    statesOf(graph)
      .filter(([, v]) => v.state.value === value)
      .map(([k]) => k),
  );
  const queue = [...reaching];
  while (queue.length > 0) {
    for (const p of predecessors.get(queue.pop() as string) ?? []) {
      if (!reaching.has(p)) {
        reaching.add(p);
        queue.push(p);
      }
    }
  }
  return reaching;
}

function replay(
  input: Parameters<typeof initialTransition<typeof caseMachine>>[1],
  events: ReturnType<typeof eventsOf>,
): CaseSnapshot {
  let [snapshot] = initialTransition(caseMachine, input);
  for (const event of events) [snapshot] = transition(caseMachine, snapshot, event);
  return snapshot;
}

describe("workflows/machine graph", function () {
  for (const id of TEMPLATE_IDS) {
    describe(id, function () {
      const template = getTemplate(id);
      const input = { workflow: template, openedAt: OPENED_AT };
      let graph: CaseGraph;
      let openStates: CaseSnapshot[];

      before(function () {
        const started = Date.now();
        graph = exploreCase(input);
        openStates = statesOf(graph)
          .map(([, v]) => v.state)
          .filter((s) => s.value === "open");
        const counts: Record<string, number> = {};
        for (const { state } of graph.paths) counts[String(state.value)] = (counts[String(state.value)] ?? 0) + 1;
        console.log(
          `      ${id}: ${graph.paths.length} states (${JSON.stringify(counts)}), longest path ${Math.max(...graph.paths.map((p) => p.steps.length))} events, ${Date.now() - started} ms`,
        );
      });

      it("finds one shortest path to every state it reaches", function () {
        expect(graph.paths.length).to.equal(statesOf(graph).length);
        expect(new Set(graph.paths.map((p) => serializeCase(p.state))).size).to.equal(graph.paths.length);
      });

      it("reaches the completion of every stage", function () {
        for (const stage of template.details) {
          const path = graph.paths.find((p) => isCompleted(p.state.context.model, stage.index));
          expect(path, `a path that completes ${stage.id}`).to.not.equal(undefined);
        }
      });

      it("reaches the final state completed, every stage completed", function () {
        const completed = graph.paths.filter((p) => p.state.value === "completed");
        expect(completed.length).to.be.greaterThan(0);
        for (const { state } of completed) {
          expect(state.status).to.equal("done");
          expect(state.context.model.status).to.equal("completed");
          expect(state.context.model.released).to.equal(true);
          expect(
            template.details.map((d) => stageStatus(state.context.model, d.index, state.context.now)),
          ).to.deep.equal(template.details.map(() => "completed"));
        }
      });

      it("ends an expired or cancelled case with every stage that had not completed expired or cancelled", function () {
        const ended = graph.paths.map((p) => p.state).filter((s) => s.value === "expired" || s.value === "cancelled");
        expect(ended.length).to.be.greaterThan(10);
        const actual = ended.map(({ status, context: { model, now } }) => ({
          status,
          released: model.released,
          stages: model.rules.map((_, i) => stageStatus(model, i, now)),
        }));
        const expected = ended.map(({ value, context: { model } }) => ({
          status: "done",
          released: false,
          stages: model.rules.map((_, i) => (isCompleted(model, i) ? "completed" : value)),
        }));
        expect(actual).to.deep.equal(expected);
      });

      it("keeps completion reachable from every open state: nothing is stuck", function () {
        const reaching = statesReaching(graph, "completed");
        const stuck = openStates.filter((s) => !reaching.has(serializeCase(s)));
        expect(stuck.map(serializeCase)).to.deep.equal([]);
        expect(openStates.length).to.be.greaterThan(10);
      });

      it("keeps cancellation reachable from every open state before the release, and only then", function () {
        const reaching = statesReaching(graph, "cancelled");
        for (const s of openStates) {
          expect(reaching.has(serializeCase(s)), serializeCase(s)).to.equal(!s.context.model.released);
        }
        expect(openStates.some((s) => s.context.model.released)).to.equal(true);
      });

      it("keeps expiry reachable from every open state before the release where a stage not completed has a deadline, and only there", function () {
        const reaching = statesReaching(graph, "expired");
        for (const s of openStates) {
          const { model } = s.context;
          const deadlineAhead = model.rules.some(
            (r, i) => (r.deadlineSeconds > 0 || r.longStopSeconds > 0) && !isCompleted(model, i),
          );
          expect(reaching.has(serializeCase(s)), serializeCase(s)).to.equal(!model.released && deadlineAhead);
        }
      });

      it("lets time alone expire every open state before the release: a party that goes silent cannot hold the deposits", function () {
        const silent = openStates.filter((s) => !s.context.model.released);
        expect(silent.length).to.be.greaterThan(10);
        for (const start of silent) {
          // No one acts any more: only the deadline timer, fed to the machine as the engine's expire would be.
          let snapshot = start;
          for (let step = 0; step < 3 && snapshot.value === "open"; step++) {
            const missAt = nextDeadlineMiss(snapshot.context.model, snapshot.context.now);
            expect(missAt, `a running deadline in ${serializeCase(snapshot)}`).to.not.equal(null);
            [snapshot] = transition(caseMachine, snapshot, { type: "EXPIRE", at: missAt! });
          }
          expect(snapshot.value, serializeCase(start)).to.equal("expired");
          expect(snapshot.context.now - OPENED_AT, "by the long-stop at the latest").to.be.at.most(
            longStopOf(template) + 1,
          );
        }
      });

      it("withdraws the buyer's vote wherever it stands, and only that vote", function () {
        let withdrawals = 0;
        for (const [key, { state, transitions }] of statesOf(graph)) {
          for (const { event, state: next } of Object.values(transitions)) {
            if (event.type !== "WITHDRAW_CANCEL_VOTE") continue;
            withdrawals++;
            expect(state.context.model.cancelVotes & BUYER, key).to.equal(BUYER);
            expect(next.context.model.cancelVotes, key).to.equal(state.context.model.cancelVotes & ~BUYER);
            expect(next.value).to.equal("open");
          }
        }
        expect(withdrawals).to.be.greaterThan(0);
      });

      it("clears every cancel vote when a binding stage completes, and no vote otherwise", function () {
        const binding = template.details.filter((d) => d.binding).map((d) => d.index);
        let cleared = 0;
        for (const [key, { state, transitions }] of statesOf(graph)) {
          for (const { event, state: next } of Object.values(transitions)) {
            if (event.type === "CANCEL_VOTE" || event.type === "WITHDRAW_CANCEL_VOTE" || next.value === "cancelled")
              continue;
            const bound = binding.some(
              (b) => !isCompleted(state.context.model, b) && isCompleted(next.context.model, b),
            );
            const before = state.context.model.cancelVotes;
            expect(next.context.model.cancelVotes, `${event.type} from ${key}`).to.equal(bound ? 0 : before);
            if (bound && before !== 0) cleared++;
          }
        }
        if (binding.length > 0)
          expect(cleared, "a vote cast before a binding stage, then cleared").to.be.greaterThan(0);
      });

      it("takes every event of the reduced set it offers: none is ignored", function () {
        for (const [key, { transitions }] of statesOf(graph)) {
          for (const [event, { state }] of Object.entries(transitions)) {
            expect(serializeCase(state), `${event} from ${key}`).to.not.equal(key);
          }
        }
      });

      it("gets the same state again when each path's events are replayed from the start", function () {
        for (const path of graph.paths) {
          expect(serializeCase(replay(input, eventsOf(path)))).to.equal(serializeCase(path.state));
        }
      });
    });
  }
});
