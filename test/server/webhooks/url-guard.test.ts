/**
 * The URL guard (server/webhooks/url-guard.ts) at the moment an attempt connects: a host name that resolves to
 * a loopback address is refused by the lookup the sender connects through (a name re-pointed after it was
 * accepted gets no further), while the same request without the guard (private URLs allowed) arrives.
 */
import { expect } from "chai";
import { isNonPublic, publicOnlyLookup, refusalOf } from "../../../server/webhooks/url-guard";
import { sendAttempt } from "../../../server/webhooks/sender";
import { startReceiver, type Receiver } from "./support/receiver";

describe("server: the webhook URL guard (server/webhooks/url-guard.ts)", function () {
  let receiver: Receiver;
  before(async function () {
    receiver = await startReceiver(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
    receiver.required = [];
  });
  after(async function () {
    await receiver?.close();
  });

  it("judges addresses: loopback, private, link-local, mapped and reserved ones are not public", function () {
    for (const a of [
      "127.0.0.1",
      "10.0.0.1",
      "172.31.255.255",
      "192.168.0.1",
      "169.254.1.1",
      "100.64.0.1",
      "::1",
      "fe80::1",
      "fc00::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "0.0.0.0",
    ])
      expect(isNonPublic(a), a).to.equal(true);
    for (const a of ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
      expect(isNonPublic(a), a).to.equal(false);
  });

  it("refuses, as the attempt connects, a host name that resolves to a loopback address", async function () {
    const url = receiver.url.replace("127.0.0.1", "localhost");
    const body = JSON.stringify({ type: "stage.completed", timestamp: new Date().toISOString(), data: {} });
    const guarded = await sendAttempt(url, {}, body, 2_000, publicOnlyLookup);
    expect(guarded.ok).to.equal(false);
    expect(guarded.error).to.match(/localhost resolves to (127\.0\.0\.1|::1), not a public address/);
    expect(receiver.requests).to.equal(0);
    expect(await refusalOf(url, true)).to.equal(null);
  });
});
