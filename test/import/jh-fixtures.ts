// Hand-made JupyterHub databases, table by table as each release's alembic head has them (JupyterHub 3.0's
// from `jupyterhub` 3.0.0 itself; 4.x adds groups.properties (0eee8c825d24) and services.from_config
// (3c2384c5aae1); 5.x adds managed_by_auth to roles and the role maps (4621fec11365), the shares tables
// (created by the ORM) and, 5.3, PKCE columns on oauth_codes (afd65840b69e)).
import Database from "better-sqlite3";

export type JhVersion = "3" | "4" | "5";

const HEADS: Record<JhVersion, string> = { "3": "651f5419b74d", "4": "3c2384c5aae1", "5": "afd65840b69e" };

function schema(v: JhVersion): string {
  const managed = v === "5" ? ",\n  managed_by_auth BOOLEAN" : "";
  return `
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
CREATE TABLE servers (id INTEGER NOT NULL, proto VARCHAR(15), ip VARCHAR(255), port INTEGER, base_url VARCHAR(255), cookie_name VARCHAR(255), CONSTRAINT pk_servers PRIMARY KEY (id));
CREATE TABLE roles (id INTEGER NOT NULL, name VARCHAR(255), description VARCHAR(1023), scopes TEXT${managed}, CONSTRAINT pk_roles PRIMARY KEY (id), CONSTRAINT uq_roles_name UNIQUE (name));
CREATE TABLE groups (id INTEGER NOT NULL, name VARCHAR(255)${v !== "3" ? ", properties TEXT" : ""}, CONSTRAINT pk_groups PRIMARY KEY (id), CONSTRAINT uq_groups_name UNIQUE (name));
CREATE TABLE users (id INTEGER NOT NULL, name VARCHAR(255), admin BOOLEAN, created DATETIME, last_activity DATETIME, cookie_id VARCHAR(255) NOT NULL, state TEXT, encrypted_auth_state BLOB,
  CONSTRAINT pk_users PRIMARY KEY (id), CONSTRAINT uq_users_name UNIQUE (name), CONSTRAINT uq_users_cookie_id UNIQUE (cookie_id));
CREATE TABLE oauth_clients (id INTEGER NOT NULL, identifier VARCHAR(255), description VARCHAR(1023), secret VARCHAR(255), redirect_uri VARCHAR(1023), allowed_scopes TEXT,
  CONSTRAINT pk_oauth_clients PRIMARY KEY (id), CONSTRAINT uq_oauth_clients_identifier UNIQUE (identifier));
CREATE TABLE user_role_map (user_id INTEGER NOT NULL, role_id INTEGER NOT NULL${managed}, CONSTRAINT pk_user_role_map PRIMARY KEY (user_id, role_id),
  FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, FOREIGN KEY(role_id) REFERENCES roles (id) ON DELETE CASCADE);
CREATE TABLE group_role_map (group_id INTEGER NOT NULL, role_id INTEGER NOT NULL${managed}, CONSTRAINT pk_group_role_map PRIMARY KEY (group_id, role_id),
  FOREIGN KEY(group_id) REFERENCES groups (id) ON DELETE CASCADE, FOREIGN KEY(role_id) REFERENCES roles (id) ON DELETE CASCADE);
CREATE TABLE user_group_map (user_id INTEGER NOT NULL, group_id INTEGER NOT NULL, CONSTRAINT pk_user_group_map PRIMARY KEY (user_id, group_id),
  FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, FOREIGN KEY(group_id) REFERENCES groups (id) ON DELETE CASCADE);
CREATE TABLE spawners (id INTEGER NOT NULL, user_id INTEGER, server_id INTEGER, state TEXT, name VARCHAR(255), started DATETIME, last_activity DATETIME, user_options TEXT, oauth_client_id VARCHAR(255),
  CONSTRAINT pk_spawners PRIMARY KEY (id), FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE);
CREATE TABLE services (id INTEGER NOT NULL, name VARCHAR(255), admin BOOLEAN, _server_id INTEGER, pid INTEGER, oauth_client_id VARCHAR(255)${v !== "3" ? ", from_config BOOLEAN NOT NULL" : ""},
  CONSTRAINT pk_services PRIMARY KEY (id), CONSTRAINT uq_services_name UNIQUE (name));
CREATE TABLE service_role_map (service_id INTEGER NOT NULL, role_id INTEGER NOT NULL${managed}, CONSTRAINT pk_service_role_map PRIMARY KEY (service_id, role_id));
CREATE TABLE oauth_codes (id INTEGER NOT NULL, client_id VARCHAR(255), code VARCHAR(36), expires_at INTEGER, redirect_uri VARCHAR(1023), session_id VARCHAR(255), user_id INTEGER, scopes TEXT${v === "5" ? ", code_challenge VARCHAR(255), code_challenge_method VARCHAR(64)" : ""},
  CONSTRAINT pk_oauth_codes PRIMARY KEY (id));
CREATE TABLE api_tokens (user_id INTEGER, service_id INTEGER, id INTEGER NOT NULL, hashed VARCHAR(255), prefix VARCHAR(16), client_id VARCHAR(255), session_id VARCHAR(255), created DATETIME,
  expires_at DATETIME, last_activity DATETIME, note VARCHAR(1023), scopes TEXT, CONSTRAINT pk_api_tokens PRIMARY KEY (id), CONSTRAINT uq_api_tokens_hashed UNIQUE (hashed));
${
  v === "5"
    ? `CREATE TABLE shares (id INTEGER NOT NULL, created_at DATETIME NOT NULL, owner_id INTEGER, spawner_id INTEGER, scopes TEXT, user_id INTEGER, group_id INTEGER, CONSTRAINT pk_shares PRIMARY KEY (id));
CREATE TABLE share_codes (id INTEGER NOT NULL, created_at DATETIME NOT NULL, expires_at DATETIME, exchange_count INTEGER, last_exchanged_at DATETIME, code VARCHAR(64), owner_id INTEGER, spawner_id INTEGER, scopes TEXT, CONSTRAINT pk_share_codes PRIMARY KEY (id));`
    : ""
}
INSERT INTO alembic_version VALUES ('${HEADS[v]}');
INSERT INTO roles (id, name, description, scopes) VALUES (1, 'user', 'Standard user privileges', '["self"]'), (2, 'admin', 'Elevated privileges', '["admin:users"]'),
  (3, 'server', 'Post activity only', '[]'), (4, 'token', 'Token', '["inherit"]'), (5, 'gpu-users', 'custom', '["read:users"]');
`;
}

