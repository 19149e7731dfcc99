// Conformance, §5.1, §5.2: starting and stopping servers, and progress.
import { describe, expect, it } from "vitest";
import { readSse } from "../harness.js";
import { checkVersionHeader, expectApiError, hub, HUB_ONLY_ENV, PAGINATION, req, serverEnv, tokens, waitFor, waitForNewLog } from "./hub.js";

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
