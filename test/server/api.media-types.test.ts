/**
 * Finding 2 of issue 11: a body that is not `application/json` was silently dropped. `text/plain` (what
 * `fetch` sends for a string body) or a form: a sign-off carrying the party's own wallet signature was
 * answered 202 and signed with the managed key instead. Now any request with a body of another media type is
 * refused with 415 naming the type it got, and nothing is submitted; a request with no body at all (no
 * Content-Length or 0, no Transfer-Encoding) is read as `{}`. The real server on a real port.
 */
import { expect } from "chai";
import { startApp, type AppHarness } from "./support/app-harness";

describe("server: strict media types (issue 11, finding 2)", function () {
  this.timeout(60_000);
  let h: AppHarness;
  let caseId: string;
  before(async function () {
    h = await startApp();
    caseId = await h.openCase();
  });
  after(async function () {
    await h?.close();
  });

  /** The lawyer's own signature of the title check, as its wallet would make it from the API's typed data. */
  async function lawyerSignature(): Promise<string> {
    const typed = await h.request("lawyer", "GET", `/cases/${caseId}/stages/title-check/sign-offs/typed-data`);
    expect(typed.status).to.equal(200);
    return h.wallets.lawyer.signTypedData(typed.body.domain, typed.body.types, typed.body.message);
  }

  async function raw(
    method: string,
    path: string,
    body: string | undefined,
    contentType: string | undefined,
    who = "lawyer" as const,
  ) {
    const res = await fetch(h.url + path, {
      method,
      headers: {
        Authorization: `Bearer ${h.tokens[who]}`,
        ...(contentType === undefined ? {} : { "Content-Type": contentType }),
      },
      body,
    });
    const text = await res.text();
    return { status: res.status, body: text === "" ? null : JSON.parse(text) };
  }

  const submissionsNow = () => h.engine.relayer.outbox.list().length;

  for (const contentType of [
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/merge-patch+json",
    "application/xml",
  ]) {
    it(`refuses a sign-off sent as ${contentType} with 415 naming that type, and submits nothing`, async function () {
      const signature = await lawyerSignature();
      const before = submissionsNow();
      const res = await raw(
        "POST",
        `/cases/${caseId}/stages/title-check/sign-offs`,
        JSON.stringify({ signature }),
        contentType,
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(415);
      expect(res.body.error.code).to.equal("UNSUPPORTED_MEDIA_TYPE");
      expect(res.body.error.message).to.include(contentType.split(";")[0]);
      expect(res.body.error.details.contentType.toLowerCase()).to.equal(contentType.toLowerCase());
      expect(submissionsNow()).to.equal(before);
      const progress = await h.request("lawyer", "GET", `/cases/${caseId}`);
      expect(progress.body.stages.find((s: { id: string }) => s.id === "title-check").signedOff).to.not.include(
        "lawyer",
      );
    });
  }

  it("refuses a body that has no Content-Type at all (415), and submits nothing", async function () {
    const before = submissionsNow();
    const res = await fetch(h.url + `/cases/${caseId}/stages/title-check/sign-offs`, {
      method: "POST",
      headers: { Authorization: `Bearer ${h.tokens.lawyer}` },
      body: new Blob([JSON.stringify({})]),
    });
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status, JSON.stringify(body)).to.equal(415);
    expect(body.error.code).to.equal("UNSUPPORTED_MEDIA_TYPE");
    expect(body.error.message).to.match(/no Content-Type/i);
    expect(submissionsNow()).to.equal(before);
  });

  it("reads a POST with no body at all as {} (a vote to cancel, then its withdrawal)", async function () {
    const vote = await raw("POST", `/cases/${caseId}/cancellation`, undefined, undefined, "lawyer");
    expect(vote.status, JSON.stringify(vote.body)).to.equal(202);
  });

  it("takes application/json with a charset, and the party's own signature is the one relayed", async function () {
    const signature = await lawyerSignature();
    const res = await raw(
      "POST",
      `/cases/${caseId}/stages/title-check/sign-offs`,
      JSON.stringify({ signature }),
      "application/json; charset=utf-8",
    );
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    const submission = h.engine.submission(res.body.id)!;
    expect(submission.payload.kind).to.equal("relayed-sign-off");
    expect((submission.payload as { signature: string }).signature.toLowerCase()).to.equal(signature.toLowerCase());
  });
});
