// Who owns a state directory right now: a running `slicehub start`, or a `slicehub restore` replacing its
// database. Each holds an exclusive lock on STATE_DIR/slicehub.lock for as long as it runs: a SQLite write lock
// (a POSIX advisory lock the kernel holds for the process), taken with SQLite's own locking because Node has no
// flock. The kernel releases it when the holder exits in any way (kill -9 included), it is seen across pid
// namespaces (a hub inside a systemd sandbox or container), and no pid file can go stale.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";

export const LOCK_FILE = "slicehub.lock";

export function lockPath(stateDir: string): string {
  return join(stateDir, LOCK_FILE);
}

export interface StateLock {
  readonly path: string;
  release(): void;
}

/**
 * Takes the state directory's lock, or returns undefined when another process holds it. The file stays (an
 * empty SQLite database); only the lock goes with release() or the process.
 */
export function tryLockState(stateDir: string): StateLock | undefined {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = lockPath(stateDir);
  const db = new Database(path, { timeout: 0 });
  try {
    // Rollback-journal mode (the default for a new file): BEGIN EXCLUSIVE locks the whole file at once.
    db.exec("BEGIN EXCLUSIVE");
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") return undefined;
    throw err;
  }
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      try {
        db.exec("ROLLBACK");
      } finally {
        db.close();
      }
    },
  };
}

/** Whether some process holds the state directory's lock (a hub runs on it, or a restore is under way). */
export function stateLocked(stateDir: string): boolean {
  if (!existsSync(lockPath(stateDir))) return false;
  const lock = tryLockState(stateDir);
  lock?.release();
  return lock === undefined;
}
