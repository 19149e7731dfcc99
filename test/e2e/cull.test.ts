// The built-in culler end to end, with the real /usr/bin/jupyterhub-singleuser and an 8 s idle timeout: alice's
// server, which nobody uses, is stopped, the hub logs it and her home page says why; bob's, whose kernel keeps
// printing with no browser attached (so only the server's own activity reports, sent every second here, show it
// is in use), and carol's, which gets requests through the proxy, keep running. Another user cannot report
// activity for alice's server. A config reload turns culling off without a restart, and a new start clears the
// message.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, CLI, HubProcess, SINGLEUSER, readSse, runOnKernel } from "./harness.js";

const haveSingleuser = existsSync(SINGLEUSER);
const IDLE_S = 8;
const isRoot = process.getuid?.() === 0;

describe.skipIf(!haveSingleuser)("built-in culling with the real jupyterhub-singleuser", () => {
  let hub: HubProcess;
  const browsers: Record<string, Browser> = {};
  let carolTraffic: Promise<void> | undefined;
  let stopTraffic = false;

  /** The stored state and stop reason of a user's server (read-only, beside the daemon). */
  const serverRow = (user: string, server = "") => {
    const db = new Database(join(hub.stateDir, "slicehub.sqlite"), { readonly: true, fileMustExist: true });
    try {
      return db
        .prepare("SELECT s.state, s.stop_reason, s.last_activity FROM servers s JOIN users u ON u.id = s.user_id WHERE u.name = ? AND s.name = ?")
        .get(user, server) as { state: string; stop_reason: string | null; last_activity: number | null } | undefined;
    } finally {
      db.close();
    }
  };

  /** Start a user's default server from the home page's form and wait (bounded) for it to be ready. */
  const start = async (b: Browser, user: string) => {
    const csrf = await b.csrf();
    const res = await b.postForm(`/hub/spawn/${user}`, { _xsrf: csrf });
    expect(res.status).toBe(302);
    const progress = await b.request(`/hub/api/users/${user}/server/progress?_xsrf=${encodeURIComponent(csrf)}`);
    const events = await readSse(progress, 90_000);
    expect(events.at(-1), JSON.stringify(events)).toMatchObject({ ready: true });
  };

  const cookieFor = (b: Browser, path: string) => b.cookies.filter((c) => path.startsWith(c.path)).map((c) => `${c.name}=${c.value}`).join("; ");

  beforeAll(async () => {
    hub = await HubProcess.start({
      config: {
        auth: { kind: "dev", admin_users: ["admin"] },
        cull: { enabled: true, idle_timeout_s: IDLE_S, every_s: 1 },
        spawner: {
          // Activity reports every second instead of every 5 minutes, so kernel activity reaches the hub in time.
          args: [...(isRoot ? ["--allow-root"] : []), "--SingleUserNotebookApp.hub_activity_interval=1"],
          start_timeout_s: 60,
          stop_timeout_s: 5,
        },
      },
    });
    for (const name of ["alice", "bob", "carol"]) {
      browsers[name] = new Browser(hub.url);
      await browsers[name].login(name);
    }
  }, 60_000);

  afterAll(async () => {
    stopTraffic = true;
    await carolTraffic;
    await hub?.destroy();
  });

  it("starts three servers; bob's kernel keeps printing with no browser attached, carol's server gets proxy traffic", async () => {
    await Promise.all(["alice", "bob", "carol"].map((n) => start(browsers[n]!, n)));

    // bob: through OAuth once, a kernel whose background thread prints every half second, then the websocket
    // closes and no request of his goes through the proxy any more.
    const bob = browsers.bob!;
    expect((await bob.follow("/user/bob/tree")).res.status).toBe(200);
    const created = await bob.request("/user/bob/api/kernels", {
      method: "POST",
      headers: { "content-type": "application/json", "x-xsrftoken": bob.cookie("_xsrf")! },
      body: JSON.stringify({ name: "python3" }),
    });
    expect(created.status).toBe(201);
    const kernel = ((await created.json()) as { id: string }).id;
    const code = [
      "import threading, time",
      "def tick():",
      "    for i in range(1200):",
      "        print(i, flush=True)",
      "        time.sleep(0.5)",
      "threading.Thread(target=tick, daemon=True).start()",
      "print('ticking')",
    ].join("\n");
    const wsUrl = `${hub.url.replace("http", "ws")}/user/bob/api/kernels/${kernel}/channels?session_id=${randomUUID()}`;
    expect(await runOnKernel(wsUrl, cookieFor(bob, "/user/bob/api/kernels"), code)).toContain("ticking");

    // carol: a request through the proxy every second until the end of the file.
    const carol = browsers.carol!;
    expect((await carol.follow("/user/carol/tree")).res.status).toBe(200);
    carolTraffic = (async () => {
      const deadline = Date.now() + 120_000;
      while (!stopTraffic && Date.now() < deadline) {
        await carol.request("/user/carol/api/status").then((r) => r.arrayBuffer()).catch(() => undefined);
        await sleep(1000);
      }
    })();
  }, 120_000);

  it("refuses another user's activity report for alice's server", async () => {
    const bob = browsers.bob!;
    const csrf = await bob.csrf();
    const made = await bob.request("/hub/api/users/bob/tokens", {
      method: "POST",
      headers: { "content-type": "application/json", "x-xsrftoken": csrf },
      body: JSON.stringify({ note: "try to keep alice's server alive" }),
    });
    expect(made.status).toBe(201);
    const { token } = (await made.json()) as { token: string };
    const now = new Date().toISOString();
    const r = await fetch(`${hub.url}/hub/api/users/alice/activity`, {
      method: "POST",
      headers: { authorization: `token ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ servers: { "": { last_activity: now } }, last_activity: now }),
    });
    expect(r.status).toBe(403);
  });

  it("stops alice's idle server, logs it, and keeps bob's (kernel activity) and carol's (proxy traffic) running", async () => {
    const quietSince = Date.now();
    const deadline = Date.now() + 60_000;
    while (serverRow("alice")?.state !== "stopped" && Date.now() < deadline) await sleep(200);
    expect(serverRow("alice")).toMatchObject({ state: "stopped", stop_reason: `after ${IDLE_S} s idle` });
    // Past the timeout several times over with no request of bob's through the proxy.
    while (Date.now() - quietSince < (IDLE_S + 4) * 1000) await sleep(200);
    expect(serverRow("bob")?.state).toBe("running");
    expect(serverRow("carol")?.state).toBe("running");
    // bob's last activity is recent: it came from his server's reports of kernel activity.
    expect(Date.now() - (serverRow("bob")?.last_activity ?? 0)).toBeLessThan(IDLE_S * 1000);
    const line = await hub.waitForLog(/"msg":"culling server/);
    expect(line.startsWith("<6>")).toBe(true);
    expect(JSON.parse(line.slice(3))).toMatchObject({ level: "info", user: "alice", server: "", reason: "idle" });
    expect(hub.output).not.toMatch(/"msg":"culling server[^\n]*"user":"(bob|carol)"/);
  }, 90_000);

  it("alice's home page says why her server stopped", async () => {
    const html = await (await browsers.alice!.request("/hub/home")).text();
    expect(html).toContain(`Your server was stopped after ${IDLE_S} s idle`);
    expect(await (await browsers.bob!.request("/hub/home")).text()).not.toContain("was stopped");
  });

  it("the external culler's setup from docs/config.md works: a token with its scopes lists ready users and stops a server; with admin:users it deletes a user", async () => {
    // `slicehub token` for an admin, which mints the culler's token with only the scopes its README lists.
    const admin = new Browser(hub.url);
    await admin.login("admin");
    // The admin page names the cull too.
    expect(await (await admin.request("/hub/admin")).text()).toContain(`Culled after ${IDLE_S} s idle`);
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, "token", "admin", "--config", hub.configPath, "--expires-in", "120"], { timeout: 20_000 });
    const boot = stdout.trim();
    const made = await fetch(`${hub.url}/hub/api/users/admin/tokens`, {
      method: "POST",
      headers: { authorization: `token ${boot}`, "content-type": "application/json" },
      body: JSON.stringify({ note: "idle culler", scopes: ["list:users", "read:users:activity", "servers"] }),
    });
    expect(made.status).toBe(201);
    const culler = ((await made.json()) as { token: string }).token;
    const auth = { authorization: `token ${culler}` };
    const page = await fetch(`${hub.url}/hub/api/users?state=ready`, { headers: { ...auth, accept: "application/jupyterhub-pagination+json" } });
    expect(page.status).toBe(200);
    const { items } = (await page.json()) as { items: { name: string; last_activity: string; servers: Record<string, { last_activity: string; started: string }> }[] };
    expect(items.map((u) => u.name).sort()).toEqual(["bob", "carol"]);
    for (const u of items) expect(Date.parse(u.servers[""]!.last_activity)).toBeGreaterThan(Date.now() - 60_000);
    const stopped = await fetch(`${hub.url}/hub/api/users/carol/server`, { method: "DELETE", headers: auth });
    expect([202, 204]).toContain(stopped.status);
    expect((await fetch(`${hub.url}/hub/api/users/carol`, { method: "DELETE", headers: auth })).status).toBe(403);
    const deadline = Date.now() + 20_000;
    while (serverRow("carol")?.state !== "stopped" && Date.now() < deadline) await sleep(200);
    // An admin's (or an external culler's) stop gives no reason on home.
    expect(serverRow("carol")).toMatchObject({ state: "stopped", stop_reason: null });
    expect(await (await browsers.carol!.request("/hub/home")).text()).not.toContain("was stopped");
    // --cull-users: the same scopes plus admin:users delete a user.
    const withUsers = await fetch(`${hub.url}/hub/api/users/admin/tokens`, {
      method: "POST",
      headers: { authorization: `token ${boot}`, "content-type": "application/json" },
      body: JSON.stringify({ note: "idle culler, users too", scopes: ["list:users", "read:users:activity", "servers", "admin:users"] }),
    });
    expect(withUsers.status).toBe(201);
    const usersToken = ((await withUsers.json()) as { token: string }).token;
    stopTraffic = true;
    await carolTraffic;
    expect((await fetch(`${hub.url}/hub/api/users/carol`, { method: "DELETE", headers: { authorization: `token ${usersToken}` } })).status).toBe(204);
    expect(serverRow("carol")).toBeUndefined();
  }, 60_000);

  it("a reload that turns culling off applies without a restart; starting again clears the message, an ordinary stop adds none", async () => {
    hub.writeConfig({ ...hub.config, cull: { enabled: false } });
    await hub.waitForLog(/"msg":"config reloaded"[^\n]*cull/);
    const alice = browsers.alice!;
    await start(alice, "alice");
    expect(await (await alice.request("/hub/home")).text()).not.toContain("was stopped");
    await sleep((IDLE_S + 3) * 1000);
    expect(serverRow("alice")?.state).toBe("running");
    const csrf = await alice.csrf();
    const stopped = await alice.request("/hub/api/users/alice/server", { method: "DELETE", headers: { "x-xsrftoken": csrf } });
    expect([202, 204]).toContain(stopped.status);
    const deadline = Date.now() + 20_000;
    while (serverRow("alice")?.state !== "stopped" && Date.now() < deadline) await sleep(200);
    expect(serverRow("alice")).toMatchObject({ state: "stopped", stop_reason: null });
    expect(await (await alice.request("/hub/home")).text()).not.toContain("was stopped");
  }, 120_000);
});
