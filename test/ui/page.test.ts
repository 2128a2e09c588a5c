/**
 * The buyer's progress page (server/ui) in headless Chromium from Debian's packages, against the real server
 * on a real port (test/server/support/app-harness.ts) with a us-purchase case. The browser reaches the server
 * through a TCP proxy (test/engine/support/rpc-proxy.ts) so that a test can cut its connections for real.
 *
 * One browser and one case for the whole file: the tests follow the case in order, from the first sign-off
 * to its completion, and save screenshots at the start, midway and at completion to test/screenshots/ (on a
 * desktop and on a 390 px phone). The principals carry people's names, and the operator has set an indicative
 * rate (1 ETH = 2,500 GBP). axe-core (its axe.min.js, loaded into pages that bypass the page's CSP for it)
 * finds no accessibility violation at the start, midway and at completion, on both widths.
 * The browser's time zone is London's unless a test says otherwise; the case's jurisdiction keeps New York's.
 */
import { expect } from "chai";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { RpcProxy } from "../engine/support/rpc-proxy";
import { startApp, type AppHarness, type TokenName } from "../server/support/app-harness";

const SCREENSHOTS = join(__dirname, "..", "screenshots");
const TOKEN_KEY = "mortgage-signoff.token";
const WAIT = { timeout: 20_000 };
const DAY = 86_400;
const VIEWER_ZONE = "Europe/London";
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const NAMES = { bank: "Northwind Bank", lawyer: "Hale & Co. Settlement", buyer: "Alex Morgan", seller: "Sam Rivera" };
const AXE = require.resolve("axe-core/axe.min.js");

/** A moment's wall clock in `zone`, worked out here (Node's ICU) apart from the page's own code (Chromium's). */
function wallClock(iso: string, zone: string): { day: string; time: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      weekday: "short",
      day: "numeric",
      month: "short",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    })
      .formatToParts(new Date(iso))
      .map((p) => [p.type, p.value]),
  );
  return { day: `${parts.weekday} ${parts.day} ${parts.month}`, time: `${parts.hour}:${parts.minute}` };
}

