// OIDC login in a real browser (Debian's Chromium via playwright-core): the login page's button, the real
// provider's redirects, home; and a refused login showing its reason. Screenshots go to test-artifacts/.
import { join } from "node:path";
import { ARTIFACTS, haveChromium, launchChromium } from "../e2e/chromium.js";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loginErrorText } from "../../web/login-pages.js";
import type { HubProcess } from "../e2e/harness.js";
import { startHubWithIdp } from "./hub-with-idp.js";
import type { Idp } from "./idp.js";


describe.skipIf(!haveChromium)("OIDC login in the browser", () => {
  let idp: Idp;
  let hub: HubProcess;
  let cleanup: () => Promise<void>;
  let browser: Browser;

  beforeAll(async () => {
    // Without a login_hint (the button sends none) the test IdP signs in as ada.
    ({ idp, hub, cleanup } = await startHubWithIdp({ defaultAccount: "ada" }));
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await cleanup?.();
  });

  it("signs in from the login page's button and lands on home", async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
    await page.goto(`${hub.url}/hub/`);
    await page.waitForURL(/\/hub\/login/);
    const button = page.getByRole("link", { name: `Sign in with ${new URL(idp.issuer).host}` });
    await expect.poll(() => button.isVisible()).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, "oidc-login.png"), fullPage: true });
    await button.click();
    await page.waitForURL(`${hub.url}/hub/home`);
    await expect.poll(() => page.textContent("header")).toContain("ada");
    await page.close();
  });

  it("shows why a login was refused", async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 600 } });
    const page = await context.newPage();
    await page.goto(`${hub.url}/hub/oauth_login?login_hint=blocked`);
    await page.waitForURL(`${hub.url}/hub/login?error=blocked`);
    await expect.poll(() => page.textContent("[role=alert]")).toBe(loginErrorText("blocked"));
    await page.screenshot({ path: join(ARTIFACTS, "oidc-refused.png"), fullPage: true });
    await context.close();
  });
});
