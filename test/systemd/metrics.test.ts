// /hub/metrics under the systemd spawner, in a real systemd (test/systemd/sandbox.ts): the per-user and
// per-server memory and CPU figures come from the user's slice and the server's unit in cgroupfs, read by the
// unprivileged web process itself; /hub/health answers 200 with the privileged helper alive.
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { Browser, ROOT, SINGLEUSER, readSse } from "../e2e/harness.js";
import { installArgs, removeAccounts, startHubService, SystemdSandbox } from "./sandbox.js";
import { sample } from "../exposition.js";

const skip = SystemdSandbox.unavailable() ?? (existsSync(SINGLEUSER) ? undefined : `${SINGLEUSER} is not installed`);
if (skip) console.warn(`skipping the systemd metrics tests: ${skip}`);

const hex = randomBytes(2).toString("hex");
const SERVICE_USER = `sms${hex}`;
const PREFIX = `smx${hex}-`;

describe.skipIf(skip !== undefined)("metrics under the systemd spawner", () => {
  let sb: SystemdSandbox;
  let dir: string;
  let url: string;
  let token = "";

  const sh = (argv: string[], what?: string) => sb.run(argv, { what });
  const journal = () => sb.exec(["journalctl", "-u", "slicehub", "--no-pager", "-n", "200", "-o", "cat"]).then((r) => r.stdout);
  const scrape = async () => {
    const r = await fetch(`${url}/hub/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    return r.text();
  };

  beforeAll(async () => {
    dir = mkdtempSync("/var/lib/slicehub-test-");
    chmodSync(dir, 0o755);
    sb = await SystemdSandbox.boot({ keep: [ROOT] });
    url = `http://127.0.0.1:${await freePort()}`;
    const etc = join(dir, "etc");
    await sh(installArgs(dir, SERVICE_USER));
    const config = {
      listen: url,
      state_dir: join(dir, "state"),
      run_as: SERVICE_USER,
      log_level: "debug",
      auth: { kind: "dev", admin_users: ["boss"] },
      spawner: {
        kind: "systemd",
        cmd: [SINGLEUSER],
        start_timeout_s: 90,
        unix_users: { prefix: PREFIX },
        slice_limits: { memory: "2G" },
        profiles: [{ name: "small", title: "Small", memory: "1G", cpu: 1, tasks: 256 }],
      },
    };
    writeFileSync(join(etc, "config.json"), JSON.stringify(config, null, 2));
    await startHubService(sb, dir);
    const deadline = Date.now() + 45_000;
    while (!(await fetch(`${url}/hub/login`).then((r) => r.status === 200, () => false))) {
      if (Date.now() > deadline) throw new Error(`slicehub did not come up:\n${await journal()}`);
      await sleep(100);
    }
    // The admin makes the token a Prometheus server would hold.
    const boss = new Browser(url);
    await boss.login("boss");
    const made = await boss.request("/hub/api/users/boss/tokens", {
      method: "POST",
      headers: { "content-type": "application/json", "x-xsrftoken": await boss.csrf() },
      body: JSON.stringify({ scopes: ["read:metrics"], note: "prometheus" }),
    });
    expect(made.status).toBe(201);
    token = ((await made.json()) as { token: string }).token;
  }, 180_000);

  afterAll(async () => {
    if (sb) {
      if (process.env.SLICEHUB_TEST_JOURNAL) console.log(await journal());
      await sb.stop();
    }
    removeAccounts((name) => name.startsWith(PREFIX) || name === SERVICE_USER);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("/hub/health is 200 with the helper alive", async () => {
    const r = await fetch(`${url}/hub/health`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ok" });
  });

  it("a running server's memory and CPU, and its user's, from the slice and the unit's cgroups", async () => {
    const alice = new Browser(url);
    await alice.login("alice");
    const csrf = await alice.csrf();
    const started = alice.request("/hub/api/users/alice/server", { method: "POST", headers: { "content-type": "application/json", "x-xsrftoken": csrf }, body: JSON.stringify({ profile: "small" }) });
    let events: Record<string, unknown>[] = [];
    for (let i = 0; i < 100 && !events.length; i++) {
      const progress = await alice.request(`/hub/api/users/alice/server/progress?_xsrf=${encodeURIComponent(csrf)}`);
      if (progress.status === 200) events = await readSse(progress, 90_000);
      else {
        await progress.arrayBuffer();
        await sleep(20);
      }
    }
    await started;
    expect((events.at(-1) as { ready?: boolean } | undefined)?.ready, JSON.stringify(events)).toBe(true);

    const body = await scrape();
    expect(sample(body, "jupyterhub_running_servers")).toBe(1);
    expect(sample(body, 'jupyterhub_server_spawn_duration_seconds_count{status="success"}')).toBe(1);
    const userMem = sample(body, 'slicehub_user_memory_bytes{user="alice"}');
    const serverMem = sample(body, 'slicehub_server_memory_bytes{user="alice",server=""}');
    const lines = body.split("\n").filter((l) => l.startsWith("slicehub_user_") || l.startsWith("slicehub_server_")).join("\n");
    expect(userMem, lines).toBeGreaterThan(1_000_000);
    expect(serverMem, lines).toBeGreaterThan(1_000_000);
    expect(userMem!).toBeGreaterThanOrEqual(serverMem!);
    // A Python server has used some CPU to start.
    expect(sample(body, 'slicehub_server_cpu_seconds_total{user="alice",server=""}'), lines).toBeGreaterThan(0);
    expect(sample(body, 'slicehub_user_cpu_seconds_total{user="alice"}'), lines).toBeGreaterThan(0);
    // Nobody else's slice, and only hub users' names.
    expect(body).not.toMatch(/slicehub_user_memory_bytes\{user="(?!alice")/);
  }, 150_000);
});
