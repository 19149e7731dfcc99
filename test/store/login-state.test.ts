// What the store keeps for OIDC logins now: no pending attempts (migration 3 dropped that table), only the key
// that seals them into a cookie, created once and kept across restarts.
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
  dir = mkdtempSync(join(tmpdir(), "slicehub-store-login-"));
  file = join(dir, "slicehub.sqlite");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("the store's login state", () => {
  it("has no login_attempts table", () => {
    const s = new Store(file);
    try {
      expect(s.db.prepare("SELECT name FROM sqlite_master WHERE name = 'login_attempts'").get()).toBeUndefined();
    } finally {
      s.close();
    }
  });

  it("creates a secret of 32 random bytes on first use and returns the same one after a restart", () => {
    const a = new Store(file);
    const first = a.secret("oidc-state-cookie");
    expect(first).toBeInstanceOf(Buffer);
    expect(first.length).toBe(32);
    expect(a.secret("oidc-state-cookie").equals(first)).toBe(true);
    const other = a.secret("another");
    expect(other.length).toBe(32);
    expect(other.equals(first)).toBe(false);
    a.close();

    const b = new Store(file);
    expect(b.secret("oidc-state-cookie").equals(first)).toBe(true);
    expect((b.db.prepare("SELECT count(*) AS n FROM hub_secrets").get() as { n: number }).n).toBe(2);
    b.close();
  });

  it("agrees on one secret when two connections create it", () => {
    const a = new Store(file);
    const b = new Store(file);
    try {
      const fromB = b.secret("k");
      expect(a.secret("k").equals(fromB)).toBe(true);
    } finally {
      a.close();
      b.close();
    }
  });

  it("drops a version 2 database's pending login attempts on upgrade, keeping everything else", () => {
    const raw = new Database(file);
    raw.exec(MIGRATIONS[0]!);
    raw.exec(MIGRATIONS[1]!);
    raw.pragma("user_version = 2");
    raw.prepare("INSERT INTO users (name, admin, created) VALUES ('ada', 0, 1)").run();
    raw
      .prepare("INSERT INTO login_attempts (state_hash, nonce, code_verifier, next, expires_at) VALUES (?, ?, ?, ?, ?)")
      .run("h", "n", "v", "/hub/home", Date.now() + 600_000);
    raw.close();

    const s = new Store(file);
    try {
      expect(s.schemaVersion).toBe(MIGRATIONS.length);
      expect(s.getUser("ada")).toBeDefined();
      expect(s.db.prepare("SELECT name FROM sqlite_master WHERE name = 'login_attempts'").get()).toBeUndefined();
      expect(s.secret("oidc-state-cookie").length).toBe(32);
    } finally {
      s.close();
    }
  });
});
