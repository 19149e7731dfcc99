// /hub/metrics and /hub/health in-process (app.request against an in-memory store), and the cgroup reader on a
// fake cgroup tree: JupyterHub's metric names, types and preset labels; who may scrape (read:metrics, which only
// admins hold and can hand on; allowed_addresses by TCP peer, never through a reverse proxy); the health answer
// and its 503s; cgroup v1 and v2 files, escaped names, foreign slices ignored.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHubApp } from "../../main/app.js";
import { Lifecycle } from "../../src/lifecycle.js";
import { log } from "../../src/log.js";
import { addressAllowed, HubMetrics } from "../../src/metrics.js";
import { findLayout, managedRoot, readUsage, systemdUnescape } from "../../src/cgroups.js";
import { systemdEscape } from "../../spawners/systemd/units.js";
import type { Config } from "../../src/config/schema.js";
import { Store } from "../../src/store/store.js";
import { RouteTable } from "../../proxy/table.js";
import { config, FakeSpawner } from "./fakes.js";
import { sample } from "../exposition.js";

let dir: string;
let store: Store;
let lifecycle: Lifecycle;
let spawner: FakeSpawner;
let metrics: HubMetrics;
let cfg: Config;
let helperUp = true;
let app: ReturnType<typeof createHubApp>;
const tokens: Record<string, string> = {};

const CONFIG = (metricsBlock: string) => `{ "auth": { "kind": "dev", "admin_users": ["admin"] }, "log_level": "error", "metrics": ${metricsBlock} }`;

/** A request as if from this TCP peer (the node server's binding that the route reads). */
function from(peer: string) {
  return { peer };
}

function get(path: string, headers: Record<string, string> = {}, env?: { peer: string }) {
  const incoming = env && { socket: { remoteAddress: env.peer }, headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])) };
  return app.request(path, { headers }, incoming ? { incoming } : undefined);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "slicehub-metrics-"));
  cfg = config(CONFIG(`{ "allowed_addresses": ["10.0.0.0/8", "fd00::/8", "192.0.2.7"] }`));
  store = new Store(":memory:");
  spawner = new FakeSpawner();
  metrics = new HubMetrics();
  lifecycle = new Lifecycle({ store, spawner, table: new RouteTable(), config: () => cfg, log, metrics });
  metrics.attach({ store, log, proxyCounts: () => ({ http: { "2xx": 5, "5xx": 1 }, websocket: { "1xx": 2 } }) });
  app = createHubApp({ store, lifecycle, config: () => cfg, log, metrics, helperAlive: () => helperUp });
  for (const name of ["admin", "alice", "bob"]) {
    const user = store.ensureUser(name, name === "admin");
    tokens[name] = store.createToken({ userId: user.id, kind: "api", scopes: ["inherit"] }).token;
  }
  tokens.prometheus = store.createToken({ userId: store.getUser("admin")!.id, kind: "api", scopes: ["read:metrics"] }).token;
});

