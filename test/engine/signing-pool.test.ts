/**
 * The managed keys' signing worker (engine/runtime/signing-pool.ts): the same signatures as ethers'
 * `SigningKey.sign`, in the order asked, from the worker and, once it is stopped, made in place.
 */
import { expect } from "chai";
import { Wallet, id, recoverAddress } from "ethers";
import { SigningPool } from "../../engine/runtime/signing-pool";

describe("SigningPool", function () {
  it("signs digests as ethers' SigningKey does, many at once, with several keys", async function () {
    const pool = new SigningPool();
    try {
      const keys = [Wallet.createRandom(), Wallet.createRandom(), Wallet.createRandom()];
      const asked = Array.from({ length: 100 }, (_, i) => ({ key: keys[i % keys.length], digest: id(`digest ${i}`) }));
      const signatures = await Promise.all(asked.map((a) => pool.sign(a.key, a.digest)));
      signatures.forEach((signature, i) => {
        expect(signature, `signature ${i}`).to.equal(asked[i].key.signingKey.sign(asked[i].digest).serialized);
        expect(recoverAddress(asked[i].digest, signature)).to.equal(asked[i].key.address);
      });
    } finally {
      await pool.close();
    }
  });

  it("lets the event loop turn while a thousand signatures are made", async function () {
    const pool = new SigningPool();
    try {
      const key = Wallet.createRandom();
      let turns = 0;
      const ticking = setInterval(() => (turns += 1), 1);
      const first = await Promise.race([
        Promise.all(Array.from({ length: 1000 }, (_, i) => pool.sign(key, id(`${i}`)))),
        new Promise((r) => setTimeout(r, 5, "timer")),
      ]);
      clearInterval(ticking);
      expect(first, "a timer ran before the last signature").to.equal("timer");
      expect(turns).to.be.greaterThan(0);
    } finally {
      await pool.close();
    }
  });

  it("signs in place once closed", async function () {
    const pool = new SigningPool();
    const key = Wallet.createRandom();
    await pool.sign(key, id("before"));
    await pool.close();
    expect(await pool.sign(key, id("after"))).to.equal(key.signingKey.sign(id("after")).serialized);
  });
});
