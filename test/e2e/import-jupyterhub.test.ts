// The round trip of `slicehub import jupyterhub`: the installed JupyterHub (Debian's 3.0, with the real
// jupyterhub-singleuser) runs once on 127.0.0.1 and writes its own jupyterhub.sqlite — users from its config
// (email-style names, an admin), groups, a service with a token, a user token, named servers started for real
// through its REST API and stopped — then it is stopped. slicehub imports that file into a running hub: the dry
// run changes no row, the import gives the users, admin flags, notes and named servers, a second run changes
// nothing, and slicehub's REST API and admin page show them; an imported named server starts.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { Browser, CLI, HubProcess, ROOT, SINGLEUSER } from "./harness.js";

const JUPYTERHUB = "/usr/bin/jupyterhub";
const PYTHON = "/usr/bin/python3";
/** Debian's /usr/bin/configurable-http-proxy does not run on this Node; the devDependency does. */
const CHP = join(ROOT, "node_modules", ".bin", "configurable-http-proxy");
const ready = existsSync(JUPYTERHUB) && existsSync(SINGLEUSER) && existsSync(PYTHON) && existsSync(CHP);
const isRoot = process.getuid?.() === 0;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const cli = (args: string[], timeoutMs = 60_000): Promise<Run> =>
  new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** Polls `check` every 200 ms until it returns true, at most `ms`. */
async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** JupyterHub 3.0 on 127.0.0.1, run once in `dir` until stop(). */
class RealJupyterHub {
  proc: ChildProcess | undefined;
  output = "";
  url = "";
  readonly token = randomBytes(24).toString("hex");
  constructor(readonly dir: string) {}