afterAll(async () => {
  await lifecycle.close();
  for (const s of store.listActiveServers()) await lifecycle.stop(store.getUserById(s.user_id)!, s);
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("/hub/metrics: who may scrape", () => {
  it("refuses anonymous requests with JupyterHub's 403 in the API's JSON shape", async () => {
    const r = await get("/hub/metrics");
    expect(r.status).toBe(403);
    expect(await r.json()).toEqual({ status: 403, message: "Access to metrics requires scope 'read:metrics'" });
  });

  it("refuses a user's token (no read:metrics), and a wrong token even from an allowed address", async () => {
    expect((await get("/hub/metrics", bearer(tokens.alice!))).status).toBe(403);
    expect((await get("/hub/metrics", bearer("not-a-token"), from("10.1.2.3"))).status).toBe(403);
  });

  it("a user cannot give themselves read:metrics: a token asking for it is refused", async () => {
    const r = await app.request("/hub/api/users/alice/tokens", {
      method: "POST",
      headers: { ...bearer(tokens.alice!), "content-type": "application/json" },
      body: JSON.stringify({ scopes: ["read:metrics"] }),
    });
    expect(r.status).toBe(403);
  });

  it("an admin's full token, and a token with only read:metrics, may; the admin can make such a token", async () => {
    for (const t of [tokens.admin!, tokens.prometheus!]) {
      const r = await get("/hub/metrics", bearer(t));
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    }
    const made = await app.request("/hub/api/users/admin/tokens", {
      method: "POST",
      headers: { ...bearer(tokens.admin!), "content-type": "application/json" },
      body: JSON.stringify({ scopes: ["read:metrics"], note: "prometheus" }),
    });
    expect(made.status).toBe(201);
    const { token, scopes } = (await made.json()) as { token: string; scopes: string[] };
    expect(scopes).toEqual(["read:metrics"]);
    expect((await get("/hub/metrics", bearer(token))).status).toBe(200);
    // That token can do nothing else.
    expect((await get("/hub/api/users", bearer(token))).status).toBe(403);
  });

  it("a listed TCP peer may without a token; another, or one behind a reverse proxy, may not", async () => {
    expect((await get("/hub/metrics", {}, from("10.200.0.1"))).status).toBe(200);
    expect((await get("/hub/metrics", {}, from("::ffff:10.0.0.9"))).status).toBe(200);
    expect((await get("/hub/metrics", {}, from("fd00::1"))).status).toBe(200);
    expect((await get("/hub/metrics", {}, from("192.0.2.7"))).status).toBe(200);
    expect((await get("/hub/metrics", {}, from("192.0.2.8"))).status).toBe(403);
    expect((await get("/hub/metrics", {}, from("127.0.0.1"))).status).toBe(403);
    expect((await get("/hub/metrics", { "x-forwarded-for": "10.0.0.1" }, from("10.0.0.2"))).status).toBe(403);
    expect((await get("/hub/metrics", { forwarded: "for=10.0.0.1" }, from("10.0.0.2"))).status).toBe(403);
  });

  it("behind a proxy in trusted_proxies, the client it names is what allowed_addresses is checked against", async () => {
    const before = cfg;
    cfg = config(`{ "auth": { "kind": "dev", "admin_users": ["admin"] }, "log_level": "error", "trusted_proxies": ["127.0.0.1"], "metrics": { "allowed_addresses": ["10.0.0.0/8"] } }`);
    try {
      expect((await get("/hub/metrics", { "x-forwarded-for": "10.0.0.5" }, from("127.0.0.1"))).status).toBe(200);
      expect((await get("/hub/metrics", { "x-forwarded-for": "192.0.2.99" }, from("127.0.0.1"))).status).toBe(403);
      // The client's own claim in front of the chain is not reached: the proxy appended the real address.
      expect((await get("/hub/metrics", { "x-forwarded-for": "10.0.0.5, 192.0.2.99" }, from("127.0.0.1"))).status).toBe(403);
      // The proxy itself is not in allowed_addresses.
      expect((await get("/hub/metrics", {}, from("127.0.0.1"))).status).toBe(403);
    } finally {
      cfg = before;
    }
  });

  it("addressAllowed: blocks, single addresses, IPv4-mapped IPv6, nothing for an empty list or no peer", () => {
    const list = ["10.0.0.0/8", "::1", "2001:db8::/32"];
    expect(addressAllowed(list, "10.255.255.255")).toBe(true);
    expect(addressAllowed(list, "11.0.0.0")).toBe(false);
    expect(addressAllowed(list, "::1")).toBe(true);
    expect(addressAllowed(list, "::ffff:10.1.1.1")).toBe(true);
    expect(addressAllowed(list, "2001:db8:1::5")).toBe(true);
    expect(addressAllowed(list, "2001:db9::5")).toBe(false);
    expect(addressAllowed([], "10.0.0.1")).toBe(false);
    expect(addressAllowed(list, undefined)).toBe(false);
  });

  it("the config refuses what is not an address or block", () => {
    expect(() => config(CONFIG(`{ "allowed_addresses": ["10.0.0.0/33"] }`))).toThrow(/metrics.allowed_addresses.0: not an IP address or CIDR block/);
    expect(() => config(CONFIG(`{ "allowed_addresses": ["localhost"] }`))).toThrow(/not an IP address/);
    expect(() => config(CONFIG(`{ "token": "x" }`))).toThrow(/metrics/);
  });
});

describe("/hub/metrics: what it says", () => {
  it("JupyterHub's names, types, labels and buckets; preset status labels at 0 before anything happened", async () => {
    const body = await (await get("/hub/metrics", bearer(tokens.prometheus!))).text();
    for (const [name, type] of [
      ["jupyterhub_server_spawn_duration_seconds", "histogram"],
      ["jupyterhub_server_stop_seconds", "histogram"],
      ["jupyterhub_server_poll_duration_seconds", "histogram"],
      ["jupyterhub_request_duration_seconds", "histogram"],
      ["jupyterhub_hub_startup_duration_seconds", "histogram"],
      ["jupyterhub_init_spawners_duration_seconds", "histogram"],
      ["jupyterhub_running_servers", "gauge"],
      ["jupyterhub_total_users", "gauge"],
      ["jupyterhub_active_users", "gauge"],
      ["slicehub_proxy_requests_total", "counter"],
      ["slicehub_user_memory_bytes", "gauge"],
      ["slicehub_user_cpu_seconds_total", "counter"],
      ["slicehub_server_memory_bytes", "gauge"],
      ["slicehub_server_cpu_seconds_total", "counter"],
      ["slicehub_culled_total", "counter"],
      ["process_cpu_seconds_total", "counter"],
    ]) {
      expect(body).toContain(`# TYPE ${name} ${type}\n`);
    }
    for (const status of ["success", "failure", "already-pending", "throttled", "too-many-users"]) {
      expect(sample(body, `jupyterhub_server_spawn_duration_seconds_count{status="${status}"}`)).toBeTypeOf("number");
    }
    // JupyterHub's spawn buckets, up to 600 s.
    expect(body).toContain('jupyterhub_server_spawn_duration_seconds_bucket{le="600",status="success"}');
    for (const status of ["success", "failure"]) expect(sample(body, `jupyterhub_server_stop_seconds_count{status="${status}"}`)).toBe(0);
    for (const status of ["running", "stopped"]) expect(sample(body, `jupyterhub_server_poll_duration_seconds_count{status="${status}"}`)).toBe(0);
    expect(sample(body, "jupyterhub_total_users")).toBe(3);
    expect(sample(body, 'slicehub_proxy_requests_total{protocol="http",code="2xx"}')).toBe(5);
    expect(sample(body, 'slicehub_proxy_requests_total{protocol="websocket",code="1xx"}')).toBe(2);
    // Requests before the first scrape were kept: the 403s above, labelled by route pattern.
    expect(sample(body, 'jupyterhub_request_duration_seconds_count{method="GET",handler="/hub/metrics",code="403"}')).toBeGreaterThanOrEqual(3);
  });

  it("active users per period: a user's own activity or their server's", async () => {
    const now = Date.now();
    store.touchUser(store.getUser("alice")!.id, now - 3 * 86_400_000);
    const bob = store.getUser("bob")!;
    const s = store.ensureServer(bob.id, "");
    store.touchServer(s.id, now - 20 * 86_400_000);
    store.touchUser(store.getUser("admin")!.id, now - 60_000);
    const body = await (await get("/hub/metrics", bearer(tokens.prometheus!))).text();
    expect(sample(body, 'jupyterhub_active_users{period="24h"}')).toBe(1);
    expect(sample(body, 'jupyterhub_active_users{period="7d"}')).toBe(2);
    expect(sample(body, 'jupyterhub_active_users{period="30d"}')).toBe(3);
  });

  it("a start is observed in the spawn histogram, the running server in the gauge; a stop and a poll too", async () => {
    const alice = store.getUser("alice")!;
    const started = lifecycle.start(alice, "");
    expect(started.ok).toBe(true);
    // A second start while the first is under way: JupyterHub's already-pending.
    expect(lifecycle.start(alice, "").ok).toBe(true);
    if (started.ok) await started.done;
    let body = await (await get("/hub/metrics", bearer(tokens.prometheus!))).text();
    expect(sample(body, 'jupyterhub_server_spawn_duration_seconds_count{status="success"}')).toBe(1);
    expect(sample(body, 'jupyterhub_server_spawn_duration_seconds_count{status="already-pending"}')).toBe(1);
    expect(sample(body, "jupyterhub_running_servers")).toBe(1);
    await lifecycle.checkRunning();
    const server = store.getServer(alice.id, "")!;
    await lifecycle.stop(alice, server);
    body = await (await get("/hub/metrics", bearer(tokens.prometheus!))).text();
    expect(sample(body, 'jupyterhub_server_poll_duration_seconds_count{status="running"}')).toBeGreaterThanOrEqual(1);
    expect(sample(body, 'jupyterhub_server_stop_seconds_count{status="success"}')).toBe(1);
    expect(sample(body, "jupyterhub_running_servers")).toBe(0);
  });

  it("metrics.enabled false: /hub/metrics is a 404, /hub/health still answers", async () => {
    const off = config(CONFIG(`{ "enabled": false }`));
    const offApp = createHubApp({ store, lifecycle, config: () => off, log, metrics });
    expect((await offApp.request("/hub/metrics", { headers: bearer(tokens.admin!) })).status).toBe(404);
    expect((await offApp.request("/hub/health")).status).toBe(200);
  });
});

describe("/hub/health", () => {
  it("200 with a small JSON body, no auth; HEAD too, without a body", async () => {
    const r = await get("/hub/health");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ok" });
    expect(r.headers.get("cache-control")).toBe("no-store");
    const head = await app.request("/hub/health", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    // JupyterHub's second path for the same answer.
    const api = await get("/hub/api/health");
    expect(api.status).toBe(200);
    expect(await api.json()).toEqual({ status: "ok" });
  });

  it("503 naming the part when the privileged helper is gone, or the database cannot be read", async () => {
    helperUp = false;
    try {
      const r = await get("/hub/health");
      expect(r.status).toBe(503);
      expect(await r.json()).toEqual({ status: "unhealthy", problems: ["helper"] });
    } finally {
      helperUp = true;
    }
    const closed = new Store(":memory:");
    closed.close();
    const broken = createHubApp({ store: closed, lifecycle, config: () => cfg, log });
    const r = await broken.request("/hub/health");
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({ status: "unhealthy", problems: ["database"] });
  });
});

describe("cgroups", () => {
  it("finds slicehub.slice from /proc/self/cgroup, v2 and v1", () => {
    expect(managedRoot("/system.slice/slicehub.service")).toBe("/");
    expect(managedRoot("/container/x/system.slice/slicehub.service")).toBe("/container/x");
    expect(findLayout("0::/system.slice/slicehub.service\n", "/cg")).toEqual({ memory: "/cg/slicehub.slice", memoryFile: "memory.current", cpu: "/cg/slicehub.slice", cpuFile: "cpu.stat" });
    const v1 = findLayout("9:name=systemd:/system.slice/slicehub.service\n4:memory:/\n2:cpuacct:/\n0::/\n", "/nonexistent");
    expect(v1).toEqual({ memory: "/nonexistent/memory/slicehub.slice", memoryFile: "memory.usage_in_bytes", cpu: "", cpuFile: "cpuacct.usage" });
    // Hybrid: CPU from the unified tree's cpu.stat.
    const fs = join(dir, "hybrid");
    mkdirSync(join(fs, "unified"), { recursive: true });
    const hybrid = findLayout("9:name=systemd:/system.slice/slicehub.service\n4:memory:/system.slice/slicehub.service\n0::/system.slice/slicehub.service\n", fs);
    expect(hybrid).toEqual({ memory: join(fs, "memory/slicehub.slice"), memoryFile: "memory.usage_in_bytes", cpu: join(fs, "unified/slicehub.slice"), cpuFile: "cpu.stat" });
    expect(findLayout("", "/cg")).toBeUndefined();
  });

  it("systemdUnescape undoes systemdEscape", () => {
    for (const name of ["alice", "a-b", "x.y_z", "dash-and.dot", "ünï"]) expect(systemdUnescape(systemdEscape(name))).toBe(name);
  });

  it("reads users' slices and their servers' units (v2), hub users only, escaped names", () => {
    const root = join(dir, "v2", "slicehub.slice");
    const write = (rel: string, mem: string, cpu: string) => {
      mkdirSync(join(root, rel), { recursive: true });
      writeFileSync(join(root, rel, "memory.current"), `${mem}\n`);
      writeFileSync(join(root, rel, "cpu.stat"), `usage_usec ${cpu}\nuser_usec 1\nsystem_usec 2\n`);
    };
    const ab = systemdEscape("a-b");
    write(`slicehub-${ab}.slice`, "3000", "2500000");
    write(`slicehub-${ab}.slice/slicehub-server-${ab}.service`, "1000", "1000000");
    write(`slicehub-${ab}.slice/slicehub-server-${ab}-${systemdEscape("gpu-1")}.service`, "2000", "1500000");
    write(`slicehub-${ab}.slice/slicehub-terminal-${ab}-1.service`, "5", "5");
    write(`slicehub-mallory.slice`, "1", "1");
    mkdirSync(join(root, "slicehub-c.slice"), { recursive: true }); // no files: nothing accounted
    const usage = readUsage({ memory: root, memoryFile: "memory.current", cpu: root, cpuFile: "cpu.stat" }, (n) => n === "a-b" || n === "c");
    expect(usage.users.sort((x, y) => x.user.localeCompare(y.user))).toEqual([
      { user: "a-b", memoryBytes: 3000, cpuSeconds: 2.5 },
      { user: "c", memoryBytes: undefined, cpuSeconds: undefined },
    ]);
    expect(usage.servers.sort((x, y) => x.server.localeCompare(y.server))).toEqual([
      { user: "a-b", server: "", memoryBytes: 1000, cpuSeconds: 1 },
      { user: "a-b", server: "gpu-1", memoryBytes: 2000, cpuSeconds: 1.5 },
    ]);
  });

  it("reads cgroup v1's memory and cpuacct trees", () => {
    const mem = join(dir, "v1", "memory", "slicehub.slice");
    const cpu = join(dir, "v1", "cpuacct", "slicehub.slice");
    mkdirSync(join(mem, "slicehub-alice.slice", "slicehub-server-alice.service"), { recursive: true });
    mkdirSync(join(cpu, "slicehub-alice.slice", "slicehub-server-alice.service"), { recursive: true });
    writeFileSync(join(mem, "slicehub-alice.slice", "memory.usage_in_bytes"), "4096\n");
    writeFileSync(join(mem, "slicehub-alice.slice", "slicehub-server-alice.service", "memory.usage_in_bytes"), "2048\n");
    writeFileSync(join(cpu, "slicehub-alice.slice", "cpuacct.usage"), "3000000000\n");
    writeFileSync(join(cpu, "slicehub-alice.slice", "slicehub-server-alice.service", "cpuacct.usage"), "1000000000\n");
    const usage = readUsage({ memory: mem, memoryFile: "memory.usage_in_bytes", cpu, cpuFile: "cpuacct.usage" }, () => true);
    expect(usage.users).toEqual([{ user: "alice", memoryBytes: 4096, cpuSeconds: 3 }]);
    expect(usage.servers).toEqual([{ user: "alice", server: "", memoryBytes: 2048, cpuSeconds: 1 }]);
  });

  it("the metrics show what the reader returns, labelled by user and server; and the culler's counts", async () => {
    const m = new HubMetrics();
    m.attach({
      store,
      log,
      cgroupUsage: () => ({
        users: [{ user: "alice", memoryBytes: 4096, cpuSeconds: 3 }],
        servers: [
          { user: "alice", server: "", memoryBytes: 2048, cpuSeconds: 1 },
          { user: "alice", server: "gpu", memoryBytes: 1024 },
        ],
      }),
    });
    m.culled("server:idle");
    m.culled("server:idle");
    m.culled("user:inactive");
    const { body } = await m.scrape();
    expect(sample(body, 'slicehub_culled_total{kind="server",reason="idle"}')).toBe(2);
    expect(sample(body, 'slicehub_culled_total{kind="server",reason="max_age"}')).toBe(0);
    expect(sample(body, 'slicehub_culled_total{kind="user",reason="inactive"}')).toBe(1);
    expect(sample(body, 'slicehub_user_memory_bytes{user="alice"}')).toBe(4096);
    expect(sample(body, 'slicehub_user_cpu_seconds_total{user="alice"}')).toBe(3);
    expect(sample(body, 'slicehub_server_memory_bytes{user="alice",server=""}')).toBe(2048);
    expect(sample(body, 'slicehub_server_memory_bytes{user="alice",server="gpu"}')).toBe(1024);
    expect(sample(body, 'slicehub_server_cpu_seconds_total{user="alice",server="gpu"}')).toBeUndefined();
  });
});
