/**
 * The worklist, GET /cases, over a real listening server: each filter (awaiting the caller, role, status,
 * workflow, next legal deadline before, opened after and before), the order by next legal deadline, each
 * item's `waitingFor` and `nextDeadline`, the operator's view, cursor paging through every page while cases
 * change between pages (none twice, none missing), and the 400s that name the field.
 */
import { expect } from "chai";
import { startApp, type AppHarness, type TokenName } from "./support/app-harness";
import { caseOf, until } from "./support/case-walker";
import { getTemplate } from "../../workflows";
import { createLegalGuard } from "../../workflows/legal-guard";

type Item = any;

describe("server: the worklist (GET /cases)", function () {
  this.timeout(180_000);
  let h: AppHarness;
  /** us-purchase cases of the harness's principals, in id order. */
  let us: string[];
  let ukPurchase: string;
  /** A uk-remortgage case cancelled by every party: no deadline runs. */
  let cancelled: string;

  before(async function () {
    h = await startApp();
    us = [];
    for (let i = 0; i < 4; i++) us.push(await h.openCase({ workflow: "us-purchase" }));
    ukPurchase = await h.openCase({ workflow: "uk-purchase" });
    cancelled = await h.openCase();
    await cancel(cancelled);
  });
  after(async function () {
    await h?.close();
  });

  async function cancel(caseId: string): Promise<void> {
    for (const who of ["bank", "lawyer", "buyer", "seller"] as const) {
      const res = await h.request(who, "POST", `/cases/${caseId}/cancellation`, {});
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
    }
    await until(h, caseId, "the cancellation", (p) => p.status === "cancelled");
  }

  async function signOff(caseId: string, stage: string, who: "bank" | "buyer" | "lawyer" | "seller") {
    const res = await h.request(who, "POST", `/cases/${caseId}/stages/${stage}/sign-offs`, {});
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
  }

  async function list(who: TokenName, query = ""): Promise<{ cases: Item[]; nextCursor: string | null }> {
    const res = await h.request(who, "GET", `/cases${query}`);
    expect(res.status, `GET /cases${query} as ${who}: ${JSON.stringify(res.body).slice(0, 400)}`).to.equal(200);
    return res.body;
  }
  const ids = (items: Item[]) => items.map((c) => c.id);

  /** Every page of a query, following nextCursor; `between` runs after each page. */
  async function allPages(who: TokenName, query: string, between?: (page: number) => Promise<void>) {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 1; ; page++) {
      const body = await list(
        who,
        cursor === null ? query : `${query === "" ? "?" : query + "&"}cursor=${encodeURIComponent(cursor)}`,
      );
      seen.push(...ids(body.cases));
      cursor = body.nextCursor;
      if (cursor === null) return seen;
      await between?.(page);
      expect(page, "pages").to.be.below(100);
    }
  }

  describe("each item", function () {
    it("is the case's whole progress with what it waits for, from whom, and its next legal deadline", async function () {
      const { cases } = await list("bank", "?limit=200");
      const item = cases.find((c) => c.id === us[0]);
      const progress = await caseOf(h, us[0]);
      const { waitingFor, nextDeadline, ...rest } = item;
      expect(rest).to.deep.equal(progress);
      // A fresh us-purchase case: the application awaits the buyer and the bank; early sign-offs of locked stages hold nothing up.
      expect(waitingFor).to.deep.equal([{ kind: "sign-off", stage: "application", roles: ["bank", "buyer"] }]);
      const running = progress.stages.filter((s: any) => s.status !== "completed" && s.deadline !== null);
      const earliest = running.sort((a: any, b: any) => Date.parse(a.deadline) - Date.parse(b.deadline))[0];
      expect(nextDeadline).to.deep.equal({ stage: earliest.id, at: earliest.deadline });
      const ended = cases.find((c) => c.id === cancelled);
      expect(ended).to.include({ status: "cancelled", nextDeadline: null });
      expect(ended.waitingFor).to.deep.equal([]);
    });

    it("names an open amendment's missing consents, every party's", async function () {
      const id = await h.openCase();
      const res = await h.request("bank", "POST", `/cases/${id}/amendments`, {
        kind: "deadline",
        stage: "completion",
        to: "2027-06-30",
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      await until(h, id, "the proposal", (p) => p.amendments.length === 1);
      const { cases } = await list("lawyer", "?awaiting=me");
      const item = cases.find((c) => c.id === id);
      expect(item, "the lawyer's consent is awaited").to.not.equal(undefined);
      expect(item.waitingFor).to.deep.include({ kind: "consent", amendment: 1, roles: ["lawyer", "buyer"] });
    });

    it("drops a consent once its amendment lapses, with time alone", async function () {
      const id = await h.openCase();
      const now = Date.parse((await caseOf(h, id)).updatedAt.time);
      const expiresAt = new Date(now + 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
      const res = await h.request("bank", "POST", `/cases/${id}/amendments`, {
        kind: "deadline",
        stage: "completion",
        to: "2027-06-30",
        expiresAt,
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      await until(h, id, "the proposal", (p) => p.amendments.length === 1);
      const awaited = async () => ids((await list("lawyer", "?awaiting=me&limit=200")).cases).includes(id);
      expect(await awaited(), "awaited while open").to.equal(true);
      const clock = await h.request("operator", "POST", "/dev/clock", { seconds: 7_200 });
      expect(clock.status).to.equal(200);
      await until(h, id, "the lapse", (p) => p.amendments[0].status === "expired");
      expect(await awaited(), "not awaited once lapsed").to.equal(false);
      const item = (await list("bank", "?limit=200")).cases.find((c) => c.id === id);
      expect(item.waitingFor.filter((w: any) => w.kind === "consent")).to.deep.equal([]);
      expect(item.amendments[0].status).to.equal("expired");
    });
  });

  describe("the order", function () {
    it("is by next legal deadline, soonest first, cases with none last, then by id", async function () {
      const { cases } = await list("bank", "?limit=200");
      const key = (c: Item) => (c.nextDeadline ? Date.parse(c.nextDeadline.at) : Infinity);
      for (let i = 1; i < cases.length; i++) {
        const [a, b] = [cases[i - 1], cases[i]];
        const ordered = key(a) < key(b) || (key(a) === key(b) && BigInt(a.id) < BigInt(b.id));
        expect(ordered, `${a.id} (${a.nextDeadline?.at}) before ${b.id} (${b.nextDeadline?.at})`).to.equal(true);
      }
      // us-purchase's long-stop (90 days) comes before uk-remortgage's (240) and uk-purchase's (270).
      expect(ids(cases).slice(0, 4)).to.deep.equal(us);
      expect(ids(cases).indexOf(h.caseId)).to.be.below(ids(cases).indexOf(ukPurchase));
      expect(cases[cases.length - 1].nextDeadline).to.equal(null);
    });
  });

  describe("filters", function () {
    it("awaiting=me: only the cases where the caller's sign-off or consent is awaited now", async function () {
      const bank = ids((await list("bank", "?awaiting=me&limit=200")).cases);
      expect(bank).to.include.members([...us, h.caseId]);
      expect(bank, "uk-purchase's first stage is the buyer's and the seller's").to.not.include(ukPurchase);
      expect(bank).to.not.include(cancelled);
      const seller = ids((await list("seller", "?awaiting=me&limit=200")).cases);
      expect(seller).to.include(ukPurchase);
      expect(seller).to.not.include.members(us);
    });

    it("awaiting=me drops a case once the caller has signed what it awaited", async function () {
      const id = await h.openCase({ workflow: "us-purchase" });
      expect(ids((await list("bank", "?awaiting=me&limit=200")).cases)).to.include(id);
      await signOff(id, "application", "bank");
      await until(h, id, "the bank's sign-off", (p) => p.stages[0].signedOff.includes("bank"));
      expect(ids((await list("bank", "?awaiting=me&limit=200")).cases)).to.not.include(id);
      const buyer = (await list("buyer", "?awaiting=me&limit=200")).cases.find((c) => c.id === id);
      expect(buyer.waitingFor).to.deep.equal([{ kind: "sign-off", stage: "application", roles: ["buyer"] }]);
      await cancel(id);
    });

    it("deadlineWithinBusinessDays: only the cases whose next legal deadline comes within N business days of the case's own calendar", async function () {
      const id = await h.openCase();
      const now = (await h.request("operator", "POST", "/dev/clock", { seconds: 1 })).body.now;
      const guard = createLegalGuard(getTemplate("uk-remortgage"));
      // An hour before the third business day starts in London: within 3 business days, not within 2.
      const third = guard.businessDaysAfter(new Date(now), 3).getTime();
      const to = new Date(third - 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
      const proposal = await h.request("bank", "POST", `/cases/${id}/amendments`, {
        kind: "deadline",
        stage: "completion",
        to,
      });
      expect(proposal.status, JSON.stringify(proposal.body)).to.equal(202);
      await until(h, id, "the proposal", (p) => p.amendments.length === 1);
      for (const who of ["lawyer", "buyer"] as const)
        expect((await h.request(who, "POST", `/cases/${id}/amendments/1/consents`, {})).status).to.equal(202);
      await until(h, id, "the earlier deadline", (p) => p.termsVersion === 1);
      expect(ids((await list("lawyer", "?deadlineWithinBusinessDays=3&limit=200")).cases)).to.include(id);
      expect(ids((await list("lawyer", "?deadlineWithinBusinessDays=2&limit=200")).cases)).to.not.include(id);
      expect(
        ids((await list("lawyer", "?deadlineWithinBusinessDays=3&limit=200")).cases),
        "months away",
      ).to.not.include(h.caseId);
      const bad = await h.request("lawyer", "GET", "/cases?deadlineWithinBusinessDays=0");
      expect(bad.status).to.equal(400);
      expect(JSON.stringify(bad.body.error.details)).to.contain("deadlineWithinBusinessDays");
      await cancel(id);
    });

    it("role: only the cases where the caller holds that role", async function () {
      const all = ids((await list("bank", "?limit=200")).cases);
      expect(ids((await list("bank", "?role=bank&limit=200")).cases)).to.deep.equal(all);
      expect((await list("bank", "?role=lawyer")).cases).to.deep.equal([]);
      expect((await list("stranger", "?role=buyer")).cases).to.deep.equal([]);
    });

    it("status: one or more, repeated or comma-separated", async function () {
      const only = ids((await list("bank", "?status=cancelled&limit=200")).cases);
      expect(only).to.include(cancelled);
      expect(only).to.not.include.members(us);
      const both = ids((await list("bank", "?status=open,cancelled&limit=200")).cases);
      const repeated = ids((await list("bank", "?status=open&status=cancelled&limit=200")).cases);
      expect(both).to.deep.equal(repeated);
      expect(both).to.include.members([...us, cancelled]);
      const open = (await list("bank", "?status=open&limit=200")).cases;
      expect(open.every((c) => c.status === "open")).to.equal(true);
    });

    it("workflow: by its id or its template id", async function () {
      const byId = (await list("bank", "?workflow=us-purchase&limit=200")).cases;
      expect(ids(byId)).to.include.members(us);
      expect(byId.every((c) => c.workflow.id === "us-purchase")).to.equal(true);
      const templateId = byId[0].workflow.templateId;
      expect(ids((await list("bank", `?workflow=${templateId}&limit=200`)).cases)).to.deep.equal(ids(byId));
      expect((await list("bank", "?workflow=nope")).cases).to.deep.equal([]);
    });

    it("deadlineBefore: only cases whose next legal deadline is before the instant", async function () {
      const us0 = (await list("bank", "?limit=200")).cases.find((c) => c.id === us[0]);
      const at = Date.parse(us0.nextDeadline.at);
      const before = (await list("bank", `?deadlineBefore=${new Date(at + 1000).toISOString()}&limit=200`)).cases;
      expect(ids(before)).to.include.members(us);
      expect(ids(before)).to.not.include.members([h.caseId, ukPurchase, cancelled]);
      expect(before.every((c) => Date.parse(c.nextDeadline.at) < at + 1000)).to.equal(true);
      const none = (await list("bank", `?deadlineBefore=${new Date(at).toISOString()}&limit=200`)).cases;
      expect(ids(none)).to.not.include.members(us);
    });

    it("openedAfter and openedBefore: by the opening's time", async function () {
      const first = await caseOf(h, us[0]);
      const last = await caseOf(h, us[3]);
      const after = ids((await list("bank", `?openedAfter=${first.openedAt}&limit=200`)).cases);
      expect(after).to.not.include(h.caseId);
      expect(after).to.include(last.id);
      const before = ids((await list("bank", `?openedBefore=${first.openedAt}&limit=200`)).cases);
      expect(before).to.include(h.caseId);
      expect(before).to.not.include.members(us);
      // A zone with "+" sent unencoded arrives as a space: still read as the zone.
      const plus = ids((await list("bank", `?openedBefore=${first.openedAt.replace("Z", "+00:00")}&limit=200`)).cases);
      expect(plus).to.deep.equal(before);
    });

    it("the operator: every case, with the same filters but awaiting and role (400: it is a party to none)", async function () {
      const all = ids((await list("operator", "?limit=200")).cases);
      expect(all).to.include.members([h.caseId, h.otherCaseId, ...us]);
      const otherWorkflow = ids((await list("operator", "?workflow=uk-remortgage&status=open&limit=200")).cases);
      expect(otherWorkflow).to.include.members([h.caseId, h.otherCaseId]);
      for (const query of ["?awaiting=me", "?role=bank"]) {
        const res = await h.request("operator", "GET", `/cases${query}`);
        expect(res.status, query).to.equal(400);
        expect(res.body.error.details.fieldErrors).to.have.property(query.slice(1).split("=")[0]);
      }
      expect(ids((await list("stranger")).cases)).to.deep.equal([]);
    });
  });

  describe("paging", function () {
    it("pages by limit (default 50) with an opaque cursor, null at the end", async function () {
      const all = ids((await list("bank", "?limit=200")).cases);
      const first = await list("bank", "?limit=2");
      expect(ids(first.cases)).to.deep.equal(all.slice(0, 2));
      expect(first.nextCursor).to.be.a("string");
      expect((await list("bank")).cases.length).to.equal(Math.min(50, all.length));
      expect(await allPages("bank", "?limit=3")).to.deep.equal(all);
      expect((await list("bank", `?limit=${all.length}`)).nextCursor).to.equal(null);
    });

    it("gives every case once while cases move in the order between pages", async function () {
      const moving = [];
      for (let i = 0; i < 2; i++) moving.push(await h.openCase({ workflow: "us-purchase" }));
      const before = ids((await list("bank", "?limit=200")).cases);
      // One seen on the first page moves to the end (cancelled: no deadline); one not yet seen moves to the front
      // (its application completes: the Loan Estimate's 3 business days start).
      const seenFirst = before[0];
      const laterUs = moving[1];
      expect(before.indexOf(laterUs)).to.be.above(2);
      const seen = await allPages("bank", "?limit=2", async (page) => {
        if (page !== 1) return;
        await cancel(seenFirst);
        await signOff(laterUs, "application", "bank");
        await signOff(laterUs, "application", "buyer");
        await until(h, laterUs, "the application", (p) => p.stages[0].status === "completed");
        const now = ids((await list("bank", "?limit=200")).cases);
        expect(now[0], "the moved case now leads").to.equal(laterUs);
        expect(now.indexOf(seenFirst), "the cancelled one has moved behind the cursor").to.be.above(1);
      });
      expect(new Set(seen).size, `no case twice: ${seen.join(",")}`).to.equal(seen.length);
      expect([...seen].sort()).to.deep.equal([...before].sort());
    });

    it("refuses a cursor from another query, and one it did not make", async function () {
      const first = await list("bank", "?limit=1");
      const other = await h.request("bank", "GET", `/cases?limit=1&status=open&cursor=${first.nextCursor}`);
      expect(other.status).to.equal(400);
      expect(other.body.error.details.fieldErrors).to.have.property("cursor");
      const made = await h.request("bank", "GET", "/cases?cursor=bm90LWEtY3Vyc29y");
      expect(made.status).to.equal(400);
      expect(made.body.error.details.fieldErrors).to.have.property("cursor");
    });
  });

  describe("validation", function () {
    const bad: Array<[string, string]> = [
      ["limit=0", "limit"],
      ["limit=201", "limit"],
      ["limit=ten", "limit"],
      ["status=lost", "status"],
      ["status=open,lost", "status"],
      ["role=king", "role"],
      ["awaiting=you", "awaiting"],
      ["awaiting=me&awaiting=me", "awaiting"],
      ["deadlineBefore=tomorrow", "deadlineBefore"],
      ["deadlineBefore=2027-02-30T00:00:00Z", "deadlineBefore"],
      ["openedAfter=2027-01-01", "openedAfter"],
      ["openedBefore=1700000000", "openedBefore"],
      ["colour=blue", ""],
    ];
    for (const [query, field] of bad) {
      it(`answers 400 naming the field for ?${query}`, async function () {
        const res = await h.request("bank", "GET", `/cases?${query}`);
        expect(res.status, JSON.stringify(res.body).slice(0, 300)).to.equal(400);
        expect(res.body.error.code).to.equal("VALIDATION_FAILED");
        if (field) expect(res.body.error.details.fieldErrors, JSON.stringify(res.body)).to.have.property(field);
        else expect(JSON.stringify(res.body.error.details)).to.match(/colour/);
      });
    }
  });

  it("is documented in the OpenAPI document with its query parameters", async function () {
    const res = await h.request(null, "GET", "/openapi.json");
    const operation = res.body.paths["/cases"].get;
    const names = operation.parameters.map((p: any) => p.name);
    expect(names).to.include.members([
      "awaiting",
      "role",
      "status",
      "workflow",
      "deadlineBefore",
      "openedAfter",
      "openedBefore",
      "limit",
      "cursor",
    ]);
    const item = JSON.stringify(operation.responses["200"]);
    expect(item)
      .to.match(/nextCursor/)
      .and.to.match(/waitingFor/)
      .and.to.match(/nextDeadline/);
  });
});
