// Wire conformance of the hub API, the OAuth provider and the routing with JupyterHub, as written down in
// /work/shared/spec/jupyterhub-compat.md (section numbers below refer to it). The real daemon runs as a
// subprocess; user servers are a fake (test/e2e/fixtures/fake-singleuser.mjs) that starts in milliseconds
// and echoes what the proxy forwards, so this file is about the hub's side of the contract only.
//
// The tests in a describe block run in order and share one hub; later blocks rely on the servers started by
// earlier ones (noted where it matters).
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, CLI, HubProcess, groupAlive, readSse } from "./harness.js";

const FAKE = join(import.meta.dirname, "fixtures/fake-singleuser.mjs");
const VERSION = "3.0.0"; // the config default
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const PAGINATION = "application/jupyterhub-pagination+json";
/** Set in the hub's environment; a user server must never see it (spec §1.1: never pass hub secrets). */
const HUB_ONLY_ENV = "SLICEHUB_E2E_HUB_SECRET";

let hub: HubProcess;

// ---------------------------------------------------------------------------------------------- helpers

/** Every response that does not come from a user server must carry X-JupyterHub-Version (spec §7.1). */
function checkVersionHeader(what: string, headers: Headers): void {
  if (headers.has("x-fake-singleuser")) return;
  expect(headers.get("x-jupyterhub-version"), `X-JupyterHub-Version on ${what}`).toBe(VERSION);
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // Parsed JSON, loosely typed on purpose: the tests assert its shape.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

interface ReqOpts {
  method?: string;
  token?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is. */
  raw?: string;
  headers?: Record<string, string>;
}

/** One request with fetch, no redirects followed, body read and parsed when it is JSON. */
async function req(path: string, opts: ReqOpts = {}): Promise<Reply> {
  const headers = new Headers(opts.headers);
  if (opts.token) headers.set("authorization", `token ${opts.token}`);
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers.set("content-type", "application/json");
  }
  const url = new URL(path, hub.url);
  const res = await fetch(url, { method: opts.method ?? "GET", headers, body, redirect: "manual" });
  const text = await res.text();
  checkVersionHeader(`${opts.method ?? "GET"} ${url.pathname}`, res.headers);
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A JupyterHub API error: the status, JSON content type and exactly {status, message}. */
function expectApiError(r: Reply, status: number, message?: string | RegExp): void {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get("content-type")).toMatch(/^application\/json/);
  expect(r.json).toEqual({ status, message: message === undefined ? expect.any(String) : typeof message === "string" ? message : expect.stringMatching(message) });
}

/** node:http, for what fetch will not send as given (a Host header). */
function rawRequest(path: string, headers: Record<string, string>, method = "GET", body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: "127.0.0.1", port: hub.port, path, method, headers, agent: false }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (data += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    r.on("error", reject);
    r.setTimeout(10_000, () => r.destroy(new Error("timeout")));
    r.end(body);
  });
}

/** A Browser whose every response is checked for the version header. */
class CheckedBrowser extends Browser {
  override async request(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await super.request(path, init);
    checkVersionHeader(`${init.method ?? "GET"} ${path} (browser)`, res.headers);
    return res;
  }
}

async function browserAs(name: string): Promise<CheckedBrowser> {
  const b = new CheckedBrowser(hub.url);
  await b.login(name);
  return b;
}

/** `slicehub token NAME --create` against the running hub's database, as an admin would. */
async function cliToken(name: string, ...extra: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, "token", name, "--create", "--config", hub.configPath, ...extra], { timeout: 20_000 });
  const token = stdout.trim();
  expect(token).toMatch(/^\S{20,}$/);
  return token;
}

/** The environment of a running server's process, read from /proc (pid from the admin view's `state`). */
async function serverEnv(admin: string, user: string, server = ""): Promise<Record<string, string>> {
  const r = await req(`/hub/api/users/${user}`, { token: admin });
  const pid = r.json.servers[server]?.state?.pid as number | undefined;
  expect(pid, `pid of ${user}/${server} in ${r.text}`).toBeGreaterThan(1);
  const env: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Wait for a daemon log line that appears after `since` (an offset into hub.output). */
async function waitForNewLog(re: RegExp, since: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(`log ${re}`, async () => (re.test(hub.output.slice(since)) ? true : undefined), timeoutMs);
}

const SERVER_MODEL_KEYS = ["name", "last_activity", "started", "pending", "ready", "stopped", "url", "user_options", "progress_url"];

// ------------------------------------------------------------------------------------------------ setup

const tokens = { alice: "", bob: "", carol: "", admin: "", culler: "" };
let alice: CheckedBrowser;
let admin: CheckedBrowser;

beforeAll(async () => {
  // The daemon inherits this process's environment.
  process.env[HUB_ONLY_ENV] = "do-not-leak";
  try {
    hub = await HubProcess.start({
      config: {
        auth: { kind: "dev", admin_users: ["admin"] },
        // Named servers start disabled; a test turns them on by editing the config (live reload).
        spawner: { cmd: [process.execPath, FAKE], args: [], start_timeout_s: 20, stop_timeout_s: 5, named_servers: { limit: 0 } },
      },
    });
  } finally {
    delete process.env[HUB_ONLY_ENV];
  }
  tokens.alice = await cliToken("alice");
  tokens.bob = await cliToken("bob");
  tokens.carol = await cliToken("carol");
  alice = await browserAs("alice");
  admin = await browserAs("admin");
  // The admin's token is made the way a person would: in the browser, cookie + XSRF header.
  const made = await admin.request("/hub/api/users/admin/tokens", {
    method: "POST",
    headers: { "content-type": "application/json", "x-xsrftoken": await admin.csrf() },
    body: JSON.stringify({ note: "conformance admin" }),
  });
  expect(made.status).toBe(201);
  tokens.admin = ((await made.json()) as { token: string }).token;
  // The idle culler's token: exactly the scopes its README asks for, without admin:users.
  const culler = await req("/hub/api/users/admin/tokens", {
    method: "POST",
    token: tokens.admin,
    body: { note: "idle culler", scopes: ["list:users", "read:users:activity", "read:servers", "delete:servers"] },
  });
  expect(culler.status, culler.text).toBe(201);
  tokens.culler = culler.json.token;
}, 60_000);

afterAll(async () => {
  await hub?.destroy();
});

// --------------------------------------------------------------------------------------------- §2.1, §4.2

describe("version endpoint (§2.1, §4.2)", () => {
  it("GET /hub/api and /hub/api/ answer 200 {version} with X-JupyterHub-Version, no auth needed", async () => {
    for (const path of ["/hub/api", "/hub/api/"]) {
      const r = await req(path);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toMatch(/^application\/json/);
      expect(r.json).toEqual({ version: VERSION });
      expect(r.headers.get("x-jupyterhub-version")).toBe(VERSION);
    }
  });

  it("every hub response carries the header: errors, redirects, pages, OAuth (streams: see §5.2 below)", async () => {
    // req() checks the header on every call; these are the odd corners.
    await req("/hub/api/nonexistent", { token: tokens.alice });
    await req("/hub/api/user");
    await req("/hub");
    await req("/");
    await req("/hub/login");
    await req("/hub/static/style.css");
    await req("/hub/api/oauth2/token", { method: "POST", raw: "{}", headers: { "content-type": "application/json" } });
    await req("/user/nobody/tree");
    await req("/user/nobody/api/x", { method: "POST" });
    await alice.request("/hub/api/oauth2/authorize?client_id=nope");
    await alice.request("/hub/home");
    await alice.request("/hub/no-such-page");
  });

  it("unknown API paths are a JSON 404", async () => {
    expectApiError(await req("/hub/api/nonexistent", { token: tokens.alice }), 404);
  });
});

// ------------------------------------------------------------------------------------------------ §2.3

describe("GET /hub/api/user (§2.3, §7.1)", () => {
  it("accepts `token` and `Bearer` in any case", async () => {
    for (const scheme of ["token", "Token", "TOKEN", "bearer", "Bearer", "BEARER"]) {
      const r = await req("/hub/api/user", { headers: { authorization: `${scheme} ${tokens.alice}` } });
      expect(r.status, scheme).toBe(200);
      expect(r.json.name).toBe("alice");
    }
  });

  it("returns a model with name, kind, admin, groups, session_id and expanded, concrete scopes", async () => {
    const r = await req("/hub/api/user", { token: tokens.alice });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ kind: "user", name: "alice", admin: false, groups: [], session_id: null });
    const scopes = r.json.scopes as string[];
    expect(scopes).toEqual([...scopes].sort());
    expect(scopes).toEqual(expect.arrayContaining(["access:servers!user=alice", "users:activity!user=alice", "read:users:name!user=alice", "servers!user=alice"]));
    // Expanded: sub-scopes are listed, and every filter names someone (never a bare `!user`).
    expect(scopes).toContain("read:users:activity!user=alice");
    for (const s of scopes) expect(s).toMatch(/^[a-z:_]+(!(user|server)=[^!\s]+)?$/);
    expect(scopes.some((s) => !s.includes("!"))).toBe(false); // a plain user holds nothing unfiltered
  });

  it("an admin's model says admin and holds unfiltered scopes", async () => {
    const r = await req("/hub/api/user", { token: tokens.admin });
    expect(r.json).toMatchObject({ name: "admin", admin: true });
    expect(r.json.scopes).toEqual(expect.arrayContaining(["admin:users", "list:users", "access:servers"]));
  });

  it("cookie-authenticated, session_id is the browser's jupyterhub-session-id", async () => {
    const res = await alice.request("/hub/api/user");
    expect(res.status).toBe(200);
    const model = (await res.json()) as { name: string; session_id: string };
    expect(model.name).toBe("alice");
    expect(model.session_id).toMatch(/^[0-9a-f]{32}$/);
    expect(model.session_id).toBe(alice.cookie("jupyterhub-session-id"));
  });

  it("answers exactly 403 {status, message} for no credentials and unknown or malformed tokens", async () => {
    expectApiError(await req("/hub/api/user"), 403);
    expectApiError(await req("/hub/api/user", { token: "no-such-token" }), 403);
    expectApiError(await req("/hub/api/user", { headers: { authorization: `Basic ${Buffer.from("alice:x").toString("base64")}` } }), 403);
    expectApiError(await req("/hub/api/user", { headers: { authorization: `token ${tokens.alice} extra` } }), 403);
    // The hub API does not take ?token= (only single-user servers do, §7.4).
    expectApiError(await req(`/hub/api/user?token=${tokens.alice}`), 403);
  });

  it("answers 403 for an expired token", async () => {
    const t = await cliToken("alice", "--expires-in", "1");
    expect((await req("/hub/api/user", { token: t })).status).toBe(200);
    await sleep(1100);
    expectApiError(await req("/hub/api/user", { token: t }), 403);
  });
});