  async start(): Promise<void> {
    const [port, hubPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    this.url = `http://127.0.0.1:${port}`;
    const py = (v: unknown) => JSON.stringify(v);
    // The service's token sits in this file only (mode 0600), never in argv or the environment.
    const config = [
      `c.JupyterHub.ip = '127.0.0.1'`,
      `c.JupyterHub.port = ${port}`,
      `c.JupyterHub.hub_ip = '127.0.0.1'`,
      `c.JupyterHub.hub_port = ${hubPort}`,
      `c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:${apiPort}'`,
      `c.ConfigurableHTTPProxy.command = [${py(CHP)}]`,
      `c.JupyterHub.authenticator_class = 'dummy'`,
      `c.Authenticator.allowed_users = {'ada@example.org', 'grace@example.org', 'linus'}`,
      `c.Authenticator.admin_users = {'ada@example.org'}`,
      `c.JupyterHub.load_groups = {'lab': ['ada@example.org', 'grace@example.org'], 'Data Science': ['grace@example.org']}`,
      `c.JupyterHub.allow_named_servers = True`,
      `c.JupyterHub.spawner_class = 'simple'`,
      `c.Spawner.cmd = [${py(SINGLEUSER)}${isRoot ? ", '--allow-root'" : ""}]`,
      `c.Spawner.start_timeout = 60`,
      `c.SimpleLocalProcessSpawner.home_dir_template = ${py(join(this.dir, "home", "{username}"))}`,
      `c.JupyterHub.services = [{'name': 'importer', 'api_token': ${py(this.token)}, 'admin': True}]`,
      `c.JupyterHub.db_url = 'sqlite:///jupyterhub.sqlite'`,
      `c.JupyterHub.cookie_secret_file = 'jupyterhub_cookie_secret'`,
    ].join("\n");
    writeFileSync(join(this.dir, "jupyterhub_config.py"), `${config}\n`, { mode: 0o600 });
    mkdirSync(join(this.dir, "home"), { recursive: true });
    // Its own process group, so that whatever it leaves (proxy, servers) can be ended with it.
    const proc = spawn(PYTHON, [JUPYTERHUB, "-f", "jupyterhub_config.py"], {
      cwd: this.dir,
      detached: true,
      env: { PATH: `/usr/bin:/bin:${process.env.PATH ?? ""}`, HOME: join(this.dir, "home"), LANG: "C.UTF-8" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    proc.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    proc.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
    await until(`JupyterHub at ${this.url}:\n${this.output}`, 60_000, async () => {
      if (proc.exitCode !== null) throw new Error(`jupyterhub exited with ${proc.exitCode}:\n${this.output}`);
      return (await fetch(`${this.url}/hub/api`)).status === 200;
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.output.slice(-3000)}`);
    });
  }

  api(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.url}/hub/api${path}`, { ...init, headers: { authorization: `token ${this.token}`, ...init.headers } });
  }

  async server(user: string, name: string): Promise<{ ready?: boolean; pending?: string | null } | undefined> {
    const model = (await (await this.api(`/users/${encodeURIComponent(user)}`)).json()) as { servers?: Record<string, { ready?: boolean; pending?: string | null }> };
    return model.servers?.[name];
  }

  /** Starts a server for real and waits until JupyterHub says it is ready. */
  async startServer(user: string, name: string): Promise<void> {
    const path = name ? `/users/${encodeURIComponent(user)}/servers/${encodeURIComponent(name)}` : `/users/${encodeURIComponent(user)}/server`;
    const res = await this.api(path, { method: "POST" });
    if (![201, 202].includes(res.status)) throw new Error(`starting ${user}/${name}: ${res.status} ${await res.text()}\n${this.output.slice(-3000)}`);
    await until(`${user}/${name} ready`, 90_000, async () => (await this.server(user, name))?.ready === true);
  }

  async stopServer(user: string, name: string): Promise<void> {
    const path = name ? `/users/${encodeURIComponent(user)}/servers/${encodeURIComponent(name)}` : `/users/${encodeURIComponent(user)}/server`;
    const res = await this.api(path, { method: "DELETE" });
    if (![202, 204].includes(res.status)) throw new Error(`stopping ${user}/${name}: ${res.status} ${await res.text()}`);
    await until(`${user}/${name} stopped`, 30_000, async () => {
      const s = await this.server(user, name);
      return s === undefined || (!s.ready && !s.pending);
    });
  }

  /** SIGTERM by PID (JupyterHub stops its proxy), then whatever is left of its group. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p?.pid) return;
    if (p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      await Promise.race([exited, sleep(30_000)]);
    }
    try {
      process.kill(-p.pid, "SIGKILL");
    } catch {
      // the group is gone
    }
  }
}

/** The rows the import writes, to show a dry run changed none. */
function rows(dbPath: string): string {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const hasImports = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'imported_users'").get() !== undefined;
    return JSON.stringify([
      db.pragma("user_version", { simple: true }),
      db.prepare("SELECT id, name, admin, blocked, created FROM users ORDER BY id").all(),
      db.prepare("SELECT user_id, name, state FROM servers ORDER BY id").all(),
      hasImports ? db.prepare("SELECT * FROM imported_users ORDER BY user_id").all() : [],
    ]);
  } finally {
    db.close();
  }
}

describe.skipIf(!ready)("import a database the real JupyterHub 3.0 wrote", () => {
  let dir: string;
  let jh: RealJupyterHub;
  let jhDb: string;
  let jhSha: string;
  let hub: HubProcess;
  let storePath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-import-e2e-"));
    jh = new RealJupyterHub(join(dir, "jupyterhub"));
    mkdirSync(jh.dir);
    try {
      await jh.start();
      // Named servers made for real, a default server, and a user's own token (none of which slicehub can carry).
      await jh.startServer("ada@example.org", "research");
      await jh.startServer("grace@example.org", "Big Data");
      await jh.startServer("grace@example.org", "exp-2");
      await jh.startServer("linus", "");
      const tok = await jh.api("/users/grace@example.org/tokens", { method: "POST", body: JSON.stringify({ note: "grace's notebook client" }), headers: { "content-type": "application/json" } });
      expect(tok.status).toBe(201);
      for (const [u, s] of [["ada@example.org", "research"], ["grace@example.org", "Big Data"], ["grace@example.org", "exp-2"], ["linus", ""]] as const) await jh.stopServer(u, s);
    } finally {
      await jh.stop();
    }
    jhDb = join(jh.dir, "jupyterhub.sqlite");
    jhSha = sha(jhDb);

    // slicehub runs meanwhile (the import is one transaction); the config already has what the import's
    // snippet asks for, as an admin would have added it.
    hub = await HubProcess.start({
      config: {
        state_dir: join(dir, "slicehub-state"),
        auth: { kind: "dev", admin_users: ["ada"] },
        groups: { lab: ["ada", "grace"] },
        spawner: { single_user_host: true, named_servers: { limit: 2 } },
      },
    });
    storePath = join(dir, "slicehub-state", "slicehub.sqlite");
    // One user of slicehub's own before the import.
    expect((await cli(["token", "zed", "--create", "--config", hub.configPath])).code).toBe(0);
  }, 480_000);

  afterAll(async () => {
    await jh?.stop();
    await hub?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("JupyterHub wrote its 3.0 schema with the users, groups and named servers", () => {
    const db = new Database(jhDb, { readonly: true, fileMustExist: true });
    try {
      expect(db.prepare("SELECT version_num FROM alembic_version").get()).toEqual({ version_num: "651f5419b74d" });
      expect((db.prepare("SELECT name FROM spawners WHERE name != '' ORDER BY name").all() as { name: string }[]).map((r) => r.name)).toEqual(["Big Data", "exp-2", "research"]);
    } finally {
      db.close();
    }
  });

  it("the dry run prints the plan and changes no row (the hub running)", async () => {
    const before = rows(storePath);
    const r = await cli(["import", "jupyterhub", jhDb, "--config", hub.configPath, "--dry-run"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^JupyterHub 3\.x \(schema 651f5419b74d\) at .*: 3 users, 2 groups, 3 named servers$/m);
    expect(r.stdout).toMatch(/^create ada \(from ada@example.org, admin\)$/m);
    expect(r.stdout).toMatch(/^create grace \(from grace@example.org\)$/m);
    expect(r.stdout).toMatch(/^create linus$/m);
    expect(r.stdout).toMatch(/^ {2}server "Big Data": skipped, not a server name slicehub allows .* as "big-data"$/m);
    expect(r.stdout).toMatch(/^ {2}API tokens: 1 user token and 1 service token \(JupyterHub keeps only their hashes\)/m);
    expect(r.stdout).toMatch(/^ {2}services: importer /m);
    expect(r.stdout).toMatch(/"data-science": \["grace"\]/);
    expect(r.stdout).toMatch(/^dry run: 3 to create, 0 to update, 0 unchanged, 0 skipped; nothing was changed/m);
    expect(rows(storePath)).toBe(before);
    expect(sha(jhDb)).toBe(jhSha);
  });

  it("the import gives the users, admin flags, notes and named servers, in one go; a second run changes nothing", async () => {
    const r = await cli(["import", "jupyterhub", jhDb, "--config", hub.configPath]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^done: created 3, updated 0, 0 unchanged, 0 skipped \(one transaction\)$/m);
    const after = rows(storePath);
    const again = await cli(["import", "jupyterhub", jhDb, "--config", hub.configPath]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^unchanged ada \(from ada@example.org, admin\)$/m);
    expect(again.stdout).toMatch(/^nothing to change: 3 already imported as they are, 0 skipped$/m);
    expect(rows(storePath)).toBe(after);
    expect(sha(jhDb)).toBe(jhSha);
  });

  it("slicehub's REST API shows them: names, admin flags, notes, the named servers stopped", async () => {
    const t = await cli(["token", "ada", "--config", hub.configPath]);
    expect(t.code, t.stderr).toBe(0);
    const token = t.stdout.trim();
    const res = await fetch(`${hub.url}/hub/api/users?include_stopped_servers`, { headers: { authorization: `token ${token}` } });
    expect(res.status).toBe(200);
    const users = (await res.json()) as { name: string; admin: boolean; note?: string; servers: Record<string, { stopped: boolean }> }[];
    const by = new Map(users.map((u) => [u.name, u]));
    expect([...by.keys()].sort()).toEqual(["ada", "grace", "linus", "zed"]);
    expect(by.get("ada")).toMatchObject({ admin: true, note: expect.stringMatching(/^Imported from JupyterHub 3\.x on \d{4}-\d{2}-\d{2}; groups: lab$/) });
    expect(by.get("grace")).toMatchObject({ admin: false, note: expect.stringMatching(/; groups: Data Science, lab$/) });
    expect(by.get("linus")).toMatchObject({ admin: false, note: expect.stringMatching(/; no groups$/) });
    expect(by.get("zed")!.note).toBeUndefined();
    expect(Object.keys(by.get("ada")!.servers)).toEqual(["research"]);
    expect(by.get("ada")!.servers.research).toMatchObject({ stopped: true });
    expect(Object.keys(by.get("grace")!.servers)).toEqual(["exp-2"]);
    expect(by.get("linus")!.servers).toEqual({});
  });

  it("the admin page shows the notes, and an imported named server starts with the real singleuser", async () => {
    const admin = new Browser(hub.url);
    await admin.login("ada");
    const page = await (await admin.request("/hub/admin")).text();
    expect(page).toContain("Imported from JupyterHub 3.x on");
    expect(page).toContain("groups: Data Science, lab");

    const token = (await cli(["token", "ada", "--config", hub.configPath])).stdout.trim();
    const api = (path: string, init: RequestInit = {}) => fetch(`${hub.url}/hub/api${path}`, { ...init, headers: { authorization: `token ${token}` } });
    const start = await api("/users/ada/servers/research", { method: "POST" });
    expect([201, 202]).toContain(start.status);
    await until("ada/research ready in slicehub", 90_000, async () => {
      const m = (await (await api("/users/ada")).json()) as { servers: Record<string, { ready: boolean }> };
      return m.servers.research?.ready === true;
    });
    const stop = await api("/users/ada/servers/research", { method: "DELETE" });
    expect([202, 204]).toContain(stop.status);
  }, 120_000);
});
