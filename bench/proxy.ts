// The proxy benchmark: one run measures a tiny upstream reached directly, through slicehub (the real daemon,
// which spawns the upstream as user "bench"), and through configurable-http-proxy, and prints every number
// as a ratio to "direct" from the same run. See bench/README.md.
//
//   npm run build && npm run bench:proxy [-- --rounds 3 --only http,ws,start --no-pin ...]   (--help for all)
//
// Exit status: 0 when the bench ran (whether or not the targets were met), 1 when the bench itself broke.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { freePort } from "../src/ports.js";
import { alive, boundedInt, CHP, CLI, cpuSeconds, Fatal, fmtInt, fmtMs, fmtRatio, fmtUs, foreignGroups, killGroup, launch, machineBusySeconds, medianRun, NODE, NOISY_OTHER_PCT, pct, pinning, type Proc, procs, request, ROOT, run, say, stop, table, tempDir, tempDirs, until, UPSTREAM, runBench, parseWrk, type WrkResult } from "./common.js";

const WS_CLIENT = join(ROOT, "dist/bench/ws-client.js");
const USER = "bench";
const PREFIX = `/user/${USER}/`;

const TARGETS = { httpRatio: 0.3, wsRatio: 0.7, coldStartMs: 250, idleRssMiB: 60 };
const WRK = { threads: 2, connections: 64 };
const WS = { size: 64, roundTrips: 2000, warmupTrips: 200, conns: 8, window: 64, seconds: 5 };
const COLD_RUNS = 5;
const COLD_POLL_MS = 5;
const IDLE_WAIT_MS = 2_000;

// ---------------------------------------------------------------------------------------------- options

