/**
 * Why the server is degraded, in words a person running it can act on: each sender the relayer paused because
 * its key cannot pay (its address, its balance and what its next transaction needs), the relayer's last RPC
 * fault, and the chain or the projection failing to answer. `/health` is `ok` exactly when there is none.
 */
import type { EngineHealth } from "../engine";
import type { HealthReason } from "./schemas";

export function healthReasons(health: EngineHealth): HealthReason[] {
  const reasons: HealthReason[] = [];
  for (const sender of health.relayer.senders) {
    if (!sender.paused) continue;
    const details = sender.paused.details as { balance: string; needed: string };
    reasons.push({
      source: "relayer",
      code: sender.paused.code,
      message: sender.paused.message,
      address: sender.address,
      balance: details.balance,
      needed: details.needed,
    });
  }
  const relayerFault = health.relayer.error;
  if (relayerFault && !health.relayer.senders.some((s) => s.paused === relayerFault)) {
    reasons.push({ source: "relayer", code: relayerFault.code, message: relayerFault.message });
  }
  if (health.error) {
    // No block number: the chain itself did not answer /health's own question; else the last poll failed.
    reasons.push({
      source: health.blockNumber === null ? "chain" : "projection",
      code: health.error.code,
      message: health.error.message,
    });
  }
  return reasons;
}
