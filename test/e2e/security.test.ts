// Attacks from the security review, replayed on the wire against a live daemon, each now refused: tokens
// that mint stronger tokens, malformed scopes, dev login through a proxy, unbounded bodies read before
// authentication, a raced named-server limit, OAuth client ids two servers share, GETs that start servers,
// malformed input answered with 500, and unbounded OAuth codes. (Slow clients, cookie tossing, readiness,
// and pending logins have their own files: test/proxy/, test/spawners/, test/auth/.)
import http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, HubProcess, ROOT } from "./harness.js";

const FAKE = join(ROOT, "test/e2e/fixtures/fake-singleuser.mjs");

let hub: HubProcess;
let admin: Browser;
let alice: Browser;

interface Answer {
  status: number;
  text: string;
  json: Record<string, unknown>;
}

async function api(path: string, opts: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `token ${opts.token}`;
  const r = await fetch(`${hub.url}${path}`, { method: opts.method ?? "GET", headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await r.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: r.status, text, json };
}

/** A token for `who`'s own account through its browser session (the API with the session's CSRF token). */
async function sessionToken(b: Browser, user: string, body: object): Promise<{ token: string; id: string }> {
  const r = await b.request(`/hub/api/users/${user}/tokens`, { method: "POST", headers: { "x-xsrftoken": await b.csrf() }, body: JSON.stringify(body) });
  const json = (await r.json()) as { token: string; id: string };
  expect(r.status, JSON.stringify(json)).toBe(201);
  return json;
}

function db(): Database.Database {
  return new Database(join(hub.stateDir, "slicehub.sqlite"), { readonly: true, fileMustExist: true });
}

/** Resident memory of the daemon, in MiB. */
function rssMiB(): number {
  const status = readFileSync(`/proc/${hub.proc!.pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/**
 * A raw request on its own socket whose body is sent in blocks of 64 KiB, up to `total`, as fast as the
 * socket takes them; it stops sending when the answer arrives or the hub closes the connection. Returns
 * the status line's code, how much body was sent, and whether the hub closed the connection.
 */
function streamingPost(path: string, opts: { total: number; headers?: Record<string, string>; chunked?: boolean; delayBodyMs?: number; pauseAfter?: number }): Promise<{ status: number; sent: number; closed: boolean }> {
  return new Promise((resolve) => {
    const u = new URL(hub.url);
    const socket = net.connect(Number(u.port), u.hostname);
    const headers: Record<string, string> = { host: u.host, "content-type": "application/x-www-form-urlencoded", ...opts.headers };
    if (opts.chunked) headers["transfer-encoding"] = "chunked";
    else headers["content-length"] = String(opts.total);
    const head = `POST ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
    const block = Buffer.alloc(64 * 1024, "a");
    const frame = opts.chunked ? Buffer.concat([Buffer.from(`${block.length.toString(16)}\r\n`), block, Buffer.from("\r\n")]) : block;
    let sent = 0;
    let answer = "";
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0), sent, closed });
    };
    const timer = setTimeout(() => finish(false), 30_000);
    socket.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
    });
    socket.on("end", () => finish(true));
    socket.on("close", () => finish(true));
    socket.on("error", () => finish(true));
    let paused = false;
    const pump = () => {
      while (!done && !answer && sent < opts.total) {
        if (opts.pauseAfter !== undefined && !paused && sent >= opts.pauseAfter) {
          paused = true;
          return void setTimeout(pump, 1000);
        }
        sent += block.length;
        if (!socket.write(frame)) return void socket.once("drain", pump);
      }
      if (!done && !answer && opts.chunked) socket.write("0\r\n\r\n");
    };
    socket.write(head);
    setTimeout(pump, opts.delayBodyMs ?? 0);
  });
}