describe("ui: the progress page in a real browser", function () {
  this.timeout(60_000);

  let h: AppHarness;
  let proxy: RpcProxy;
  let browser: Browser;
  let buyer: { context: BrowserContext; page: Page };
  let lawyer: { context: BrowserContext; page: Page };
  /** Every Content-Security-Policy complaint of any page: the page must need no inline script or style. */
  const cspViolations: string[] = [];
  /** The Last-Event-ID header of each request of the buyer's page for the event stream ("" for none). */
  const streamRequests: string[] = [];

  before(async function () {
    h = await startApp({
      workflow: "us-purchase",
      heartbeatMs: 1_000,
      displayNames: NAMES,
      display: { currency: { code: "GBP", rate: "2500" } },
    });
    proxy = await RpcProxy.start({ port: Number(new URL(h.url).port) });
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  after(async function () {
    await browser?.close();
    await proxy?.close();
    await h?.close();
  });

  async function newPage(
    width = 1280,
    timezoneId = VIEWER_ZONE,
    { height = 900, bypassCSP = false } = {},
  ): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width, height }, timezoneId, bypassCSP });
    const page = await context.newPage();
    page.on("console", (message) => {
      if (/Content.Security.Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    page.on("pageerror", (error) => cspViolations.push(`page error: ${error.message}`));
    return { context, page };
  }

  const pageUrl = () => `${proxy.url}/ui/cases/${h.caseId}`;
  const stageItem = (page: Page, id: string) => page.locator(`#timeline > li[data-stage="${id}"]`);
  const completed = (page: Page, id: string) =>
    page.locator(`#timeline > li[data-stage="${id}"][data-status="completed"]`);
  /** Completed stages are folded away (hidden) until the reader opens them: present, not necessarily visible. */
  const ATTACHED = { ...WAIT, state: "attached" as const };
  const fact = (page: Page, name: string) => page.locator(`#standing [data-fact="${name}"] dd`);

  /** A page of the buyer's (its own context), signed in and live, at `viewport`; CSP bypassed so that axe can load. */
  async function buyerPage(viewport: { width: number; height: number }, bypassCSP = false) {
    const opened = await newPage(viewport.width, VIEWER_ZONE, { height: viewport.height, bypassCSP });
    await opened.page.goto(pageUrl());
    await signIn(opened.page, h.tokens.buyer);
    await opened.page.locator('#connection[data-state="live"]').waitFor(WAIT);
    await opened.page.locator("#standing [data-fact], #outcome").first().waitFor(WAIT);
    return opened;
  }

  /** axe-core's violations on the page as it stands: "rule: target, target" each. */
  async function axeViolations(page: Page): Promise<string[]> {
    await page.addScriptTag({ path: AXE });
    return (await page.evaluate(`axe.run(document, { resultTypes: ["violations"] }).then((result) =>
      result.violations.map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", ")))`)) as string[];
  }

  /** No violation on a desktop and on a phone, with the folded stages and the technical details closed and open. */
  async function expectAccessible(when: string) {
    for (const viewport of [DESKTOP, PHONE]) {
      const { page, context } = await buyerPage(viewport, true);
      expect(await axeViolations(page), `${when}, ${viewport.width} px`).to.deep.equal([]);
      await page.getByRole("button", { name: /technical details/ }).click();
      const fold = page.locator("#fold-done");
      if ((await fold.count()) > 0) await fold.click();
      expect(await axeViolations(page), `${when}, ${viewport.width} px, all open`).to.deep.equal([]);
      await context.close();
    }
  }

  async function signIn(page: Page, token: string) {
    await page.getByLabel("Access token").fill(token);
    await page.getByRole("button", { name: "Show the case" }).click();
  }

  async function signOff(who: TokenName, stage: string) {
    const res = await h.request(
      who,
      "POST",
      `/cases/${h.caseId}/stages/${stage}/sign-offs`,
      {},
      { "Idempotency-Key": `${who}-${stage}` },
    );
    expect(res.status, `${who} signs off ${stage}: ${JSON.stringify(res.body)}`).to.equal(202);
  }

  async function caseNow(): Promise<any> {
    const res = await h.request("buyer", "GET", `/cases/${h.caseId}`);
    expect(res.status).to.equal(200);
    return res.body;
  }

  async function until(what: string, probe: (progress: any) => boolean): Promise<any> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const progress = await caseNow();
      if (probe(progress)) return progress;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Waits until `expression` is true in the page (page.waitForFunction would eval, which the page's CSP forbids). */
  async function inPage(page: Page, expression: string) {
    const deadline = Date.now() + WAIT.timeout;
    while (!(await page.evaluate(expression))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** A line of the aria-live region (visually hidden, so only attached). */
  const announced = (page: Page, text: string) =>
    page
      .locator("#announcer > p", { hasText: text })
      .first()
      .waitFor({ ...WAIT, state: "attached" });

  const stageOf = (progress: any, id: string) => progress.stages.find((s: any) => s.id === id);

  async function moveClock(seconds: number) {
    const res = await h.request("operator", "POST", "/dev/clock", { seconds });
    expect(res.status).to.equal(200);
  }

  /** The page was not reloaded since `markNotReloaded`: a reload would have dropped the marker. */
  const markNotReloaded = (page: Page) => page.evaluate("window.__notReloaded = true");
  const notReloaded = async (page: Page) => expect(await page.evaluate("window.__notReloaded === true")).to.equal(true);

  /**
   * Every stage offers `role` a button exactly where the API would take its sign-off now: "Sign off" on a stage
   * that is due, "Sign off early" (and a note saying so) on one still locked; no stage claims sign-offs are
   * accepted where the API says they are not.
   */
  async function expectButtonsAsTheApiAccepts(page: Page, role: string) {
    const progress = await caseNow();
    for (const stage of progress.stages) {
      expect(stage.acceptsSignOffs, `${stage.id}: acceptsSignOffs`).to.be.a("boolean");
      const item = stageItem(page, stage.id);
      const offered = stage.acceptsSignOffs && stage.requires.includes(role) && !stage.signedOff.includes(role);
      const buttons = item.getByRole("button", { name: /^Sign off/ });
      expect(await buttons.count(), `${stage.id} (${stage.status}): a button for the ${role}`).to.equal(
        offered ? 1 : 0,
      );
      if (offered) {
        const early = stage.status === "locked";
        expect(await buttons.first().textContent(), stage.id).to.match(
          early ? /^Sign off early / : /^Sign off (?!early)/,
        );
        expect(await item.locator(".early-note").count(), `${stage.id}: says it is early`).to.equal(early ? 1 : 0);
      }
      const hint =
        (await item.locator(".status-hint").count()) > 0 ? await item.locator(".status-hint").textContent() : "";
      if (!stage.acceptsSignOffs) expect(hint, stage.id).to.not.contain("accepted");
    }
  }

  it("parses the event stream in any chunking: CRLF split across chunks, comments, multi-line data, ids", async function () {
    const { page, context } = await newPage();
    await page.goto(pageUrl());
    const parsed = await page.evaluate(`(async () => {
      const { SseParser } = await import("/ui/assets/event-stream.js");
      const text = ": heartbeat\\r\\n\\r\\nretry: 2000\\n\\nid: 7\\r\\nevent: progress\\r\\ndata: {\\"a\\":\\r\\ndata: 1}\\r\\n\\r\\ndata: no id\\n\\n";
      const results = [];
      for (const size of [1, 2, 3, 5, 1000]) {
        const events = [];
        let comments = 0;
        const parser = new SseParser((e) => events.push(e), () => comments++);
        for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size));
        results.push({ events, comments });
      }
      return results;
    })()`);
    for (const result of parsed as any[]) {
      expect(result.comments).to.equal(1);
      expect(result.events).to.deep.equal([
        { id: "7", type: "progress", data: '{"a":\n1}' },
        // The id carries over to later events, as the standard's "last event ID" does.
        { id: "7", type: "message", data: "no id" },
      ]);
    }
    await context.close();
  });

  it("estimates a finish along the workflow's graph from typical durations, never before a legal moment, and finds the next legal date", async function () {
    const { page, context } = await newPage();
    await page.goto(pageUrl());
    const DAY_MS = DAY * 1000;
    const t0 = Date.parse("2027-01-04T12:00:00Z");
    const result = (await page.evaluate(`(async () => {
      const { estimateFinish, nextLegalDate, awaited } = await import("/ui/assets/estimate.js");
      const iso = (ms) => new Date(ms).toISOString();
      const stage = (id, fields = {}) => ({ id, title: id.toUpperCase(), status: "locked", waitingFor: null, requires: ["bank"],
        signedOff: [], availableAt: null, deadline: null, contractFloor: null, contractCeiling: null, completedAt: null, ...fields });
      const workflow = { stages: [{ id: "a", prerequisites: [] }, { id: "b", prerequisites: ["a"] },
        { id: "c", prerequisites: ["a"] }, { id: "d", prerequisites: ["b", "c"] }] };
      const typical = { stages: { a: { days: 1 }, b: { days: 10 }, c: { days: 3 }, d: { days: 2 } } };
      const base = { status: "open", parties: { bank: "0x1", lawyer: "0x2", buyer: "0x3", seller: "0x4" },
        terms: { price: "9", deposit: "1", loan: "8" }, escrow: { paidByBuyer: "1", paidByBank: "0" } };
      const now = ${t0} + ${DAY_MS};
      const progress = { ...base, stages: [stage("a", { status: "completed", completedAt: iso(${t0}) }),
        stage("b", { status: "open" }), stage("c", { status: "open", deadline: iso(now + 2 * ${DAY_MS}),
        contractCeiling: iso(now + ${DAY_MS}) }), stage("d", { deadline: iso(now - ${DAY_MS}) })] };
      // c's legal moment lies after its typical end: its end is that moment; d waits for b, the longer.
      const late = { ...progress, stages: progress.stages.map((s) => s.id === "d" ? { ...s, availableAt: iso(${t0} + 30 * ${DAY_MS}) } : s) };
      const funds = { ...base, stages: [stage("a", { status: "waiting", waitingFor: "funds" })] };
      const time = { ...base, stages: [stage("a", { status: "waiting", waitingFor: "time", availableAt: iso(now + ${DAY_MS}) })] };
      return {
        finish: estimateFinish(progress, workflow, typical, now),
        late: estimateFinish(late, workflow, typical, now),
        closed: estimateFinish({ ...progress, status: "completed" }, workflow, typical, now),
        next: nextLegalDate(progress, now),
        funds: awaited(funds).roles.map((r) => r.role + " " + r.for),
        time: awaited(time),
        signers: awaited(progress).roles.map((r) => r.role + " " + r.for + " " + r.stages.length),
      };
    })()`)) as any;
    // a ended at t0; b ends 10 days later, c 3; d 2 days after b.
    expect(result.finish).to.equal(new Date(t0 + 12 * DAY_MS).toISOString());
    expect(result.late).to.equal(new Date(t0 + 30 * DAY_MS).toISOString());
    expect(result.closed).to.equal(null);
    // The next legal date is c's deadline (the law's), not its contract ceiling, nor d's that has passed.
    expect(result.next.kind).to.equal("deadline");
    expect(result.next.stage.id).to.equal("c");
    expect(result.next.at).to.equal(new Date(t0 + 3 * DAY_MS).toISOString());
    expect(result.funds).to.deep.equal(["bank funds"]);
    expect(result.time).to.deep.include({ waitsForTime: true, time: new Date(t0 + 2 * DAY_MS).toISOString() });
    expect(result.signers).to.deep.equal(["bank sign-off 2"]);
    await context.close();
  });

  it("answers a wrong token, a revoked one and a stranger's with a clear message and the form again", async function () {
    const { page, context } = await newPage(360);
    await page.goto(pageUrl());
    const form = page.locator("#sign-in-form");
    const alert = page.getByRole("alert");

    await signIn(page, "msk_not-a-token");
    await alert.filter({ hasText: "That token was not accepted" }).waitFor(WAIT);
    expect(await form.isVisible()).to.equal(true);
    expect(await page.getByLabel("Access token").getAttribute("type")).to.equal("password");
    expect(await page.getByLabel("Access token").getAttribute("aria-invalid")).to.equal("true");

    await signIn(page, h.tokens.revoked);
    await alert.filter({ hasText: "That token was not accepted" }).waitFor(WAIT);

    await signIn(page, h.tokens.stranger);
    await alert.filter({ hasText: `There is no case ${h.caseId} that this token may see` }).waitFor(WAIT);
    expect(await form.isVisible()).to.equal(true);
    expect(await page.locator("#case").isVisible()).to.equal(false);

    // Nothing was kept, and no token ever went into an address.
    expect(await page.evaluate(`sessionStorage.getItem("${TOKEN_KEY}")`)).to.equal(null);
    expect(page.url()).to.equal(pageUrl());
    await context.close();
  });

  it("says there is no such case for an address that names none, as for an unknown case, never the API's words", async function () {
    const { page, context } = await newPage(360);
    for (const [path, title] of [
      ["/ui/cases/abc", "There is no case abc"],
      ["/ui/cases/", "This address names no case"],
      ["/ui/cases", "This address names no case"],
    ]) {
      const response = await page.goto(`${proxy.url}${path}`);
      expect(response?.status(), path).to.equal(200);
      await page.getByRole("heading", { name: title }).waitFor(WAIT);
      const text = (await page.locator("main").innerText()).replace(/\s+/g, " ");
      expect(text, path).to.contain("A case's page is /ui/cases/ followed by the case's number");
      expect(text, path).to.not.match(/params|not valid|NOT_FOUND|\{/);
      // No token could show a case that cannot exist: none is asked for.
      expect(await page.locator("#sign-in-form").isVisible(), path).to.equal(false);
    }
    // An unknown case (a well-formed number): the token first, since only the server knows, then the same words.
    await page.goto(`${proxy.url}/ui/cases/987654321`);
    await signIn(page, h.tokens.buyer);
    await page
      .getByRole("alert")
      .filter({ hasText: "There is no case 987654321 that this token may see" })
      .waitFor(WAIT);
    expect(await page.locator("#case").isVisible()).to.equal(false);
    await context.close();
  });

  it("keeps the token and tries again when the case cannot be loaded for want of a connection, and the error goes", async function () {
    const { page, context } = await newPage(360);
    await page.goto(pageUrl());
    await context.setOffline(true);
    await signIn(page, h.tokens.buyer);
    const loading = page.locator("#loading", { hasText: "The server could not be reached" });
    await loading.waitFor(WAIT);
    expect(await loading.textContent()).to.match(/Trying again in \d+ s…$/);
    // Not a verdict on the token: the form does not come back asking for it again.
    expect(await page.locator("#sign-in-form").isVisible()).to.equal(false);
    await context.setOffline(false);
    await page.getByRole("heading", { name: "US home purchase with a mortgage" }).waitFor(WAIT);
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    expect(await page.locator("#loading").isVisible()).to.equal(false);
    expect(await page.getByText("could not be reached").count()).to.equal(0);
    expect(await page.evaluate(`sessionStorage.getItem("${TOKEN_KEY}")`)).to.equal(h.tokens.buyer);
    await context.close();
  });

  it("shows the buyer every stage once the token is entered, and keeps the token for the tab only", async function () {
    buyer = await newPage();
    const { page } = buyer;
    page.on("request", (request) => {
      if (request.url().endsWith(`/cases/${h.caseId}/events`))
        streamRequests.push(request.headers()["last-event-id"] ?? "");
    });
    await page.goto(pageUrl());
    await signIn(page, h.tokens.buyer);

    await page.getByRole("heading", { name: "US home purchase with a mortgage" }).waitFor(WAIT);
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    expect(await page.locator("#timeline > li").count()).to.equal(12);
    expect(await page.locator("#progress-text").textContent()).to.equal("0 of 12 stages complete");
    expect(await page.evaluate("document.activeElement.id"), "the focus moves from the form to the case").to.equal(
      "case-title",
    );
    expect(await stageItem(page, "application").locator(".status-label").textContent()).to.equal("Open");
    expect(await stageItem(page, "loan-estimate").locator(".status-label").textContent()).to.equal("Locked");
    expect(await stageItem(page, "application").locator('[data-role="bank"]').textContent()).to.contain(
      "Northwind Bank (bank): awaited",
    );
    expect(await stageItem(page, "application").locator('[data-role="buyer"]').textContent()).to.contain(
      "Alex Morgan (buyer, you): awaited",
    );
    // The buyer's own stages offer a button; the bank's do not.
    expect(
      await stageItem(page, "application")
        .getByRole("button", { name: /^Sign off Application as Buyer$/ })
        .count(),
    ).to.equal(1);
    expect(await stageItem(page, "loan-estimate").getByRole("button").count()).to.equal(0);
    await expectButtonsAsTheApiAccepts(page, "buyer");
    // Signing waits 3 business days after the Closing Disclosure: no button, and the page says what it waits for.
    const consummation = stageOf(await caseNow(), "consummation");
    expect(consummation.acceptsSignOffs).to.equal(false);
    expect(consummation.waitsFor).to.be.a("string").and.not.equal("");
    expect(await stageItem(page, "consummation").getByRole("button").count()).to.equal(0);
    expect(await stageItem(page, "consummation").locator(".waits-for").textContent()).to.equal(
      `Not open to sign-offs yet: waits for: ${consummation.waitsFor}.`,
    );
    expect(await page.locator('#escrow [data-payer="buyer"]').textContent()).to.equal(
      "Alex Morgan (buyer, you) put in nothing yet of the 0.1 ETH deposit",
    );

    // The token lives in this tab's session storage, never in the address; a reload keeps the page signed in.
    expect(await page.evaluate(`sessionStorage.getItem("${TOKEN_KEY}")`)).to.equal(h.tokens.buyer);
    expect(page.url()).to.equal(pageUrl());
    await page.reload();
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    expect(await page.locator("#sign-in").isVisible()).to.equal(false);
    await markNotReloaded(page);
    await page.screenshot({ path: join(SCREENSHOTS, "1-start.png"), fullPage: true });
  });

  it("says at the top where things stand: the stage under way, whom it awaits by name and role, the next legal date, an estimated finish and its source", async function () {
    const { page } = buyer;
    const progress = await caseNow();
    expect(progress.names).to.deep.equal(NAMES);
    expect(await fact(page, "now").textContent()).to.equal("Application");
    expect(await fact(page, "awaited").textContent()).to.equal(
      "Northwind Bank (bank) and Alex Morgan (buyer, you) to sign off",
    );
    // The next legal date is the law's earliest moment still to come (the stages' deadline or availableAt).
    const moments = progress.stages
      .filter((s: any) => s.status !== "completed")
      .flatMap((s: any) => [
        { at: s.deadline, words: `: ${s.title} must be done by then` },
        { at: s.availableAt, words: `: ${s.title} may go ahead from then` },
      ])
      .filter((m: any) => m.at)
      .sort((a: any, b: any) => Date.parse(a.at) - Date.parse(b.at));
    expect(moments.length, "a legal date runs from the opening (the long stop)").to.be.greaterThan(0);
    const legal = fact(page, "legal-date");
    expect(await legal.locator(`time[datetime="${moments[0].at}"]`).count()).to.equal(1);
    expect(await legal.textContent()).to.match(new RegExp(`${moments[0].words.replace(/[()]/g, "\\$&")}$`));
    // An estimate from the typical durations (well inside the long stop), and where it comes from.
    const typical = (await h.request(null, "GET", "/workflows/us-purchase/typical-durations")).body;
    const estimate = fact(page, "estimate");
    const finish = await estimate.locator("time").getAttribute("datetime");
    const days = (Date.parse(finish!) - Date.parse(progress.updatedAt.time)) / (DAY * 1000);
    expect(days, "days to the estimated finish").to.be.within(30, 45);
    expect(await estimate.textContent()).to.match(
      /^around \w{3}, \d{1,2} \w{3} \d{4} \(in about \d+ weeks\), from typical durations: an estimate, not a promise\./,
    );
    const source = estimate.locator("details.estimate-source");
    expect(await source.locator("ul").isVisible()).to.equal(false);
    await source.locator("summary", { hasText: "Where this estimate comes from" }).click();
    expect(await source.textContent()).to.contain(typical.summary);
    expect(await source.locator("li").first().textContent()).to.equal(
      `Application: 1 day. ${typical.stages.application.source}`,
    );
    await source.locator("summary").click();
    // The parties by name.
    for (const role of ["bank", "lawyer", "buyer", "seller"] as const)
      expect(await page.locator(`#parties [data-party="${role}"]`).textContent(), role).to.match(
        new RegExp(`^${NAMES[role].replace(/[.&]/g, "\\$&")}( \\(you\\))? 0x`),
      );
    await page.screenshot({ path: join(SCREENSHOTS, "1-start-top.png") });
  });

  it("puts where things stand on a 390 px phone's first screen", async function () {
    const { page, context } = await buyerPage(PHONE);
    for (const name of ["now", "awaited", "legal-date", "estimate"]) {
      const box = await fact(page, name).boundingBox();
      expect(box, name).to.not.equal(null);
      expect(box!.y + box!.height, `${name} on the first screen`).to.be.at.most(PHONE.height);
    }
    expect(await page.evaluate("document.documentElement.scrollWidth")).to.be.at.most(PHONE.width);
    await page.screenshot({ path: join(SCREENSHOTS, "1-start-phone.png") });
    await context.close();
  });

  it("has no accessibility violation at the start, on a desktop and a phone (axe-core)", async function () {
    await expectAccessible("at the start");
  });

  it("shows each stage complete, without a reload, as the buyer, the bank and the lawyer sign off through the API", async function () {
    const { page } = buyer;
    await signOff("buyer", "application");
    await stageItem(page, "application").locator('[data-role="buyer"].role--signed').waitFor(WAIT);
    await signOff("bank", "application");
    await completed(page, "application").waitFor(ATTACHED);

    await signOff("bank", "loan-estimate");
    await completed(page, "loan-estimate").waitFor(ATTACHED);
    // Screen readers hear of it.
    await announced(page, "Completed: Loan Estimate delivered.");
    await signOff("lawyer", "title-commitment");
    await completed(page, "title-commitment").waitFor(ATTACHED);
    await signOff("bank", "appraisal");
    await signOff("bank", "underwriting");
    await completed(page, "appraisal").waitFor(ATTACHED);
    await completed(page, "underwriting").waitFor(ATTACHED);

    await page.locator("#progress-text", { hasText: "5 of 12 stages complete" }).waitFor(WAIT);
    await notReloaded(page);

    // Each completed stage shows the transaction that completed it, as the API has it.
    const progress = await caseNow();
    for (const id of ["application", "loan-estimate", "title-commitment", "appraisal", "underwriting"]) {
      const tx = stageOf(progress, id).tx;
      expect(tx, id).to.match(/^0x[0-9a-f]{64}$/);
      expect(await completed(page, id).locator(".hash").textContent(), id).to.equal(tx);
    }
    // The history lists the on-chain events with their transactions.
    await page.locator("#history-list > li", { hasText: "Completed: Title search and commitment" }).waitFor(WAIT);

    // The waiting period after the Loan Estimate counts down, live, to the moment it ends.
    const countdown = stageItem(page, "loan-estimate-waiting-period").locator(".timing--available .countdown");
    const before = await countdown.textContent();
    expect(before).to.match(/^\(in (\d+ d )?(\d+ h )?(\d+ min )?\d+ s\)$/);
    const seen = new Set([before]);
    for (let i = 0; i < 8 && seen.size < 3; i++) {
      await page.waitForTimeout(500);
      seen.add(await countdown.textContent());
    }
    expect(seen.size, "the countdown ticks").to.be.at.least(3);
    expect(await stageItem(page, "loan-estimate-waiting-period").locator(".status-label").textContent()).to.equal(
      "Waiting for time",
    );
  });

  it("folds the completed stages behind 'n stages done', keeps the ones under way open, and opens them on a click", async function () {
    const { page } = buyer;
    const fold = page.locator("#fold-done");
    expect(await fold.textContent()).to.equal("✓ 5 stages done: show them");
    expect(await fold.getAttribute("aria-expanded")).to.equal("false");
    expect(await completed(page, "application").isVisible()).to.equal(false);
    expect(await stageItem(page, "rate-lock").isVisible(), "under way").to.equal(true);
    expect(await stageItem(page, "loan-estimate-waiting-period").isVisible(), "waiting").to.equal(true);
    expect(await fact(page, "now").textContent()).to.equal(
      "Rate lock and Seven business days since the Loan Estimate, less the three that consummation waits",
    );
    await fold.click();
    expect(await page.locator("#fold-done").textContent()).to.equal("✓ 5 stages done: hide them");
    expect(await page.locator("#fold-done").getAttribute("aria-expanded")).to.equal("true");
    expect(await completed(page, "application").isVisible()).to.equal(true);
    expect(await page.evaluate("document.activeElement.id")).to.equal("fold-done");
    await page.locator("#fold-done").click();
    expect(await completed(page, "application").isVisible()).to.equal(false);
  });

  it("keeps hashes, blocks and addresses behind 'Show technical details', one click away", async function () {
    const { page } = buyer;
    await page.locator("#fold-done").click();
    const tx = stageOf(await caseNow(), "application").tx;
    const hash = completed(page, "application").locator(".hash");
    const address = page.locator('#parties [data-party="bank"] .party-address');
    const block = page.locator("#history-list > li .event-where .technical").first();
    for (const hidden of [hash, address, block]) expect(await hidden.isVisible()).to.equal(false);
    expect(await page.locator("#case .hash:visible, #case .address:visible").count()).to.equal(0);
    const toggle = page.getByRole("button", { name: "Show technical details" });
    expect(await toggle.getAttribute("aria-expanded")).to.equal("false");
    await toggle.click();
    expect(await hash.isVisible()).to.equal(true);
    expect(await hash.textContent()).to.equal(tx);
    expect(await address.textContent()).to.equal(` ${h.addresses.bank}`);
    expect(await block.textContent()).to.match(/block \d+$/);
    expect(await page.getByRole("button", { name: "Hide technical details" }).getAttribute("aria-expanded")).to.equal(
      "true",
    );
    await page.getByRole("button", { name: "Hide technical details" }).click();
    expect(await hash.isVisible()).to.equal(false);
    await page.locator("#fold-done").click();
  });

  it("shows the legal moments in the viewer's time zone, with New York time beside them where it differs", async function () {
    const progress = await caseNow();
    expect(progress.timeZone).to.equal("America/New_York");
    const moments = progress.stages.flatMap((stage: any) =>
      [
        ["availableAt", ".timing--available"],
        ["deadline", ".timing--deadline"],
      ]
        .filter(([field]) => stage[field] && stage.status !== "completed")
        .map(([field, selector]) => ({ stage: stage.id, field, iso: stage[field] as string, selector })),
    );
    expect(moments.map((m: any) => `${m.stage}.${m.field}`)).to.include("loan-estimate-waiting-period.availableAt");

    // The buyer's page runs in London: London's clock first, New York's beside it.
    for (const m of moments) {
      const text = await stageItem(buyer.page, m.stage)
        .locator(`${m.selector} time[datetime="${m.iso}"]`)
        .textContent();
      const london = wallClock(m.iso, VIEWER_ZONE);
      const newYork = wallClock(m.iso, "America/New_York");
      expect(text, `${m.stage}.${m.field}`)
        .to.contain(`${london.day.replace(" ", ", ")} 2`)
        .and.contain(`${london.time} GMT`);
      const inNewYork =
        newYork.time === "00:00"
          ? `midnight at the ${m.field === "deadline" ? "end of " + wallClock(new Date(Date.parse(m.iso) - 1).toISOString(), "America/New_York").day : "start of " + newYork.day}`
          : `${newYork.day}, ${newYork.time}`;
      expect(text, `${m.stage}.${m.field}`).to.match(new RegExp(`\\(${inNewYork}, New York time\\)$`));
      expect(text).to.not.contain("UTC");
    }
    // The legal days end at midnight in New York: the waiting period after the Loan Estimate is possible from one.
    const waiting = moments.find((m: any) => m.stage === "loan-estimate-waiting-period" && m.field === "availableAt");
    expect(wallClock(waiting.iso, "America/New_York").time).to.equal("00:00");
    expect(await buyer.page.locator(".zones").textContent()).to.equal(
      "Times are in your time zone (London); legal days are counted in New York time, shown beside them.",
    );

    // A lawyer in New York sees New York's clock alone.
    const local = await newPage(1280, "America/New_York");
    await local.page.goto(pageUrl());
    await signIn(local.page, h.tokens.lawyer);
    await local.page.locator('#connection[data-state="live"]').waitFor(WAIT);
    for (const m of moments) {
      const text = await stageItem(local.page, m.stage)
        .locator(`${m.selector} time[datetime="${m.iso}"]`)
        .textContent();
      const newYork = wallClock(m.iso, "America/New_York");
      expect(text, `${m.stage}.${m.field}`).to.match(
        new RegExp(`^${newYork.day.replace(" ", ", ")} \\d{4}, ${newYork.time} E[SD]T$`),
      );
    }
    expect(await local.page.locator(".zones").count()).to.equal(0);
    await local.context.close();
  });

  it("reconnects a dropped stream with Last-Event-ID and catches up on what happened meanwhile", async function () {
    const { page } = buyer;
    const lastSeen = (await page.evaluate("window.caseStream.lastEventId")) as string;
    expect(lastSeen).to.match(/^\d+$/);
    const requestsBefore = streamRequests.length;

    proxy.setMode("drop");
    await page.locator('#connection[data-state="reconnecting"]').waitFor(WAIT);
    // Scrolled to the bottom of the page, the reader still sees that the page is reconnecting.
    await page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)");
    expect(await page.evaluate("window.scrollY"), "the page scrolled").to.be.greaterThan(500);
    const notice = await page.locator("#connection").boundingBox();
    expect(notice, "the notice is laid out").to.not.equal(null);
    expect(notice!.y, "the notice's top is in view").to.be.at.least(0);
    expect(notice!.y + notice!.height, "the notice's bottom is in view").to.be.at.most(900);
    expect(await page.locator("#connection-text").textContent()).to.match(/^Reconnecting in \d+ s…$/);
    await page.evaluate("window.scrollTo(0, 0)");
    await signOff("bank", "rate-lock");
    await signOff("buyer", "rate-lock");
    await until("the rate lock", (p) => stageOf(p, "rate-lock").status === "completed");
    // Cut off, the page cannot know yet.
    expect(await stageItem(page, "rate-lock").getAttribute("data-status")).to.equal("open");

    proxy.setMode("pass");
    await completed(page, "rate-lock").waitFor(ATTACHED);
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    await page.locator("#progress-text", { hasText: "6 of 12 stages complete" }).waitFor(WAIT);
    await notReloaded(page);
    const resumed = streamRequests.slice(requestsBefore).filter((id) => id !== "");
    expect(resumed.length, "reconnects sent Last-Event-ID").to.be.greaterThan(0);
    expect(resumed[0]).to.equal(lastSeen);
    await announced(page, "Live updates resumed.");

    // Offline and back: the browser's "online" cuts the backoff short, and the page catches up again.
    // (Going offline leaves an open connection be: the proxy cuts it.)
    await buyer.context.setOffline(true);
    proxy.setMode("drop");
    proxy.setMode("pass");
    await page.locator('#connection[data-state="reconnecting"]').waitFor(WAIT);
    // A sign-off tried while offline cannot be sent, and says so ...
    const closingDisclosure = stageItem(page, "closing-disclosure");
    await closingDisclosure.getByRole("button", { name: /^Sign off/ }).click();
    const unsent = closingDisclosure.locator(".action-result--error", {
      hasText: "could not be sent: the server could not be reached",
    });
    await unsent.waitFor(WAIT);
    await signOff("bank", "clear-to-close");
    await until("clear to close", (p) => stageOf(p, "clear-to-close").status === "completed");
    // Wait until the backoff has grown to several seconds: then a quick catch-up is the "online" event's doing.
    await page.locator("#connection-text", { hasText: /^Reconnecting in ([4-9]|\d\d) s/ }).waitFor(WAIT);
    const onlineAt = Date.now();
    await buyer.context.setOffline(false);
    await completed(page, "clear-to-close").waitFor(ATTACHED);
    expect(Date.now() - onlineAt, "reconnected as soon as the browser was online").to.be.below(2_000);
    // ... and once the connection is back, that error leaves the screen; the button is there to try again.
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    await unsent.waitFor({ ...WAIT, state: "detached" });
    expect(await closingDisclosure.locator(".action-result--error").count()).to.equal(0);
    expect(await closingDisclosure.getByRole("button", { name: /^Sign off/ }).count()).to.equal(1);
    await notReloaded(page);

    // Midway: on a desktop width, the picture of the page the README shows (from the top: the header sticks
    // to the window, and a full-page picture taken scrolled down would show it midway).
    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path: join(SCREENSHOTS, "2-midway.png"), fullPage: true });
    // Its upper part, from the heading to the stages still to come, is server/ui/screenshot.png.
    await page.screenshot({
      path: join(SCREENSHOTS, "2-midway-readme.png"),
      fullPage: true,
      clip: { x: 0, y: 0, width: 1280, height: 1800 },
    });
  });

  it("has no accessibility violation midway, on a desktop and a phone (axe-core)", async function () {
    await expectAccessible("midway");
    const { page, context } = await buyerPage(PHONE);
    await page.screenshot({ path: join(SCREENSHOTS, "2-midway-phone.png") });
    await context.close();
  });

  it("gives up on a stalled stream that sends nothing, not even heartbeats, and resumes where it was", async function () {
    // The page's follower with a short idle limit (the page uses 45 s against the server's 15 s heartbeat),
    // run in the browser against the server through the proxy; the server's heartbeat here is 1 s.
    const { page, context } = await newPage();
    await page.goto(pageUrl());
    const follow = `(async () => {
      const { followStream } = await import("/ui/assets/event-stream.js");
      const log = (window.followLog = { states: [], events: [] });
      window.follower = followStream({
        url: "/cases/${h.caseId}/events",
        token: "${h.tokens.seller}",
        idleMs: 2500,
        onEvent: (e) => log.events.push({ id: e.id, data: JSON.parse(e.data) }),
        onState: (state) => log.states.push(state),
        onFatal: (error) => log.states.push("fatal " + error.status),
      });
    })()`;
    await page.evaluate(follow);
    await inPage(page, "window.followLog.events.length === 1");
    const firstId = (await page.evaluate("window.followLog.events[0].id")) as string;

    proxy.setMode("stall");
    await inPage(page, "window.followLog.states.includes('reconnecting')");
    await signOff("bank", "closing-disclosure");
    await until("the bank's closing disclosure", (p) => stageOf(p, "closing-disclosure").signedOff.includes("bank"));
    proxy.setMode("pass");

    const caughtUp =
      "window.followLog.events.some((e) => e.data.stages.some((s) => s.id === 'closing-disclosure' && s.signedOff.includes('bank')))";
    await inPage(page, caughtUp);
    const log = (await page.evaluate("window.followLog")) as { states: string[]; events: Array<{ id: string }> };
    expect(log.states[0]).to.equal("connecting");
    expect(log.states.filter((state) => state === "live").length, "live again after the stall").to.be.at.least(2);
    expect(log.states.some((state) => state.startsWith("fatal"))).to.equal(false);
    expect(BigInt(log.events[log.events.length - 1].id) > BigInt(firstId)).to.equal(true);
    await page.evaluate("window.follower.stop()");
    await context.close();
    // The buyer's page went through the same stall, with its longer limit: it is live and caught up too.
    await stageItem(buyer.page, "closing-disclosure").locator('[data-role="bank"].role--signed').waitFor(WAIT);
    await buyer.page.locator('#connection[data-state="live"]').waitFor(WAIT);
  });

  it("lets the lawyer sign off from the page with a click, and says when it is too early", async function () {
    await signOff("buyer", "closing-disclosure");
    await until("the closing disclosure", (p) => stageOf(p, "closing-disclosure").status === "completed");

    lawyer = await newPage();
    const { page } = lawyer;
    await page.goto(pageUrl());
    await signIn(page, h.tokens.lawyer);
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    // The lawyer's stage that is done offers nothing; the ones that await the lawyer offer a button.
    expect(await stageItem(page, "title-commitment").getByRole("button").count()).to.equal(0);

    // Consummation waits 3 business days after both the Closing Disclosure and the waiting period after the
    // Loan Estimate. The API would refuse the lawyer now: no button, and the page says what the stage waits for.
    const consummation = stageItem(page, "consummation");
    const button = consummation.getByRole("button", { name: /^Sign off Signing \(consummation\) as Lawyer$/ });
    const refused = await h.request("lawyer", "POST", `/cases/${h.caseId}/stages/consummation/sign-offs`, {});
    expect(refused.status).to.equal(409);
    expect(refused.body.error.code).to.equal("TOO_EARLY");
    const waitsFor = refused.body.error.details.waitsFor as string;
    expect(waitsFor).to.match(/, then 3 business days$/);
    expect(stageOf(await caseNow(), "consummation").waitsFor).to.equal(waitsFor);
    expect(await consummation.getByRole("button").count()).to.equal(0);
    expect(await consummation.locator(".waits-for").textContent()).to.equal(
      `Not open to sign-offs yet: waits for: ${waitsFor}.`,
    );
    await expectButtonsAsTheApiAccepts(page, "lawyer");

    // A page whose view is older than the server's still offers the button; the server's refusal then names
    // what the stage waits for. (Stale on purpose: this page's GET /cases/:id answer is altered in flight to say
    // consummation takes sign-offs, and its event stream is held off. The sign-off goes to the real server.)
    const stale = await newPage();
    await stale.page.route(
      (url) => url.pathname === `/cases/${h.caseId}`,
      async (route) => {
        const response = await route.fetch();
        const body = await response.json();
        for (const stage of body.stages) if (stage.id === "consummation") stage.acceptsSignOffs = true;
        await route.fulfill({ response, json: body });
      },
    );
    await stale.page.route(
      (url) => url.pathname === `/cases/${h.caseId}/events`,
      (route) => route.abort(),
    );
    await stale.page.goto(pageUrl());
    await signIn(stale.page, h.tokens.lawyer);
    const staleConsummation = stageItem(stale.page, "consummation");
    // Still locked (the waiting period after the Loan Estimate runs): an early sign-off, and it says so.
    await staleConsummation
      .getByRole("button", { name: /^Sign off early Signing \(consummation\) as Lawyer$/ })
      .click();
    const early = staleConsummation.locator(".action-result--error");
    await early.waitFor(WAIT);
    expect(await early.textContent()).to.equal(`Too early to sign off Signing (consummation): waits for: ${waitsFor}.`);
    await announced(stale.page, "Too early to sign off Signing (consummation)");
    await stale.context.close();

    // The 4 business days after the Loan Estimate pass; that stage completes by time alone. Now the legal
    // moment is known, and shown: the API's own, in London's clock and New York's.
    await moveClock(7 * DAY);
    await completed(page, "loan-estimate-waiting-period").waitFor(ATTACHED);
    const known = stageOf(await caseNow(), "consummation");
    expect(known.acceptsSignOffs).to.equal(false);
    expect(known.availableAt).to.match(/T\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const possibleFrom = consummation.locator(`.timing--available time[datetime="${known.availableAt}"]`);
    await possibleFrom.waitFor(WAIT);
    expect(await possibleFrom.textContent()).to.contain("New York time)");
    expect(await consummation.locator(".waits-for").textContent()).to.not.match(/\d{4}-\d\d-\d\dT/);
    expect(await consummation.getByRole("button").count()).to.equal(0);

    // Past the legal moment the API takes the lawyer's sign-off; the next progress (the seller's sign-off) says so.
    await moveClock(7 * DAY);
    await signOff("seller", "consummation");
    await consummation.locator('[data-role="seller"].role--signed').waitFor(WAIT);
    await button.waitFor(WAIT);
    expect(await consummation.locator(".waits-for").count()).to.equal(0);
    // This time from the keyboard: Tab reaches the button, its focus is visible, and Enter presses it.
    await consummation.focus();
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(
      "({ text: document.activeElement.textContent, outline: getComputedStyle(document.activeElement).outlineStyle })",
    );
    expect(focused).to.deep.equal({ text: "Sign off Signing (consummation) as Lawyer", outline: "solid" });
    await page.keyboard.press("Enter");
    await consummation.locator(".action-result", { hasText: "Sign-off submitted as Lawyer" }).waitFor(WAIT);
    await consummation.locator('[data-role="lawyer"].role--signed').waitFor(WAIT);
    expect(await consummation.getByRole("button").count()).to.equal(0);
    // The buyer's page hears of it too.
    await stageItem(buyer.page, "consummation").locator('[data-role="lawyer"].role--signed').waitFor(WAIT);
    await notReloaded(buyer.page);
  });

  it("follows the case to its completion and shows where the money went", async function () {
    await signOff("buyer", "consummation");
    await signOff("seller", "consummation");
    await completed(buyer.page, "consummation").waitFor(ATTACHED);
    expect(await stageItem(buyer.page, "funding").locator(".status-label").textContent()).to.equal("Open");

    const deposit = await h.request("buyer", "POST", `/cases/${h.caseId}/deposits`, { amount: "100000000000000000" });
    expect(deposit.status).to.equal(202);
    const loan = await h.request("bank", "POST", `/cases/${h.caseId}/deposits`, { amount: "800000000000000000" });
    expect(loan.status).to.equal(202);
    await buyer.page.locator("#escrow .held", { hasText: "All the money is in escrow." }).waitFor(WAIT);
    // Money in words, each payer by name, with the operator's indicative rate beside the ETH.
    expect(await buyer.page.locator('#escrow [data-payer="buyer"]').textContent()).to.equal(
      "Alex Morgan (buyer, you) put in 0.1 ETH (about £250) of the 0.1 ETH deposit",
    );
    expect(await buyer.page.locator('#escrow [data-payer="bank"]').textContent()).to.equal(
      "Northwind Bank (bank) put in 0.8 ETH (about £2,000) of the 0.8 ETH loan",
    );
    expect(await buyer.page.locator("#escrow .held").textContent()).to.equal(
      "All the money is in escrow. It goes to the seller when Funding and disbursement: lender to escrow to seller completes.",
    );
    expect(await buyer.page.locator("#escrow .indicative").textContent()).to.equal(
      "Amounts in GBP are indicative only: at 1 ETH = £2,500.00, a rate set by the operator of this service, not a market price.",
    );
    expect(await fact(buyer.page, "awaited").textContent()).to.equal(
      "Northwind Bank (bank) and Hale & Co. Settlement (lawyer) to sign off",
    );

    // The lawyer signs the release and the recording from the page; the bank through the API.
    const { page } = lawyer;
    await signOff("bank", "funding");
    await stageItem(page, "funding")
      .getByRole("button", { name: /Sign off/ })
      .click();
    await completed(page, "funding").waitFor(ATTACHED);
    await stageItem(page, "recording")
      .getByRole("button", { name: /Sign off/ })
      .click();
    await completed(page, "recording").waitFor(ATTACHED);

    const done = buyer.page;
    await done.locator("#progress-text", { hasText: "12 of 12 stages complete" }).waitFor(WAIT);
    await done.locator(".case-status", { hasText: "Completed" }).waitFor(WAIT);
    expect(await done.locator("#escrow .held").textContent()).to.equal("Released: the escrow has paid out.");
    // The seller's price was credited and paid out at once: the history shows it withdrawn.
    await done
      .locator('#escrow .payouts li[data-payee="seller"]', {
        hasText: "Sam Rivera (seller) received 0.9 ETH (about £2,250)",
      })
      .waitFor(WAIT);
    expect(await done.locator("#escrow").textContent()).to.contain(
      "What came backNothing came back to anyone: every payer paid exactly its share.",
    );

    // The moment it completes: what was achieved, when, and the money, at the top of the page.
    const final = await caseNow();
    const last = final.stages
      .map((s: any) => s.completedAt)
      .sort()
      .pop();
    const outcome = done.locator("#outcome");
    expect(await outcome.locator("h3").textContent()).to.equal("The case is complete");
    expect(await outcome.locator(`.outcome-when time[datetime="${last}"]`).count()).to.equal(1);
    // The dev clock moved 14 days on the way: it took 14 days from the opening.
    expect(await outcome.locator(".outcome-when").textContent()).to.match(
      /^Completed .+, 14 days after the case opened\.$/,
    );
    expect(await outcome.locator(".outcome-what").textContent()).to.equal(
      "All 12 stages are done: US home purchase with a mortgage has gone through, and the escrow has paid out.",
    );
    expect(await outcome.locator(".outcome-paid").textContent()).to.equal(
      "Alex Morgan (buyer, you) put in 0.1 ETH (about £250) and Northwind Bank (bank) 0.8 ETH (about £2,000).",
    );
    await outcome
      .locator(".outcome-money li", { hasText: "Sam Rivera (seller) received 0.9 ETH (about £2,250)." })
      .waitFor(WAIT);
    expect(await done.locator("#standing [data-fact]").count(), "no estimate once done").to.equal(0);
    // Every stage folded away behind one line.
    expect(await done.locator("#fold-done").textContent()).to.equal("✓ 12 stages done: show them");
    expect(await done.locator("#timeline > li:visible").count()).to.equal(0);
    await notReloaded(done);
    expect(await done.getByRole("button", { name: /Sign off/ }).count()).to.equal(0);
    await done.evaluate("window.scrollTo(0, 0)");
    await done.screenshot({ path: join(SCREENSHOTS, "3-completed.png"), fullPage: true });

    // On a phone's width, nothing runs off the side, and the outcome is on the first screen.
    await done.setViewportSize({ width: 360, height: 800 });
    expect(await done.evaluate("document.documentElement.scrollWidth")).to.be.at.most(360);
    await done.setViewportSize(PHONE);
    await done.evaluate("window.scrollTo(0, 0)");
    const box = await outcome.boundingBox();
    expect(box!.y + box!.height, "the outcome fits the phone's first screen").to.be.at.most(PHONE.height);
    await done.screenshot({ path: join(SCREENSHOTS, "4-completed-phone.png") });
    await done.setViewportSize(DESKTOP);
    await done.screenshot({ path: join(SCREENSHOTS, "3-completed-top.png") });
    await done.setViewportSize({ width: 1280, height: 900 });
    await expectAccessible("completed");
  });

  it("asks for a token again when the one in use is revoked while the page follows the case", async function () {
    const { token, principal } = h.principals.add({
      name: "seller-on-the-phone",
      role: "seller",
      address: h.addresses.seller,
    });
    const { page, context } = await newPage(360);
    await page.goto(pageUrl());
    await signIn(page, token);
    await page.locator('#connection[data-state="live"]').waitFor(WAIT);
    expect(await page.locator(".viewer").textContent()).to.equal("You are the seller in this case.");

    h.principals.revoke(principal.id);
    // The server ends the stream at its next heartbeat; the reconnection is refused: the page says why.
    await page.getByRole("alert").filter({ hasText: "That token was not accepted" }).waitFor(WAIT);
    expect(await page.locator("#sign-in-form").isVisible()).to.equal(true);
    expect(await page.evaluate(`sessionStorage.getItem("${TOKEN_KEY}")`)).to.equal(null);
    await context.close();
  });

  it("forgets the token on sign out, and needed no inline script or style", async function () {
    const { page } = buyer;
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#sign-in-form").waitFor(WAIT);
    expect(await page.evaluate(`sessionStorage.getItem("${TOKEN_KEY}")`)).to.equal(null);
    expect(await page.locator("#case").isVisible()).to.equal(false);
    expect(cspViolations).to.deep.equal([]);
  });

  describe("amendments by consent, on a case of their own", function () {
    let id: string;
    let viewer: { context: BrowserContext; page: Page };
    const caseUrl = () => `${proxy.url}/ui/cases/${id}`;
    const proposal = (page: Page, n: number) => page.locator(`#amendments li[data-amendment="${n}"]`);

    async function amendmentsOf(): Promise<any> {
      return (await h.request("buyer", "GET", `/cases/${id}`)).body;
    }
    async function untilCase(what: string, probe: (progress: any) => boolean): Promise<any> {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const progress = await amendmentsOf();
        if (probe(progress)) return progress;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    async function send(who: TokenName, method: string, path: string, body: unknown) {
      const res = await h.request(who, method, `/cases/${id}${path}`, body);
      expect(res.status, `${who} ${method} ${path}: ${JSON.stringify(res.body)}`).to.equal(202);
    }
    /** A date `days` after the chain's time, as YYYY-MM-DD (its UTC date: far enough from midnight in New York). */
    const dateAfter = (iso: string, days: number) =>
      new Date(Date.parse(iso) + days * DAY * 1000).toISOString().slice(0, 10);

    before(async function () {
      id = await h.openCase();
    });
    after(async function () {
      await viewer?.context.close();
    });

    it("shows an open proposal at the top in plain words: what moves where, who proposed and agreed, whom it waits for, when it lapses", async function () {
      const opened = await amendmentsOf();
      await send("bank", "POST", "/amendments", {
        kind: "deadline",
        stage: "funding",
        deadline: "longStop",
        to: dateAfter(opened.updatedAt.time, 100),
      });
      await untilCase("the proposal", (p) => p.amendments.length === 1);
      await send("seller", "POST", "/amendments/1/consents", {});
      const [a] = (await untilCase("the seller's consent", (p) => p.amendments[0]?.consented.includes("seller")))
        .amendments;
      expect(a.awaiting).to.deep.equal(["buyer"]);

      viewer = await newPage();
      const { page } = viewer;
      await page.goto(caseUrl());
      await signIn(page, h.tokens.buyer);
      await page.locator('#connection[data-state="live"]').waitFor(WAIT);
      const item = proposal(page, 1);
      await item.waitFor(WAIT);
      const newYorkDay = wallClock(new Date(Date.parse(a.change.to) - 1).toISOString(), "America/New_York").day;
      const what = (await item.locator(".amendment-what").textContent())!;
      expect(what).to.match(/^The long-stop date for Funding and disbursement: lender to escrow to seller moves to /);
      expect(what).to.contain(`(midnight at the end of ${newYorkDay}, New York time)`);
      expect(what).to.match(/: the bank proposed it; the seller has agreed; waiting for you\.$/);
      expect(await item.locator(`.amendment-what time[datetime="${a.change.to}"]`).count()).to.equal(1);
      const lapse = item.locator(".amendment-lapse");
      expect(await lapse.textContent()).to.match(/^Unless everyone it waits for agrees, it lapses at .+\.$/);
      expect(await lapse.locator(`time[datetime="${a.expiresAt}"]`).count()).to.equal(1);
      // The box sits above the stages.
      const box = await page.locator("#amendments").boundingBox();
      const stages = await page.locator("#stages").boundingBox();
      expect(box!.y).to.be.below(stages!.y);
      expect(await item.getByRole("button", { name: /^Consent/ }).count()).to.equal(1);
      expect(await item.getByRole("button", { name: /^Decline/ }).count()).to.equal(1);
      await page.screenshot({ path: join(SCREENSHOTS, "5-amendment-proposed.png"), clip: box! });
    });

    it("words a change of terms in the asset's units, and a change of party by its addresses", async function () {
      const { page, context } = await newPage();
      await page.goto(caseUrl());
      const [lawyerFrom, lawyerTo] = [h.addresses.lawyer, h.addresses.stranger];
      const words = (await page.evaluate(`(async () => {
        const { changeWords } = await import("/ui/assets/amendments.js");
        const { h } = await import("/ui/assets/dom.js");
        const progress = { timeZone: "America/New_York", asset: "0x0000000000000000000000000000000000000000", stages: [] };
        const terms = { from: { price: "900000000000000000", deposit: "100000000000000000", loan: "800000000000000000" },
                        to: { price: "950000000000000000", deposit: "150000000000000000", loan: "800000000000000000" } };
        const party = { role: "lawyer", from: "${lawyerFrom}", to: "${lawyerTo}" };
        const text = (change, tense) => h("p", {}, changeWords({ change }, progress, tense)).textContent;
        const token = { ...progress, asset: "0x00000000000000000000000000000000000000aa" };
        return [
          text({ kind: "terms", ...terms }),
          text({ kind: "terms", ...terms }, "applied"),
          h("p", {}, changeWords({ change: { kind: "terms", ...terms } }, token)).textContent,
          text({ kind: "party", ...party }),
          h("p", {}, changeWords({ change: { kind: "party", ...party } }, progress)).querySelector("code").title,
        ];
      })()`)) as string[];
      const short = (a: string) => `${a.slice(0, 6)}…${a.slice(-4)}`;
      expect(words).to.deep.equal([
        "The price changes from 0.9 ETH to 0.95 ETH and the deposit from 0.1 ETH to 0.15 ETH",
        "The price changed from 0.9 ETH to 0.95 ETH and the deposit from 0.1 ETH to 0.15 ETH",
        "The price changes from 900,000,000,000,000,000 units to 950,000,000,000,000,000 units and the deposit from 100,000,000,000,000,000 units to 150,000,000,000,000,000 units",
        `The lawyer's address changes from ${short(lawyerFrom)} to ${short(lawyerTo)}`,
        lawyerFrom,
      ]);
      await context.close();
    });

    it("lets the awaited party consent with a click, and shows it applied and the new deadline, live", async function () {
      const { page } = viewer;
      await markNotReloaded(page);
      const to = (await amendmentsOf()).amendments[0].change.to;
      const item = proposal(page, 1);
      await item.getByRole("button", { name: /^Consent/ }).click();
      // The 202's words, which the stream's news of the consent on the chain may replace at once.
      await announced(page, "Your consent was sent. It shows here once it is on the chain.");
      await item.locator(".amendment-status", { hasText: "Applied: terms version 1" }).waitFor(WAIT);
      expect(await item.locator(".amendment-what").textContent()).to.match(
        /^The long-stop date for Funding and disbursement: lender to escrow to seller moved to /,
      );
      expect(await item.getByRole("button").count()).to.equal(0);
      await stageItem(page, "funding").locator(`.timing--deadline time[datetime="${to}"]`).waitFor(WAIT);
      await notReloaded(page);
      expect((await amendmentsOf()).termsVersion).to.equal(1);
    });

    it("on Decline without a consent, says the proposal lapses at its expiry without the viewer, and offers no buttons for it", async function () {
      const { page } = viewer;
      const progress = await amendmentsOf();
      const soon = new Date(Date.parse(progress.updatedAt.time) + 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
      await send("bank", "POST", "/amendments", {
        kind: "deadline",
        stage: "funding",
        deadline: "longStop",
        to: dateAfter(progress.updatedAt.time, 110),
        expiresAt: soon,
      });
      const item = proposal(page, 2);
      await item.getByRole("button", { name: /^Decline/ }).waitFor(WAIT);
      expect(await item.locator(".amendment-what").textContent()).to.match(/waiting for you and the seller\.$/);
      await item.getByRole("button", { name: /^Decline/ }).click();
      const said = item.locator(".action-result", { hasText: "You declined" });
      await said.waitFor(WAIT);
      expect(await said.textContent()).to.match(/it will lapse at .+ without your consent/);
      expect(await item.getByRole("button").count()).to.equal(0);
      // Nothing went to the chain: the contract has no refusal.
      const after = await amendmentsOf();
      expect(after.amendments[1]).to.deep.include({ status: "open", consented: ["bank"] });
    });

    it("offers the proposer its consent back, and shows a refusal in the API's words", async function () {
      // A page that hears nothing after it loads (its stream is cut): it still offers what the chain has changed since.
      const stale = await newPage();
      await stale.page.route(
        (url) => url.pathname === `/cases/${id}/events`,
        (route) => route.abort(),
      );
      await stale.page.goto(caseUrl());
      await signIn(stale.page, h.tokens.bank);
      await proposal(stale.page, 2)
        .getByRole("button", { name: /^Withdraw my consent/ })
        .waitFor(WAIT);

      const bank = await newPage();
      await bank.page.goto(caseUrl());
      await signIn(bank.page, h.tokens.bank);
      const item = proposal(bank.page, 2);
      await item.getByRole("button", { name: /^Withdraw my consent/ }).click();
      // "Your withdrawal was sent …" (the 202) may last only until the stream brings the chain's answer.
      await item
        .locator(".action-result", { hasText: /^(Your withdrawal was sent|Your consent is withdrawn)\./ })
        .waitFor(WAIT);
      await item.locator(".amendment-what", { hasText: "waiting for you, the buyer and the seller." }).waitFor(WAIT);
      await item.locator(".action-result", { hasText: "Your consent is withdrawn." }).waitFor(WAIT);
      expect(await item.getByRole("button", { name: /^Consent/ }).count()).to.equal(1);
      await bank.context.close();

      const refused = await h.request("bank", "DELETE", `/cases/${id}/amendments/2/consents`, {});
      expect(refused.status).to.equal(409);
      const staleItem = proposal(stale.page, 2);
      await staleItem.getByRole("button", { name: /^Withdraw my consent/ }).click();
      const error = staleItem.locator(".action-result--error");
      await error.waitFor(WAIT);
      expect(await error.textContent()).to.equal(`Your withdrawal was refused: ${refused.body.error.message}`);
      await stale.context.close();
    });

    it("shows the case's versions in its history: as opened, then each amendment applied, with lapsed proposals folded", async function () {
      const { page } = viewer;
      const progress = await amendmentsOf();
      const [applied] = progress.amendments;
      await moveClock(2 * 3_600);
      await untilCase("the second proposal to lapse", (p) => p.amendments[1].status === "expired");
      // A lapse is no event on chain: the engine sends the progress again at the expiry, and the page shows it.
      const versions = page.locator("#versions");
      await versions.locator('li[data-version="0"]', { hasText: "Version 0: as opened" }).waitFor(WAIT);
      const one = versions.locator('li[data-version="1"]');
      await one.waitFor(WAIT);
      expect(await one.textContent()).to.match(
        /^Version 1, agreed .+: the long-stop date for Funding and disbursement: lender to escrow to seller moved to .+$/,
      );
      expect(await one.locator(`time[datetime="${applied.appliedAt}"]`).count()).to.equal(1);
      const folded = versions.locator("details.lapsed");
      await folded.locator("summary", { hasText: "1 proposal that did not apply" }).waitFor(WAIT);
      expect(await folded.getAttribute("open")).to.equal(null);
      expect(await folded.locator("li").textContent()).to.match(
        /^Proposal 2, lapsed .+: the long-stop date for Funding and disbursement: lender to escrow to seller would have moved to /,
      );
      await page
        .locator("#history-list > li", {
          hasText:
            "Terms version 1: the long-stop date for Funding and disbursement: lender to escrow to seller moved to",
        })
        .waitFor(WAIT);
      await page.locator("#history-list > li", { hasText: "Seller agreed to proposal 1" }).waitFor(WAIT);
      await page.locator("#history-list > li", { hasText: "Bank proposed a change (proposal 2)" }).waitFor(WAIT);
      await page.locator("#history-list > li", { hasText: "Bank withdrew its consent to proposal 2" }).waitFor(WAIT);
      // The box at the top, where the viewer declined it, says it lapsed; the page had no script or style errors.
      await proposal(page, 2).locator(".amendment-status", { hasText: "Lapsed" }).waitFor(WAIT);
      expect(cspViolations).to.deep.equal([]);
    });
  });
});
