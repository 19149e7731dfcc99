// Conformance, §2.2, §7.1: the server's own token and activity reports.
import { beforeAll, describe, expect, it } from "vitest";
import { expectApiError, req, serverEnv, TIMESTAMP, tokens } from "./hub.js";

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
