/**
 * The server's own Standard Webhooks signatures (server/webhooks/signer.ts, node:crypto) against the
 * specification's reference library: the same signature as its `sign`, verified by its `verify`, also with
 * several signatures in the header (a rotation), and refused when the body or the secret differ.
 */
import { expect } from "chai";
import { Webhook } from "standardwebhooks";
import { newSecret, signatureOf, webhookHeaders } from "../../../server/webhooks/signer";

describe("server: webhook signatures (server/webhooks/signer.ts)", function () {
  const body = JSON.stringify({
    type: "stage.completed",
    timestamp: "2026-12-04T10:00:00.000Z",
    data: { caseId: "1" },
  });

  it("makes the reference library's signature, which its verify accepts", function () {
    const secret = newSecret();
    const now = Math.floor(Date.now() / 1000);
    expect(signatureOf(secret, "msg_1", now, body)).to.equal(
      new Webhook(secret).sign("msg_1", new Date(now * 1000), body),
    );
    const verified = new Webhook(secret).verify(body, webhookHeaders([secret], "msg_1", now, body));
    expect(verified).to.deep.equal(JSON.parse(body));
  });

  it("signs with several secrets in one header, each verifying alone, and none for another body or secret", function () {
    const [a, b] = [newSecret(), newSecret()];
    const now = Math.floor(Date.now() / 1000);
    const headers = webhookHeaders([b, a], "msg_2", now, body);
    expect(headers["webhook-signature"].split(" ")).to.have.length(2);
    for (const secret of [a, b]) expect(() => new Webhook(secret).verify(body, headers)).to.not.throw();
    expect(() => new Webhook(newSecret()).verify(body, headers)).to.throw(/signature/i);
    expect(() => new Webhook(a).verify(body.replace("1", "2"), headers)).to.throw(/signature/i);
  });
});
