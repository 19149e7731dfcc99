// The hub API benchmark: one run measures, with wrk and an admin token, GET /hub/api (the baseline: routing,
// identify() and a tiny JSON body), GET /hub/api/users (51 users, full models), GET /hub/api/users/{name} and
// GET /hub/api/users with a new query string per request (so slicehub cannot answer from a kept reply),
// on slicehub and, where /usr/bin/jupyterhub is installed, on JupyterHub through its configurable-http-proxy.
// Every figure is printed as a ratio to the same hub's GET /hub/api from the same run. See bench/README.md.
//
//   npm run build && npm run bench:api [-- --rounds 3 --only slicehub,jupyterhub --no-pin ...]   (--help for all)
//
// Exit status: 0 when the bench ran (whether or not the targets were met), 1 when the bench itself broke.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { freePort } from "../src/ports.js";
import { alive, boundedInt, CHP, CLI, cpuSeconds, Fatal, fmtInt, fmtMs, fmtRatio, fmtUs, foreignGroups, killGroup, launch, machineBusySeconds, medianRun, NODE, NOISY_OTHER_PCT, pct, pinning, type Proc, procs, request, run, say, stop, table, tempDir, until, UPSTREAM, runBench, parseWrk, type WrkResult } from "./common.js";

const JUPYTERHUB = "/usr/bin/jupyterhub";
const ADMIN = "bench";
/** One admin plus these: 51 users, the figure in the issue. */
const OTHER_USERS = Array.from({ length: 50 }, (_, i) => `u${String(i + 1).padStart(2, "0")}`);
/** slicehub: users whose default server is started (the bench upstream), and of those, the ones then stopped. */
const RUNNING = ["u01", "u02", "u03", "u04"];
const STOPPED = ["u05", "u06"];
const ONE_USER = "u01";

const TARGETS = { users: 0.5, user: 0.8 };
const WRK = { threads: 1, connections: 8 };
/** Seconds of load on each endpoint before the first measured run. */
const PREWARM = 2;

// ---------------------------------------------------------------------------------------------- options

