// Reads a JupyterHub database (jupyterhub.sqlite, JupyterHub 3.x to 5.x) for `slicehub import jupyterhub`:
// opened read-only (it is never written, and JupyterHub may be running on it), read in one transaction (one
// consistent view), its schema identified by alembic_version and checked column by column.
import { closeSync, constants, openSync, readSync } from "node:fs";
import Database from "better-sqlite3";

/** A refusal the admin can act on: printed as one message, without a stack. */
export class ImportError extends Error {
  override name = "ImportError";
}

/**
 * The alembic heads of the JupyterHub releases this reads (jupyterhub/alembic/versions): none of them
 * changed a column read here. 3.0–3.1: api_token_scopes; 4.0: groups.properties; 4.1: services.from_config;
 * 5.0: roles' managed_by_auth; 5.3: PKCE on oauth_codes.
 */
export const SUPPORTED_REVISIONS: Readonly<Record<string, string>> = {
  "651f5419b74d": "3.x",
  "0eee8c825d24": "4.x",
  "3c2384c5aae1": "4.x",
  "4621fec11365": "5.x",
  afd65840b69e: "5.x",
  // Revisions on top of the 5.x heads (JupyterHub's alembic/versions, 2025–2026): spawners.display_name,
  // services.timeout, users.user_info. Each only adds a column this does not read.
  f460b0348206: "5.x or later",
  be8ecf03ddac: "5.x or later",
  ff1860e38070: "5.x or later",
};

/** Older heads, to say what was found and what to do. */
const OLDER_REVISIONS: Readonly<Record<string, string>> = {
  "833da8570507": "2.x",
  "4dc2d5a8c53c": "1.x",
  "896818069c98": "1.x",
  "1cebaf56856c": "1.x",
  d68c98b66cd4: "1.x",
  "99a28a4418e1": "0.9",
  "56cc5a70207e": "0.9",
  "3ec6993fe20c": "0.8",
  af4cbdb2d13c: "0.8",
  eeb276e51423: "0.7",
  "19c0846f6344": "0.5",
};

/** The columns read, table by table; every supported schema has them. */
const REQUIRED: Readonly<Record<string, readonly string[]>> = {
  users: ["id", "name", "admin", "created", "last_activity"],
  groups: ["id", "name"],
  user_group_map: ["user_id", "group_id"],
  spawners: ["id", "user_id", "name", "started", "last_activity"],
  roles: ["id", "name"],
  user_role_map: ["user_id", "role_id"],
  group_role_map: ["group_id", "role_id"],
};

/** Roles JupyterHub gives by itself: "admin" is carried as the admin flag, the rest are everyone's. */
const BUILTIN_ROLES = new Set(["admin", "user", "server", "token"]);

export interface JhServer {
  /** "" is the user's default server. */
  name: string;
  /** JupyterHub records it as running (a start time and no stop since). */
  running: boolean;
  lastActivity: number | null;
  hasUserOptions: boolean;
}

export interface JhUser {
  id: number;
  name: string;
  /** users.admin, the admin role, or membership of a group with the admin role. */
  admin: boolean;
  created: number | null;
  lastActivity: number | null;
  groups: string[];
  servers: JhServer[];
  /** Roles other than JupyterHub's own (admin, user, server, token), given to the user or a group of theirs. */
  otherRoles: string[];
  hasAuthState: boolean;
}

export interface JhDatabase {
  revision: string;
  /** "3.x", "4.x" or "5.x". */
  version: string;
  /** "JupyterHub 3.x (schema 651f5419b74d)" */
  source: string;
  users: JhUser[];
  groups: { name: string; members: number }[];
  /** What is not carried, counted. */
  notCarried: {
    userTokens: number;
    serviceTokens: number;
    services: string[];
    authStates: number;
    spawnerStates: number;
    userOptions: number;
    shares: number;
    /** Roles other than JupyterHub's own that users hold (directly or through a group). */
    roles: string[];
  };
}

/** SQLAlchemy's DateTime in SQLite: naive UTC, "2026-12-03 07:10:48.566153". Milliseconds, or null. */
export function parseJhTime(v: unknown): number | null {
  if (typeof v !== "string" || !v) return null;
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(v.trim());
  if (!m) return null;
  const frac = m[3] ? m[3].slice(0, 4) : "";
  const t = Date.parse(`${m[1]}T${m[2]}${frac}${m[4] ?? "Z"}`);
  return Number.isFinite(t) ? t : null;
}