// ------------------------------------------------------------------------------------------ §5.1, §5.2

describe("starting and stopping servers (§5.1) and progress (§5.2)", () => {
  it("POST …/server starts the default server: 201 with an empty body once ready", async () => {
    const r = await req("/hub/api/users/alice/server", { method: "POST", token: tokens.alice });
    expect(r.status, r.text).toBe(201);
    expect(r.text).toBe("");
    const model = await req("/hub/api/users/alice", { token: tokens.alice });
    expect(model.json.server).toBe("/user/alice/");
    expect(model.json.servers[""]).toMatchObject({ name: "", ready: true, stopped: false, pending: null, url: "/user/alice/", user_options: {} });
  });

  it("starting it again is 400 '<name> is already running'", async () => {
    expectApiError(await req("/hub/api/users/alice/server", { method: "POST", token: tokens.alice }), 400, "alice is already running");
  });

  it("another user's token may not start it (403), an unknown user is 404", async () => {
    expectApiError(await req("/hub/api/users/alice/server", { method: "POST", token: tokens.bob }), 403);
    expectApiError(await req("/hub/api/users/nobody/server", { method: "POST", token: tokens.admin }), 404);
  });

  it("gives the server the environment of §1.2, without the hub's own secrets", async () => {
    const env = await serverEnv(tokens.admin, "alice");
    expect(env.JUPYTERHUB_API_TOKEN).toMatch(/^\S{20,}$/);
    expect(env.JPY_API_TOKEN).toBe(env.JUPYTERHUB_API_TOKEN);
    expect(env).toMatchObject({
      JUPYTERHUB_CLIENT_ID: "jupyterhub-user-alice",
      JUPYTERHUB_HOST: "",
      JUPYTERHUB_OAUTH_CALLBACK_URL: "/user/alice/oauth_callback",
      JUPYTERHUB_USER: "alice",
      JUPYTERHUB_SERVER_NAME: "",
      JUPYTERHUB_API_URL: `${hub.url}/hub/api`,
      JUPYTERHUB_ACTIVITY_URL: `${hub.url}/hub/api/users/alice/activity`,
      JUPYTERHUB_BASE_URL: "/",
      JUPYTERHUB_SERVICE_PREFIX: "/user/alice/",
    });
    expect(env.JUPYTERHUB_SERVICE_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/user\/alice\/$/);
    for (const k of ["JUPYTERHUB_OAUTH_ACCESS_SCOPES", "JUPYTERHUB_OAUTH_SCOPES"]) {
      expect(JSON.parse(env[k]!), k).toEqual(["access:servers!server=alice/", "access:servers!user=alice"]);
    }
    expect(JSON.parse(env.JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES!)).toEqual([]);
    expect(env[HUB_ONLY_ENV]).toBeUndefined();
  });

  it("progress of a running server is a single ready event", async () => {
    const res = await fetch(`${hub.url}/hub/api/users/alice/server/progress`, { headers: { authorization: `token ${tokens.alice}` } });
    expect(res.status).toBe(200);
    checkVersionHeader("progress", res.headers);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const events = await readSse(res, 10_000);
    expect(events).toEqual([expect.objectContaining({ progress: 100, ready: true, message: "Server ready at /user/alice/", url: "/user/alice/" })]);
  });

  it("progress of a pending spawn starts with 'Server requested' and ends ready; a second POST meanwhile is 202", async () => {
    expect((await req("/hub/api/users/slow-poke", { method: "POST", token: tokens.admin })).status).toBe(201);
    const start = req("/hub/api/users/slow-poke/server", { method: "POST", token: tokens.admin });
    // slow-* fake servers take 1.5 s to listen, so the spawn is pending for a while.
    await waitFor("slow-poke pending", async () => {
      const r = await req("/hub/api/users/slow-poke", { token: tokens.admin });
      return r.json.servers?.[""]?.pending === "spawn" ? true : undefined;
    });
    const pendingModel = await req("/hub/api/users/slow-poke", { token: tokens.admin });
    expect(pendingModel.json).toMatchObject({ pending: "spawn", server: null });
    expect(pendingModel.json.servers[""]).toMatchObject({ pending: "spawn", ready: false, stopped: false });

    const again = await req("/hub/api/users/slow-poke/server", { method: "POST", token: tokens.admin });
    expect(again.status).toBe(202);

    const res = await fetch(`${hub.url}/hub/api/users/slow-poke/server/progress`, { headers: { authorization: `token ${tokens.admin}` } });
    expect(res.status).toBe(200);
    const events = await readSse(res, 20_000);
    expect(events[0]).toEqual({ progress: 0, message: "Server requested" });
    const last = events.at(-1)!;
    expect(last).toMatchObject({ progress: 100, ready: true, message: "Server ready at /user/slow-poke/", url: "/user/slow-poke/" });
    expect(last.html_message).toContain('<a href="/user/slow-poke/">');
    for (const ev of events.slice(0, -1)) {
      expect(ev).not.toHaveProperty("ready"); // the hub strips `ready` from intermediate events
      expect(ev.progress as number).toBeGreaterThanOrEqual(0);
      expect(ev.progress as number).toBeLessThanOrEqual(100);
      expect(typeof ev.message).toBe("string");
    }
    expect((await start).status).toBe(201);
  });

  it("progress of a stopped server that did not fail is 400 '<name> is not starting...'", async () => {
    expect((await req("/hub/api/users/bob/server", { method: "POST", token: tokens.bob })).status).toBe(201);
    expect((await req("/hub/api/users/bob/server", { method: "DELETE", token: tokens.bob })).status).toBe(204);
    expectApiError(await req("/hub/api/users/bob/server/progress", { token: tokens.bob }), 400, "bob is not starting...");
  });

  it("a server whose command exits 1 ends the stream with failed: true and 'Spawn failed: …' with status and output", async () => {
    expect((await req("/hub/api/users/fail-1", { method: "POST", token: tokens.admin })).status).toBe(201);
    const r = await req("/hub/api/users/fail-1/server", { method: "POST", token: tokens.admin });
    expect(r.status).not.toBe(201);
    expectApiError(r, 500);
    const res = await fetch(`${hub.url}/hub/api/users/fail-1/server/progress`, { headers: { authorization: `token ${tokens.admin}` } });
    expect(res.status).toBe(200);
    const events = await readSse(res, 10_000);
    expect(events[0]).toEqual({ progress: 0, message: "Server requested" });
    const last = events.at(-1)!;
    expect(last).toMatchObject({ progress: 100, failed: true });
    expect(last.message).toMatch(/^Spawn failed: /);
    expect(last.message).toContain("exited with status 1");
    expect(last.message).toContain("fake-singleuser: refusing to start for fail-1");
    expect(events.some((e) => e.ready)).toBe(false);
    // The failed server is stopped, not pending; only with include_stopped_servers is it listed (§4.3).
    const model = await req("/hub/api/users/fail-1", { token: tokens.admin });
    expect(model.json).toMatchObject({ pending: null, server: null, servers: {} });
    const withStopped = await req("/hub/api/users/fail-1?include_stopped_servers=1", { token: tokens.admin });
    expect(withStopped.json.servers[""]).toMatchObject({ started: null, ready: false, stopped: true, pending: null, state: {} });
  });

  it("named servers: 400 while the limit is 0; after a config edit 201 with user_options kept, 400 over the limit", async () => {
    expectApiError(await req("/hub/api/users/alice/servers/foo", { method: "POST", token: tokens.alice }), 400);

    const since = hub.output.length;
    const spawner = hub.config.spawner as Record<string, unknown>;
    hub.writeConfig({ ...hub.config, spawner: { ...spawner, named_servers: { limit: 2 } } });
    await waitForNewLog(/config reloaded/, since);

    const foo = await req("/hub/api/users/alice/servers/foo", { method: "POST", token: tokens.alice, body: { foo_option: "bar" } });
    expect(foo.status, foo.text).toBe(201);
    expect((await req("/hub/api/users/alice/servers/bar", { method: "POST", token: tokens.alice })).status).toBe(201);
    expectApiError(await req("/hub/api/users/alice/servers/baz", { method: "POST", token: tokens.alice }), 400);

    const model = await req("/hub/api/users/alice", { token: tokens.alice });
    expect(model.json.servers.foo).toMatchObject({
      name: "foo",
      ready: true,
      stopped: false,
      pending: null,
      url: "/user/alice/foo/",
      user_options: { foo_option: "bar" },
      progress_url: "/hub/api/users/alice/servers/foo/progress",
    });
    expect(model.json.servers.bar.user_options).toEqual({});
    // The named server got its own identity (§1.2).
    const env = await serverEnv(tokens.admin, "alice", "foo");
    expect(env).toMatchObject({
      JUPYTERHUB_CLIENT_ID: "jupyterhub-user-alice~foo",
      JUPYTERHUB_SERVER_NAME: "foo",
      JUPYTERHUB_SERVICE_PREFIX: "/user/alice/foo/",
      JUPYTERHUB_OAUTH_CALLBACK_URL: "/user/alice/foo/oauth_callback",
      JUPYTERHUB_ACTIVITY_URL: `${hub.url}/hub/api/users/alice/activity`,
    });
    expect(JSON.parse(env.JUPYTERHUB_OAUTH_ACCESS_SCOPES!)).toEqual(["access:servers!server=alice/foo", "access:servers!user=alice"]);
  });

  it("DELETE a named server with {remove: true} stops it and deletes the record (204)", async () => {
    // As the culler sends it: its Accept header leaks onto DELETEs.
    const r = await req("/hub/api/users/alice/servers/foo", { method: "DELETE", token: tokens.culler, body: { remove: true }, headers: { accept: PAGINATION } });
    expect(r.status, r.text).toBe(204);
    const model = await req("/hub/api/users/alice?include_stopped_servers=1", { token: tokens.admin });
    expect(model.json.servers).not.toHaveProperty("foo");
  });

  it("DELETE a named server without remove stops it and keeps the record (204)", async () => {
    expect((await req("/hub/api/users/alice/servers/bar", { method: "DELETE", token: tokens.alice })).status).toBe(204);
    expect((await req("/hub/api/users/alice", { token: tokens.alice })).json.servers).not.toHaveProperty("bar");
    const withStopped = await req("/hub/api/users/alice?include_stopped_servers=1", { token: tokens.alice });
    expect(withStopped.json.servers.bar).toMatchObject({ name: "bar", ready: false, stopped: true, started: null });
  });

  it("DELETE of an unknown named server is 404; remove on the default server is 400", async () => {
    expectApiError(await req("/hub/api/users/alice/servers/nope", { method: "DELETE", token: tokens.alice }), 404);
    expectApiError(await req("/hub/api/users/alice/server", { method: "DELETE", token: tokens.alice, body: { remove: true } }), 400);
    // …and alice's default server is still running.
    expect((await req("/hub/api/users/alice", { token: tokens.alice })).json.server).toBe("/user/alice/");
  });

  // BUG (see report): the `remove` check comes after the "no such server" shortcut, so for a user whose
  // default server was never started the answer is 204 instead of 400.
  it("remove on the default server is 400 even when the user never started it", async () => {
    expectApiError(await req("/hub/api/users/carol/server", { method: "DELETE", token: tokens.carol, body: { remove: true } }), 400);
  });

  it("DELETE of a server that is already stopped is 204", async () => {
    expect((await req("/hub/api/users/bob/server", { method: "DELETE", token: tokens.bob })).status).toBe(204);
    expect((await req("/hub/api/users/carol/server", { method: "DELETE", token: tokens.carol })).status).toBe(204);
  });
});

