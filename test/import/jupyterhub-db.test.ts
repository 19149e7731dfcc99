// Reading JupyterHub 3.x, 4.x and 5.x databases (hand-made by their schemas; test/e2e/import-jupyterhub.test.ts
// reads one the real JupyterHub 3.0 wrote): what is read, what is refused, and that the file is never touched.
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseJhTime, readJupyterhubDb } from "../../src/import/jupyterhub-db.js";
import { Store } from "../../src/store/store.js";
import { makeJhDb, type JhVersion } from "./jh-fixtures.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "slicehub-jhdb-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe.each<[JhVersion, string, string]>([
  ["3", "3.x", "651f5419b74d"],
  ["4", "4.x", "3c2384c5aae1"],
  ["5", "5.x", "afd65840b69e"],
])("a JupyterHub %s database", (v, version, revision) => {
  it("gives users, admins (flag, role or group role), groups, servers and what is not carried", () => {
    const file = join(dir, "jupyterhub.sqlite");
    makeJhDb(
      file,
      v,
      [
        { name: "ada@example.org", admin: true, groups: ["lab"], servers: ["", "research"], lastActivity: "2025-06-02 08:00:00.5", tokens: 2, authState: true },
        { name: "grace@example.org", roles: ["admin"], groups: ["lab", "Data Science"], servers: ["", "Big Data", "exp-2*"] },
        { name: "linus", groups: ["ops"], roles: ["gpu-users"] },
        { name: "ken" },
      ],
      { groupRoles: { ops: ["admin"] }, services: ["culler"], shares: 3 },
    );
    const jh = readJupyterhubDb(file);
    expect(jh).toMatchObject({ revision, version, source: `JupyterHub ${version} (schema ${revision})` });
    expect(jh.users.map((u) => [u.name, u.admin])).toEqual([
      ["ada@example.org", true],
      ["grace@example.org", true],
      ["linus", true],
      ["ken", false],
    ]);
    const [ada, grace, linus] = jh.users;
    expect(ada).toMatchObject({ groups: ["lab"], lastActivity: Date.parse("2025-06-02T08:00:00.500Z"), hasAuthState: true });
    expect(ada!.servers.map((s) => s.name)).toEqual(["", "research"]);
    expect(grace!.groups).toEqual(["Data Science", "lab"]);
    expect(grace!.servers.find((s) => s.name === "exp-2")).toMatchObject({ running: true, hasUserOptions: true });
    expect(linus!.otherRoles).toEqual(["gpu-users"]);
    expect(jh.groups).toEqual(expect.arrayContaining([{ name: "lab", members: 2 }, { name: "ops", members: 1 }]));
    expect(jh.notCarried).toMatchObject({ userTokens: 2, serviceTokens: 1, services: ["culler"], authStates: 1, spawnerStates: 1, roles: ["gpu-users"], shares: v === "5" ? 3 : 0 });
  });
});

