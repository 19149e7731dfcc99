// Issue 10 in Debian's Chromium: mallory replaces the Jupyter in his account with his own web server
// (fixtures/attacker-singleuser.mjs) and a logged-in victim (alice, or the admin boss) opens his pages. Each attack
// page reports what it learned to a collector (an http server here, on another origin); the tests assert it learned
// nothing of the hub's (no hub HTML, no CSRF token, no new token, no admin change) and that the victim's hub pages
// and session are still theirs afterwards. Once in path mode (everything on one origin, the hub defends itself
// with Fetch Metadata, COOP, frame-ancestors, CSRF on cookie API requests and the proxy's header filter) and once
// in subdomain mode (every user's server on a host of its own, mapped to loopback with --host-resolver-rules),
// where mallory's page must not read alice's server either; there the same browser also does what a user does:
// log in, start the real Notebook 6, run a cell, make a token, an admin action, log out.
import http from "node:http";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import Database from "better-sqlite3";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, haveChromium, launchChromium, printInNewNotebook } from "./chromium.js";
import { HubProcess, ROOT, SINGLEUSER } from "./harness.js";
import { freePort } from "../../src/ports.js";

const FIXTURE = join(ROOT, "test/e2e/fixtures/attacker-singleuser.mjs");
const ADMIN = "boss";

interface Step {
  name: string;
  status?: number;
  body?: string;
  xsrf?: string;
  error?: string;
  registered?: boolean;
  scope?: string;
  scopes?: string[];
  messages?: string[];
  [k: string]: unknown;
}
interface Report {
  attack: string;
  run: string;
  victim: string;
  origin: string;
  steps: Step[];
  error?: string;
}

// ------------------------------------------------------------------------------------------------ shared

let browser: Browser;
let collector: http.Server;
let collectorUrl = "";
const reports: Report[] = [];

beforeAll(async () => {
  if (!haveChromium) return;
  // *.localhost is loopback in Chromium already; the rule makes the mapping explicit, as a deployment's wildcard
  // DNS would, and keeps every name of the test on this machine.
  browser = await launchChromium(["--host-resolver-rules=MAP *.localhost 127.0.0.1"]);
  const port = await freePort();
  collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        if (req.method === "POST") reports.push(JSON.parse(Buffer.concat(chunks).toString()) as Report);
      } catch {
        // not a report
      }
      res.writeHead(204, { "access-control-allow-origin": "*" }).end();
    });
  });
  await new Promise<void>((resolve) => collector.listen(port, "127.0.0.1", resolve));
  collectorUrl = `http://127.0.0.1:${port}/report`;
});

afterAll(async () => {
  await browser?.close();
  collector?.close();
});

/** One hub (path or subdomain mode) with the attacker's fixture as every user's server. */
class Setup {
  hub!: HubProcess;
  /** The hub's own origin, as the victim's browser reaches it. */
  hubUrl = "";
  /** Each started server's URL (its prefix, with the origin it is served on). */
  servers = new Map<string, string>();

  constructor(readonly mode: "path" | "subdomain") {}

  async start(): Promise<void> {
    this.hub = await HubProcess.start({
      config: {
        auth: { kind: "dev", admin_users: [ADMIN] },
        spawner: {
          cmd: [process.execPath, FIXTURE],
          start_timeout_s: 60,
          env: { ATTACK_COLLECTOR: collectorUrl, ...(this.mode === "subdomain" ? { ATTACK_REAL_SINGLEUSER: SINGLEUSER } : {}) },
        },
      },
    });
    this.hubUrl = this.hub.url;
    if (this.mode === "subdomain") {
      // The hub's port is only known once it runs: start again with the host names on that port.
      await this.hub.stop();
      const p = this.hub.port;
      this.hub.writeConfig({ ...this.hub.config, public_url: `http://hub.localhost:${p}`, subdomain_host: `http://users.localhost:${p}` });
      await this.hub.launch();
      this.hubUrl = `http://hub.localhost:${p}`;
    }
  }

