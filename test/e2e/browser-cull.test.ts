// What a user sees after the built-in culler stopped their server, in Debian's Chromium on a desktop and a phone:
// home says why, in the server's card (that a new start clears it: test/e2e/cull.test.ts). The server is the fast fake singleuser (the
// real one is in test/e2e/cull.test.ts); nothing uses it, so it is culled after 2 s.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, haveChromium, launchChromium } from "./chromium.js";
import { HubProcess } from "./harness.js";

const FAKE = join(import.meta.dirname, "fixtures/fake-singleuser.mjs");

describe.skipIf(!haveChromium)("home after a cull, in Chromium", () => {
  let hub: HubProcess;
  let browser: Browser;

  beforeAll(async () => {
    hub = await HubProcess.start({
      config: {
        cull: { enabled: true, idle_timeout_s: 2, every_s: 1 },
        spawner: { cmd: [process.execPath, FAKE], args: [], start_timeout_s: 20, stop_timeout_s: 5 },
      },
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await hub?.destroy();
  });

  const login = async (page: Page, name: string) => {
    await page.goto(`${hub.url}/hub/login`);
    await page.fill("#username", name);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/hub\/home$/);
  };

  it("says the server was stopped after 2 s idle, in the server's card, on a desktop and a phone", async () => {
    const page = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
    await login(page, "dora");
    await page.locator("section.server button", { hasText: "Start" }).click();
    await page.waitForURL(/\/user\/dora\//, { timeout: 20_000 });
    // Culled 2 s after the start (nothing goes through the proxy): home shows it once it has happened.
    const notice = page.locator("section.server p.notice");
    const deadline = Date.now() + 20_000;
    do {
      await sleep(500);
      await page.goto(`${hub.url}/hub/home`);
    } while ((await notice.count()) === 0 && Date.now() < deadline);
    expect(await notice.textContent()).toMatch(/^Your server was stopped after 2 s idle \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)\. Start it again when you need it\.$/);
    expect(await page.textContent("section.server .state")).toBe("stopped");
    await page.screenshot({ path: join(ARTIFACTS, "page-home-culled.png"), fullPage: true });

    const phone = await (await browser.newContext({ viewport: { width: 375, height: 740 } })).newPage();
    await login(phone, "dora");
    expect(await phone.locator("section.server p.notice").isVisible()).toBe(true);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await phone.screenshot({ path: join(ARTIFACTS, "page-home-culled-phone.png"), fullPage: true });
  }, 90_000);
});
