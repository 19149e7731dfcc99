// The store's guarantees that the rest of the hub relies on: pragmas, cascades, secrets only as hashes,
// expiry of tokens, codes and sessions, logout revoking a session's tokens, activity only moving forward.
import { readdirSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { sha256 } from "../../src/secrets.js";
import { Store, type UserRow } from "../../src/store/store.js";

let dir: string;
let file: string;
let store: Store;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "slicehub-store-"));
  file = join(dir, "slicehub.sqlite");
  store = new Store(file);
});
afterEach(() => {
  vi.useRealTimers();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const count = (sql: string, ...args: unknown[]) => (store.db.prepare(sql).get(...args) as { n: number }).n;

/** A user with one server, an OAuth client, a code, tokens of every kind, a session and spawn events. */
function populate(name: string) {
  const user = store.createUser(name, false)!;
  const server = store.ensureServer(user.id, "");
  const clientId = `jupyterhub-user-${name}`;
  store.upsertOAuthClient({
    id: clientId,
    secret_hash: sha256("secret"),
    redirect_uri: `/user/${name}/oauth_callback`,
    description: `Server at /user/${name}/`,
    allowed_scopes: "[]",
    server_id: server.id,
  });
  const { session } = store.createSession(user.id);
  const api = store.createToken({ userId: user.id, kind: "api", scopes: ["inherit"] });
  const srv = store.createToken({ userId: user.id, kind: "server", scopes: [], serverId: server.id });
  const oauth = store.createToken({ userId: user.id, kind: "oauth", scopes: [], oauthClientId: clientId, sessionId: session.public_id });
  const code = store.createOAuthCode({
    client_id: clientId,
    user_id: user.id,
    scopes: "[]",
    redirect_uri: `/user/${name}/oauth_callback`,
    session_id: session.public_id,
    code_challenge: null,
    expires_at: Date.now() + 300_000,
  });
  store.addSpawnEvent(server.id, 1, { progress: 0, message: "Server requested" });
  store.addSpawnEvent(server.id, 1, { progress: 100, ready: true, message: "ready" });
  return { user, server, session, api, srv, oauth, code, clientId };
}

/** Rows anywhere in the database that belong to this user, table by table. */
function rowsOf(user: UserRow): Record<string, number> {
  return {
    servers: count("SELECT count(*) AS n FROM servers WHERE user_id = ?", user.id),
    api_tokens: count("SELECT count(*) AS n FROM api_tokens WHERE user_id = ?", user.id),
    sessions: count("SELECT count(*) AS n FROM sessions WHERE user_id = ?", user.id),
    oauth_codes: count("SELECT count(*) AS n FROM oauth_codes WHERE user_id = ?", user.id),
    oauth_clients: count("SELECT count(*) AS n FROM oauth_clients WHERE id = ?", `jupyterhub-user-${user.name}`),
    spawn_events: count("SELECT count(*) AS n FROM spawn_events e JOIN servers s ON s.id = e.server_id WHERE s.user_id = ?", user.id),
  };
}

describe("pragmas", () => {
  it("runs in WAL mode with foreign keys enforced, synchronous=NORMAL and a busy timeout", () => {
    expect(store.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(store.db.pragma("foreign_keys", { simple: true })).toBe(1);
    expect(store.db.pragma("synchronous", { simple: true })).toBe(1); // NORMAL
    expect(store.db.pragma("busy_timeout", { simple: true })).toBe(5000);
  });

  it("rejects rows that point at nothing", () => {
    expect(() => store.db.prepare("INSERT INTO servers (user_id, name) VALUES (999, '')").run()).toThrow(/FOREIGN KEY/);
    expect(() => store.createToken({ userId: 999, kind: "api", scopes: [] })).toThrow(/FOREIGN KEY/);
  });
});

describe("cascades", () => {
  it("deleting a user removes their servers, tokens, sessions, codes, OAuth clients and spawn events, nobody else's", () => {
    const a = populate("alice");
    const b = populate("bob");
    const full = { servers: 1, api_tokens: 3, sessions: 1, oauth_codes: 1, oauth_clients: 1, spawn_events: 2 };
    expect(rowsOf(a.user)).toEqual(full);

    store.deleteUser(a.user.id);

    expect(rowsOf(a.user)).toEqual({ servers: 0, api_tokens: 0, sessions: 0, oauth_codes: 0, oauth_clients: 0, spawn_events: 0 });
    expect(store.findToken("whatever")).toBeUndefined();
    expect(rowsOf(b.user)).toEqual(full);
    expect(store.db.pragma("foreign_key_check")).toEqual([]);
  });

  it("deleting a server removes its events, its server token, its OAuth client and the client's tokens", () => {
    const a = populate("alice");
    store.deleteServer(a.server.id);
    expect(store.getToken(a.srv.row.id)).toBeUndefined();
    expect(store.getToken(a.oauth.row.id)).toBeUndefined();
    expect(store.getOAuthClient(a.clientId)).toBeUndefined();
    expect(store.getToken(a.api.row.id)).toBeDefined(); // the personal API token is not tied to the server
    expect(store.spawnEvents(a.server.id, 1)).toEqual([]);
  });
});

describe("secrets are stored only as SHA-256", () => {
  it("keeps neither tokens, OAuth codes nor session cookies in the database files", () => {
    const a = populate("alice");
    const { cookie } = store.createSession(a.user.id);
    // Checkpoint so the main file holds everything too; then look at every file SQLite wrote (db, -wal, -shm).
    store.db.pragma("wal_checkpoint(FULL)");
    const bytes = readdirSync(dir).map((f) => readFileSync(join(dir, f)));
    const contains = (s: string) => bytes.some((b) => b.includes(Buffer.from(s)));

    for (const secret of [a.api.token, a.srv.token, a.oauth.token, a.code, cookie]) {
      expect(secret.length).toBeGreaterThanOrEqual(32);
      expect(contains(secret), "secret in plain text").toBe(false);
    }
    // …while their hashes are there (this is what makes the lookup work).
    expect(contains(sha256(a.api.token))).toBe(true);
    expect(contains(sha256(a.code))).toBe(true);
    expect(contains(sha256(cookie))).toBe(true);
    expect(store.findToken(a.api.token)?.id).toBe(a.api.row.id);
  });
});

describe("tokens", () => {
  it("findToken refuses unknown, deleted and expired tokens; listTokens hides expired ones", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const user = store.createUser("alice", false)!;
    const short = store.createToken({ userId: user.id, kind: "api", scopes: ["inherit"], expiresInS: 60 });
    const forever = store.createToken({ userId: user.id, kind: "api", scopes: ["inherit"] });
    expect(store.findToken(short.token)?.id).toBe(short.row.id);
    expect(store.findToken("not-a-token")).toBeUndefined();

    vi.setSystemTime(Date.now() + 61_000);
    expect(store.findToken(short.token)).toBeUndefined();
    expect(store.findToken(forever.token)?.id).toBe(forever.row.id);
    expect(store.listTokens(user.id).map((t) => t.id)).toEqual([forever.row.id]);

    store.deleteToken(forever.row.id);
    expect(store.findToken(forever.token)).toBeUndefined();

    store.purgeExpired({ idleMs: 14 * 86_400_000, maxAgeMs: 30 * 86_400_000 });
    expect(store.getToken(short.row.id)).toBeUndefined();
  });
});

describe("OAuth codes", () => {
  it("are single use", () => {
    const a = populate("alice");
    const row = store.consumeOAuthCode(a.code);
    expect(row).toMatchObject({ client_id: a.clientId, user_id: a.user.id, session_id: a.session.public_id });
    expect(store.consumeOAuthCode(a.code)).toBeUndefined();
  });

  it("expire, and an expired code is gone even after a refused attempt", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const a = populate("alice");
    vi.setSystemTime(Date.now() + 300_001);
    expect(store.consumeOAuthCode(a.code)).toBeUndefined();
    expect(count("SELECT count(*) AS n FROM oauth_codes")).toBe(0);
  });

  it("purgeExpired removes codes past their time only", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const a = populate("alice");
    store.createOAuthCode({ client_id: a.clientId, user_id: a.user.id, scopes: "[]", redirect_uri: "x", session_id: null, code_challenge: null, expires_at: Date.now() + 10 * 60_000 });
    vi.setSystemTime(Date.now() + 6 * 60_000);
    store.purgeExpired({ idleMs: 14 * 86_400_000, maxAgeMs: 30 * 86_400_000 });
    expect(count("SELECT count(*) AS n FROM oauth_codes")).toBe(1);
  });
});

