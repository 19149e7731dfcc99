// The privileged helper's SSH work (ops ssh-*): which Unix account a hub user's SSH sessions run as, ending
// them, what they use, and the limits of the user slice logind puts them in. The helper resolves every account
// itself from the hub user name and the account rules; it never takes a uid or account name from the web process.
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { Config, SystemdSpawnerConfig } from "../../src/config/schema.js";
import type { Logger } from "../../src/log.js";
import { sshLimits, USER_SLICE_DIR, userSlice, userSliceDropIn } from "../../src/ssh/sshd.js";
import { ACCOUNT_MARKER, checkUsable, lookupAccount, unixAccountName, type Account, type UnixUsersConfig } from "../accounts.js";

const run = promisify(execFile);
const TIMEOUT_MS = 15_000;

export interface SshUsage {
  /** Open SSH connections (each has one sshd process running as the account). */
  sessions: number;
  /** Resident memory of the sessions' processes. */
  memoryBytes: number;
  /** CPU time of the sessions' live processes. */
  cpuSeconds: number;
}

/** The hub user's managed Unix account if it exists and slicehub may act on it; never creates one. */
export async function existingAccount(hubName: string, cfg: UnixUsersConfig): Promise<Account | undefined> {
  let name: string;
  try {
    name = unixAccountName(cfg.prefix, hubName);
  } catch {
    return undefined;
  }
  const account = await lookupAccount(name);
  if (!account) return undefined;
  try {
    return await checkUsable(account, hubName, cfg);
  } catch {
    return undefined; // a system account, another hub user's, or one slicehub may not adopt: not ours
  }
}

/** Every account with the prefix, and the hub user it belongs to when it is slicehub's (undefined: not ours). */
export async function prefixAccounts(cfg: UnixUsersConfig): Promise<{ name: string; hubUser: string | undefined }[]> {
  const { stdout } = await run("getent", ["passwd"], { timeout: TIMEOUT_MS, maxBuffer: 64 << 20 });
  const out: { name: string; hubUser: string | undefined }[] = [];
  for (const line of stdout.split("\n")) {
    const [name, , , , gecos = ""] = line.split(":");
    if (!name || !name.startsWith(cfg.prefix)) continue;
    const full = gecos.split(",")[0]!;
    const marked = full.startsWith(`${ACCOUNT_MARKER} `) ? full.slice(ACCOUNT_MARKER.length + 1) : undefined;
    let hubUser: string | undefined;
    const maps = (hub: string) => {
      try {
        return unixAccountName(cfg.prefix, hub) === name;
      } catch {
        return false;
      }
    };
    if (marked !== undefined) hubUser = maps(marked) ? marked : undefined;
    else if (cfg.adopt_existing && maps(name.slice(cfg.prefix.length))) hubUser = name.slice(cfg.prefix.length);
    out.push({ name, hubUser });
  }
  return out;
}

interface Proc {
  pid: number;
  uid: number;
  comm: string;
  /** The systemd cgroup path (name=systemd on v1/hybrid hosts, the unified one on v2). */
  cgroup: string;
}

function readProc(pid: number): Proc | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
    const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n");
    const named = lines.find((l) => /^\d+:name=systemd:/.test(l));
    const unified = lines.find((l) => l.startsWith("0::"));
    const cgroup = (named ?? unified ?? "").replace(/^\d*:[^:]*:/, "");
    return Number.isInteger(uid) ? { pid, uid, comm, cgroup } : undefined;
  } catch {
    return undefined; // gone meanwhile
  }
}

function processes(): Proc[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map((e) => readProc(Number(e)))
    .filter((p): p is Proc => p !== undefined);
}

/**
 * The cgroups SSH sessions live in: those holding a root-owned sshd (the listener, and each connection's
 * privileged monitor). With logind that is each session's scope; without it, ssh.service's own cgroup. A user
 * cannot start a root process, so their own processes elsewhere (their servers, their terminals) never count.
 */
function sshdCgroups(procs: Proc[]): Set<string> {
  return new Set(procs.filter((p) => p.uid === 0 && p.comm === "sshd" && p.cgroup).map((p) => p.cgroup));
}

const CLK_TCK = 100;

function usageOf(pid: number): { rss: number; cpu: number } {
  try {
    const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
    // Fields after the parenthesised comm: utime and stime are the 12th and 13th of them.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
    return { rss, cpu: Number.isFinite(cpu) ? cpu : 0 };
  } catch {
    return { rss: 0, cpu: 0 };
  }
}

