// Every page in a real browser (Debian's Chromium driven by playwright-core), on a desktop and a phone.
// The screenshots in test-artifacts/page-*.png are for people to look at; the assertions check what each
// page must show.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, haveChromium, launchChromium } from "../e2e/chromium.js";
import type { Browser, Page } from "playwright-core";
import type { HubProcess } from "../e2e/harness.js";
import { startWebHub } from "./hub.js";

const DESKTOP = { width: 1100, height: 800 };
const PHONE = { width: 375, height: 740 };

describe.skipIf(!haveChromium)("pages in Chromium", () => {
  let hub: HubProcess;
  let browser: Browser;

  beforeAll(async () => {
    hub = await startWebHub();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await hub?.destroy();
  });

  /** A logged-in page in its own cookie jar. */
  const session = async (name: string, viewport = DESKTOP): Promise<Page> => {
    const page = await (await browser.newContext({ viewport })).newPage();
    await page.goto(`${hub.url}/hub/login`);
    await page.fill("#username", name);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/hub\/home$/);
    return page;
  };
  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `page-${name}.png`), fullPage: true });

  it("home offers the profiles this user may use, on a desktop and a phone", async () => {
    const page = await session("alice");
    expect(await page.locator("input[name=profile]").evaluateAll((els) => [...new Set(els.map((e) => (e as HTMLInputElement).value))])).toEqual(["small", "large"]);
    await shot(page, "home");
    const phone = await session("alice", PHONE);
    await shot(phone, "home-phone");
    // Nothing sticks out sideways on a phone.
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
  });

  it("follows a start to the server, with the chosen profile", async () => {
    const page = await session("slow-ann");
    await page.locator("section.server input[value=large]").check();
    await page.locator("section.server button", { hasText: "Start" }).click();
    await page.waitForURL(/\/hub\/spawn-pending\/slow-ann/);
    await page.waitForFunction(() => document.getElementById("log")?.textContent?.includes("Waiting for the server"));
    await shot(page, "progress-ok");
    await page.waitForURL(/\/user\/slow-ann\//, { timeout: 20_000 });
    await page.goto(`${hub.url}/hub/home`);
    expect(await page.textContent("section.server")).toContain("Profile: Large");
  });

  it("a failed start says why: exit status and the server's last output, with a retry", async () => {
    const page = await session("fail-x");
    await page.locator("section.server button", { hasText: "Start" }).click();
    await page.waitForSelector("text=Could not start fail-x", { timeout: 20_000 });
    const text = (await page.textContent("main")) ?? "";
    expect(text).toContain("exited with status 1");
    expect(text).toContain("fake-singleuser: refusing to start for fail-x");
    expect(await page.isVisible("button:has-text('Try again')")).toBe(true);
    await shot(page, "progress-failed");
  });

  it("admin page lists users and servers, and blocking shows", async () => {
    await session("mallory");
    const page = await session("admin");
    await page.goto(`${hub.url}/hub/admin`);
    const mallory = page.locator("tbody", { has: page.locator("h2", { hasText: /^mallory$/ }) });
    await mallory.locator("button", { hasText: "Block" }).click();
    await page.waitForURL(/\/hub\/admin$/);
    expect(await mallory.locator(".badge").textContent()).toBe("blocked");
    const main = (await page.textContent("main")) ?? "";
    for (const name of ["alice", "slow-ann", "fail-x", "mallory", "admin"]) expect(main).toContain(name);
    await shot(page, "admin");
    const phone = await session("admin", PHONE);
    await phone.goto(`${hub.url}/hub/admin`);
    await shot(phone, "admin-phone");
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
  });

  it("tokens page: a new token is shown once, then listed by its note", async () => {
    const page = await session("slow-ann"); // her running server's tokens are listed too
    await page.click("nav >> text=Tokens");
    await page.fill("#note", "laptop sync script");
    await page.selectOption("#expires", "7d");
    await page.click("button:has-text('Create token')");
    const token = await page.inputValue("#token");
    expect(token).toMatch(/^[\w-]{20,}$/);
    await shot(page, "token-new");
    await page.click("text=Done");
    expect(await page.content()).not.toContain(token);
    expect(await page.textContent("main")).toContain("laptop sync script");
    await shot(page, "tokens");
    const phone = await session("slow-ann", PHONE);
    await phone.goto(`${hub.url}/hub/token`);
    await shot(phone, "tokens-phone");
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
  });
});
