// Whose SSH keys a Unix account gets, for sshd's AuthorizedKeysCommand (main/authorized-keys.ts). Read-only:
// the database is opened with { readonly: true } and nothing is written (last use comes from sshd's log).
//
// An account gets keys only when every one of these holds, else none (and the login falls through to sshd's
// other methods, which the drop-in turns off for managed accounts):
//   - the hub uses the systemd spawner and ssh.enabled is true;
//   - the account is exactly unixAccountName(prefix, hub user) for one hub user (the mapping is recomputed
//     from the candidate's name, never parsed back);
//   - the account passes the spawner's own check for that user (spawners/accounts.ts checkUsable: not a system
//     account, made by slicehub for this very hub user, or adopt_existing) — so `root`, other people's
//     accounts and an account made for another hub user get nothing;
//   - the user is not blocked and the config still lets them in (auth/access.ts accessUnder, the same rule
//     that ends their sessions on a reload).
// Each key printed is rebuilt from the checked parts with fixed options and a fixed comment, so nothing a user
// typed reaches authorized_keys syntax.
import Database from "better-sqlite3";
import { accessUnder } from "../auth/access.js";
import type { Config } from "../src/config/schema.js";
import { MIGRATIONS } from "../src/store/migrations.js";
import { databaseFile } from "../src/store/reader.js";
import { readSshKeys } from "../src/store/ssh-keys.js";
import type { IdentityRow, UserRow } from "../src/store/store.js";
import { parsePublicKey } from "../src/ssh/keys.js";
import { checkUsable, lookupAccount, unixAccountName, type Account } from "../spawners/accounts.js";

/**
 * authorized_keys options for every key: `restrict` turns off everything (agent and X11 forwarding, port
 * forwarding, pty, ~/.ssh/rc), then a pty (terminals, VS Code's remote shell) and port forwarding (VS Code
 * Remote-SSH reaches its server through a local forward) are allowed again. sshd's drop-in narrows
 * forwarding further (AllowTcpForwarding local).
 */
export const KEY_OPTIONS = "restrict,pty,port-forwarding";

/** The schema version that added ssh_keys. */
const SSH_KEYS_SCHEMA = 4;

/** A failure that must not be answered with "no keys" silently: a broken config or database. */
export class AuthorizedKeysError extends Error {
  override name = "AuthorizedKeysError";
}

export interface Lookup {
  /** authorized_keys lines, one per key; empty for anyone who gets none. */
  lines: string[];
  /** Why (for --explain and the tests). */
  why: string;
}

export interface LookupDeps {
  /** The passwd entry for an account name (default: getent). */
  account?: (name: string) => Promise<Account | undefined>;
}

const UNIX_NAME = /^[a-z_][a-z0-9_.-]{0,31}$/;
// unixAccountName shortens long names to 25 characters + "-" + 6 hex digits.
const SHORTENED = /^(.+)-[0-9a-f]{6}$/;
const USER_COLUMNS = "id, name, admin, blocked, created, last_activity";

export function sshEnabled(cfg: Config): boolean {
  return (cfg as { ssh?: { enabled?: unknown } }).ssh?.enabled === true;
}

/** Hub users whose Unix account is exactly `account` (normally one; a shortened name could match several). */
function candidates(db: Database.Database, prefix: string, account: string): UserRow[] {
  if (!account.startsWith(prefix)) return [];
  // The prefix is never empty (the config's rule), so no "_" is ever put in front of a leading digit.
  const rest = account.slice(prefix.length);
  const found = new Map<number, UserRow>();
  const exact = db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE name = ?`).get(rest) as UserRow | undefined;
  if (exact) found.set(exact.id, exact);
  const short = SHORTENED.exec(rest);
  if (short) {
    for (const u of db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE substr(name, 1, ?) = ?`).all(short[1]!.length, short[1]!) as UserRow[]) found.set(u.id, u);
  }
  return [...found.values()].filter((u) => {
    try {
      return unixAccountName(prefix, u.name) === account;
    } catch {
      return false;
    }
  });
}

