// Subdomain mode in-process: the hub serves nothing of its own on a user's host (the attacker's case: a page on
// mallory's host, or any user's host, sending the visitor's hub cookie or a token), routes carry their server's
// host, the OAuth client's redirect is absolute on the server's origin, and the server's environment is
// JupyterHub's for that mode while path mode's stays exactly as it was.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHubApp } from "../../main/app.js";
import { isUserHost, towardServer } from "../../src/hub/hosts.js";
import { Lifecycle } from "../../src/lifecycle.js";
import { log } from "../../src/log.js";
import { serverEnv } from "../../src/server-env.js";
import { Store } from "../../src/store/store.js";
import { RouteTable } from "../../proxy/table.js";
import { ALICE_SERVER_ENV_INPUT, config, FakeSpawner } from "./fakes.js";

const HUB = "http://hub.localhost:8000";
const USERS = "http://users.localhost:8000";
const cfg = config(`{ "public_url": "${HUB}", "subdomain_host": "${USERS}", "spawner": { "kind": "local", "named_servers": { "limit": 2 } }, "log_level": "error" }`);

let store: Store;
let spawner: FakeSpawner;
let table: RouteTable;
let lifecycle: Lifecycle;
let app: ReturnType<typeof createHubApp>;
let token = "";
let sessionCookie = "";

beforeAll(() => {
  store = new Store(":memory:");
  spawner = new FakeSpawner();
  table = new RouteTable();
  lifecycle = new Lifecycle({ store, spawner, table, config: () => cfg, log });
  app = createHubApp({ store, lifecycle, config: () => cfg, log });
  const alice = store.ensureUser("alice", false);
  token = store.createToken({ userId: alice.id, kind: "api", scopes: ["inherit"] }).token;
  const { cookie } = store.createSession(alice.id);
  // Whichever name the session cookie has in this build.
  sessionCookie = `slicehub-session=${cookie}; __Host-slicehub-session=${cookie}`;
});

afterAll(async () => {
  await lifecycle.close();
  for (const s of spawner.servers.values()) s.close();
  store.close();
});

const on = (host: string, path: string, init: { method?: string; token?: boolean; cookie?: boolean; body?: string } = {}) => {
  const headers = new Headers({ host });
  if (init.token) headers.set("authorization", `token ${token}`);
  if (init.cookie) headers.set("cookie", sessionCookie);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  return app.request(`http://${host}${path}`, { method: init.method ?? "GET", headers, body: init.body });
};

describe("isUserHost", () => {
  it("is subdomain_host's host and any host under it except the hub's", () => {
    expect(isUserHost(cfg, "alice.users.localhost")).toBe(true);
    expect(isUserHost(cfg, "users.localhost")).toBe(true);
    expect(isUserHost(cfg, "foo--alice.users.localhost")).toBe(true);
    expect(isUserHost(cfg, "hub.localhost")).toBe(false);
    expect(isUserHost(cfg, "127.0.0.1")).toBe(false);
    expect(isUserHost(cfg, "evilusers.localhost")).toBe(false);
    const jupyterhubShape = config(`{ "public_url": "${HUB}", "subdomain_host": "${HUB}", "log_level": "error" }`);
    expect(isUserHost(jupyterhubShape, "hub.localhost")).toBe(false);
    expect(isUserHost(jupyterhubShape, "alice.hub.localhost")).toBe(true);
    expect(isUserHost(config(`{ "log_level": "error" }`), "alice.users.localhost")).toBe(false);
  });
});

describe("the hub on a user's host", () => {
  it("sends page requests to the hub's host without reading cookies or tokens", async () => {
    for (const host of ["mallory.users.localhost:8000", "alice.users.localhost:8000", "users.localhost:8000"]) {
      const home = await on(host, "/hub/home", { cookie: true });
      expect(home.status, host).toBe(302);
      expect(home.headers.get("location")).toBe(`${HUB}/hub/home`);
      expect(home.headers.get("set-cookie")).toBeNull();
      const user = await on(host, "/user/alice/tree?a=1", { cookie: true });
      expect(user.headers.get("location")).toBe(`${HUB}/hub/user/alice/tree?a=1`);
      const api = await on(host, "/hub/api/user", { token: true });
      expect(api.status).toBe(302);
      expect(await api.text()).not.toContain("alice");
    }
  });

  it("mints no token and changes nothing for other methods, with the hub's cookie or a token", async () => {
    const before = store.listTokens(store.getUser("alice")!.id).length;
    for (const init of [{ cookie: true }, { token: true }]) {
      const post = await on("mallory.users.localhost:8000", "/hub/api/users/alice/tokens", { method: "POST", body: "{}", ...init });
      expect(post.status).toBe(404);
      expect(await post.text()).not.toContain("token\"");
      const form = await on("mallory.users.localhost:8000", "/hub/spawn/alice", { method: "POST", body: "", ...init });
      expect(form.status).toBe(404);
      const gone = await on("alice.users.localhost:8000", "/user/alice/api/contents", { method: "POST", body: "{}", ...init });
      expect(gone.status).toBe(424);
    }
    expect(store.listTokens(store.getUser("alice")!.id).length).toBe(before);
    expect(store.getServer(store.getUser("alice")!.id, "")?.state ?? "stopped").toBe("stopped");
  });

  it("still serves the hub on its own host and on the internal API address", async () => {
    expect((await on("hub.localhost:8000", "/hub/api/user", { token: true })).status).toBe(200);
    expect((await on("127.0.0.1:8000", "/hub/api/user", { token: true })).status).toBe(200);
  });
});

