// The built-in culler: the decisions (serversToCull, usersToCull) as pure functions of a config, a clock and
// rows; then the Culler against an in-memory store, the real lifecycle and a fake spawner, with an injected
// clock: what it stops and deletes, the reason it records and clears, what it logs, and who is exempt.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveIdentity } from "../auth/decide.js";
import { Culler, humanDuration, onCull, serversToCull, stopReason, usersToCull, type CullConfig, type CullEvent, type ServerView } from "../src/cull.js";
import type { Config } from "../src/config/schema.js";
import { Lifecycle } from "../src/lifecycle.js";
import type { Logger } from "../src/log.js";
import { Store, type UserActivityRow } from "../src/store/store.js";
import { RouteTable } from "../proxy/table.js";
import { HomePage } from "../web/pages.js";
import { config, FakeSpawner } from "./hub/fakes.js";

const H = 3_600_000;
const NOW = Date.UTC(2026, 0, 10, 12, 0, 0);

function cullConfig(over: Record<string, unknown> = {}): CullConfig {
  return config(JSON.stringify({ cull: { enabled: true, idle_timeout_s: 3600, ...over } })).cull;
}

function server(over: Partial<ServerView> = {}): ServerView {
  return { id: 1, spawnId: 1, userId: 1, user: "alice", server: "", admin: false, status: "running", started: NOW - 5 * H, lastActivity: NOW - 2 * H, ...over };
}

function user(over: Partial<UserActivityRow> = {}): UserActivityRow {
  return { id: 1, name: "alice", admin: 0, blocked: 0, last_seen: NOW - 100 * 24 * H, has_server: 0, ...over };
}

describe("the config block", () => {
  it("is off by default with JupyterHub-like defaults, and bounded", () => {
    const c = config("{}").cull;
    expect(c).toEqual({ enabled: false, idle_timeout_s: 3600, max_age_s: 0, every_s: 60, admins: false, users: { enabled: false, idle_timeout_s: 90 * 86_400 } });
    expect(() => config(`{ "cull": { "every_s": 0 } }`)).toThrow(/cull\.every_s/);
    expect(() => config(`{ "cull": { "every_s": 7200 } }`)).toThrow(/cull\.every_s/);
    expect(() => config(`{ "cull": { "idle_timeout_s": 0 } }`)).toThrow(/cull\.idle_timeout_s/);
    expect(() => config(`{ "cull": { "max_age_s": -1 } }`)).toThrow(/cull\.max_age_s/);
    expect(() => config(`{ "cull": { "idle_timout_s": 60 } }`)).toThrow(/unknown key/);
  });
});

