// A hub killed at the worst moments, and how the next one comes back:
// - between launching a server and storing its state (SLICEHUB_TEST_PAUSE_AFTER_LAUNCH_MS holds the first
//   hub inside that gap): the next hub finds the process by its tag and stops it, the store says stopped,
//   and the next start runs exactly one copy;
// - while a start was pending with a server that ignores SIGTERM: the next hub answers at once and stops
//   that server in the background (status "stopping" until it is gone).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { CLI, HubProcess } from "./harness.js";

const STUBBORN = join(import.meta.dirname, "fixtures/stubborn-singleuser.mjs");

/** Live processes whose environment says they are `user`'s server of the hub on `port` (and tagged by it). */
function serverProcesses(port: number, user: string): { pid: number; pgid: number }[] {
  const out: { pid: number; pgid: number }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z" || fields[0] === "X") continue;
      const env = readFileSync(`/proc/${name}/environ`, "utf8").split("\0");
      if (!env.some((e) => e.startsWith("SLICEHUB_SERVER="))) continue;
      if (!env.includes(`JUPYTERHUB_USER=${user}`)) continue;
      if (!env.some((e) => e.startsWith("JUPYTERHUB_API_URL=") && e.includes(`:${port}/`))) continue;
      out.push({ pid: Number(name), pgid: Number(fields[2]) });
    } catch {
      // gone, or not ours
    }
  }
  return out;
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const hubs: HubProcess[] = [];
const leftovers = new Set<number>();
afterEach(() => {
  delete process.env.SLICEHUB_TEST_PAUSE_AFTER_LAUNCH_MS;
});
afterAll(async () => {
  for (const hub of hubs) await hub.destroy();
  for (const g of leftovers) {
    try {
      process.kill(-g, "SIGKILL");
    } catch {
      // gone
    }
  }
});

async function startHub(stopTimeoutS: number): Promise<HubProcess> {
  const hub = await HubProcess.start({ config: { spawner: { cmd: [process.execPath, STUBBORN], args: [], start_timeout_s: 60, stop_timeout_s: stopTimeoutS } } });
  hubs.push(hub);
  return hub;
}

const tokenFor = (hub: HubProcess, user: string) =>
  execFileSync(process.execPath, [CLI, "token", user, "--create", "--config", hub.configPath]).toString().trim();

async function killHub(hub: HubProcess): Promise<void> {
  const exited = new Promise((r) => hub.proc!.once("exit", r));
  hub.kill9();
  await exited;
}

describe("a hub killed between launching a server and storing its state", () => {
  it("leaves no orphan: the next hub stops it, says stopped, and the next start runs one copy", async () => {
    // Only the first daemon pauses inside the gap (the env is read when it starts a server).
    process.env.SLICEHUB_TEST_PAUSE_AFTER_LAUNCH_MS = "60000";
    const hub = await startHub(2);
    const token = tokenFor(hub, "gap");
    const api = (path: string, init: RequestInit = {}) => fetch(`${hub.url}${path}`, { ...init, headers: { authorization: `token ${token}` } });

    const abort = new AbortController();
    void api("/hub/api/users/gap/server", { method: "POST", signal: abort.signal }).catch(() => undefined);
    await hub.waitForLog(/test pause after launch/, 15_000);
    const [orphan] = await until("the server process to run", () => {
      const found = serverProcesses(hub.port, "gap");
      return found.length > 0 && found;
    });
    leftovers.add(orphan!.pgid);
    abort.abort();
    await killHub(hub);
    // The scenario: the process outlived the hub, and the store has no pid for it.
    expect(serverProcesses(hub.port, "gap")).toHaveLength(1);
    expect(hub.serverProcessGroupOf("gap")).toBeUndefined();

    delete process.env.SLICEHUB_TEST_PAUSE_AFTER_LAUNCH_MS;
    await hub.launch();
    await hub.waitForLog(/stopped a server the store did not know/, 15_000);
    expect(serverProcesses(hub.port, "gap")).toEqual([]);
    const model = (await (await api("/hub/api/users/gap?include_stopped_servers")).json()) as { servers: Record<string, { stopped: boolean; pending: unknown }> };
    expect(model.servers[""]).toMatchObject({ stopped: true, pending: null });

    expect((await api("/hub/api/users/gap/server", { method: "POST" })).status).toBe(201);
    const copies = serverProcesses(hub.port, "gap");
    expect(copies).toHaveLength(1);
    leftovers.add(copies[0]!.pgid);
    expect((await fetch(`${hub.url}/user/gap/x`)).headers.get("x-fake-singleuser")).toBe("gap");
  }, 90_000);
});

describe("a restarted hub with a half-started server that ignores SIGTERM", () => {
  it("answers before that server is stopped, says stopping meanwhile, then stopped", async () => {
    // Long enough that "answered while the server still runs" holds on a loaded machine too.
    const stopTimeoutS = 15;
    const hub = await startHub(stopTimeoutS);
    const token = tokenFor(hub, "hang");
    const api = (path: string, init: RequestInit = {}) => fetch(`${hub.url}${path}`, { ...init, headers: { authorization: `token ${token}` } });

    const abort = new AbortController();
    void api("/hub/api/users/hang/server", { method: "POST", signal: abort.signal }).catch(() => undefined);
    // Launched and recorded, never ready: pending in the store.
    const pgid = await until("the launch to be recorded", () => hub.serverProcessGroupOf("hang"));
    leftovers.add(pgid);
    abort.abort();
    await killHub(hub);

    await hub.launch(); // returns at the first 200 from GET /hub/api
    // Answered while the server still runs: stopping it takes stop_timeout_s (it ignores SIGTERM). No wall-time
    // bound here (a loaded machine made one flaky): the server's process and the API's answer say it.
    expect(serverProcesses(hub.port, "hang")).toHaveLength(1);
    const during = (await (await api("/hub/api/users/hang")).json()) as { pending: unknown; servers: Record<string, { pending: unknown; ready: boolean }> };
    expect(during.pending).toBe("stop");
    expect(during.servers[""]).toMatchObject({ pending: "stop", ready: false });
    expect(hub.output).not.toMatch(/server not adopted, marked stopped.*hang|hang.*server not adopted/);
    // A start meanwhile is refused as still stopping.
    const refused = await api("/hub/api/users/hang/server", { method: "POST" });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { message: string }).message).toMatch(/still stopping/);

    await hub.waitForLog(/server not adopted, marked stopped/, 40_000);
    await until("the server to be gone", () => serverProcesses(hub.port, "hang").length === 0, 10_000);
    const after = (await (await api("/hub/api/users/hang")).json()) as { pending: unknown; servers: object };
    expect(after.pending).toBeNull();
    expect(after.servers).toEqual({});
  }, 90_000);
});
