// A person in a real browser (Debian's Chromium driven by playwright-core): log in, start a server while
// watching its progress, land in the classic Notebook UI, run a cell. Screenshots go to test-artifacts/.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, haveChromium, launchChromium, printInNewNotebook } from "./chromium.js";
import type { Browser, Page } from "playwright-core";
import { HubProcess, SINGLEUSER } from "./harness.js";


describe.skipIf(!haveChromium || !existsSync(SINGLEUSER))("in the browser", () => {
  let hub: HubProcess;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    hub = await HubProcess.start();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  });

  afterAll(async () => {
    await browser?.close();
    await hub?.destroy();
  });

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `skeleton-${name}.png`), fullPage: true });

  it("logs in, starts a server with visible progress, and runs a notebook cell", async () => {
    await page.goto(`${hub.url}/`);
    await expect.poll(() => page.url()).toContain("/hub/login");
    await shot("login");
    await page.fill("#username", "carla");
    await page.click("button[type=submit]");
    await page.waitForURL(/\/hub\/home$/);
    await expect.poll(() => page.textContent("main")).toContain("My servers");
    await shot("home");

    await page.click("text=Start");
    await page.waitForURL(/\/hub\/spawn-pending\/carla/);
    await page.waitForSelector("#log");
    await shot("progress");
    // The progress page follows the event stream and moves on by itself once the server is ready; the
    // notebook's OAuth round trip through the hub happens without the person noticing.
    await page.waitForURL(/\/user\/carla\/tree/, { timeout: 60_000 });
    await page.waitForSelector("#notebook_list", { timeout: 30_000 });
    await shot("tree");

    expect(await printInNewNotebook(page, "/user/carla/")).toBe("42");
    await shot("notebook");
  });
});