// ------------------------------------------------------------------------------------------- §2.2, §7.1

describe("the server's own token and activity reports (§2.2, §7.1)", () => {
  // Needs alice's default server, started above.
  let serverToken = "";
  beforeAll(async () => {
    serverToken = (await serverEnv(tokens.admin, "alice")).JUPYTERHUB_API_TOKEN!;
  });

  const stamp = (ms: number) => new Date(ms).toISOString().replace("Z", "000Z");
  const activity = (token: string, body: unknown, user = "alice") =>
    req(`/hub/api/users/${user}/activity`, { method: "POST", token, raw: body === undefined ? undefined : JSON.stringify(body), headers: { "content-type": "application/json" } });
  const MSG = "body must contain at least one of `last_activity` or `servers`";

  it("GET /hub/api/user with it: alice, session_id null, users:activity and access to exactly her server", async () => {
    const r = await req("/hub/api/user", { token: serverToken });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ kind: "user", name: "alice", admin: false, groups: [], session_id: null });
    expect(r.json).toHaveProperty("last_activity");
    expect(r.json.scopes).toEqual(expect.arrayContaining(["users:activity!user=alice", "access:servers!server=alice/", "read:users:name!user=alice"]));
    expect(r.json.scopes).not.toContain("access:servers!user=alice");
    expect((r.json.scopes as string[]).some((s) => s.startsWith("servers") || s.startsWith("tokens"))).toBe(false);
  });

  it("it cannot do more than that: no tokens, no server control, no other users", async () => {
    expectApiError(await req("/hub/api/users/alice/tokens", { method: "POST", token: serverToken, body: {} }), 403);
    expectApiError(await req("/hub/api/users/alice/tokens", { token: serverToken }), 403);
    expectApiError(await req("/hub/api/users/alice/server", { method: "DELETE", token: serverToken }), 403);
    expectApiError(await req("/hub/api/users/alice/servers/x", { method: "POST", token: serverToken }), 403);
    expectApiError(await req("/hub/api/users/bob", { token: serverToken }), 403);
    // Like the real hub: without any list:users scope the list is refused, not empty.
    expectApiError(await req("/hub/api/users", { token: serverToken }), 403);
  });

  it("accepts the exact report the single-user server sends: 200, empty body", async () => {
    const t = stamp(Date.now() - 5000).replace(/000Z$/, "840Z");
    const r = await activity(serverToken, { servers: { "": { last_activity: t } }, last_activity: t });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe("");
  });

  it("400 for an empty body, missing keys, bad shapes, unknown servers and bad timestamps", async () => {
    const now = stamp(Date.now());
    expectApiError(await activity(serverToken, undefined), 400, MSG);
    expectApiError(await activity(serverToken, {}), 400, MSG);
    expectApiError(await activity(serverToken, { foo: now }), 400, MSG);
    expectApiError(await activity(serverToken, [now]), 400);
    expectApiError(await activity(serverToken, { servers: { "": {} } }), 400);
    expectApiError(await activity(serverToken, { servers: { "": now } }), 400);
    expectApiError(await activity(serverToken, { servers: { nope: { last_activity: now } } }), 400);
    expectApiError(await activity(serverToken, { last_activity: "yesterday" }), 400);
    expectApiError(await activity(serverToken, { servers: { "": { last_activity: "2026-13-45T00:00:00Z" } } }), 400);
    expectApiError(await req("/hub/api/users/alice/activity", { method: "POST", token: serverToken, raw: "{not json", headers: { "content-type": "application/json" } }), 400);
  });

  it("400 for a timestamp more than 59 minutes in the future; 30 minutes ahead is fine", async () => {
    expectApiError(await activity(serverToken, { last_activity: stamp(Date.now() + 61 * 60_000) }), 400);
    expectApiError(await activity(serverToken, { servers: { "": { last_activity: stamp(Date.now() + 61 * 60_000) } } }), 400);
    expect((await activity(serverToken, { last_activity: stamp(Date.now() + 30 * 60_000) })).status).toBe(200);
  });

  it("a stopped but existing server is a valid key", async () => {
    // alice/bar was stopped (record kept) above.
    expect((await activity(serverToken, { servers: { bar: { last_activity: stamp(Date.now()) } } })).status).toBe(200);
  });

  it("403 for another user's token, 404 for an unknown user", async () => {
    const now = stamp(Date.now());
    expectApiError(await activity(tokens.bob, { last_activity: now }), 403);
    expectApiError(await activity(serverToken, { last_activity: now }, "bob"), 403);
    expectApiError(await activity(tokens.admin, { last_activity: now }, "nobody"), 404);
  });

  it("last_activity only moves forward, for the user and the server; zones are honoured, naive is UTC", async () => {
    // Ahead of anything else that may touch alice (the start, the proxy), within the 59-minute window.
    const base = Math.floor(Date.now() / 1000) * 1000 + 40 * 60_000;
    const get = async () => {
      const r = await req("/hub/api/users/alice", { token: tokens.admin });
      return { user: r.json.last_activity as string, server: r.json.servers[""].last_activity as string };
    };
    expect((await activity(serverToken, { servers: { "": { last_activity: stamp(base) } }, last_activity: stamp(base) })).status).toBe(200);
    expect(await get()).toEqual({ user: stamp(base), server: stamp(base) });

    // Older reports change nothing.
    expect((await activity(serverToken, { servers: { "": { last_activity: stamp(base - 60_000) } }, last_activity: stamp(base - 60_000) })).status).toBe(200);
    expect(await get()).toEqual({ user: stamp(base), server: stamp(base) });

    // +01:00 and naive timestamps, both one and two minutes later in UTC.
    const later = new Date(base + 60_000 + 3_600_000).toISOString().replace("Z", "+01:00");
    expect((await activity(serverToken, { last_activity: later })).status).toBe(200);
    expect((await get()).user).toBe(stamp(base + 60_000));
    const naive = new Date(base + 120_000).toISOString().replace("Z", "");
    expect((await activity(serverToken, { servers: { "": { last_activity: naive } } })).status).toBe(200);
    expect((await get()).server).toBe(stamp(base + 120_000));
    for (const v of Object.values(await get())) expect(v).toMatch(TIMESTAMP);
  });
});

