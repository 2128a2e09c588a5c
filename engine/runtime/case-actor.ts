/**
 * How one case's durable actor is made: the workflow's machine (`caseMachineFor`, the one the differential
 * test checks) with the engine's effects provided, on the engine's chain scheduler, started from the case's
 * opening, restored from its persisted snapshot, or rebuilt from the projection's model.
 *
 * The effects are provided once per machine, not per actor: each effect learns its case from the actor's
 * id (`self.id`, the case id), so starting an actor builds no machine.
 */
import { type Actor, createActor } from "xstate";
import type { CaseModel } from "../../workflows/case-rules";
import type { CaseLaw } from "../../workflows/case-moments";
import { type CaseMachine, type CaseMachineInput, caseMachineFor } from "../../workflows/machine";
import type { ChainScheduler } from "./chain-scheduler";
import { machineVersionOf } from "./snapshot-store";

/**
 * Raised when a guard's or an action's meaning changes while the machine's graph does not (a graph change
 * changes the version by itself): snapshots written before are then rebuilt, not restored.
 */
const MACHINE_REVISION = 2;

/** What the actors ask of the engine; `caseId` is the actor's. */
export interface CaseEffects {
  requestAdvance(caseId: string, at: number): void;
  requestExpire(caseId: string, at: number): void;
  requestSignOff(ticket: number): void;
  requestSellerPayout(caseId: string): void;
  announceLegalMoment(caseId: string): void;
}

export type CaseActor = Actor<CaseMachine>;

export class CaseActors {
  private readonly machines = new Map<CaseLaw | undefined, { machine: CaseMachine; version: string }>();

  constructor(
    private readonly scheduler: ChainScheduler,
    private readonly effects: CaseEffects,
  ) {}

  /** The machine's version for `law`: what a snapshot must have been written by to be restored. */
  versionFor(law: CaseLaw | undefined): string {
    return this.machineFor(law).version;
  }

  /** A new case's actor, from its opening at chain second `openedAt`. */
  opened(caseId: string, law: CaseLaw | undefined, input: CaseMachineInput & { openedAt: number }): CaseActor {
    return this.start(caseId, law, input.openedAt, input);
  }

  /** The actor of a case as the projection holds it, its clock at the last event's time. */
  rebuilt(caseId: string, law: CaseLaw | undefined, model: CaseModel, now: number): CaseActor {
    return this.start(caseId, law, now, { model, now });
  }

  /**
   * The actor from its persisted snapshot, which the caller checked against the projection's `model`; its
   * clock is the snapshot's `now`, and its timers are not running until it is sent an event.
   */
  restored(caseId: string, law: CaseLaw | undefined, snapshot: unknown, model: CaseModel, now: number): CaseActor {
    return this.start(caseId, law, now, { model, now }, snapshot);
  }

  private start(
    caseId: string,
    law: CaseLaw | undefined,
    now: number,
    input: CaseMachineInput,
    snapshot?: unknown,
  ): CaseActor {
    const { machine } = this.machineFor(law);
    const actor = createActor(machine, {
      id: caseId,
      clock: this.scheduler,
      input,
      ...(snapshot === undefined ? {} : { snapshot: snapshot as ReturnType<CaseActor["getPersistedSnapshot"]> }),
    });
    // The timers the actor sets as it starts are counted from its clock.
    return this.scheduler.at(now * 1000, () => actor.start());
  }

  private machineFor(law: CaseLaw | undefined): { machine: CaseMachine; version: string } {
    let entry = this.machines.get(law);
    if (!entry) {
      const effects = this.effects;
      const machine = caseMachineFor(law).provide({
        actions: {
          requestAdvance: ({ self }, params: { at: number }) => effects.requestAdvance(self.id, params.at),
          requestExpire: ({ self }, params: { at: number }) => effects.requestExpire(self.id, params.at),
          requestSignOff: (_, params: { ticket: number }) => effects.requestSignOff(params.ticket),
          requestSellerPayout: ({ self }, params: { released: boolean }) =>
            params.released && effects.requestSellerPayout(self.id),
          announceLegalMoment: ({ self }) => effects.announceLegalMoment(self.id),
        },
      }) as CaseMachine;
      entry = { machine, version: machineVersionOf(machine, MACHINE_REVISION) };
      this.machines.set(law, entry);
    }
    return entry;
  }
}
