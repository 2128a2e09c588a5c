import { expect } from "chai";
import { startApp, type AppHarness } from "./support/app-harness";

describe("server: GET /me", function () {
  let h: AppHarness;
  before(async function () {
    h = await startApp();
  });
  after(async function () {
    await h?.close();
  });

  it("says who the token is: its principal's id, name, role and address", async function () {
    for (const who of ["operator", "bank", "lawyer", "buyer", "seller"] as const) {
      const res = await h.request(who, "GET", "/me");
      expect(res.status, who).to.equal(200);
      expect(res.body.address, who).to.equal(h.addresses[who]);
      expect(res.body.role, who).to.equal(who);
      expect(Object.keys(res.body).sort()).to.deep.equal(["address", "id", "name", "role"]);
    }
  });

  it("answers 401 without a token and with a revoked one", async function () {
    expect((await h.request(null, "GET", "/me")).status).to.equal(401);
    expect((await h.request("revoked", "GET", "/me")).status).to.equal(401);
  });
});