function hasSqliteHeader(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ImportError(`${path} does not exist`);
    if (code === "EACCES") throw new ImportError(`cannot read ${path}: permission denied`);
    if (code === "EISDIR") throw new ImportError(`${path} is a directory; name the jupyterhub.sqlite file in it`);
    throw new ImportError(`cannot open ${path}: ${(err as Error).message}`);
  }
  try {
    const buf = Buffer.alloc(16);
    return readSync(fd, buf, 0, 16, 0) === 16 && buf.toString("latin1") === "SQLite format 3\0";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EISDIR") throw new ImportError(`${path} is a directory; name the jupyterhub.sqlite file in it`);
    throw new ImportError(`cannot read ${path}: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

const truthy = (v: unknown) => v === 1 || v === true || v === "1" || v === "true";

/** Reads the JupyterHub database at `path` read-only; throws an ImportError naming what is wrong. */
export function readJupyterhubDb(path: string): JhDatabase {
  if (!hasSqliteHeader(path)) throw new ImportError(`${path} is not a SQLite database (no SQLite header); JupyterHub's database is jupyterhub.sqlite in the directory it ran in, or the file db_url names`);
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 });
  } catch (err) {
    throw new ImportError(`cannot open ${path} read-only: ${(err as Error).message}`);
  }
  try {
    return db.transaction(() => readIn(db, path))();
  } catch (err) {
    if (err instanceof ImportError) throw err;
    const code = (err as { code?: string }).code ?? "";
    if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_READONLY")) {
      throw new ImportError(`${path} is busy or needs recovery (${(err as Error).message}): stop JupyterHub, or import a copy made with: sqlite3 ${path} ".backup jupyterhub-copy.sqlite"`);
    }
    throw new ImportError(`cannot read ${path}: ${(err as Error).message}`);
  } finally {
    db.close();
  }
}

