// Schema migrations: PRAGMA user_version counts the migrations applied; each migration runs in one
// transaction with its version bump, reopening is a no-op, and a database from a newer slicehub is refused
// before anything touches it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MIGRATIONS } from "../../src/store/migrations.js";
import { Store } from "../../src/store/store.js";

let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "slicehub-store-mig-"));
  file = join(dir, "state", "slicehub.sqlite");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The schema as SQLite records it, to compare before and after a reopen. */
function schemaOf(path: string): { type: string; name: string; sql: string | null }[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").all() as { type: string; name: string; sql: string | null }[];
  } finally {
    db.close();
  }
}

function userVersion(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma("user_version", { simple: true }) as number;
  } finally {
    db.close();
  }
}

describe("migrations", () => {
  it("brings a fresh database to user_version = MIGRATIONS.length (creating the state directory)", () => {
    const store = new Store(file);
    expect(store.schemaVersion).toBe(MIGRATIONS.length);
    store.close();
    expect(userVersion(file)).toBe(MIGRATIONS.length);
    const tables = schemaOf(file)
      .filter((r) => r.type === "table")
      .map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(["users", "servers", "api_tokens", "oauth_clients", "oauth_codes", "sessions", "spawn_events"]));
  });

  it("is a no-op when reopening: same version, same schema, data kept", () => {
    const a = new Store(file);
    a.createUser("alice", true);
    a.close();
    const before = schemaOf(file);

    // A migration re-run would fail on CREATE TABLE (no IF NOT EXISTS), so opening at all proves it was skipped.
    const b = new Store(file);
    expect(b.schemaVersion).toBe(MIGRATIONS.length);
    expect(b.getUser("alice")).toMatchObject({ name: "alice", admin: 1 });
    b.close();
    expect(schemaOf(file)).toEqual(before);
  });

  it("refuses a database written by a newer slicehub, with a clear error, and leaves it untouched", () => {
    new Store(file).close();
    const raw = new Database(file);
    raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    raw.close();
    const before = schemaOf(file);

    expect(() => new Store(file)).toThrow(
      new RegExp(`newer slicehub \\(schema ${MIGRATIONS.length + 1}, this one knows ${MIGRATIONS.length}\\); refusing`),
    );
    expect(userVersion(file)).toBe(MIGRATIONS.length + 1);
    expect(schemaOf(file)).toEqual(before);
  });

  it("applies a migration and its version bump atomically: a failing one leaves the old schema and version", () => {
    new Store(file).close();
    const before = schemaOf(file);
    // A future migration whose second statement fails: the first must be rolled back with it.
    const list = MIGRATIONS as string[];
    list.push("CREATE TABLE half_done (x INTEGER); CREATE TABLE users (oops INTEGER);");
    try {
      expect(() => new Store(file)).toThrow(/already exists/);
    } finally {
      list.pop();
    }
    expect(userVersion(file)).toBe(MIGRATIONS.length);
    expect(schemaOf(file)).toEqual(before);
    expect(schemaOf(file).some((r) => r.name === "half_done")).toBe(false);
  });

  it("migration 6 (slicehub import jupyterhub): users.note, and imported_users with one user per email, gone with its user", () => {
    expect(MIGRATIONS.length).toBeGreaterThanOrEqual(6);
    // A schema-5 database with a user, brought to 6 and on.
    const path = join(dir, "v5.sqlite");
    const raw = new Database(path);
    for (let v = 0; v < 5; v++) raw.exec(MIGRATIONS[v]!);
    raw.pragma("user_version = 5");
    raw.prepare("INSERT INTO users (name, admin, created) VALUES ('ada', 0, 1), ('grace', 0, 1)").run();
    raw.close();
    const s = new Store(path);
    try {
      expect(s.getUser("ada")).toMatchObject({ name: "ada", note: null });
      const ada = s.getUser("ada")!;
      const grace = s.getUser("grace")!;
      s.setNote(ada.id, "Imported from JupyterHub 3.x on 2026-12-03; groups: lab");
      s.saveImportedUser({ user_id: ada.id, source: "JupyterHub 3.x (schema 651f5419b74d)", source_name: "ada@example.org", email: "ada@example.org", imported: 5 });
      expect(s.getUser("ada")!.note).toMatch(/groups: lab/);
      expect(s.importedUserAwaiting("ada@example.org")).toMatchObject({ id: ada.id });
      expect(() => s.saveImportedUser({ user_id: grace.id, source: "x", source_name: "g", email: "ada@example.org", imported: 5 })).toThrow(/UNIQUE/);
      // Users without a known email: any number.
      s.saveImportedUser({ user_id: grace.id, source: "x", source_name: "g", email: null, imported: 5 });
      s.deleteUser(ada.id);
      expect(s.getImportByEmail("ada@example.org")).toBeUndefined();
    } finally {
      s.close();
    }
  });

  it("migrates an older database forward from whatever version it has, keeping its data", () => {
    // A database as the previous slicehub left it: every migration but the last applied by hand. (With a
    // single migration so far that is an empty file at version 0.)
    const path = join(dir, "older.sqlite");
    const raw = new Database(path);
    for (let v = 0; v < MIGRATIONS.length - 1; v++) raw.exec(MIGRATIONS[v]!);
    raw.pragma(`user_version = ${MIGRATIONS.length - 1}`);
    const hasUsers = raw.prepare("SELECT 1 FROM sqlite_master WHERE name = 'users'").get() !== undefined;
    if (hasUsers) raw.prepare("INSERT INTO users (name, admin, created) VALUES ('old', 0, 1)").run();
    raw.close();

    const s = new Store(path);
    expect(s.schemaVersion).toBe(MIGRATIONS.length);
    if (hasUsers) expect(s.getUser("old")).toBeDefined();
    s.close();
  });
});
