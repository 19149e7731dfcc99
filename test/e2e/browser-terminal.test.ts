// The browser terminal in Chromium: alice opens a terminal from her home page and from the page of a server
// that failed to start, types into it, resizes the window, reloads and is back in the same shell; bob gets a
// 403 on alice's terminal; a websocket opened from alice's own logged-in page without the page's ticket is
// refused. Local spawner: the shell runs as the daemon's own user. Screenshots go to test-artifacts/.
import { userInfo } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, haveChromium, launchChromium } from "./chromium.js";
import { HubProcess } from "./harness.js";

const ME = userInfo().username;

describe.skipIf(!haveChromium)("terminal in the browser", () => {
  let hub: HubProcess;
  let browser: Browser;

  beforeAll(async () => {
    // The server's command fails at once, as a broken ~/.bashrc or a bad environment would make it.
    hub = await HubProcess.start({ config: { auth: { kind: "dev", admin_users: ["root1"] }, spawner: { cmd: ["/bin/sh", "-c", "echo 'jupyter: broken environment' >&2; exit 3"], args: [] } } });
    browser = await launchChromium();
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await hub?.destroy();
  }, 30_000);

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `terminal-${name}.png`), fullPage: true });
  const screenText = (page: Page) => page.locator("#terminal-host .xterm-rows").innerText();
  const waitForScreen = async (page: Page, re: RegExp) => {
    await expect.poll(() => screenText(page), { timeout: 15_000, message: `terminal should show ${re}` }).toMatch(re);
  };
  const connected = (page: Page) => expect.poll(() => page.textContent("#terminal-status"), { timeout: 15_000 }).toMatch(/Connected: a shell as/);
  const type = async (page: Page, text: string) => {
    await page.click("#terminal-host");
    await page.keyboard.type(text);
    await page.keyboard.press("Enter");
  };

  async function login(name: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    const page = await context.newPage();
    await page.goto(`${hub.url}/hub/login`);
    await page.fill("#username", name);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/hub\/home$/);
    return page;
  }

  let alice: Page;
  let terminalUrl = "";

  it("alice opens a terminal from home, types, resizes, reloads and is back in the same shell", async () => {
    alice = await login("alice");
    await shot(alice, "home");
    await alice.click("#terminal-card button:has-text('Open a terminal')");
    await alice.waitForURL(/\/hub\/terminal\/alice\?t=[0-9a-f]{16}$/);
    terminalUrl = alice.url();
    await connected(alice);
    await type(alice, "id -un; echo $((6*7))");
    await waitForScreen(alice, new RegExp(`\\n${ME}\\s*\\n42\\s*\\n`));
    await type(alice, "KEEP=before-reload; echo 'héllo ✓ 日本'");
    await waitForScreen(alice, /\nhéllo ✓ 日本/);
    await shot(alice, "typed");

    // A paste larger than one websocket message (64 KiB) reaches the shell whole: 100 lines of 1000 bytes.
    // Paste once wc runs (so the shell's line editor, and its bracketed-paste mode, are out of the way).
    await type(alice, "echo wc-is-reading; wc -c");
    await waitForScreen(alice, /\nwc-is-reading/);
    await alice.evaluate(() => (window as unknown as { slicehubTerminal: { paste(s: string): void } }).slicehubTerminal.paste(`${"x".repeat(1000)}\n`.repeat(100)));
    await alice.keyboard.press("Control+D");
    await waitForScreen(alice, /\n100100\s*\n/);
    await type(alice, "clear");

    // Resize: the page fits the terminal to its window and tells the shell.
    await type(alice, "stty size");
    await waitForScreen(alice, /\n\d+ \d+\s*\n/);
    const before = /\n(\d+) (\d+)\s*\n/.exec(await screenText(alice));
    await alice.setViewportSize({ width: 800, height: 560 });
    await expect.poll(async () => {
      await type(alice, "stty size");
      const all = [...(await screenText(alice)).matchAll(/\n(\d+) (\d+)\s*(?=\n)/g)];
      const last = all.at(-1);
      return last ? `${last[1]} ${last[2]}` : "";
    }, { timeout: 15_000, interval: 500 }).not.toBe(`${before![1]} ${before![2]}`);
    await shot(alice, "resized");

    await alice.reload();
    await connected(alice);
    expect(alice.url()).toBe(terminalUrl);
    await type(alice, "echo var=$KEEP");
    await waitForScreen(alice, /\nvar=before-reload/);
    await shot(alice, "reloaded");
  }, 90_000);

  it("a websocket opened with alice's cookies but without the page's ticket is refused", async () => {
    const result = await alice.evaluate(async () => {
      const attempt = (url: string) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => {
            ws.close();
            resolve("opened");
          };
          ws.onclose = (e) => resolve(`closed ${e.code}`);
        });
      const base = `ws://${location.host}${location.pathname}`;
      return { none: await attempt(base), forged: await attempt(`${base}?ticket=forged-ticket`) };
    });
    expect(result).toEqual({ none: "closed 1006", forged: "closed 1006" });
    // The page's own websocket is still alive: one refused attempt does not end the terminal.
    await type(alice, "echo still-alive");
    await waitForScreen(alice, /\nstill-alive/);
  }, 30_000);

  it("bob gets 403 on alice's terminal", async () => {
    const bob = await login("bob");
    const res = await bob.goto(terminalUrl);
    expect(res?.status()).toBe(403);
    await shot(bob, "bob-403");
    const bare = await bob.goto(`${hub.url}/hub/terminal/alice`);
    expect(bare?.status()).toBe(403);
    await bob.context().close();
  }, 30_000);

  it("the admin page lists alice's terminals with an End button", async () => {
    const admin = await login("root1");
    await admin.goto(`${hub.url}/hub/admin`);
    const row = admin.locator("#admin-terminals tr", { hasText: "alice" });
    await expect.poll(() => row.locator('td[data-label="Open"]').textContent()).toBe("1");
    expect(await row.locator("button:has-text('End')").isVisible()).toBe(true);
    await admin.locator("#admin-terminals").scrollIntoViewIfNeeded();
    await shot(admin, "admin");
    await admin.context().close();
  }, 30_000);

  it("alice opens a terminal from the page of a server that failed to start", async () => {
    await alice.goto(`${hub.url}/hub/home`);
    await alice.click("section.server button:has-text('Start')");
    await alice.waitForURL(/\/hub\/spawn-pending\/alice/);
    await expect.poll(() => alice.textContent("main"), { timeout: 30_000 }).toMatch(/Could not start alice/);
    await shot(alice, "failed-start");
    await alice.click("button:has-text('Open a terminal')");
    await alice.waitForURL(/\/hub\/terminal\/alice\?t=[0-9a-f]{16}$/);
    expect(alice.url()).not.toBe(terminalUrl);
    await connected(alice);
    await type(alice, "id -un; echo $((6*7))");
    await waitForScreen(alice, new RegExp(`\\n${ME}\\s*\\n42\\s*\\n`));
    await shot(alice, "from-failed-start");
    // The shell's exit is said plainly, with a way to a new one.
    await type(alice, "exit");
    await expect.poll(() => alice.textContent("#terminal-ended-message"), { timeout: 15_000 }).toMatch(/The shell exited/);
    expect(await alice.isVisible("#terminal-ended button:has-text('Open a new terminal')")).toBe(true);
    await shot(alice, "exited");

    // The ended page's button opens a new one; on a phone-sized window too.
    await alice.setViewportSize({ width: 390, height: 740 });
    await alice.click("#terminal-ended button:has-text('Open a new terminal')");
    await alice.waitForURL(/\/hub\/terminal\/alice\?t=[0-9a-f]{16}$/);
    await connected(alice);
    await type(alice, "echo $((6*7))");
    await waitForScreen(alice, /\n42\s*\n/);
    expect(await alice.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await shot(alice, "phone");
  }, 90_000);
});
