// `slicehub backup` and `slicehub restore` against the real daemon and the real /usr/bin/jupyterhub-singleuser
// (local spawner): a backup taken while the hub writes is consistent (and shows progress on a large database),
// a restore into the running hub is refused, corrupt and foreign files are refused with nothing changed, and
// backup → stop → restore → start adopts the server the backup lists while the one started after it is stopped.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS } from "../../src/store/migrations.js";
import { CLI, HubProcess, SINGLEUSER, groupAlive } from "./harness.js";

const haveSingleuser = existsSync(SINGLEUSER);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const cli = (args: string[], timeoutMs = 120_000): Promise<Run> =>
  new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe.skipIf(!haveSingleuser)("backup and restore with the real jupyterhub-singleuser", () => {
  let hub: HubProcess;
  let dir: string;
  let db: string;
  const tokens: Record<string, string> = {};
  let backupFile: string;
  let alicePgid: number;
  let bobPgid: number | undefined;

  const api = (path: string, token: string, init: RequestInit = {}) =>
    fetch(`${hub.url}${path}`, { ...init, headers: { authorization: `token ${token}`, ...init.headers } });

  async function startServer(user: string): Promise<void> {
    const res = await api(`/hub/api/users/${user}/server`, tokens[user]!, { method: "POST" });
    expect([201, 202]).toContain(res.status);
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const model = (await (await api(`/hub/api/users/${user}`, tokens[user]!)).json()) as { servers: Record<string, { ready: boolean }> };
      if (model.servers[""]?.ready) return;
      await sleep(200);
    }
    throw new Error(`${user}'s server did not get ready:\n${hub.output.slice(-3000)}`);
  }

  /** The live database's content and its sidecar files' names, to show a refused restore changed nothing. */
  const snapshot = () => ({ sha: sha(db), files: readdirSync(hub.stateDir).sort() });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-backup-test-"));
    hub = await HubProcess.start();
    db = join(hub.stateDir, "slicehub.sqlite");
    for (const name of ["alice", "bob"]) {
      const r = await cli(["token", name, "--create", "--config", hub.configPath]);
      expect(r.code, r.stderr).toBe(0);
      tokens[name] = r.stdout.trim();
    }
    // Bulk for the copy to take several steps: 20 MB of spawn events on a server row of a user of their own.
    const w = new Database(db);
    w.pragma("busy_timeout = 5000");
    w.transaction(() => {
      const user = w.prepare("INSERT INTO users (name, created) VALUES ('bulk', ?)").run(Date.now()).lastInsertRowid;
      const server = w.prepare("INSERT INTO servers (user_id, name) VALUES (?, '')").run(user).lastInsertRowid;
      const ins = w.prepare("INSERT INTO spawn_events (server_id, spawn_id, ts, event) VALUES (?, 1, ?, ?)");
      const text = "x".repeat(1000);
      for (let i = 0; i < 20_000; i++) ins.run(server, Date.now(), text);
    })();
    w.close();
    await startServer("alice");
    alicePgid = hub.serverProcessGroupOf("alice")!;
    expect(alicePgid).toBeGreaterThan(1);
  }, 180_000);

  afterAll(async () => {
    for (const pgid of [alicePgid, bobPgid]) {
      if (pgid && groupAlive(pgid)) {
        try {
          process.kill(-pgid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    await hub?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("backs up the live database while the hub writes: a consistent, checked copy, mode 0600, progress shown", async () => {
    const countTokens = () => {
      const r = new Database(db, { readonly: true });
      try {
        return (r.prepare("SELECT count(*) AS n FROM api_tokens").get() as { n: number }).n;
      } finally {
        r.close();
      }
    };
    const before = countTokens();
    backupFile = join(dir, "hub.sqlite");
    // Writes through the API (each a committed transaction in the hub) for as long as the backup runs, bounded.
    let stop = false;
    let writes = 0;
    const writer = (async () => {
      const deadline = Date.now() + 60_000;
      while (!stop && writes < 2000 && Date.now() < deadline) {
        const res = await api("/hub/api/users/alice/tokens", tokens.alice!, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ note: `load ${writes}` }),
        });
        expect(res.status).toBe(201);
        await res.arrayBuffer();
        writes++;
      }
    })();
    await sleep(200);
    const r = await cli(["backup", backupFile, "--config", hub.configPath]);
    stop = true;
    await writer;
    const after = countTokens();
    expect(r.code, r.stderr + r.stdout).toBe(0);
    console.log(`backup while the hub took ${writes} writes:\n${r.stdout}`);
    expect(writes).toBeGreaterThan(0);
    // Progress on a ~20 MB database, then the result.
    expect(r.stdout).toMatch(/copied \d+% \(\d+ of \d+ pages\)/);
    expect(r.stdout).toMatch(new RegExp(`wrote ${backupFile}: [\\d.]+ MiB, schema ${MIGRATIONS.length}, 3 users, 1 server recorded as running \\(alice\\); integrity ok`));
    expect(r.stdout).toMatch(/it holds the database only; keep these with it: .*config\.json/);
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
    // Nothing else left beside it: no temporary file, no -wal (the backup is one file on its own).
    expect(readdirSync(dir)).toEqual(["hub.sqlite"]);

    const copy = new Database(backupFile, { readonly: true });
    try {
      expect(copy.pragma("journal_mode", { simple: true })).toBe("delete");
      expect(copy.pragma("integrity_check", { simple: true })).toBe("ok");
      expect(copy.pragma("foreign_key_check")).toEqual([]);
      const n = (copy.prepare("SELECT count(*) AS n FROM api_tokens").get() as { n: number }).n;
      // A snapshot at one moment: no fewer tokens than before the backup began, no more than after it ended.
      expect(n).toBeGreaterThanOrEqual(before);
      expect(n).toBeLessThanOrEqual(after);
      const bulk = "SELECT count(*) AS n FROM spawn_events e JOIN servers s ON s.id = e.server_id JOIN users u ON u.id = s.user_id WHERE u.name = 'bulk'";
      expect((copy.prepare(bulk).get() as { n: number }).n).toBe(20_000);
    } finally {
      copy.close();
    }
  }, 180_000);

  it("writes into a directory as slicehub-<time>.sqlite and refuses to overwrite the database itself", async () => {
    const sub = mkdtempSync(join(dir, "nightly-"));
    const r = await cli(["backup", sub, "--config", hub.configPath]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(sub)).toEqual([expect.stringMatching(/^slicehub-\d{8}T\d{6}Z\.sqlite$/)]);
    rmSync(sub, { recursive: true });
    const self = await cli(["backup", db, "--config", hub.configPath]);
    expect(self.code).toBe(1);
    expect(self.stderr).toContain("is the hub's own database");
  }, 60_000);

  it("refuses a restore while the hub runs, and changes nothing", async () => {
    const was = snapshot();
    const r = await cli(["restore", backupFile, "--config", hub.configPath]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/slicehub restore: the hub is running on .*\(it holds .*slicehub\.lock\).*stop it first/);
    expect(snapshot()).toEqual(was);
    expect((await api("/hub/api/users/alice", tokens.alice!)).status).toBe(200);
  });

  it("a second hub on the same state directory is refused", async () => {
    const other = { ...hub.config, listen: "http://127.0.0.1:1" };
    const cfg = join(dir, "second.json");
    writeFileSync(cfg, JSON.stringify({ ...other, state_dir: hub.stateDir }));
    const r = await cli(["start", "--config", cfg], 30_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/another slicehub runs on .* \(it holds .*slicehub\.lock\)/);
    rmSync(cfg);
  });

  it("refuses corrupt and foreign files with a clear message, and changes nothing", async () => {
    // After the backup: bob starts a server (not in the backup) and alice gets a token (not in it either).
    await startServer("bob");
    bobPgid = hub.serverProcessGroupOf("bob");
    expect(bobPgid).toBeGreaterThan(1);
    await hub.stop();
    const was = snapshot();

    const random = join(dir, "random.bin");
    writeFileSync(random, Buffer.alloc(8192, 7));
    const truncated = join(dir, "truncated.sqlite");
    copyFileSync(backupFile, truncated);
    truncateSync(truncated, Math.floor(statSync(truncated).size / 2));
    const jupyterhub = join(dir, "jupyterhub.sqlite");
    const jh = new Database(jupyterhub);
    jh.exec("CREATE TABLE alembic_version (version_num TEXT); CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE servers (id INTEGER PRIMARY KEY)");
    jh.close();
    const newer = join(dir, "newer.sqlite");
    copyFileSync(backupFile, newer);
    const nw = new Database(newer);
    nw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    nw.close();
    const cases: [string, RegExp][] = [
      [random, /is not a SQLite database/],
      [truncated, /is damaged|cannot be opened|malformed/],
      [jupyterhub, /is not a slicehub database \(it looks like JupyterHub's own database/],
      [newer, /was written by a newer slicehub \(schema \d+; this one knows up to \d+\): upgrade slicehub first/],
      [join(dir, "missing.sqlite"), /does not exist/],
    ];
    for (const [file, message] of cases) {
      const r = await cli(["restore", file, "--config", hub.configPath]);
      expect(r.code, `${file}: ${r.stdout}`).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(snapshot(), file).toEqual(was);
    }
  }, 180_000);

  it("restores the backup; the next start adopts alice's server from it and stops bob's, which it does not know", async () => {
    const r = await cli(["restore", backupFile, "--config", hub.configPath]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kept the previous database as .*slicehub\.sqlite\.before-restore-\d{8}T\d{6}Z/);
    expect(r.stdout).toContain(`restored ${backupFile} to ${db}`);
    expect(r.stdout).toContain("1 server recorded as running (alice)");
    const files = readdirSync(hub.stateDir);
    expect(files.filter((f) => f.startsWith("slicehub.sqlite")).sort()).toEqual(["slicehub.sqlite", expect.stringMatching(/^slicehub\.sqlite\.before-restore-\d{8}T\d{6}Z$/)]);
    expect(sha(db)).toBe(sha(backupFile));
    // The kept database still has bob's server.
    const previous = join(hub.stateDir, files.find((f) => f.includes("before-restore"))!);
    const prev = new Database(previous, { readonly: true });
    expect((prev.prepare("SELECT count(*) AS n FROM servers s JOIN users u ON u.id = s.user_id WHERE u.name = 'bob' AND s.state = 'running'").get() as { n: number }).n).toBe(1);
    prev.close();

    await hub.launch();
    await hub.waitForLog(/adopted running server.*alice/, 30_000);
    const status = await api("/user/alice/api/status", tokens.alice!);
    expect(status.status).toBe(200);
    expect(await status.json()).toHaveProperty("kernels");
    // Bob's server started after the backup: the restored hub does not know it and stops it.
    const deadline = Date.now() + 30_000;
    while (groupAlive(bobPgid!) && Date.now() < deadline) await sleep(100);
    expect(groupAlive(bobPgid!)).toBe(false);
    const bob = (await (await api("/hub/api/users/bob", tokens.bob!)).json()) as { servers: object };
    expect(bob.servers).toEqual({});
  }, 180_000);
});
