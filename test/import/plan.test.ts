// What the import decides for each JupyterHub user against the store, and that doing it is safe to repeat:
// names (the config's rule), collisions and invalid names refused, existing users kept, servers, the config
// snippet, the dry run changing nothing, the second run changing nothing.
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigSchema, type Config } from "../../src/config/schema.js";
import { readJupyterhubDb } from "../../src/import/jupyterhub-db.js";
import { applyPlan, configGroupName, planImport } from "../../src/import/plan.js";
import { Store } from "../../src/store/store.js";
import { importJupyterhub } from "../../main/import-jupyterhub.js";
import { makeJhDb, type JhFixtureUser } from "./jh-fixtures.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "slicehub-import-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const NOW = Date.parse("2026-12-03T10:00:00Z");

function oidc(over: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Config {
  return ConfigSchema.parse({
    listen: "http://127.0.0.1:8000",
    state_dir: join(dir, "state"),
    auth: { kind: "oidc", client_id: "hub", client_secret: "x", allowed_domains: ["example.org"], ...over },
    spawner: { kind: "local", single_user_host: true, named_servers: { limit: 2 } },
    ...top,
  });
}

function jhFile(users: JhFixtureUser[], v: "3" | "4" | "5" = "3"): string {
  const file = join(dir, `jh-${Math.random().toString(36).slice(2)}.sqlite`);
  makeJhDb(file, v, users, { services: ["culler"] });
  return file;
}

function plan(store: Store, cfg: Config, users: JhFixtureUser[], emailDomain?: string) {
  return planImport(store, cfg, readJupyterhubDb(jhFile(users)), { now: NOW, emailDomain });
}

describe("planImport", () => {
  let store: Store;
  beforeEach(() => {
    store = new Store(":memory:");
  });
  afterEach(() => store.close());

  it("names users as their first login would, and records the email that takes each", () => {
    const users: JhFixtureUser[] = [{ name: "ada@example.org", admin: true, groups: ["lab"] }, { name: "José.García+lab@Example.org" }];
    const p = plan(store, oidc(), users);
    expect(p.users.map((u) => [u.from, u.name, u.email, u.action])).toEqual([
      ["ada@example.org", "ada", "ada@example.org", "create"],
      ["José.García+lab@Example.org", "jose.garcia-lab", "josé.garcía+lab@example.org", "create"],
    ]);
    expect(p.users[0]!.note).toBe("Imported from JupyterHub 3.x on 2026-12-03; groups: lab");
    expect(p.users[1]!.note).toBe("Imported from JupyterHub 3.x on 2026-12-03; no groups");
    const whole = plan(store, oidc({ username: "email" }), users);
    expect(whole.users.map((u) => u.name)).toEqual(["ada-at-example.org", "jose.garcia-lab-at-example.org"]);
  });

  it("never merges two JupyterHub users into one slicehub user: both are skipped with the reason", () => {
    const p = plan(store, oidc(), [{ name: "ada@example.org" }, { name: "ada@other.org" }, { name: "grace@example.org" }]);
    expect(p.users.map((u) => u.action)).toEqual(["skip", "skip", "create"]);
    expect(p.users[0]!.why).toMatch(/"ada@example.org" and "ada@other.org" would all become slicehub user ada; .*auth.username "email"/);
    // With whole-email names they are two users.
    expect(plan(store, oidc({ username: "email" }), [{ name: "ada@example.org" }, { name: "ada@other.org" }]).users.map((u) => u.action)).toEqual(["create", "create"]);
  });

  it("skips a name no valid user name can be made from, and one email given twice", () => {
    const p = plan(store, oidc(), [{ name: "@@@" }, { name: "ada" }, { name: "ada@example.org" }], "example.org");
    expect(p.users[0]).toMatchObject({ action: "skip", why: expect.stringMatching(/no valid slicehub user name/) });
    expect(p.users[1]).toMatchObject({ action: "skip" });
    expect(p.users[2]).toMatchObject({ action: "skip" });
  });

  it("names that are not emails: bound with --email-domain, else imported unbound with what happens at login", () => {
    const bound = plan(store, oidc(), [{ name: "linus" }], "example.org");
    expect(bound.users[0]).toMatchObject({ name: "linus", email: "linus@example.org", action: "create" });
    expect(bound.users[0]!.login).toMatch(/first verified login of linus@example.org takes this user \(allowed by auth.allowed_domains/);
    const unbound = plan(store, oidc(), [{ name: "Linus" }]);
    expect(unbound.users[0]).toMatchObject({ name: "linus", email: undefined, action: "create" });
    expect(unbound.users[0]!.login).toMatch(/no email known, so no login takes this user.*--email-domain/);
  });

  it("says per user whether the config lets them log in, and prints the config to add", () => {
    const cfg = oidc({ allowed_domains: [], allowed_users: ["grace@example.org"], blocked_users: ["eve@example.org"] }, { groups: { lab: ["zed"] } });
    const p = plan(store, cfg, [
      { name: "ada@example.org", admin: true, groups: ["lab", "Data Science"] },
      { name: "grace@example.org", groups: ["lab"] },
      { name: "ken@other.org" },
      { name: "eve@example.org" },
    ]);
    expect(p.users[0]!.login).toMatch(/refused now \(ada@example.org is not in auth.admin_users/);
    expect(p.users[1]!.login).toMatch(/takes this user \(allowed by the config\)/);
    expect(p.users[2]!.login).toMatch(/not in auth.allowed_users/);
    expect(p.users[3]!.login).toMatch(/auth.blocked_users: refused/);
    expect(p.configSnippet).toEqual({
      auth: { admin_users: ["ada@example.org"], allowed_users: ["grace@example.org", "ken@other.org"] },
      groups: { lab: ["zed", "ada", "grace"], "data-science": ["ada"] },
    });
    expect(p.warnings).toContain('group "Data Science" is "data-science" in the config snippet (config group names are a-z, 0-9, \'_\', \'-\')');
    expect(configGroupName("Ünïcode Lab!")).toBe("unicode-lab");
  });

  it("named servers: created stopped, invalid names skipped with the reason, the default server left to its first start, limits warned", () => {
    const p = plan(store, oidc(), [{ name: "ada@example.org", servers: ["", "research", "Big Data", "exp-2*", "x3"] }]);
    expect(p.users[0]!.servers.map((s) => [s.name, s.action])).toEqual([
      ["Big Data", "skip"],
      ["exp-2", "create"],
      ["research", "create"],
      ["x3", "create"],
    ]);
    expect(p.users[0]!.servers[0]!.why).toMatch(/not a server name slicehub allows.*"big-data"/);
    expect(p.users[0]!.warnings.join("\n")).toMatch(/JupyterHub records server "exp-2" as running: it is imported stopped/);
    expect(p.users[0]!.warnings.join("\n")).toMatch(/3 named servers, more than spawner.named_servers.limit \(2\)/);
    const off = plan(store, oidc({}, { spawner: { kind: "local", single_user_host: true } }), [{ name: "ada@example.org", servers: ["", "research"] }]);
    expect(off.warnings.join("\n")).toMatch(/limit is 0, so no named server can start; .*"limit": 1/);
  });

  it("existing users: the same person (identity with that email) is updated and keeps identity, admin and tokens; others are not taken over", () => {
    const ada = store.createUser("ada", false)!;
    store.saveIdentity({ issuer: "https://accounts.google.com", subject: "g-ada", userId: ada.id, email: "ada@example.org", claims: {} });
    const { token } = store.createToken({ userId: ada.id, kind: "api", scopes: ["inherit"], note: "mine", expiresInS: null });
    const grace = store.createUser("grace", false)!;
    store.saveIdentity({ issuer: "https://accounts.google.com", subject: "g-grace", userId: grace.id, email: "grace@elsewhere.org", claims: {} });
    store.createUser("ken", true);
    const cfg = oidc();
    const p = plan(store, cfg, [{ name: "ada@example.org", admin: true, servers: ["", "research"] }, { name: "grace@example.org" }, { name: "ken@example.org" }]);
    expect(p.users.map((u) => u.action)).toEqual(["update", "skip", "skip"]);
    expect(p.users[0]!.changes).toEqual(["note", "recorded as imported (ada@example.org logs in as it already)", "server research"]);
    expect(p.users[0]!.warnings.join()).toMatch(/admin in JupyterHub: yes, here: no; left as it is/);
    expect(p.users[1]!.why).toMatch(/already belongs to another account \(grace@elsewhere.org/);
    expect(p.users[2]!.why).toMatch(/exists already without a login identity.*DELETE \/hub\/api\/users\/ken/);
    store.transaction(() => applyPlan(store, p));
    expect(store.getIdentityOfUser(ada.id)).toMatchObject({ subject: "g-ada" });
    expect(store.getUser("ada")).toMatchObject({ admin: 0, note: expect.stringMatching(/^Imported from JupyterHub/) });
    expect(store.findToken(token)).toBeDefined();
    expect(store.getServer(ada.id, "research")).toMatchObject({ state: "stopped" });
    expect(store.getUser("ken")!.note).toBeNull();
  });

  it("is all or nothing: a user that appears between plan and write rolls the whole import back", () => {
    const p = plan(store, oidc(), [{ name: "ada@example.org", servers: ["", "research"] }, { name: "grace@example.org" }]);
    store.createUser("grace", false); // e.g. made through the API at that moment
    expect(() => store.transaction(() => applyPlan(store, p))).toThrow(/grace appeared while importing/);
    expect(store.getUser("ada")).toBeUndefined();
    expect(store.allUsers().map((u) => u.name)).toEqual(["grace"]);
  });

  it("a second run changes nothing and says every user is unchanged; a changed JupyterHub database updates only what changed", () => {
    const cfg = oidc();
    const users: JhFixtureUser[] = [{ name: "ada@example.org", admin: true, groups: ["lab"], servers: ["", "research"], lastActivity: "2026-01-01 00:00:00" }, { name: "linus" }];
    store.transaction(() => applyPlan(store, plan(store, cfg, users)));
    const snapshot = () => JSON.stringify([store.allUsers(), store.listServers(store.getUser("ada")!.id), store.getImportedUser(store.getUser("ada")!.id)]);
    const before = snapshot();
    const again = planImport(store, cfg, readJupyterhubDb(jhFile(users)), { now: NOW + 86_400_000 });
    expect(again.users.map((u) => u.action)).toEqual(["unchanged", "unchanged"]);
    store.transaction(() => applyPlan(store, again));
    expect(snapshot()).toBe(before);
    // Later: ada joined a group, and linus's address is now known.
    const later = planImport(store, cfg, readJupyterhubDb(jhFile([{ ...users[0]!, groups: ["lab", "ops"] }, users[1]!])), { now: NOW + 86_400_000, emailDomain: "example.org" });
    expect(later.users.map((u) => [u.action, u.changes])).toEqual([
      ["update", ["note"]],
      ["update", ["login email linus@example.org"]],
    ]);
    // The note keeps the first import's date.
    expect(later.users[0]!.note).toBe("Imported from JupyterHub 3.x on 2026-12-03; groups: lab, ops");
  });
});

describe("importJupyterhub (the command)", () => {
  const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

  it("dry run: prints the plan and changes nothing, not even the schema; the real run once; the next run nothing", async () => {
    const cfg = oidc();
    const file = jhFile([{ name: "ada@example.org", admin: true, groups: ["lab"], servers: ["", "research"], tokens: 2 }, { name: "grace@example.org", servers: ["", "Big Data"] }], "5");
    const jhBefore = sha(file);
    // The store exists with one user already (as after the hub's first start).
    const first = new Store(join(dir, "state", "slicehub.sqlite"));
    first.createUser("zed", false);
    first.close();
    const storeBefore = sha(join(dir, "state", "slicehub.sqlite"));
    const stateListing = readdirSync(join(dir, "state"));

    const lines: string[] = [];
    const run = (dryRun: boolean) => {
      lines.length = 0;
      return importJupyterhub({ cfg, configPath: "/etc/slicehub/config.json", file, dryRun, json: false, say: (l) => lines.push(l), progress: () => {}, now: NOW });
    };
    const dry = await run(true);
    expect(dry.changed).toBe(false);
    expect(sha(join(dir, "state", "slicehub.sqlite"))).toBe(storeBefore);
    expect(readdirSync(join(dir, "state"))).toEqual(stateListing);
    const text = lines.join("\n");
    expect(text).toMatch(/^JupyterHub 5\.x \(schema afd65840b69e\) at .*: 2 users, 1 group, 2 named servers$/m);
    expect(text).toMatch(/^create ada \(from ada@example.org, admin\)$/m);
    expect(text).toMatch(/^ {2}server research: create \(stopped\)$/m);
    expect(text).toMatch(/^ {2}server "Big Data": skipped, not a server name/m);
    expect(text).toMatch(/^ {2}API tokens: 2 user tokens and 1 service token \(JupyterHub keeps only their hashes\)/m);
    expect(text).toMatch(/^dry run: 2 to create, 0 to update, 0 unchanged, 0 skipped; nothing was changed/m);

    const real = await run(false);
    expect(real.changed).toBe(true);
    expect(lines.at(-1)).toBe("done: created 2, updated 0, 0 unchanged, 0 skipped (one transaction)");
    const afterReal = sha(join(dir, "state", "slicehub.sqlite"));
    const again = await run(false);
    expect(again.changed).toBe(false);
    expect(lines.at(-1)).toBe("nothing to change: 2 already imported as they are, 0 skipped");
    expect(sha(join(dir, "state", "slicehub.sqlite"))).toBe(afterReal);
    expect(sha(file)).toBe(jhBefore);

    const s = new Store(join(dir, "state", "slicehub.sqlite"));
    try {
      expect(s.allUsers().map((u) => [u.name, u.admin])).toEqual([
        ["zed", 0],
        ["ada", 1],
        ["grace", 0],
      ]);
      expect(s.listServers(s.getUser("ada")!.id).map((x) => [x.name, x.state])).toEqual([["research", "stopped"]]);
    } finally {
      s.close();
    }
  });

  it("a dry run against no database creates nothing; --json prints one object", async () => {
    const cfg = oidc();
    const file = jhFile([{ name: "ada@example.org" }]);
    const out: string[] = [];
    await importJupyterhub({ cfg, configPath: "c.json", file, dryRun: true, json: true, say: (l) => out.push(l), progress: () => {}, now: NOW });
    expect(existsSync(join(dir, "state"))).toBe(false);
    const parsed = JSON.parse(out.join("\n")) as { dry_run: boolean; counts: Record<string, number>; users: { name: string; action: string }[]; config_snippet: unknown };
    expect(parsed).toMatchObject({ dry_run: true, counts: { create: 1 }, users: [{ name: "ada", action: "create" }] });
  });

  it("refuses slicehub's own database and a bad --email-domain before reading anything", async () => {
    const cfg = oidc();
    new Store(join(dir, "state", "slicehub.sqlite")).close();
    const base = { cfg, configPath: "c", dryRun: true, json: false, say: () => {}, progress: () => {} };
    await expect(importJupyterhub({ ...base, file: join(dir, "state", "slicehub.sqlite") })).rejects.toThrow(/slicehub's own database/);
    await expect(importJupyterhub({ ...base, file: jhFile([]), emailDomain: "not a domain" })).rejects.toThrow(/--email-domain/);
  });
});
