/**
 * A case's on-chain events as the case machine's events: each transaction of the case becomes the
 * transaction the machine mirrors (`SIGN_OFF`, `FUNDED`, `ADVANCE`...), at its block's time.
 *
 * The contract's events tell what each transaction did, not which function it called, so the call is read
 * back from them: a `StageCompleted` that no sign-off and no funding of the same transaction explains was
 * `advance`; a `StageOverdue` or `CaseExpired`, `expire`. What follows from a call (the cascade of
 * completions, the votes a binding stage clears, the credits of a release) the machine works out itself,
 * and the runtime checks that it came out as the projection folded it.
 */
import type { ContractEvent } from "../../workflows/machine";
import type { ChainEvent } from "../projection/event-log";

const num = (event: ChainEvent, key: string) => Number(event.args[key] as string);

/** The machine events of `events` (one case's, in chain order), one or more per transaction. */
export function machineEventsOf(events: readonly ChainEvent[]): ContractEvent[] {
  const out: ContractEvent[] = [];
  let tx: string | null = null;
  let explained = false;
  let expired = false;
  for (const event of events) {
    if (event.txHash !== tx) {
      tx = event.txHash;
      explained = false;
      expired = false;
    }
    const at = event.blockTime;
    switch (event.name) {
      case "SignedOff":
        out.push({ type: "SIGN_OFF", stage: num(event, "stage"), role: num(event, "role"), at });
        explained = true;
        break;
      case "SignOffRevoked":
        out.push({ type: "REVOKE", stage: num(event, "stage"), role: num(event, "role"), at });
        break;
      case "EscrowFunded":
        out.push({ type: "FUNDED", at });
        explained = true;
        break;
      case "StageCompleted":
        if (!explained) out.push({ type: "ADVANCE", at });
        explained = true;
        break;
      case "StageOverdue":
      case "CaseExpired":
        if (!expired) out.push({ type: "EXPIRE", at });
        expired = true;
        break;
      case "CancellationVoted":
        out.push({ type: "CANCEL_VOTE", roles: 1 << num(event, "role"), at });
        break;
      case "CancellationVoteWithdrawn":
        out.push({ type: "WITHDRAW_CANCEL_VOTE", roles: 1 << num(event, "role"), at });
        break;
      default:
        break;
    }
  }
  return out;
}