  db<T>(f: (db: Database.Database) => T): T {
    const db = new Database(join(this.hub.stateDir, "slicehub.sqlite"), { readonly: true, fileMustExist: true });
    try {
      return f(db);
    } finally {
      db.close();
    }
  }

  apiTokens(user: string): number {
    return this.db((db) => (db.prepare("SELECT count(*) AS n FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.name = ? AND t.kind = 'api'").get(user) as { n: number }).n);
  }

  stolenTokens(): number {
    return this.db((db) => (db.prepare("SELECT count(*) AS n FROM api_tokens WHERE note = 'stolen by mallory'").get() as { n: number }).n);
  }

  userExists(user: string): boolean {
    return this.db((db) => db.prepare("SELECT 1 FROM users WHERE name = ?").get(user) !== undefined);
  }

  isBlocked(user: string): boolean {
    return this.db((db) => !!(db.prepare("SELECT blocked FROM users WHERE name = ?").get(user) as { blocked: number } | undefined)?.blocked);
  }

  serverState(user: string): string | undefined {
    return this.db((db) => (db.prepare("SELECT s.state FROM servers s JOIN users u ON u.id = s.user_id WHERE u.name = ? AND s.name = ''").get(user) as { state: string } | undefined)?.state);
  }

  async loggedIn(name: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${this.hubUrl}/hub/login`);
    await page.fill("#username", name);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/hub\/home$/);
    return { context, page };
  }

  /** Start the user's default server from the home page; its URL is wherever the browser lands. */
  async startFromHome(page: Page, name: string, timeout = 30_000): Promise<string> {
    await page.goto(`${this.hubUrl}/hub/home`);
    await page.locator("section.server button", { hasText: "Start" }).first().click();
    await page.waitForURL(new RegExp(`/user/${name}/`), { timeout });
    const u = new URL(page.url());
    const url = `${u.origin}/user/${name}/`;
    this.servers.set(name, url);
    return url;
  }

  /** Run one attack page of mallory's in `page` (the victim's) and wait for its report. */
  async attack(page: Page, attack: string, params: Record<string, string>): Promise<Report> {
    const run = randomBytes(6).toString("hex");
    const q = new URLSearchParams({ run, ...(this.mode === "subdomain" ? { hub: this.hubUrl } : {}), ...params });
    await page.goto(`${this.servers.get("mallory")!}attack/${attack}?${q}`);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const r = reports.find((x) => x.run === run);
      if (r) {
        writeFileSync(join(ARTIFACTS, `origins-${this.mode}-${attack}-${params.victim ?? ""}${params.foreign ? "-foreign" : ""}${params.leaked ? "-leaked" : ""}.json`), JSON.stringify(r, null, 2));
        await page.screenshot({ path: join(ARTIFACTS, `origins-${this.mode}-${attack}-${params.victim ?? ""}.png`), fullPage: true });
        return r;
      }
      await page.waitForTimeout(100);
    }
    await page.screenshot({ path: join(ARTIFACTS, `origins-${this.mode}-${attack}-timeout.png`), fullPage: true });
    throw new Error(`no report from the ${attack} attack within 30 s`);
  }

  /** The victim's own view of a hub page, by a real navigation: the name in the header, or "" when logged out. */
  async whoIsLoggedIn(page: Page): Promise<{ url: string; who: string; text: string }> {
    await page.goto(`${this.hubUrl}/hub/home`);
    const url = page.url();
    const who = (await page.locator("nav .who").first().textContent({ timeout: 2000 }).catch(() => null)) ?? "";
    return { url, who: who.trim(), text: (await page.textContent("body")) ?? "" };
  }

  /** The session's CSRF token, as the victim's own home page carries it. */
  async realXsrf(page: Page): Promise<string> {
    await page.goto(`${this.hubUrl}/hub/home`);
    const x = /name="_xsrf" value="([^"]+)"/.exec(await page.content())?.[1];
    expect(x, "the victim's own home page carries a CSRF token").toBeTruthy();
    return x!;
  }
}

/** Nothing of the hub's in what mallory's page read: no CSRF token, no hub page, nothing naming the victim. */
function expectNothingLearned(r: Report, secrets: string[]): void {
  const all = JSON.stringify(r.steps);
  for (const s of secrets) expect(all, `the report must not contain ${s.slice(0, 12)}…`).not.toContain(s);
  for (const step of r.steps) {
    const body = step.body ?? "";
    expect(step.xsrf, `${step.name}: read a CSRF token`).toBeUndefined();
    expect(body, `${step.name}: read hub HTML`).not.toMatch(/My servers|API tokens|name="_xsrf"|class="who"|Log out/);
    // A refusal tells nothing about the user; an answer that names the victim gave something away.
    expect(body, `${step.name}: an answer that names ${r.victim}`).not.toContain(r.victim);
  }
}

const attackCases = (s: Setup) => {
  it("fetch/XHR of hub pages and the token API: no hub HTML, no CSRF token, no token minted (alice and an admin)", async () => {
    for (const victim of ["alice", ADMIN]) {
      const { context, page } = await s.loggedIn(victim);
      const before = s.apiTokens(victim);
      const r = await s.attack(page, "fetch", { victim });
      expectNothingLearned(r, [await s.realXsrf(page)]);
      // Even with the session's real CSRF token (leaked some other way), no script of mallory's page makes a change:
      // a cookie-authenticated change is accepted only as a form post navigation.
      const leaked = await s.attack(page, "fetch", { victim, leaked: await s.realXsrf(page) });
      for (const step of [...r.steps, ...leaked.steps].filter((x) => /^(mint|admin):/.test(x.name))) {
        expect(step.status ?? 0, `${step.name} succeeded: ${step.body?.slice(0, 200)}`).not.toBeOneOf([200, 201, 302, 303]);
        expect(step.body ?? "", `${step.name}: a token in the answer`).not.toMatch(/"token"|id="token"/);
      }
      expect(s.apiTokens(victim), `a token was minted for ${victim}`).toBe(before);
      expect(s.stolenTokens()).toBe(0);
      expect(s.userExists("mallory-admin"), "mallory made himself an admin account").toBe(false);
      expect(s.isBlocked("alice"), "alice was blocked").toBe(false);
      await context.close();
    }
  });

  it("iframes of /hub/home and /hub/token: blocked, their DOM unreadable", async () => {
    const { context, page } = await s.loggedIn("alice");
    const r = await s.attack(page, "frame", { victim: "alice" });
    expectNothingLearned(r, [await s.realXsrf(page)]);
    await context.close();
  });

  it("window.open of /hub/home and /hub/token: no readable handle", async () => {
    const { context, page } = await s.loggedIn("alice");
    const r = await s.attack(page, "open", { victim: "alice" });
    expectNothingLearned(r, [await s.realXsrf(page)]);
    await context.close();
  });

  it("a service worker with a scope outside mallory's prefix (/, /hub/, /user/, via the bare prefix) fails; the hub's pages stay the hub's", async () => {
    const { context, page } = await s.loggedIn("alice");
    const r = await s.attack(page, "sw", { victim: "alice" });
    const byName = Object.fromEntries(r.steps.map((x) => [x.name, x]));
    expect(byName["control: scope inside the prefix"]?.registered, "this browser must run service workers at all, or the test proves nothing").toBe(true);
    for (const step of r.steps.filter((x) => x.name.startsWith("script "))) expect(step.registered, `${step.name}: ${JSON.stringify(step)}`).toBe(false);
    const prefix = s.servers.get("mallory")!;
    for (const scope of byName.registrations?.scopes ?? []) expect(scope.startsWith(prefix), `a registration with scope ${scope}`).toBe(true);
    // The victim's own pages in the same context: the real ones.
    for (const path of ["/hub/home", "/hub/token", "/user/alice/"]) {
      await page.goto(`${s.hubUrl}${path}`);
      expect(await page.textContent("body"), path).not.toContain("PWNED");
    }
    const home = await s.whoIsLoggedIn(page);
    expect(home.text).toContain("My servers");
    await page.screenshot({ path: join(ARTIFACTS, `origins-${s.mode}-sw-after.png`), fullPage: true });
    await context.close();
  });

  it("document.cookie tossing of the hub's cookies (garbage, every path, Domain=): alice stays alice, and her forms still work", async () => {
    const { context, page } = await s.loggedIn("alice");
    await s.attack(page, "cookies", { victim: "alice" });
    const after = await s.whoIsLoggedIn(page);
    expect(after.url, "alice was logged out").toMatch(/\/hub\/home$/);
    expect(after.who).toBe("alice");
    // The CSRF token is the session's, not a cookie a page can set: the token form still works.
    const before = s.apiTokens("alice");
    await page.goto(`${s.hubUrl}/hub/token`);
    await page.fill("#note", "after tossing");
    await page.click("button:has-text('Create token')");
    await page.waitForSelector("#token", { timeout: 5000 });
    expect(s.apiTokens("alice")).toBe(before + 1);
    await page.screenshot({ path: join(ARTIFACTS, `origins-${s.mode}-cookies-after.png`), fullPage: true });
    await context.close();
  });

  it("document.cookie tossing of mallory's own valid session: alice is not logged in as mallory", async () => {
    const m = await s.loggedIn("mallory");
    const foreign = (await m.context.cookies()).find((c) => /slicehub-session$/.test(c.name))?.value;
    expect(foreign).toBeTruthy();
    const { context, page } = await s.loggedIn("alice");
    await s.attack(page, "cookies", { victim: "alice", foreign: foreign! });
    const after = await s.whoIsLoggedIn(page);
    expect(after.url, "alice was logged out").toMatch(/\/hub\/home$/);
    expect(after.who).toBe("alice");
    await page.goto(`${s.hubUrl}/hub/token`);
    expect(await page.locator("nav .who").first().textContent()).toBe("alice");
    await context.close();
    await m.context.close();
  });

  it("Clear-Site-Data from mallory's answers: alice is still logged in", async () => {
    const { context, page } = await s.loggedIn("alice");
    await s.attack(page, "csd", { victim: "alice" });
    await page.goto(`${s.servers.get("mallory")!}csd`);
    const after = await s.whoIsLoggedIn(page);
    expect(after.url, "alice was logged out").toMatch(/\/hub\/home$/);
    expect(after.who).toBe("alice");
    await context.close();
  });

  it("EventSource and fetch of cookie-authenticated hub API without the CSRF token: refused", async () => {
    const { context, page } = await s.loggedIn("alice");
    const r = await s.attack(page, "api", { victim: "alice" });
    expectNothingLearned(r, [await s.realXsrf(page)]);
    for (const step of r.steps.filter((x) => x.name.startsWith("api GET"))) expect(step.status ?? 0, `${step.name}: ${step.body?.slice(0, 200)}`).not.toBe(200);
    const es = r.steps.find((x) => x.name === "eventsource");
    expect(es?.messages ?? [], "the progress stream spoke to mallory's page").toEqual([]);
    await context.close();
  });
};

// ------------------------------------------------------------------------------------------------ path mode

describe.skipIf(!haveChromium)("a user's server attacks its visitors: path mode", () => {
  const s = new Setup("path");

  beforeAll(async () => {
    await s.start();
    const m = await s.loggedIn("mallory");
    await s.startFromHome(m.page, "mallory");
    await m.context.close();
  });

  afterAll(async () => {
    await s.hub?.destroy();
  });

  attackCases(s);
});

// ------------------------------------------------------------------------------------------------ subdomain mode

describe.skipIf(!haveChromium || !existsSync(SINGLEUSER))("a user's server attacks its visitors: subdomain mode", () => {
  const s = new Setup("subdomain");
  /** Something only alice may see: a file she writes through her own Jupyter. */
  const diary = `alice-diary-${randomBytes(8).toString("hex")}`;

  beforeAll(async () => {
    await s.start();
    const m = await s.loggedIn("mallory");
    await s.startFromHome(m.page, "mallory");
    await m.context.close();
  }, 60_000);

  afterAll(async () => {
    await s.hub?.destroy();
  });

  it("every server is on a host of its own, not the hub's", () => {
    const hub = new URL(s.hubUrl);
    const mallory = new URL(s.servers.get("mallory")!);
    expect(mallory.host).not.toBe(hub.host);
    expect(mallory.hostname).toMatch(/\.users\.localhost$/);
  });

  attackCases(s);

  it("mallory's page cannot read alice's server (fetch with credentials, iframe, window.open)", async () => {
    const { context, page } = await s.loggedIn("alice");
    const alice = await s.startFromHome(page, "alice", 60_000);
    expect(new URL(alice).hostname).toMatch(/\.users\.localhost$/);
    expect(new URL(alice).host).not.toBe(new URL(s.servers.get("mallory")!).host);
    // alice writes a file through her own Jupyter and reads it back (her browser has done the OAuth round trip on
    // her server's origin): that answer is what mallory's page tries to read.
    await page.waitForSelector("#notebook_list", { timeout: 30_000 });
    const saved = await page.evaluate(async (content) => {
      const xsrf = document.cookie.split("; ").find((c) => c.startsWith("_xsrf="))?.slice(6) ?? "";
      const r = await fetch("/user/alice/api/contents/diary.txt", {
        method: "PUT",
        headers: { "Content-Type": "application/json", "X-XSRFToken": decodeURIComponent(xsrf) },
        body: JSON.stringify({ type: "file", format: "text", content }),
      });
      return r.status;
    }, diary);
    expect(saved).toBeOneOf([200, 201]);
    const peer = `${alice}api/contents/diary.txt`;
    await page.goto(peer);
    expect(await page.textContent("body")).toContain(diary);
    const r = await s.attack(page, "peer", { victim: "alice", peer });
    expectNothingLearned(r, [diary]);
    for (const step of r.steps) expect(step.status ?? 0, `${step.name}: ${JSON.stringify(step).slice(0, 300)}`).not.toBe(200);
    await context.close();
  }, 90_000);

  it("the same browser still does everything a user does: log in, start Notebook 6, run a cell, make a token, admin, log out", async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `origins-flow-${name}.png`), fullPage: true });

    await page.goto(`${s.hubUrl}/`);
    await expect.poll(() => page.url()).toContain("/hub/login");
    await page.fill("#username", ADMIN);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/hub\/home$/);
    await shot("home");

    await page.locator("section.server button", { hasText: "Start" }).first().click();
    await page.waitForURL(/\/hub\/spawn-pending\//);
    await page.waitForURL(new RegExp(`/user/${ADMIN}/tree`), { timeout: 60_000 });
    await page.waitForSelector("#notebook_list", { timeout: 30_000 });
    const server = new URL(page.url());
    expect(server.hostname).toMatch(/\.users\.localhost$/);
    await shot("tree");

    expect(await printInNewNotebook(page, `/user/${ADMIN}/`)).toBe("42");
    await shot("notebook");

    await page.goto(`${s.hubUrl}/hub/token`);
    await page.fill("#note", "laptop");
    await page.click("button:has-text('Create token')");
    const token = await page.locator("#token").inputValue({ timeout: 5000 });
    await shot("token");
    const me = await hubApi(s, "/hub/api/user", token);
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body)).toMatchObject({ name: ADMIN });

    await page.goto(`${s.hubUrl}/hub/admin`);
    await shot("admin");
    await page.locator(`form[action="/hub/admin/stop"]:has(input[name=user][value=mallory]) button`).click();
    await page.waitForURL(/\/hub\/admin$/);
    await expect.poll(() => s.serverState("mallory"), { timeout: 20_000 }).toBe("stopped");

    await page.click("text=Log out");
    await page.waitForURL(/\/hub\/login/);
    await page.goto(`${s.hubUrl}/hub/home`);
    expect(page.url()).toContain("/hub/login");
    await shot("logged-out");
    await context.close();
  }, 180_000);
});

/** A token-authenticated API call from a script, to the hub's own host name (node cannot resolve *.localhost). */
function hubApi(s: Setup, path: string, token: string): Promise<{ status: number; body: string }> {
  const u = new URL(s.hubUrl);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port: s.hub.port, path, headers: { host: u.host, authorization: `token ${token}` } }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
}
