import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium, type BrowserContext, type Locator, type Page } from "playwright-core";
import { HOSTILE_COMMENT, startDashboardFixture, TOTAL_REQUESTS, type DashboardFixture } from "./fixture.js";

const CHROMIUM = "/usr/bin/chromium";
const REPO = join(import.meta.dirname, "..", "..");
/**
 * Screenshots go to docs/images when PORTICO_UPDATE_SCREENSHOTS=1, so that an
 * ordinary test run leaves the committed pictures alone.
 */
const UPDATE_SCREENSHOTS = process.env.PORTICO_UPDATE_SCREENSHOTS === "1";
const MAX_SCREENSHOT_BYTES = 300 * 1024;

/**
 * Polls an attribute from Node.js: the page's CSP forbids the string
 * evaluation that page.waitForFunction uses.
 */
async function waitForAttribute(locator: Locator, name: string, expected: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let actual: string | null = null;
  while (Date.now() < deadline) {
    actual = await locator.getAttribute(name);
    if (actual === expected) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.equal(actual, expected, `${name} after ${timeoutMs} ms`);
}

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing; install Debian's chromium package to run the browser test`;

describe("dashboard in headless Chromium", { skip }, () => {
  let fixture: DashboardFixture;
  let context: BrowserContext;
  let page: Page;
  let profileDir: string;
  let screenshotDir: string;
  const consoleErrors: string[] = [];

  before(async () => {
    fixture = await startDashboardFixture();
    profileDir = await mkdtemp(join(tmpdir(), "portico-chromium-"));
    screenshotDir = UPDATE_SCREENSHOTS ? join(REPO, "docs", "images") : await mkdtemp(join(tmpdir(), "portico-shots-"));
    await mkdir(screenshotDir, { recursive: true });
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1280, height: 900 },
    });
    // The page must work offline: any request off the API port fails the test.
    const apiOrigin = new URL(fixture.portico.target.endpoint).origin;
    await context.route("**/*", (route) =>
      new URL(route.request().url()).origin === apiOrigin ? route.continue() : route.abort(),
    );
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(error.message));
  });

  after(async () => {
    await context?.close();
    await fixture?.close();
    if (profileDir) await rm(profileDir, { recursive: true, force: true });
    if (screenshotDir && !UPDATE_SCREENSHOTS) await rm(screenshotDir, { recursive: true, force: true });
  });

  async function screenshot(name: string, options: { fullPage?: boolean } = {}): Promise<void> {
    const path = join(screenshotDir, `dashboard-${name}.png`);
    await page.screenshot({ path, fullPage: options.fullPage ?? false });
    const size = (await stat(path)).size;
    assert.ok(size > 5_000, `${name} screenshot is ${size} bytes, too small to show anything`);
    assert.ok(size < MAX_SCREENSHOT_BYTES, `${name} screenshot is ${size} bytes`);
  }

  test("unauthenticated visit shows login", async () => {
    await page.goto(`${fixture.portico.target.endpoint}/_portico/dashboard`);
    assert.match(page.url(), /\/_portico\/dashboard\/login$/);
    assert.equal(await page.locator("input[name=secretAccessKey]").getAttribute("type"), "password");
  });

  test("wrong secret keeps the login page", async () => {
    await page.fill("#accessKeyId", fixture.portico.target.accessKeyId);
    await page.fill("#secretAccessKey", "not-the-secret");
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    assert.match(page.url(), /\/login$/);
    assert.match(await page.locator(".login-error").innerText(), /incorrect/);
    await screenshot("login");
  });

  test("right secret opens the dashboard", async () => {
    await page.fill("#secretAccessKey", fixture.portico.target.secretAccessKey);
    await Promise.all([page.waitForURL(/\/_portico\/dashboard$/), page.click("button[type=submit]")]);
    await page.locator(`#distributions tr[data-distribution-id="${fixture.distributionId}"]`).waitFor();
    const cookies = await context.cookies();
    const session = cookies.find((cookie) => cookie.name === "portico_session");
    assert.ok(session, "session cookie set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
  });

  test("distribution table lists the distribution", async () => {
    const row = page.locator(`#distributions tr[data-distribution-id="${fixture.distributionId}"]`);
    const text = await row.innerText();
    assert.match(text, new RegExp(fixture.domainName.replaceAll(".", "\\.")));
    assert.match(text, /Deployed/);
    assert.match(text, /127\.0\.0\.1/);
    assert.match(text, /v1/);
    const edgeCount = await page.locator("#edges tbody tr").count();
    assert.ok(edgeCount >= 1);
    assert.match(text, new RegExp(`${edgeCount} of ${edgeCount} edges applied`));
    assert.match(await page.locator("#edges tbody tr").first().innerText(), new RegExp(`live.*${fixture.distributionId}: v1`, "s"));
    assert.match(await page.locator("#invalidations tbody").innerText(), new RegExp(fixture.invalidationId));
  });

  test("script in a comment stays text", async () => {
    const comment = await page.locator(`#distributions tr[data-distribution-id="${fixture.distributionId}"] td.comment`).textContent();
    assert.equal(comment, HOSTILE_COMMENT);
    assert.equal(await page.evaluate("typeof window.injected"), "undefined");
    // Only the two script files of the page itself.
    assert.equal(await page.locator("script").count(), 2);
    assert.equal(await page.locator("#distributions img").count(), 0);
  });

  test("charts show the real request counts", async () => {
    const requestsChart = page.locator("#chart-requests");
    await requestsChart.locator("canvas").waitFor();
    assert.equal(await requestsChart.getAttribute("data-total"), String(TOTAL_REQUESTS));
    assert.equal(await requestsChart.getAttribute("data-range"), "hour");
    // The series the page fetched and handed to uPlot.
    const series = (await page.evaluate("window.porticoDashboard.lastSeries")) as {
      metrics: Record<string, Array<number | null>>;
    };
    const requests = series.metrics.Requests!.reduce<number>((total, value) => total + (value ?? 0), 0);
    assert.equal(requests, TOTAL_REQUESTS);
    assert.ok(Number(await page.locator("#chart-error-rates").getAttribute("data-points")) >= 1);
    assert.ok(Number(await page.locator("#chart-cache-hit-rate").getAttribute("data-total")) > 0);
    assert.ok(Number(await page.locator("#chart-bytes").getAttribute("data-total")) > TOTAL_REQUESTS * 100);
    assert.ok(Number(await page.locator("#chart-origin-latency").getAttribute("data-points")) >= 1);
    assert.equal(await page.locator(".chart canvas").count(), 5);
    await screenshot("overview", { fullPage: true });
  });

  test("auto-refresh picks up new requests", async () => {
    const extra = 5;
    const statuses = await fixture.viewerGet("/cached.txt", extra);
    assert.deepEqual(statuses, Array(extra).fill(200));
    await waitForAttribute(page.locator("#chart-requests"), "data-total", String(TOTAL_REQUESTS + extra), 15_000);
  });

  test("week range shows the same total", async () => {
    await page.click(".range-buttons button[data-range=week]");
    await waitForAttribute(page.locator("#chart-requests"), "data-range", "week", 10_000);
    assert.equal(await page.locator("#chart-requests").getAttribute("data-total"), String(TOTAL_REQUESTS + 5));
    await page.click(".range-buttons button[data-range=hour]");
    await waitForAttribute(page.locator("#chart-requests"), "data-range", "hour", 10_000);
    await page.locator("#chart-requests").scrollIntoViewIfNeeded();
    await page.locator("section.card:has(.charts)").screenshot({ path: join(screenshotDir, "dashboard-charts.png") });
    assert.ok((await stat(join(screenshotDir, "dashboard-charts.png"))).size < MAX_SCREENSHOT_BYTES);
  });

  test("no console errors or CSP violations", () => {
    assert.deepEqual(consoleErrors.filter((text) => !text.includes("401")), []);
  });

  test("logout returns to login", async () => {
    await Promise.all([page.waitForURL(/\/login$/), page.click("text=Sign out")]);
    await page.goto(`${fixture.portico.target.endpoint}/_portico/dashboard/api/distributions`);
    assert.match(page.url(), /\/login$/);
  });
});
