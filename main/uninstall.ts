// `slicehub uninstall`: undoes `slicehub install` and what the running hub set up on the host. It works out a
// plan first (printed by --dry-run, and shown before asking for confirmation), then carries it out step by step,
// saying what it did. It is idempotent: a second run finds nothing left and says so.
//
// Removed always: slicehub.service and slicehub-helper.service (stopped, disabled, unit files gone), every
// user server (slicehub-server-*.service) and terminal (slicehub-terminal-*.service), the runtime directory
// /run/slicehub (server wrapper, token files, terminal sockets), the slices' runtime limits, sshd's drop-in and
// keys command, and the SSH limits on managed accounts' user slices; open SSH sessions of the managed accounts end.
// Kept unless asked: the managed Unix accounts and their homes (--remove-homes), the state directory with the
// database and the service user that owns it (--remove-data), the config directory (--remove-config). Kept
// accounts are locked (expired), because with sshd's drop-in gone a key a user left in ~/.ssh/authorized_keys
// would let them in.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { parse as parseJsonc } from "jsonc-parser";
import { loadConfigFile } from "../src/config/load.js";
import { SystemdSpawnerSchema } from "../src/config/schema.js";
import { KEYS_COMMAND, removeSshd, SSHD_DROPIN, USER_SLICE_DIR } from "../src/ssh/sshd.js";
import { LOCK_FILE } from "../src/store/state-lock.js";
import { lookupAccount, type Account, type UnixUsersConfig } from "../spawners/accounts.js";
import { endSshSessions, prefixAccounts, removeSshLimits, sshUsage } from "../spawners/privileged/ssh.js";
import { listUnits, showUnit, stopUnit } from "../spawners/systemd/systemctl.js";
import { log } from "../src/log.js";
import { CommandError } from "./backup.js";

const run = promisify(execFile);

/** The hub's own units, whichever exist (slicehub-helper.service: the privileged helper as its own unit). */
const HUB_UNITS = ["slicehub.service", "slicehub-helper.service", "slicehub-helper.socket"];
/** The helper's runtime directory and the socket directory of slicehub-helper.service. */
const RUNTIME_DIRS = ["/run/slicehub", "/run/slicehub-helper"];
/** Where `systemctl set-property --runtime` keeps the slices' limits. */
const RUNTIME_CONTROL_DIR = "/run/systemd/system.control";
/** install's comment on the service user; only an account with it is removed. */
const SERVICE_USER_COMMENT = "slicehub daemon";
const STOP_TIMEOUT_MS = 10_000;

export interface UninstallOptions {
  configPath: string;
  unitDir: string;
  removeHomes: boolean;
  removeData: boolean;
  removeConfig: boolean;
  dryRun: boolean;
  yes: boolean;
  say: (line: string) => void;
  /** Asks on the terminal; undefined when stdin is not one. */
  confirm?: (question: string) => Promise<boolean>;
}

interface Settings {
  stateDir: string;
  runAs: string;
  unixUsers: UnixUsersConfig;
  clientSecretFile?: string;
  hooksDir: string;
}

interface Step {
  /** What it does, for the plan: "stop slicehub.service". */
  plan: string;
  run: () => Promise<void> | void;
}

/**
 * The settings uninstall needs from the config, also when it is not valid (install's starter config is not,
 * until the OIDC client is filled in) or gone: then from the file as written, else install's defaults.
 */
