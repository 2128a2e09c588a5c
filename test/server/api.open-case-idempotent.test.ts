/**
 * Issue 11 (the brief's finding 5): opening a case is idempotent whether or not
 * the client sends an `Idempotency-Key`. Without one the server derives it from the caller and the canonical
 * body, so the same request again (a retry after a timeout, a 503) returns the same case, never a second one.
 * A key that cannot pay is named: 503 RELAYER_OUT_OF_FUNDS gives the caller's own key's address, its balance
 * and what it needs, and says that asking again returns that case. The real server, the in-process chain.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { toQuantity } from "ethers";
import { rpc } from "../engine/projection-helpers";
import { startApp, type AppHarness } from "./support/app-harness";

describe("server: opening a case is idempotent without a key (issue 11, finding 5)", function () {
  this.timeout(90_000);
  let h: AppHarness;
  let escrow: { caseCount(): Promise<bigint> };
  before(async function () {
    h = await startApp();
    escrow = new ethers.Contract(
      h.escrowAddress,
      ["function caseCount() view returns (uint256)"],
      ethers.provider,
    ) as unknown as typeof escrow;
  });
  after(async function () {
    await h?.close();
  });

  const body = (terms: { price: string; deposit: string; loan: string }) => ({
    workflow: "uk-remortgage",
    parties: {
      bank: h.addresses.bank,
      lawyer: h.addresses.lawyer,
      buyer: h.addresses.buyer,
      seller: h.addresses.seller,
    },
    terms,
  });

  it("answers the same request twice, without a key, with the same case, and the chain holds one", async function () {
    const request = body({ price: "1001", deposit: "1", loan: "1000" });
    const before = await escrow.caseCount();
    const first = await h.request("bank", "POST", "/cases", request);
    expect(first.status, JSON.stringify(first.body)).to.equal(201);
    // The same body, its fields in another order and an address in lower case: the same request.
    const reordered = {
      terms: { loan: "1000", deposit: "1", price: "1001" },
      parties: { ...request.parties, seller: request.parties.seller.toLowerCase() },
      workflow: "uk-remortgage",
    };
    const second = await h.request("bank", "POST", "/cases", reordered);
    expect(second.status, JSON.stringify(second.body)).to.equal(201);
    expect(second.body.id).to.equal(first.body.id);
    expect(await escrow.caseCount()).to.equal(before + 1n);
  });

  it("opens two cases with the same terms when the client sends two keys", async function () {
    const request = body({ price: "1002", deposit: "2", loan: "1000" });
    const a = await h.request("bank", "POST", "/cases", request, { "Idempotency-Key": "first-of-two" });
    const b = await h.request("bank", "POST", "/cases", request, { "Idempotency-Key": "second-of-two" });
    expect([a.status, b.status]).to.deep.equal([201, 201]);
    expect(a.body.id).to.not.equal(b.body.id);
  });

  it("opens the case when asked again after an opening failed on chain (the escrow was paused), with or without a key", async function () {
    // The admin (dev account 0) pauses and unpauses from its own wallet: the engine sends nothing from it here.
    const [admin] = await ethers.getSigners();
    const pausable = new ethers.Contract(h.escrowAddress, ["function pause()", "function unpause()"], admin);
    const withoutKey = body({ price: "1004", deposit: "4", loan: "1000" });
    const withKey = body({ price: "1005", deposit: "5", loan: "1000" });
    const headers = { "Idempotency-Key": "opened-once-unpaused" };
    await (await pausable.pause()).wait();
    let refused;
    let refusedWithKey;
    try {
      refused = await h.request("bank", "POST", "/cases", withoutKey);
      refusedWithKey = await h.request("bank", "POST", "/cases", withKey, headers);
    } finally {
      await (await pausable.unpause()).wait();
    }
    expect(refused.status, JSON.stringify(refused.body)).to.equal(409);
    expect(refused.body.error.message).to.match(/paused/);
    expect(refusedWithKey.status, JSON.stringify(refusedWithKey.body)).to.equal(409);

    const before = await escrow.caseCount();
    const opened = await h.request("bank", "POST", "/cases", withoutKey);
    expect(opened.status, JSON.stringify(opened.body)).to.equal(201);
    const openedWithKey = await h.request("bank", "POST", "/cases", withKey, headers);
    expect(openedWithKey.status, JSON.stringify(openedWithKey.body)).to.equal(201);
    expect((await h.request("bank", "POST", "/cases", withoutKey)).body.id).to.equal(opened.body.id);
    expect((await h.request("bank", "POST", "/cases", withKey, headers)).body.id).to.equal(openedWithKey.body.id);
    expect(await escrow.caseCount()).to.equal(before + 2n);
  });

  it("names the caller's own key, its address and what it needs when it cannot pay; the same request, once funded, returns that one case", async function () {
    const bank = h.addresses.bank;
    const funds = await ethers.provider.getBalance(bank);
    const request = body({ price: "1003", deposit: "3", loan: "1000" });
    const before = await escrow.caseCount();
    await rpc("hardhat_setBalance", [bank, toQuantity(1000n)]);
    let refused;
    try {
      refused = await h.request("bank", "POST", "/cases", request);
    } finally {
      await rpc("hardhat_setBalance", [bank, toQuantity(funds)]);
    }
    expect(refused.status, JSON.stringify(refused.body)).to.equal(503);
    expect(refused.body.error.code).to.equal("RELAYER_OUT_OF_FUNDS");
    expect(refused.body.error.message)
      .to.include(bank)
      .and.include("holds 1000 wei")
      .and.match(/needs \d+ wei/)
      .and.not.match(/relayer's account/);
    expect(refused.body.error.message).to.match(/same request|same body/);
    expect(refused.body.error.details).to.include({ address: bank, balance: "1000" });
    expect(BigInt(refused.body.error.details.needed)).to.be.greaterThan(1000n);

    // As a client does on a 503 (Retry-After): the same request again, until the relayer has seen the funds.
    let retried = await h.request("bank", "POST", "/cases", request);
    for (const deadline = Date.now() + 20_000; retried.status === 503 && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      retried = await h.request("bank", "POST", "/cases", request);
    }
    expect(retried.status, JSON.stringify(retried.body)).to.equal(201);
    const again = await h.request("bank", "POST", "/cases", request);
    expect(again.body.id).to.equal(retried.body.id);
    // Give the relayer time to send anything else it holds: still one case.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await escrow.caseCount()).to.equal(before + 1n);
  });
});
