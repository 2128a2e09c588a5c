/**
 * Finding 5 of issue 10: a deposit the payer's key cannot pay for was answered 202 and then read `pending`
 * with `error: null, note: null` for good. Now the submission says why it waits: the error
 * RELAYER_OUT_OF_FUNDS and a note naming the key's address, its balance and what it needs; once the key is
 * funded it is sent by itself. The real server on a real port, the in-process chain.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { toQuantity } from "ethers";
import { waitFor } from "../engine/engine-helpers";
import { rpc } from "../engine/projection-helpers";
import { startApp, type AppHarness } from "./support/app-harness";

describe("server: a deposit the payer cannot afford (finding 5)", function () {
  this.timeout(60_000);
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await h?.close();
  });

  it("answers 202, then the submission reads pending with an error and a note naming the key, its balance and its need; funded, it lands", async function () {
    const buyer = h.addresses.buyer;
    const before = await ethers.provider.getBalance(buyer);
    const balance = ethers.parseEther("0.01");
    await rpc("hardhat_setBalance", [buyer, toQuantity(balance)]);
    const c = await h.request("buyer", "GET", `/cases/${h.caseId}`);
    const amount = c.body.terms.deposit;
    expect(BigInt(amount)).to.be.greaterThan(balance);

    const res = await h.request("buyer", "POST", `/cases/${h.caseId}/deposits`, { amount });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    const waiting = await waitFor("the submission saying why it waits", async () => {
      const s = await h.request("buyer", "GET", `/submissions/${res.body.id}`);
      return s.body.error ? s.body : null;
    });
    expect(waiting.status).to.equal("pending");
    expect(waiting.error.code).to.equal("RELAYER_OUT_OF_FUNDS");
    expect(waiting.note)
      .to.include(buyer)
      .and.include(`holds ${balance} wei`)
      .and.match(/needs \d+ wei/);
    const needed = BigInt(/needs (\d+) wei/.exec(waiting.note)![1]);
    expect(needed).to.be.greaterThan(BigInt(amount));

    await rpc("hardhat_setBalance", [buyer, toQuantity(before)]);
    const done = await waitFor("the deposit confirmed once funded", async () => {
      const s = await h.request("buyer", "GET", `/submissions/${res.body.id}`);
      return s.body.status === "confirmed" ? s.body : null;
    });
    expect(done.error).to.equal(null);
    expect(done.note).to.equal(null);
    const after = await h.request("buyer", "GET", `/cases/${h.caseId}`);
    expect(after.body.escrow.paidByBuyer).to.equal(amount);
  });
});