// ------------------------------------------------------------------------------------------------- §3

describe("OAuth provider (§3)", () => {
  // Needs alice's default server (its client jupyterhub-user-alice is registered at spawn).
  const CLIENT = "jupyterhub-user-alice";
  const REDIRECT = "/user/alice/oauth_callback";
  let secret = "";
  beforeAll(async () => {
    secret = (await serverEnv(tokens.admin, "alice")).JUPYTERHUB_API_TOKEN!;
  });

  const authorizePath = (params: Record<string, string>) => `/hub/api/oauth2/authorize?${new URLSearchParams(params).toString()}`;
  const standard = (state = "s") => ({ client_id: CLIENT, redirect_uri: REDIRECT, response_type: "code", state });

  async function code(b: Browser, extra: Record<string, string> = {}): Promise<string> {
    const r = await b.request(authorizePath({ ...standard(), ...extra }));
    expect(r.status, await r.text()).toBe(302);
    const c = new URL(r.headers.get("location")!, hub.url).searchParams.get("code");
    expect(c).toBeTruthy();
    return c!;
  }

  /** The single-user server's token request: form body, secret in the form, its own token in the header too. */
  const exchange = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    req("/hub/api/oauth2/token", {
      method: "POST",
      raw: new URLSearchParams(fields).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `token ${secret}`, ...headers },
    });
  const grant = (c: string, extra: Record<string, string> = {}) =>
    exchange({ client_id: CLIENT, client_secret: secret, grant_type: "authorization_code", code: c, redirect_uri: REDIRECT, ...extra });

  it("without a hub login: 302 /hub/login?next=<the authorize URL>, and logging in leads back to it", async () => {
    const path = authorizePath(standard());
    const r = await req(path);
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe(`/hub/login?next=${encodeURIComponent(path)}`);

    const b = new CheckedBrowser(hub.url);
    const page = await (await b.request(r.headers.get("location")!)).text();
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page)![1]!;
    const next = /name="next" value="([^"]+)"/.exec(page)![1]!.replaceAll("&amp;", "&");
    expect(next).toBe(path);
    const login = await b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "alice", _xsrf: xsrf, next }) });
    expect(login.status).toBe(302);
    expect(login.headers.get("location")).toBe(path);
    const again = await b.request(path);
    expect(again.status).toBe(302);
    expect(again.headers.get("location")).toMatch(/^\/user\/alice\/oauth_callback\?/);
  });

  it("400 without redirect for an unknown client and for a redirect_uri that is not string-equal", async () => {
    for (const params of [
      { ...standard(), client_id: "jupyterhub-user-nobody" },
      { ...standard(), redirect_uri: "/user/alice/other" },
      { ...standard(), redirect_uri: "/user/alice/oauth_callback/" },
      { ...standard(), redirect_uri: `${hub.url}/user/alice/oauth_callback` },
    ]) {
      const r = await alice.request(authorizePath(params));
      expect(r.status, JSON.stringify(params)).toBe(400);
      expect(r.headers.get("location")).toBeNull();
    }
  });

  it("302 to the redirect_uri with a code and the state echoed exactly", async () => {
    const states = [
      "eyJ1dWlkIjogIjBmMTJhIiwgIm5leHRfdXJsIjogIi91c2VyL2FsaWNlL3RyZWUifQ", // 3.x: b64url JSON, unpadded
      "8Y2fpOnRwMgtCBgBtxnp6Q", // 5.x: opaque id
      "a b+c/=?&%é", // anything at all
    ];
    for (const state of states) {
      const r = await alice.request(authorizePath(standard(state)));
      expect(r.status).toBe(302);
      const loc = r.headers.get("location")!;
      expect(loc.startsWith(`${REDIRECT}?`)).toBe(true);
      const q = new URL(loc, hub.url).searchParams;
      expect(q.get("state")).toBe(state);
      expect(q.get("code")).toMatch(/^\S{16,}$/);
    }
    // Without redirect_uri the registered one is used; unknown extra parameters are ignored.
    const r = await alice.request(authorizePath({ client_id: CLIENT, response_type: "code", state: "x", scope: "whatever", foo: "bar" }));
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toMatch(/^\/user\/alice\/oauth_callback\?code=[^&]+&state=x$/);
  });

  it("a user without access to the server gets 403; an admin may authorize", async () => {
    const bob = await browserAs("bob");
    const r = await bob.request(authorizePath(standard()));
    expect(r.status).toBe(403);
    expect(r.headers.get("location")).toBeNull();
    const a = await admin.request(authorizePath(standard()));
    expect(a.status).toBe(302);
  });

  it("token endpoint: success reply is exactly the real hub's shape, no-store", async () => {
    const r = await grant(await code(alice));
    expect(r.status, r.text).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(r.headers.get("pragma")).toBe("no-cache");
    expect(r.json).toEqual({ access_token: expect.stringMatching(/^\S{20,}$/), token_type: "Bearer", expires_in: 1209600, scope: expect.any(String) });
    expect((r.json.scope as string).split(" ")).toContain("access:servers!server=alice/");
  });

  it("the issued token identifies alice with the browser's session_id and the granted scopes", async () => {
    const r = await grant(await code(alice));
    const me = await req("/hub/api/user", { headers: { authorization: `Bearer ${r.json.access_token}` } });
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ kind: "user", name: "alice", groups: [], session_id: alice.cookie("jupyterhub-session-id") });
    expect([...me.json.scopes].sort()).toEqual(["access:servers!server=alice/", "read:users:groups!user=alice", "read:users:name!user=alice"]);
  });

  it("redirect_uri may be omitted from the token request; extra parameters are ignored", async () => {
    const c = await code(alice);
    const r = await exchange({ client_id: CLIENT, client_secret: secret, grant_type: "authorization_code", code: c, code_verifier: "unused-without-a-challenge" });
    expect(r.status, r.text).toBe(200);
  });

  it("a code is single use: the second exchange is 400 invalid_grant", async () => {
    const c = await code(alice);
    expect((await grant(c)).status).toBe(200);
    const again = await grant(c);
    expect(again.status).toBe(400);
    expect(again.json).toMatchObject({ error: "invalid_grant" });
  });

  it("a JSON body is 400 unsupported_grant_type", async () => {
    const c = await code(alice);
    const r = await req("/hub/api/oauth2/token", {
      method: "POST",
      body: { client_id: CLIENT, client_secret: secret, grant_type: "authorization_code", code: c, redirect_uri: REDIRECT },
    });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: "unsupported_grant_type" });
  });

  it("a wrong or missing secret, or an unknown client, is 401 invalid_client", async () => {
    const c = await code(alice);
    const cases: Record<string, string>[] = [
      { client_id: CLIENT, client_secret: "wrong", grant_type: "authorization_code", code: c },
      { client_id: CLIENT, grant_type: "authorization_code", code: c },
      { client_id: "jupyterhub-user-nobody", client_secret: secret, grant_type: "authorization_code", code: c },
    ];
    for (const fields of cases) {
      const r = await exchange(fields);
      expect(r.status, JSON.stringify(fields)).toBe(401);
      expect(r.json).toMatchObject({ error: "invalid_client" });
    }
  });

  it("other grant types are refused; a redirect_uri that differs is refused", async () => {
    const r = await exchange({ client_id: CLIENT, client_secret: secret, grant_type: "refresh_token", refresh_token: "x" });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: "unsupported_grant_type" });
    const mismatch = await grant(await code(alice), { redirect_uri: "/user/alice/elsewhere" });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json).toHaveProperty("error");
    expect((await grant("no-such-code")).json).toMatchObject({ error: "invalid_grant" });
  });

  it("PKCE S256: the verifier must match the challenge sent to authorize", async () => {
    const verifier = randomBytes(48).toString("base64url");
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const pkce = { code_challenge: challenge, code_challenge_method: "S256" };

    const wrong = await grant(await code(alice, pkce), { code_verifier: randomBytes(48).toString("base64url") });
    expect(wrong.status).toBe(400);
    expect(wrong.json).toMatchObject({ error: "invalid_grant" });
    const missing = await grant(await code(alice, pkce));
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({ error: "invalid_grant" });
    const right = await grant(await code(alice, pkce), { code_verifier: verifier });
    expect(right.status, right.text).toBe(200);
  });

  it("an OAuth token only identifies: it cannot manage servers or tokens", async () => {
    const t = (await grant(await code(alice))).json.access_token as string;
    expectApiError(await req("/hub/api/users/alice/tokens", { method: "POST", token: t, body: {} }), 403);
    expectApiError(await req("/hub/api/users/alice/server", { method: "DELETE", token: t }), 403);
    expectApiError(await req("/hub/api/users/alice/activity", { method: "POST", token: t, body: { last_activity: new Date().toISOString() } }), 403);
  });

  it("each server is its own client: codes do not cross clients, and a stopped server's client and token are gone (§3.1)", async () => {
    // Start alice/bar (its record exists from above, stopped), use it, stop it again.
    expect((await req("/hub/api/users/alice/servers/bar", { method: "POST", token: tokens.alice })).status).toBe(201);
    const barSecret = (await serverEnv(tokens.admin, "alice", "bar")).JUPYTERHUB_API_TOKEN!;
    const barAuth = await alice.request(authorizePath({ client_id: "jupyterhub-user-alice~bar", redirect_uri: "/user/alice/bar/oauth_callback", response_type: "code", state: "b" }));
    expect(barAuth.status).toBe(302);
    expect(barAuth.headers.get("location")).toMatch(/^\/user\/alice\/bar\/oauth_callback\?code=/);
    // The default server's redirect_uri is not bar's.
    expect((await alice.request(authorizePath({ client_id: "jupyterhub-user-alice~bar", redirect_uri: REDIRECT, response_type: "code" }))).status).toBe(400);

    const crossed = await exchange({ client_id: "jupyterhub-user-alice~bar", client_secret: barSecret, grant_type: "authorization_code", code: await code(alice) });
    expect(crossed.status).toBe(400);
    expect(crossed.json).toMatchObject({ error: "invalid_grant" });
    // One server's token is not another client's secret.
    const wrongSecret = await exchange({ client_id: "jupyterhub-user-alice~bar", client_secret: secret, grant_type: "authorization_code", code: "x" });
    expect(wrongSecret.status).toBe(401);

    const barCode = new URL(barAuth.headers.get("location")!, hub.url).searchParams.get("code")!;
    const barToken = await exchange({ client_id: "jupyterhub-user-alice~bar", client_secret: barSecret, grant_type: "authorization_code", code: barCode, redirect_uri: "/user/alice/bar/oauth_callback" });
    expect(barToken.status, barToken.text).toBe(200);
    const me = await req("/hub/api/user", { token: barToken.json.access_token });
    expect(me.json.scopes).toContain("access:servers!server=alice/bar");
    expect(me.json.scopes).not.toContain("access:servers!server=alice/");

    expect((await req("/hub/api/users/alice/servers/bar", { method: "DELETE", token: tokens.alice })).status).toBe(204);
    expect((await alice.request(authorizePath({ client_id: "jupyterhub-user-alice~bar", response_type: "code" }))).status).toBe(400);
    expectApiError(await req("/hub/api/user", { token: barSecret }), 403);
    expectApiError(await req("/hub/api/user", { token: barToken.json.access_token }), 403);
    // alice's default server and its client are untouched.
    expect((await alice.request(authorizePath(standard()))).status).toBe(302);
  });

  it("logging out of the hub revokes the OAuth tokens issued through that session only", async () => {
    const other = await browserAs("alice");
    const viaOther = (await grant(await code(other))).json.access_token as string;
    const viaMain = (await grant(await code(alice))).json.access_token as string;
    expect((await req("/hub/api/user", { token: viaOther })).status).toBe(200);
    expect((await other.request("/hub/logout")).status).toBe(302);
    expectApiError(await req("/hub/api/user", { token: viaOther }), 403);
    expect((await req("/hub/api/user", { token: viaMain })).status).toBe(200);
  });
});

