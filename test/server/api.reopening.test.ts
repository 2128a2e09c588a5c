/**
 * A case answered 201 whose opening the chain then loses (finding 3 of issue 10): `GET /cases/:id` never
 * answers 404 for it; while the engine sends its opening again it answers the case with status "opening"
 * and the submission re-sending it, then "open" again once the chain holds it. The real server on a real
 * port, the in-process chain with automining off so the re-sent opening waits in the pool.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { waitFor } from "../engine/engine-helpers";
import { rpc } from "../engine/projection-helpers";
import { startApp, type AppHarness } from "./support/app-harness";

describe("server: a case whose opening the chain lost", function () {
  this.timeout(60_000);
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await rpc("evm_setAutomine", [true]);
    await h?.close();
  });

  it('answers it with status "opening" while its opening is sent again, never 404, and "open" once it lands', async function () {
    const save = await rpc<string>("evm_snapshot");
    const caseId = await h.openCase();
    const opened = await h.request("buyer", "GET", `/cases/${caseId}`);
    expect(opened.status).to.equal(200);
    expect(opened.body.status).to.equal("open");

    await rpc("evm_setAutomine", [false]);
    await rpc("evm_revert", [save]);
    await rpc("evm_mine");
    expect(await h.engine.relayer.outbox.list().length).to.be.greaterThan(0);

    const statuses = new Set<string>();
    const reopening = await waitFor("the case read as opening", async () => {
      const res = await h.request("buyer", "GET", `/cases/${caseId}`);
      expect(res.status, `GET /cases/${caseId}: ${JSON.stringify(res.body)}`).to.equal(200);
      statuses.add(res.body.status);
      return res.body.status === "opening" ? res.body : null;
    });
    expect(reopening.opening.submissionId).to.be.a("number");
    expect(reopening.opening.note).to.match(/sending it again/);
    expect(reopening.parties.buyer).to.equal(h.addresses.buyer);
    const listed = await h.request("buyer", "GET", "/cases");
    expect(listed.body.cases.map((c: { id: string; status: string }) => `${c.id}:${c.status}`)).to.include(
      `${caseId}:opening`,
    );
    // Acting on it meanwhile is refused as a conflict to try again, not as an unknown case.
    const stageId = reopening.stages[0].id;
    const signOff = await h.request(
      reopening.stages[0].requires[0],
      "POST",
      `/cases/${caseId}/stages/${stageId}/sign-offs`,
      {},
    );
    expect(signOff.status, JSON.stringify(signOff.body)).to.equal(409);
    expect(signOff.body.error.details).to.deep.include({ reason: "CASE_OPENING", caseId });
    const deposit = await h.request("buyer", "POST", `/cases/${caseId}/deposits`, { amount: reopening.terms.deposit });
    expect(deposit.status, JSON.stringify(deposit.body)).to.equal(409);
    expect(deposit.body.error.details.reason).to.equal("CASE_OPENING");
    const submission = h.engine.submission(reopening.opening.submissionId)!;
    expect(submission.txHash, "the opening waits in the pool").to.not.equal(null);
    expect((await ethers.provider.getTransaction(submission.txHash!))?.blockNumber ?? null).to.equal(null);

    await rpc("evm_mine");
    await rpc("evm_setAutomine", [true]);
    await waitFor("the case open again", async () => {
      const res = await h.request("buyer", "GET", `/cases/${caseId}`);
      expect(res.status).to.equal(200);
      return res.body.status === "open";
    });
    expect(String(await h.engine.projection.getCase(caseId)?.id)).to.equal(caseId);
  });
});