function readSettings(configPath: string, say: (l: string) => void): Settings | undefined {
  const sp = SystemdSpawnerSchema.parse({ kind: "systemd" });
  const defaults: Settings = { stateDir: "/var/lib/slicehub", runAs: "slicehub", unixUsers: sp.unix_users, hooksDir: sp.hooks_dir };
  const r = loadConfigFile(configPath);
  if (r.ok) {
    const c = r.config;
    return {
      stateDir: c.state_dir,
      runAs: c.run_as,
      unixUsers: c.spawner.kind === "systemd" ? c.spawner.unix_users : defaults.unixUsers,
      hooksDir: c.spawner.kind === "systemd" ? c.spawner.hooks_dir : defaults.hooksDir,
      clientSecretFile: c.auth.kind === "oidc" ? c.auth.client_secret_file : undefined,
    };
  }
  // Without it, nothing says which accounts, state directory and service user are slicehub's on this host.
  if (!existsSync(configPath)) return undefined;
  say(`${configPath} is not valid (${r.errors[0]}); using its settings as written`);
  const raw = parseJsonc(readFileSync(configPath, "utf8"), [], { allowTrailingComma: true }) as Record<string, unknown> | undefined;
  const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const str = (v: unknown, d: string) => (typeof v === "string" && v ? v : d);
  const spawner = obj(raw?.spawner);
  const unix = obj(spawner.unix_users);
  const prefix = typeof unix.prefix === "string" && /^[a-z_][a-z0-9_-]{0,15}$/.test(unix.prefix) ? unix.prefix : defaults.unixUsers.prefix;
  const secret = obj(raw?.auth).client_secret_file;
  return {
    stateDir: resolve(dirname(resolve(configPath)), str(raw?.state_dir, defaults.stateDir)),
    runAs: str(raw?.run_as, defaults.runAs),
    unixUsers: { ...defaults.unixUsers, prefix, adopt_existing: false },
    hooksDir: str(spawner.hooks_dir, defaults.hooksDir),
    clientSecretFile: typeof secret === "string" ? secret : undefined,
  };
}