describe("sessions", () => {
  const IDLE = 60 * 60_000;
  const MAX = 24 * 60 * 60_000;

  it("are purged in housekeeping once idle, with the OAuth tokens bound to them", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const user = store.createUser("alice", false)!;
    const idle = store.createSession(user.id).session;
    store.createToken({ userId: user.id, kind: "oauth", scopes: [], sessionId: idle.public_id });
    vi.setSystemTime(Date.now() + IDLE - 1000);
    const fresh = store.createSession(user.id).session;
    vi.setSystemTime(Date.now() + 2000);
    store.purgeExpired({ idleMs: IDLE, maxAgeMs: MAX });
    expect(count("SELECT count(*) AS n FROM sessions")).toBe(1);
    expect(store.db.prepare("SELECT public_id FROM sessions").get()).toEqual({ public_id: fresh.public_id });
    expect(count("SELECT count(*) AS n FROM api_tokens WHERE kind = 'oauth'")).toBe(0);
  });

  it("end after the idle timeout, and are deleted on sight", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const user = store.createUser("alice", false)!;
    const { cookie, session } = store.createSession(user.id);
    expect(store.findSession(cookie, IDLE, MAX)?.public_id).toBe(session.public_id);
    vi.setSystemTime(Date.now() + IDLE + 1);
    expect(store.findSession(cookie, IDLE, MAX)).toBeUndefined();
    expect(count("SELECT count(*) AS n FROM sessions")).toBe(0);
  });

  it("stay alive while used (last_seen moves), but end at the absolute maximum age regardless", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const user = store.createUser("alice", false)!;
    const { cookie } = store.createSession(user.id);
    const start = Date.now();
    // Use it every 50 minutes (under the idle timeout) for the whole maximum age.
    for (let t = start + 50 * 60_000; t < start + MAX; t += 50 * 60_000) {
      vi.setSystemTime(t);
      expect(store.findSession(cookie, IDLE, MAX), `still alive at +${(t - start) / 60_000} min`).toBeDefined();
    }
    vi.setSystemTime(start + MAX + 1);
    expect(store.findSession(cookie, IDLE, MAX)).toBeUndefined();
  });

  it("an unknown cookie finds nothing", () => {
    expect(store.findSession("nope", IDLE, MAX)).toBeUndefined();
  });

  it("deleteSession revokes exactly the tokens bound to that session id", () => {
    const a = populate("alice");
    const other = store.createSession(a.user.id);
    const otherToken = store.createToken({ userId: a.user.id, kind: "oauth", scopes: [], oauthClientId: a.clientId, sessionId: other.session.public_id });

    store.deleteSession(a.session);

    expect(store.findToken(a.oauth.token)).toBeUndefined();
    expect(store.findToken(otherToken.token)).toBeDefined();
    expect(store.findToken(a.api.token)).toBeDefined();
    expect(store.findToken(a.srv.token)).toBeDefined();
  });

  it("a session that expired is cleaned up with its tokens when seen", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const a = populate("alice");
    const { cookie, session } = store.createSession(a.user.id);
    const t = store.createToken({ userId: a.user.id, kind: "oauth", scopes: [], sessionId: session.public_id });
    vi.setSystemTime(Date.now() + IDLE + 1);
    expect(store.findSession(cookie, IDLE, MAX)).toBeUndefined();
    expect(store.findToken(t.token)).toBeUndefined();
  });
});

