// Chromium over the https listener (config `tls`, an openssl-made certificate): log in, start the real
// jupyterhub-singleuser, and run a notebook cell, whose kernel websocket is wss:// through the proxy. Chromium
// trusts only this test's leaf, by its public key hash (--ignore-certificate-errors-spki-list), not every
// certificate. Screenshots: test-artifacts/https-*.png.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { freePort } from "../../src/ports.js";
import { ARTIFACTS, haveChromium, launchChromium, printInNewNotebook } from "./chromium.js";
import { HubProcess, SINGLEUSER } from "./harness.js";
import { haveOpenssl, TestCa } from "./tls-certs.js";

describe.skipIf(!haveChromium || !existsSync(SINGLEUSER) || !haveOpenssl)("Chromium over https", () => {
  let dir: string;
  let hub: HubProcess;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-browser-https-"));
    const ca = TestCa.create(dir);
    const leaf = ca.leaf("hub", "3001");
    hub = await HubProcess.start({
      config: { tls: { cert_file: leaf.cert, key_file: leaf.key, internal_listen: `http://127.0.0.1:${await freePort()}` } },
    });
    browser = await launchChromium([`--ignore-certificate-errors-spki-list=${leaf.spki}`]);
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await hub?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `https-${name}.png`), fullPage: true });

  it("logs in, starts a server and runs a notebook cell over https and wss", async () => {
    expect(hub.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const sockets: string[] = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    const first = await page.goto(`${hub.url}/`);
    expect(first?.url()).toContain("/hub/login");
    expect(await first?.headerValue("strict-transport-security")).toBe("max-age=31536000");
    const security = await first!.securityDetails();
    expect(security?.protocol).toBe("TLS 1.3");
    expect(security?.subjectName).toBe("localhost");
    await shot("login");
    await page.fill("#username", "hedy");
    await page.click("button[type=submit]");
    await page.waitForURL(/\/hub\/home$/);
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === "__Host-slicehub-session")).toMatchObject({ secure: true, httpOnly: true, path: "/", sameSite: "Lax" });

    await page.click("text=Start");
    await page.waitForURL(/\/user\/hedy\/tree/, { timeout: 90_000 });
    await page.waitForSelector("#notebook_list", { timeout: 30_000 });
    expect(new URL(page.url()).protocol).toBe("https:");
    await shot("tree");

    expect(await printInNewNotebook(page, "/user/hedy/")).toBe("42");
    await shot("notebook");
    const kernel = sockets.find((u) => u.includes("/user/hedy/api/kernels/"));
    expect(kernel).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/user\/hedy\/api\/kernels\//);
  }, 180_000);
});