/** Whether `child` is strictly inside `dir`. */
function inside(dir: string, child: string): boolean {
  const rel = relative(dir, child);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

/** The Unix accounts slicehub created: the prefix and its "slicehub <hub user>" comment, never adopted ones. */
async function managedAccounts(unixUsers: UnixUsersConfig): Promise<{ account: Account; hubUser: string }[]> {
  const out: { account: Account; hubUser: string }[] = [];
  for (const { name, hubUser } of await prefixAccounts({ ...unixUsers, adopt_existing: false })) {
    if (hubUser === undefined) continue;
    const account = await lookupAccount(name);
    // Never a system account, whatever its comment says.
    if (account?.createdBySlicehub && account.uid >= 1000 && account.uid !== 65534) out.push({ account, hubUser });
  }
  return out;
}

/** Whether an account is expired (shadow's expire field in the past), i.e. already locked by an earlier run. */
async function expired(name: string): Promise<boolean> {
  try {
    const { stdout } = await run("getent", ["shadow", name]);
    const expire = stdout.trim().split(":")[7];
    return expire !== undefined && expire !== "" && Number(expire) * 86_400_000 <= Date.now();
  } catch {
    return false;
  }
}

/** Every process of `uid`, killed until none is left (bounded): userdel refuses an account still in use. */
async function killAll(uid: number): Promise<number> {
  if (!Number.isInteger(uid) || uid < 1000) throw new Error(`refusing to kill the processes of uid ${uid}`);
  let killed = 0;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pids = readdirSync("/proc")
      .filter((e) => /^\d+$/.test(e))
      .filter((e) => {
        try {
          return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${e}/status`, "utf8"))?.[1]) === uid;
        } catch {
          return false;
        }
      });
    if (pids.length === 0 || Date.now() > deadline) return killed;
    for (const p of pids) {
      try {
        process.kill(Number(p), "SIGKILL");
        killed++;
      } catch {
        // Gone already.
      }
    }
    await sleep(100);
  }
}

export async function uninstall(o: UninstallOptions): Promise<void> {
  const say = o.say;
  if (!o.dryRun && process.getuid?.() !== 0) {
    throw new CommandError("uninstall needs root (it stops system units, removes files under /etc and Unix accounts); try --dry-run to see what it would do");
  }
  const configPath = resolve(o.configPath);
  const s = readSettings(configPath, say);
  const steps: Step[] = [];
  const kept: string[] = [];
  let reload = false;

  // 1. The hub itself, before anything it would notice going away.
  for (const unit of HUB_UNITS) {
    const st = await showUnit(unit, ["LoadState", "ActiveState", "UnitFileState"]).catch(() => ({}) as Record<string, string>);
    const file = join(o.unitDir, unit);
    if (st.ActiveState && st.ActiveState !== "inactive" && st.ActiveState !== "failed") {
      steps.push({
        plan: `stop ${unit}`,
        run: async () => {
          await stopUnit(unit, 30_000);
          say(`stopped ${unit}`);
        },
      });
    }
    if (st.UnitFileState === "enabled" || st.UnitFileState === "enabled-runtime") {
      steps.push({
        plan: `disable ${unit}`,
        run: async () => {
          await run("systemctl", ["disable", unit], { timeout: 30_000 });
          say(`disabled ${unit}`);
        },
      });
    }
    if (existsSync(file)) {
      reload = true;
      steps.push({
        plan: `remove ${file}`,
        run: () => {
          rmSync(file);
          say(`removed ${file}`);
        },
      });
    }
    const dropIns = join(o.unitDir, `${unit}.d`);
    if (existsSync(dropIns)) kept.push(`${dropIns} (drop-ins slicehub did not write; remove them by hand if you like)`);
  }

  // 2. Users' servers and terminals: transient units, gone once stopped.
  // Every state but inactive: a stopped transient unit may stay loaded a while, with nothing left to stop.
  const live = ["active", "activating", "deactivating", "reloading", "failed"];
  const userUnits = [
    ...(await listUnits("slicehub-server-*.service", [], live).catch(() => [])),
    ...(await listUnits("slicehub-terminal-*.service", [], live).catch(() => [])),
  ];
  for (const unit of userUnits) {
    steps.push({
      plan: `stop ${unit}`,
      run: async () => {
        await stopUnit(unit, STOP_TIMEOUT_MS);
        say(`stopped ${unit}`);
      },
    });
  }
  // The per-user slices' limits (systemctl set-property --runtime); the slices go once their units have.
  const control = existsSync(RUNTIME_CONTROL_DIR) ? readdirSync(RUNTIME_CONTROL_DIR).filter((e) => /^slicehub(-[^/]*)?\.slice\.d$/.test(e)) : [];
  for (const e of control) {
    reload = true;
    steps.push({
      plan: `remove ${join(RUNTIME_CONTROL_DIR, e)}`,
      run: () => {
        rmSync(join(RUNTIME_CONTROL_DIR, e), { recursive: true, force: true });
        say(`removed ${join(RUNTIME_CONTROL_DIR, e)}`);
      },
    });
  }
  for (const d of RUNTIME_DIRS.filter((d) => existsSync(d))) {
    steps.push({
      plan: `remove ${d}${d === RUNTIME_DIRS[0] ? " (the server wrapper, running servers' token files, terminal sockets)" : ""}`,
      run: () => {
        rmSync(d, { recursive: true, force: true });
        say(`removed ${d}`);
      },
    });
  }

  // 3. The host's OpenSSH and the SSH limits on the managed accounts' user slices.
  if (existsSync(SSHD_DROPIN) || existsSync(KEYS_COMMAND)) {
    steps.push({ plan: `remove ${[SSHD_DROPIN, KEYS_COMMAND].filter((f) => existsSync(f)).join(" and ")}, reload sshd`, run: () => removeSshd(say) });
  }
  const sliceDropIns = existsSync(USER_SLICE_DIR)
    ? readdirSync(USER_SLICE_DIR)
        .filter((e) => /^user-\d+\.slice\.d$/.test(e) && existsSync(join(USER_SLICE_DIR, e, "50-slicehub.conf")))
        .map((e) => join(USER_SLICE_DIR, e, "50-slicehub.conf"))
    : [];
  if (sliceDropIns.length) {
    reload = true;
    steps.push({
      plan: `remove the SSH limits on ${sliceDropIns.length} user slice${sliceDropIns.length === 1 ? "" : "s"} (${sliceDropIns.join(", ")})`,
      run: () => {
        for (const f of removeSshLimits(USER_SLICE_DIR)) say(`removed ${f}`);
      },
    });
  }

  if (!s) {
    kept.push(`the Unix accounts, state directory and service user: there is no config at ${configPath} to name them (pass --config FILE)`);
    return finish(o, steps, kept, reload);
  }

  // 4. The managed Unix accounts.
  const accounts = await managedAccounts(s.unixUsers);
  for (const { account, hubUser } of accounts) {
    const who = `${account.name} (hub user ${hubUser})`;
    const ownHome = (() => {
      try {
        const st = statSync(account.home);
        return account.home !== "/" && st.isDirectory() && st.uid === account.uid;
      } catch {
        return false;
      }
    })();
    if (o.removeHomes) {
      steps.push({
        plan: `remove Unix account ${who}${ownHome ? ` and its home ${account.home}` : ""}`,
        run: async () => {
          await run("loginctl", ["terminate-user", String(account.uid)], { timeout: 15_000 }).catch(() => undefined);
          const killed = await killAll(account.uid);
          if (killed) say(`ended ${killed} process${killed === 1 ? "" : "es"} of ${account.name}`);
          try {
            await run("userdel", ownHome ? ["--remove", account.name] : [account.name], { timeout: 60_000 });
          } catch (err) {
            // Exit 12: the home (or mail spool) could not be removed; the account is gone anyway.
            if ((err as { code?: unknown }).code !== 12) throw new Error(`userdel ${account.name} failed: ${((err as { stderr?: string }).stderr ?? String(err)).trim()}`);
          }
          say(`removed Unix account ${account.name}${ownHome ? ` and ${account.home}` : ` (its home ${account.home} is not its own directory: left)`}`);
        },
      });
    } else {
      const locked = await expired(account.name);
      const sessions = sshUsage(new Set([account.uid])).get(account.uid)?.sessions ?? 0;
      // Kept, locked and without sessions (an earlier run): nothing to do.
      if (locked && sessions === 0) continue;
      steps.push({
        plan: [sessions ? `end ${sessions} SSH session${sessions === 1 ? "" : "s"} of ${account.name}` : "", locked ? "" : `lock ${who} (usermod --expiredate 1)`].filter(Boolean).join(", then "),
        run: async () => {
          const ended = await endSshSessions(account.uid, log);
          if (ended) say(`ended ${ended} SSH session${ended === 1 ? "" : "s"} of ${account.name}`);
          if (!(await expired(account.name))) {
            await run("usermod", ["--expiredate", "1", account.name], { timeout: 30_000 });
            say(`locked ${account.name} (expired): without slicehub's sshd drop-in a key in its ~/.ssh/authorized_keys would log in`);
          }
        },
      });
    }
  }
  if (!o.removeHomes && accounts.length) {
    kept.push(
      `${accounts.length} Unix account${accounts.length === 1 ? "" : "s"} and their homes: ${accounts.map((a) => a.account.name).join(", ")} ` +
        `(locked; --remove-homes removes them; usermod --expiredate '' NAME unlocks one)`,
    );
  }

  // 5. State: the database, the server logs, the lock; and the service user that owns them.
  const stateExists = existsSync(s.stateDir);
  const serviceUser = await lookupAccount(s.runAs);
  const ownServiceUser = serviceUser !== undefined && serviceUser.gecos.split(",")[0] === SERVICE_USER_COMMENT && serviceUser.uid !== 0;
  if (o.removeData) {
    if (stateExists) {
      const resolved = resolve(s.stateDir);
      const entries = readdirSync(resolved);
      const ours = entries.length === 0 || entries.some((e) => e === "slicehub.sqlite" || e === LOCK_FILE);
      if (resolved.split("/").filter(Boolean).length < 2 || !ours) {
        throw new CommandError(`refusing to remove ${resolved}: it does not look like slicehub's state directory (no slicehub.sqlite in it)`);
      }
      steps.push({
        plan: `remove ${resolved} (the database: users, tokens, servers; server logs)`,
        run: () => {
          rmSync(resolved, { recursive: true, force: true });
          say(`removed ${resolved}`);
        },
      });
    }
    if (ownServiceUser) {
      steps.push({
        plan: `remove the service user ${s.runAs}`,
        run: async () => {
          await run("userdel", [s.runAs], { timeout: 60_000 });
          say(`removed the service user ${s.runAs}`);
        },
      });
    }
  } else {
    if (stateExists) kept.push(`${s.stateDir} (the database; --remove-data removes it)`);
    if (ownServiceUser) kept.push(`the service user ${s.runAs}, which owns ${s.stateDir} (--remove-data removes it too)`);
  }

  // 6. The config directory: the admin's config, the OIDC client secret, root hooks.
  const configDir = dirname(configPath);
  if (o.removeConfig) {
    // What install writes there, and the secret file and hooks directory the config names inside it.
    const files = [configPath, join(configDir, "config.schema.json"), join(configDir, "oidc-client-secret"), join(configDir, "roothooks.d")];
    if (s.clientSecretFile && inside(configDir, resolve(s.clientSecretFile))) files.push(resolve(s.clientSecretFile));
    if (inside(configDir, resolve(s.hooksDir))) files.push(resolve(s.hooksDir));
    const present = [...new Set(files)].filter((f) => existsSync(f));
    if (present.length) {
      steps.push({
        plan: `remove ${present.join(", ")}`,
        run: () => {
          for (const f of present) {
            rmSync(f, { recursive: true, force: true });
            say(`removed ${f}`);
          }
          try {
            rmdirSync(configDir);
            say(`removed ${configDir}`);
          } catch {
            const left = existsSync(configDir) ? readdirSync(configDir) : [];
            if (left.length) say(`left ${configDir}: it still holds ${left.join(", ")} (not slicehub's to remove)`);
          }
        },
      });
    }
  } else if (existsSync(configPath)) {
    kept.push(`${configDir} (config, OIDC client secret, root hooks; --remove-config removes slicehub's files there)`);
  }

  return finish(o, steps, kept, reload);
}