describe("serversToCull", () => {
  it("culls nothing while disabled", () => {
    expect(serversToCull({ ...cullConfig(), enabled: false }, NOW, [server()])).toEqual([]);
  });

  it("culls a server idle longer than idle_timeout_s, not one idle exactly that long or less", () => {
    expect(serversToCull(cullConfig(), NOW, [server()])).toEqual([{ server: server(), reason: "idle", idleMs: 2 * H, limitMs: H }]);
    expect(serversToCull(cullConfig(), NOW, [server({ lastActivity: NOW - H })])).toEqual([]);
    expect(serversToCull(cullConfig(), NOW, [server({ lastActivity: NOW - 10_000 })])).toEqual([]);
  });

  it("counts from the start when there was no activity since (or only before it)", () => {
    expect(serversToCull(cullConfig(), NOW, [server({ started: NOW - 30 * 60_000, lastActivity: null })])).toEqual([]);
    expect(serversToCull(cullConfig(), NOW, [server({ started: NOW - 30 * 60_000, lastActivity: NOW - 5 * H })])).toEqual([]);
    expect(serversToCull(cullConfig(), NOW, [server({ started: NOW - 2 * H, lastActivity: null })])).toMatchObject([{ reason: "idle", idleMs: 2 * H }]);
  });

  it("counts idleness from the hub's own start at the earliest (it could not see activity while it was down)", () => {
    expect(serversToCull(cullConfig(), NOW, [server()], NOW - 30 * 60_000)).toEqual([]);
    expect(serversToCull(cullConfig(), NOW, [server()], NOW - 90 * 60_000)).toMatchObject([{ reason: "idle", idleMs: 90 * 60_000 }]);
    // max_age_s is not affected.
    expect(serversToCull(cullConfig({ max_age_s: 4 * 3600 }), NOW, [server()], NOW - 60_000)).toMatchObject([{ reason: "max_age", ageMs: 5 * H }]);
  });

  it("leaves pending, stopping and stopped servers alone", () => {
    for (const status of ["pending", "stopping", "stopped"] as const) expect(serversToCull(cullConfig(), NOW, [server({ status })])).toEqual([]);
  });

  it("exempts admins unless cull.admins", () => {
    expect(serversToCull(cullConfig(), NOW, [server({ admin: true })])).toEqual([]);
    expect(serversToCull(cullConfig({ admins: true }), NOW, [server({ admin: true })])).toHaveLength(1);
  });

  it("culls named servers like the default one, each on its own activity", () => {
    const named = server({ id: 2, server: "gpu", lastActivity: NOW - 3 * H });
    const busy = server({ id: 3, server: "busy", lastActivity: NOW - 60_000 });
    expect(serversToCull(cullConfig(), NOW, [server(), named, busy]).map((c) => c.server.server)).toEqual(["", "gpu"]);
  });

  it("max_age_s stops an active server that has run longer, and is off at 0", () => {
    const active = server({ started: NOW - 9 * H, lastActivity: NOW - 60_000 });
    expect(serversToCull(cullConfig(), NOW, [active])).toEqual([]);
    expect(serversToCull(cullConfig({ max_age_s: 8 * 3600 }), NOW, [active])).toEqual([{ server: active, reason: "max_age", ageMs: 9 * H, limitMs: 8 * H }]);
    expect(serversToCull(cullConfig({ max_age_s: 10 * 3600 }), NOW, [active])).toEqual([]);
    // Idle and too old: idle is the reason given.
    expect(serversToCull(cullConfig({ max_age_s: 4 * 3600 }), NOW, [server()])).toMatchObject([{ reason: "idle" }]);
  });
});

describe("usersToCull", () => {
  const on = () => cullConfig({ users: { enabled: true, idle_timeout_s: 30 * 86_400 } });

  it("deletes nobody unless cull and cull.users are both enabled", () => {
    expect(usersToCull(cullConfig(), NOW, [user()])).toEqual([]);
    expect(usersToCull({ ...on(), enabled: false }, NOW, [user()])).toEqual([]);
    expect(usersToCull(on(), NOW, [user()])).toEqual([{ user: user(), idleMs: 100 * 24 * H }]);
  });

  it("keeps users seen recently, with a server, blocked, or admins (unless cull.admins)", () => {
    expect(usersToCull(on(), NOW, [user({ last_seen: NOW - 29 * 24 * H })])).toEqual([]);
    expect(usersToCull(on(), NOW, [user({ has_server: 1 })])).toEqual([]);
    expect(usersToCull(on(), NOW, [user({ blocked: 1 })])).toEqual([]);
    expect(usersToCull({ ...on(), admins: true }, NOW, [user({ blocked: 1 })])).toEqual([]);
    expect(usersToCull(on(), NOW, [user({ admin: 1 })])).toEqual([]);
    expect(usersToCull({ ...on(), admins: true }, NOW, [user({ admin: 1 })])).toHaveLength(1);
  });
});

describe("the words", () => {
  it("says durations as people do, rounded down", () => {
    expect([0, 4_999, 59_000, 60_000, 12 * 60_000 + 59_000, H, 2 * H + 5 * 60_000, 47 * H, 48 * H, 76 * H].map(humanDuration)).toEqual([
      "0 s",
      "4 s",
      "59 s",
      "1 min",
      "12 min",
      "1 h",
      "2 h 5 min",
      "47 h",
      "2 days",
      "3 days 4 h",
    ]);
  });

  it("gives the reason home shows: the limit that was passed", () => {
    expect(stopReason({ reason: "idle", limitMs: 2 * H })).toBe("after 2 h idle");
    expect(stopReason({ reason: "max_age", limitMs: 8 * H })).toBe("after reaching its maximum age of 8 h");
  });
});

