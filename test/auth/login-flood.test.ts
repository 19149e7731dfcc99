// The attacker's view of /hub/oauth_login: anyone may call it, as often as they like, so starting a login must
// not write to the database. A flood of starts with a long next= leaves every table, the page count and the
// files on disk as they were, and a real login through the provider still works afterwards.
import { statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, type HubProcess } from "../e2e/harness.js";
import { loginAs } from "./follow.js";
import { startHubWithIdp } from "./hub-with-idp.js";

const REQUESTS = 2000;
const CONCURRENCY = 16;
const DEADLINE_MS = 60_000;
/** About 1 KB, under the cap on next=, so the hub keeps it. */
const LONG_NEXT = `/hub/home?pad=${"x".repeat(1000)}`;

interface Snapshot {
  rows: Record<string, number>;
  pages: number;
  bytes: number;
}

/** Row counts of every table and the page count, read with a second, read-only connection; and the file sizes. */
function snapshot(file: string): Snapshot {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    const rows: Record<string, number> = {};
    for (const { name } of tables) rows[name] = (db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n;
    const pages = db.pragma("page_count", { simple: true }) as number;
    const size = (f: string) => {
      try {
        return statSync(f).size;
      } catch {
        return 0;
      }
    };
    return { rows, pages, bytes: size(file) + size(`${file}-wal`) };
  } finally {
    db.close();
  }
}

describe("a flood of login starts", () => {
  let hub: HubProcess;
  let cleanup: () => Promise<void>;
  let file: string;

  beforeAll(async () => {
    ({ hub, cleanup } = await startHubWithIdp());
    file = join(hub.stateDir, "slicehub.sqlite");
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it(`writes nothing to the database (${REQUESTS} starts with a 1 KB next), and a real login works afterwards`, async () => {
    // One start first, so whatever the hub sets up once (its sealing key) is in the baseline.
    const warm = await fetch(`${hub.url}/hub/oauth_login`, { redirect: "manual" });
    expect(warm.status).toBe(303);
    const before = snapshot(file);

    const url = `${hub.url}/hub/oauth_login?next=${encodeURIComponent(LONG_NEXT)}`;
    const deadline = Date.now() + DEADLINE_MS;
    let sent = 0;
    let longestCookie = 0;
    const statuses = new Map<number, number>();
    const worker = async () => {
      while (sent < REQUESTS && Date.now() < deadline) {
        sent++;
        const res = await fetch(url, { redirect: "manual" });
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        for (const line of res.headers.getSetCookie()) longestCookie = Math.max(longestCookie, line.length);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(Object.fromEntries(statuses)).toEqual({ 303: REQUESTS });
    // Browsers keep cookies of up to 4096 bytes; the state cookie must fit with room to spare.
    expect(longestCookie).toBeGreaterThan(0);
    expect(longestCookie).toBeLessThan(3000);

    const after = snapshot(file);
    expect(after.rows).toEqual(before.rows);
    expect(after.pages).toBe(before.pages);
    expect(after.bytes).toBe(before.bytes);

    const b = new Browser(hub.url);
    const { url: landed } = await loginAs(b, "ada", LONG_NEXT);
    expect(landed.pathname + landed.search).toBe(LONG_NEXT);
    expect(b.cookie("slicehub-session")).toBeTruthy();
  });
});
