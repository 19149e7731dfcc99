// JupyterLab's "Restart Server" (and the "server unavailable" dialog's Restart) opens /hub/spawn for the default
// server, /hub/spawn/<user>/<server> for a named one. Through the real daemon and the real
// jupyterhub-singleuser, with node:http requests that carry a browser's navigation headers: a running server
// is reached straight, a stopped one through the start form and the spawn-pending page, and no hop goes
// through /hub/user/…?redirects=N (JupyterHub 5 goes straight to the server; only a redirect loop counts).
// The admin's JUPYTERHUB_ACTIVITY_INTERVAL from spawner.env reaches the real server, which uses it.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, HubProcess, readSse, SINGLEUSER } from "./harness.js";

const haveSingleuser = existsSync(SINGLEUSER);

/** What Chromium sends for a top-level navigation (a link, a typed URL, window.open, a redirect). */
const NAVIGATE = { "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "sec-fetch-user": "?1", accept: "text/html,application/xhtml+xml" };

interface Reply {
  status: number;
  location?: string;
  body: string;
}

/**
 * A tab: node:http requests with navigation headers and the cookies of `jar` (a logged-in harness Browser,
 * whose jar it also fills), following redirects the way a browser does, at most 12 hops.
 */
class Tab {
  hops: string[] = [];
  constructor(
    readonly hub: HubProcess,
    readonly jar: Browser,
  ) {}

  one(path: string, opts: { method?: string; form?: Record<string, string>; site?: string } = {}): Promise<Reply> {
    const url = new URL(path, this.hub.url);
    const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
    const headers: Record<string, string> = { ...NAVIGATE, "sec-fetch-site": opts.site ?? "same-origin", host: url.host };
    const cookie = this.jar.cookieHeader(url.pathname);
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      headers["content-length"] = String(Buffer.byteLength(body));
      headers.origin = new URL(this.hub.url).origin;
    }
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { method: opts.method ?? "GET", headers, timeout: 30_000 }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          this.jar.remember(res.headers["set-cookie"] ?? [], url.pathname);
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: text });
        });
      });
      req.on("timeout", () => req.destroy(new Error(`timeout on ${path}`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  /** Navigate to `path` and follow redirects; every hop (path and query) lands in `hops`. */
  async go(path: string, opts: { method?: string; form?: Record<string, string>; site?: string } = {}): Promise<Reply & { url: string }> {
    let current = new URL(path, this.hub.url);
    let res = await this.one(current.pathname + current.search, opts);
    while (res.status >= 300 && res.status < 400 && res.location) {
      if (this.hops.length >= 12) throw new Error(`too many redirects: ${this.hops.join(" -> ")}`);
      current = new URL(res.location, current);
      this.hops.push(current.pathname + current.search);
      res = await this.one(current.pathname + current.search);
    }
    return { ...res, url: current.pathname + current.search };
  }
}

const noCounter = (hops: string[]) => hops.filter((h) => h.includes("redirects=") || h.startsWith("/hub/user/"));

describe.skipIf(!haveSingleuser)("restarting a server from JupyterLab: straight to it, as JupyterHub 5", () => {
  let hub: HubProcess;
  let alice: Browser;
  let csrf = "";

  beforeAll(async () => {
    // Each launch holds the spawn pending for 1.5 s, so the "while starting" checks see it starting.
    process.env.SLICEHUB_TEST_PAUSE_AFTER_LAUNCH_MS = "1500";
    try {
      hub = await HubProcess.start({ config: { spawner: { named_servers: { limit: 1 }, env: { JUPYTERHUB_ACTIVITY_INTERVAL: "17" } } } });
    } finally {
      delete process.env.SLICEHUB_TEST_PAUSE_AFTER_LAUNCH_MS;
    }
    alice = new Browser(hub.url);
    await alice.login("alice");
    csrf = await alice.csrf();
  }, 60_000);

  afterAll(async () => {
    await hub?.destroy();
  });

  /** Waits (bounded) until the server's progress stream says ready. */
  const ready = async (server = "") => {
    const path = server ? `/hub/api/users/alice/servers/${server}/progress` : "/hub/api/users/alice/server/progress";
    const events = await readSse(await alice.request(`${path}?_xsrf=${encodeURIComponent(csrf)}`), 90_000);
    expect(events.at(-1), JSON.stringify(events)).toMatchObject({ ready: true });
  };

  it("a stopped server: Restart opens /hub/spawn, its form starts the server, spawn-pending goes straight to /user/alice/", async () => {
    const tab = new Tab(hub, alice);
    const form = await tab.go("/hub/spawn", { site: "none" });
    expect(form.status).toBe(200);
    expect(form.body).toContain('name="next" value="/user/alice/"');
    const started = await tab.one("/hub/spawn/alice", { method: "POST", form: { _xsrf: csrf, next: "/user/alice/" } });
    expect(started.status).toBe(302);
    expect(started.location).toBe(`/hub/spawn-pending/alice?next=${encodeURIComponent("/user/alice/")}`);
    // While it starts, the old tab's /user/alice/… (a reload) and /hub/user/alice/… show its progress.
    for (const path of ["/user/alice/tree?x=1", "/hub/user/alice/tree?x=1"]) {
      const pending = new Tab(hub, alice);
      const page = await pending.go(path);
      expect(page.url, path).toBe(`/hub/spawn-pending/alice?next=${encodeURIComponent("/user/alice/tree?x=1")}`);
      expect(page.status, path).toBe(200);
    }
    const pendingPage = await tab.go(started.location!);
    expect(pendingPage.status).toBe(200);
    // The page's script goes on to the server itself when it is ready, not through /hub/user/.
    expect(pendingPage.body).toContain('data-next="/user/alice/"');
    expect(pendingPage.body).not.toContain("/hub/user/");
    await ready();
    // A reload of spawn-pending once it is ready, as the browser lands after the script's navigation.
    tab.hops = [];
    const server = await tab.go(started.location!);
    expect(tab.hops[0]).toBe("/user/alice/");
    expect(server.status, tab.hops.join(" -> ")).toBe(200);
    expect(server.url).toMatch(/^\/user\/alice\/tree/);
    expect(noCounter(tab.hops), tab.hops.join(" -> ")).toEqual([]);
  });

  it("a running server: Restart (/hub/spawn) and the old tab's reload reach it at once, path and query kept", async () => {
    const tab = new Tab(hub, alice);
    const viaSpawn = await tab.go("/hub/spawn", { site: "none" });
    expect(tab.hops[0]).toBe("/user/alice/");
    expect(viaSpawn.status).toBe(200);
    expect(noCounter(tab.hops)).toEqual([]);
    const reload = new Tab(hub, alice);
    const page = await reload.go("/user/alice/tree?x=1");
    expect(page.status).toBe(200);
    expect(reload.hops).toEqual([]);
    // A bookmarked /hub/user/… link, or /hub/user-redirect/…: one hop to the server, no counter.
    for (const [from, to] of [
      ["/hub/user/alice/tree?x=1", "/user/alice/tree?x=1"],
      ["/hub/user-redirect/tree?y=2", "/user/alice/tree?y=2"],
    ] as const) {
      const t = new Tab(hub, alice);
      const r = await t.go(from);
      expect(r.status, from).toBe(200);
      expect(t.hops.at(-1), from).toBe(to);
      expect(noCounter(t.hops), t.hops.join(" -> ")).toEqual([]);
    }
  });

  it("only a loop counts: a /hub/user/ request already counting goes on, and ends in 'Redirect loop detected'", async () => {
    const tab = new Tab(hub, alice);
    const counting = await tab.one("/hub/user/alice/tree?redirects=1&x=1");
    expect(counting.status).toBe(302);
    expect(counting.location).toBe("/user/alice/tree?x=1&redirects=2");
    const loop = await tab.one("/hub/user/alice/tree?redirects=4");
    expect(loop.status).toBe(500);
    expect(loop.body).toContain("Redirect loop detected");
  });

  it("a named server: Restart opens /hub/spawn/alice/lab, and it is reached straight once started", async () => {
    const tab = new Tab(hub, alice);
    const form = await tab.go("/hub/spawn/alice/lab", { site: "none" });
    expect(form.status).toBe(200);
    expect(form.body).toContain('name="next" value="/user/alice/lab/"');
    const started = await tab.one("/hub/spawn/alice/lab", { method: "POST", form: { _xsrf: csrf, next: "/user/alice/lab/" } });
    expect(started.location).toBe(`/hub/spawn-pending/alice/lab?next=${encodeURIComponent("/user/alice/lab/")}`);
    await ready("lab");
    tab.hops = [];
    const server = await tab.go("/hub/spawn/alice/lab", { site: "none" });
    expect(tab.hops[0]).toBe("/user/alice/lab/");
    expect(server.status, tab.hops.join(" -> ")).toBe(200);
    expect(noCounter(tab.hops)).toEqual([]);
  });

  it("gives the real server the admin's JUPYTERHUB_ACTIVITY_INTERVAL, which it uses, and JupyterHub's empty public URLs", async () => {
    const pid = hub.serverProcessGroupOf("alice");
    expect(pid).toBeGreaterThan(0);
    const env = Object.fromEntries(
      readFileSync(`/proc/${pid}/environ`, "utf8")
        .split("\0")
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    );
    expect(env).toMatchObject({ JUPYTERHUB_ACTIVITY_INTERVAL: "17", JUPYTERHUB_PUBLIC_URL: "", JUPYTERHUB_PUBLIC_HUB_URL: "" });
    const logs = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? logs(join(dir, e.name)) : e.name === "alice--default.log" ? [join(dir, e.name)] : []));
    const [log] = logs(hub.stateDir);
    expect(log, "alice's server log under the state dir").toBeTruthy();
    let text = "";
    for (let i = 0; i < 50 && !/activity every 17 seconds/.test(text); i++) {
      text = readFileSync(log!, "utf8");
      if (!/activity every 17 seconds/.test(text)) await sleep(100);
    }
    expect(text).toMatch(/Updating Hub with activity every 17 seconds/);
  });
});