function parseOptions() {
  try {
    return parseArgs({
      options: {
        seconds: { type: "string", default: "5" },
        warmup: { type: "string", default: "1" },
        rounds: { type: "string", default: "1" },
        only: { type: "string", default: "slicehub,jupyterhub" },
        endpoints: { type: "string", default: "api,users,user,fresh" },
        "no-pin": { type: "boolean", default: false },
        "cpu-prof": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\nRun with --help for the options.\n`);
    process.exit(2);
  }
}
const { values: opts } = parseOptions();
const { cpus, PIN, CLIENT_CPUS, SERVER_CPUS, pinned } = pinning(Boolean(opts["no-pin"]));
if (opts.help) {
  process.stdout.write(
    "Usage: node dist/bench/api.js [options]   (npm run bench:api -- [options], after npm run build)\n" +
      "  --seconds N     measured seconds per wrk run (1..60, default 5)\n" +
      "  --warmup N      wrk warm-up seconds before each measured run (0..30, default 1)\n" +
      "  --rounds N      measure the three endpoints N times in turn (1..9) and report each one's median run\n" +
      "  --only LIST     which hubs: slicehub, jupyterhub (skipped when /usr/bin/jupyterhub is missing); default both\n" +
      "  --endpoints L   which endpoints: api (GET /hub/api), users, user, fresh (GET /hub/api/users with a new query\n" +
      "                  string each time, so every reply is built); default all (for profiling one)\n" +
      "  --no-pin        do not pin wrk to CPU 0 and the hub side to CPU 1 (taskset)\n" +
      "  --cpu-prof DIR  run the slicehub daemon under node --cpu-prof; the profile lands in DIR at the end\n",
  );
  process.exit(0);
}
const SECONDS = boundedInt("seconds", opts.seconds, 1, 60);
const WARMUP = boundedInt("warmup", opts.warmup, 0, 30);
const ROUNDS = boundedInt("rounds", opts.rounds, 1, 9);
const PARTS = new Set(opts.only!.split(",").map((x) => x.trim()));
for (const part of PARTS) {
  if (!["slicehub", "jupyterhub"].includes(part)) {
    process.stderr.write(`bench: --only takes slicehub and jupyterhub, not ${part}\n`);
    process.exit(2);
  }
}


const ENDPOINT_KEYS = new Set(opts.endpoints!.split(",").map((x) => x.trim()));
for (const key of ENDPOINT_KEYS) {
  if (!["api", "users", "user", "fresh"].includes(key)) {
    process.stderr.write(`bench: --endpoints takes api, users, user and fresh, not ${key}\n`);
    process.exit(2);
  }
}



// ---------------------------------------------------------------------------------------------- processes









// ---------------------------------------------------------------------------------------------- http helpers





// ---------------------------------------------------------------------------------------------- /proc


/** The direct children of a process (JupyterHub's configurable-http-proxy). */
function childrenOf(pid: number | undefined): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}


function ourPids(): number[] {
  const pids = [process.pid, ...foreignGroups];
  for (const p of procs) if (p.child.pid) pids.push(p.child.pid, ...childrenOf(p.child.pid));
  return pids;
}

/**
 * CPU% (of one core) of some processes over a run, sampled every 200 ms; "other" is what the rest of the
 * machine used meanwhile, the noise gauge.
 */
class CpuSampler {
  private readonly first = new Map<string, number>();
  private readonly last = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly ours: number[];
  private readonly t0 = performance.now();
  private readonly busy0 = machineBusySeconds();
  private readonly ours0: number;
  constructor(private readonly pids: Record<string, number[]>) {
    this.ours = ourPids();
    this.ours0 = this.oursSeconds();
    this.sample();
    this.timer = setInterval(() => this.sample(), 200);
  }
  private oursSeconds(): number {
    return this.ours.reduce((a, pid) => a + (cpuSeconds(pid) ?? 0), 0);
  }
  private sample(): void {
    for (const [name, pids] of Object.entries(this.pids)) {
      const cpus = pids.map(cpuSeconds);
      if (cpus.some((c) => c === undefined)) continue;
      const cpu = (cpus as number[]).reduce((a, b) => a + b, 0);
      if (!this.first.has(name)) this.first.set(name, cpu);
      this.last.set(name, cpu);
    }
  }
  stop(): Record<string, number> {
    this.sample();
    clearInterval(this.timer);
    const spanS = (performance.now() - this.t0) / 1000;
    const out: Record<string, number> = {};
    for (const [name, a] of this.first) out[name] = (100 * (this.last.get(name)! - a)) / spanS;
    // wrk exits at the end of its run; count what was sampled of it.
    const oursNow = this.oursSeconds() + (cpuSeconds(this.pids.wrk?.[0]) === undefined ? (this.last.get("wrk") ?? 0) : 0);
    out.other = Math.max(0, (100 * (machineBusySeconds() - this.busy0 - (oursNow - this.ours0))) / spanS);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------- wrk

/**
 * A wrk script that gives every request its own query string (`?fresh=N`, which both hubs ignore), so that no
 * reply can be one slicehub kept (src/hub/reply-memo.ts): what a list costs when the data behind it has changed.
 */
const FRESH_LUA = `local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, wrk.path .. "?fresh=" .. n)
end
`;
let freshScript: string | undefined;
function freshLua(): string {
  if (!freshScript) {
    freshScript = join(tempDir("lua"), "fresh.lua");
    writeFileSync(freshScript, FRESH_LUA);
  }
  return freshScript;
}

function wrkArgs(url: string, token: string, seconds: number, fresh = false): string[] {
  const script = fresh ? ["-s", freshLua()] : [];
  return pinned(CLIENT_CPUS, ["wrk", `-t${WRK.threads}`, `-c${WRK.connections}`, `-d${seconds}s`, "--latency", ...script, "-H", `Authorization: token ${token}`, url]);
}

async function wrk(url: string, token: string, server: number[], fresh = false): Promise<WrkResult> {
  const args = (d: number) => wrkArgs(url, token, d, fresh);
  if (WARMUP > 0) await run("wrk warm-up", args(WARMUP), (WARMUP + 20) * 1000);
  const p = launch("wrk", args(SECONDS));
  let stdout = "";
  p.child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  const sampler = new CpuSampler({ server, wrk: p.child.pid ? [p.child.pid] : [] });
  const timedOut = await Promise.race([p.exited.then(() => false), sleep((SECONDS + 20) * 1000).then(() => true)]);
  const cpu = sampler.stop();
  if (timedOut) {
    killGroup(p.child.pid, "SIGKILL");
    throw new Error(`wrk did not finish:\n${p.output}`);
  }
  if (p.child.exitCode !== 0) throw new Error(`wrk failed (${p.child.exitCode}):\n${p.output}`);
  return { ...parseWrk(stdout), cpu };
}

// ---------------------------------------------------------------------------------------------- the endpoints

const ALL_ENDPOINTS = [
  { key: "api", path: "/hub/api", label: "GET /hub/api", fresh: false },
  { key: "users", path: "/hub/api/users", label: "GET /hub/api/users", fresh: false },
  { key: "user", path: `/hub/api/users/${ONE_USER}`, label: `GET /hub/api/users/${ONE_USER}`, fresh: false },
  { key: "fresh", path: "/hub/api/users", label: "GET /hub/api/users?fresh=N", fresh: true },
] as const;
type EndpointKey = (typeof ALL_ENDPOINTS)[number]["key"];
const ENDPOINTS = ALL_ENDPOINTS.filter((e) => ENDPOINT_KEYS.has(e.key));

interface Measured {
  name: string;
  runs: Record<EndpointKey, WrkResult[]>;
  /** Each measured endpoint's median run (--endpoints may leave some out). */
  best: Partial<Record<EndpointKey, WrkResult>>;
  usersBytes: number;
}

/** Checks the answers once (51 users with full models), then measures each endpoint ROUNDS times in turn. */
async function measure(name: string, base: string, token: string, server: () => number[], check: () => void): Promise<Measured> {
  const auth = { Authorization: `token ${token}` };
  const list = await request(`${base}/hub/api/users`, { headers: auth });
  if (list.status !== 200) throw new Error(`${name}: GET /hub/api/users answered ${list.status}: ${list.body}`);
  const users = JSON.parse(list.body) as { name: string; created?: string; servers?: object }[];
  if (users.length !== OTHER_USERS.length + 1) throw new Error(`${name}: GET /hub/api/users listed ${users.length} users, not ${OTHER_USERS.length + 1}`);
  if (!users.every((u) => u.created !== undefined && u.servers !== undefined)) throw new Error(`${name}: GET /hub/api/users did not give full models:\n${list.body.slice(0, 500)}`);
  for (const e of ENDPOINTS) {
    const r = await request(`${base}${e.path}`, { headers: auth });
    if (r.status !== 200) throw new Error(`${name}: GET ${e.path} answered ${r.status}: ${r.body}`);
  }
  // One warm-up pass over all three first, so the endpoint measured first does not pay for the JIT alone.
  if (PREWARM > 0) for (const e of ENDPOINTS) await run("wrk pre-warm", wrkArgs(`${base}${e.path}`, token, PREWARM, e.fresh), (PREWARM + 20) * 1000);
  const runs: Record<EndpointKey, WrkResult[]> = { api: [], users: [], user: [], fresh: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const e of ENDPOINTS) {
      runs[e.key].push(await wrk(`${base}${e.path}`, token, server(), e.fresh));
      check();
    }
  }
  const best: Partial<Record<EndpointKey, WrkResult>> = {};
  for (const e of ENDPOINTS) best[e.key] = medianRun(runs[e.key], (r) => r.rps);
  return { name, runs, best, usersBytes: Buffer.byteLength(list.body) };
}

// ---------------------------------------------------------------------------------------------- slicehub

interface Slicehub {
  proc: Proc;
  url: string;
  token: string;
  started: string[];
}
let slicehub: Slicehub | undefined;

async function startSlicehub(): Promise<Slicehub> {
  const dir = tempDir("api");
  const port = await freePort();
  const info = join(dir, "upstream.json");
  const configPath = join(dir, "config.json");
  writeFileSync(
    configPath,
    JSON.stringify({
      listen: `http://127.0.0.1:${port}`,
      state_dir: join(dir, "state"),
      auth: { kind: "dev", admin_users: [ADMIN] },
      spawner: { kind: "local", cmd: [NODE, UPSTREAM], args: [], env: { BENCH_UPSTREAM_INFO: info } },
      log_level: "warn",
    }),
  );
  // The token first: it creates the admin's row, and the daemon grants it admin from the config at start.
  const token = (await run("slicehub token", [NODE, CLI, "token", ADMIN, "--create", "--config", configPath], 20_000)).trim();
  if (!/^\S{16,}$/.test(token)) throw new Error(`slicehub token printed no token: ${JSON.stringify(token)}`);
  const profDir = opts["cpu-prof"] ? resolve(opts["cpu-prof"]) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const flags = profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir] : [];
  const proc = launch("slicehub", pinned(SERVER_CPUS, [NODE, ...flags, CLI, "start", "--config", configPath]), { cwd: dir });
  const h: Slicehub = { proc, url: `http://127.0.0.1:${port}`, token, started: [] };
  slicehub = h;
  await until("slicehub answering GET /hub/api", 20_000, 20, async () => {
    if (!alive(proc)) throw new Fatal(`slicehub exited (${proc.child.exitCode ?? proc.child.signalCode})`);
    return (await request(`${h.url}/hub/api`)).status === 200;
  }, () => proc.output);
  const auth = { Authorization: `token ${token}` };
  for (const u of OTHER_USERS) {
    const r = await request(`${h.url}/hub/api/users/${u}`, { method: "POST", headers: auth });
    if (r.status !== 201) throw new Error(`POST /hub/api/users/${u} answered ${r.status}: ${r.body}`);
  }
  // A few users with a running default server and a few with a stopped one, as on a real hub.
  for (const u of [...RUNNING, ...STOPPED]) {
    rmSync(info, { force: true });
    h.started.push(u);
    const r = await request(`${h.url}/hub/api/users/${u}/server`, { method: "POST", headers: auth, timeoutMs: 30_000 });
    if (r.status !== 201 && r.status !== 202) throw new Error(`POST /hub/api/users/${u}/server answered ${r.status}: ${r.body}`);
    await until(`${u}'s server ready`, 30_000, 50, async () => {
      const m = JSON.parse((await request(`${h.url}/hub/api/users/${u}`, { headers: auth })).body) as { servers?: Record<string, { ready?: boolean }> };
      if (!m.servers?.[""]) throw new Fatal("its spawn failed");
      return m.servers[""].ready === true;
    }, () => proc.output);
    await until("upstream info file", 5_000, 20, async () => existsSync(info));
    foreignGroups.add((JSON.parse(readFileSync(info, "utf8")) as { pid: number }).pid);
  }
  for (const u of STOPPED) await stopServer(h, u);
  return h;
}

