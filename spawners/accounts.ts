// Maps hub users to Unix accounts (prefix + hub name) and creates the accounts that are missing.
//
// Accounts slicehub creates carry the comment "slicehub <hub user>" in their GECOS field. That marker is what
// lets slicehub reuse its own accounts without adopting other people's, and, because it names the hub user,
// it also keeps two hub users whose names map to the same Unix name (see unixAccountName) from sharing one.
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { chmod, lstat, readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { SystemdSpawnerConfig } from "../src/config/schema.js";
import type { Logger } from "../src/log.js";

export type UnixUsersConfig = SystemdSpawnerConfig["unix_users"];

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  /** The GECOS field as is. */
  gecos: string;
  createdBySlicehub: boolean;
}

export const ACCOUNT_MARKER = "slicehub";

/** A reason a hub user cannot get a Unix account, worded for that user (and the admin they ask). */
export class AccountError extends Error {
  override name = "AccountError";
}

// useradd's limit on Debian; longer names exit 3 ("invalid user name").
const MAX_NAME = 32;
const HASH_CHARS = 6;
const UNIX_NAME = /^[a-z_][a-z0-9_.-]*$/;
const NOBODY_UID = 65534;
const DEFAULT_UID_MIN = 1000;
// Exit codes: getent "key not found", useradd "user name already in use".
const GETENT_NOT_FOUND = 2;
const USERADD_EXISTS = 9;

const run = promisify(execFile);

function exitCode(err: unknown): unknown {
  return (err as { code?: unknown }).code;
}

function stderrOf(err: unknown): string {
  return (err as { stderr?: string }).stderr?.trim() || String(err);
}

/**
 * The Unix account name for a hub user: prefix + hub name, adjusted so that it is a valid, unambiguous
 * Unix name and distinct hub names give distinct results:
 * - a leading digit (only possible with an empty prefix) gets a "_" in front, since an all-digit name reads
 *   as a uid to chown and getent; hub names never start with "_", so this cannot collide with another one;
 * - a name over 32 characters, or ending in "." (chown reads "bob." as "bob and his login group"), keeps
 *   its first 25 characters and gets "-" + 6 hex digits of sha256(hub name).
 * A hub user could pick a name that collides with such a shortened one on purpose; the GECOS marker check
 * in ensureAccount then refuses the second user instead of sharing the account.
 */
export function unixAccountName(prefix: string, hubName: string): string {
  let name = prefix + hubName;
  if (/^[0-9]/.test(name)) name = `_${name}`;
  if (name.length > MAX_NAME || name.endsWith(".")) {
    const hash = createHash("sha256").update(hubName).digest("hex").slice(0, HASH_CHARS);
    name = `${name.slice(0, MAX_NAME - HASH_CHARS - 1)}-${hash}`;
  }
  if (!UNIX_NAME.test(name)) throw new AccountError(`hub user name "${hubName}" cannot be made into a Unix account name`);
  return name;
}

/** The passwd entry for a user name (from `getent`, so NSS sources like LDAP count), or undefined. */
export async function lookupAccount(name: string): Promise<Account | undefined> {
  let stdout: string;
  try {
    ({ stdout } = await run("getent", ["passwd", "--", name]));
  } catch (err) {
    if (exitCode(err) === GETENT_NOT_FOUND) return undefined;
    throw err;
  }
  const [login, , uid, gid, gecos = "", home = "", shell = ""] = stdout.split("\n")[0]!.split(":");
  // getent looks an all-digit key up as a uid: only an entry with exactly this name counts.
  if (login !== name) return undefined;
  return { name, uid: Number(uid), gid: Number(gid), home, shell, gecos, createdBySlicehub: markedFor(gecos) !== undefined };
}

/** The hub user named by slicehub's GECOS marker, if there is one. */
function markedFor(gecos: string): string | undefined {
  // chfn may append ",room,phone,..." to the full name, which is where the marker lives.
  const fullName = gecos.split(",")[0]!;
  return fullName.startsWith(`${ACCOUNT_MARKER} `) ? fullName.slice(ACCOUNT_MARKER.length + 1) : undefined;
}

async function uidMin(): Promise<number> {
  const defs = await readFile("/etc/login.defs", "utf8").catch(() => "");
  const match = /^\s*UID_MIN\s+(\d+)\s*$/m.exec(defs);
  return match ? Number(match[1]) : DEFAULT_UID_MIN;
}