/** SSH usage per uid, for the given uids (those without sessions are left out). */
export function sshUsage(uids: Set<number>): Map<number, SshUsage> {
  const procs = processes();
  const cgroups = sshdCgroups(procs);
  const out = new Map<number, SshUsage>();
  for (const p of procs) {
    if (!uids.has(p.uid) || !cgroups.has(p.cgroup)) continue;
    const u = out.get(p.uid) ?? { sessions: 0, memoryBytes: 0, cpuSeconds: 0 };
    if (p.comm === "sshd") u.sessions++;
    const { rss, cpu } = usageOf(p.pid);
    u.memoryBytes += rss;
    u.cpuSeconds += cpu;
    out.set(p.uid, u);
  }
  for (const [uid, u] of out) if (u.sessions === 0) out.delete(uid);
  return out;
}

/**
 * SSH usage per hub user, for those of `users` whose (slicehub-owned) account has sessions. Only the few uids
 * seen in sshd's cgroups are looked up, so an admin page over many users costs one scan of /proc.
 */
export async function sshUsageOf(users: readonly string[], cfg: UnixUsersConfig): Promise<Record<string, SshUsage>> {
  const procs = processes();
  const cgroups = sshdCgroups(procs);
  const uids = new Set(procs.filter((p) => p.uid !== 0 && p.comm === "sshd" && cgroups.has(p.cgroup)).map((p) => p.uid));
  if (uids.size === 0) return {};
  const byAccount = new Map<string, string>();
  for (const user of users) {
    try {
      byAccount.set(unixAccountName(cfg.prefix, user), user);
    } catch {
      // no account name for this user
    }
  }
  const byUid = new Map<number, string>();
  for (const uid of uids) {
    let name: string | undefined;
    try {
      name = (await run("getent", ["passwd", String(uid)], { timeout: TIMEOUT_MS })).stdout.split(":")[0];
    } catch {
      continue;
    }
    const user = name ? byAccount.get(name) : undefined;
    if (user && (await existingAccount(user, cfg))?.uid === uid) byUid.set(uid, user);
  }
  const usage = sshUsage(new Set(byUid.keys()));
  return Object.fromEntries([...usage].map(([uid, u]) => [byUid.get(uid)!, u]));
}

/** logind's sessions of this uid that sshd opened; empty when logind is not there. */
async function logindSshSessions(uid: number, log: Logger): Promise<{ id: string; scope: string }[]> {
  let list: { session: string; uid: number }[];
  try {
    const { stdout } = await run("loginctl", ["list-sessions", "--no-legend", "-o", "json"], { timeout: TIMEOUT_MS });
    list = JSON.parse(stdout || "[]") as { session: string; uid: number }[];
  } catch (err) {
    log.debug("no logind sessions to look at", { error: (err as Error).message.split("\n")[0] });
    return [];
  }
  const mine = list.filter((s) => s.uid === uid && /^[A-Za-z0-9_-]+$/.test(s.session));
  const out: { id: string; scope: string }[] = [];
  for (const s of mine) {
    try {
      const { stdout } = await run("loginctl", ["show-session", s.session, "-p", "Service", "-p", "Scope"], { timeout: TIMEOUT_MS });
      const props = Object.fromEntries(stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      if (props.Service === "sshd") out.push({ id: s.session, scope: props.Scope ?? "" });
    } catch {
      // Closed meanwhile.
    }
  }
  return out;
}

/**
 * Ends every SSH session of this uid: logind's sessions opened by sshd are terminated (their whole scope), then
 * every process of the uid in a cgroup holding a root sshd (the connection's own sshd and what it runs, also
 * without logind) or anywhere in the uid's user slice (what it started under its `systemd --user`, which logind
 * would otherwise stop only UserStopDelaySec after the last session) is killed, until none is left or 10 s have
 * passed. The account's servers and terminals run in units of their own, outside both. Returns the connections
 * found.
 */
export async function endSshSessions(uid: number, log: Logger): Promise<number> {
  if (!Number.isInteger(uid) || uid <= 0) throw new Error(`refusing to end the SSH sessions of uid ${uid}`);
  // Taken before anything is ended: a monitor that exits first must not hide its scope's leftovers.
  const first = processes();
  const cgroups = sshdCgroups(first);
  const connections = first.filter((p) => p.uid === uid && p.comm === "sshd" && cgroups.has(p.cgroup)).length;
  for (const s of await logindSshSessions(uid, log)) {
    if (s.scope) cgroups.add(`/user.slice/user-${uid}.slice/${s.scope}`);
    await run("loginctl", ["terminate-session", s.id], { timeout: TIMEOUT_MS }).catch((err: unknown) =>
      log.warn("could not terminate a logind session", { session: s.id, error: (err as Error).message }),
    );
  }
  const userSlice = `/user.slice/user-${uid}.slice/`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = processes().filter((p) => p.uid === uid && (cgroups.has(p.cgroup) || p.cgroup.startsWith(userSlice)));
    if (left.length === 0) break;
    if (Date.now() > deadline) {
      log.warn("SSH session processes still alive after 10 s of SIGKILL", { uid, pids: left.map((p) => p.pid) });
      break;
    }
    for (const p of left) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    await sleep(50);
  }
  return connections;
}

