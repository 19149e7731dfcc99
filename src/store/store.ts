// The hub's state in one SQLite file. WAL + synchronous=NORMAL: every committed transaction survives a
// crash of this process (kill -9); only a power cut can lose the last few. All multi-row changes run in a
// transaction so the file is always consistent.
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { newHexId, newSecret, sha256 } from "../secrets.js";
import { MIGRATIONS } from "./migrations.js";

export interface UserRow {
  id: number;
  name: string;
  admin: number;
  blocked: number;
  created: number;
  last_activity: number | null;
}

export type ServerState = "stopped" | "pending" | "running" | "stopping";

export interface ServerRow {
  id: number;
  user_id: number;
  name: string;
  state: ServerState;
  spawn_id: number;
  url: string | null;
  spawner_kind: string | null;
  spawner_state: string | null;
  user_options: string;
  started: number | null;
  last_activity: number | null;
  failure: string | null;
}

export type TokenKind = "api" | "server" | "oauth";

export interface TokenRow {
  id: number;
  user_id: number;
  prefix: string;
  kind: TokenKind;
  note: string;
  scopes: string;
  server_id: number | null;
  oauth_client_id: string | null;
  session_id: string | null;
  created: number;
  expires_at: number | null;
  last_activity: number | null;
}

export interface OAuthClientRow {
  id: string;
  secret_hash: string;
  redirect_uri: string;
  description: string;
  allowed_scopes: string;
  server_id: number | null;
}

export interface OAuthCodeRow {
  client_id: string;
  user_id: number;
  scopes: string;
  redirect_uri: string;
  session_id: string | null;
  code_challenge: string | null;
  expires_at: number;
}

export interface SessionRow {
  hash: string;
  public_id: string;
  user_id: number;
  csrf: string;
  created: number;
  last_seen: number;
}

export interface IdentityRow {
  issuer: string;
  subject: string;
  user_id: number;
  email: string | null;
  /** JSON of the claims access decisions use: email, email_verified, hd. */
  claims: string;
  created: number;
  last_login: number;
}

export interface UserQuery {
  state?: "active" | "ready" | "inactive";
  nameFilter?: string;
  offset: number;
  limit: number;
}

const TOKEN_COLUMNS =
  "id, user_id, prefix, kind, note, scopes, server_id, oauth_client_id, session_id, created, expires_at, last_activity";

export class Store {
  readonly db: Database.Database;
  /**
   * Prepared statements by SQL text. Preparing costs more than running most of these queries (it was 16 % of
   * the hub's CPU under API load), so each statement is prepared once and reused; the texts are fixed strings
   * or come from a small set of combinations (listUsers' filters, updateServer's columns).
   */
  private readonly statements = new Map<string, Database.Statement>();

  constructor(file: string) {
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("foreign_keys = ON");
    this.db.pragma("busy_timeout = 5000");
    this.migrate();
  }