export interface JhFixtureUser {
  name: string;
  admin?: boolean;
  /** Role names beyond "user". */
  roles?: string[];
  groups?: string[];
  /** Server names ("" the default); "*" suffix: recorded as running. */
  servers?: string[];
  lastActivity?: string;
  authState?: boolean;
  tokens?: number;
}

/** Writes a JupyterHub database of that version's schema at `path` with these users and groups. */
export function makeJhDb(path: string, v: JhVersion, users: JhFixtureUser[], opts: { groupRoles?: Record<string, string[]>; services?: string[]; shares?: number } = {}): void {
  const db = new Database(path);
  try {
    db.exec(schema(v));
    const roleId = (name: string) => (db.prepare("SELECT id FROM roles WHERE name = ?").get(name) as { id: number }).id;
    const groups = new Map<string, number>();
    const group = (name: string) => {
      let id = groups.get(name);
      if (id === undefined) {
        id = Number(db.prepare("INSERT INTO groups (name) VALUES (?)").run(name).lastInsertRowid);
        groups.set(name, id);
      }
      return id;
    };
    let token = 0;
    users.forEach((u, i) => {
      const id = Number(
        db
          .prepare("INSERT INTO users (name, admin, created, last_activity, cookie_id, encrypted_auth_state) VALUES (?, ?, ?, ?, ?, ?)")
          .run(u.name, u.admin ? 1 : 0, "2025-01-02 03:04:05.123456", u.lastActivity ?? null, `cookie-${i}`, u.authState ? Buffer.from("sealed") : null).lastInsertRowid,
      );
      for (const r of ["user", ...(u.roles ?? [])]) db.prepare("INSERT INTO user_role_map (user_id, role_id) VALUES (?, ?)").run(id, roleId(r));
      for (const g of u.groups ?? []) db.prepare("INSERT INTO user_group_map (user_id, group_id) VALUES (?, ?)").run(id, group(g));
      for (const s of u.servers ?? [""]) {
        const running = s.endsWith("*");
        db.prepare("INSERT INTO spawners (user_id, name, started, last_activity, state, user_options) VALUES (?, ?, ?, ?, ?, ?)").run(
          id,
          running ? s.slice(0, -1) : s,
          running ? "2025-06-01 10:00:00.000000" : null,
          "2025-06-01 12:00:00.000000",
          running ? '{"pid": 4242}' : null,
          s === "" ? null : '{"profile": "small"}',
        );
      }
      for (let t = 0; t < (u.tokens ?? 0); t++) {
        db.prepare("INSERT INTO api_tokens (id, user_id, hashed, prefix, created, scopes) VALUES (?, ?, ?, ?, ?, ?)").run(++token, id, `hash-${token}`, "abcd", "2025-01-01 00:00:00", '["inherit"]');
      }
    });
    for (const [g, roles] of Object.entries(opts.groupRoles ?? {})) for (const r of roles) db.prepare("INSERT INTO group_role_map (group_id, role_id) VALUES (?, ?)").run(group(g), roleId(r));
    (opts.services ?? []).forEach((name, i) => {
      db.prepare(`INSERT INTO services (name, admin${v !== "3" ? ", from_config" : ""}) VALUES (?, 0${v !== "3" ? ", 1" : ""})`).run(name);
      db.prepare("INSERT INTO api_tokens (id, service_id, hashed, prefix, created, scopes) VALUES (?, ?, ?, ?, ?, ?)").run(1000 + i, i + 1, `service-hash-${i}`, "svc", "2025-01-01 00:00:00", "[]");
    });
    if (v === "5") for (let i = 0; i < (opts.shares ?? 0); i++) db.prepare("INSERT INTO shares (created_at, owner_id, spawner_id, scopes, user_id) VALUES (?, 1, 1, '[]', 2)").run("2025-01-01 00:00:00");
  } finally {
    db.close();
  }
}
