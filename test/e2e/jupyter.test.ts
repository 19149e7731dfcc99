// The walking skeleton end to end, against the real /usr/bin/jupyterhub-singleuser (Debian's jupyterhub
// 3.0 with the classic Notebook 6): dev login, spawn with progress, the browser OAuth dance through the
// proxy, a kernel over REST and websocket, other users refused, kill -9 of the hub with the kernel
// surviving, an invalid config edit refused, and stop killing the whole process group.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, HubProcess, SINGLEUSER, groupAlive, readSse, runOnKernel } from "./harness.js";

const haveSingleuser = existsSync(SINGLEUSER);

describe.skipIf(!haveSingleuser)("walking skeleton with the real jupyterhub-singleuser", () => {
  let hub: HubProcess;
  const alice = () => new Browser(hub.url);
  let aliceBrowser: Browser;
  let kernelId = "";

  beforeAll(async () => {
    hub = await HubProcess.start({ config: { spawner: { named_servers: { limit: 2 } } } });
    aliceBrowser = alice();
  });

  afterAll(async () => {
    await hub?.destroy();
  });

  it("logs in with the dev form and shows the home page", async () => {
    await aliceBrowser.login("alice");
    const home = await aliceBrowser.request("/hub/home");
    expect(home.status).toBe(200);
    const html = await home.text();
    expect(html).toContain("My servers");
    expect(html).toContain("alice");
  });

  it("starts a server from the home page and streams its progress to ready", async () => {
    const csrf = await aliceBrowser.csrf();
    const start = await aliceBrowser.postForm("/hub/spawn/alice", { _xsrf: csrf });
    expect(start.status).toBe(302);
    expect(start.headers.get("location")).toMatch(/^\/hub\/spawn-pending\/alice/);
    // As the spawn-pending page's EventSource asks: the session's CSRF token in the query.
    const progress = await aliceBrowser.request(`/hub/api/users/alice/server/progress?_xsrf=${encodeURIComponent(csrf)}`);
    expect(progress.headers.get("content-type")).toContain("text/event-stream");
    const events = await readSse(progress);
    expect(events[0]).toEqual({ progress: 0, message: "Server requested" });
    const last = events.at(-1)!;
    expect(last).toMatchObject({ progress: 100, ready: true, url: "/user/alice/" });
  });

  it("follows the OAuth redirects through the proxy until the server's API answers", async () => {
    const denied = await aliceBrowser.request("/user/alice/api/status");
    expect(denied.status).toBe(403); // no server cookie yet: API requests are refused, not redirected
    const { res, hops } = await aliceBrowser.follow("/user/alice/tree");
    expect(res.status).toBe(200);
    expect(hops.some((h) => h.startsWith("/hub/api/oauth2/authorize?client_id=jupyterhub-user-alice"))).toBe(true);
    expect(hops.some((h) => h.startsWith("/user/alice/oauth_callback?code="))).toBe(true);
    const status = await aliceBrowser.request("/user/alice/api/status");
    expect(status.status).toBe(200);
    expect(await status.json()).toHaveProperty("kernels");
  });

  it("creates a kernel over REST and runs print(6*7) over its websocket through the proxy", async () => {
    const xsrf = aliceBrowser.cookie("_xsrf");
    expect(xsrf, "the notebook sets _xsrf on page loads").toBeTruthy();
    const created = await aliceBrowser.request("/user/alice/api/kernels", {
      method: "POST",
      headers: { "content-type": "application/json", "x-xsrftoken": xsrf! },
      body: JSON.stringify({ name: "python3" }),
    });
    expect(created.status).toBe(201);
    kernelId = ((await created.json()) as { id: string }).id;
    const wsUrl = `${hub.url.replace("http", "ws")}/user/alice/api/kernels/${kernelId}/channels?session_id=${randomUUID()}`;
    const cookie = aliceBrowser.cookies.filter((c) => "/user/alice/api/kernels".startsWith(c.path)).map((c) => `${c.name}=${c.value}`).join("; ");
    expect(await runOnKernel(wsUrl, cookie, "print(6*7)")).toBe("42\n");
  });

  it("refuses another user's cookie and token on alice's server with 403", async () => {
    const bob = new Browser(hub.url);
    await bob.login("bob");
    // Bob's browser goes through OAuth; the hub refuses to authorize him for alice's server.
    const { res } = await bob.follow("/user/alice/tree");
    expect(res.status).toBe(403);
    expect(await bob.request("/user/alice/api/status").then((r) => r.status)).toBe(403);
    // Bob's own API token, sent to alice's server, is checked by the server against the hub: 403.
    const csrf = await bob.csrf();
    const tokenRes = await bob.request("/hub/api/users/bob/tokens", {
      method: "POST",
      headers: { "content-type": "application/json", "x-xsrftoken": csrf },
      body: JSON.stringify({ note: "e2e" }),
    });
    expect(tokenRes.status).toBe(201);
    const { token } = (await tokenRes.json()) as { token: string };
    const withToken = await fetch(`${hub.url}/user/alice/api/status`, { headers: { authorization: `token ${token}` } });
    expect(withToken.status).toBe(403);
    // …and alice's own server refuses bob's token for the kernel too.
    const kernel = await fetch(`${hub.url}/user/alice/api/kernels/${kernelId}`, { headers: { authorization: `token ${token}` } });
    expect(kernel.status).toBe(403);
  });

  it("keeps the server and its kernel alive across kill -9 of the hub", async () => {
    hub.kill9();
    await new Promise((r) => hub.proc!.once("exit", r));
    // While the hub is down nothing answers on its port.
    await expect(fetch(`${hub.url}/hub/api`)).rejects.toThrow();
    await hub.launch();
    await hub.waitForLog(/adopted running server/);
    const status = await aliceBrowser.request("/user/alice/api/status");
    expect(status.status).toBe(200);
    const kernel = await aliceBrowser.request(`/user/alice/api/kernels/${kernelId}`);
    expect(kernel.status).toBe(200);
    const wsUrl = `${hub.url.replace("http", "ws")}/user/alice/api/kernels/${kernelId}/channels?session_id=${randomUUID()}`;
    const cookie = aliceBrowser.cookies.filter((c) => "/user/alice/api/kernels".startsWith(c.path)).map((c) => `${c.name}=${c.value}`).join("; ");
    expect(await runOnKernel(wsUrl, cookie, "print(6*7)")).toBe("42\n");
  });

  it("refuses an invalid config edit and keeps serving with the last good config", async () => {
    hub.writeRawConfig('{ "listen": "http://127.0.0.1:1", "spawner": { "kind": "local", "cmd": [] }, "bogus": 1 ');
    const line = await hub.waitForLog(/config rejected/);
    expect(line).toContain("keeping the last good config");
    expect((await fetch(`${hub.url}/hub/api`)).status).toBe(200);
    expect((await aliceBrowser.request("/user/alice/api/status")).status).toBe(200);
    // A valid edit afterwards applies without touching the running server.
    hub.writeConfig({ ...hub.config, jupyterhub_version: "3.0.1" });
    await hub.waitForLog(/config reloaded/);
    const deadline = Date.now() + 5000;
    let version = "";
    while (Date.now() < deadline && version !== "3.0.1") {
      version = (await fetch(`${hub.url}/hub/api`)).headers.get("x-jupyterhub-version") ?? "";
      if (version !== "3.0.1") await sleep(50);
    }
    expect(version).toBe("3.0.1");
    expect((await aliceBrowser.request("/user/alice/api/status")).status).toBe(200);
  });

  it("stops the server and its whole process group, then shows it as not running", async () => {
    const [pgid] = hub.serverProcessGroups();
    expect(pgid).toBeGreaterThan(1);
    expect(groupAlive(pgid!)).toBe(true);
    const csrf = await aliceBrowser.csrf();
    const stop = await aliceBrowser.postForm("/hub/stop/alice", { _xsrf: csrf });
    expect(stop.status).toBe(303);
    expect(groupAlive(pgid!)).toBe(false);
    // The proxy no longer routes: a GET goes to the hub, which says the server is not running.
    const { res, hops } = await aliceBrowser.follow("/user/alice/tree");
    expect(hops[0]).toBe("/hub/user/alice/tree");
    expect(res.status).toBe(424);
    // An API call to the stopped server gets 424, which JupyterLab reads as "server gone"; with a token
    // the hub knows who asks and points at the restart URL.
    const api = await aliceBrowser.request("/user/alice/api/contents", { method: "POST" });
    expect(api.status).toBe(424);
    const token = await aliceBrowser.request("/hub/api/users/alice/tokens", {
      method: "POST",
      headers: { "content-type": "application/json", "x-xsrftoken": csrf },
      body: "{}",
    });
    const { token: aliceToken } = (await token.json()) as { token: string };
    const withToken = await fetch(`${hub.url}/user/alice/api/contents`, { method: "POST", headers: { authorization: `token ${aliceToken}` } });
    expect(withToken.status).toBe(424);
    expect(((await withToken.json()) as { message: string }).message).toContain("/hub/spawn/alice");
  });
});
