/**
 * The page's own files against the rate limit and the browser's cache, on the real server (a real port,
 * test/server/support/app-harness.ts) with the limits `npm start` has by default: one page load is about a
 * dozen requests without a token, and a whole office may sit behind one address. Also the addresses under
 * /ui/cases that name no case: the page, never the API's JSON.
 */
import { expect } from "chai";
import { chromium, type Browser } from "playwright-core";
import { parseSettings } from "../../server/settings";
import { startApp, type AppHarness } from "../server/support/app-harness";

const ASSETS = [
  "amendments.js",
  "app.js",
  "api.js",
  "dom.js",
  "event-stream.js",
  "format.js",
  "history.js",
  "summary.js",
  "timeline.js",
  "style.css",
  "icon.svg",
];
/** The limits before the page's files were taken out of them: 600 a minute, bursts of 60, per address without a token. */
const OLD_BURST = 60;

describe("ui: the page's files load whatever the rate limit, and cost 304s on a reload", function () {
  this.timeout(120_000);

  let h: AppHarness;
  let browser: Browser;

  before(async function () {
    // The per-token limit as `npm start` has it; the one without a token small, to see that the files are not under it.
    h = await startApp({
      workflow: "us-purchase",
      rateLimit: { requestsPerMinute: 600, anonymous: { requestsPerMinute: 60, burst: 5 } },
    });
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
  });

  after(async function () {
    await browser?.close();
    await h?.close();
  });

  it(`answers every file 200 or 304, never 429, over ${OLD_BURST * 3} requests in a row from one address`, async function () {
    const statuses = new Map<number, number>();
    for (let round = 0; round < 18; round++) {
      for (const path of ["/ui/cases/" + h.caseId, ...ASSETS.map((name) => `/ui/assets/${name}`)]) {
        const res = await fetch(`${h.url}${path}`);
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries(statuses)).to.deep.equal({ 200: 18 * (ASSETS.length + 1) });
    // The API's limit without a token still holds, at its own setting: the files did not spend it.
    const health = [];
    for (let i = 0; i < 6; i++) health.push((await fetch(`${h.url}/health`)).status);
    expect(health).to.deep.equal([200, 200, 200, 200, 200, 429]);
  });

  it("serves the files with ETag, Last-Modified and Cache-Control: no-cache, and 304 for what the browser has", async function () {
    for (const path of [`/ui/cases/${h.caseId}`, "/ui/assets/app.js", "/ui/assets/style.css"]) {
      const first = await fetch(`${h.url}${path}`);
      await first.arrayBuffer();
      expect(first.status, path).to.equal(200);
      const etag = first.headers.get("etag");
      const lastModified = first.headers.get("last-modified");
      expect(etag, `${path} ETag`).to.match(/^(W\/)?"[^"]+"$/);
      expect(Date.parse(lastModified ?? ""), `${path} Last-Modified`).to.be.greaterThan(0);
      expect(first.headers.get("cache-control"), path).to.equal("no-cache");
      // As a browser's reload asks (fetch() would add "Cache-Control: no-cache", which asks for the whole file).
      const again = await fetch(`${h.url}${path}`, {
        headers: { "If-None-Match": etag!, "Cache-Control": "max-age=0" },
      });
      expect(again.status, `${path} with If-None-Match`).to.equal(304);
      expect((await again.arrayBuffer()).byteLength).to.equal(0);
      const since = await fetch(`${h.url}${path}`, {
        headers: { "If-Modified-Since": lastModified!, "Cache-Control": "max-age=0" },
      });
      expect(since.status, `${path} with If-Modified-Since`).to.equal(304);
    }
  });

  it("loads the whole page in Chromium 15 times in a row from one address: every file 200 or 304", async function () {
    const context = await browser.newContext();
    const page = await context.newPage();
    const seen: Array<{ url: string; status: number }> = [];
    page.on("response", (response) => {
      if (new URL(response.url()).pathname.startsWith("/ui/"))
        seen.push({ url: response.url(), status: response.status() });
    });
    await page.goto(`${h.url}/ui/cases/${h.caseId}`);
    await page.getByLabel("Access token").fill(h.tokens.buyer);
    await page.getByRole("button", { name: "Show the case" }).click();
    await page.locator('#connection[data-state="live"]').waitFor({ timeout: 20_000 });
    for (let i = 0; i < 14; i++) {
      await page.reload();
      await page.locator('#connection[data-state="live"]').waitFor({ timeout: 20_000 });
    }
    // Each load asks for the page and each of its scripts and its style sheet (the icon Chromium keeps as it likes).
    const loads = (name: string) => seen.filter((r) => new URL(r.url).pathname === name).length;
    expect(loads(`/ui/cases/${h.caseId}`), "the page").to.equal(15);
    for (const name of ASSETS.filter((a) => a !== "icon.svg"))
      expect(loads(`/ui/assets/${name}`), name).to.be.at.least(15);
    expect(seen.filter((r) => r.status !== 200 && r.status !== 304)).to.deep.equal([]);
    expect(seen.filter((r) => r.status === 304).length, "reloads revalidate").to.be.greaterThan(0);
    expect(await page.locator("#timeline > li").count()).to.equal(12);
    await context.close();
  });

  it("answers an address that names no case with the page, as for an unknown case, never the API's JSON", async function () {
    for (const path of ["/ui/cases/abc", "/ui/cases/", "/ui/cases", "/ui/cases/1/2", "/ui/cases/-1"]) {
      const res = await fetch(`${h.url}${path}`);
      expect(res.status, path).to.equal(200);
      expect(res.headers.get("content-type"), path).to.match(/^text\/html/);
      expect(await res.text(), path).to.contain('<section id="no-case"');
    }
    // Only the page's own addresses: another method is the API's 404, in its error shape.
    const posted = await fetch(`${h.url}/ui/cases/abc`, { method: "POST" });
    expect(posted.status).to.equal(404);
    expect(((await posted.json()) as any).error.code).to.equal("NOT_FOUND");
  });

  it("takes RATE_LIMIT_ANONYMOUS_PER_MINUTE as a setting: 6000 by default, a whole number, named when wrong", function () {
    expect(parseSettings({}).rateLimitAnonymousPerMinute).to.equal(6_000);
    expect(parseSettings({ RATE_LIMIT_ANONYMOUS_PER_MINUTE: "20000" }).rateLimitAnonymousPerMinute).to.equal(20_000);
    expect(() => parseSettings({ RATE_LIMIT_ANONYMOUS_PER_MINUTE: "lots" })).to.throw(
      /RATE_LIMIT_ANONYMOUS_PER_MINUTE: must be a whole number/,
    );
  });
});
