// What both benchmarks share: the processes they start (each in its own group, always stopped again), temp
// dirs, CPU pinning, /proc CPU accounting, small HTTP and polling helpers, and the table formatting.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const ROOT = resolve(import.meta.dirname, "../..");

export const CLI = join(ROOT, "dist/slicehub.js");

export const UPSTREAM = join(ROOT, "dist/bench/upstream.js");

export const CHP = join(ROOT, "node_modules/configurable-http-proxy/bin/configurable-http-proxy");

export const NODE = process.execPath;

/** A run during which the rest of the machine used more than this (% of one core) is flagged as noisy. */
export const NOISY_OTHER_PCT = 25;

export const OUTPUT_KEEP = 16_384;

export const CLK_TCK = 100; // USER_HZ, what /proc/<pid>/stat counts in; 100 on every Linux this runs on

export function boundedInt(name: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`bench: --${name} must be a whole number from ${min} to ${max}\n`);
    process.exit(2);
  }
  return n;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  output: string;
  exited: Promise<void>;
}

export const procs = new Set<Proc>();

export const tempDirs = new Set<string>();

/** Process groups we did not start ourselves but must not leave behind (the upstream slicehub spawned). */
export const foreignGroups = new Set<number>();

/** Starts argv in its own process group (taskset execs, so the pid is the program's), keeping its output tail. */
export function launch(name: string, argv: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const [cmd, ...args] = argv;
  const child = spawn(cmd!, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  // A failed spawn (ENOENT) emits "error" and never "exit".
  const p: Proc = { name, child, output: "", exited: new Promise((r) => (child.once("exit", () => r()), child.once("error", () => r()))) };
  const keep = (d: Buffer) => {
    p.output = (p.output + d.toString()).slice(-OUTPUT_KEEP);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  child.once("error", (err) => keep(Buffer.from(`\n[spawn error: ${err.message}]\n`)));
  procs.add(p);
  void p.exited.then(() => procs.delete(p));
  return p;
}

export function alive(p: Proc): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

export function killGroup(pgid: number | undefined, signal: NodeJS.Signals): void {
  if (!pgid || pgid <= 1) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM, wait (bounded), then SIGKILL the whole group. */
export async function stop(p: Proc, graceMs = 5_000): Promise<void> {
  if (alive(p)) {
    p.child.kill("SIGTERM");
    await Promise.race([p.exited, sleep(graceMs)]);
  }
  killGroup(p.child.pid, "SIGKILL");
}

/** Runs argv to completion (bounded by timeoutMs) and returns its stdout; throws on failure. */
export async function run(name: string, argv: string[], timeoutMs: number): Promise<string> {
  const p = launch(name, argv);
  let stdout = "";
  p.child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  const timedOut = await Promise.race([p.exited.then(() => false), sleep(timeoutMs).then(() => true)]);
  if (timedOut) {
    killGroup(p.child.pid, "SIGKILL");
    throw new Error(`${name} did not finish within ${timeoutMs / 1000} s:\n${p.output}`);
  }
  if (p.child.exitCode !== 0) throw new Error(`${name} failed (${p.child.exitCode ?? p.child.signalCode}):\n${p.output}`);
  return stdout;
}

export function tempDir(tag: string): string {
  const d = mkdtempSync(join(os.tmpdir(), `slicehub-bench-${tag}-`));
  tempDirs.add(d);
  return d;
}

export interface Reply {
  status: number;
  body: string;
}

export function request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? "GET", headers: init.headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.setTimeout(init.timeoutMs ?? 5_000, () => req.destroy(new Error(`timeout: ${url}`)));
    req.on("error", reject);
    req.end(init.body);
  });
}

/** Thrown from an `until` check to stop waiting at once (other errors count as "not yet"). */
export class Fatal extends Error {}

/** Polls until `check` is true; bounded by timeoutMs. */
export async function until(what: string, timeoutMs: number, everyMs: number, check: () => Promise<boolean>, onFail?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await check().catch((err: unknown) => {
      if (err instanceof Fatal) throw new Error(`${what}: ${err.message}${onFail ? `\n${onFail()}` : ""}`);
      return false;
    });
    if (ok) return;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s${onFail ? `\n${onFail()}` : ""}`);
}

/** utime + stime of a process (all its threads), in seconds; undefined once it is gone. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Busy seconds of all CPUs together since boot (iowait counts as idle). */
export function machineBusySeconds(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");

export const fmtMs = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)}µs` : ms < 100 ? `${ms.toFixed(2)}ms` : `${ms.toFixed(0)}ms`);

