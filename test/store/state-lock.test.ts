// The state directory's lock: one holder at a time, across processes, and released by the kernel when the holder
// dies however it dies (kill -9 included), so it never goes stale the way a pid file does.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stateLocked, tryLockState } from "../../src/store/state-lock.js";

const BETTER_SQLITE3 = resolve(import.meta.dirname, "../../node_modules/better-sqlite3/lib/index.js");

describe("state directory lock", () => {
  const dir = mkdtempSync(join(tmpdir(), "slicehub-lock-test-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is not locked before anyone took it, and one holder excludes the next until released", () => {
    expect(stateLocked(join(dir, "never"))).toBe(false);
    const a = tryLockState(dir);
    expect(a).toBeDefined();
    a!.release();
    const b = tryLockState(dir);
    expect(b).toBeDefined();
    b!.release();
    expect(stateLocked(dir)).toBe(false);
  });

  it("is held by another process until it is killed with SIGKILL", async () => {
    // The same lock as tryLockState takes, in a child: BEGIN EXCLUSIVE on STATE_DIR/slicehub.lock.
    const code = `const D = (await import(${JSON.stringify(BETTER_SQLITE3)})).default; const db = new D(${JSON.stringify(join(dir, "slicehub.lock"))}, { timeout: 0 }); db.exec("BEGIN EXCLUSIVE"); console.log("held"); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const [chunk] = (await once(child.stdout!, "data")) as [Buffer];
      expect(chunk.toString()).toContain("held");
      expect(stateLocked(dir)).toBe(true);
      expect(tryLockState(dir)).toBeUndefined();
    } finally {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
    expect(stateLocked(dir)).toBe(false);
    tryLockState(dir)!.release();
  });
});
