/**
 * A case's on-chain events as the case machine's events: each transaction of the case becomes the
 * transaction the machine mirrors (`SIGN_OFF`, `FUNDED`, `ADVANCE`...), at its block's time.
 *
 * The contract's events tell what each transaction did, not which function it called, so the call is read
 * back from them: a `StageCompleted` that no sign-off and no funding of the same transaction explains was
 * `advance`; a `StageOverdue` or `CaseExpired`, `expire`. What follows from a call (the cascade of
 * completions, the votes a binding stage clears, the credits of a release) the machine works out itself,
 * and the runtime checks that it came out as the projection folded it.
 *
 * Amendments: an `AmendmentProposed` is the proposal (the proposer's own `AmendmentConsented` that follows is
 * part of it), each other `AmendmentConsented` a consent, direct or relayed. Whether the escrow is funded under
 * new terms is the chain's word (`EscrowFunded`, `EscrowNoLongerFunded` in the same transaction), as it is
 * for deposits: the model holds no amounts.
 */
import type { AmendmentContent } from "../../workflows/case-amendments";
import type { ContractEvent } from "../../workflows/machine";
import type { ChainEvent, JsonValue } from "../projection/event-log";

const num = (event: ChainEvent, key: string) => Number(event.args[key] as string);

/** The machine events of `events` (one case's, in chain order), one or more per transaction. */
export function machineEventsOf(events: readonly ChainEvent[]): ContractEvent[] {
  const out: ContractEvent[] = [];
  let tx: string | null = null;
  let explained = false;
  let expired = false;
  let funded: boolean | undefined;
  let proposed: { amendment: number; role: number } | null = null;
  for (const [i, event] of events.entries()) {
    if (event.txHash !== tx) {
      tx = event.txHash;
      explained = false;
      expired = false;
      proposed = null;
      funded = fundedAfter(events, i);
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
      case "AmendmentProposed": {
        const role = num(event, "proposer");
        proposed = { amendment: num(event, "amendment"), role };
        const p = event.args.proposal as Record<string, JsonValue>;
        out.push({
          type: "PROPOSE_AMENDMENT",
          proposal: {
            proposer: role,
            expiresAt: Number(p.expiresAt),
            content: contentOf(p),
            required: num(event, "required"),
          },
          at,
          funded,
        });
        explained = true;
        break;
      }
      case "AmendmentConsented": {
        const amendment = num(event, "amendment");
        const role = num(event, "role");
        if (proposed?.amendment === amendment && proposed.role === role) break;
        out.push({ type: "CONSENT", amendment, role, at, funded });
        explained = true;
        break;
      }
      case "AmendmentConsentWithdrawn":
        out.push({ type: "WITHDRAW_CONSENT", amendment: num(event, "amendment"), role: num(event, "role"), at });
        break;
      default:
        break;
    }
  }
  return out;
}

/** Whether the transaction of `events[from]` leaves the escrow funded or not, where its events say; else undefined. */
function fundedAfter(events: readonly ChainEvent[], from: number): boolean | undefined {
  let funded: boolean | undefined;
  for (let i = from; i < events.length && events[i].txHash === events[from].txHash; i++) {
    if (events[i].name === "EscrowFunded") funded = true;
    else if (events[i].name === "EscrowNoLongerFunded") funded = false;
  }
  return funded;
}

function contentOf(p: Record<string, JsonValue>): AmendmentContent {
  switch (Number(p.kind)) {
    case 0:
      return { kind: "deadline", stage: Number(p.stage), longStop: p.longStop === true, at: Number(p.deadline) };
    case 1:
      return {
        kind: "terms",
        price: BigInt(p.price as string),
        deposit: BigInt(p.deposit as string),
        loan: BigInt(p.loan as string),
      };
    default:
      return { kind: "party", party: Number(p.party) };
  }
}