/** Shows the plan (dry run), asks, or carries it out. */
async function finish(o: UninstallOptions, steps: Step[], kept: string[], reload: boolean): Promise<void> {
  const say = o.say;
  if (reload) {
    steps.push({
      plan: "systemctl daemon-reload",
      run: async () => {
        await run("systemctl", ["daemon-reload"], { timeout: 60_000 });
        for (const unit of HUB_UNITS) await run("systemctl", ["reset-failed", unit], { timeout: 30_000 }).catch(() => undefined);
        say("systemctl daemon-reload");
      },
    });
  }

  if (steps.length === 0) {
    say("nothing left to remove: slicehub is not installed on this host");
    for (const k of kept) say(`kept ${k}`);
    return;
  }
  if (o.dryRun) {
    for (const st of steps) say(`would ${st.plan}`);
    for (const k of kept) say(`would keep ${k}`);
    return;
  }
  const destructive = o.removeHomes || o.removeData || o.removeConfig;
  if (!o.yes) {
    if (o.confirm) {
      say("slicehub uninstall will:");
      for (const st of steps) say(`  - ${st.plan}`);
      for (const k of kept) say(`  - keep ${k}`);
      if (!(await o.confirm("Go ahead? [y/N] "))) throw new CommandError("nothing done");
    } else if (destructive) {
      throw new CommandError(
        "--remove-homes, --remove-data and --remove-config delete data for good: add --yes to confirm (stdin is not a terminal to ask on); --dry-run shows what would go",
      );
    }
  }
  for (const st of steps) await st.run();
  for (const k of kept) say(`kept ${k}`);
  say("slicehub is uninstalled; its package files (this checkout or npm install) are yours to remove");
}
