/**
 * Finding 4 of issue 11: a failed submission blocked its action for ever. The engine keys a
 * sign-off, a revocation or a vote without a client key by what it is (`approve:case:stage:role:epoch`,
 * ...), so after one failed every later one, by wallet or managed key, heard 409 "already submitted" (or
 * got the failed submission back) unless the client invented an `Idempotency-Key`.
 *
 * The failures here are real: submissions the real relayer sends to the real in-process chain, which refuses
 * them (a relayed sign-off whose signature is not the party's, a revocation relayed with a bad signature, a
 * vote for a case that does not exist). They are placed under the key the engine would use by default,
 * straight through the relayer, because the API itself no longer lets such a signature through (see
 * api.signatures.test.ts): what matters is only that a failed submission sits under that key.
 */
import { expect } from "chai";
import { getAddress } from "ethers";
import type { Submission } from "../../engine";
import { startApp, type AppHarness } from "./support/app-harness";

const TITLE_CHECK = 4;
const LAWYER = 1;

describe("server: a failed submission never blocks a later one (issue 11, finding 4)", function () {
  this.timeout(90_000);
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await h?.close();
  });

  async function settled(id: number): Promise<Submission> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = h.engine.submission(id)!;
      if (s.status === "confirmed" || s.status === "failed") return s;
      if (Date.now() > deadline) throw new Error(`submission ${id} is still ${s.status}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async function until(caseId: string, what: string, probe: (p: any) => boolean): Promise<any> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const p = (await h.request("lawyer", "GET", `/cases/${caseId}`)).body;
      if (probe(p)) return p;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  const titleCheck = (p: any) => p.stages.find((s: { id: string }) => s.id === "title-check");

  it("signs off again, without a key, after the sign-off under the default key failed on chain", async function () {
    const caseId = await h.openCase();
    const bad = await h.engine.relayer.submitDurably(
      {
        kind: "relayed-sign-off",
        message: { caseId, stage: TITLE_CHECK, role: LAWYER, epoch: 0, evidence: "0x" + "00".repeat(32) },
        signature: "0x" + "11".repeat(64) + "1b",
      },
      `approve:${caseId}:${TITLE_CHECK}:${LAWYER}:0`,
    );
    expect((await settled(bad.id)).status).to.equal("failed");

    const again = await h.request("lawyer", "POST", `/cases/${caseId}/stages/title-check/sign-offs`, {});
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    expect(again.body.id).to.not.equal(bad.id);
    expect((await settled(again.body.id)).status).to.equal("confirmed");
    await until(caseId, "the sign-off projected", (p) => titleCheck(p).signedOff.includes("lawyer"));
  });

  it("revokes again, without a key, after the revocation under the default key failed on chain", async function () {
    const caseId = await h.openCase();
    const signed = await h.request("lawyer", "POST", `/cases/${caseId}/stages/title-check/sign-offs`, {});
    expect((await settled(signed.body.id)).status).to.equal("confirmed");
    await until(caseId, "the sign-off projected", (p) => titleCheck(p).signedOff.includes("lawyer"));
    const bad = h.engine.relayer.submit(
      {
        kind: "call",
        from: h.engine.relayer.relayerAddress,
        method: "revokeSignOffWithSignature",
        args: [caseId, TITLE_CHECK, LAWYER, 0, "0x" + "11".repeat(64) + "1b"],
      },
      `revoke:${caseId}:${TITLE_CHECK}:${LAWYER}:0`,
    );
    expect((await settled(bad.id)).status).to.equal("failed");

    const again = await h.request("lawyer", "DELETE", `/cases/${caseId}/stages/title-check/sign-offs`, {});
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    expect(again.body.id).to.not.equal(bad.id);
    expect((await settled(again.body.id)).status).to.equal("confirmed");
    await until(caseId, "the revocation projected", (p) => !titleCheck(p).signedOff.includes("lawyer"));
  });

  it("votes to cancel again, without a key, after the vote under the default key failed on chain", async function () {
    const caseId = await h.openCase();
    const lawyer = getAddress(h.addresses.lawyer);
    const bad = h.engine.relayer.submit(
      { kind: "call", from: lawyer, method: "cancel", args: ["987654321"] },
      `cancel:${caseId}:${lawyer}`,
    );
    expect((await settled(bad.id)).status).to.equal("failed");

    const again = await h.request("lawyer", "POST", `/cases/${caseId}/cancellation`, {});
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    expect(again.body.id).to.not.equal(bad.id);
    expect((await settled(again.body.id)).status).to.equal("confirmed");
    await until(caseId, "the vote projected", (p) => p.cancelVotes.includes("lawyer"));
  });

  it("withdraws a vote again, without a key, after the withdrawal under the default key failed on chain", async function () {
    const caseId = await h.openCase();
    const vote = await h.request("lawyer", "POST", `/cases/${caseId}/cancellation`, {});
    expect((await settled(vote.body.id)).status).to.equal("confirmed");
    await until(caseId, "the vote projected", (p) => p.cancelVotes.includes("lawyer"));
    const lawyer = getAddress(h.addresses.lawyer);
    const bad = h.engine.relayer.submit(
      { kind: "call", from: lawyer, method: "withdrawCancelVote", args: ["987654321"] },
      `withdraw-cancel-vote:${caseId}:${lawyer}:0`,
    );
    expect((await settled(bad.id)).status).to.equal("failed");

    const again = await h.request("lawyer", "DELETE", `/cases/${caseId}/cancellation`, {});
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    expect(again.body.id).to.not.equal(bad.id);
    expect((await settled(again.body.id)).status).to.equal("confirmed");
    await until(caseId, "the withdrawal projected", (p) => !p.cancelVotes.includes("lawyer"));
  });
});