// ------------------------------------------------------------------------------------------------ §4.3

describe("users list as the idle culler uses it (§4.1, §4.3, §4.4)", () => {
  beforeAll(async () => {
    for (const name of ["page-a", "page-b", "page-c"]) {
      const r = await req(`/hub/api/users/${name}`, { method: "POST", token: tokens.admin });
      expect(r.status, r.text).toBe(201);
      expect(r.json).toMatchObject({ kind: "user", name, admin: false });
    }
  });

  it("POST /users/{name}: 409 for an existing user, 403 without admin:users", async () => {
    expectApiError(await req("/hub/api/users/page-a", { method: "POST", token: tokens.admin }), 409);
    expectApiError(await req("/hub/api/users/zed", { method: "POST", token: tokens.alice }), 403);
    expectApiError(await req("/hub/api/users/zed", { method: "POST", token: tokens.culler }), 403);
  });

  it("?state=ready with the pagination Accept: {items, _pagination} with the culler's fields exactly", async () => {
    const r = await req("/hub/api/users?state=ready", { token: tokens.culler, headers: { accept: PAGINATION } });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    expect(Object.keys(r.json).sort()).toEqual(["_pagination", "items"]);
    const items = r.json.items as Record<string, any>[];
    expect(r.json._pagination).toEqual({ offset: 0, limit: 50, total: items.length, next: null });
    expect(items.map((u) => u.name)).toContain("alice");
    expect(items.map((u) => u.name)).not.toContain("bob");
    for (const u of items) {
      expect(Object.keys(u).sort(), u.name).toEqual(["admin", "kind", "last_activity", "name", "servers"]);
      expect(Object.values(u.servers).some((s: any) => s.ready), `${u.name} has a ready server`).toBe(true);
      for (const s of Object.values(u.servers) as Record<string, unknown>[]) {
        for (const k of SERVER_MODEL_KEYS) expect(s, `${u.name} server has ${k}`).toHaveProperty(k);
        expect(s).not.toHaveProperty("state"); // needs admin:server_state
      }
    }
    const a = items.find((u) => u.name === "alice")!;
    expect(a.kind).toBe("user");
    expect(a.admin).toBe(false);
    expect(a.last_activity).toMatch(TIMESTAMP);
    // Only active servers: alice/bar is stopped, alice/foo was removed.
    expect(Object.keys(a.servers)).toEqual([""]);
    expect(a.servers[""]).toMatchObject({ name: "", pending: null, ready: true, stopped: false, url: "/user/alice/", user_options: {}, progress_url: "/hub/api/users/alice/server/progress" });
    expect(a.servers[""].started).toMatch(TIMESTAMP);
    expect(a.servers[""].last_activity).toMatch(TIMESTAMP);
  });

  it("limit=1 pages through three users; next.url followed verbatim gives the next page; next is null at the end", async () => {
    const seen: string[] = [];
    let url: string | null = "/hub/api/users?name_filter=page-&limit=1";
    let offset = 0;
    while (url) {
      const r: Reply = await req(url, { token: tokens.culler, headers: { accept: PAGINATION } });
      expect(r.status).toBe(200);
      expect(r.json.items).toHaveLength(1);
      const p = r.json._pagination;
      expect(p).toMatchObject({ offset, limit: 1, total: 3 });
      seen.push(r.json.items[0].name);
      if (offset < 2) {
        expect(p.next).toMatchObject({ offset: offset + 1, limit: 1 });
        expect(p.next.url).toMatch(new RegExp(`^${hub.url}/hub/api/users\\?`));
      } else {
        expect(p.next).toBeNull();
      }
      url = p.next?.url ?? null;
      offset++;
    }
    expect(seen).toEqual(["page-a", "page-b", "page-c"]); // by id ascending
  });

  it("an unknown state filter is 400 with the exact message", async () => {
    expectApiError(await req("/hub/api/users?state=bogus", { token: tokens.culler, headers: { accept: PAGINATION } }), 400, "Unrecognized state filter: 'bogus'");
  });

  it("without the Accept header the reply is a bare list", async () => {
    const r = await req("/hub/api/users?state=ready", { token: tokens.culler });
    expect(Array.isArray(r.json)).toBe(true);
    expect(r.json.map((u: { name: string }) => u.name)).toContain("alice");
    const all = await req("/hub/api/users", { token: tokens.admin });
    expect(Array.isArray(all.json)).toBe(true);
    expect(all.json.map((u: { name: string }) => u.name)).toEqual(expect.arrayContaining(["alice", "bob", "carol", "admin", "page-a"]));
  });

  it("state=active and state=inactive split users by whether a server is running or pending", async () => {
    const names = async (state: string) => ((await req(`/hub/api/users?state=${state}`, { token: tokens.culler })).json as { name: string }[]).map((u) => u.name);
    const active = await names("active");
    const inactive = await names("inactive");
    expect(active).toContain("alice");
    expect(inactive).toEqual(expect.arrayContaining(["bob", "carol", "page-a", "fail-1"]));
    expect(active.filter((n) => inactive.includes(n))).toEqual([]);
  });

  it("limit is clamped to at most 200", async () => {
    const r = await req("/hub/api/users?limit=100000", { token: tokens.admin, headers: { accept: PAGINATION } });
    expect(r.json._pagination.limit).toBe(200);
  });

  // BUG (see report): `limit=0` is read as "not given" (the default, 50) instead of being clamped to 1.
  it("limit is clamped to at least 1", async () => {
    const r = await req("/hub/api/users?limit=0", { token: tokens.admin, headers: { accept: PAGINATION } });
    expect(r.json._pagination.limit).toBe(1);
    expect(r.json.items).toHaveLength(1);
  });

  it("timestamps everywhere are UTC with microseconds and Z", async () => {
    const r = await req("/hub/api/users?include_stopped_servers=1", { token: tokens.admin });
    const stamps: unknown[] = [];
    for (const u of r.json) {
      stamps.push(u.created, u.last_activity);
      for (const s of Object.values(u.servers) as { started: unknown; last_activity: unknown }[]) stamps.push(s.started, s.last_activity);
    }
    const present = stamps.filter((s) => s !== null);
    expect(present.length).toBeGreaterThan(5);
    for (const s of present) expect(s).toMatch(TIMESTAMP);
  });

  it("the admin view has every field, including spawner state", async () => {
    const r = await req("/hub/api/users/alice", { token: tokens.admin });
    expect(r.json).toMatchObject({ kind: "user", name: "alice", admin: false, groups: [], server: "/user/alice/", pending: null, auth_state: null });
    expect(r.json.roles).toContain("user");
    expect(r.json.created).toMatch(TIMESTAMP);
    expect(r.json.servers[""].state).toHaveProperty("pid");
  });

  it("a non-admin token lists only its own user", async () => {
    const r = await req("/hub/api/users", { token: tokens.alice, headers: { accept: PAGINATION } });
    expect(r.status).toBe(200);
    expect(r.json.items.map((u: { name: string }) => u.name)).toEqual(["alice"]);
    expect(r.json._pagination.total).toBe(1);
    expect((await req("/hub/api/users", { token: tokens.bob })).json.map((u: { name: string }) => u.name)).toEqual(["bob"]);
    // …and may not read someone else.
    expect((await req("/hub/api/users/alice", { token: tokens.bob })).status).toBe(403);
  });

  it("the culler stops a server: 204, the process is gone and the user no longer ready", async () => {
    const pid = (await req("/hub/api/users/slow-poke", { token: tokens.admin })).json.servers[""].state.pid as number;
    expect(groupAlive(pid)).toBe(true);
    const r = await req("/hub/api/users/slow-poke/server", { method: "DELETE", token: tokens.culler, headers: { accept: PAGINATION } });
    expect(r.status).toBe(204);
    expect(groupAlive(pid)).toBe(false);
    const ready = await req("/hub/api/users?state=ready", { token: tokens.culler });
    expect(ready.json.map((u: { name: string }) => u.name)).not.toContain("slow-poke");
  });

  it("DELETE /users/{name}: the culler without delete:users gets the exact 403; the admin gets 204", async () => {
    const refused = await req("/hub/api/users/carol", { method: "DELETE", token: tokens.culler, headers: { accept: PAGINATION } });
    expectApiError(refused, 403, "Action is not authorized with current scopes; requires any of [delete:users]");
    expect((await req("/hub/api/users/carol", { method: "DELETE", token: tokens.admin, headers: { accept: PAGINATION } })).status).toBe(204);
    expectApiError(await req("/hub/api/users/carol", { token: tokens.admin }), 404);
    // Her token went with her.
    expectApiError(await req("/hub/api/user", { token: tokens.carol }), 403);
    expectApiError(await req("/hub/api/users/carol", { method: "DELETE", token: tokens.admin }), 404);
  });

  it("deleting a user with a running server stops it first (204)", async () => {
    expect((await req("/hub/api/users/dave", { method: "POST", token: tokens.admin })).status).toBe(201);
    expect((await req("/hub/api/users/dave/server", { method: "POST", token: tokens.admin })).status).toBe(201);
    const pid = (await req("/hub/api/users/dave", { token: tokens.admin })).json.servers[""].state.pid as number;
    expect((await req("/hub/api/users/dave", { method: "DELETE", token: tokens.admin })).status).toBe(204);
    expect(groupAlive(pid)).toBe(false);
    const r = await req("/user/dave/tree");
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe("/hub/user/dave/tree");
  });

  it("an admin may not delete themselves (400)", async () => {
    expectApiError(await req("/hub/api/users/admin", { method: "DELETE", token: tokens.admin }), 400);
  });
});