/**
 * Holds the account's user slice (where pam_systemd puts its SSH sessions) to the hub user's limits: writes
 * USER_SLICE_DIR/user-<uid>.slice.d/50-slicehub.conf when it changed, and reloads systemd if the slice is loaded
 * (a slice systemd loads later reads the file then). Returns whether anything changed.
 */
export async function applySshLimits(cfg: Config, hubUser: string, account: Account, log: Logger, dir = USER_SLICE_DIR): Promise<boolean> {
  if (account.uid <= 0) throw new Error(`refusing to set limits for uid ${account.uid}`);
  const limits = sshLimits(cfg, hubUser);
  const slice = userSlice(account.uid);
  const text = userSliceDropIn(limits, `${account.name} is hub user ${hubUser}; the limits of their default server, capped by spawner.slice_limits`);
  const dropInDir = join(dir, `${slice}.d`);
  const file = join(dropInDir, "50-slicehub.conf");
  let old: string | undefined;
  try {
    old = readFileSync(file, "utf8");
  } catch {
    old = undefined;
  }
  if (old === text) return false;
  mkdirSync(dropInDir, { recursive: true, mode: 0o755 });
  writeFileSync(`${file}.new`, text, { mode: 0o644 });
  renameSync(`${file}.new`, file);
  const { stdout } = await run("systemctl", ["list-units", "--all", "--plain", "--no-legend", "--no-pager", slice], { timeout: TIMEOUT_MS });
  if (stdout.trim()) await run("systemctl", ["daemon-reload"], { timeout: 60_000 });
  log.info("SSH limits set", { user: hubUser, account: account.name, slice, ...limits });
  return true;
}

/** applySshLimits for every account that is slicehub's (at the helper's start and after a config change). */
export async function applyAllSshLimits(cfg: Config, sp: SystemdSpawnerConfig, log: Logger): Promise<number> {
  let changed = 0;
  for (const { hubUser } of await prefixAccounts(sp.unix_users)) {
    if (hubUser === undefined) continue;
    const account = await existingAccount(hubUser, sp.unix_users);
    if (account && (await applySshLimits(cfg, hubUser, account, log))) changed++;
  }
  return changed;
}

/** Removes every user-slice drop-in applySshLimits wrote (for `slicehub uninstall`); returns the files removed. */
export function removeSshLimits(dir = USER_SLICE_DIR): string[] {
  const removed: string[] = [];
  for (const entry of readdirSync(dir)) {
    if (!/^user-\d+\.slice\.d$/.test(entry)) continue;
    const file = join(dir, entry, "50-slicehub.conf");
    try {
      rmSync(file);
      removed.push(file);
    } catch {
      continue; // not ours
    }
    try {
      rmdirSync(join(dir, entry));
    } catch {
      // An admin's own drop-ins are still there.
    }
  }
  return removed;
}

/**
 * sshd's "Accepted publickey" log lines since `cursor` (or, without one, of the last day), for the keys' last
 * use. Only entries journald attributes to a root sshd (_COMM=sshd, _UID=0: fields a user cannot set), so a
 * look-alike line a user writes with `logger` is not among them. At most `max` entries; the cursor resumes.
 */
export async function sshLogins(cursor: string | undefined, max = 2000): Promise<{ entries: { message: string; at: number }[]; cursor: string | undefined }> {
  const where = cursor ? ["--after-cursor", cursor] : ["--since", "-24h"];
  let stdout: string;
  try {
    ({ stdout } = await run("journalctl", ["_COMM=sshd", "_UID=0", ...where, "-n", String(max), "-o", "json", "--no-pager", "--output-fields=MESSAGE,__REALTIME_TIMESTAMP,__CURSOR"], {
      timeout: TIMEOUT_MS,
      maxBuffer: 64 << 20,
    }));
  } catch {
    // No journal (or none readable): nothing to report, and the cursor stays.
    return { entries: [], cursor };
  }
  const entries: { message: string; at: number }[] = [];
  let last = cursor;
  for (const line of stdout.split("\n")) {
    if (!line.trim()) continue;
    let e: { MESSAGE?: unknown; __REALTIME_TIMESTAMP?: unknown; __CURSOR?: unknown };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue;
    }
    if (typeof e.__CURSOR === "string") last = e.__CURSOR;
    if (typeof e.MESSAGE === "string" && e.MESSAGE.startsWith("Accepted publickey ") && typeof e.__REALTIME_TIMESTAMP === "string") {
      entries.push({ message: e.MESSAGE, at: Math.floor(Number(e.__REALTIME_TIMESTAMP) / 1000) });
    }
  }
  return { entries, cursor: last };
}

/** Whether logind answers (pam_systemd then puts each SSH login in user-<uid>.slice, where its limits apply). */
export async function logindAvailable(): Promise<boolean> {
  try {
    await run("loginctl", ["list-sessions", "--no-legend"], { timeout: TIMEOUT_MS });
    return true;
  } catch {
    return false;
  }
}
