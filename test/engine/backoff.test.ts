import { expect } from "chai";
import { exponentialDelay } from "../../engine/relayer/backoff";

describe("exponentialDelay", function () {
  it("is nothing after no failure, then the base doubling with each failure, up to the cap", function () {
    const options = { baseMs: 1_000, maxMs: 30_000 };
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((n) => exponentialDelay(n, options))).to.deep.equal([
      0, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000,
    ]);
    expect(exponentialDelay(10_000, options)).to.equal(30_000);
  });
});