function parseOptions() {
  try {
    return parseArgs({
      options: {
        seconds: { type: "string", default: "8" },
        warmup: { type: "string", default: "2" },
        "no-pin": { type: "boolean", default: false },
        "cpu-prof": { type: "string" },
        "daemon-flags": { type: "string", default: "" },
        only: { type: "string", default: "http,ws,start" },
        rounds: { type: "string", default: "1" },
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
    "Usage: node dist/bench/proxy.js [options]   (npm run bench:proxy -- [options], after npm run build)\n" +
      "  --seconds N         measured seconds per wrk run (1..60, default 8)\n" +
      "  --warmup N          wrk warm-up seconds before each measured run (0..30, default 2)\n" +
      "  --rounds N          run direct, slicehub, chp N times in turn (1..9) and report each one's median run\n" +
      "  --only LIST         which parts to run: http, ws, start (cold start and idle RSS); default all\n" +
      "  --no-pin            do not pin clients to CPU 0 and servers to CPU 1 (taskset)\n" +
      "  --cpu-prof DIR      run the slicehub daemon under node --cpu-prof; the profile lands in DIR at the end\n" +
      "  --daemon-flags S    extra node flags for every slicehub daemon, e.g. --daemon-flags=\"--max-semi-space-size=1\"\n",
  );
  process.exit(0);
}
const SECONDS = boundedInt("seconds", opts.seconds, 1, 60);
const WARMUP = boundedInt("warmup", opts.warmup, 0, 30);
const DAEMON_FLAGS = opts["daemon-flags"]!.split(/\s+/).filter(Boolean);
const ROUNDS = boundedInt("rounds", opts.rounds, 1, 9);
const PARTS = new Set(opts.only!.split(",").map((x) => x.trim()));
for (const part of PARTS) {
  if (!["http", "ws", "start"].includes(part)) {
    process.stderr.write(`bench: --only takes http, ws and start, not ${part}\n`);
    process.exit(2);
  }
}




// ---------------------------------------------------------------------------------------------- processes









// ---------------------------------------------------------------------------------------------- http helpers





// ---------------------------------------------------------------------------------------------- /proc

function rssMiB(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) / 1024;
}



/** Every process this bench started or adopted, and the bench itself. */
function ourPids(): number[] {
  const pids = [process.pid, ...foreignGroups];
  for (const p of procs) if (p.child.pid) pids.push(p.child.pid);
  return pids;
}

/**
 * Samples the CPU time of some processes every 200 ms; cpu% (of one core) over the span each was seen.
 * "other" is what the rest of the machine used meanwhile (other people's jobs, kernel work not charged to a
 * process): a noise gauge for the run.
 */
class CpuSampler {
  private readonly first = new Map<string, { t: number; cpu: number }>();
  private readonly last = new Map<string, { t: number; cpu: number }>();
  private readonly timer: NodeJS.Timeout;
  private readonly ours: number[];
  private readonly t0 = performance.now();
  private readonly busy0 = machineBusySeconds();
  private readonly ours0: number;
  constructor(private readonly pids: Record<string, number | undefined>) {
    this.ours = ourPids();
    this.ours0 = this.oursSeconds();
    this.sample();
    this.timer = setInterval(() => this.sample(), 200);
  }
  private oursSeconds(): number {
    return this.ours.reduce((a, pid) => a + (cpuSeconds(pid) ?? 0), 0);
  }
  private sample(): void {
    const t = performance.now();
    for (const [name, pid] of Object.entries(this.pids)) {
      const cpu = cpuSeconds(pid);
      if (cpu === undefined) continue;
      if (!this.first.has(name)) this.first.set(name, { t, cpu });
      this.last.set(name, { t, cpu });
    }
  }
  /** Percent of one core per process. */
  stop(): Record<string, number> {
    this.sample();
    clearInterval(this.timer);
    const out: Record<string, number> = {};
    for (const [name, a] of this.first) {
      const b = this.last.get(name)!;
      if (b.t - a.t > 100) out[name] = (100 * (b.cpu - a.cpu)) / ((b.t - a.t) / 1000);
    }
    // A client that exited meanwhile (wrk, ws-client) is missing from the last reading; count what was sampled.
    let gone = 0;
    for (const name of ["wrk", "client"]) {
      const a = this.first.get(name);
      const b = this.last.get(name);
      if (a && b && cpuSeconds(this.pids[name]) === undefined) gone += b.cpu;
    }
    const oursNow = this.oursSeconds() + gone;
    const spanS = (performance.now() - this.t0) / 1000;
    out.other = Math.max(0, (100 * (machineBusySeconds() - this.busy0 - (oursNow - this.ours0))) / spanS);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------- wrk

async function wrk(url: string, watch: Record<string, number | undefined>): Promise<WrkResult> {
  const args = (d: number) => pinned(CLIENT_CPUS, ["wrk", `-t${WRK.threads}`, `-c${WRK.connections}`, `-d${d}s`, "--latency", url]);
  if (WARMUP > 0) await run("wrk warm-up", args(WARMUP), (WARMUP + 20) * 1000);
  const p = launch("wrk", args(SECONDS));
  let stdout = "";
  p.child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  const sampler = new CpuSampler({ ...watch, wrk: p.child.pid });
  const timedOut = await Promise.race([p.exited.then(() => false), sleep((SECONDS + 20) * 1000).then(() => true)]);
  const cpu = sampler.stop();
  if (timedOut) {
    killGroup(p.child.pid, "SIGKILL");
    throw new Error(`wrk did not finish:\n${p.output}`);
  }
  if (p.child.exitCode !== 0) throw new Error(`wrk failed (${p.child.exitCode}):\n${p.output}`);
  return { ...parseWrk(stdout), cpu };
}

// ---------------------------------------------------------------------------------------------- ws

interface WsLatency {
  p50_us: number;
  p99_us: number;
}
interface WsThroughput {
  msgs_per_s: number;
  capped: boolean;
}

/** Runs ws-client (bounded) and returns its JSON result and the CPU use of `watch` and of the client meanwhile. */
async function wsClient<T>(args: string[], timeoutS: number, watch: Record<string, number | undefined> = {}): Promise<T & { cpu: Record<string, number> }> {
  const p = launch("ws-client", pinned(CLIENT_CPUS, [NODE, WS_CLIENT, ...args]));
  let stdout = "";
  p.child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  const sampler = new CpuSampler({ ...watch, client: p.child.pid });
  const timedOut = await Promise.race([p.exited.then(() => false), sleep(timeoutS * 1000).then(() => true)]);
  const cpu = sampler.stop();
  if (timedOut) {
    killGroup(p.child.pid, "SIGKILL");
    throw new Error(`ws-client did not finish within ${timeoutS} s:\n${p.output}`);
  }
  if (p.child.exitCode !== 0) throw new Error(`ws-client failed (${p.child.exitCode ?? p.child.signalCode}):\n${p.output}`);
  return { ...(JSON.parse(stdout.trim().split("\n").at(-1)!) as T), cpu };
}

// ---------------------------------------------------------------------------------------------- slicehub

interface Hub {
  proc: Proc;
  url: string;
  configPath: string;
  token?: string;
  serverStarted: boolean;
  upstream?: { pid: number; port: number };
}

let hub: Hub | undefined;

function hubConfig(dir: string, port: number, upstreamInfo?: string): string {
  const config = {
    listen: `http://127.0.0.1:${port}`,
    state_dir: join(dir, "state"),
    spawner: {
      kind: "local",
      cmd: [NODE, UPSTREAM],
      args: [],
      ...(upstreamInfo ? { env: { BENCH_UPSTREAM_INFO: upstreamInfo } } : {}),
    },
    log_level: "warn",
  };
  const path = join(dir, "config.json");
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

async function startHub(): Promise<Hub> {
  const dir = tempDir("hub");
  const port = await freePort();
  const info = join(dir, "upstream.json");
  const configPath = hubConfig(dir, port, info);
  const profDir = opts["cpu-prof"] ? resolve(opts["cpu-prof"]) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const nodeFlags = [...DAEMON_FLAGS, ...(profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir] : [])];
  // The upstream it spawns inherits this affinity, so both land on the server CPU.
  const proc = launch("slicehub", pinned(SERVER_CPUS, [NODE, ...nodeFlags, CLI, "start", "--config", configPath]), { cwd: dir });
  const h: Hub = { proc, url: `http://127.0.0.1:${port}`, configPath, serverStarted: false };
  hub = h;
  await until("slicehub answering GET /hub/api", 20_000, 20, async () => {
    if (!alive(proc)) throw new Fatal(`slicehub exited (${proc.child.exitCode ?? proc.child.signalCode})`);
    return (await request(`${h.url}/hub/api`)).status === 200;
  }, () => proc.output);

  h.token = (await run("slicehub token", [NODE, CLI, "token", USER, "--create", "--config", configPath], 20_000)).trim();
  if (!/^\S{16,}$/.test(h.token)) throw new Error(`slicehub token printed no token: ${JSON.stringify(h.token)}`);
  const auth = { Authorization: `token ${h.token}` };

  const started = await request(`${h.url}/hub/api/users/${USER}/server`, { method: "POST", headers: auth, timeoutMs: 30_000 });
  h.serverStarted = true;
  if (started.status !== 201 && started.status !== 202) throw new Error(`POST /hub/api/users/${USER}/server answered ${started.status}: ${started.body}`);
  await until(`the ${USER} server ready`, 30_000, 50, async () => {
    if (!alive(proc)) throw new Fatal("slicehub exited");
    const r = await request(`${h.url}/hub/api/users/${USER}`, { headers: auth });
    if (r.status !== 200) throw new Fatal(`GET /hub/api/users/${USER} answered ${r.status}: ${r.body}`);
    const model = JSON.parse(r.body) as { servers?: Record<string, { ready?: boolean; pending?: string | null }> };
    const server = model.servers?.[""];
    if (!server) throw new Fatal(`the server is gone: its spawn failed. Its log:\n${serverLogs(dir)}`);
    return server.ready === true;
  }, () => proc.output);
  await until("upstream info file", 5_000, 20, async () => existsSync(info));
  h.upstream = JSON.parse(readFileSync(info, "utf8")) as { pid: number; port: number };
  foreignGroups.add(h.upstream.pid);
  return h;
}

/** The tail of the user servers' logs under a hub's state dir (they go when the temp dir is removed). */
function serverLogs(dir: string): string {
  const logs = join(dir, "state", "logs");
  if (!existsSync(logs)) return "(no logs)";
  return readdirSync(logs)
    .map((f) => `--- ${f}\n${readFileSync(join(logs, f), "utf8").slice(-4_000)}`)
    .join("\n");
}

/** Stops the user server through the API (as an admin would), then the daemon. */
async function stopHub(h: Hub): Promise<void> {
  if (alive(h.proc) && h.token && h.serverStarted) {
    const auth = { Authorization: `token ${h.token}` };
    try {
      const r = await request(`${h.url}/hub/api/users/${USER}/server`, { method: "DELETE", headers: auth, timeoutMs: 20_000 });
      if (r.status === 202 || r.status === 204) {
        await until("the user server stopped", 20_000, 50, async () => {
          const u = await request(`${h.url}/hub/api/users/${USER}`, { headers: auth });
          return !(JSON.parse(u.body) as { servers?: Record<string, unknown> }).servers?.[""];
        });
        h.serverStarted = false;
      } else {
        process.stderr.write(`bench: DELETE server answered ${r.status}: ${r.body}\n`);
      }
    } catch (err) {
      process.stderr.write(`bench: stopping the user server through the API failed: ${(err as Error).message}\n`);
    }
  }
  await stop(h.proc, 10_000);
  if (h.upstream) killGroup(h.upstream.pid, "SIGKILL");
}

/** Spawns argv and polls `url` every COLD_POLL_MS until it answers 200; ms from spawn to that answer. */
async function timeToFirst200(name: string, argv: string[], url: string, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  const t0 = performance.now();
  const proc = launch(name, argv, options);
  try {
    const deadline = t0 + 20_000;
    while (performance.now() < deadline) {
      if (!alive(proc)) throw new Error(`${name} exited during start-up:\n${proc.output}`);
      const status = await request(url, { timeoutMs: 2_000 }).then((r) => r.status, () => 0);
      if (status === 200) return performance.now() - t0;
      await sleep(COLD_POLL_MS);
    }
    throw new Error(`${name} did not answer within 20 s:\n${proc.output}`);
  } finally {
    await stop(proc);
  }
}

/** One slicehub cold start: spawn to the first 200 from GET /hub/api, fresh config and state dir. */
async function coldStart(): Promise<number> {
  const dir = tempDir("cold");
  try {
    const port = await freePort();
    const configPath = hubConfig(dir, port);
    return await timeToFirst200("slicehub (cold start)", [NODE, ...DAEMON_FLAGS, CLI, "start", "--config", configPath], `http://127.0.0.1:${port}/hub/api`, { cwd: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}

/** A bare node:http server: the baseline for start-up time and memory, what node itself needs. */
async function bareNode(): Promise<{ argv: string[]; url: string }> {
  const port = await freePort();
  const script = "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.argv[1]), '127.0.0.1')";
  return { argv: [NODE, "-e", script, String(port)], url: `http://127.0.0.1:${port}/` };
}

async function coldStartBaseline(): Promise<number> {
  const { argv, url } = await bareNode();
  return timeToFirst200("node:http (cold start)", argv, url);
}

/** Idle RSS of the bare node:http server, read like slicehub's: IDLE_WAIT_MS after it first answered. */
async function idleRssBaseline(): Promise<number> {
  const { argv, url } = await bareNode();
  const proc = launch("node:http (idle)", argv);
  try {
    await until("bare node:http server answering", 20_000, 20, async () => {
      if (!alive(proc)) throw new Fatal("it exited");
      return (await request(url)).status === 200;
    }, () => proc.output);
    await sleep(IDLE_WAIT_MS);
    return rssMiB(proc.child.pid);
  } finally {
    await stop(proc);
  }
}

// ---------------------------------------------------------------------------------------------- chp

interface Chp {
  proc: Proc;
  url: string;
}

async function startChp(upstreamPort: number): Promise<Chp> {
  const port = await freePort();
  const apiPort = await freePort();
  const token = randomBytes(16).toString("hex");
  const argv = [NODE, CHP, "--ip", "127.0.0.1", "--port", String(port), "--api-ip", "127.0.0.1", "--api-port", String(apiPort), "--log-level", "error"];
  const proc = launch("configurable-http-proxy", pinned(SERVER_CPUS, argv), { env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: token } });
  const api = `http://127.0.0.1:${apiPort}/api/routes`;
  const auth = { Authorization: `token ${token}` };
  await until("configurable-http-proxy API", 20_000, 20, async () => {
    if (!alive(proc)) throw new Fatal("configurable-http-proxy exited");
    return (await request(api, { headers: auth })).status === 200;
  }, () => proc.output);
  // The route JupyterHub would add for this server.
  const r = await request(`${api}/user/${USER}`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({ target: `http://127.0.0.1:${upstreamPort}` }),
  });
  if (r.status !== 201) throw new Error(`configurable-http-proxy refused the route: ${r.status} ${r.body}`);
  return { proc, url: `http://127.0.0.1:${port}` };
}

// ---------------------------------------------------------------------------------------------- output



/** CPU seconds the server side (upstream + proxy, if any) spent per request or message, in µs. */
function serverCpuUs(cpu: Record<string, number>, perSecond: number): number {
  return (((cpu.upstream ?? 0) + (cpu.proxy ?? 0)) / 100 / perSecond) * 1e6;
}


function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}


// ---------------------------------------------------------------------------------------------- main

type PathName = "direct" | "slicehub" | "chp";
const PATHS: PathName[] = ["direct", "slicehub", "chp"];

async function main(): Promise<void> {
  for (const f of [CLI, UPSTREAM, WS_CLIENT]) if (!existsSync(f)) throw new Error(`${f} is missing: run "npm run build" first`);
  if (!existsSync(CHP)) throw new Error(`${CHP} is missing: run "npm ci"`);
  if (PARTS.has("http")) {
    await run("wrk --version", ["wrk", "--version"], 5_000).catch((err: Error) => {
      if (!/Copyright .* Will Glozer/.test(err.message)) throw new Error(`wrk is not runnable (apt-get install wrk): ${err.message}`);
    });
  }

  say(`slicehub proxy benchmark — ${new Date().toISOString()}`);
  say(`node ${process.version}, ${os.cpus()[0]?.model ?? "?"} × ${cpus} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  say(
    PIN
      ? `CPU placement: clients (wrk -t${WRK.threads}, ws-client) pinned to CPU ${CLIENT_CPUS}; upstream, slicehub and chp pinned to CPU ${SERVER_CPUS}.\n` +
          `  The server side gets the same CPU ${SERVER_CPUS} in every run: "direct" gives the upstream all of it, through a proxy\n` +
          `  the proxy and the upstream share it. So a ratio is the share of that CPU the proxy leaves to the app.`
      : `CPU placement: not pinned${opts["no-pin"] ? " (--no-pin)" : " (taskset missing or one CPU)"}; wrk, the proxy and the upstream share all ${cpus} CPUs.`,
  );
  if (DAEMON_FLAGS.length) say(`slicehub daemons run with node ${DAEMON_FLAGS.join(" ")}`);
  say(`CPU columns: % of one core during the measured run; "other" = the rest of the machine (other jobs, unattributed kernel work).`);
  say(`server CPU/req = (upstream + proxy CPU) / throughput; "× direct by CPU" = direct's server CPU per request / this path's:`);
  say(`  the ratio a CPU-bound server side would see, and far less sensitive than req/s to other load on the machine.`);
  say();

  const results: {
    http?: Record<string, Record<PathName, WrkResult>>;
    ws?: { lat: Record<PathName, WsLatency>; thr: Record<PathName, WsThroughput & { cpu: Record<string, number> }> };
    coldMs?: number;
    idleRss?: number;
  } = {};

  // 1. Cold start, first, while nothing else of ours runs; interleaved with a bare node:http server's start
  // so that both see the same machine.
  const colds: number[] = [];
  const coldBase: number[] = [];
  if (PARTS.has("start")) {
    for (let i = 0; i < COLD_RUNS; i++) {
      colds.push(await coldStart());
      coldBase.push(await coldStartBaseline());
    }
    results.coldMs = median(colds);
  }

  // 2. slicehub with the bench user's server, idle RSS.
  const bareRss = await idleRssBaseline();
  const h = await startHub();
  const up = h.upstream!;
  await sleep(IDLE_WAIT_MS);
  results.idleRss = rssMiB(h.proc.child.pid);
  const upstreamRss = rssMiB(up.pid);

  // 3. configurable-http-proxy to the same upstream process.
  const chp = await startChp(up.port);
  await sleep(IDLE_WAIT_MS);
  const chpIdleRss = rssMiB(chp.proc.child.pid);

  const base: Record<PathName, string> = {
    direct: `http://127.0.0.1:${up.port}`,
    slicehub: h.url,
    chp: chp.url,
  };
  for (const p of PATHS) {
    const r = await request(`${base[p]}${PREFIX}100b`);
    if (r.status !== 200 || r.body.length !== 100) throw new Error(`${p}: GET ${PREFIX}100b answered ${r.status} with ${r.body.length} bytes`);
  }
  const proxyPid: Record<PathName, number | undefined> = { direct: undefined, slicehub: h.proc.child.pid, chp: chp.proc.child.pid };

  // 4. HTTP.
  if (PARTS.has("http")) {
    say(`HTTP: wrk -t${WRK.threads} -c${WRK.connections} -d${SECONDS}s --latency, each after a ${WARMUP} s warm-up run on the same URL.`);
    say();
    results.http = {};
    for (const size of ["100b", "1mib"]) {
      const runs: Record<PathName, WrkResult[]> = { direct: [], slicehub: [], chp: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const p of PATHS) {
          runs[p].push(await wrk(`${base[p]}${PREFIX}${size}`, { upstream: up.pid, proxy: proxyPid[p] }));
          if (!alive(h.proc)) throw new Error(`slicehub died during the run:\n${h.proc.output}`);
        }
      }
      const bySize = {} as Record<PathName, WrkResult>;
      for (const p of PATHS) bySize[p] = medianRun(runs[p], (r) => r.rps);
      results.http[size] = bySize;
      const d = bySize.direct;
      say(`HTTP GET ${PREFIX}${size} (${size === "100b" ? "100-byte" : "1 MiB"} body)${ROUNDS > 1 ? `, median of ${ROUNDS} rounds` : ""}`);
      say(
        table(
          ["path", "req/s", "× direct", "p50", "p99", "transfer/s", "errors", "CPU upstream", "CPU proxy", "CPU wrk", "CPU other", "server CPU/req", "× direct by CPU"],
          PATHS.map((p) => {
            const r = bySize[p];
            return [
              p,
              fmtInt(r.rps) + (ROUNDS > 1 ? ` (${runs[p].map((x) => fmtInt(x.rps)).join(" ")})` : ""),
              fmtRatio(r.rps / d.rps),
              fmtMs(r.p50ms),
              fmtMs(r.p99ms),
              r.transferPerS,
              r.errors,
              pct(r.cpu.upstream),
              pct(r.cpu.proxy),
              pct(r.cpu.wrk),
              pct(r.cpu.other),
              fmtUs(serverCpuUs(r.cpu, r.rps)),
              fmtRatio(serverCpuUs(d.cpu, d.rps) / serverCpuUs(r.cpu, r.rps)),
            ];
          }),
        ),
      );
      say();
    }
  }

  // 5. Websockets.
  if (PARTS.has("ws")) {
    const wsUrl = (p: PathName) => `${base[p].replace(/^http/, "ws")}${PREFIX}ws`;
    const lat = {} as Record<PathName, WsLatency>;
    const thr = {} as Record<PathName, WsThroughput & { cpu: Record<string, number> }>;
    const latRuns: Record<PathName, WsLatency[]> = { direct: [], slicehub: [], chp: [] };
    const thrRuns: Record<PathName, (WsThroughput & { cpu: Record<string, number> })[]> = { direct: [], slicehub: [], chp: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const p of PATHS) {
        latRuns[p].push(await wsClient<WsLatency>(["latency", wsUrl(p), "--count", String(WS.roundTrips), "--warmup", String(WS.warmupTrips), "--size", String(WS.size)], 60));
        const args = ["throughput", wsUrl(p), "--conns", String(WS.conns), "--window", String(WS.window), "--seconds", String(WS.seconds), "--warmup-s", "1", "--size", String(WS.size)];
        thrRuns[p].push(await wsClient<WsThroughput>(args, 60, { upstream: up.pid, proxy: proxyPid[p] }));
      }
    }
    for (const p of PATHS) {
      lat[p] = medianRun(latRuns[p], (r) => r.p50_us);
      thr[p] = medianRun(thrRuns[p], (r) => r.msgs_per_s);
    }
    results.ws = { lat, thr };
    say(`Websocket echo, ${WS.size}-byte binary messages${ROUNDS > 1 ? `, median of ${ROUNDS} rounds` : ""}`);
    say(
      table(
        ["path", "RTT p50", "RTT p99", "p50 × direct", "msgs/s", "× direct", "CPU upstream", "CPU proxy", "CPU client", "CPU other", "server CPU/msg", "× direct by CPU"],
        PATHS.map((p) => [
          p,
          fmtUs(lat[p].p50_us),
          fmtUs(lat[p].p99_us),
          fmtRatio(lat[p].p50_us / lat.direct.p50_us),
          fmtInt(thr[p].msgs_per_s) + (thr[p].capped ? " (capped)" : "") + (ROUNDS > 1 ? ` (${thrRuns[p].map((x) => fmtInt(x.msgs_per_s)).join(" ")})` : ""),
          fmtRatio(thr[p].msgs_per_s / thr.direct.msgs_per_s),
          pct(thr[p].cpu.upstream),
          pct(thr[p].cpu.proxy),
          pct(thr[p].cpu.client),
          pct(thr[p].cpu.other),
          fmtUs(serverCpuUs(thr[p].cpu, thr[p].msgs_per_s)),
          fmtRatio(serverCpuUs(thr.direct.cpu, thr.direct.msgs_per_s) / serverCpuUs(thr[p].cpu, thr[p].msgs_per_s)),
        ]),
      ),
    );
    say(`RTT: ${WS.roundTrips} sequential round trips on one connection after ${WS.warmupTrips} warm-up.`);
    say(`msgs/s: ${WS.conns} connections, each with ${WS.window} messages in flight, counted for ${WS.seconds} s after a 1 s warm-up (CPU columns: this part).`);
    say();
  }

  const loadedRss = rssMiB(h.proc.child.pid);
  say("Start-up and memory");
  if (results.coldMs !== undefined) {
    const base = median(coldBase);
    say(`cold start: spawn → first 200, polled every ${COLD_POLL_MS} ms, not pinned, ${COLD_RUNS} runs each, interleaved:`);
    say(`  slicehub, GET /hub/api, fresh state   median ${results.coldMs.toFixed(0).padStart(4)} ms   (${colds.map((c) => c.toFixed(0)).join(", ")})`);
    say(`  baseline: a bare node:http server     median ${base.toFixed(0).padStart(4)} ms   (${coldBase.map((c) => c.toFixed(0)).join(", ")})`);
    say(`  → slicehub takes ${(results.coldMs / base).toFixed(1)} × the baseline, ${(results.coldMs - base).toFixed(0)} ms more`);
  }
  const mib = (v: number) => `${v.toFixed(1)} MiB`.padStart(9);
  say(`idle RSS (VmRSS), ${IDLE_WAIT_MS / 1000} s after each was ready:`);
  say(`  slicehub, one server routed         ${mib(results.idleRss)}   (${mib(loadedRss).trim()} at the end of the run)`);
  say(`  baseline: a bare node:http server   ${mib(bareRss)}   → slicehub's own share ${mib(results.idleRss - bareRss).trim()}`);
  say(`  configurable-http-proxy, one route  ${mib(chpIdleRss)}`);
  say(`  the bench upstream (node:http + ws) ${mib(upstreamRss)}`);
  say();

  const ratio = (a: number, b: number) => a / b;
  interface Check {
    target: string;
    value: number | undefined;
    shown: () => string;
    ok: (v: number) => boolean;
    /** The most the rest of the machine used during the runs behind the value, in % of one core. */
    other?: number;
  }
  const throughputCheck = (target: string, min: number, d: { perS: number; cpu: Record<string, number> }, s: { perS: number; cpu: Record<string, number> }): Check => {
    const byCpu = serverCpuUs(d.cpu, d.perS) / serverCpuUs(s.cpu, s.perS);
    return {
      target,
      value: s.perS / d.perS,
      shown: () => `${fmtRatio(s.perS / d.perS)} (by CPU ${fmtRatio(byCpu)})`,
      ok: (v) => v >= min,
      other: Math.max(d.cpu.other ?? 0, s.cpu.other ?? 0),
    };
  };
  const checks: Check[] = [];
  for (const [size, label] of [["100b", "100 B"], ["1mib", "1 MiB"]] as const) {
    const r = results.http?.[size];
    const target = `slicehub req/s ≥ ${TARGETS.httpRatio} × direct, ${label}`;
    checks.push(
      r
        ? throughputCheck(target, TARGETS.httpRatio, { perS: r.direct.rps, cpu: r.direct.cpu }, { perS: r.slicehub.rps, cpu: r.slicehub.cpu })
        : { target, value: undefined, shown: () => "-", ok: () => false },
    );
  }
  const wsThr = results.ws?.thr;
  const wsTarget = `slicehub ws msgs/s ≥ ${TARGETS.wsRatio} × direct`;
  checks.push(
    wsThr
      ? throughputCheck(wsTarget, TARGETS.wsRatio, { perS: wsThr.direct.msgs_per_s, cpu: wsThr.direct.cpu }, { perS: wsThr.slicehub.msgs_per_s, cpu: wsThr.slicehub.cpu })
      : { target: wsTarget, value: undefined, shown: () => "-", ok: () => false },
  );
  checks.push({ target: `cold start ≤ ${TARGETS.coldStartMs} ms (median of ${COLD_RUNS})`, value: results.coldMs, shown: () => `${results.coldMs!.toFixed(0)} ms`, ok: (v) => v <= TARGETS.coldStartMs });
  checks.push({ target: `idle RSS ≤ ${TARGETS.idleRssMiB} MiB`, value: results.idleRss, shown: () => `${results.idleRss!.toFixed(1)} MiB`, ok: (v) => v <= TARGETS.idleRssMiB });
  say("Targets");
  say(
    table(
      ["target", "measured", "result"],
      checks.map((c) => [
        c.target,
        c.value === undefined ? "-" : c.shown(),
        c.value === undefined ? "skipped" : `${c.ok(c.value) ? "PASS" : "MISS"}${(c.other ?? 0) > NOISY_OTHER_PCT ? " (noisy)" : ""}`,
      ]),
    ),
  );
  if (checks.some((c) => c.value !== undefined && (c.other ?? 0) > NOISY_OTHER_PCT)) {
    say(`(noisy): other processes used more than ${NOISY_OTHER_PCT}% of a core during a run behind that ratio, so its throughput`);
    say(`  ratio is unreliable; the "by CPU" ratio much less so. Rerun on a quieter machine, or with --rounds 3.`);
  }
  const chpParts: string[] = [];
  if (results.http) {
    for (const size of ["100b", "1mib"]) chpParts.push(`${size === "100b" ? "100 B" : "1 MiB"} ${fmtRatio(ratio(results.http[size]!.chp.rps, results.http[size]!.direct.rps))}`);
  }
  if (results.ws) chpParts.push(`ws ${fmtRatio(ratio(results.ws.thr.chp.msgs_per_s, results.ws.thr.direct.msgs_per_s))}`);
  if (chpParts.length) say(`same ratios for configurable-http-proxy: ${chpParts.join(", ")} × direct`);
  say(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);

  await stop(chp.proc);
  await stopHub(h);
  hub = undefined;
  if (opts["cpu-prof"]) say(`slicehub CPU profile written to ${resolve(opts["cpu-prof"])}`);
}

runBench(main, async () => {
  if (hub) await stopHub(hub);
}, 3_000);
