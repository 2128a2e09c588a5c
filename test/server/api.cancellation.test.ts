/**
 * A party's vote to cancel, over a real listening server on the in-process chain: withdrawn with
 * `DELETE /cases/:id/cancellation` until the case is cancelled (409 with no vote standing), cast again after,
 * and cleared by a binding stage's completion (uk-purchase's exchange of contracts), as the case's
 * `cancelVotes` and its history show.
 */
import { expect } from "chai";
import { startApp, type AppHarness } from "./support/app-harness";

describe("server: withdrawing a vote to cancel (DELETE /cases/:id/cancellation)", function () {
  this.timeout(120_000);
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await h?.close();
  });

  async function until(caseId: string, what: string, probe: (p: any) => boolean) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const res = await h.request("operator", "GET", `/cases/${caseId}`);
      if (probe(res.body)) return res.body;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(res.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  async function submissionSettled(id: number) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const res = await h.engine.submission(id);
      if (res && (res.status === "confirmed" || res.status === "failed")) return res;
      if (Date.now() > deadline) throw new Error(`submission ${id} did not settle: ${JSON.stringify(res)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const sameVotes = (expected: string[]) => (p: any) => JSON.stringify(p.cancelVotes) === JSON.stringify(expected);

  it("withdraws the caller's vote (202 with the submission), then answers 409 when it has no vote standing", async function () {
    const id = await h.openCase();
    const none = await h.request("bank", "DELETE", `/cases/${id}/cancellation`, {});
    expect(none.status, JSON.stringify(none.body)).to.equal(409);
    expect(none.body.error).to.include({ code: "CONFLICT" });
    expect(none.body.error.message).to.contain(`${h.addresses.bank} has no vote to cancel case ${id} standing`);

    expect((await h.request("bank", "POST", `/cases/${id}/cancellation`, {})).status).to.equal(202);
    expect((await h.request("buyer", "POST", `/cases/${id}/cancellation`, {})).status).to.equal(202);
    await until(id, "the bank's and the buyer's votes", sameVotes(["bank", "buyer"]));

    const withdrawn = await h.request("bank", "DELETE", `/cases/${id}/cancellation`, {});
    expect(withdrawn.status, JSON.stringify(withdrawn.body)).to.equal(202);
    expect(["pending", "sent", "mined", "confirmed"]).to.include(withdrawn.body.status);
    expect(
      (await h.request("bank", "GET", `/submissions/${withdrawn.body.id}`)).status,
      "the bank's own submission",
    ).to.equal(200);
    expect(withdrawn.headers.get("location")).to.equal(`/submissions/${withdrawn.body.id}`);
    const settled = await submissionSettled(withdrawn.body.id);
    expect(settled.status, JSON.stringify(settled)).to.equal("confirmed");
    const after = await until(id, "the bank's vote withdrawn", sameVotes(["buyer"]));
    expect(after.status).to.equal("open");

    const history = await h.request("buyer", "GET", `/cases/${id}/history`);
    const withdrawals = history.body.events.filter((e: { event: string }) => e.event === "CancellationVoteWithdrawn");
    expect(
      withdrawals.map((e: { args: { role: string } }) => e.args.role),
      "the bank's role (0)",
    ).to.deep.equal(["0"]);

    const again = await h.request("bank", "DELETE", `/cases/${id}/cancellation`, {});
    expect(again.status, "no vote standing any more").to.equal(409);
    expect((await h.request("lawyer", "DELETE", `/cases/${id}/cancellation`, {})).status, "never voted").to.equal(409);
    expect((await h.request("operator", "DELETE", `/cases/${id}/cancellation`, {})).status).to.equal(403);
    expect((await h.request("stranger", "DELETE", `/cases/${id}/cancellation`, {})).status).to.equal(404);
    expect((await h.request(null, "DELETE", `/cases/${id}/cancellation`, {})).status).to.equal(401);
  });

  it("counts a vote cast again after a withdrawal: the fourth vote cancels, and then nothing is withdrawn (409)", async function () {
    const id = await h.openCase();
    const first = await h.request("bank", "POST", `/cases/${id}/cancellation`, {});
    expect(first.status).to.equal(202);
    await until(id, "the bank's vote", sameVotes(["bank"]));
    expect((await h.request("bank", "DELETE", `/cases/${id}/cancellation`, {})).status).to.equal(202);
    await until(id, "the bank's vote withdrawn", sameVotes([]));
    for (const who of ["lawyer", "buyer", "seller"] as const)
      expect((await h.request(who, "POST", `/cases/${id}/cancellation`, {})).status).to.equal(202);
    await until(id, "three votes", sameVotes(["lawyer", "buyer", "seller"]));

    const revote = await h.request("bank", "POST", `/cases/${id}/cancellation`, {});
    expect(revote.status, JSON.stringify(revote.body)).to.equal(202);
    expect(revote.body.id, "a new submission, not the first vote's").to.not.equal(first.body.id);
    await until(id, "the cancellation", (p) => p.status === "cancelled");
    const closed = await h.request("buyer", "DELETE", `/cases/${id}/cancellation`, {});
    expect(closed.status).to.equal(409);
    expect(closed.body.error.message).to.contain(`case ${id} is cancelled`);
  });

  it("shows the votes cleared when a binding stage completes (CancellationVotesCleared), after which a party may vote again", async function () {
    const id = await h.openCase({ workflow: "uk-purchase" });
    const first = await h.request("bank", "POST", `/cases/${id}/cancellation`, {});
    expect(first.status).to.equal(202);
    expect((await h.request("seller", "POST", `/cases/${id}/cancellation`, {})).status).to.equal(202);
    await until(id, "two votes", sameVotes(["bank", "seller"]));

    const walk: Array<[string, Array<"bank" | "lawyer" | "buyer" | "seller">]> = [
      ["offer-accepted", ["buyer", "seller"]],
      ["conveyancers-instructed", ["lawyer"]],
      ["mortgage-offer", ["bank"]],
      ["searches-and-enquiries", ["lawyer"]],
      ["contract-signed", ["buyer", "lawyer"]],
      ["exchange", ["lawyer", "buyer", "seller"]],
    ];
    for (const [stageId, signers] of walk) {
      for (const who of signers) {
        const res = await h.request(who, "POST", `/cases/${id}/stages/${stageId}/sign-offs`, {});
        expect(res.status, `${who} on ${stageId}: ${JSON.stringify(res.body)}`).to.equal(202);
      }
      await until(
        id,
        `${stageId} completed`,
        (p) => p.stages.find((s: { id: string }) => s.id === stageId).status === "completed",
      );
    }
    const exchanged = await until(id, "the votes cleared", sameVotes([]));
    expect(exchanged.status).to.equal("open");
    const history = await h.request("bank", "GET", `/cases/${id}/history`);
    const cleared = history.body.events.filter((e: { event: string }) => e.event === "CancellationVotesCleared");
    expect(cleared, JSON.stringify(history.body.events.map((e: { event: string }) => e.event))).to.have.length(1);
    const exchangeIndex = exchanged.stages.findIndex((s: { id: string }) => s.id === "exchange");
    expect(cleared[0].args.stage).to.equal(String(exchangeIndex));
    expect(
      (await h.request("bank", "DELETE", `/cases/${id}/cancellation`, {})).status,
      "the bank's vote is gone",
    ).to.equal(409);

    const revote = await h.request("bank", "POST", `/cases/${id}/cancellation`, {});
    expect(revote.status).to.equal(202);
    expect(revote.body.id, "a new submission, not the cleared vote's").to.not.equal(first.body.id);
    expect((await submissionSettled(revote.body.id)).status, "a new vote, not the cleared one's submission").to.equal(
      "confirmed",
    );
    await until(id, "the bank's new vote", sameVotes(["bank"]));
  });
});