describe("activity", () => {
  it("only ever moves forward, for users and servers, and a server's activity moves its user", () => {
    const user = store.createUser("alice", false)!;
    const server = store.ensureServer(user.id, "");
    store.touchUser(user.id, 2000);
    store.touchUser(user.id, 1000);
    expect(store.getUserById(user.id)!.last_activity).toBe(2000);

    store.touchServer(server.id, 1500); // older than the user's: server moves, user does not
    expect(store.getServerById(server.id)!.last_activity).toBe(1500);
    expect(store.getUserById(user.id)!.last_activity).toBe(2000);

    store.touchServer(server.id, 3000);
    store.touchServer(server.id, 2500);
    expect(store.getServerById(server.id)!.last_activity).toBe(3000);
    expect(store.getUserById(user.id)!.last_activity).toBe(3000);
  });
});

describe("user listing", () => {
  it("filters by state and name and orders by id", () => {
    const names = ["carol", "alice", "bob", "dave"];
    const users = names.map((n) => store.createUser(n, false)!);
    const [carol, alice, bob] = users;
    store.updateServer(store.ensureServer(alice!.id, "").id, { state: "running" });
    store.updateServer(store.ensureServer(bob!.id, "").id, { state: "pending" });
    store.ensureServer(carol!.id, "x"); // stopped
    const list = (q: object) => store.listUsers({ offset: 0, limit: 100, ...q }).users.map((u) => u.name);
    expect(list({})).toEqual(names);
    expect(list({ state: "ready" })).toEqual(["alice"]);
    expect(list({ state: "active" })).toEqual(["alice", "bob"]);
    expect(list({ state: "inactive" })).toEqual(["carol", "dave"]);
    expect(list({ nameFilter: "a" })).toEqual(["carol", "alice", "dave"]);
    expect(store.listUsers({ offset: 1, limit: 2 })).toMatchObject({ total: 4, users: [{ name: "alice" }, { name: "bob" }] });
  });
});
