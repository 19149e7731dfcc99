// Attacks that need a real browser's cookie and navigation rules (Debian's Chromium): an attacker's site
// (http://localhost:<port>, another site than the hub at http://127.0.0.1:<port>) that navigates a logged-in
// victim to a start URL, posts a form at the hub, or frames a hub page; and a user's server that tosses a
// cookie with no Path at every other server. The wire-level attacks are in security.test.ts.
import http from "node:http";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, haveChromium, launchChromium } from "./chromium.js";
import { HubProcess, ROOT } from "./harness.js";
import { freePort } from "../../src/ports.js";

const FAKE = join(ROOT, "test/e2e/fixtures/fake-singleuser.mjs");

describe.skipIf(!haveChromium)("attacks in the browser", () => {
  let hub: HubProcess;
  let browser: Browser;
  let attacker: http.Server;
  let attackerUrl: string;
  /** The page the attacker's site serves next, at any path. */
  let attackPage = "";

  beforeAll(async () => {
    hub = await HubProcess.start({
      config: {
        auth: { kind: "dev", admin_users: ["admin"] },
        spawner: { cmd: [process.execPath, FAKE], args: [], start_timeout_s: 20, named_servers: { limit: 3 } },
      },
    });
    browser = await launchChromium();
    const port = await freePort();
    attacker = http.createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(attackPage));
    await new Promise<void>((resolve) => attacker.listen(port, "127.0.0.1", resolve));
    attackerUrl = `http://localhost:${port}/`;
  });

  afterAll(async () => {
    await browser?.close();
    attacker?.close();
    await hub?.destroy();
  });

  const loggedIn = async (name: string): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${hub.url}/hub/login`);
    await page.fill("#username", name);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/hub\/home$/);
    return { context, page };
  };

  const serverNames = (user: string): string[] => {
    const db = new Database(join(hub.stateDir, "slicehub.sqlite"), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT s.name FROM servers s JOIN users u ON u.id = s.user_id WHERE u.name = ?").all(user) as { name: string }[]).map((r) => r.name);
    } finally {
      db.close();
    }
  };

  const startFromHome = async (page: Page) => {
    await page.goto(`${hub.url}/hub/home`);
    await page.locator("section.server button", { hasText: "Start" }).first().click();
    await page.waitForURL(/\/user\/[^/]+\//, { timeout: 20_000 });
  };

  it("a cross-site link or script navigation to /hub/spawn/… shows the start form and starts nothing", async () => {
    const { context, page } = await loggedIn("alice");
    attackPage = `<script>location.href = ${JSON.stringify(`${hub.url}/hub/spawn/alice/planted?next=/user/alice/planted/`)}</script>`;
    await page.goto(attackerUrl);
    await page.waitForURL(/\/hub\/spawn\/alice\/planted/);
    // The session cookie came along (SameSite=Lax allows top-level navigations): it is alice's start page.
    await expect(page.locator("button", { hasText: "Start alice/planted" }).count()).resolves.toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, "attack-spawn-get.png") });
    expect(serverNames("alice")).not.toContain("planted");
    await context.close();
  });

  it("a cross-site form POST to /hub/spawn/… starts nothing either", async () => {
    const { context, page } = await loggedIn("alice");
    attackPage = `<form method="post" action="${hub.url}/hub/spawn/alice/posted"><input name="_xsrf" value="guess"></form><script>document.forms[0].submit()</script>`;
    await page.goto(attackerUrl);
    await page.waitForURL((u) => u.href.startsWith(hub.url));
    await page.waitForLoadState();
    expect(serverNames("alice")).not.toContain("posted");
    await context.close();
  });

  it("a hub page cannot be framed by another site", async () => {
    const { context, page } = await loggedIn("alice");
    attackPage = `<iframe id="f" src="${hub.url}/hub/token" width="600" height="400"></iframe>`;
    await page.goto(attackerUrl);
    await page.waitForTimeout(1000);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    // Chromium replaces a refused frame with its error page: no hub page renders there, not even the login
    // page (SameSite=Lax already keeps the session cookie out of a cross-site frame).
    const content = frame ? await frame.content().catch(() => "") : "";
    expect(content).not.toContain("slicehub");
    await page.screenshot({ path: join(ARTIFACTS, "attack-frame.png") });
    await context.close();
  });

  it("a cookie mallory's server sets without Path reaches neither alice's server nor the hub", async () => {
    const mallory = await loggedIn("mallory");
    await startFromHome(mallory.page);
    await mallory.context.close();
    const alice = await loggedIn("alice");
    await startFromHome(alice.page);
    // alice opens a link to mallory's server, at its bare prefix: a browser's default cookie path is "/user".
    await alice.page.goto(`${hub.url}/user/mallory?set-cookie=${encodeURIComponent("tossed=evil")}`);
    const tossed = (await alice.context.cookies()).filter((c) => c.name === "tossed");
    expect(tossed.map((c) => c.path)).toEqual(["/user/mallory/"]);
    // alice's own server (it echoes the request it got) does not receive it.
    const echoed = await alice.page.goto(`${hub.url}/user/alice/api/echo`);
    const seen = (await echoed!.json()) as { headers: Record<string, string> };
    expect(seen.headers.cookie ?? "").not.toContain("tossed");
    await alice.context.close();
  });
});