async function stopServer(h: Slicehub, user: string): Promise<void> {
  const r = await request(`${h.url}/hub/api/users/${user}/server`, { method: "DELETE", headers: { Authorization: `token ${h.token}` }, timeoutMs: 20_000 });
  if (r.status !== 202 && r.status !== 204) throw new Error(`DELETE /hub/api/users/${user}/server answered ${r.status}: ${r.body}`);
  await until(`${user}'s server stopped`, 20_000, 50, async () => {
    const m = JSON.parse((await request(`${h.url}/hub/api/users/${user}`, { headers: { Authorization: `token ${h.token}` } })).body) as { servers?: Record<string, unknown> };
    return !m.servers?.[""];
  });
  h.started = h.started.filter((u) => u !== user);
}

/** Stops the user servers through the API, as an admin would, then the daemon. */
async function stopSlicehub(h: Slicehub): Promise<void> {
  if (alive(h.proc)) {
    for (const u of [...h.started]) await stopServer(h, u).catch((err: Error) => process.stderr.write(`bench: stopping ${u}'s server: ${err.message}\n`));
  }
  await stop(h.proc, 10_000);
  for (const g of foreignGroups) killGroup(g, "SIGKILL");
  foreignGroups.clear();
}

// ---------------------------------------------------------------------------------------------- JupyterHub