async function groupExists(group: string): Promise<boolean> {
  try {
    await run("getent", ["group", "--", group]);
    return true;
  } catch (err) {
    if (exitCode(err) === GETENT_NOT_FOUND) return false;
    throw err;
  }
}

/** Refuses accounts a hub user must never run as; returns the account otherwise. (Also what decides whose SSH keys an account gets.) */
export async function checkUsable(account: Account, hubName: string, cfg: UnixUsersConfig): Promise<Account> {
  // uid 0 is checked on its own in case login.defs sets UID_MIN to 0.
  if (account.uid === 0 || account.uid < (await uidMin()) || account.uid === NOBODY_UID) {
    throw new AccountError(`Unix account ${account.name} is a system account; refusing to run a server as it`);
  }
  const owner = markedFor(account.gecos);
  if (owner === hubName) return account;
  if (owner !== undefined) {
    throw new AccountError(`Unix account ${account.name} was created by slicehub for hub user ${owner}, not ${hubName}`);
  }
  if (!cfg.adopt_existing) {
    throw new AccountError(
      `Unix account ${account.name} already exists and was not created by slicehub; ` +
        `an admin can set spawner.unix_users.adopt_existing to let hub user ${hubName} use it`,
    );
  }
  return account;
}

// Servers for the same user can start at the same time; the second must wait for the first's useradd
// instead of running its own. That matters: useradd checks the name before taking the passwd lock, so two
// concurrent useradds for one name both exit 0, and the second rewrites the entry with a new uid while the
// home stays owned by the first. Each entry is the last queued call for that account name.
const queue = new Map<string, Promise<Account>>();

/** The Unix account hub user `hubName` runs servers as, created if missing and allowed. */
export async function ensureAccount(hubName: string, cfg: UnixUsersConfig, log: Logger): Promise<Account> {
  const name = unixAccountName(cfg.prefix, hubName);
  const previous = queue.get(name);
  const mine = (previous ?? Promise.resolve()).catch(() => undefined).then(() => ensureNow(name, hubName, cfg, log));
  queue.set(name, mine);
  try {
    return await mine;
  } finally {
    if (queue.get(name) === mine) queue.delete(name);
  }
}

async function ensureNow(name: string, hubName: string, cfg: UnixUsersConfig, log: Logger): Promise<Account> {
  const existing = await lookupAccount(name);
  if (existing) return checkUsable(existing, hubName, cfg);
  if (!cfg.create) throw new AccountError(`no Unix account ${name} for hub user ${hubName}, and spawner.unix_users.create is false`);
  for (const group of cfg.groups) {
    if (!(await groupExists(group))) throw new AccountError(`group ${group} in spawner.unix_users.groups does not exist`);
  }

  const home = path.join(cfg.home, name);
  const groups = cfg.groups.length ? ["--groups", cfg.groups.join(",")] : [];
  const comment = `${ACCOUNT_MARKER} ${hubName}`;
  try {
    await run("useradd", ["--create-home", "--home-dir", home, "--shell", cfg.shell, "--comment", comment, "--user-group", ...groups, name]);
  } catch (err) {
    // Another process (a second slicehub, an admin) created it since the lookup: judge it like any existing
    // account. Exit 9 also means a group of that name exists without the user; that is reported below.
    const raced = exitCode(err) === USERADD_EXISTS ? await lookupAccount(name) : undefined;
    if (raced) return checkUsable(raced, hubName, cfg);
    throw new AccountError(`could not create Unix account ${name}: ${stderrOf(err)}`);
  }

  const account = await lookupAccount(name);
  if (!account) throw new AccountError(`Unix account ${name} was created but cannot be looked up`);
  // useradd succeeds, with a warning, when the home directory already exists, and leaves its owner alone:
  // a directory left from an earlier account must not become this one's home.
  const st = await lstat(account.home).catch(() => undefined);
  if (!st?.isDirectory() || st.uid !== account.uid || st.gid !== account.gid) {
    await run("userdel", [name]).catch((err: unknown) =>
      log.error("could not remove the Unix account just created", { account: name, error: stderrOf(err) }),
    );
    throw new AccountError(`home directory ${account.home} of new Unix account ${name} existed before and is not owned by it; an admin must remove or chown it`);
  }
  // useradd applies the umask (022 on Debian); a home must not be readable by the other hub users.
  await chmod(account.home, 0o700);
  log.info("created Unix account", { account: name, user: hubName, uid: account.uid });
  return checkUsable(account, hubName, cfg);
}
