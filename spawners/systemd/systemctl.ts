// Thin async wrappers around systemd's command-line tools (no shell, always a timeout). Every function takes
// an optional argv prefix that runs the tool somewhere else, e.g. ["nsenter", "-t", pid, "-m", "-p"] to reach
// the systemd of a test sandbox; in production it is empty.
import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

export type Prefix = readonly string[];

interface Result {
  stdout: string;
  stderr: string;
  code: number;
}

const TIMEOUT_MS = 30_000;

function run(argv: readonly string[], prefix: Prefix, timeoutMs = TIMEOUT_MS): Promise<Result> {
  const [file, ...args] = [...prefix, ...argv];
  if (!file) throw new Error("empty command");
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") {
        reject(new Error(`${argv[0]}: ${err.killed ? `no answer within ${timeoutMs} ms` : err.message}`));
      } else resolve({ stdout, stderr, code: err ? (err.code as number) : 0 });
    });
  });
}

async function check(argv: readonly string[], prefix: Prefix, timeoutMs?: number): Promise<string> {
  const r = await run(argv, prefix, timeoutMs);
  if (r.code !== 0) throw new Error(`${argv.slice(0, 2).join(" ")} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Runs a `systemd-run` argv (from systemdRunArgv); rejects with systemd's own message if the unit did not start. */
export async function runUnit(argv: readonly string[], prefix: Prefix = []): Promise<void> {
  await check(argv, prefix);
}

/** The given properties of a unit; a unit systemd does not know has LoadState=not-found. */
export async function showUnit(unit: string, props: readonly string[], prefix: Prefix = []): Promise<Record<string, string>> {
  const out = await check(["systemctl", "show", unit, ...props.flatMap((p) => ["-p", p])], prefix);
  const values: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) values[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return values;
}

function gone(s: Record<string, string>): boolean {
  return s.LoadState === "not-found" || s.ActiveState === "inactive" || s.ActiveState === "failed";
}

async function waitGone(unit: string, ms: number, prefix: Prefix): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (gone(await showUnit(unit, ["LoadState", "ActiveState"], prefix))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

/**
 * Stops a unit: SIGTERM (systemd's stop), then after timeoutMs SIGKILL to every process in it. Idempotent.
 * Our own deadline rather than TimeoutStopSec=, so the hub's stop_timeout_s also applies to servers started
 * under an older config.
 */
export async function stopUnit(unit: string, timeoutMs: number, prefix: Prefix = []): Promise<void> {
  // Fails for a unit that is already gone; the state check below is what counts.
  await run(["systemctl", "stop", "--no-block", unit], prefix);
  if (!(await waitGone(unit, timeoutMs, prefix))) {
    await run(["systemctl", "kill", "--signal=SIGKILL", unit], prefix);
    if (!(await waitGone(unit, 5_000, prefix))) throw new Error(`${unit} is still running after SIGKILL`);
  }
  // A unit that ended badly stays loaded as "failed"; forget it so the name is free again.
  await resetFailed(unit, prefix);
}

/** Names of loaded units matching pattern, running or not. */
/** Loaded units matching the glob; with `states`, only those in one of them (e.g. ["active", "activating"]). */
export async function listUnits(pattern = "slicehub-server-*.service", prefix: Prefix = [], states?: string[]): Promise<string[]> {
  const filter = states ? [`--state=${states.join(",")}`] : ["--all"];
  const out = await check(["systemctl", "list-units", ...filter, "--plain", "--no-legend", "--no-pager", pattern], prefix);
  return out
    .split("\n")
    .map((line) => line.split(/\s+/)[0] ?? "")
    .filter((name) => name !== "");
}

/** The unit's last log lines: its own output and systemd's messages about it (exit status, OOM kill). */
export async function journalTail(unit: string, lines: number, prefix: Prefix = [], invocation?: string): Promise<string> {
  // With the invocation id: only this run of the unit (its output and systemd's lines about it), not the
  // output of earlier servers that had the same unit name.
  const match = invocation && /^[0-9a-f]{32}$/.test(invocation) ? [`_SYSTEMD_INVOCATION_ID=${invocation}`, "+", `INVOCATION_ID=${invocation}`] : ["-u", unit];
  return check(["journalctl", ...match, "-n", String(lines), "--no-pager", "-o", "cat"], prefix);
}

/** Forgets a failed unit's state; no error when there is nothing to reset. */
export async function resetFailed(unit: string, prefix: Prefix = []): Promise<void> {
  await run(["systemctl", "reset-failed", unit], prefix);
}