// -------------------------------------------------------------------------------------------- tokens API

describe("tokens API", () => {
  it("creates a token (201, value shown once), lists and gets it without value or hash, revokes it (204)", async () => {
    const made = await req("/hub/api/users/alice/tokens", { method: "POST", token: tokens.alice, body: { note: "for a script", expires_in: 3600 } });
    expect(made.status, made.text).toBe(201);
    const { token, id } = made.json as { token: string; id: string };
    expect(token).toMatch(/^\S{20,}$/);
    expect(id).toMatch(/^a\d+$/);
    expect(made.json).toMatchObject({ user: "alice", note: "for a script" });
    expect(made.json.created).toMatch(TIMESTAMP);
    expect(made.json.expires_at).toMatch(TIMESTAMP);
    expect((await req("/hub/api/user", { token })).json.name).toBe("alice");

    const hash = createHash("sha256").update(token).digest("hex");
    const list = await req("/hub/api/users/alice/tokens", { token: tokens.alice });
    expect(list.status).toBe(200);
    const listed = list.json.api_tokens as Record<string, unknown>[];
    expect(listed.map((t) => t.id)).toContain(id);
    for (const t of listed) {
      expect(t).not.toHaveProperty("token");
      expect(t).not.toHaveProperty("hash");
    }
    for (const secret of [token, hash, tokens.alice, createHash("sha256").update(tokens.alice).digest("hex")]) expect(list.text).not.toContain(secret);

    const one = await req(`/hub/api/users/alice/tokens/${id}`, { token: tokens.alice });
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({ id, note: "for a script" });
    expect(one.text).not.toContain(token);
    expect(one.text).not.toContain(hash);

    const revoked = await req(`/hub/api/users/alice/tokens/${id}`, { method: "DELETE", token: tokens.alice });
    expect(revoked.status).toBe(204);
    expectApiError(await req("/hub/api/user", { token }), 403);
    expectApiError(await req(`/hub/api/users/alice/tokens/${id}`, { token: tokens.alice }), 404);
  });

  it("refuses scopes the owner does not hold (403), grants ones they do, limited to exactly those", async () => {
    const ask = (scopes: string[]) => req("/hub/api/users/alice/tokens", { method: "POST", token: tokens.alice, body: { scopes } });
    expectApiError(await ask(["admin:users"]), 403);
    expectApiError(await ask(["read:users!user=bob"]), 403);
    expectApiError(await ask(["read:users:name!user=alice", "access:servers"]), 403);
    const ok = await ask(["read:users:name!user=alice"]);
    expect(ok.status, ok.text).toBe(201);
    const me = await req("/hub/api/user", { token: ok.json.token });
    expect(me.json.scopes).toEqual(["read:users:name!user=alice"]);
  });

  it("one user cannot list, create or revoke another's tokens", async () => {
    expectApiError(await req("/hub/api/users/alice/tokens", { token: tokens.bob }), 403);
    expectApiError(await req("/hub/api/users/alice/tokens", { method: "POST", token: tokens.bob, body: {} }), 403);
    const mine = (await req("/hub/api/users/alice/tokens", { token: tokens.alice })).json.api_tokens[0].id as string;
    expectApiError(await req(`/hub/api/users/alice/tokens/${mine}`, { method: "DELETE", token: tokens.bob }), 403);
    // …and cannot reach it by putting their own name in the path either.
    expectApiError(await req(`/hub/api/users/bob/tokens/${mine}`, { method: "DELETE", token: tokens.bob }), 404);
  });
});

