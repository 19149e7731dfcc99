// What happens to servers when the hub goes away and comes back, and when a server dies on its own.
// Uses the fake single-user server (fixtures/fake-singleuser.mjs) so it runs in seconds.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, CLI, HubProcess, groupAlive } from "./harness.js";

const FAKE = join(import.meta.dirname, "fixtures/fake-singleuser.mjs");

describe("server adoption and death", () => {
  let hub: HubProcess;
  const tokens: Record<string, string> = {};

  const api = (path: string, token: string, init: RequestInit = {}) =>
    fetch(`${hub.url}${path}`, { ...init, headers: { authorization: `token ${token}`, ...init.headers } });

  /** Process group per user, from the store. */
  const groups = () => {
    const out: Record<string, number> = {};
    for (const name of ["alice", "bob"]) {
      const g = hub.serverProcessGroupOf(name);
      if (g) out[name] = g;
    }
    return out;
  };

  beforeAll(async () => {
    hub = await HubProcess.start({ config: { spawner: { cmd: [process.execPath, FAKE], args: [], start_timeout_s: 20 } } });
    for (const name of ["alice", "bob"]) {
      tokens[name] = execFileSync(process.execPath, [CLI, "token", name, "--create", "--config", hub.configPath]).toString().trim();
      expect((await api(`/hub/api/users/${name}/server`, tokens[name]!, { method: "POST" })).status).toBe(201);
    }
  });

  afterAll(async () => {
    await hub?.destroy();
  });

  it("after kill -9 of the hub, live servers are adopted and dead ones marked stopped", async () => {
    const before = groups();
    expect(Object.keys(before).sort()).toEqual(["alice", "bob"]);
    hub.kill9();
    await new Promise((r) => hub.proc!.once("exit", r));
    process.kill(-before.bob!, "SIGKILL"); // bob's server dies while the hub is away
    await hub.launch();
    await hub.waitForLog(/adopted running server.*alice/);
    await hub.waitForLog(/marked stopped.*bob|bob.*marked stopped/);

    const alice = await fetch(`${hub.url}/user/alice/anything?x=1`);
    expect(alice.status).toBe(200);
    expect(alice.headers.get("x-fake-singleuser")).toBe("alice");
    const aliceModel = (await (await api("/hub/api/users/alice", tokens.alice!)).json()) as { servers: Record<string, { ready: boolean }> };
    expect(aliceModel.servers[""]?.ready).toBe(true);

    const bobModel = (await (await api("/hub/api/users/bob", tokens.bob!)).json()) as { servers: object };
    expect(bobModel.servers).toEqual({});
    const bob = await fetch(`${hub.url}/user/bob/anything`, { redirect: "manual" });
    expect(bob.status).toBe(302);
    expect(bob.headers.get("location")).toBe("/hub/user/bob/anything");
  });

  it("notices a server that died on its own at the next proxied request, and says why", async () => {
    const pgid = groups().alice!;
    process.kill(-pgid, "SIGKILL");
    const deadline = Date.now() + 5000;
    while (groupAlive(pgid) && Date.now() < deadline) await sleep(20);
    const first = await fetch(`${hub.url}/user/alice/api/status`);
    expect(first.status).toBe(503);
    await hub.waitForLog(/server exited on its own/);
    let routed = true;
    for (let i = 0; i < 100 && routed; i++) {
      const r = await fetch(`${hub.url}/user/alice/tree`, { redirect: "manual" });
      routed = r.status !== 302;
      if (routed) await sleep(20);
    }
    expect(routed).toBe(false);
    // Stopping finishes shortly after the route is gone (the spawner still makes sure the group is empty).
    let servers: object = {};
    for (let i = 0; i < 100; i++) {
      servers = ((await (await api("/hub/api/users/alice", tokens.alice!)).json()) as { servers: object }).servers;
      if (Object.keys(servers).length === 0) break;
      await sleep(50);
    }
    expect(servers).toEqual({});
    // Her home page says what happened.
    const browser = new Browser(hub.url);
    await browser.login("alice");
    expect(await (await browser.request("/hub/home")).text()).toContain("The server exited: process");
    // It can be started again.
    expect((await api("/hub/api/users/alice/server", tokens.alice!, { method: "POST" })).status).toBe(201);
    expect((await fetch(`${hub.url}/user/alice/x`)).status).toBe(200);
  });
});
