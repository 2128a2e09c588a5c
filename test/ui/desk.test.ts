/**
 * The desk (server/ui/desk.html, at /ui/) in headless Chromium from Debian's packages, against the real server
 * on a real port: a principal's cases, what needs it today, what is at risk, updating as the chain moves,
 * on a desktop and a 390 px phone, with axe-core finding no violation. Screenshots go to test/screenshots/.
 */
import { expect } from "chai";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { startApp, type AppHarness } from "../server/support/app-harness";
import { caseOf, settled, until } from "../server/support/case-walker";

const SCREENSHOTS = join(__dirname, "..", "screenshots");
const AXE = join(__dirname, "..", "..", "node_modules", "axe-core", "axe.min.js");
const WAIT = { timeout: 20_000 };

describe("ui: the desk in a real browser", function () {
  this.timeout(90_000);
  let h: AppHarness;
  let browser: Browser;
  /** A case whose completion deadline the parties moved to two days from now: at risk. */
  let riskyCase: string;

  before(async function () {
    h = await startApp();
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
    riskyCase = await h.openCase();
    const opened = await caseOf(h, riskyCase);
    const soon = new Date(Date.parse(opened.updatedAt.time) + 2 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    const proposal = await h.request("bank", "POST", `/cases/${riskyCase}/amendments`, {
      kind: "deadline",
      stage: "completion",
      to: soon,
    });
    expect(proposal.status, JSON.stringify(proposal.body)).to.equal(202);
    await until(h, riskyCase, "the proposal", (p) => p.amendments.length === 1);
    for (const who of ["lawyer", "buyer"] as const) {
      const res = await h.request(who, "POST", `/cases/${riskyCase}/amendments/1/consents`, {});
      expect((await settled(h, who, res.body.id)).status).to.equal("confirmed");
    }
    await until(h, riskyCase, "the earlier deadline", (p) => p.termsVersion === 1);
  });

  after(async function () {
    await browser?.close();
    await h?.close();
  });

  async function deskAs(who: "lawyer" | "bank", width: number, options: { bypassCSP?: boolean } = {}) {
    const context = await browser.newContext({
      viewport: { width, height: 900 },
      timezoneId: "Europe/London",
      ...options,
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`${h.url}/ui/`);
    await page.getByLabel("Access token").fill(h.tokens[who]);
    await page.getByRole("button", { name: "Show my cases" }).click();
    await page.locator("#all-list li").first().waitFor(WAIT);
    return { context, page, errors };
  }

  const row = (page: Page, list: string, caseId: string) => page.locator(`#${list}-list li[data-case="${caseId}"]`);

  it("shows the bank what needs it today, by stage and role, and takes a case off once it is signed", async function () {
    const { context, page, errors } = await deskAs("bank", 1280);
    try {
      expect(await page.locator("#viewer").textContent()).to.equal("Signed in as bank (Bank)");
      const today = row(page, "today", h.caseId);
      await today.waitFor(WAIT);
      expect(await today.textContent()).to.contain("Sign off “Mortgage application” as the bank");
      expect(await today.locator("a").getAttribute("href")).to.equal(`/ui/cases/${h.caseId}`);
      expect(await row(page, "today", h.otherCaseId).count(), "not a party: not on its desk").to.equal(0);
      expect(await row(page, "all", h.otherCaseId).count()).to.equal(0);
      await page.screenshot({ path: join(SCREENSHOTS, "desk-desktop.png"), fullPage: true });

      // The bank signs the application: the desk drops the case from its list by itself (the buyer's is awaited).
      const res = await h.request("bank", "POST", `/cases/${h.caseId}/stages/application/sign-offs`, {});
      expect(res.status, JSON.stringify(res.body)).to.equal(202);
      // Polled from here: page.waitForFunction evaluates a string, which the page's CSP forbids.
      const deadline = Date.now() + WAIT.timeout;
      while ((await today.count()) > 0) {
        if (Date.now() > deadline) throw new Error("the desk still asks the bank to sign off the application");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await row(page, "all", h.caseId).count(), "still among all its cases").to.equal(1);
      expect(errors).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it("puts a case whose legal deadline is within five business days under At risk, with the deadline", async function () {
    const { context, page } = await deskAs("lawyer", 1280);
    try {
      const risky = row(page, "risk", riskyCase);
      await risky.waitFor(WAIT);
      expect(await risky.locator(".when").textContent()).to.match(/^Deadline soon: Completion: .+/);
      expect(await row(page, "risk", h.caseId).count(), "a deadline months away is not at risk").to.equal(0);
    } finally {
      await context.close();
    }
  });

  it("fits a 390 px phone: no sideways scrolling, and what needs the viewer comes first", async function () {
    const { context, page } = await deskAs("bank", 390);
    try {
      await row(page, "all", riskyCase).waitFor(WAIT);
      const widths: number[] = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]");
      expect(widths[0], "no horizontal scroll").to.be.at.most(widths[1]);
      const todayTop = await page.locator("#today").boundingBox();
      expect(todayTop!.y, "on the first screen").to.be.below(900);
      await page.screenshot({ path: join(SCREENSHOTS, "desk-phone.png"), fullPage: true });
    } finally {
      await context.close();
    }
  });

  it("has no accessibility violations (axe-core)", async function () {
    // The page's CSP allows only its own scripts: axe is injected with the CSP bypassed for this check alone.
    const { context, page } = await deskAs("lawyer", 1280, { bypassCSP: true });
    try {
      await page.addScriptTag({ path: AXE });
      const violations: string[] = await page.evaluate(
        "axe.run(document).then((r) => r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`))",
      );
      expect(violations).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });
});