// ------------------------------------------------------------------------------------------------- §6

describe("routing (§6)", () => {
  it("GETs outside /hub/ with no route go to the same path under /hub/", async () => {
    const cases: [string, string][] = [
      ["/user/nobody/tree?x=1", "/hub/user/nobody/tree?x=1"],
      ["/user/alicex/", "/hub/user/alicex/"], // segment-prefix routing: not alice's server
      ["/", "/hub/"],
      ["/user-redirect/lab", "/hub/user-redirect/lab"],
    ];
    for (const [from, to] of cases) {
      const r = await req(from);
      expect(r.status, from).toBe(302);
      expect(r.headers.get("location"), from).toBe(to);
    }
    const loggedIn = await alice.request("/hub");
    expect(loggedIn.status).toBe(302);
    expect(loggedIn.headers.get("location")).toBe("/hub/");
  });

  // BUG (see report): without a session, /hub is caught by the pages' login middleware (mounted on /hub)
  // before the /hub → /hub/ redirect, so it answers 302 /hub/login?next=%2Fhub.
  it("/hub → /hub/ also without a login", async () => {
    const r = await req("/hub");
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe("/hub/");
  });

  it("/hub/user/… with no route: stopped → 424 (page, or JSON for API paths), failed → 303 spawn-pending, loop → 500", async () => {
    const bob = await browserAs("bob"); // bob's default server exists and is stopped (started and stopped above)
    const page = await bob.request("/hub/user/bob/tree");
    expect(page.status).toBe(424);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const api = await bob.request("/hub/user/bob/api/status");
    expect(api.status).toBe(424);
    expect(await api.json()).toEqual({ message: `JupyterHub server no longer running at /user/bob/api/status. Restart the server at ${hub.url}/hub/spawn/bob` });
    // fail-1's last spawn failed: the admin is sent to the spawn-pending page that shows why.
    const failed = await admin.request("/hub/user/fail-1/tree?x=1");
    expect(failed.status).toBe(303);
    expect(failed.headers.get("location")).toBe(`/hub/spawn-pending/fail-1?next=${encodeURIComponent("/user/fail-1/tree?x=1")}`);
    const loop = await alice.request("/hub/user/alice/tree?redirects=4");
    expect(loop.status).toBe(500);
    // Not logged in: to the login page, which sends /user/… back through /hub/user/….
    const anon = await req("/hub/user/alice/tree");
    expect(anon.status).toBe(302);
    expect(anon.headers.get("location")).toBe(`/hub/login?next=${encodeURIComponent("/hub/user/alice/tree")}`);
  });

  it("accepts CSP reports from 3.x servers without a login", async () => {
    const r = await req("/hub/security/csp-report", { method: "POST", raw: '{"csp-report":{}}', headers: { "content-type": "application/csp-report" } });
    expect(r.status).toBeGreaterThanOrEqual(200);
    expect(r.status).toBeLessThan(300);
  });

  it("/hub/user-redirect/<path>?<query> sends the logged-in user to spawn their own server, then there", async () => {
    const r = await alice.request("/hub/user-redirect/lab?a=1");
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe(`/hub/spawn/alice?next=${encodeURIComponent("/user/alice/lab?a=1")}`);
    const anon = await req("/hub/user-redirect/lab?a=1");
    expect(anon.status).toBe(302);
    expect(anon.headers.get("location")).toMatch(/^\/hub\/login\?next=/);
  });

  it("/hub/user/alice/… while alice's server is ready: 302 back with redirects=1 (§6.3)", async () => {
    const r = await alice.request("/hub/user/alice/tree?x=1");
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe("/user/alice/tree?x=1&redirects=1");
  });

  it("the proxy forwards path and query unchanged, keeps Host, adds X-Forwarded-*, strips only the hub session cookie", async () => {
    const path = "/user/alice/api/contents/a%20b/../c?x=1&y=%2F&z";
    const r = await rawRequest(path, {
      host: "example.org:8443",
      cookie: "_xsrf=abc; slicehub-session=SECRET1; jupyterhub-user-alice=signed|value; __Host-slicehub-session=SECRET2; jupyterhub-session-id=0123; my-slicehub-session=kept",
      accept: "application/json",
    });
    expect(r.status).toBe(200);
    expect(r.headers["x-fake-singleuser"]).toBe("alice");
    const seen = JSON.parse(r.body) as { method: string; url: string; headers: Record<string, string> };
    expect(seen.url).toBe(path);
    expect(seen.headers.host).toBe("example.org:8443");
    expect(seen.headers["x-forwarded-host"]).toBe("example.org:8443");
    expect(seen.headers["x-forwarded-proto"]).toBe("http");
    expect(seen.headers["x-forwarded-for"]).toMatch(/127\.0\.0\.1/);
    expect(seen.headers["x-forwarded-port"]).toBeTruthy();
    expect(seen.headers.cookie).toBe("_xsrf=abc; jupyterhub-user-alice=signed|value; jupyterhub-session-id=0123; my-slicehub-session=kept");
    expect(seen.headers.cookie).not.toContain("SECRET");
  });

  it("/user/alice without the trailing slash, POST bodies and named servers are proxied too", async () => {
    const bare = await rawRequest("/user/alice", {});
    expect(JSON.parse(bare.body).url).toBe("/user/alice");
    const post = await rawRequest("/user/alice/api/contents", { "content-type": "application/json" }, "POST", '{"type":"notebook"}');
    expect(JSON.parse(post.body)).toMatchObject({ method: "POST", url: "/user/alice/api/contents", body: '{"type":"notebook"}' });
    // alice/bar is stopped: its path falls through to alice's default server, as CHP's longest-prefix match does.
    const bar = await rawRequest("/user/alice/bar/x", {});
    expect(JSON.parse(bar.body).url).toBe("/user/alice/bar/x");
    expect(bar.headers["x-fake-singleuser"]).toBe("alice");
  });

  it("login next= only goes to same-site paths; /user/… is sent through /hub/user/…", async () => {
    const loginWithNext = async (next: string) => {
      const b = new CheckedBrowser(hub.url);
      const page = await (await b.request("/hub/login")).text();
      const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page)![1]!;
      return b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "alice", _xsrf: xsrf, next }) });
    };
    for (const evil of ["//evil.org", "https://evil.org", "/\\evil.org", "\\\\evil.org", "/\\/evil.org", "http:evil.org", "javascript:alert(1)", "/\tevil", " //evil.org"]) {
      const r = await loginWithNext(evil);
      expect(r.status, evil).toBe(302);
      expect(r.headers.get("location"), evil).toBe("/hub/home");
      // Already logged in, GET /hub/login?next= takes the same path.
      const again = await alice.request(`/hub/login?next=${encodeURIComponent(evil)}`);
      expect(again.headers.get("location"), evil).toBe("/hub/home");
    }
    expect((await loginWithNext("/user/alice/tree?x=1")).headers.get("location")).toBe("/hub/user/alice/tree?x=1");
    expect((await loginWithNext("/hub/spawn")).headers.get("location")).toBe("/hub/spawn");
  });
});

