/**
 * The authorization matrix, table-driven: every principal against every endpoint, on a case it is a party
 * of and on one it is not, over a real listening port. One row per request, one column per caller; each
 * cell is the status the server must answer. A row is one `it`: every cell is requested and checked, and a
 * failure shows the row as expected and as answered.
 *
 * Columns (the harness's principals and tokens):
 *   operator   the deployment's administrator: reads every case, opens cases, moves the dev clock, acts in none
 *              (so the worklist's `awaiting` and `role`, which ask about the caller's part in a case, are 400 for it)
 *   bank, lawyer, buyer, seller   the parties of the harness's case (`own`), and of none of the others
 *   stranger   a principal (role buyer) that is a party of no case here
 *   none       no Authorization header
 *   unknown    a well-formed token (`msk_...`) that no principal holds
 *   revoked    the token of a revoked principal bound to the lawyer's address (a party: revocation wins)
 *   malformed  the bank's real token in the wrong scheme (`Token msk_...`)
 *
 * Cases (the `case` column; `:case` in the path is replaced by its id):
 *   own        the harness's case of bank, lawyer, buyer and seller (uk-remortgage)
 *   other      a case none of the principals is a party to: only the operator sees it
 *   missing    an id no case has: the same 404 as `other` (ids can't be probed)
 *   fresh      a new case of the same parties, opened for this row, because the row's successes change it
 *   signed     fresh, and the bank and the lawyer have signed off "completion" (so each may revoke)
 *   refunded   fresh, the bank and the buyer paid 1 wei each, then cancelled by every party: each payer
 *              has a credit to withdraw, the lawyer and the seller have none (409: allowed, nothing to pay)
 *   voted      fresh, and the bank and the buyer have voted to cancel (each may withdraw its vote; the lawyer and
 *              the seller have none standing: 409)
 *   proposed   fresh, and the bank has proposed amendment 1, a new completion deadline: the bank (consented with
 *              its proposal: 409), the lawyer and the buyer must consent; the seller's consent is not asked (403)
 *   consented  proposed, and the lawyer has consented too: the bank and the lawyer may withdraw, the buyer has
 *              nothing to withdraw (409)
 *   -          the request names no case
 * POST /cases names the parties instead: `own` the harness's parties (the bank principal as the bank),
 * `other` the other case's parties (so the bank principal is not the case's bank).
 *
 * "completion" is the stage signed off by the bank and the lawyer: the buyer and the seller are parties
 * whose role it does not need (403). It is locked (its prerequisites are not complete) and takes sign-offs
 * all the same, so it can be signed and revoked without walking the case.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { startApp, type AppHarness, type TokenName } from "./support/app-harness";

const MATRIX = `
  method path                                                   case      operator bank lawyer buyer seller stranger none unknown revoked malformed
  GET    /health                                                -         200      200  200    200   200    200      200  200     200     200
  GET    /workflows                                             -         200      200  200    200   200    200      200  200     200     200
  GET    /workflows/uk-remortgage                               -         200      200  200    200   200    200      200  200     200     200
  GET    /openapi.json                                          -         200      200  200    200   200    200      200  200     200     200
  GET    /ui/cases/:case                                        own       200      200  200    200   200    200      200  200     200     200
  GET    /ui/assets/app.js                                      -         200      200  200    200   200    200      200  200     200     200
  POST   /cases                                                 own       201      201  403    403   403    403      401  401     401     401
  POST   /cases                                                 other     201      403  403    403   403    403      401  401     401     401
  GET    /me                                                    -         200      200  200    200   200    200      401  401     401     401
  GET    /cases                                                 -         200      200  200    200   200    200      401  401     401     401
  GET    /cases?awaiting=me&status=open                         -         400      200  200    200   200    200      401  401     401     401
  GET    /cases?role=lawyer&limit=1                             -         400      200  200    200   200    200      401  401     401     401
  GET    /cases?workflow=uk-remortgage&deadlineBefore=2030-01-01T00:00:00Z -  200  200  200    200   200    200      401  401     401     401
  GET    /cases/:case                                           own       200      200  200    200   200    404      401  401     401     401
  GET    /cases/:case                                           other     200      404  404    404   404    404      401  401     401     401
  GET    /cases/:case                                           missing   404      404  404    404   404    404      401  401     401     401
  GET    /cases/:case/events                                    own       200      200  200    200   200    404      401  401     401     401
  GET    /cases/:case/events                                    other     200      404  404    404   404    404      401  401     401     401
  GET    /cases/:case/history                                   own       200      200  200    200   200    404      401  401     401     401
  GET    /cases/:case/history                                   other     200      404  404    404   404    404      401  401     401     401
  GET    /cases/:case/stages/completion/sign-offs/typed-data    own       403      200  200    403   403    404      401  401     401     401
  GET    /cases/:case/stages/completion/sign-offs/typed-data    other     403      404  404    404   404    404      401  401     401     401
  POST   /cases/:case/stages/completion/sign-offs               fresh     403      202  202    403   403    404      401  401     401     401
  POST   /cases/:case/stages/completion/sign-offs               other     403      404  404    404   404    404      401  401     401     401
  POST   /cases/:case/stages/completion/sign-offs               missing   404      404  404    404   404    404      401  401     401     401
  DELETE /cases/:case/stages/completion/sign-offs               signed    403      202  202    403   403    404      401  401     401     401
  DELETE /cases/:case/stages/completion/sign-offs               other     403      404  404    404   404    404      401  401     401     401
  POST   /cases/:case/deposits                                  fresh     403      202  403    202   403    404      401  401     401     401
  POST   /cases/:case/deposits                                  other     403      404  404    404   404    404      401  401     401     401
  POST   /cases/:case/withdrawals                               refunded  403      202  409    202   409    404      401  401     401     401
  POST   /cases/:case/withdrawals                               other     403      404  404    404   404    404      401  401     401     401
  POST   /cases/:case/cancellation                              fresh     403      202  202    202   202    404      401  401     401     401
  POST   /cases/:case/cancellation                              other     403      404  404    404   404    404      401  401     401     401
  DELETE /cases/:case/cancellation                              voted     403      202  409    202   409    404      401  401     401     401
  DELETE /cases/:case/cancellation                              other     403      404  404    404   404    404      401  401     401     401
  GET    /cases/:case/amendments                                own       200      200  200    200   200    404      401  401     401     401
  GET    /cases/:case/amendments                                other     200      404  404    404   404    404      401  401     401     401
  POST   /cases/:case/amendments                                fresh     403      202  202    202   202    404      401  401     401     401
  POST   /cases/:case/amendments                                other     403      404  404    404   404    404      401  401     401     401
  GET    /cases/:case/amendments/1                              proposed  200      200  200    200   200    404      401  401     401     401
  GET    /cases/:case/amendments/1                              own       404      404  404    404   404    404      401  401     401     401
  GET    /cases/:case/amendments/1/consents/typed-data          proposed  403      200  200    200   403    404      401  401     401     401
  POST   /cases/:case/amendments/1/consents                     proposed  403      409  202    202   403    404      401  401     401     401
  POST   /cases/:case/amendments/1/consents                     other     404      404  404    404   404    404      401  401     401     401
  DELETE /cases/:case/amendments/1/consents                     consented 403      202  202    409   403    404      401  401     401     401
  GET    /submissions/:submission                               own       404      200  404    404   404    404      401  401     401     401
  GET    /submissions/:submission                               missing   404      404  404    404   404    404      401  401     401     401
  POST   /dev/clock                                             -         200      403  403    403   403    403      401  401     401     401
`;

const COLUMNS = [
  "operator",
  "bank",
  "lawyer",
  "buyer",
  "seller",
  "stranger",
  "none",
  "unknown",
  "revoked",
  "malformed",
] as const;
type Column = (typeof COLUMNS)[number];
const CASE_KINDS = [
  "own",
  "other",
  "missing",
  "fresh",
  "signed",
  "refunded",
  "voted",
  "proposed",
  "consented",
  "-",
] as const;
type CaseKind = (typeof CASE_KINDS)[number];

interface Row {
  method: string;
  path: string;
  caseKind: CaseKind;
  expected: Record<Column, number>;
}

function parseMatrix(text: string): Row[] {
  const [header, ...lines] = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const columns = header.split(/\s+/).slice(3);
  if (columns.join(" ") !== COLUMNS.join(" ")) throw new Error(`the matrix's columns are ${columns.join(" ")}`);
  return lines.map((line) => {
    const [method, path, caseKind, ...cells] = line.split(/\s+/);
    if (!CASE_KINDS.includes(caseKind as CaseKind)) throw new Error(`unknown case kind "${caseKind}" in: ${line}`);
    if (cells.length !== COLUMNS.length || cells.some((c) => !/^\d{3}$/.test(c)))
      throw new Error(`a row needs ${COLUMNS.length} statuses: ${line}`);
    const expected = Object.fromEntries(COLUMNS.map((c, i) => [c, Number(cells[i])])) as Record<Column, number>;
    return { method, path, caseKind: caseKind as CaseKind, expected };
  });
}

/** The error code each refusal carries. */
const CODE_OF: Record<number, string> = {
  400: "VALIDATION_FAILED",
  401: "UNAUTHENTICATED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  409: "CONFLICT",
};
const MISSING_CASE = "999999999";
/** A proposal any party may make: uk-remortgage's completion deadline moves (the bank, the lawyer and the buyer consent). */
const NEW_COMPLETION = { kind: "deadline", stage: "completion", to: "2027-06-30" };
const MISSING_SUBMISSION = "987654321";

