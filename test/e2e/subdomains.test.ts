// Subdomain mode end to end: the real daemon with public_url http://hub.localhost:<port> and subdomain_host
// http://users.localhost:<port> (both *.localhost, so dev login is allowed), the real /usr/bin/jupyterhub-singleuser
// (Debian's 3.0, Notebook 6), and requests over node:http that name their host in the Host header, with a cookie
// jar that keeps each host's cookies to itself, as a browser does. Alice logs in on the hub's host, her server
// runs on alice.users.localhost, the OAuth dance crosses the two, and neither the hub's host nor mallory's
// host reaches her server, while the hub serves nothing of its own on users' hosts.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { HubProcess, runOnKernel as runOnKernelAt, SINGLEUSER } from "./harness.js";

const haveSingleuser = existsSync(SINGLEUSER);

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  url: URL;
}

interface Cookie {
  host: string;
  /** Set with Domain=: also sent to hosts under it. */
  domain?: string;
  name: string;
  value: string;
  path: string;
}

/** A browser's cookie rules, reduced: host-only unless Domain= is given, path-scoped, every request to 127.0.0.1. */
class HostBrowser {
  readonly cookies: Cookie[] = [];
  constructor(readonly port: number) {}

  private cookieHeader(url: URL): string {
    const host = url.hostname;
    return this.cookies
      .filter((c) => (c.domain ? host === c.domain || host.endsWith(`.${c.domain}`) : host === c.host))
      .filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith("/") ? c.path : `${c.path}/`) || url.pathname === c.path.replace(/\/$/, ""))
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
  }

  cookie(host: string, name: string): string | undefined {
    return this.cookies.find((c) => c.host === host && c.name === name)?.value;
  }

  private store(url: URL, setCookie: string[] | undefined): void {
    for (const line of setCookie ?? []) {
      const [pair, ...attrs] = line.split(";").map((s) => s.trim());
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq);
      let value = pair!.slice(eq + 1);
      let path = url.pathname.replace(/\/[^/]*$/, "/") || "/";
      let domain: string | undefined;
      let expired = false;
      for (const a of attrs) {
        const [k, v = ""] = a.split("=");
        const key = k!.toLowerCase();
        if (key === "path") path = v;
        if (key === "domain") domain = v.replace(/^\./, "").toLowerCase();
        if (key === "max-age" && Number(v) <= 0) expired = true;
        if (key === "expires" && Date.parse(v) < Date.now()) expired = true;
      }
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
      const i = this.cookies.findIndex((c) => c.host === url.hostname && c.name === name && c.path === path);
      if (i >= 0) this.cookies.splice(i, 1);
      if (!expired && value !== "") this.cookies.push({ host: url.hostname, domain, name, value, path });
    }
  }

  /** One request to `url` (its host goes in the Host header; the connection goes to the hub's port on 127.0.0.1). */
  request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string; cookie?: string } = {}): Promise<Reply> {
    const u = new URL(url);
    const headers: Record<string, string> = { host: u.host, ...init.headers };
    const cookie = init.cookie ?? this.cookieHeader(u);
    if (cookie) headers.cookie = cookie;
    if (init.body !== undefined) headers["content-length"] = String(Buffer.byteLength(init.body));
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: "127.0.0.1", port: this.port, method: init.method ?? "GET", path: u.pathname + u.search, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => {
          this.store(u, res.headers["set-cookie"]);
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), url: u });
        });
        res.on("error", reject);
      });
      req.setTimeout(90_000, () => req.destroy(new Error(`no answer from ${url}`)));
      req.on("error", reject);
      req.end(init.body);
    });
  }

  postForm(url: string, fields: Record<string, string>): Promise<Reply> {
    return this.request(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() });
  }

  /** Follows redirects (GET), returning the last reply and every URL visited after the first. */
  async follow(url: string, max = 10): Promise<{ res: Reply; hops: URL[] }> {
    const hops: URL[] = [];
    let res = await this.request(url);
    while (res.status >= 300 && res.status < 400 && res.headers.location) {
      if (hops.length >= max) throw new Error(`too many redirects: ${hops.map(String).join(" -> ")}`);
      const next = new URL(res.headers.location, res.url);
      hops.push(next);
      res = await this.request(next.href);
    }
    return { res, hops };
  }
}