// ------------------------------------------------------------------------------------------------ CSRF

describe("CSRF on cookie-authenticated requests", () => {
  const post = (b: Browser, headers: Record<string, string>) =>
    b.request("/hub/api/users/alice/tokens", { method: "POST", headers: { "content-type": "application/json", ...headers }, body: "{}" });

  it("a cookie-authenticated API POST without X-XSRFToken is 403, with the right one 201", async () => {
    const r = await post(alice, {});
    expect(r.status).toBe(403);
    expect(await r.json()).toEqual({ status: 403, message: expect.any(String) });
    expect((await post(alice, { "x-xsrftoken": "wrong" })).status).toBe(403);
    // Any state-changing method, checked before the route itself answers.
    expect((await alice.request("/hub/api/users/alice/servers/nope", { method: "DELETE" })).status).toBe(403);
    expect((await alice.request("/hub/api/users/alice/server", { method: "POST" })).status).toBe(403);
    expect((await post(alice, { "x-xsrftoken": await alice.csrf() })).status).toBe(201);
  });

  it("a foreign or null Origin is 403 even with the right token; this site's Origin is fine", async () => {
    const xsrf = await alice.csrf();
    expect((await post(alice, { "x-xsrftoken": xsrf, origin: "http://evil.org" })).status).toBe(403);
    expect((await post(alice, { "x-xsrftoken": xsrf, origin: "null" })).status).toBe(403);
    expect((await post(alice, { "x-xsrftoken": xsrf, origin: hub.url })).status).toBe(201);
  });

  it("another session's token does not pass", async () => {
    const other = await browserAs("alice");
    expect((await post(alice, { "x-xsrftoken": await other.csrf() })).status).toBe(403);
  });

  it("token-authenticated requests need no XSRF token", async () => {
    const r = await req("/hub/api/users/alice/tokens", { method: "POST", token: tokens.alice, body: {}, headers: { origin: "http://evil.org" } });
    expect(r.status).toBe(201);
  });

  it("login sets the session cookie on /hub/ only and jupyterhub-session-id (32 hex) on / (§7.1)", async () => {
    const b = new CheckedBrowser(hub.url);
    const page = await (await b.request("/hub/login")).text();
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page)![1]!;
    const r = await b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "alice", _xsrf: xsrf, next: "/hub/home" }) });
    expect(r.status).toBe(302);
    const cookies = r.headers.getSetCookie();
    const session = cookies.find((c) => c.startsWith("slicehub-session="));
    const sid = cookies.find((c) => c.startsWith("jupyterhub-session-id="));
    expect(session).toMatch(/; Path=\/hub\/(;|$)/);
    expect(session).toMatch(/; HttpOnly(;|$)/);
    expect(sid).toMatch(/^jupyterhub-session-id=[0-9a-f]{32};/);
    expect(sid).toMatch(/; Path=\/(;|$)/);
    expect(sid).toMatch(/; HttpOnly(;|$)/);
  });

  it("the dev login POST without the form's _xsrf, or with another one, is 403", async () => {
    const b = new CheckedBrowser(hub.url);
    await b.request("/hub/login"); // gets the login-xsrf cookie
    const none = await b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "mallory", next: "/hub/home" }) });
    expect(none.status).toBe(403);
    const forged = await b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "mallory", _xsrf: "forged", next: "/hub/home" }) });
    expect(forged.status).toBe(403);
    // A cross-site form post carries no cookie at all.
    const fresh = await req("/hub/login", { method: "POST", raw: new URLSearchParams({ username: "mallory", _xsrf: "x" }).toString(), headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(fresh.status).toBe(403);
    expect(b.cookie("slicehub-session")).toBeUndefined();
    expectApiError(await req("/hub/api/users/mallory", { token: tokens.admin }), 404);
  });
});