describe("readJupyterhubDb", () => {
  it("never changes the file or makes one beside it", () => {
    const file = join(dir, "jupyterhub.sqlite");
    makeJhDb(file, "3", [{ name: "ada@example.org", servers: ["", "x"] }]);
    const before = sha(file);
    const listing = readdirSync(dir);
    readJupyterhubDb(file);
    expect(sha(file)).toBe(before);
    expect(readdirSync(dir)).toEqual(listing);
  });

  it("reads while another connection holds a read transaction on it (JupyterHub running)", () => {
    const file = join(dir, "jupyterhub.sqlite");
    makeJhDb(file, "4", [{ name: "ada@example.org" }]);
    const hub = new Database(file);
    try {
      hub.exec("BEGIN");
      hub.prepare("SELECT count(*) FROM users").get();
      expect(readJupyterhubDb(file).users).toHaveLength(1);
      hub.exec("COMMIT");
    } finally {
      hub.close();
    }
  });

  it("refuses an older JupyterHub's schema, naming it and what to do", () => {
    const file = join(dir, "jupyterhub.sqlite");
    makeJhDb(file, "3", []);
    const db = new Database(file);
    db.exec("UPDATE alembic_version SET version_num = '833da8570507'");
    db.close();
    expect(() => readJupyterhubDb(file)).toThrow(/JupyterHub 2\.x \(alembic revision 833da8570507\).*upgrade-db/);
  });

  it.each([
    ["f460b0348206", "ALTER TABLE spawners ADD COLUMN display_name VARCHAR(255)"],
    ["be8ecf03ddac", "ALTER TABLE services ADD COLUMN timeout INTEGER NOT NULL DEFAULT 30"],
    ["ff1860e38070", "ALTER TABLE users ADD COLUMN user_info TEXT"],
  ])("reads the revision %s on top of the 5.x heads (it only adds a column)", (revision, ddl) => {
    const file = join(dir, "jupyterhub.sqlite");
    makeJhDb(file, "5", [{ name: "ada@example.org", admin: true, servers: ["", "research"] }]);
    const db = new Database(file);
    db.exec(`${ddl}; UPDATE alembic_version SET version_num = '${revision}'`);
    db.close();
    const jh = readJupyterhubDb(file);
    expect(jh).toMatchObject({ revision, version: "5.x or later" });
    expect(jh.users.map((u) => [u.name, u.admin, u.servers.map((s) => s.name)])).toEqual([["ada@example.org", true, ["", "research"]]]);
  });

  it("refuses a revision it does not know, naming it and the ones it knows", () => {
    const file = join(dir, "jupyterhub.sqlite");
    makeJhDb(file, "5", []);
    const db = new Database(file);
    db.exec("UPDATE alembic_version SET version_num = 'ffffffffffff'");
    db.close();
    expect(() => readJupyterhubDb(file)).toThrow(/alembic revision ffffffffffff, which is not a JupyterHub 3\.x–5\.x schema.*651f5419b74d \(3\.x\)/);
  });

  it("refuses a database that says 3.x but lacks a table or column it reads", () => {
    const file = join(dir, "jupyterhub.sqlite");
    makeJhDb(file, "3", []);
    const db = new Database(file);
    db.exec("DROP TABLE user_group_map; ALTER TABLE spawners DROP COLUMN last_activity");
    db.close();
    expect(() => readJupyterhubDb(file)).toThrow(/does not have its tables: no table user_group_map; spawners has no column last_activity/);
  });

  it("refuses what is not a JupyterHub database: no file, not SQLite, no alembic_version, slicehub's own", () => {
    expect(() => readJupyterhubDb(join(dir, "nope.sqlite"))).toThrow(/does not exist/);
    writeFileSync(join(dir, "text.sqlite"), "hello, this is not a database at all");
    expect(() => readJupyterhubDb(join(dir, "text.sqlite"))).toThrow(/not a SQLite database/);
    const other = new Database(join(dir, "other.sqlite"));
    other.exec("CREATE TABLE things (id INTEGER)");
    other.close();
    expect(() => readJupyterhubDb(join(dir, "other.sqlite"))).toThrow(/no alembic_version table \(tables: things\)/);
    new Store(join(dir, "slicehub.sqlite")).close();
    expect(() => readJupyterhubDb(join(dir, "slicehub.sqlite"))).toThrow(/is a slicehub database/);
    expect(() => readJupyterhubDb(dir)).toThrow(/is a directory/);
  });
});

describe("parseJhTime", () => {
  it("reads SQLAlchemy's naive UTC DateTime and ISO forms", () => {
    expect(parseJhTime("2026-12-03 07:10:48.566153")).toBe(Date.parse("2026-12-03T07:10:48.566Z"));
    expect(parseJhTime("2026-12-03T07:10:48Z")).toBe(Date.parse("2026-12-03T07:10:48Z"));
    expect(parseJhTime("2026-12-03 07:10:48+01:00")).toBe(Date.parse("2026-12-03T06:10:48Z"));
    expect(parseJhTime(null)).toBeNull();
    expect(parseJhTime("yesterday")).toBeNull();
  });
});
