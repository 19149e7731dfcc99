import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfigFile } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import { ConfigWatcher } from "../../src/config/watch.js";
import type { Level, Logger } from "../../src/log.js";

type Entry = { level: Level; msg: string; fields: Record<string, unknown> };

// Records log calls so tests can read what an admin would see in the journal.
function recordingLogger(entries: Entry[]): Logger {
  const at = (level: Level) => (msg: string, fields: Record<string, unknown> = {}) => void entries.push({ level, msg, fields });
  const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: () => logger };
  return logger;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("ConfigWatcher", () => {
  let dir: string;
  let path: string;
  let entries: Entry[];
  let changes: { next: Config; prev: Config }[];
  let watcher: ConfigWatcher;

  function startWatcher(text: string): void {
    writeFileSync(path, text);
    const initial = loadConfigFile(path);
    if (!initial.ok) throw new Error(initial.errors.join("\n"));
    watcher = new ConfigWatcher(path, initial.config, (next, prev) => changes.push({ next, prev }), recordingLogger(entries));
    watcher.start();
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-watch-"));
    path = join(dir, "config.json");
    entries = [];
    changes = [];
  });

  afterEach(() => {
    watcher.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("applies a valid edit and names the changed keys", async () => {
    startWatcher(`{ "log_level": "info" }`);
    writeFileSync(path, `{ "log_level": "debug", "auth": { "kind": "dev", "admin_users": ["ada"] } }`);
    await waitFor("onChange", () => changes.length > 0);
    expect(changes).toHaveLength(1);
    expect(changes[0]!.prev.log_level).toBe("info");
    expect(changes[0]!.next.log_level).toBe("debug");
    expect(watcher.current.auth.admin_users).toEqual(["ada"]);
    expect(entries).toContainEqual({ level: "info", msg: "config reloaded", fields: { path, changed: ["log_level", "auth"] } });
  });

  it("keeps the last good config when an edit is invalid, and logs why", async () => {
    startWatcher(`{ "log_level": "info" }`);
    const before = watcher.current;
    writeFileSync(path, `{\n  "log_level": "loud"\n}`);
    await waitFor("the rejection", () => entries.some((e) => e.msg === "config rejected, keeping the last good config"));
    const rejection = entries.find((e) => e.level === "warn")!;
    expect(rejection.fields.errors).toEqual(['log_level: must be one of "debug", "info", "warn", "error" (2:16)']);
    expect(changes).toEqual([]);
    expect(watcher.current).toBe(before);

    writeFileSync(path, `{ "log_level": "warn" }`);
    await waitFor("onChange after the fix", () => changes.length > 0);
    expect(changes[0]!.prev).toBe(before);
    expect(watcher.current.log_level).toBe("warn");
  });

  it("detects a file replaced by rename, as editors and config management do", async () => {
    startWatcher(`{}`);
    const tmp = join(dir, ".config.json.tmp");
    writeFileSync(tmp, `{ "session": { "idle_timeout_s": 60 } }`);
    renameSync(tmp, path);
    await waitFor("onChange", () => changes.length > 0);
    expect(watcher.current.session.idle_timeout_s).toBe(60);

    // The watch must survive the replacement: the next edit is seen as well.
    writeFileSync(tmp, `{ "session": { "idle_timeout_s": 120 } }`);
    renameSync(tmp, path);
    await waitFor("a second onChange", () => changes.length > 1);
    expect(watcher.current.session.idle_timeout_s).toBe(120);
  });

  it("ignores other files in the directory and saves without changes", async () => {
    startWatcher(`{}`);
    writeFileSync(join(dir, "other.json"), `{ "log_level": "debug" }`);
    writeFileSync(path, `{}`);
    await sleep(500);
    expect(changes).toEqual([]);
    expect(entries).toEqual([]);
  });

  it("keeps listen and state_dir until a restart, and says so", async () => {
    startWatcher(`{ "listen": "http://127.0.0.1:8000", "state_dir": "a" }`);
    writeFileSync(path, `{ "listen": "http://127.0.0.1:9000", "state_dir": "b", "log_level": "error" }`);
    await waitFor("onChange", () => changes.length > 0);
    const { next } = changes[0]!;
    expect(next.listen).toBe("http://127.0.0.1:8000");
    expect(next.state_dir).toBe(join(dir, "a"));
    expect(next.log_level).toBe("error");
    const warning = entries.find((e) => e.level === "warn")!;
    expect(warning.msg).toMatch(/restart/);
    expect(warning.fields).toMatchObject({
      keys: ["listen", "state_dir"],
      running: { listen: "http://127.0.0.1:8000", state_dir: join(dir, "a") },
      in_file: { listen: "http://127.0.0.1:9000", state_dir: join(dir, "b") },
    });
    expect(entries.find((e) => e.msg === "config reloaded")!.fields.changed).toEqual(["log_level"]);
  });

  it("does not call onChange when only restart-only keys changed", () => {
    startWatcher(`{}`);
    writeFileSync(path, `{ "listen": "http://127.0.0.1:9000" }`);
    expect(watcher.reload()).toBe(true);
    expect(changes).toEqual([]);
    expect(watcher.current.listen).toBe("http://127.0.0.1:8000");
  });

  it("reload() applies a valid file and rejects an invalid one", () => {
    startWatcher(`{}`);
    writeFileSync(path, `{ "proxy": { "activity_flush_s": 5 } }`);
    expect(watcher.reload()).toBe(true);
    expect(changes).toHaveLength(1);
    expect(watcher.current.proxy.activity_flush_s).toBe(5);

    writeFileSync(path, `{ "proxy": { "activity_flush_s": 5 }`);
    expect(watcher.reload()).toBe(false);
    expect(watcher.current.proxy.activity_flush_s).toBe(5);
    expect(entries.at(-1)).toMatchObject({ level: "warn", fields: { errors: [`${path}: expected "}" (1:37)`] } });
  });

  it("reload() reports a file that has disappeared", () => {
    startWatcher(`{}`);
    rmSync(path);
    expect(watcher.reload()).toBe(false);
    expect(entries.at(-1)!.fields.errors).toEqual([`${path}: cannot read: ENOENT no such file`]);
  });

  it("reloads on a real SIGHUP", async () => {
    startWatcher(`{}`);
    const initial = watcher.current;
    watcher.stop();
    // Edit before the watch starts, so that only the signal can cause the reload.
    writeFileSync(path, `{ "log_level": "debug" }`);
    watcher = new ConfigWatcher(path, initial, (next, prev) => changes.push({ next, prev }), recordingLogger(entries));
    watcher.start();
    process.kill(process.pid, "SIGHUP");
    await waitFor("onChange", () => changes.length > 0);
    expect(watcher.current.log_level).toBe("debug");
    expect(entries[0]!.msg).toBe("SIGHUP received, reloading config");
  });

  it("stop() ends watching and the SIGHUP handler", async () => {
    startWatcher(`{}`);
    const sighupListeners = process.listenerCount("SIGHUP");
    watcher.stop();
    expect(process.listenerCount("SIGHUP")).toBe(sighupListeners - 1);
    writeFileSync(path, `{ "log_level": "debug" }`);
    await sleep(500);
    expect(changes).toEqual([]);
  });
});