export const fmtUs = (us: number) => (us < 10 ? `${us.toFixed(1)}µs` : us < 1000 ? `${us.toFixed(0)}µs` : `${(us / 1000).toFixed(2)}ms`);

export const fmtRatio = (r: number) => (Number.isFinite(r) ? r.toFixed(2) : "n/a");

export const pct = (n: number | undefined) => (n === undefined ? "-" : `${n.toFixed(0)}%`);

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The run whose key is the median (the lower middle one for an even count). */
export function medianRun<T>(runs: T[], key: (r: T) => number): T {
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  return sorted[(sorted.length - 1) >> 1]!;
}

export const say = (s = "") => process.stdout.write(`${s}\n`);

/**
 * CPU placement: clients (wrk, ws-client) on CPU 0, the measured side on the rest, so the load generator takes
 * no cycles from what is measured. Off with --no-pin, or where taskset or a second CPU is missing.
 */
export function pinning(noPin: boolean) {
  const cpus = os.availableParallelism();
  const PIN = !noPin && cpus >= 2 && existsSync("/usr/bin/taskset");
  const CLIENT_CPUS = "0";
  const SERVER_CPUS = cpus > 2 ? `1-${cpus - 1}` : "1";
  const pinned = (cpuList: string, argv: string[]): string[] => (PIN ? ["/usr/bin/taskset", "-c", cpuList, ...argv] : argv);
  return { cpus, PIN, CLIENT_CPUS, SERVER_CPUS, pinned };
}

/**
 * Runs a benchmark's main and always cleans up afterwards, on an error and on SIGINT/SIGTERM/SIGHUP too:
 * `first` (stopping the hub it started), then every process it started (SIGTERM, `graceMs`, SIGKILL), the
 * process groups it must not leave behind, and its temp dirs. Exits 0 when main finished, 1 when it broke.
 */
export function runBench(main: () => Promise<void>, first: () => Promise<void>, graceMs: number): void {
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> => {
    cleaning ??= (async () => {
      await first().catch(() => undefined);
      await Promise.all([...procs].map((p) => stop(p, graceMs)));
      for (const g of foreignGroups) killGroup(g, "SIGKILL");
      for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
      tempDirs.clear();
    })();
    return cleaning;
  };
  // Last resort if something exits the process without cleanup(): no process group or temp dir is left.
  process.on("exit", () => {
    for (const p of procs) killGroup(p.child.pid, "SIGKILL");
    for (const g of foreignGroups) killGroup(g, "SIGKILL");
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
  let interrupted = false;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      interrupted = true;
      process.stderr.write(`\nbench: ${sig}, stopping everything\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  main().then(
    () => cleanup().then(() => process.exit(0)),
    (err: unknown) => {
      // After a signal, the failures of what cleanup() killed are expected; the signal handler exits.
      if (interrupted) return;
      process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
      void cleanup().finally(() => process.exit(1));
    },
  );
}

/** One wrk run: throughput, latency, errors, and the CPU the run's processes used meanwhile. */
export interface WrkResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  /** "0", or the non-zero counts by kind, e.g. "17 timeout, 2 non-2xx" (wrk's default timeout is 2 s). */
  errors: string;
  transferPerS: string;
  cpu: Record<string, number>;
}

function toMs(v: string, unit: string): number {
  const n = Number(v);
  const scale: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
  const s = scale[unit];
  if (s === undefined || !Number.isFinite(n)) throw new Error(`wrk: cannot read the time ${v}${unit}`);
  return n * s;
}

/** wrk's --latency report, read. */
export function parseWrk(out: string): Omit<WrkResult, "cpu"> {
  const num = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output has no ${re}:\n${out}`);
    return m;
  };
  const p = (pct: number) => {
    const m = num(new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, "m"));
    return toMs(m[1]!, m[2]!);
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const kinds: [string, number][] = [
    ["connect", Number(sock?.[1] ?? 0)],
    ["read", Number(sock?.[2] ?? 0)],
    ["write", Number(sock?.[3] ?? 0)],
    ["timeout", Number(sock?.[4] ?? 0)],
    ["non-2xx", Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)],
  ];
  const errors = kinds.filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(", ") || "0";
  return {
    rps: Number(num(/^Requests\/sec:\s+([\d.]+)/m)[1]),
    p50ms: p(50),
    p99ms: p(99),
    errors,
    transferPerS: /^Transfer\/sec:\s+(\S+)/m.exec(out)?.[1] ?? "?",
  };
}