describe("server: the authorization matrix", function () {
  this.timeout(120_000);
  let h: AppHarness;
  /** The bank's own submission (a deposit into its case), for GET /submissions/:id. */
  let bankSubmission: string;
  /** The cases this file made: the rows' own, and each 201 of POST /cases. */
  let casesMade = 0;

  before(async function () {
    h = await startApp();
    const deposit = await h.request("bank", "POST", `/cases/${h.caseId}/deposits`, { amount: "1" });
    expect(deposit.status, JSON.stringify(deposit.body)).to.equal(202);
    bankSubmission = String(deposit.body.id);
  });
  after(async function () {
    await h?.close();
  });

  function authorization(column: Column): Record<string, string> {
    switch (column) {
      case "none":
        return {};
      case "unknown":
        return { Authorization: `Bearer msk_${"A".repeat(43)}` };
      case "malformed":
        return { Authorization: `Token ${h.tokens.bank}` };
      default:
        return { Authorization: `Bearer ${h.tokens[column as TokenName]}` };
    }
  }

  async function until(caseId: string, what: string, probe: (p: any) => boolean): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!probe(h.engine.getCase(caseId))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} in case ${caseId}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  const stage = (p: any, id: string) => p.stages.find((s: any) => s.id === id);

  /** The case id a row's `:case` stands for, set up as the row needs it. */
  async function caseFor(kind: CaseKind): Promise<string> {
    if (!["own", "other", "missing", "-"].includes(kind)) casesMade += 1;
    switch (kind) {
      case "own":
        return h.caseId;
      case "other":
        return h.otherCaseId;
      case "missing":
        return MISSING_CASE;
      case "fresh":
        return h.openCase();
      case "signed": {
        const id = await h.openCase();
        for (const who of ["bank", "lawyer"] as const) {
          const res = await h.request(who, "POST", `/cases/${id}/stages/completion/sign-offs`, {});
          expect(res.status, JSON.stringify(res.body)).to.equal(202);
        }
        await until(id, "the bank's and the lawyer's sign-offs", (p) => stage(p, "completion").signedOff.length === 2);
        return id;
      }
      case "refunded": {
        const id = await h.openCase();
        for (const who of ["bank", "buyer"] as const) {
          const res = await h.request(who, "POST", `/cases/${id}/deposits`, { amount: "1" });
          expect(res.status, JSON.stringify(res.body)).to.equal(202);
        }
        await until(id, "both deposits", (p) => p.escrow.paidByBank === "1" && p.escrow.paidByBuyer === "1");
        for (const who of ["bank", "lawyer", "buyer", "seller"] as const) {
          const res = await h.request(who, "POST", `/cases/${id}/cancellation`, {});
          expect(res.status, JSON.stringify(res.body)).to.equal(202);
        }
        await until(id, "the cancellation", (p) => p.status === "cancelled");
        return id;
      }
      case "voted": {
        const id = await h.openCase();
        for (const who of ["bank", "buyer"] as const) {
          const res = await h.request(who, "POST", `/cases/${id}/cancellation`, {});
          expect(res.status, JSON.stringify(res.body)).to.equal(202);
        }
        await until(id, "the bank's and the buyer's votes", (p) => p.cancelVotes.length === 2);
        return id;
      }
      case "proposed":
      case "consented": {
        const id = await h.openCase();
        const proposal = await h.request("bank", "POST", `/cases/${id}/amendments`, NEW_COMPLETION);
        expect(proposal.status, JSON.stringify(proposal.body)).to.equal(202);
        await until(id, "the proposal", (p) => p.amendments.length === 1);
        if (kind === "consented") {
          const res = await h.request("lawyer", "POST", `/cases/${id}/amendments/1/consents`, {});
          expect(res.status, JSON.stringify(res.body)).to.equal(202);
          await until(id, "the lawyer's consent", (p) => p.amendments[0].consented.includes("lawyer"));
        }
        return id;
      }
      case "-":
        return "";
    }
  }

  /** The body a row sends: the least that would succeed for a caller allowed to make the request. */
  function bodyFor(row: Row): unknown {
    if (row.method === "GET") return undefined;
    if (row.path === "/cases") {
      const other = h.engine.getCase(h.otherCaseId)!.parties;
      const parties =
        row.caseKind === "own"
          ? { bank: h.addresses.bank, lawyer: h.addresses.lawyer, buyer: h.addresses.buyer, seller: h.addresses.seller }
          : other;
      return { workflow: "uk-remortgage", parties, terms: { price: "900", deposit: "100", loan: "800" } };
    }
    if (row.path.endsWith("/deposits")) return { amount: "1" };
    if (row.path.endsWith("/amendments")) return NEW_COMPLETION;
    if (row.path === "/dev/clock") return { seconds: 1 };
    return {};
  }

  /** One cell: the status the server answers, after checking the answer's shape for that status. */
  async function cell(row: Row, path: string, body: unknown, column: Column): Promise<number> {
    const controller = new AbortController();
    const res = await fetch(h.url + path, {
      method: row.method,
      headers: { ...authorization(column), ...(body !== undefined ? { "Content-Type": "application/json" } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
    });
    const type = res.headers.get("content-type") ?? "";
    try {
      if (res.status >= 400) {
        const error = ((await res.json()) as any).error;
        expect(error, `${row.method} ${row.path} as ${column}: the error shape`).to.be.an("object");
        if (CODE_OF[res.status])
          expect(error.code, `${row.method} ${row.path} as ${column}: ${error.message}`).to.equal(CODE_OF[res.status]);
        if (res.status === 401) expect(res.headers.get("www-authenticate")).to.match(/^Bearer/);
      } else if (row.path.endsWith("/events")) {
        // An event stream: its headers are the answer; it is closed at once.
        expect(type).to.match(/^text\/event-stream/);
      } else if (row.path.startsWith("/ui/")) {
        expect(type).to.match(row.path.endsWith(".js") ? /javascript/ : /^text\/html/);
        await res.text();
      } else {
        expect(type).to.match(/^application\/json/);
        await res.json();
      }
    } finally {
      controller.abort();
    }
    return res.status;
  }

  for (const row of parseMatrix(MATRIX)) {
    const title = `${row.method} ${row.path}${row.caseKind === "-" ? "" : ` (${row.caseKind})`}`;
    it(title, async function () {
      const caseId = await caseFor(row.caseKind);
      const submission = row.caseKind === "missing" ? MISSING_SUBMISSION : bankSubmission;
      const path = row.path.replace(":case", caseId).replace(":submission", submission);
      const body = bodyFor(row);
      const answered = {} as Record<Column, number>;
      for (const column of COLUMNS) answered[column] = await cell(row, path, body, column);
      casesMade += Object.values(answered).filter((status) => status === 201).length;
      const show = (r: Record<Column, number>) => COLUMNS.map((c) => `${c} ${r[c]}`).join(", ");
      expect(
        answered,
        `${title}\n      expected: ${show(row.expected)}\n      answered: ${show(answered)}\n`,
      ).to.deep.equal(row.expected);
    });
  }

  it("answers a stranger the same 404 for a case it may not see as for a case that does not exist", async function () {
    const hidden = await h.request("stranger", "GET", `/cases/${h.caseId}/stages/completion/sign-offs/typed-data`);
    const missing = await h.request("stranger", "GET", `/cases/${MISSING_CASE}/stages/completion/sign-offs/typed-data`);
    expect(hidden.status).to.equal(404);
    expect(missing.status).to.equal(404);
    expect(Object.keys(hidden.body.error).sort()).to.deep.equal(Object.keys(missing.body.error).sort());
    expect(hidden.body.error.message.replace(h.caseId, "ID")).to.equal(
      missing.body.error.message.replace(MISSING_CASE, "ID"),
    );
  });

  it("left no case behind but those it made: a refused POST /cases opened nothing", async function () {
    const escrow = new ethers.Contract(
      h.escrowAddress,
      ["function caseCount() view returns (uint256)"],
      ethers.provider,
    );
    expect(Number(await escrow.caseCount())).to.equal(2 + casesMade);
    expect(h.engine.listCases()).to.have.length(2 + casesMade);
  });
});
