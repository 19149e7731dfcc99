// `slicehub backup FILE` and `slicehub restore FILE`: the hub's database, copied with SQLite's online backup
// while the hub runs (WAL: its writes never wait for the copy), checked, and put back only while no hub runs.
//
// A backup is the database alone, one self-contained SQLite file (journal mode DELETE, no -wal beside it), mode
// 0600: users, servers and their spawner state, hashed tokens and sessions, OAuth clients, identities, SSH keys,
// and the hub's own secrets (the OIDC state cookie's sealing key, in the clear: hence 0600). Not in it: the
// config file, the OIDC client secret file, root hooks, TLS files (the admin's files under /etc/slicehub), the
// users' homes, and the local spawner's server logs. The README says to back those up too.
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import Database from "better-sqlite3";
import type { Config } from "../src/config/schema.js";
import { lookupAccount } from "../spawners/accounts.js";
import { MIGRATIONS } from "../src/store/migrations.js";
import { lockPath, tryLockState } from "../src/store/state-lock.js";
import { databasePath } from "./daemon.js";

/** A refusal or failure the admin can act on: printed as one message, without a stack. */
export class CommandError extends Error {
  override name = "CommandError";
}

type Say = (line: string) => void;

const SQLITE_MAGIC = "SQLite format 3\0";
/** What migration 1 creates: every slicehub database has these. */
const CORE_TABLES = ["users", "servers", "api_tokens", "oauth_clients", "oauth_codes", "sessions", "spawn_events"];

export interface DatabaseSummary {
  bytes: number;
  schema: number;
  users: number;
  /** Servers recorded as running, pending or stopping ("user" or "user/server"): the ones a start adopts or cleans. */
  active: string[];
}