interface JupyterHub {
  proc: Proc;
  url: string;
  token: string;
}

/** JupyterHub on loopback ports with a throw-away config, database and state, through its own chp. */
async function startJupyterHub(): Promise<JupyterHub> {
  const dir = tempDir("jupyterhub");
  const [port, hubPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const token = randomBytes(24).toString("hex");
  const py = (s: string) => JSON.stringify(s);
  writeFileSync(
    join(dir, "jupyterhub_config.py"),
    [
      `c.JupyterHub.bind_url = ${py(`http://127.0.0.1:${port}`)}`,
      `c.JupyterHub.hub_bind_url = ${py(`http://127.0.0.1:${hubPort}`)}`,
      `c.ConfigurableHTTPProxy.api_url = ${py(`http://127.0.0.1:${apiPort}`)}`,
      `c.ConfigurableHTTPProxy.command = [${py(NODE)}, ${py(CHP)}]`,
      `c.ConfigurableHTTPProxy.pid_file = ${py(join(dir, "proxy.pid"))}`,
      `c.ConfigurableHTTPProxy.auth_token = ${py(randomBytes(24).toString("hex"))}`,
      `c.JupyterHub.db_url = ${py(`sqlite:///${join(dir, "jupyterhub.sqlite")}`)}`,
      `c.JupyterHub.cookie_secret = bytes.fromhex(${py(randomBytes(32).toString("hex"))})`,
      `c.JupyterHub.authenticator_class = "dummy"`,
      `c.Authenticator.admin_users = {${py(ADMIN)}}`,
      `c.Authenticator.allowed_users = {${[ADMIN, ...OTHER_USERS].map(py).join(", ")}}`,
      `c.JupyterHub.services = [{"name": "bench", "api_token": ${py(token)}, "admin": True}]`,
      `c.JupyterHub.log_level = "WARN"`,
      `c.JupyterHub.cleanup_servers = True`,
      `c.JupyterHub.cleanup_proxy = True`,
    ].join("\n") + "\n",
  );
  const proc = launch("jupyterhub", pinned(SERVER_CPUS, [JUPYTERHUB, "-f", join(dir, "jupyterhub_config.py")]), { cwd: dir });
  const h: JupyterHub = { proc, url: `http://127.0.0.1:${port}`, token };
  await until("JupyterHub answering GET /hub/api through its proxy", 60_000, 100, async () => {
    if (!alive(proc)) throw new Fatal(`jupyterhub exited (${proc.child.exitCode ?? proc.child.signalCode})`);
    return (await request(`${h.url}/hub/api`)).status === 200;
  }, () => proc.output);
  return h;
}

function jupyterhubVersion(): string {
  try {
    const m = /^version_info = \((\d+), (\d+), (\d+)/m.exec(readFileSync("/usr/lib/python3/dist-packages/jupyterhub/_version.py", "utf8"));
    return m ? `${m[1]}.${m[2]}.${m[3]}` : "?";
  } catch {
    return "?";
  }
}

// ---------------------------------------------------------------------------------------------- output




/** The hub side's CPU time per request, in µs. */
const cpuPerReq = (r: WrkResult) => ((r.cpu.server ?? 0) / 100 / r.rps) * 1e6;


function report(m: Measured): void {
  const a = m.best.api;
  say(
    table(
      ["endpoint", "req/s", "× /hub/api", "p50", "p99", "errors", "CPU hub", "CPU wrk", "CPU other", "hub CPU/req", "× /hub/api by CPU"],
      ENDPOINTS.map((e) => {
        const r = m.best[e.key]!;
        return [
          e.label,
          fmtInt(r.rps) + (ROUNDS > 1 ? ` (${m.runs[e.key].map((x) => fmtInt(x.rps)).join(" ")})` : ""),
          a ? fmtRatio(r.rps / a.rps) : "-",
          fmtMs(r.p50ms),
          fmtMs(r.p99ms),
          r.errors,
          pct(r.cpu.server),
          pct(r.cpu.wrk),
          pct(r.cpu.other),
          fmtUs(cpuPerReq(r)),
          a ? fmtRatio(cpuPerReq(a) / cpuPerReq(r)) : "-",
        ];
      }),
    ),
  );
  say(`GET /hub/api/users body: ${fmtInt(m.usersBytes)} bytes`);
  say();
}

// ---------------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  for (const f of [CLI, UPSTREAM]) if (!existsSync(f)) throw new Error(`${f} is missing: run "npm run build" first`);
  await run("wrk --version", ["wrk", "--version"], 5_000).catch((err: Error) => {
    if (!/Copyright .* Will Glozer/.test(err.message)) throw new Error(`wrk is not runnable (apt-get install wrk): ${err.message}`);
  });
  const withJupyterHub = PARTS.has("jupyterhub") && existsSync(JUPYTERHUB) && existsSync(CHP);

  say(`slicehub hub API benchmark — ${new Date().toISOString()}`);
  say(`node ${process.version}, ${os.cpus()[0]?.model ?? "?"} × ${cpus} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  say(
    PIN
      ? `CPU placement: wrk -t${WRK.threads} -c${WRK.connections} pinned to CPU ${CLIENT_CPUS}; the hub side (slicehub; JupyterHub and its proxy) to CPU ${SERVER_CPUS}.`
      : `CPU placement: not pinned${opts["no-pin"] ? " (--no-pin)" : " (taskset missing or one CPU)"}.`,
  );
  say(`Each hub: ${PREWARM} s of load on each endpoint first; then each endpoint: a ${WARMUP} s wrk warm-up, ${SECONDS} s measured, with an admin token; ${OTHER_USERS.length + 1} users.`);
  say(`"× /hub/api": req/s over the same hub's GET /hub/api in this run. "by CPU": that hub's CPU per /hub/api request over this`);
  say(`  endpoint's, the ratio a CPU-bound hub would see and much less sensitive to other load ("CPU other").`);
  say();

  const results: Measured[] = [];
  if (PARTS.has("slicehub")) {
    const h = await startSlicehub();
    say(`slicehub (${RUNNING.length} users with a running server, ${STOPPED.length} with a stopped one; /users/${ONE_USER} has a running server)`);
    const m = await measure("slicehub", h.url, h.token, () => [h.proc.child.pid!], () => {
      if (!alive(h.proc)) throw new Error(`slicehub died during the run:\n${h.proc.output}`);
    });
    report(m);
    results.push(m);
    await stopSlicehub(h);
    slicehub = undefined;
  }
  if (withJupyterHub) {
    const h = await startJupyterHub();
    say(`JupyterHub ${jupyterhubVersion()} through configurable-http-proxy (no servers; the token is an admin service's)`);
    // The hub process and its proxy together are the hub side.
    const m = await measure("jupyterhub", h.url, h.token, () => [h.proc.child.pid!, ...childrenOf(h.proc.child.pid)], () => {
      if (!alive(h.proc)) throw new Error(`jupyterhub died during the run:\n${h.proc.output}`);
    });
    report(m);
    results.push(m);
    await stop(h.proc, 15_000);
  } else if (PARTS.has("jupyterhub")) {
    say(`JupyterHub: skipped (${existsSync(JUPYTERHUB) ? `${CHP} is missing: run "npm ci"` : `${JUPYTERHUB} is not installed`})`);
    say();
  }

  say("Targets (slicehub)");
  const s = results.find((r) => r.name === "slicehub");
  const rows: string[][] = [];
  let noisy = false;
  for (const [key, min] of [["users", TARGETS.users], ["user", TARGETS.user]] as const) {
    const path = ALL_ENDPOINTS.find((e) => e.key === key)!.path;
    const r = s?.best[key];
    const a = s?.best.api;
    if (!r || !a) {
      rows.push([`GET ${path} ≥ ${min} × GET /hub/api`, "-", "skipped"]);
      continue;
    }
    const other = Math.max(r.cpu.other ?? 0, a.cpu.other ?? 0);
    noisy ||= other > NOISY_OTHER_PCT;
    const ratio = r.rps / a.rps;
    rows.push([
      `GET ${path} ≥ ${min} × GET /hub/api`,
      `${fmtRatio(ratio)} (by CPU ${fmtRatio(cpuPerReq(a) / cpuPerReq(r))})`,
      `${ratio >= min ? "PASS" : "MISS"}${other > NOISY_OTHER_PCT ? " (noisy)" : ""}`,
    ]);
  }
  say(table(["target", "measured", "result"], rows));
  if (s?.best.fresh && s.best.api) {
    say(`Not a target: GET /hub/api/users?fresh=N, every reply built (no kept reply can answer it), is ${fmtRatio(s.best.fresh.rps / s.best.api.rps)} × GET /hub/api.`);
  }
  if (noisy) {
    say(`(noisy): other processes used more than ${NOISY_OTHER_PCT}% of a core during a run behind that ratio, so its throughput`);
    say(`  ratio is unreliable; the "by CPU" ratio much less so. Rerun on a quieter machine, or with --rounds 3.`);
  }
  const j = results.find((r) => r.name === "jupyterhub");
  const ja = j?.best.api;
  if (j && ja) {
    const ratio = (r: WrkResult | undefined) => (r ? fmtRatio(r.rps / ja.rps) : "-");
    say(`same ratios for JupyterHub: /users ${ratio(j.best.users)}, /users/{name} ${ratio(j.best.user)}, /users?fresh=N ${ratio(j.best.fresh)} × its /hub/api`);
  }
  say(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  if (opts["cpu-prof"]) say(`slicehub CPU profile written to ${resolve(opts["cpu-prof"])}`);
}

runBench(main, async () => {
  if (slicehub) await stopSlicehub(slicehub);
}, 5_000);