  private migrate(): void {
    const current = this.db.pragma("user_version", { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `the database was written by a newer slicehub (schema ${current}, this one knows ${MIGRATIONS.length}); refusing to touch it`,
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  get schemaVersion(): number {
    return this.db.pragma("user_version", { simple: true }) as number;
  }

  /** The prepared statement for this SQL, prepared on first use. */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  close(): void {
    this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // ---- users

  getUser(name: string): UserRow | undefined {
    return this.stmt("SELECT * FROM users WHERE name = ?").get(name) as UserRow | undefined;
  }

  getUserById(id: number): UserRow | undefined {
    return this.stmt("SELECT * FROM users WHERE id = ?").get(id) as UserRow | undefined;
  }

  /** Create the user if missing; admin follows the given flag when it is defined. */
  ensureUser(name: string, admin?: boolean): UserRow {
    this.stmt("INSERT INTO users (name, admin, created) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING")
      .run(name, admin ? 1 : 0, Date.now());
    if (admin !== undefined) this.stmt("UPDATE users SET admin = ? WHERE name = ?").run(admin ? 1 : 0, name);
    return this.getUser(name)!;
  }

  createUser(name: string, admin: boolean): UserRow | undefined {
    const r = this.stmt("INSERT INTO users (name, admin, created) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING")
      .run(name, admin ? 1 : 0, Date.now());
    return r.changes ? this.getUser(name) : undefined;
  }

  deleteUser(id: number): void {
    this.stmt("DELETE FROM users WHERE id = ?").run(id);
  }

  private userFilter(q: Omit<UserQuery, "offset" | "limit">): { where: string; args: unknown[] } {
    const clauses: string[] = [];
    const args: unknown[] = [];
    if (q.nameFilter) {
      clauses.push("instr(u.name, ?) > 0");
      args.push(q.nameFilter);
    }
    if (q.state === "active") clauses.push("EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.state != 'stopped')");
    if (q.state === "ready") clauses.push("EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.state = 'running')");
    if (q.state === "inactive") clauses.push("NOT EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.state != 'stopped')");
    return { where: clauses.length ? `WHERE ${clauses.join(" AND ")}` : "", args };
  }

  listUsers(q: UserQuery): { users: UserRow[]; total: number } {
    const { where, args } = this.userFilter(q);
    const total = (this.stmt(`SELECT count(*) AS n FROM users u ${where}`).get(...args) as { n: number }).n;
    const users = this.stmt(`SELECT u.* FROM users u ${where} ORDER BY u.id LIMIT ? OFFSET ?`)
      .all(...args, q.limit, q.offset) as UserRow[];
    return { users, total };
  }

  /** Activity only ever moves forward. */
  touchUser(id: number, at: number): void {
    this.stmt("UPDATE users SET last_activity = ? WHERE id = ? AND (last_activity IS NULL OR last_activity < ?)").run(at, id, at);
  }

  // ---- servers

  getServer(userId: number, name: string): ServerRow | undefined {
    return this.stmt("SELECT * FROM servers WHERE user_id = ? AND name = ?").get(userId, name) as ServerRow | undefined;
  }

  getServerById(id: number): ServerRow | undefined {
    return this.stmt("SELECT * FROM servers WHERE id = ?").get(id) as ServerRow | undefined;
  }

  ensureServer(userId: number, name: string): ServerRow {
    this.stmt("INSERT INTO servers (user_id, name) VALUES (?, ?) ON CONFLICT(user_id, name) DO NOTHING").run(userId, name);
    return this.getServer(userId, name)!;
  }

  deleteServer(id: number): void {
    this.stmt("DELETE FROM servers WHERE id = ?").run(id);
  }

  listServers(userId: number): ServerRow[] {
    return this.stmt("SELECT * FROM servers WHERE user_id = ? ORDER BY name").all(userId) as ServerRow[];
  }

  /**
   * The servers of several users in one query, each user's ordered by name as listServers orders them; every
   * id asked for has an entry (empty when the user has no servers).
   */
  listServersOf(userIds: readonly number[]): Map<number, ServerRow[]> {
    const out = new Map<number, ServerRow[]>();
    for (const id of userIds) out.set(id, []);
    if (!userIds.length) return out;
    const rows = this.stmt("SELECT * FROM servers WHERE user_id IN (SELECT value FROM json_each(?)) ORDER BY user_id, name").all(
      JSON.stringify(userIds),
    ) as ServerRow[];
    for (const r of rows) out.get(r.user_id)?.push(r);
    return out;
  }

  /** Servers that are not stopped, with their owner's name. */
  listActiveServers(): (ServerRow & { user_name: string })[] {
    return this.stmt("SELECT s.*, u.name AS user_name FROM servers s JOIN users u ON u.id = s.user_id WHERE s.state != 'stopped'")
      .all() as (ServerRow & { user_name: string })[];
  }

  updateServer(id: number, patch: Partial<Omit<ServerRow, "id" | "user_id" | "name">>): void {
    const keys = Object.keys(patch);
    if (!keys.length) return;
    const sets = keys.map((k) => `${k} = @${k}`).join(", ");
    this.stmt(`UPDATE servers SET ${sets} WHERE id = @id`).run({ ...patch, id });
  }

  /** Record activity for a server and its user, only ever forward. */
  touchServer(id: number, at: number): void {
    this.transaction(() => {
      this.stmt("UPDATE servers SET last_activity = ? WHERE id = ? AND (last_activity IS NULL OR last_activity < ?)")
        .run(at, id, at);
      this.stmt(
          "UPDATE users SET last_activity = ? WHERE id = (SELECT user_id FROM servers WHERE id = ?) AND (last_activity IS NULL OR last_activity < ?)",
        )
        .run(at, id, at);
    });
  }

  // ---- API tokens (only SHA-256 hashes are stored)

  createToken(t: {
    userId: number;
    kind: TokenKind;
    scopes: string[];
    note?: string;
    serverId?: number | null;
    oauthClientId?: string | null;
    sessionId?: string | null;
    expiresInS?: number | null;
  }): { token: string; row: TokenRow } {
    const token = newSecret();
    const now = Date.now();
    const r = this.stmt(
        `INSERT INTO api_tokens (user_id, hash, prefix, kind, note, scopes, server_id, oauth_client_id, session_id, created, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        t.userId,
        sha256(token),
        token.slice(0, 4),
        t.kind,
        t.note ?? "",
        JSON.stringify(t.scopes),
        t.serverId ?? null,
        t.oauthClientId ?? null,
        t.sessionId ?? null,
        now,
        t.expiresInS ? now + t.expiresInS * 1000 : null,
      );
    return { token, row: this.getToken(Number(r.lastInsertRowid))! };
  }

  getToken(id: number): TokenRow | undefined {
    return this.stmt(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = ?`).get(id) as TokenRow | undefined;
  }

  /** The live token with this value, or undefined (unknown, revoked or expired). */
  findToken(token: string): TokenRow | undefined {
    return this.stmt(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE hash = ? AND (expires_at IS NULL OR expires_at > ?)`)
      .get(sha256(token), Date.now()) as TokenRow | undefined;
  }

  listTokens(userId: number): TokenRow[] {
    return this.stmt(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY id`)
      .all(userId, Date.now()) as TokenRow[];
  }

  deleteToken(id: number): void {
    this.stmt("DELETE FROM api_tokens WHERE id = ?").run(id);
  }

  /** The server's own API token (not the OAuth tokens browsers got for it). */
  deleteServerTokens(serverId: number): void {
    this.stmt("DELETE FROM api_tokens WHERE server_id = ? AND kind = 'server'").run(serverId);
  }

  deleteTokensForSession(sessionPublicId: string): number {
    return this.stmt("DELETE FROM api_tokens WHERE session_id = ?").run(sessionPublicId).changes;
  }

  touchToken(id: number, at: number): void {
    this.stmt("UPDATE api_tokens SET last_activity = ? WHERE id = ?").run(at, id);
  }

  // ---- OAuth clients and codes

  /**
   * Registers (or re-keys) a server's OAuth client. A client id already registered to another server is a
   * clash: refused, so one server can never take over another's login or, when stopped, revoke its tokens.
   */
  upsertOAuthClient(c: OAuthClientRow): void {
    const existing = this.getOAuthClient(c.id);
    if (existing && existing.server_id !== c.server_id) throw new Error(`OAuth client id ${c.id} already belongs to another server`);
    this.stmt(
        `INSERT INTO oauth_clients (id, secret_hash, redirect_uri, description, allowed_scopes, server_id)
         VALUES (@id, @secret_hash, @redirect_uri, @description, @allowed_scopes, @server_id)
         ON CONFLICT(id) DO UPDATE SET secret_hash = excluded.secret_hash, redirect_uri = excluded.redirect_uri,
           description = excluded.description, allowed_scopes = excluded.allowed_scopes, server_id = excluded.server_id`,
      )
      .run(c);
  }

  getOAuthClient(id: string): OAuthClientRow | undefined {
    return this.stmt("SELECT * FROM oauth_clients WHERE id = ?").get(id) as OAuthClientRow | undefined;
  }

  deleteOAuthClient(id: string): void {
    this.stmt("DELETE FROM oauth_clients WHERE id = ?").run(id);
  }

  /** Every client registered for this server, and by cascade the OAuth tokens and codes issued through them. */
  deleteServerOAuthClients(serverId: number): void {
    this.stmt("DELETE FROM oauth_clients WHERE server_id = ?").run(serverId);
  }

  /**
   * A new single-use code. A user holds at most `perUser` live ones (a browser needs one per server it
   * opens, for a few seconds): expired ones and then the oldest go, so a script hammering /authorize cannot
   * grow the table.
   */
  createOAuthCode(c: OAuthCodeRow, perUser = 20): string {
    const code = newSecret();
    this.stmt(
        `DELETE FROM oauth_codes WHERE user_id = @user AND (expires_at <= @now OR hash IN
           (SELECT hash FROM oauth_codes WHERE user_id = @user ORDER BY expires_at DESC LIMIT -1 OFFSET @keep))`,
      )
      .run({ user: c.user_id, now: Date.now(), keep: perUser - 1 });
    this.stmt(
        `INSERT INTO oauth_codes (hash, client_id, user_id, scopes, redirect_uri, session_id, code_challenge, expires_at)
         VALUES (@hash, @client_id, @user_id, @scopes, @redirect_uri, @session_id, @code_challenge, @expires_at)`,
      )
      .run({ ...c, hash: sha256(code) });
    return code;
  }

  /** Single use: the code is deleted whether or not it is still valid. */
  consumeOAuthCode(code: string): OAuthCodeRow | undefined {
    return this.transaction(() => {
      const hash = sha256(code);
      const row = this.stmt("SELECT * FROM oauth_codes WHERE hash = ?").get(hash) as (OAuthCodeRow & { hash: string }) | undefined;
      if (!row) return undefined;
      this.stmt("DELETE FROM oauth_codes WHERE hash = ?").run(hash);
      return row.expires_at > Date.now() ? row : undefined;
    });
  }

  // ---- browser sessions (the cookie value is a secret; only its hash is stored)

  createSession(userId: number): { cookie: string; session: SessionRow } {
    const cookie = newSecret();
    const now = Date.now();
    const session: SessionRow = { hash: sha256(cookie), public_id: newHexId(), user_id: userId, csrf: newSecret(), created: now, last_seen: now };
    this.stmt("INSERT INTO sessions (hash, public_id, user_id, csrf, created, last_seen) VALUES (@hash, @public_id, @user_id, @csrf, @created, @last_seen)")
      .run(session);
    return { cookie, session };
  }

  /** The live session for a cookie value; expired ones are deleted on sight. */
  findSession(cookie: string, idleMs: number, maxAgeMs: number): SessionRow | undefined {
    const hash = sha256(cookie);
    const row = this.stmt("SELECT * FROM sessions WHERE hash = ?").get(hash) as SessionRow | undefined;
    if (!row) return undefined;
    const now = Date.now();
    if (now - row.last_seen > idleMs || now - row.created > maxAgeMs) {
      this.deleteSession(row);
      return undefined;
    }
    // Write at most once a minute per session: this runs on every hub request.
    if (now - row.last_seen > 60_000) this.stmt("UPDATE sessions SET last_seen = ? WHERE hash = ?").run(now, hash);
    return row;
  }

  /** Ends a session and revokes the OAuth tokens single-user servers got through it. */
  deleteSession(s: Pick<SessionRow, "hash" | "public_id">): void {
    this.transaction(() => {
      this.stmt("DELETE FROM sessions WHERE hash = ?").run(s.hash);
      this.deleteTokensForSession(s.public_id);
    });
  }

  // ---- identities (who a user is at the identity provider)

  getIdentity(issuer: string, subject: string): IdentityRow | undefined {
    return this.stmt("SELECT * FROM identities WHERE issuer = ? AND subject = ?").get(issuer, subject) as IdentityRow | undefined;
  }

  getIdentityOfUser(userId: number): IdentityRow | undefined {
    return this.stmt("SELECT * FROM identities WHERE user_id = ?").get(userId) as IdentityRow | undefined;
  }

  /** Records a first login; updates email and time on later ones. */
  saveIdentity(i: { issuer: string; subject: string; userId: number; email: string | null; claims: object }): void {
    const now = Date.now();
    this.stmt(
        `INSERT INTO identities (issuer, subject, user_id, email, claims, created, last_login) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(issuer, subject) DO UPDATE SET email = excluded.email, claims = excluded.claims, last_login = excluded.last_login`,
      )
      .run(i.issuer, i.subject, i.userId, i.email, JSON.stringify(i.claims), now, now);
  }

  setBlocked(userId: number, blocked: boolean): void {
    this.stmt("UPDATE users SET blocked = ? WHERE id = ?").run(blocked ? 1 : 0, userId);
  }

  listIdentities(): (IdentityRow & { user_name: string })[] {
    return this.stmt("SELECT i.*, u.name AS user_name FROM identities i JOIN users u ON u.id = i.user_id").all() as (IdentityRow & { user_name: string })[];
  }

  // ---- access follows the config: ending a user's sessions and tokens

  /** Ends every browser session and revokes every API and OAuth token of a user (server tokens stay). */
  revokeUserAccess(userId: number): { sessions: number; tokens: number } {
    return this.transaction(() => {
      const sessions = this.stmt("DELETE FROM sessions WHERE user_id = ?").run(userId).changes;
      const tokens = this.stmt("DELETE FROM api_tokens WHERE user_id = ? AND kind != 'server'").run(userId).changes;
      return { sessions, tokens };
    });
  }

  setAdmin(userId: number, admin: boolean): void {
    this.stmt("UPDATE users SET admin = ? WHERE id = ?").run(admin ? 1 : 0, userId);
  }

  allUsers(): UserRow[] {
    return this.stmt("SELECT * FROM users ORDER BY id").all() as UserRow[];
  }

  // ---- spawn events

  addSpawnEvent(serverId: number, spawnId: number, event: object): void {
    this.stmt("INSERT INTO spawn_events (server_id, spawn_id, ts, event) VALUES (?, ?, ?, ?)").run(serverId, spawnId, Date.now(), JSON.stringify(event));
  }

  spawnEvents(serverId: number, spawnId: number): object[] {
    return (
      this.stmt("SELECT event FROM spawn_events WHERE server_id = ? AND spawn_id = ? ORDER BY id").all(serverId, spawnId) as { event: string }[]
    ).map((r) => JSON.parse(r.event) as object);
  }

  /** Keep only the events of each server's last few spawns. */
  pruneSpawnEvents(keepSpawns = 5): void {
    this.stmt("DELETE FROM spawn_events WHERE spawn_id <= (SELECT spawn_id FROM servers WHERE servers.id = spawn_events.server_id) - ?")
      .run(keepSpawns);
  }

  /** Remove expired codes, tokens and sessions (and the OAuth tokens bound to those sessions). */
  purgeExpired(session: { idleMs: number; maxAgeMs: number }): void {
    const now = Date.now();
    const stale = this.stmt("SELECT hash, public_id FROM sessions WHERE last_seen < ? OR created < ?")
      .all(now - session.idleMs, now - session.maxAgeMs) as Pick<SessionRow, "hash" | "public_id">[];
    for (const s of stale) this.deleteSession(s);
    this.stmt("DELETE FROM oauth_codes WHERE expires_at <= ?").run(now);
    this.stmt("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= ?").run(now);
  }

  /**
   * A random 32-byte secret kept across restarts (the OIDC state cookie's sealing key), created on first use.
   * Whoever creates it first wins, so two processes opening the same database agree on it.
   */
  secret(name: string): Buffer {
    const get = this.stmt("SELECT value FROM hub_secrets WHERE name = ?");
    let row = get.get(name) as { value: Buffer } | undefined;
    if (!row) {
      this.stmt("INSERT OR IGNORE INTO hub_secrets (name, value) VALUES (?, ?)").run(name, Buffer.from(newSecret(), "base64url"));
      row = get.get(name) as { value: Buffer };
    }
    return row.value;
  }
}
