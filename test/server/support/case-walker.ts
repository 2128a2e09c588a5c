/**
 * Walks a case forward over HTTP as its parties would: each stage up to a target signed off by whoever holds
 * its roles now (a replaced party's new address included), each payer's missing share paid in, and the dev
 * clock moved through each legal waiting time. For tests that need a case at a given point (after exchange,
 * after the Closing Disclosure) or at its end, without spelling out every request.
 */
import { expect } from "chai";
import type { AppHarness, PrincipalName } from "./app-harness";

type Progress = any;

const TIMEOUT_MS = 30_000;

/** The principal whose address holds `role` in the case now. */
export function holderOf(h: AppHarness, progress: Progress, role: string): PrincipalName {
  const address = String(progress.parties[role]).toLowerCase();
  const name = (Object.keys(h.addresses) as PrincipalName[]).find((n) => h.addresses[n].toLowerCase() === address);
  if (!name) throw new Error(`no principal holds the ${role}'s address ${address}`);
  return name;
}

export async function caseOf(h: AppHarness, caseId: string): Promise<Progress> {
  const res = await h.request("operator", "GET", `/cases/${caseId}`);
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return res.body;
}

/** Polls the case until `probe` holds. */
export async function until(h: AppHarness, caseId: string, what: string, probe: (p: Progress) => boolean) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const p = await caseOf(h, caseId);
    if (probe(p)) return p;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(p)}`);
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
}

/** Waits for a submission (as its caller sees it) to be confirmed or failed. */
export async function settled(h: AppHarness, who: PrincipalName, id: number) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const res = await h.request(who, "GET", `/submissions/${id}`);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    if (res.body.status === "confirmed" || res.body.status === "failed") return res.body;
    if (Date.now() > deadline) throw new Error(`submission ${id} is still ${res.body.status}`);
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
}

/** Moves the dev clock past `iso`. */
export async function clockPast(h: AppHarness, from: string, iso: string): Promise<void> {
  const seconds = Math.max(1, Math.ceil((Date.parse(iso) - Date.parse(from)) / 1000) + 1);
  const res = await h.request("operator", "POST", "/dev/clock", { seconds });
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
}

/**
 * Completes every stage up to and including `lastStage` (by its id), in order. Returns the case's progress
 * once they have all completed.
 */
export async function walkTo(h: AppHarness, caseId: string, lastStage: string): Promise<Progress> {
  const deadline = Date.now() + TIMEOUT_MS * 2;
  const asked = new Set<string>();
  for (;;) {
    const p = await caseOf(h, caseId);
    const last = p.stages.findIndex((s: { id: string }) => s.id === lastStage);
    expect(last, `case ${caseId} has a stage ${lastStage}`).to.be.at.least(0);
    const targets = p.stages.slice(0, last + 1);
    if (targets.every((s: { status: string }) => s.status === "completed")) return p;
    expect(p.status, `case ${caseId} stopped before ${lastStage}`).to.equal("open");
    if (Date.now() > deadline) throw new Error(`case ${caseId} did not reach ${lastStage}: ${JSON.stringify(p)}`);
    let acted = false;
    for (const stage of targets) {
      if (!stage.acceptsSignOffs) continue;
      for (const role of stage.requires) {
        if (stage.signedOff.includes(role)) continue;
        // Asked once per case state: a sign-off on its way is not asked again until the case moves.
        const key = `${stage.id}:${role}:${p.updatedAt.block}`;
        if (asked.has(key)) continue;
        asked.add(key);
        const res = await h.request(holderOf(h, p, role), "POST", `/cases/${caseId}/stages/${stage.id}/sign-offs`, {
          role,
        });
        expect([202, 409], `${role} signs off ${stage.id}: ${JSON.stringify(res.body)}`).to.include(res.status);
        acted = true;
      }
    }
    if (targets.some((s: { waitingFor: string | null }) => s.waitingFor === "funds")) {
      for (const [role, share, paid] of [
        ["buyer", p.terms.deposit, p.escrow.paidByBuyer],
        ["bank", p.terms.loan, p.escrow.paidByBank],
      ] as const) {
        const missing = BigInt(share) - BigInt(paid);
        const key = `deposit:${role}:${p.updatedAt.block}`;
        if (missing <= 0n || asked.has(key)) continue;
        asked.add(key);
        const res = await h.request(holderOf(h, p, role), "POST", `/cases/${caseId}/deposits`, {
          amount: missing.toString(),
          role,
        });
        expect(res.status, JSON.stringify(res.body)).to.equal(202);
        acted = true;
      }
    }
    const waiting = targets.find(
      (s: any) => (s.waitingFor === "time" || (s.status === "open" && !s.acceptsSignOffs)) && s.availableAt !== null,
    );
    if (!acted && waiting && Date.parse(waiting.availableAt) > Date.parse(p.updatedAt.time)) {
      await clockPast(h, p.updatedAt.time, waiting.availableAt);
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
}