function readIn(db: Database.Database, path: string): JhDatabase {
  const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
  if (!tables.has("alembic_version")) {
    const slicehub = tables.has("servers") && tables.has("api_tokens") && (db.pragma("user_version", { simple: true }) as number) > 0;
    throw new ImportError(
      slicehub
        ? `${path} is a slicehub database, not JupyterHub's (to move a slicehub database use slicehub backup and restore)`
        : `${path} is not a JupyterHub database: it has no alembic_version table (tables: ${[...tables].sort().slice(0, 12).join(", ") || "none"})`,
    );
  }
  const revisions = (db.prepare("SELECT version_num FROM alembic_version").all() as { version_num: string }[]).map((r) => r.version_num);
  if (revisions.length !== 1) throw new ImportError(`${path}: alembic_version holds ${revisions.length} revisions (${revisions.join(", ") || "none"}), expected one`);
  const revision = revisions[0]!;
  const version = SUPPORTED_REVISIONS[revision];
  if (!version) {
    const older = OLDER_REVISIONS[revision];
    const known = Object.entries(SUPPORTED_REVISIONS)
      .map(([r, v]) => `${r} (${v})`)
      .join(", ");
    throw new ImportError(
      older
        ? `${path} has the schema of JupyterHub ${older} (alembic revision ${revision}); slicehub imports JupyterHub 3.x to 5.x: upgrade it first with JupyterHub 3 or later (jupyterhub upgrade-db), then import`
        : `${path} has alembic revision ${revision}, which is not a JupyterHub 3.x–5.x schema this slicehub knows (${known}); if it comes from a newer JupyterHub, please report it`,
    );
  }
  const problems: string[] = [];
  for (const [table, columns] of Object.entries(REQUIRED)) {
    if (!tables.has(table)) {
      problems.push(`no table ${table}`);
      continue;
    }
    const have = new Set((db.prepare(`PRAGMA table_info(${JSON.stringify(table)})`).all() as { name: string }[]).map((c) => c.name));
    const missing = columns.filter((c) => !have.has(c));
    if (missing.length) problems.push(`${table} has no column ${missing.join(", ")}`);
  }
  if (problems.length) throw new ImportError(`${path} says JupyterHub ${version} (alembic revision ${revision}) but does not have its tables: ${problems.join("; ")}`);
  const columnsOf = (table: string) => (tables.has(table) ? new Set((db.prepare(`PRAGMA table_info(${JSON.stringify(table)})`).all() as { name: string }[]).map((c) => c.name)) : new Set<string>());

  const userCols = columnsOf("users");
  const spawnerCols = columnsOf("spawners");
  const users = db
    .prepare(`SELECT id, name, admin, created, last_activity${userCols.has("encrypted_auth_state") ? ", encrypted_auth_state IS NOT NULL AS auth_state" : ", 0 AS auth_state"} FROM users ORDER BY id`)
    .all() as { id: number; name: unknown; admin: unknown; created: unknown; last_activity: unknown; auth_state: number }[];
  const groupRows = db.prepare("SELECT g.id, g.name FROM groups g ORDER BY g.name").all() as { id: number; name: string }[];
  const groupName = new Map(groupRows.map((g) => [g.id, String(g.name)]));
  const memberships = db.prepare("SELECT user_id, group_id FROM user_group_map").all() as { user_id: number; group_id: number }[];
  const roles = new Map((db.prepare("SELECT id, name FROM roles").all() as { id: number; name: string }[]).map((r) => [r.id, String(r.name)]));
  const userRoles = db.prepare("SELECT user_id, role_id FROM user_role_map").all() as { user_id: number; role_id: number }[];
  const groupRoles = db.prepare("SELECT group_id, role_id FROM group_role_map").all() as { group_id: number; role_id: number }[];
  const spawners = db
    .prepare(
      `SELECT user_id, name, started, last_activity${spawnerCols.has("state") ? ", state" : ", NULL AS state"}${spawnerCols.has("user_options") ? ", user_options" : ", NULL AS user_options"} FROM spawners ORDER BY user_id, name`,
    )
    .all() as { user_id: number; name: unknown; started: unknown; last_activity: unknown; state: unknown; user_options: unknown }[];

  const groupsOfUser = new Map<number, number[]>();
  for (const m of memberships) groupsOfUser.set(m.user_id, [...(groupsOfUser.get(m.user_id) ?? []), m.group_id]);
  const rolesOfGroup = new Map<number, string[]>();
  for (const r of groupRoles) rolesOfGroup.set(r.group_id, [...(rolesOfGroup.get(r.group_id) ?? []), roles.get(r.role_id) ?? ""]);
  const rolesOfUser = new Map<number, string[]>();
  for (const r of userRoles) rolesOfUser.set(r.user_id, [...(rolesOfUser.get(r.user_id) ?? []), roles.get(r.role_id) ?? ""]);
  const serversOfUser = new Map<number, JhServer[]>();
  const filled = (v: unknown) => typeof v === "string" && v !== "" && v !== "{}" && v !== "null";
  let spawnerStates = 0;
  let userOptions = 0;
  for (const s of spawners) {
    if (filled(s.state)) spawnerStates++;
    if (filled(s.user_options)) userOptions++;
    const server: JhServer = { name: typeof s.name === "string" ? s.name : "", running: parseJhTime(s.started) !== null, lastActivity: parseJhTime(s.last_activity), hasUserOptions: filled(s.user_options) };
    serversOfUser.set(s.user_id, [...(serversOfUser.get(s.user_id) ?? []), server]);
  }

  const out: JhUser[] = [];
  for (const u of users) {
    if (typeof u.name !== "string" || !u.name) continue;
    const groupIds = groupsOfUser.get(u.id) ?? [];
    const viaGroups = groupIds.flatMap((g) => rolesOfGroup.get(g) ?? []);
    const allRoles = [...(rolesOfUser.get(u.id) ?? []), ...viaGroups];
    out.push({
      id: u.id,
      name: u.name,
      admin: truthy(u.admin) || allRoles.includes("admin"),
      created: parseJhTime(u.created),
      lastActivity: parseJhTime(u.last_activity),
      groups: groupIds.map((g) => groupName.get(g) ?? "").filter(Boolean).sort(),
      servers: serversOfUser.get(u.id) ?? [],
      otherRoles: [...new Set(allRoles.filter((r) => r && !BUILTIN_ROLES.has(r)))].sort(),
      hasAuthState: u.auth_state === 1,
    });
  }
  const tokenCols = columnsOf("api_tokens");
  const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  return {
    revision,
    version,
    source: `JupyterHub ${version} (schema ${revision})`,
    users: out,
    groups: groupRows.map((g) => ({ name: String(g.name), members: memberships.filter((m) => m.group_id === g.id).length })),
    notCarried: {
      userTokens: tokenCols.has("user_id") ? count("SELECT count(*) AS n FROM api_tokens WHERE user_id IS NOT NULL") : 0,
      serviceTokens: tokenCols.has("service_id") ? count("SELECT count(*) AS n FROM api_tokens WHERE service_id IS NOT NULL") : 0,
      services: tables.has("services") ? (db.prepare("SELECT name FROM services ORDER BY name").all() as { name: string }[]).map((r) => String(r.name)) : [],
      authStates: out.filter((u) => u.hasAuthState).length,
      spawnerStates,
      userOptions,
      shares: tables.has("shares") ? count("SELECT count(*) AS n FROM shares") : 0,
      roles: [...new Set(out.flatMap((u) => u.otherRoles))].sort(),
    },
  };
}
