// Crash consistency: a child process commits transactions in a tight loop through the real store code and is
// killed with SIGKILL at random moments. After every kill the file must be intact (integrity_check), have no
// dangling references (foreign_key_check), hold every transaction the child reported as committed, and hold
// no half-written transaction: each user has exactly the rows its one transaction wrote.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS } from "../../src/store/migrations.js";
import { Store } from "../../src/store/store.js";

const ROOT = resolve(import.meta.dirname, "../..");
const WRITER = join(import.meta.dirname, "fixtures/crash-writer.mjs");
const COMPILED = join(ROOT, "dist/src/store/store.js");

/** What the writer's transaction creates for each user (see the fixture). */
const PER_USER = { servers: 2, oauth_clients: 1, sessions: 1, api_tokens: 3, spawn_events: 6 };
const ROUNDS = 5;

interface Round {
  delayMs: number;
  reported: string[];
}

/** Start the writer, let it run for `delayMs` after its first commit, SIGKILL it; returns what it reported. */
async function runAndKill(file: string, prefix: string, delayMs: number): Promise<Round> {
  const child = spawn(process.execPath, [WRITER, file, prefix], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const deadline = Date.now() + 10_000;
  // Counting from the first commit (not from start-up) so that even a slow machine kills it mid-stream.
  while (!out.includes("committed ")) {
    if (child.exitCode !== null) throw new Error(`writer exited early (${child.exitCode}): ${err}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`writer committed nothing within 10 s: ${err}`);
    }
    await sleep(5);
  }
  await sleep(delayMs);
  child.kill("SIGKILL");
  const { signal } = await exited;
  expect(signal, `writer should die by SIGKILL, stderr: ${err}`).toBe("SIGKILL");
  const reported = out
    .split("\n")
    .filter((l) => l.startsWith("committed "))
    .map((l) => l.slice("committed ".length));
  return { delayMs, reported };
}

describe.skipIf(!existsSync(COMPILED))("crash consistency under SIGKILL", () => {
  let dir: string;
  let file: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-crash-"));
    file = join(dir, "slicehub.sqlite");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`survives ${ROUNDS} kills at random moments with no torn or lost transaction`, { timeout: 60_000 }, async () => {
    const rounds: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const delayMs = 50 + Math.floor(Math.random() * 351); // 50–400 ms
      const round = await runAndKill(file, `r${r}`, delayMs);
      rounds.push(round);
      const context = `round ${r} (killed after ${delayMs} ms, ${round.reported.length} commits reported)`;

      const db = new Database(file);
      try {
        expect(db.pragma("integrity_check"), context).toEqual([{ integrity_check: "ok" }]);
        expect(db.pragma("foreign_key_check"), context).toEqual([]);

        // No torn transaction: every user has exactly the rows its transaction wrote.
        const torn = db
          .prepare(
            `SELECT u.name,
               (SELECT count(*) FROM servers s WHERE s.user_id = u.id) AS servers,
               (SELECT count(*) FROM oauth_clients c WHERE c.id = 'jupyterhub-user-' || u.name) AS oauth_clients,
               (SELECT count(*) FROM sessions s WHERE s.user_id = u.id) AS sessions,
               (SELECT count(*) FROM api_tokens t WHERE t.user_id = u.id) AS api_tokens,
               (SELECT count(*) FROM spawn_events e JOIN servers s ON s.id = e.server_id WHERE s.user_id = u.id) AS spawn_events
             FROM users u`,
          )
          .all() as ({ name: string } & typeof PER_USER)[];
        const bad = torn.filter(
          (row) =>
            row.servers !== PER_USER.servers ||
            row.oauth_clients !== PER_USER.oauth_clients ||
            row.sessions !== PER_USER.sessions ||
            row.api_tokens !== PER_USER.api_tokens ||
            row.spawn_events !== PER_USER.spawn_events,
        );
        expect(bad, context).toEqual([]);
        // Nothing written outside a user's transaction either (orphans would also fail foreign_key_check).
        expect((db.prepare("SELECT count(*) AS n FROM users").get() as { n: number }).n * PER_USER.api_tokens).toBe(
          (db.prepare("SELECT count(*) AS n FROM api_tokens").get() as { n: number }).n,
        );

        // No lost commit: everything reported is there; at most one more (committed, killed before reporting).
        const names = (db.prepare("SELECT name FROM users WHERE name LIKE ? ORDER BY id").all(`r${r}-%`) as { name: string }[]).map((u) => u.name);
        expect(names.slice(0, round.reported.length), context).toEqual(round.reported);
        expect(names.length - round.reported.length, context).toBeGreaterThanOrEqual(0);
        expect(names.length - round.reported.length, context).toBeLessThanOrEqual(1);
        // Transactions are numbered without gaps.
        expect(names, context).toEqual(names.map((_, i) => `r${r}-${i}`));
      } finally {
        db.close();
      }
    }
    // The test only means something if the child really was mid-stream when killed (guaranteed by waiting for
    // its first commit; checked anyway).
    expect(rounds.every((r) => r.reported.length > 0), JSON.stringify(rounds.map((r) => [r.delayMs, r.reported.length]))).toBe(true);

    // And the store opens the survivor normally (schema current, no migration re-run).
    const store = new Store(file);
    expect(store.schemaVersion).toBe(MIGRATIONS.length);
    store.close();
  });
});