/** Runs code on a kernel over its websocket, connecting to 127.0.0.1 with the server's host in the Host header. */
function runOnKernel(port: number, host: string, path: string, cookie: string, code: string): Promise<string> {
  return runOnKernelAt(`ws://127.0.0.1:${port}${path}`, cookie, code, { host });
}

describe.skipIf(!haveSingleuser)("subdomain mode with the real jupyterhub-singleuser", () => {
  let hub: HubProcess;
  let hubOrigin = "";
  let aliceOrigin = "";
  let aliceHost = "";
  let malloryOrigin = "";
  let usersOrigin = "";
  let alice: HostBrowser;
  let kernelId = "";

  const hubCsrf = async (b: HostBrowser) => {
    const page = (await b.request(`${hubOrigin}/hub/home`)).body;
    const token = /name="_xsrf" value="([^"]+)"/.exec(page)?.[1];
    if (!token) throw new Error(`no _xsrf on the home page: ${page.slice(0, 300)}`);
    return token;
  };

  const login = async (b: HostBrowser, name: string) => {
    const page = (await b.request(`${hubOrigin}/hub/login`)).body;
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page)?.[1];
    if (!xsrf) throw new Error("no _xsrf on the login page");
    const res = await b.postForm(`${hubOrigin}/hub/login`, { username: name, _xsrf: xsrf, next: "/hub/home" });
    expect(res.status, res.body).toBe(302);
  };

  /** The server cookies alice's browser holds for her server's host. */
  const aliceServerCookie = () =>
    alice.cookies
      .filter((c) => c.host === aliceHost)
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");

  beforeAll(async () => {
    // The port is only known once the harness picked it: start, then restart in subdomain mode on that port.
    hub = await HubProcess.start();
    await hub.stop();
    const port = hub.port;
    hubOrigin = `http://hub.localhost:${port}`;
    usersOrigin = `http://users.localhost:${port}`;
    aliceHost = "alice.users.localhost";
    aliceOrigin = `http://${aliceHost}:${port}`;
    malloryOrigin = `http://mallory.users.localhost:${port}`;
    hub.writeConfig({ ...hub.config, public_url: hubOrigin, subdomain_host: usersOrigin });
    await hub.launch();
    alice = new HostBrowser(port);
  });

  afterAll(async () => {
    await hub?.destroy();
  });

  it("logs alice in on the hub's host and starts her server, whose progress ends at its own origin", async () => {
    await login(alice, "alice");
    const csrf = await hubCsrf(alice);
    const start = await alice.postForm(`${hubOrigin}/hub/spawn/alice`, { _xsrf: csrf });
    expect(start.status).toBe(302);
    expect(start.headers.location).toMatch(/^\/hub\/spawn-pending\/alice/);
    const progress = await alice.request(`${hubOrigin}/hub/api/users/alice/server/progress?_xsrf=${encodeURIComponent(csrf)}`);
    expect(progress.status, progress.body).toBe(200);
    const events = progress.body
      .split("\n\n")
      .map((chunk) => chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n"))
      .filter(Boolean)
      .map((d) => JSON.parse(d) as Record<string, unknown>);
    expect(events.at(-1)).toMatchObject({ progress: 100, ready: true, url: `${aliceOrigin}/user/alice/` });
  });

  it("links and redirects to the server on its own origin: home page, spawn-pending, /hub/user/, /user/ on the hub's host", async () => {
    const home = await alice.request(`${hubOrigin}/hub/home`);
    expect(home.body).toContain(`href="${aliceOrigin}/user/alice/"`);
    const pending = await alice.request(`${hubOrigin}/hub/spawn-pending/alice`);
    expect(pending.status).toBe(302);
    expect(pending.headers.location).toBe(`${aliceOrigin}/user/alice/`);
    const viaHub = await alice.request(`${hubOrigin}/hub/user/alice/tree?x=1`);
    expect(viaHub.status).toBe(302);
    expect(viaHub.headers.location).toBe(`${aliceOrigin}/user/alice/tree?x=1`);
    const onHubHost = await alice.request(`${hubOrigin}/user/alice/tree`);
    expect(onHubHost.status).toBe(302);
    expect(onHubHost.headers.location).toBe("/hub/user/alice/tree");
    const redirect = await alice.request(`${hubOrigin}/hub/user-redirect/tree`);
    const spawn = await alice.request(new URL(redirect.headers.location!, hubOrigin).href);
    expect(spawn.headers.location).toBe(`${aliceOrigin}/user/alice/tree`);
    // The REST models give the server's absolute URL, as JupyterHub's do in this mode.
    const model = await alice.request(`${hubOrigin}/hub/api/users/alice`, { headers: { "x-xsrftoken": await hubCsrf(alice) } });
    expect(model.status, model.body).toBe(200);
    const user = JSON.parse(model.body) as { server: string; servers: Record<string, { url: string }> };
    expect(user.server).toBe(`${aliceOrigin}/user/alice/`);
    expect(user.servers[""]!.url).toBe(`${aliceOrigin}/user/alice/`);
  });

  it("logs in to the server by OAuth: authorize on the hub's host, callback on alice's host", async () => {
    const denied = await alice.request(`${aliceOrigin}/user/alice/api/status`);
    expect(denied.status).toBe(403);
    const { res, hops } = await alice.follow(`${aliceOrigin}/user/alice/tree`);
    expect(res.status, res.body.slice(0, 500)).toBe(200);
    const authorize = hops.find((h) => h.pathname === "/hub/api/oauth2/authorize");
    expect(authorize?.origin).toBe(hubOrigin);
    expect(authorize?.searchParams.get("redirect_uri")).toBe(`${aliceOrigin}/user/alice/oauth_callback`);
    const callback = hops.find((h) => h.pathname === "/user/alice/oauth_callback");
    expect(callback?.origin).toBe(aliceOrigin);
    expect(hops.at(-1)!.origin).toBe(aliceOrigin);
    // Notebook 6 (3.x's mixin) takes JUPYTERHUB_HOST only for OAuth and logout; its control-panel link and logo
    // stay relative, so on alice's host they reach the hub app, which sends them to the hub's host.
    expect(res.body).toContain("href='/hub/home'");
    for (const path of ["/hub/home", "/hub/logo"]) {
      const link = await alice.request(`${aliceOrigin}${path}`);
      expect(link.status).toBe(302);
      expect(link.headers.location).toBe(`${hubOrigin}${path}`);
    }
    const status = await alice.request(`${aliceOrigin}/user/alice/api/status`);
    expect(status.status).toBe(200);
    // Cookies stay on the host that set them.
    expect(alice.cookies.filter((c) => c.domain)).toEqual([]);
    expect(alice.cookie(aliceHost, "jupyterhub-user-alice")).toBeTruthy();
  });

  it("refuses a redirect_uri other than the server's own absolute callback", async () => {
    const bad = await alice.request(
      `${hubOrigin}/hub/api/oauth2/authorize?client_id=jupyterhub-user-alice&response_type=code&state=s&redirect_uri=${encodeURIComponent(`${malloryOrigin}/user/alice/oauth_callback`)}`,
    );
    expect(bad.status).toBe(400);
    const relative = await alice.request(
      `${hubOrigin}/hub/api/oauth2/authorize?client_id=jupyterhub-user-alice&response_type=code&state=s&redirect_uri=${encodeURIComponent("/user/alice/oauth_callback")}`,
    );
    expect(relative.status).toBe(400);
  });

  it("runs a kernel over REST and websocket on alice's host, with the environment of subdomain mode", async () => {
    const xsrf = alice.cookie(aliceHost, "_xsrf");
    expect(xsrf, "the notebook sets _xsrf on page loads").toBeTruthy();
    const created = await alice.request(`${aliceOrigin}/user/alice/api/kernels`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-xsrftoken": xsrf! },
      body: JSON.stringify({ name: "python3" }),
    });
    expect(created.status, created.body).toBe(201);
    kernelId = (JSON.parse(created.body) as { id: string }).id;
    const code = 'import os; print(os.environ["JUPYTERHUB_HOST"], os.environ["JUPYTERHUB_OAUTH_CALLBACK_URL"], os.environ["JUPYTERHUB_PUBLIC_URL"], os.environ["JUPYTERHUB_PUBLIC_HUB_URL"])';
    const printed = await runOnKernel(hub.port, new URL(aliceOrigin).host, `/user/alice/api/kernels/${kernelId}/channels?session_id=${randomUUID()}`, aliceServerCookie(), code);
    expect(printed).toBe(`${hubOrigin} ${aliceOrigin}/user/alice/oauth_callback ${aliceOrigin}/user/alice/ ${hubOrigin}/hub/\n`);
  });

  it("does not reach alice's server on the hub's host, on mallory's host or on users.localhost, even with her server cookie", async () => {
    const cookie = aliceServerCookie();
    for (const origin of [hubOrigin, malloryOrigin, usersOrigin]) {
      const get = await alice.request(`${origin}/user/alice/api/status`, { cookie });
      expect(get.status, origin).toBe(302);
      expect(new URL(get.headers.location!, origin).href, origin).toBe(`${hubOrigin}/hub/user/alice/api/status`);
      const post = await alice.request(`${origin}/user/alice/api/kernels`, {
        method: "POST",
        cookie,
        headers: { "content-type": "application/json", "x-xsrftoken": alice.cookie(aliceHost, "_xsrf")! },
        body: "{}",
      });
      expect(post.status, origin).not.toBe(201);
      expect(post.body).not.toContain('"id"');
      const ws = new WebSocket(`ws://127.0.0.1:${hub.port}/user/alice/api/kernels/${kernelId}/channels`, { headers: { host: new URL(origin).host, cookie } });
      const outcome = await new Promise<string>((resolve) => {
        ws.on("open", () => resolve("open"));
        ws.on("unexpected-response", (_req, res) => resolve(`refused ${res.statusCode}`));
        ws.on("error", () => resolve("error"));
      });
      ws.terminate();
      expect(outcome, origin).not.toBe("open");
    }
  });

  it("serves nothing of the hub's on a user's host, even with the hub's cookies: pages go to the hub's host, other methods get 404", async () => {
    const hubCookie = alice.cookies
      .filter((c) => c.host === "hub.localhost")
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
    expect(hubCookie).not.toBe("");
    for (const origin of [aliceOrigin, malloryOrigin, usersOrigin]) {
      const home = await alice.request(`${origin}/hub/home`, { cookie: hubCookie });
      expect(home.status, origin).toBe(302);
      expect(home.headers.location).toBe(`${hubOrigin}/hub/home`);
      expect(home.headers["set-cookie"]).toBeUndefined();
      expect(home.body).not.toContain("_xsrf");
      const token = await alice.request(`${origin}/hub/api/users/alice/tokens`, {
        method: "POST",
        cookie: hubCookie,
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(token.status, origin).toBe(404);
      expect(token.body).not.toContain("token");
      const api = await alice.request(`${origin}/hub/api/user`, { cookie: hubCookie });
      expect(api.status).toBe(302);
      expect(api.headers.location).toBe(`${hubOrigin}/hub/api/user`);
    }
    // The hub still answers on its own host and on the internal address servers use.
    expect((await alice.request(`${hubOrigin}/hub/home`)).status).toBe(200);
    expect((await alice.request(`http://127.0.0.1:${hub.port}/hub/api`)).status).toBe(200);
  });

  it("refuses mallory's login on alice's server", async () => {
    const mallory = new HostBrowser(hub.port);
    await login(mallory, "mallory");
    const { res } = await mallory.follow(`${aliceOrigin}/user/alice/tree`);
    expect(res.status).toBe(403);
    expect((await mallory.request(`${aliceOrigin}/user/alice/api/status`)).status).toBe(403);
  });

  it("routes alice's host again after kill -9 of the hub (adoption registers the route with its host)", async () => {
    hub.kill9();
    await new Promise((r) => hub.proc!.once("exit", r));
    await hub.launch();
    await hub.waitForLog(/adopted running server/);
    const status = await alice.request(`${aliceOrigin}/user/alice/api/status`);
    expect(status.status).toBe(200);
    expect((await alice.request(`${hubOrigin}/user/alice/api/status`)).status).toBe(302);
  });

  it("removes the route with its host at stop: alice's host then sends her to the hub, which says it is not running", async () => {
    const csrf = await hubCsrf(alice);
    const stop = await alice.postForm(`${hubOrigin}/hub/stop/alice`, { _xsrf: csrf });
    expect(stop.status).toBe(303);
    const { res, hops } = await alice.follow(`${aliceOrigin}/user/alice/tree`);
    expect(hops[0]!.href).toBe(`${hubOrigin}/hub/user/alice/tree`);
    expect(res.status).toBe(424);
    const api = await alice.request(`${aliceOrigin}/user/alice/api/contents`, { method: "POST", body: "" });
    expect(api.status).toBe(424);
  });
});
