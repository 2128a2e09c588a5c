/**
 * `createEngine(config)`: the engine's one entry. It binds the chain (the in-process Hardhat provider, or a
 * JSON-RPC URL), opens the store (SQLite), and wires the relayer (outbox, nonces, batches), the projection
 * (events to the read model, with the chain clock) and the runtime (one actor per case, timers, the engine's
 * own `advance`, `expire` and `withdrawFor`), and the parties' requests (approvals and the rest).
 *
 * The engine's clock is the chain's: the projection feeds each block it reads to one `ChainClock`, and the
 * engine seeds it at start from the latest block and from the block being built (the latest block of an
 * idle chain may be hours old), so an idle chain whose clock was moved forward is seen.
 *
 * Restart: stop, then `createEngine` again on the same data folder. The relayer carries on from its outbox,
 * the projection from its checkpoint, and the runtime re-arms every timer from the projected cases.
 */
import { join } from "node:path";
import { PollingLoop } from "./polling-loop";
import { getAddress, type BaseWallet, type JsonRpcApiProvider } from "ethers";
import { type CompiledWorkflow, loadTemplates } from "../workflows";
import { ChainClock } from "./chain/clock";
import { createProvider } from "./chain/provider";
import { parseEngineConfig, type EngineConfigInput } from "./config";
import { EngineError } from "./errors";
import type { CaseProgress } from "./projection/case-view";
import type { JsonValue } from "./projection/event-log";
import { Projection, type HistoryEntry, type ProgressListener } from "./projection/projection";
import { Relayer, type RelayerHealth } from "./relayer/relayer";
import { openDatabase } from "./store/database";
import { AmendmentRequests } from "./runtime/amendment-requests";
import { Approvals } from "./runtime/approvals";
import { Runtime, type RuntimeStats } from "./runtime/runtime";
import { CaseOpener, type OpenCaseRequest } from "./runtime/case-opener";
import type { Submission } from "./relayer/types";
import { type WorkflowSummary, findWorkflow, summariseWorkflow } from "./workflow-summaries";

export interface EngineHealth {
  status: "ok" | "degraded";
  chainId: string | null;
  blockNumber: number | null;
  contract: string;
  /** The latest block the projection has read. */
  checkpoint: number;
  relayer: RelayerHealth;
  /** The case actors: how many run, their wake-ups, and how many were restored, rebuilt or resynced. */
  runtime: RuntimeStats;
  /** The last failed poll of the chain, if the last one failed. */
  error: EngineError | null;
}

export type Engine = ReturnType<typeof buildEngine>;

export function createEngine(config: EngineConfigInput & { workflows?: readonly CompiledWorkflow[] }): Engine {
  return buildEngine(config);
}