beforeAll(async () => {
  hub = await HubProcess.start({
    config: {
      auth: { kind: "dev", admin_users: ["admin"] },
      spawner: { cmd: [process.execPath, FAKE], args: [], start_timeout_s: 20, named_servers: { limit: 3 } },
      http: { headers_timeout_s: 2 },
    },
  });
  admin = new Browser(hub.url);
  await admin.login("admin");
  alice = new Browser(hub.url);
  await alice.login("alice");
});

afterAll(async () => {
  await hub?.destroy();
});

describe("tokens never mint stronger tokens (finding 1)", () => {
  it("a token that may only make tokens cannot make an unrestricted one, by API or by the tokens page", async () => {
    const narrow = (await sessionToken(admin, "admin", { scopes: ["tokens!user=admin"], note: "narrow" })).token;
    // Asking for everything, explicitly or by default: refused in JupyterHub's words, or held to its own scopes.
    const wide = await api("/hub/api/users/admin/tokens", { method: "POST", token: narrow, body: { scopes: ["admin:users"] } });
    expect(wide.status).toBe(403);
    expect(wide.json.message).toMatch(/^Not assigning requested scopes .*admin:users.* not held by token a\d+ of User admin$/);
    for (const body of [{}, { scopes: ["inherit"] }]) {
      const made = await api("/hub/api/users/admin/tokens", { method: "POST", token: narrow, body });
      expect(made.status, made.text).toBe(201);
      expect(made.json.scopes).toEqual(["tokens!user=admin"]);
      const child = made.json.token as string;
      expect((await api("/hub/api/users/mallory", { method: "POST", token: child, body: { admin: true } })).status).toBe(403);
      expect((await api("/hub/api/user", { token: child })).json.scopes).toEqual(["read:tokens!user=admin", "tokens!user=admin"]);
    }
    // The tokens page, with the token instead of a session, is held to the same rule.
    const page = await fetch(`${hub.url}/hub/token`, {
      method: "POST",
      headers: { authorization: `token ${narrow}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ note: "via page", expires: "never", scope: "full" }),
    });
    expect(page.status).toBe(200);
    const minted = /id="token"[^>]*value="([^"]+)"/.exec(await page.text())?.[1] ?? "";
    expect(minted).not.toBe("");
    expect((await api("/hub/api/user", { token: minted })).json.scopes).toEqual(["read:tokens!user=admin", "tokens!user=admin"]);
    expect((await api("/hub/api/users/mallory", { method: "POST", token: minted, body: { admin: true } })).status).toBe(403);
  });

  it("a token cannot outlive the token that made it", async () => {
    const short = (await sessionToken(admin, "admin", { scopes: ["tokens!user=admin"], expires_in: 120 })).token;
    const forever = await api("/hub/api/users/admin/tokens", { method: "POST", token: short, body: { scopes: ["read:tokens!user=admin"] } });
    expect(forever.status).toBe(201);
    const expires = Date.parse(forever.json.expires_at as string);
    expect(expires).toBeGreaterThan(Date.now());
    expect(expires).toBeLessThanOrEqual(Date.now() + 121_000);
  });

  it("a session may still mint full tokens, and a user only ever for their own scopes", async () => {
    const full = await sessionToken(alice, "alice", {});
    expect((await api("/hub/api/user", { token: full.token })).json.name).toBe("alice");
    const r = await alice.request("/hub/api/users/alice/tokens", { method: "POST", headers: { "x-xsrftoken": await alice.csrf() }, body: JSON.stringify({ scopes: ["servers"] }) });
    expect(r.status).toBe(403);
  });

  it("the tokens page offers narrow presets and they hold", async () => {
    const form = await (await alice.request("/hub/token")).text();
    for (const preset of ["full", "servers", "access", "read"]) expect(form).toContain(`value="${preset}"`);
    const r = await alice.postForm("/hub/token", { _xsrf: await alice.csrf(), note: "notebook only", expires: "1d", scope: "access" });
    expect(r.status).toBe(200);
    const token = /id="token"[^>]*value="([^"]+)"/.exec(await r.text())?.[1] ?? "";
    expect((await api("/hub/api/user", { token })).json.scopes).toEqual(["access:servers!user=alice"]);
    expect((await api("/hub/api/users/alice/server", { method: "POST", token })).status).toBe(403);
    expect(await (await alice.request("/hub/token")).text()).toContain("access:servers");
  });
});

describe("scopes are parsed at the boundary (finding 11)", () => {
  it("refuses malformed and unknown scopes with 400 before storing them", async () => {
    for (const scope of ["access:servers!server=bob", "access:servers!server=", "access:servers!user=", "access:servers!group=x", "access:servers!user=Bob", "no-such-scope", "read:users!user=alice!server=alice/"]) {
      const r = await alice.request("/hub/api/users/alice/tokens", { method: "POST", headers: { "x-xsrftoken": await alice.csrf() }, body: JSON.stringify({ scopes: [scope] }) });
      expect(r.status, scope).toBe(400);
    }
    const q = db();
    try {
      const stored = (q.prepare("SELECT scopes FROM api_tokens").all() as { scopes: string }[]).map((r) => r.scopes).join(" ");
      expect(stored).not.toContain("server=bob");
    } finally {
      q.close();
    }
  });
});

describe("dev login only for this machine, directly (finding 2)", () => {
  it("refuses a login that came through a reverse proxy", async () => {
    const fresh = new Browser(hub.url);
    const proxied: Record<string, string>[] = [{ "x-forwarded-for": "203.0.113.9" }, { forwarded: "for=203.0.113.9" }];
    for (const header of proxied) {
      const form = await fresh.request("/hub/login", { headers: header });
      expect(form.status).toBe(403);
      const post = await fresh.request("/hub/login", { method: "POST", headers: header, body: new URLSearchParams({ username: "admin", _xsrf: "x" }) });
      expect(post.status).toBe(403);
      expect(post.headers.getSetCookie().join(" ")).not.toContain("slicehub-session");
    }
  });
});

describe("request bodies are bounded and read after authentication (finding 3)", () => {
  it("refuses a huge declared body at once, without reading it, and memory stays flat", async () => {
    const before = rssMiB();
    // The answer comes on the headers alone. (A client still sending when the hub closes may see a reset
    // instead of the 413, which is TCP's doing; this one pauses after its headers, like a slow upload.)
    const r = await streamingPost("/hub/api/oauth2/token", { total: 300 * 2 ** 20, delayBodyMs: 1000 });
    expect(r.status).toBe(413);
    expect(r.closed).toBe(true);
    expect(r.sent).toBeLessThan(50 * 2 ** 20);
    expect(rssMiB() - before).toBeLessThan(40);
  });

  it("stops reading a chunked body at the cap (hub routes: 64 KiB; the token endpoint less)", async () => {
    const before = rssMiB();
    // Past the cap the client pauses, as a slow uploader would, so the 413 is not lost to a TCP reset.
    const token = await streamingPost("/hub/api/oauth2/token", { total: 200 * 2 ** 20, chunked: true, pauseAfter: 256 * 1024 });
    expect(token.status).toBe(413);
    expect(token.sent).toBeLessThan(100 * 2 ** 20);
    const narrow = (await sessionToken(admin, "admin", {})).token;
    const apiCall = await streamingPost("/hub/api/users/admin/tokens", { total: 50 * 2 ** 20, chunked: true, pauseAfter: 256 * 1024, headers: { authorization: `token ${narrow}`, "content-type": "application/json" } });
    expect(apiCall.status).toBe(413);
    expect(rssMiB() - before).toBeLessThan(40);
    // Below the cap still works.
    const ok = await api("/hub/api/users/admin/tokens", { method: "POST", token: narrow, body: { note: "x".repeat(900) } });
    expect(ok.status).toBe(201);
  });

  it("answers a client with wrong Basic credentials before it has sent its body", async () => {
    const started = Date.now();
    const r = await new Promise<number>((resolve, reject) => {
      const u = new URL("/hub/api/oauth2/token", hub.url);
      const req = http.request({
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: "POST",
        agent: false,
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": "4000", authorization: `Basic ${Buffer.from("jupyterhub-user-x:wrong").toString("base64")}` },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on("error", reject);
      req.write("grant_type=authorization_code&");
      setTimeout(() => req.destroy(new Error("no answer before the body was complete")), 10_000);
    });
    expect(r).toBe(401);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("a body over the cap on a page form is 413 with a page, not 400 or 500", async () => {
    const r = await alice.request("/hub/token", { method: "POST", body: new URLSearchParams({ _xsrf: await alice.csrf(), note: "x".repeat(70 * 1024), expires: "1d" }) });
    expect(r.status).toBe(413);
    expect(await r.text()).toContain("larger than this hub accepts");
  });
});

describe("slow clients do not keep connections (finding 9; the mechanism is tested in test/proxy/limits.test.ts)", () => {
  it("the daemon closes silent and header-trickling connections after http.headers_timeout_s", async () => {
    const u = new URL(hub.url);
    const sockets: net.Socket[] = [];
    const closed: Promise<number>[] = [];
    const opened = Date.now();
    for (let i = 0; i < 30; i++) {
      // allowHalfOpen: the attacker never closes its side; only the hub destroying the socket ends it.
      const s = net.connect({ port: Number(u.port), host: u.hostname, allowHalfOpen: true });
      s.on("error", () => undefined);
      s.resume();
      sockets.push(s);
      // The hub is done with it when its side ends ("end"): this client keeps its own half open on purpose.
      closed.push(new Promise((resolve) => {
        const done = () => resolve(Date.now() - opened);
        s.once("end", done);
        s.once("close", done);
      }));
    }
    const trickler = sockets[0]!;
    trickler.write("GET /hub/api HTTP/1.1\r\n");
    const drip = setInterval(() => trickler.writable && trickler.write("X-Drip: 1\r\n"), 300);
    try {
      const times = await Promise.race([Promise.all(closed), sleep(15_000).then(() => [] as number[])]);
      expect(times).toHaveLength(30);
      expect(Math.max(...times)).toBeLessThan(10_000);
    } finally {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
    }
    // And the hub still answers.
    expect((await api("/hub/api")).status).toBe(200);
  });
});

describe("the named-server limit holds under concurrent slow requests (finding 5)", () => {
  it("six starts whose bodies arrive late create no more than the limit (3)", async () => {
    const racer = new Browser(hub.url);
    await racer.login("racer");
    const token = (await sessionToken(racer, "racer", {})).token;
    const slowStart = (name: string) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(`/hub/api/users/racer/servers/${name}`, hub.url);
        const body = Buffer.from("{}");
        const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent: false, headers: { authorization: `token ${token}`, "content-type": "application/json", "content-length": String(body.length) } });
        req.on("response", (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.flushHeaders();
        // Every request is past its headers before any body arrives.
        setTimeout(() => req.end(body), 500);
      });
    const statuses = await Promise.all(["s1", "s2", "s3", "s4", "s5", "s6"].map(slowStart));
    expect(statuses.filter((s) => s === 201 || s === 202)).toHaveLength(3);
    expect(statuses.filter((s) => s === 400)).toHaveLength(3);
    const model = await api("/hub/api/users/racer?include_stopped_servers=1", { token });
    expect(Object.keys(model.json.servers as object).filter((n) => n !== "")).toHaveLength(3);
  });
});

describe("OAuth clients are one per server, whatever the names (finding 7)", () => {
  it("alice's server foo and user alice-foo's default server do not share a client, a login or a revocation", async () => {
    const aliceFoo = new Browser(hub.url);
    await aliceFoo.login("alice-foo");
    expect((await alice.postForm("/hub/spawn/alice/foo", { _xsrf: await alice.csrf() })).status).toBe(302);
    expect((await aliceFoo.postForm("/hub/spawn/alice-foo", { _xsrf: await aliceFoo.csrf() })).status).toBe(302);
    // A cookie-authenticated API GET needs the session's CSRF token too.
    const xsrf = new Map([
      [alice, await alice.csrf()],
      [aliceFoo, await aliceFoo.csrf()],
    ]);
    const ready = async (b: Browser, user: string, server: string) => {
      for (let i = 0; i < 200; i++) {
        const m = (await (await b.request(`/hub/api/users/${user}`, { headers: { "x-xsrftoken": xsrf.get(b)! } })).json()) as { servers?: Record<string, { ready: boolean }> };
        if (m.servers?.[server]?.ready) return;
        await sleep(50);
      }
      throw new Error(`${user}/${server} did not become ready`);
    };
    await ready(alice, "alice", "foo");
    await ready(aliceFoo, "alice-foo", "");
    const clients = () => {
      const q = db();
      try {
        return (q.prepare("SELECT id, server_id FROM oauth_clients ORDER BY id").all() as { id: string; server_id: number }[]).filter((c) => c.id.startsWith("jupyterhub-user-alice"));
      } finally {
        q.close();
      }
    };
    expect(clients().map((c) => c.id)).toEqual(["jupyterhub-user-alice-foo", "jupyterhub-user-alice~foo"]);
    // alice logs in to her server foo: a code for her client, exchanged for an OAuth token.
    const auth = await alice.request(`/hub/api/oauth2/authorize?client_id=${encodeURIComponent("jupyterhub-user-alice~foo")}&redirect_uri=${encodeURIComponent("/user/alice/foo/oauth_callback")}&response_type=code`);
    expect(auth.status).toBe(302);
    expect(auth.headers.get("location")).toMatch(/^\/user\/alice\/foo\/oauth_callback\?code=/);
    // Stopping alice-foo's server leaves alice/foo's client (and so the tokens issued through it) alone.
    const stop = await aliceFoo.request("/hub/api/users/alice-foo/server", { method: "DELETE", headers: { "x-xsrftoken": await aliceFoo.csrf() } });
    expect([202, 204], `${stop.status} ${await stop.text()}\n${hub.output.split("\n").filter((l) => l.includes("error")).join("\n")}`).toContain(stop.status);
    for (let i = 0; i < 100 && clients().length > 1; i++) await sleep(50);
    expect(clients().map((c) => c.id)).toEqual(["jupyterhub-user-alice~foo"]);
    const again = await alice.request(`/hub/api/oauth2/authorize?client_id=${encodeURIComponent("jupyterhub-user-alice~foo")}&redirect_uri=${encodeURIComponent("/user/alice/foo/oauth_callback")}&response_type=code`);
    expect(again.status).toBe(302);
  });
});

describe("a GET never starts a server (finding 8)", () => {
  it("a cross-site link to /hub/spawn/... shows the start form and creates nothing", async () => {
    // node:http, not fetch: fetch replaces Sec-Fetch-Mode with its own "cors", which is no navigation.
    const u = new URL(hub.url);
    const { status, page } = await new Promise<{ status: number; page: string }>((resolve, reject) => {
      const headers = { cookie: alice.cookies.map((c) => `${c.name}=${c.value}`).join("; "), "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" };
      const req = http.request({ host: u.hostname, port: u.port, path: "/hub/spawn/alice/planted?next=/user/alice/planted/", headers, agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, page: body }));
      });
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(page).toContain('method="post"');
    expect(page).toContain('action="/hub/spawn/alice/planted"');
    const model = (await (await alice.request("/hub/api/users/alice?include_stopped_servers=1", { headers: { "x-xsrftoken": await alice.csrf() } })).json()) as { servers: Record<string, unknown> };
    expect(model.servers.planted).toBeUndefined();
  });
});

describe("malformed input gets a clear 4xx, never a 500 or an error log line (finding 10)", () => {
  it("bad percent-encoding, bad Basic credentials and absurd numbers", async () => {
    const errorsBefore = hub.output.split("\n").filter((l) => l.includes('"level":"error"')).length;
    const raw = (path: string, headers: Record<string, string> = {}, method = "GET", body?: string) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(hub.url);
        const req = http.request({ host: u.hostname, port: u.port, path, method, headers, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end(body);
      });
    const cookie = (await alice.request("/hub/home")).ok ? alice.cookies.map((c) => `${c.name}=${c.value}`).join("; ") : "";
    for (const path of ["/hub/user/%ff/", "/hub/user/%ff/x", "/hub/spawn/%ff", "/hub/spawn-pending/alice/%ff", "/hub/api/users/%ff", "/user/%ff/"]) {
      const status = await raw(path, { cookie });
      expect(status, path).toBeGreaterThanOrEqual(300);
      expect(status, path).toBeLessThan(500);
    }
    const badBasic = `Basic ${Buffer.from("%zz:%zz").toString("base64")}`;
    expect(await raw("/hub/api/oauth2/token", { authorization: badBasic, "content-type": "application/x-www-form-urlencoded" }, "POST", "grant_type=authorization_code")).toBe(401);
    expect(await raw("/hub/api/oauth2/token", { authorization: "Basic !!!", "content-type": "application/x-www-form-urlencoded" }, "POST", "grant_type=authorization_code")).toBe(401);
    const adminToken = (await sessionToken(admin, "admin", {})).token;
    for (const q of ["offset=99999999999999999999", "limit=99999999999999999999", "offset=-1", "offset=1e3", "limit=abc"]) {
      const r = await api(`/hub/api/users?${q}`, { token: adminToken });
      expect(r.status, q).toBe(400);
      expect(String(r.json.message), q).toMatch(/offset|limit/);
    }
    await sleep(200);
    const errorsAfter = hub.output.split("\n").filter((l) => l.includes('"level":"error"')).length;
    expect(errorsAfter).toBe(errorsBefore);
  });
});

describe("smaller holes (finding 12)", () => {
  it("hub pages refuse to be framed", async () => {
    for (const path of ["/hub/home", "/hub/token", "/hub/login"]) {
      const r = await alice.request(path);
      expect(r.headers.get("content-security-policy"), path).toContain("frame-ancestors 'none'");
      expect(r.headers.get("x-frame-options"), path).toBe("DENY");
    }
  });

  it("user_options are capped", async () => {
    const token = (await sessionToken(alice, "alice", {})).token;
    const r = await api("/hub/api/users/alice/servers/big", { method: "POST", token, body: { blob: "x".repeat(10_000) } });
    expect(r.status).toBe(400);
    expect(r.json.message).toMatch(/user_options is too large/);
  });

  it("a user cannot pile up pending OAuth codes", async () => {
    const codes = new Browser(hub.url);
    await codes.login("coder");
    expect((await codes.postForm("/hub/spawn/coder", { _xsrf: await codes.csrf() })).status).toBe(302);
    const xsrf = await codes.csrf();
    for (let i = 0; i < 100; i++) {
      const m = (await (await codes.request("/hub/api/users/coder", { headers: { "x-xsrftoken": xsrf } })).json()) as { servers?: Record<string, { ready: boolean }> };
      if (m.servers?.[""]?.ready) break;
      await sleep(50);
    }
    for (let i = 0; i < 60; i++) {
      const r = await codes.request(`/hub/api/oauth2/authorize?client_id=jupyterhub-user-coder&redirect_uri=${encodeURIComponent("/user/coder/oauth_callback")}&response_type=code`);
      expect(r.status).toBe(302);
    }
    const q = db();
    try {
      const n = (q.prepare("SELECT count(*) AS n FROM oauth_codes c JOIN users u ON u.id = c.user_id WHERE u.name = 'coder'").get() as { n: number }).n;
      expect(n).toBeLessThanOrEqual(20);
    } finally {
      q.close();
    }
  });
});
