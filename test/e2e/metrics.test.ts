// /hub/metrics and /hub/health on the real daemon, with the real jupyterhub-singleuser and a real Prometheus
// (Debian's `prometheus`) scraping it with a bearer token from a credentials file. Prometheus runs on 127.0.0.1
// with a random port and a temporary storage directory, and is stopped by its PID.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { CLI, HubProcess, SINGLEUSER } from "./harness.js";
import { sample } from "../exposition.js";

const PROMETHEUS = "/usr/bin/prometheus";
const haveSingleuser = existsSync(SINGLEUSER);
const havePrometheus = existsSync(PROMETHEUS);

describe.skipIf(!haveSingleuser)("metrics and health on the real daemon", () => {
  let hub: HubProcess;
  const tokens: Record<string, string> = {};
  const api = (path: string, token: string | undefined, init: RequestInit = {}) =>
    fetch(`${hub.url}${path}`, { ...init, headers: { ...(token ? { authorization: `token ${token}` } : {}), ...init.headers } });
  const scrape = async () => {
    const r = await api("/hub/metrics", tokens.prometheus);
    expect(r.status).toBe(200);
    return r.text();
  };

  beforeAll(async () => {
    hub = await HubProcess.start({ config: { auth: { kind: "dev", admin_users: ["admin"] }, log_level: "info" } });
    for (const name of ["admin", "alice"]) {
      tokens[name] = execFileSync(process.execPath, [CLI, "token", name, "--create", "--config", hub.configPath]).toString().trim();
    }
    // auth.admin_users is applied to existing users when the hub starts (and at config reloads).
    await hub.stop();
    await hub.launch();
    // What an admin gives a Prometheus server: a token with read:metrics and nothing else (docs/config.md).
    tokens.prometheus = execFileSync(process.execPath, [CLI, "token", "admin", "--scopes", "read:metrics", "--note", "prometheus", "--config", hub.configPath]).toString().trim();
  }, 60_000);

  afterAll(async () => {
    await hub?.destroy();
  });

  it("slicehub token --scopes: the token holds only read:metrics; a user who does not hold it gets none", async () => {
    const r = await api("/hub/api/user", tokens.prometheus);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { scopes: string[] }).scopes).toEqual(["read:metrics"]);
    const refused = spawnSync(process.execPath, [CLI, "token", "alice", "--scopes", "read:metrics", "--config", hub.configPath]);
    expect(refused.status).toBe(1);
    expect(refused.stdout.toString()).toBe("");
    expect(refused.stderr.toString()).toMatch(/alice does not hold read:metrics/);
    const bad = spawnSync(process.execPath, [CLI, "token", "admin", "--scopes", "read:everything", "--config", hub.configPath]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.toString()).toMatch(/Scope 'read:everything' does not exist/);
  });

  it("/hub/health: 200 and a small JSON body for GET and HEAD, without auth", async () => {
    const r = await fetch(`${hub.url}/hub/health`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ok" });
    const head = await fetch(`${hub.url}/hub/health`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("refuses no token, a user's token and a wrong token; the read:metrics token gets the text format", async () => {
    for (const token of [undefined, tokens.alice, "wrong"]) {
      const r = await api("/hub/metrics", token);
      expect(r.status).toBe(403);
      expect(await r.json()).toEqual({ status: 403, message: "Access to metrics requires scope 'read:metrics'" });
    }
    const r = await api("/hub/metrics", tokens.prometheus);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const body = await r.text();
    expect(body).toContain("# TYPE jupyterhub_server_spawn_duration_seconds histogram");
    expect(sample(body, "jupyterhub_hub_startup_duration_seconds_count")).toBe(1);
    expect(sample(body, "jupyterhub_running_servers")).toBe(0);
    expect(sample(body, "jupyterhub_total_users")).toBe(2);
  });

  it("a real server start is observed in the spawn histogram, the running-servers gauge and the proxy counter", async () => {
    expect((await api("/hub/api/users/alice/server", tokens.alice, { method: "POST" })).status).toBeLessThan(300);
    const deadline = Date.now() + 90_000;
    let ready = false;
    while (!ready && Date.now() < deadline) {
      const user = (await (await api("/hub/api/users/alice", tokens.alice)).json()) as { servers?: Record<string, { ready: boolean }> };
      ready = user.servers?.[""]?.ready === true;
      if (!ready) await sleep(250);
    }
    expect(ready).toBe(true);
    // Through the proxy to the server: the singleuser's own API.
    const proxied = await api("/user/alice/api/status", tokens.alice);
    expect(proxied.status).toBe(200);
    const body = await scrape();
    expect(sample(body, 'jupyterhub_server_spawn_duration_seconds_count{status="success"}')).toBe(1);
    expect(sample(body, 'jupyterhub_server_spawn_duration_seconds_count{status="failure"}')).toBe(0);
    expect(sample(body, "jupyterhub_running_servers")).toBe(1);
    expect(sample(body, 'slicehub_proxy_requests_total{protocol="http",code="2xx"}')).toBeGreaterThanOrEqual(1);
    expect(sample(body, 'jupyterhub_active_users{period="24h"}')).toBeGreaterThanOrEqual(1);
    // The hub's own requests, by route pattern: the user lookups above.
    expect(sample(body, 'jupyterhub_request_duration_seconds_count{method="GET",handler="/hub/api/users/:name",code="200"}')).toBeGreaterThanOrEqual(1);
  }, 120_000);

  describe.skipIf(!havePrometheus)("a real Prometheus", () => {
    let prom: ChildProcess | undefined;
    let promUrl = "";
    let promLog = "";

    beforeAll(async () => {
      const dir = join(hub.dir, "prometheus");
      mkdirSync(join(dir, "data"), { recursive: true });
      writeFileSync(join(dir, "token"), `${tokens.prometheus}\n`, { mode: 0o600 });
      const target = new URL(hub.url).host;
      // The scrape config the docs show: metrics_path /hub/metrics and a token file. A second job without the
      // token shows that an anonymous scrape is refused.
      writeFileSync(
        join(dir, "prometheus.yml"),
        [
          "global:",
          "  scrape_interval: 1s",
          "  scrape_timeout: 1s",
          "scrape_configs:",
          "  - job_name: slicehub",
          "    metrics_path: /hub/metrics",
          "    authorization:",
          `      credentials_file: ${join(dir, "token")}`,
          "    static_configs:",
          `      - targets: ["${target}"]`,
          "  - job_name: anonymous",
          "    metrics_path: /hub/metrics",
          "    static_configs:",
          `      - targets: ["${target}"]`,
          "",
        ].join("\n"),
      );
      const port = await freePort();
      promUrl = `http://127.0.0.1:${port}`;
      prom = spawn(PROMETHEUS, [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      prom.stdout!.on("data", (d: Buffer) => (promLog = (promLog + d.toString()).slice(-8000)));
      prom.stderr!.on("data", (d: Buffer) => (promLog = (promLog + d.toString()).slice(-8000)));
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        if (prom.exitCode !== null) throw new Error(`prometheus exited with ${prom.exitCode}:\n${promLog}`);
        const ok = await fetch(`${promUrl}/-/ready`).then((r) => r.ok, () => false);
        if (ok) return;
        await sleep(200);
      }
      throw new Error(`prometheus was not ready within 30 s:\n${promLog}`);
    }, 40_000);

    afterAll(async () => {
      const p = prom;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    });

    type Target = { labels: { job: string }; health: string; lastError: string };
    /** Polls Prometheus until `done` holds for what `read` returns (bounded), and returns it. */
    async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, what: string): Promise<T> {
      const deadline = Date.now() + 30_000;
      let last: T | undefined;
      while (Date.now() < deadline) {
        last = await read();
        if (done(last)) return last;
        await sleep(250);
      }
      throw new Error(`Prometheus: ${what} within 30 s; last: ${JSON.stringify(last)}\n${promLog}`);
    }

    it("scrapes the hub with the token (target up), and is refused without one (403)", async () => {
      const targets = await until(
        async () => ((await (await fetch(`${promUrl}/api/v1/targets`)).json()) as { data: { activeTargets: Target[] } }).data.activeTargets,
        (ts) => ts.length === 2 && ts.every((t) => t.health !== "unknown"),
        "both targets scraped",
      );
      const byJob = Object.fromEntries(targets.map((t) => [t.labels.job, t]));
      expect(byJob.slicehub!.health, byJob.slicehub!.lastError).toBe("up");
      expect(byJob.anonymous!.health).toBe("down");
      expect(byJob.anonymous!.lastError).toMatch(/403/);
    });

    it("answers queries for JupyterHub's metric names with the hub's values", async () => {
      const query = (q: string) => async () => {
        const r = (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as {
          status: string;
          data: { result: { metric: Record<string, string>; value: [number, string] }[] };
        };
        expect(r.status).toBe("success");
        return r.data.result;
      };
      const running = await until(query('jupyterhub_running_servers{job="slicehub"}'), (r) => r.length === 1, "jupyterhub_running_servers");
      expect(running[0]!.value[1]).toBe("1");
      const spawns = await until(query('jupyterhub_server_spawn_duration_seconds_count{job="slicehub",status="success"}'), (r) => r.length === 1, "the spawn histogram");
      expect(spawns[0]!.value[1]).toBe("1");
      const users = await until(query('jupyterhub_active_users{job="slicehub"}'), (r) => r.length === 3, "active users by period");
      expect(users.map((u) => u.metric.period).sort()).toEqual(["24h", "30d", "7d"]);
    });
  });
});