function stamp(at = new Date()): string {
  return at.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function fsyncPath(path: string, flags = constants.O_RDONLY): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function hasSqliteHeader(path: string): boolean {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(16);
    return readSync(fd, buf, 0, 16, 0) === 16 && buf.toString("latin1") === SQLITE_MAGIC;
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks that `path` is a slicehub database this slicehub can run on and summarises it; throws a CommandError
 * saying what is wrong otherwise. Opens the file read-write (a WAL-mode file needs that to be read), so call it
 * on a copy, never on a file someone else may be using.
 */
export function inspectDatabase(path: string, what = path): DatabaseSummary {
  if (!hasSqliteHeader(path)) throw new CommandError(`${what} is not a SQLite database (no SQLite header)`);
  let db: Database.Database;
  try {
    db = new Database(path, { fileMustExist: true, timeout: 5000 });
  } catch (err) {
    throw new CommandError(`${what} cannot be opened as a SQLite database: ${(err as Error).message}`);
  }
  try {
    let check: string[];
    try {
      check = (db.pragma("integrity_check") as { integrity_check: string }[]).map((r) => r.integrity_check);
    } catch (err) {
      throw new CommandError(`${what} is damaged: ${(err as Error).message}`);
    }
    if (check.length !== 1 || check[0] !== "ok") throw new CommandError(`${what} is damaged (integrity_check: ${check.slice(0, 3).join("; ")}${check.length > 3 ? "; …" : ""})`);
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    const schema = db.pragma("user_version", { simple: true }) as number;
    const missing = CORE_TABLES.filter((t) => !tables.has(t));
    if (schema < 1 || missing.length) {
      const jupyterhub = tables.has("alembic_version") ? " (it looks like JupyterHub's own database, which slicehub cannot read)" : "";
      throw new CommandError(`${what} is not a slicehub database${jupyterhub}: ${schema < 1 ? "no schema version" : `no table ${missing.join(", ")}`}`);
    }
    if (schema > MIGRATIONS.length) {
      throw new CommandError(`${what} was written by a newer slicehub (schema ${schema}; this one knows up to ${MIGRATIONS.length}): upgrade slicehub first`);
    }
    const users = (db.prepare("SELECT count(*) AS n FROM users").get() as { n: number }).n;
    const active = (
      db.prepare("SELECT u.name AS user, s.name AS server FROM servers s JOIN users u ON u.id = s.user_id WHERE s.state != 'stopped' ORDER BY u.name, s.name").all() as {
        user: string;
        server: string;
      }[]
    ).map((r) => (r.server ? `${r.user}/${r.server}` : r.user));
    return { bytes: statSync(path).size, schema, users, active };
  } finally {
    db.close();
  }
}

function describe(s: DatabaseSummary): string {
  const servers = s.active.length ? `${plural(s.active.length, "server")} recorded as running (${s.active.slice(0, 10).join(", ")}${s.active.length > 10 ? ", …" : ""})` : "no server recorded as running";
  return `${size(s.bytes)}, schema ${s.schema}, ${plural(s.users, "user")}, ${servers}`;
}

/** What a backup of the database leaves out, with this config's paths, for the admin to keep as well. */
function notInBackup(cfg: Config, configPath: string | undefined): string[] {
  const files = new Set<string>();
  if (configPath) files.add(resolve(configPath));
  if (cfg.auth.kind === "oidc" && cfg.auth.client_secret_file) files.add(cfg.auth.client_secret_file);
  if (cfg.spawner.kind === "systemd") files.add(cfg.spawner.hooks_dir);
  return [...files];
}

export interface BackupOptions {
  cfg: Config;
  configPath: string | undefined;
  file: string;
  say: Say;
  /** Pages copied per step (tests make it small to see progress on a small database). */
  stepPages?: number;
}

/**
 * Copies the live database to FILE: written to a temporary file beside it (0600), checked with integrity_check,
 * then renamed over FILE, so FILE is either the old file or a complete, checked backup. The hub may run and
 * write meanwhile. FILE may be a directory: the backup is then FILE/slicehub-<UTC time>.sqlite.
 */
export async function backup(o: BackupOptions): Promise<{ path: string; summary: DatabaseSummary }> {
  const source = databasePath(o.cfg);
  try {
    statSync(source);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EACCES") throw new CommandError(`cannot read ${source}: permission denied (run it as root or as ${o.cfg.run_as})`);
    throw new CommandError(`there is no database at ${source} (state_dir ${o.cfg.state_dir}): nothing to back up`);
  }
  let dest = resolve(o.file);
  if (existsSync(dest) && statSync(dest).isDirectory()) dest = join(dest, `slicehub-${stamp()}.sqlite`);
  const dir = dirname(dest);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CommandError(`${dir} is not a directory: cannot write ${dest}`);
  const sourceReal = realpathSync(source);
  const destReal = existsSync(dest) ? realpathSync(dest) : join(realpathSync(dir), basename(dest));
  if ([sourceReal, `${sourceReal}-wal`, `${sourceReal}-shm`, resolve(lockPath(o.cfg.state_dir))].includes(destReal)) {
    throw new CommandError(`${dest} is the hub's own database; name a file elsewhere`);
  }
  if (existsSync(dest) && !lstatSync(dest).isFile()) throw new CommandError(`${dest} exists and is not a regular file`);

  // Created empty, exclusively and 0600 before SQLite writes into it: no moment in which it is readable by others.
  const tmp = join(dir, `.${basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  closeSync(openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
  try {
    const db = new Database(source, { fileMustExist: true, timeout: 5000 });
    let restarts = 0;
    let atOnce = false;
    try {
      let last = Number.POSITIVE_INFINITY;
      let shown = -1;
      let step = o.stepPages ?? 0;
      await db.backup(tmp, {
        progress: ({ totalPages, remainingPages }) => {
          // A commit by another connection (the hub) restarts the copy. The hub keeps writing, so after two
          // restarts the rest goes in one step: one read transaction, which in WAL mode the hub's writes do not
          // wait for.
          if (remainingPages > last) restarts++;
          last = remainingPages;
          if (!o.stepPages) step = Math.max(1024, Math.ceil(totalPages / 20));
          if (restarts >= 2) {
            if (!atOnce) o.say("the hub keeps writing: copying the rest in one step");
            atOnce = true;
            return 0x7fffffff;
          }
          if (totalPages > step) {
            const pct = Math.floor(((totalPages - remainingPages) / totalPages) * 100);
            if (pct !== shown) {
              shown = pct;
              o.say(`copied ${pct}% (${totalPages - remainingPages} of ${totalPages} pages)${restarts ? `, restarted ${plural(restarts, "time")} by the hub's writes` : ""}`);
            }
          }
          return step;
        },
      });
    } finally {
      db.close();
    }
    // One file on its own: no -wal to lose when it is copied elsewhere.
    const copy = new Database(tmp, { fileMustExist: true });
    try {
      copy.pragma("journal_mode = DELETE");
    } finally {
      copy.close();
    }
    const summary = inspectDatabase(tmp, `the copy of ${source}`);
    chmodSync(tmp, 0o600);
    fsyncPath(tmp);
    const replaced = existsSync(dest);
    renameSync(tmp, dest);
    fsyncPath(dir);
    o.say(`${replaced ? "replaced" : "wrote"} ${dest}: ${describe(summary)}; integrity ok`);
    const keep = notInBackup(o.cfg, o.configPath);
    o.say(`it holds the database only; keep these with it: ${keep.length ? keep.join(", ") : "your config file"} (a restore needs them on the host)`);
    return { path: dest, summary };
  } finally {
    rmSync(tmp, { force: true });
    rmSync(`${tmp}-journal`, { force: true });
    rmSync(`${tmp}-wal`, { force: true });
    rmSync(`${tmp}-shm`, { force: true });
  }
}

export interface RestoreOptions {
  cfg: Config;
  file: string;
  say: Say;
}

/** Whether systemd says the hub's unit runs (only asked for the systemd spawner; a second check beside the lock). */
async function serviceActive(): Promise<string | undefined> {
  const { execFile } = await import("node:child_process");
  const unit = "slicehub.service";
  const active = await new Promise<boolean>((done) => execFile("systemctl", ["is-active", "--quiet", unit], { timeout: 10_000 }, (err) => done(!err)));
  return active ? unit : undefined;
}

/** Who should own the database (written as root by restore or import): run_as under the systemd spawner, else whoever owns the state directory. */
export async function databaseOwner(cfg: Config): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  if (cfg.spawner.kind === "systemd") {
    const a = await lookupAccount(cfg.run_as);
    if (a) return { uid: a.uid, gid: a.gid };
  }
  const st = statSync(cfg.state_dir);
  return { uid: st.uid, gid: st.gid };
}

/**
 * Puts a backup in place of the hub's database, only while no hub runs on the state directory (it holds the
 * state lock, which this takes for the whole restore, so no hub can start half-way either). The file is
 * copied beside the database and checked there first; the current database (with its -wal) is kept as
 * slicehub.sqlite.before-restore-<UTC time>; then the copy is renamed into place.
 */
export async function restore(o: RestoreOptions): Promise<{ previous: string | undefined; summary: DatabaseSummary }> {
  const file = resolve(o.file);
  if (!existsSync(file)) throw new CommandError(`${file} does not exist`);
  if (!lstatSync(file).isFile()) throw new CommandError(`${file} is not a regular file`);
  if (existsSync(`${file}-wal`)) {
    throw new CommandError(`${file}-wal exists beside it: ${file} is open (or was not closed) and would be restored without its latest writes; make the file with slicehub backup`);
  }
  const target = databasePath(o.cfg);
  const stateDir = o.cfg.state_dir;
  if (resolve(target) === file) throw new CommandError(`${file} is the hub's own database`);
  if (o.cfg.spawner.kind === "systemd") {
    const unit = await serviceActive();
    if (unit) throw new CommandError(`${unit} is running: stop it first (systemctl stop slicehub), then restore, then start it again`);
  }
  if (!existsSync(stateDir)) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    o.say(`created ${stateDir}`);
  }
  const who = await databaseOwner(o.cfg);
  const lock = tryLockState(stateDir);
  if (!lock) {
    throw new CommandError(
      `the hub is running on ${stateDir} (it holds ${lockPath(stateDir)}), or another restore is: stop it first (systemctl stop slicehub), then restore, then start it again`,
    );
  }
  const tmp = `${target}.restore-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    if (who) chownSync(lockPath(stateDir), who.uid, who.gid);
    copyFileSync(file, tmp, constants.COPYFILE_EXCL);
    chmodSync(tmp, 0o600);
    const summary = inspectDatabase(tmp, file);
    if (who) chownSync(tmp, who.uid, who.gid);
    fsyncPath(tmp);

    let previous: string | undefined;
    if (existsSync(target)) {
      // Fold the current database's -wal into it where it opens; otherwise the -wal is kept beside the copy.
      try {
        const cur = new Database(target, { fileMustExist: true, timeout: 5000 });
        try {
          cur.pragma("wal_checkpoint(TRUNCATE)");
        } finally {
          cur.close();
        }
      } catch (err) {
        o.say(`the current database could not be checkpointed (${(err as Error).message}); it is kept with its -wal as it is`);
      }
      previous = `${target}.before-restore-${stamp()}`;
      for (let i = 2; existsSync(previous); i++) previous = `${target}.before-restore-${stamp()}-${i}`;
      linkSync(target, previous);
      if (existsSync(`${target}-wal`)) renameSync(`${target}-wal`, `${previous}-wal`);
      rmSync(`${target}-shm`, { force: true });
    }
    // A -wal left beside the new file would be read as part of it.
    rmSync(`${target}-wal`, { force: true });
    rmSync(`${target}-shm`, { force: true });
    renameSync(tmp, target);
    fsyncPath(stateDir);
    if (previous) o.say(`kept the previous database as ${previous}`);
    o.say(`restored ${file} to ${target}: ${describe(summary)}`);
    if (who) o.say(`owned by uid ${who.uid}, mode 0600`);
    if (summary.schema < MIGRATIONS.length) o.say(`schema ${summary.schema} is older than this slicehub's ${MIGRATIONS.length}: the hub upgrades it when it starts`);
    o.say(
      summary.active.length
        ? "at its next start the hub adopts the servers recorded as running that still run, marks the others stopped, and stops servers the backup does not know"
        : "at its next start the hub stops any server the backup does not know",
    );
    return { previous, summary };
  } finally {
    rmSync(tmp, { force: true });
    rmSync(`${tmp}-wal`, { force: true });
    rmSync(`${tmp}-shm`, { force: true });
    lock.release();
  }
}