describe("a server in subdomain mode", () => {
  it("is routed on its own host, registered with an absolute redirect URI, and unrouted with that host at stop", async () => {
    const alice = store.getUser("alice")!;
    for (const name of ["", "lab"]) {
      const started = lifecycle.start(alice, name);
      expect(started.ok).toBe(true);
      if (started.ok) await started.done;
    }
    const routes = table.list().map((r) => ({ prefix: r.prefix, host: r.host }));
    expect(routes).toEqual(
      expect.arrayContaining([
        { prefix: "/user/alice", host: "alice.users.localhost" },
        { prefix: "/user/alice/lab", host: "lab--alice.users.localhost" },
      ]),
    );
    expect(store.getOAuthClient("jupyterhub-user-alice")?.redirect_uri).toBe("http://alice.users.localhost:8000/user/alice/oauth_callback");
    expect(store.getOAuthClient("jupyterhub-user-alice~lab")?.redirect_uri).toBe("http://lab--alice.users.localhost:8000/user/alice/lab/oauth_callback");
    expect(towardServer(cfg, "alice", "", "/hub/user/alice/tree")).toBe("http://alice.users.localhost:8000/user/alice/tree");
    expect(towardServer(cfg, "alice", "lab", "/user/alice/lab/")).toBe("http://lab--alice.users.localhost:8000/user/alice/lab/");
    expect(towardServer(cfg, "alice", "", "/hub/home")).toBe("/hub/home");
    const home = await on("hub.localhost:8000", "/hub/home", { cookie: true });
    const html = await home.text();
    expect(html).toContain('href="http://alice.users.localhost:8000/user/alice/"');
    expect(html).toContain('href="http://lab--alice.users.localhost:8000/user/alice/lab/"');
    for (const name of ["", "lab"]) await lifecycle.stop(alice, store.getServer(alice.id, name)!);
    expect(table.size).toBe(0);
  });
});

describe("serverEnv", () => {
  const input = ALICE_SERVER_ENV_INPUT;

  it("gives JupyterHub's subdomain-mode variables", () => {
    const env = serverEnv(cfg, input);
    expect(env.JUPYTERHUB_HOST).toBe(HUB);
    expect(env.JUPYTERHUB_OAUTH_CALLBACK_URL).toBe("http://alice.users.localhost:8000/user/alice/oauth_callback");
    expect(env.JUPYTERHUB_PUBLIC_URL).toBe("http://alice.users.localhost:8000/user/alice/");
    expect(env.JUPYTERHUB_PUBLIC_HUB_URL).toBe(`${HUB}/hub/`);
    expect(env.JUPYTERHUB_SERVICE_PREFIX).toBe("/user/alice/");
    expect(env.JUPYTERHUB_BASE_URL).toBe("/");
  });

  it("leaves path mode as it was", () => {
    const path = config(`{ "public_url": "http://localhost:8000", "log_level": "error" }`);
    expect(serverEnv(path, { ...input, server: "foo", serviceUrl: "http://127.0.0.1:5000/user/alice/foo/" })).toEqual({
      USER: "alice",
      HOME: "/home/alice",
      SHELL: "/bin/sh",
      JUPYTERHUB_CLIENT_ID: "jupyterhub-user-alice~foo",
      JUPYTERHUB_HOST: "",
      JUPYTERHUB_OAUTH_CALLBACK_URL: "/user/alice/foo/oauth_callback",
      JUPYTERHUB_OAUTH_SCOPES: '["access:servers!server=alice/foo","access:servers!user=alice"]',
      JUPYTERHUB_OAUTH_ACCESS_SCOPES: '["access:servers!server=alice/foo","access:servers!user=alice"]',
      JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES: "[]",
      JUPYTERHUB_USER: "alice",
      JUPYTERHUB_SERVER_NAME: "foo",
      JUPYTERHUB_API_URL: "http://127.0.0.1:8000/hub/api",
      JUPYTERHUB_ACTIVITY_URL: "http://127.0.0.1:8000/hub/api/users/alice/activity",
      JUPYTERHUB_BASE_URL: "/",
      JUPYTERHUB_SERVICE_PREFIX: "/user/alice/foo/",
      JUPYTERHUB_SERVICE_URL: "http://127.0.0.1:5000/user/alice/foo/",
      JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED: "0",
      JUPYTERHUB_PUBLIC_HUB_URL: "http://localhost:8000/hub/",
      JUPYTERHUB_PUBLIC_URL: "http://localhost:8000/user/alice/foo/",
    });
  });
});