/** A logger that keeps what is written. */
function capture(): Logger & { lines: { level: string; msg: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const make = (base: Record<string, unknown>): Logger => ({
    debug: (msg, f) => void lines.push({ level: "debug", msg, fields: { ...base, ...f } }),
    info: (msg, f) => void lines.push({ level: "info", msg, fields: { ...base, ...f } }),
    warn: (msg, f) => void lines.push({ level: "warn", msg, fields: { ...base, ...f } }),
    error: (msg, f) => void lines.push({ level: "error", msg, fields: { ...base, ...f } }),
    child: (f) => make({ ...base, ...f }),
  });
  return Object.assign(make({}), { lines });
}

describe("the Culler with the real lifecycle and store", () => {
  let store: Store;
  let spawner: FakeSpawner;
  let lifecycle: Lifecycle;
  let cfg: Config;
  let clock: number;
  let logger: ReturnType<typeof capture>;
  let culler: Culler;
  let events: CullEvent[];
  let unsubscribe: () => void;
  let flushed: number;

  const setConfig = (cull: Record<string, unknown>) => {
    cfg = config(JSON.stringify({ auth: { kind: "dev", admin_users: ["admin"] }, spawner: { kind: "local", named_servers: { limit: 2 } }, cull }));
  };
  const startServer = async (name: string, serverName = "") => {
    const u = store.ensureUser(name, name === "admin");
    const r = lifecycle.start(u, serverName);
    if (!r.ok) throw new Error(r.message);
    await r.done;
    const s = store.getServer(u.id, serverName)!;
    expect(s.state).toBe("running");
    return s;
  };
  const stateOf = (name: string, serverName = "") => store.getServer(store.getUser(name)!.id, serverName)!;

  beforeEach(() => {
    store = new Store(":memory:");
    spawner = new FakeSpawner();
    setConfig({ enabled: true, idle_timeout_s: 3600 });
    lifecycle = new Lifecycle({ store, spawner, table: new RouteTable(), config: () => cfg, log: capture() });
    clock = Date.now();
    logger = capture();
    flushed = 0;
    culler = new Culler({ store, lifecycle, config: () => cfg, log: logger, now: () => clock, flushActivity: () => void flushed++ });
    events = [];
    unsubscribe = onCull((e) => events.push(e));
  });

  afterEach(async () => {
    unsubscribe();
    await culler.close();
    await lifecycle.close();
    for (const s of spawner.servers.values()) s.close();
    store.close();
  });

  it("stops an idle server, records and logs why, and leaves an active one, a named one and an admin's by their own rules", async () => {
    const started = Date.now();
    await startServer("alice");
    await startServer("bob");
    await startServer("bob", "gpu");
    await startServer("admin");
    clock = started + 2 * H;
    // bob's default server was used 10 minutes ago (through the proxy or its own activity report).
    store.touchServer(stateOf("bob").id, clock - 10 * 60_000);
    await culler.check();
    expect(flushed).toBe(1);
    expect(stateOf("alice").state).toBe("stopped");
    expect(stateOf("alice").stop_reason).toBe("after 1 h idle");
    expect(stateOf("alice").stopped_at).toBe(clock);
    expect(stateOf("bob").state).toBe("running");
    expect(stateOf("bob", "gpu").state).toBe("stopped");
    expect(stateOf("admin").state).toBe("running");
    const culled = logger.lines.filter((l) => l.msg.startsWith("culling server"));
    expect(culled.map((l) => [l.fields!.user, l.fields!.server, l.fields!.reason])).toEqual(
      expect.arrayContaining([
        ["alice", "", "idle"],
        ["bob", "gpu", "idle"],
      ]),
    );
    expect(culled).toHaveLength(2);
    expect(culled[0]!.level).toBe("info");
    expect(culled[0]!.msg).toBe("culling server: stopping it after 1 h idle");
    expect(culled[0]!.fields!.idle_s).toBeGreaterThanOrEqual(7190);
    expect(events.filter((e) => e.kind === "server").map((e) => (e as { user: string }).user).sort()).toEqual(["alice", "bob"]);
  });

  it("clears the reason at the next start, and an ordinary stop records none", async () => {
    const started = Date.now();
    await startServer("alice");
    clock = started + 2 * H;
    await culler.check();
    expect(stateOf("alice").stop_reason).not.toBeNull();
    await startServer("alice");
    expect(stateOf("alice").stop_reason).toBeNull();
    expect(stateOf("alice").stopped_at).toBeNull();
    await lifecycle.stop(store.getUser("alice")!, stateOf("alice"));
    expect(stateOf("alice").state).toBe("stopped");
    expect(stateOf("alice").stop_reason).toBeNull();
  });

  it("stops a server past max_age_s even when active, and culls admins with cull.admins", async () => {
    setConfig({ enabled: true, idle_timeout_s: 3600, max_age_s: 8 * 3600, admins: true });
    const started = Date.now();
    await startServer("admin");
    clock = started + 9 * H;
    store.touchServer(stateOf("admin").id, clock - 60_000);
    await culler.check();
    expect(stateOf("admin").state).toBe("stopped");
    expect(stateOf("admin").stop_reason).toBe("after reaching its maximum age of 8 h");
    expect(events).toMatchObject([{ kind: "server", user: "admin", reason: "max_age" }]);
  });

  it("after a hub restart, gives servers idle_timeout_s from the restart before culling them", async () => {
    const started = Date.now();
    await startServer("alice");
    // The hub comes back five hours later: a new culler, nothing heard from alice's server since its start.
    clock = started + 5 * H;
    culler = new Culler({ store, lifecycle, config: () => cfg, log: logger, now: () => clock });
    await culler.check();
    expect(stateOf("alice").state).toBe("running");
    clock += H + 1000;
    await culler.check();
    expect(stateOf("alice")).toMatchObject({ state: "stopped", stop_reason: "after 1 h idle" });
  });

  it("does nothing while disabled, and a reload that enables it applies at the next check", async () => {
    setConfig({ enabled: false });
    const started = Date.now();
    await startServer("alice");
    clock = started + 100 * H;
    await culler.check();
    expect(stateOf("alice").state).toBe("running");
    expect(flushed).toBe(0);
    setConfig({ enabled: true, idle_timeout_s: 3600 });
    culler.reconfigure();
    await culler.check();
    expect(stateOf("alice").state).toBe("stopped");
  });

  it("checks by itself every every_s (read again after a reload)", async () => {
    setConfig({ enabled: true, idle_timeout_s: 3600, every_s: 1 });
    const started = Date.now();
    await startServer("alice");
    clock = started + 2 * H;
    culler.start();
    const deadline = Date.now() + 5000;
    while (stateOf("alice").state !== "stopped" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(stateOf("alice").state).toBe("stopped");
    // The settings in force are logged at start and after a reload that changes them (not after one that does not).
    expect(logger.lines.filter((l) => l.msg.startsWith("culling idle servers"))).toMatchObject([{ msg: "culling idle servers", fields: { idle_timeout_s: 3600, every_s: 1, max_age_s: null } }]);
    culler.reconfigure();
    setConfig({ enabled: false });
    culler.reconfigure();
    expect(logger.lines.filter((l) => l.msg.startsWith("culling idle servers")).map((l) => l.msg)).toEqual(["culling idle servers", "culling idle servers is off"]);
  });

  describe("users", () => {
    const DAY = 24 * H;
    beforeEach(() => setConfig({ enabled: true, idle_timeout_s: 3600, users: { enabled: true, idle_timeout_s: 30 * 86_400 } }));

    it("deletes users long inactive and serverless; keeps recent, blocked, admins, those with a server or a terminal", async () => {
      for (const n of ["old", "recent", "blocked", "admin", "busy", "term"]) store.ensureUser(n, n === "admin");
      store.setBlocked(store.getUser("blocked")!.id, true);
      await startServer("busy");
      clock = Date.now() + 40 * DAY;
      store.touchUser(store.getUser("recent")!.id, clock - DAY);
      // busy's server is active, so it is not culled and busy stays.
      store.touchServer(stateOf("busy").id, clock - 60_000);
      culler = new Culler({ store, lifecycle, config: () => cfg, log: logger, now: () => clock, userBusy: async (u) => u === "term" });
      await culler.check();
      expect(["old", "recent", "blocked", "admin", "busy", "term"].filter((n) => store.getUser(n))).toEqual(["recent", "blocked", "admin", "busy", "term"]);
      expect(logger.lines.find((l) => l.msg.startsWith("culling user"))).toMatchObject({ level: "info", fields: { user: "old" } });
      expect(events).toEqual([{ kind: "user", user: "old", idleMs: expect.any(Number) }]);
    });

    it("counts a browser session, a token's use and an SSH key's use as activity", async () => {
      for (const n of ["web", "api", "ssh"]) store.ensureUser(n);
      clock = Date.now() + 40 * DAY;
      const { session } = store.createSession(store.getUser("web")!.id);
      store.db.prepare("UPDATE sessions SET last_seen = ? WHERE hash = ?").run(clock - DAY, session.hash);
      const t = store.createToken({ userId: store.getUser("api")!.id, kind: "api", scopes: ["inherit"] });
      store.touchToken(t.row.id, clock - DAY);
      store.db
        .prepare("INSERT INTO ssh_keys (user_id, algorithm, key, fingerprint, created, last_used) VALUES (?, 'ssh-ed25519', 'AAAA', 'SHA256:x', ?, ?)")
        .run(store.getUser("ssh")!.id, Date.now(), clock - DAY);
      await culler.check();
      expect(["web", "api", "ssh"].filter((n) => store.getUser(n))).toEqual(["web", "api", "ssh"]);
    });

    it("keeps a deleted user's name for their own login identity (another person with that name is refused)", async () => {
      const ada = store.ensureUser("ada");
      store.saveIdentity({ issuer: "https://idp", subject: "ada-1", userId: ada.id, email: "ada@a.org", claims: {} });
      clock = Date.now() + 40 * DAY;
      await culler.check();
      expect(store.getUser("ada")).toBeUndefined();
      const other = resolveIdentity(store, "https://idp", "ada-2", "ada");
      expect(other).toMatchObject({ ok: false, reason: "subject_collision" });
      expect((other as { message: string }).message).toMatch(/deleted for inactivity/);
      expect(resolveIdentity(store, "https://elsewhere", "ada-1", "ada")).toMatchObject({ ok: false });
      expect(resolveIdentity(store, "https://idp", "ada-1", "ada")).toEqual({ ok: true, name: "ada", user: undefined });
      // A name nobody had is free as before.
      expect(resolveIdentity(store, "https://idp", "zed-1", "zed")).toEqual({ ok: true, name: "zed", user: undefined });
    });
  });
});

describe("home", () => {
  const base = { user: { name: "alice", admin: false }, xsrf: "x", namedLimit: 0, profiles: undefined, allProfiles: [] } as unknown as Parameters<typeof HomePage>[0];
  const row = { name: "", state: "stopped" as const, url: "/user/alice/", lastActivity: null, failure: null, profile: null };

  it("says why the hub stopped a server, only while it stays stopped", () => {
    const html = String(HomePage({ ...base, servers: [{ ...row, stopReason: "after 2 h idle", stoppedAt: "2026-01-10T12:00:00.000000Z" }] }));
    expect(html).toContain("Your server was stopped after 2 h idle (2026-01-10 12:00 UTC)");
    const named = String(HomePage({ ...base, servers: [{ ...row, name: "gpu", stopReason: "after reaching its maximum age of 8 h", stoppedAt: null }] }));
    expect(named).toContain("Your server gpu was stopped after reaching its maximum age of 8 h");
    expect(String(HomePage({ ...base, servers: [{ ...row, state: "pending", stopReason: "after 2 h idle" }] }))).not.toContain("was stopped");
    expect(String(HomePage({ ...base, servers: [row] }))).not.toContain("was stopped");
  });
});
