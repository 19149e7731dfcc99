// Kept replies (src/hub/reply-memo.ts) must never outlive what they were built from: a write by this process
// or by another one, a config reload, a start or stop the lifecycle holds in memory, or a different caller.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHubApp } from "../../main/app.js";
import type { Config } from "../../src/config/schema.js";
import type { Hub } from "../../src/hub/context.js";
import { ReplyMemo } from "../../src/hub/reply-memo.js";
import { Lifecycle, type ServerStatus } from "../../src/lifecycle.js";
import { log } from "../../src/log.js";
import { Store, type ServerRow } from "../../src/store/store.js";
import { RouteTable } from "../../proxy/table.js";
import type { Spawner } from "../../spawners/spawner.js";
import { config } from "./fakes.js";

const noSpawner = {} as Spawner;
let dir: string;
let store: Store;
let other: Store;
let lifecycle: Lifecycle;
let app: ReturnType<typeof createHubApp>;
let cfg: Config;
const tokens: Record<string, string> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "slicehub-memo-"));
  cfg = config(`{ "auth": { "kind": "dev", "admin_users": ["admin"] }, "spawner": { "kind": "local" }, "log_level": "error" }`);
  store = new Store(join(dir, "slicehub.sqlite"));
  other = new Store(join(dir, "slicehub.sqlite"));
  lifecycle = new Lifecycle({ store, spawner: noSpawner, table: new RouteTable(), config: () => cfg, log });
  app = createHubApp({ store, lifecycle, config: () => cfg, log });
  for (const name of ["admin", "alice", "bob"]) {
    const user = store.ensureUser(name, name === "admin");
    tokens[name] = store.createToken({ userId: user.id, kind: "api", scopes: ["inherit"] }).token;
  }
  tokens.names = store.createToken({ userId: store.getUser("admin")!.id, kind: "api", scopes: ["list:users", "read:users:name"] }).token;
});

afterAll(() => {
  store.close();
  other.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = async (path: string, token: string) => {
  const res = await app.request(path, { headers: { authorization: `token ${token}` } });
  expect(res.headers.get("content-type")).toBe("application/json");
  return { status: res.status, body: (await res.json()) as unknown };
};
const alice = (list: unknown) => (list as { name: string }[]).find((u) => u.name === "alice");

describe("kept API replies", () => {
  it("change with a write by this process", async () => {
    const list = async () => (await get("/hub/api/users", tokens.admin!)).body as { name: string }[];
    const before = await list();
    expect(await list()).toEqual(before);
    const created = await app.request("/hub/api/users/erin", { method: "POST", headers: { authorization: `token ${tokens.admin}` } });
    expect(created.status).toBe(201);
    expect((await list()).map((u) => u.name)).toEqual([...before.map((u) => u.name), "erin"]);

    const aliceModel = async () => (await get("/hub/api/users/alice", tokens.admin!)).body as { last_activity: string | null };
    expect((await aliceModel()).last_activity).toBeNull();
    const at = "2026-01-02T03:04:05.000Z";
    const activity = await app.request("/hub/api/users/alice/activity", {
      method: "POST",
      headers: { authorization: `token ${tokens.admin}` },
      body: JSON.stringify({ last_activity: at }),
    });
    expect(activity.status).toBe(200);
    expect((await aliceModel()).last_activity).toBe("2026-01-02T03:04:05.000000Z");
    expect(alice(await list())).toMatchObject({ last_activity: "2026-01-02T03:04:05.000000Z" });
  });

  it("change with a commit by another process (another connection to the same file)", async () => {
    const dave = store.ensureUser("dave", false);
    expect(((await get("/hub/api/users/dave", tokens.admin!)).body as { admin: boolean }).admin).toBe(false);
    const before = (await get("/hub/api/users", tokens.admin!)).body as unknown[];
    other.setAdmin(dave.id, true);
    other.ensureUser("carol", false);
    expect(((await get("/hub/api/users/dave", tokens.admin!)).body as { admin: boolean }).admin).toBe(true);
    const after = (await get("/hub/api/users", tokens.admin!)).body as { name: string }[];
    expect(after.length).toBe(before.length + 1);
    expect(after.map((u) => u.name)).toContain("carol");
  });

  it("are kept per caller: a narrower token never gets a wider one's reply", async () => {
    const full = (await get("/hub/api/users", tokens.admin!)).body as Record<string, unknown>[];
    const names = (await get("/hub/api/users", tokens.names!)).body as Record<string, unknown>[];
    expect(full[0]).toHaveProperty("servers");
    expect(names[0]).not.toHaveProperty("servers");
    expect(names[0]).not.toHaveProperty("last_activity");
    expect((await get("/hub/api/users/alice", tokens.alice!)).status).toBe(200);
    const asBob = await app.request("/hub/api/users/alice", { headers: { authorization: `token ${tokens.bob}` } });
    expect(asBob.status).toBe(403);
  });

  it("are kept per request: another page, filter or pagination is built afresh", async () => {
    const all = (await get("/hub/api/users", tokens.admin!)).body as unknown[];
    const one = (await get("/hub/api/users?limit=1", tokens.admin!)).body as unknown[];
    const filtered = (await get("/hub/api/users?name_filter=ali", tokens.admin!)).body as { name: string }[];
    expect(all.length).toBeGreaterThan(1);
    expect(one).toHaveLength(1);
    expect(filtered.map((u) => u.name)).toEqual(["alice"]);
    const res = await app.request("/hub/api/users?limit=1", {
      headers: { authorization: `token ${tokens.admin}`, accept: "application/jupyterhub-pagination+json" },
    });
    expect(((await res.json()) as { _pagination: { total: number } })._pagination.total).toBe(all.length);
  });
});

describe("ReplyMemo", () => {
  const server = { id: 7 } as ServerRow;
  const fake = () => {
    const state = { version: "1.0", status: "running" as ServerStatus, config: {} };
    const hub = {
      store: { dataVersion: () => state.version },
      config: () => state.config,
      lifecycle: { status: () => state.status },
    } as unknown as Hub;
    return { state, memo: new ReplyMemo(hub) };
  };

  it("drops a reply when the lifecycle's answer for one of its servers changes", () => {
    const { state, memo } = fake();
    expect(memo.get("k")).toBeUndefined();
    memo.set("k", "body", [server]);
    expect(memo.get("k")).toBe("body");
    state.status = "stopping"; // in memory only: the database has not changed
    expect(memo.get("k")).toBeUndefined();
  });

  it("drops every reply when the database or the config changes", () => {
    const { state, memo } = fake();
    memo.get("k");
    memo.set("k", "body", []);
    state.version = "1.1";
    expect(memo.get("k")).toBeUndefined();
    memo.set("k", "body", []);
    expect(memo.get("k")).toBe("body");
    state.config = {};
    expect(memo.get("k")).toBeUndefined();
  });

  it("keys by credential, never sharing between a token and a session", () => {
    const who = { user: {}, scopes: new Set<string>(), via: "token", token: { id: 3 } } as never;
    const session = { user: {}, scopes: new Set<string>(), via: "session", session: { public_id: "3" } } as never;
    expect(ReplyMemo.key(who, "/x")).not.toBe(ReplyMemo.key(session, "/x"));
    expect(ReplyMemo.key({ via: "token" } as never, "/x")).toBeUndefined();
  });
});