/** Opens the hub's database read-only and checks it has the SSH keys table. */
export function openReadOnly(cfg: Config): Database.Database {
  const file = databaseFile(cfg.state_dir);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new AuthorizedKeysError(`cannot open the hub's database ${file} read-only: ${(err as Error).message}`);
  }
  try {
    db.pragma("busy_timeout = 2000");
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version < SSH_KEYS_SCHEMA) {
      throw new AuthorizedKeysError(`the hub's database ${file} is at schema ${version}, before SSH keys (${SSH_KEYS_SCHEMA}): start this version of slicehub once to upgrade it`);
    }
    if (version > MIGRATIONS.length) {
      throw new AuthorizedKeysError(`the hub's database ${file} was written by a newer slicehub (schema ${version}, this one knows ${MIGRATIONS.length})`);
    }
    return db;
  } catch (err) {
    db.close();
    if (err instanceof AuthorizedKeysError) throw err;
    throw new AuthorizedKeysError(`cannot read the hub's database ${file}: ${(err as Error).message}`);
  }
}

/** The authorized_keys lines for Unix account `account` under `cfg`. Throws AuthorizedKeysError for a broken database. */
export async function authorizedKeysFor(cfg: Config, account: string, deps: LookupDeps = {}): Promise<Lookup> {
  const none = (why: string): Lookup => ({ lines: [], why });
  if (cfg.spawner.kind !== "systemd") return none("the hub does not use the systemd spawner, so it manages no Unix accounts");
  if (!sshEnabled(cfg)) return none("ssh.enabled is not true in the config");
  if (!UNIX_NAME.test(account)) return none(`"${account.slice(0, 40)}" is not a Unix account name slicehub makes`);
  const unixUsers = cfg.spawner.unix_users;
  if (!account.startsWith(unixUsers.prefix)) return none(`${account} does not start with spawner.unix_users.prefix "${unixUsers.prefix}"`);

  const db = openReadOnly(cfg);
  try {
    const users = candidates(db, unixUsers.prefix, account);
    if (users.length === 0) return none(`no hub user has the Unix account ${account}`);
    const entry = await (deps.account ?? lookupAccount)(account);
    if (!entry) return none(`there is no Unix account ${account}`);
    // The spawner's own rule: the account must be one this hub user may run as (marked for them by slicehub, or
    // adopted when the config allows), and never a system account.
    const usable: UserRow[] = [];
    const refusals: string[] = [];
    for (const u of users) {
      try {
        await checkUsable(entry, u.name, unixUsers);
        usable.push(u);
      } catch (err) {
        refusals.push((err as Error).message);
      }
    }
    if (usable.length !== 1) {
      return none(usable.length ? `${account} could belong to several hub users (${usable.map((u) => u.name).join(", ")}); refusing all` : refusals.join("; "));
    }
    const user = usable[0]!;
    const identity = db.prepare("SELECT * FROM identities WHERE user_id = ?");
    const access = accessUnder(cfg, { getIdentityOfUser: (id: number) => identity.get(id) as IdentityRow | undefined }, user);
    if (!access.allowed) return none(`hub user ${user.name} may not log in: ${access.why}`);

    const lines: string[] = [];
    for (const row of readSshKeys(db, user.id)) {
      // Re-checked on the way out: a row that is not exactly one valid key (written by hand, say) is skipped.
      const parsed = parsePublicKey(`${row.algorithm} ${row.key}`);
      if (!parsed.ok || parsed.key.type !== row.algorithm || parsed.key.base64 !== row.key) continue;
      lines.push(`${KEY_OPTIONS} ${parsed.key.type} ${parsed.key.base64} slicehub:${user.name}:${row.id}`);
    }
    return { lines, why: `hub user ${user.name}: ${lines.length} key${lines.length === 1 ? "" : "s"}` };
  } finally {
    db.close();
  }
}
