// The hub application and the lifecycle in-process: `app.request()` against an in-memory store and a fake
// spawner whose "server" is an http.Server in this process. Fast (no daemon, no child processes), beside the
// e2e tests that run the real thing; these pin the rules (scopes, refusals, limits, state) directly.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHubApp } from "../../main/app.js";
import { Lifecycle } from "../../src/lifecycle.js";
import { log } from "../../src/log.js";
import { Store } from "../../src/store/store.js";
import { RouteTable } from "../../proxy/table.js";
import { config, FakeSpawner } from "./fakes.js";

let store: Store;
let spawner: FakeSpawner;
let lifecycle: Lifecycle;
let app: ReturnType<typeof createHubApp>;
const tokens: Record<string, string> = {};

beforeAll(() => {
  const cfg = config(`{ "auth": { "kind": "dev", "admin_users": ["admin"] }, "spawner": { "kind": "local", "named_servers": { "limit": 2 } }, "log_level": "error" }`);
  store = new Store(":memory:");
  spawner = new FakeSpawner();
  lifecycle = new Lifecycle({ store, spawner, table: new RouteTable(), config: () => cfg, log });
  app = createHubApp({ store, lifecycle, config: () => cfg, log });
  for (const name of ["admin", "alice", "bob"]) {
    const user = store.ensureUser(name, name === "admin");
    tokens[name] = store.createToken({ userId: user.id, kind: "api", scopes: ["inherit"] }).token;
  }
});

afterAll(async () => {
  await lifecycle.close();
  for (const s of spawner.servers.values()) s.close();
  store.close();
});

const call = async (path: string, token: string | undefined, init: RequestInit = {}) => {
  const headers = new Headers(init.headers);
  if (token) headers.set("authorization", `token ${token}`);
  const res = await app.request(path, { ...init, headers });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // a page
  }
  return { status: res.status, json, text, headers: res.headers };
};

describe("hub app in-process", () => {
  it("answers the version without a token and 403 with a bad one", async () => {
    expect((await call("/hub/api", undefined)).json).toEqual({ version: "3.0.0" });
    expect(await call("/hub/api/user", "nope")).toMatchObject({ status: 403, json: { status: 403, message: "Forbidden" } });
  });

  it("lets a user read themselves and not others", async () => {
    expect((await call("/hub/api/user", tokens.alice)).json.name).toBe("alice");
    expect((await call("/hub/api/users/bob", tokens.alice)).status).toBe(403);
    expect((await call("/hub/api/users/nobody", tokens.admin)).status).toBe(404);
  });

  it("mints no token stronger than the one that asks", async () => {
    const narrow = await call("/hub/api/users/alice/tokens", tokens.alice, { method: "POST", body: JSON.stringify({ scopes: ["tokens!user=alice"] }) });
    expect(narrow.status).toBe(201);
    const wider = await call("/hub/api/users/alice/tokens", narrow.json.token as string, { method: "POST", body: JSON.stringify({ scopes: ["servers!user=alice"] }) });
    expect(wider.status).toBe(403);
    expect(wider.json.message).toMatch(/^Not assigning requested scopes .*\bservers!user=alice\b.* not held by token a\d+ of User alice$/);
    const malformed = await call("/hub/api/users/alice/tokens", tokens.alice, { method: "POST", body: JSON.stringify({ scopes: ["access:servers!server=alice"] }) });
    expect(malformed.status).toBe(400);
  });

  it("starts and stops a server through the lifecycle, which is the one answer about its state", async () => {
    const start = await call("/hub/api/users/alice/server", tokens.alice, { method: "POST" });
    expect([201, 202]).toContain(start.status);
    const server = store.getServer(store.getUser("alice")!.id, "")!;
    for (let i = 0; i < 100 && lifecycle.status(store.getServerById(server.id)!) !== "running"; i++) await new Promise((r) => setTimeout(r, 20));
    expect(lifecycle.status(store.getServerById(server.id)!)).toBe("running");
    expect(spawner.specs.at(-1)).toMatchObject({ user: "alice", serverName: "" });
    const model = await call("/hub/api/users/alice", tokens.alice);
    expect((model.json.servers as Record<string, { ready: boolean }>)[""]?.ready).toBe(true);
    expect((await call("/hub/api/users/alice/server", tokens.alice, { method: "POST" })).json.message).toBe("alice is already running");
    expect((await call("/hub/api/users/alice/server", tokens.alice, { method: "DELETE" })).status).toBe(204);
    expect(lifecycle.status(store.getServerById(server.id)!)).toBe("stopped");
    expect(spawner.servers.size).toBe(0);
  });

  it("refuses a start past the named-server limit with a typed refusal", () => {
    const bob = store.getUser("bob")!;
    expect(lifecycle.start(bob, "one", {}).ok).toBe(true);
    expect(lifecycle.start(bob, "two", {}).ok).toBe(true);
    const third = lifecycle.start(bob, "three", {});
    expect(third).toMatchObject({ ok: false, reason: "limit", status: 400 });
  });

  it("answers a body over the cap with 413 and malformed paths with 400", async () => {
    const big = await call("/hub/api/users/alice/tokens", tokens.alice, { method: "POST", body: JSON.stringify({ note: "x".repeat(70 * 1024) }) });
    expect(big.status).toBe(413);
    expect((await call("/hub/api/users?offset=99999999999999999999", tokens.admin)).status).toBe(400);
  });
});