function buildEngine(input: EngineConfigInput & { workflows?: readonly CompiledWorkflow[] }) {
  const config = parseEngineConfig(input);
  const workflows = input.workflows ?? loadTemplates();
  const provider = createProvider(config.chain);
  const db = openDatabase(config.dbFile ?? join(config.dataDir as string, "engine.sqlite"), []);
  const escrowAddress = getAddress(config.escrowAddress);
  const clock = new ChainClock();
  const relayer = new Relayer({
    db,
    provider,
    wallets: { relayer: config.relayerKey, parties: config.partyKeys },
    escrowAddress,
    confirmations: config.confirmations,
    batchWindowMs: config.batchWindowMs,
    timings: { pollIntervalMs: Math.min(config.pollIntervalMs, 250) },
  });
  const projection = new Projection({
    db,
    provider,
    address: escrowAddress,
    fromBlock: config.deploymentBlock,
    workflows,
    clock,
  });
  let lastError: EngineError | null = null;
  const onError = (error: unknown) => {
    lastError =
      error instanceof EngineError
        ? error
        : new EngineError("INTERNAL", String(error), { cause: error, retryable: true });
  };
  const runtime = new Runtime({ projection, relayer, clock, db, onError });
  const approvals = new Approvals({
    projection,
    relayer,
    provider,
    clock,
    guards: runtime.guards,
    runtime,
    escrowAddress,
    partyKeys: config.partyKeys,
  });
  const amendments = new AmendmentRequests({ relayer, clock, guards: runtime.guards, approvals });

  let running = false;
  let stopped = false;
  let chainId: bigint | null = null;

  /** One poll of the projection, then the runtime looks at the (maybe moved) chain clock. */
  async function pollOnce(): Promise<void> {
    await followChain();
    lastError = null;
    runtime.clockObserved();
  }

  /** One poll of the projection; blocks it saw the chain lose are the relayer's to re-submit from. */
  async function followChain(): Promise<void> {
    const result = await projection.poll();
    if (result.reorg) relayer.noticeRollback(result.reorg.forkPoint);
  }

  /** Polls until the projection has read block `number` (a poll already in progress may have started before it). */
  async function followUntil(number: number, deadline: number): Promise<void> {
    for (;;) {
      await followChain();
      if (projection.log.checkpoint().number >= number) return;
      if (Date.now() > deadline) {
        throw new EngineError("TIMEOUT", `the projection has not read block ${number} yet`, {
          retryable: true,
          details: { block: number },
        });
      }
    }
  }

  /** The timestamp of the block being built, if the node tells (Hardhat and Anvil do; others may not: then null). */
  async function pendingBlockTime(): Promise<number | null> {
    try {
      const block = (await (provider as JsonRpcApiProvider).send("eth_getBlockByNumber", ["pending", false])) as {
        timestamp?: string;
      } | null;
      return block?.timestamp ? Number(block.timestamp) : null;
    } catch {
      return null;
    }
  }

  /** The case `caseId` as its opening's terms make it, while that opening is being sent again (see getCase). */
  function reopening(caseId: string): CaseProgress | null {
    if (!/^\d+$/.test(caseId)) return null;
    const opening = relayer.outbox.openingOf(BigInt(caseId).toString());
    // Whatever the outbox says of it: the projection may have seen the chain lose it before the relayer has.
    if (!opening || opening.payload.kind !== "call") return null;
    const progress = projection.provisionalCase(opening.caseId!, opening.payload.args[0] as Record<string, JsonValue>);
    if (!progress) return null;
    return {
      ...progress,
      // Nothing is accepted of a case the chain does not hold: sign-offs wait for its opening to land again.
      stages: progress.stages.map((stage) => ({
        ...stage,
        acceptsSignOffs: false,
        waitsFor: "the case's opening, which the engine is sending again",
      })),
      status: "opening",
      opening: {
        submissionId: opening.id,
        note: `the chain lost this case's opening (submission ${opening.id}); the engine is sending it again`,
      },
    };
  }

  const polling = new PollingLoop(pollOnce);
  // A transaction just handed to the node may be mined already (automine): read the chain now, not a tick later.
  relayer.on("broadcast", () => polling.wake());
  const opener = new CaseOpener({ projection, relayer, provider, workflows, escrowAddress, followChain });

  return {
    clock,
    relayer,
    projection,
    runtime,

    /** Reads the chain up to its head, builds every case's actor, and starts the relayer and the polling. */
    async start(): Promise<void> {
      if (stopped)
        throw new EngineError(
          "ENGINE_STOPPED",
          "a stopped engine does not start again: create a new one on the same data folder",
        );
      if (running) return;
      chainId = (await provider.getNetwork()).chainId;
      const latest = await provider.getBlock("latest");
      if (latest) clock.observeBlock(latest.number, latest.timestamp);
      const pending = await pendingBlockTime();
      if (pending !== null) clock.observePending(pending);
      await followChain();
      running = true;
      approvals.warmUp();
      runtime.start();
      relayer.start();
      polling.start(config.pollIntervalMs, onError);
    },

    /** Stops timers, polling and the relayer (what is in the outbox stays there), and closes the store. */
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      running = false;
      runtime.stop();
      await polling.stop();
      await relayer.stop();
      await approvals.close();
      db.close();
    },

    async health(): Promise<EngineHealth> {
      let blockNumber: number | null = null;
      let error = lastError;
      try {
        blockNumber = await provider.getBlockNumber();
      } catch (e) {
        error = new EngineError("CHAIN_UNAVAILABLE", `the chain did not answer: ${String(e)}`, {
          cause: e,
          retryable: true,
        });
      }
      const relayerHealth = relayer.health();
      return {
        status: error || relayerHealth.paused ? "degraded" : "ok",
        chainId: chainId === null ? null : chainId.toString(),
        blockNumber,
        contract: escrowAddress,
        checkpoint: projection.log.checkpoint().number,
        relayer: relayerHealth,
        runtime: runtime.stats(),
        error,
      };
    },

    approve: approvals.approve.bind(approvals),
    typedDataFor: approvals.typedDataFor.bind(approvals),
    revoke: approvals.revoke.bind(approvals),
    deposit: approvals.deposit.bind(approvals),
    cancel: approvals.cancel.bind(approvals),
    withdrawCancelVote: approvals.withdrawCancelVote.bind(approvals),
    withdraw: approvals.withdraw.bind(approvals),
    proposeAmendment: amendments.propose.bind(amendments),
    consentToAmendment: amendments.consent.bind(amendments),
    withdrawAmendmentConsent: amendments.withdrawConsent.bind(amendments),
    consentTypedData: amendments.consentTypedData.bind(amendments),

    /** Every workflow the engine was given, with its stages; `registered` as far as the projection has read. */
    workflows(): WorkflowSummary[] {
      const registered = projection.log.registeredTemplateIds();
      return workflows.map((w) => summariseWorkflow(w, registered.has(w.templateId.toLowerCase())));
    },
    /** One workflow by its id ("us-purchase") or its template id; null if the engine was given none such. */
    workflow(idOrTemplateId: string): WorkflowSummary | null {
      const found = findWorkflow(workflows, idOrTemplateId);
      return found
        ? summariseWorkflow(found, projection.log.registeredTemplateIds().has(found.templateId.toLowerCase()))
        : null;
    },
    /** The relayer's record of one submission (what `approve`, `deposit` and the rest returned), or null. */
    submission(id: number): Submission | null {
      return relayer.get(id) ?? null;
    },

    /**
     * Opens a case from the principal's managed key (the terms' bank, or the operator) and resolves with its
     * progress once the chain has settled it and the projection holds it. See `CaseOpener`.
     */
    openCase(request: OpenCaseRequest, options: { timeoutMs?: number } = {}): Promise<CaseProgress> {
      if (!running) return Promise.reject(notRunning());
      return opener.open(request, options);
    },

    /**
     * Moves a dev chain's clock forward by `seconds` and mines a block (Hardhat, `hardhat node`, Anvil), then
     * reads that block at once, so the chain clock and the runtime's timers see it now: a waiting period
     * that has just ended is advanced right away, a deadline just passed expires.
     */
    async increaseTime(seconds: number): Promise<{ now: string }> {
      if (!running) throw notRunning();
      if (!Number.isSafeInteger(seconds) || seconds <= 0) {
        throw new EngineError(
          "INVALID_REQUEST",
          `seconds must be a positive whole number, not ${JSON.stringify(seconds)}`,
          { details: { field: "seconds" } },
        );
      }
      const send = (provider as JsonRpcApiProvider).send.bind(provider);
      try {
        await send("evm_increaseTime", [seconds]);
        await send("evm_mine", []);
      } catch (error) {
        throw new EngineError(
          "NOT_SUPPORTED",
          `this chain does not move its clock (evm_increaseTime, evm_mine): ${String((error as Error).message ?? error)}`,
          {
            cause: error,
          },
        );
      }
      const latest = await provider.getBlock("latest");
      if (!latest)
        throw new EngineError("CHAIN_UNAVAILABLE", "the chain returned no latest block", { retryable: true });
      clock.observeBlock(latest.number, latest.timestamp);
      await followUntil(latest.number, Date.now() + 30_000);
      runtime.clockObserved();
      return { now: new Date(latest.timestamp * 1000).toISOString() };
    },

    /** A managed key added while the engine runs (a principal created at runtime): it may send and sign from now on. */
    addPartyKey(wallet: BaseWallet): void {
      relayer.addWallet(wallet);
      approvals.addKey(wallet);
    },

    /**
     * A case's progress; for a case the chain lost whose opening the engine holds (and sends again), its terms with
     * status "opening" (a case once answered never becomes unknown); null if there is no such case.
     */
    getCase(caseId: string | bigint | number): CaseProgress | null {
      return projection.getCase(caseId) ?? reopening(String(caseId));
    },
    /** Every case, or those `party` is a party to. */
    listCases(filter: { party?: string } = {}): CaseProgress[] {
      const projected = projection.listCases();
      const shown = new Set(projected.map((c) => c.id));
      const reopened = relayer.outbox
        .openingsWithCase()
        .filter((s) => !shown.has(s.caseId!))
        .map((s) => reopening(s.caseId!))
        .filter((c): c is CaseProgress => c !== null);
      const all =
        reopened.length === 0
          ? projected
          : [...projected, ...reopened].sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
      if (!filter.party) return all;
      const party = filter.party.toLowerCase();
      return all.filter((c) => Object.values(c.parties).some((p) => p.toLowerCase() === party));
    },
    /** The id of every case `listCases` would list (a reopening's included), in no order: no progress is computed. */
    caseIds(): string[] {
      const ids = projection.caseIds();
      const shown = new Set(ids);
      for (const opening of relayer.outbox.openingsWithCase())
        if (!shown.has(opening.caseId!)) ids.push(opening.caseId!);
      return ids;
    },
    historyOf(caseId: string | bigint | number): HistoryEntry[] {
      return projection.historyOf(caseId);
    },
    subscribe(listener: ProgressListener): () => void {
      return projection.subscribe(listener);
    },
  };
}

function notRunning(): EngineError {
  return new EngineError("NOT_RUNNING", "the engine is not running: start() it first", { retryable: true });
}
