// Conformance, §4.1, §4.3, §4.4: the users list as the idle culler uses it.
import { beforeAll, describe, expect, it } from "vitest";
import { groupAlive } from "../harness.js";
import { expectApiError, hub, PAGINATION, type Reply, req, SERVER_MODEL_KEYS, TIMESTAMP, tokens } from "./hub.js";

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
