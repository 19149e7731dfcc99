// SdNotify (src/sd-notify.ts) against a stand-in systemd-notify on PATH that appends its arguments to the file
// NOTIFY_SOCKET names: nothing runs without NOTIFY_SOCKET, messages go out in order, status lines stay one line,
// the watchdog pings only for its own pid, and the variables are taken out of the environment. The real
// systemd-notify and PID 1 are exercised by test/systemd/service-units.test.ts.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { log } from "../src/log.js";
import { SdNotify } from "../src/sd-notify.js";

describe("SdNotify", () => {
  let dir: string;
  const path = process.env.PATH;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-sdnotify-"));
    writeFileSync(join(dir, "systemd-notify"), '#!/bin/sh\nprintf "%s\\n" "$*" >> "$NOTIFY_SOCKET"\n');
    chmodSync(join(dir, "systemd-notify"), 0o755);
    process.env.PATH = `${dir}:${path}`;
  });
  afterAll(() => {
    process.env.PATH = path;
    rmSync(dir, { recursive: true, force: true });
  });

  it("is a no-op without NOTIFY_SOCKET", async () => {
    const env: NodeJS.ProcessEnv = { WATCHDOG_USEC: "1000000" };
    const n = new SdNotify(log, env);
    expect(n.enabled).toBe(false);
    n.startWatchdog();
    await n.ready("serving");
    await n.status("x");
    await n.stopping("bye");
    expect(env).toEqual({});
  });

  it("sends each message through systemd-notify, in order, one line each, and cleans the environment", async () => {
    const out = join(dir, "ordered");
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: out, KEEP: "1" };
    const n = new SdNotify(log, env);
    expect(n.enabled).toBe(true);
    expect(env).toEqual({ KEEP: "1" });
    void n.status("adopting 3 servers");
    void n.status("adopting 3 servers"); // unchanged: not sent again
    void n.ready("serving on http://x\nevil=1, 3 servers running");
    void n.reloaded("serving; reloaded config");
    await n.stopping("stopping");
    expect(readFileSync(out, "utf8").split("\n").filter(Boolean)).toEqual([
      "STATUS=adopting 3 servers",
      "READY=1 STATUS=serving on http://x evil=1, 3 servers running",
      "RELOADING=1 STATUS=reloading the config",
      "READY=1 STATUS=serving; reloaded config",
      "STOPPING=1 STATUS=stopping",
    ]);
  });

  it("pings the watchdog at half WATCHDOG_USEC, repeating READY=1 and refreshing the status", async () => {
    const out = join(dir, "watchdog");
    const n = new SdNotify(log, { NOTIFY_SOCKET: out, WATCHDOG_USEC: "1000000", WATCHDOG_PID: String(process.pid) });
    let servers = 1;
    await n.ready("serving, 1 server");
    n.startWatchdog(() => `serving, ${servers} servers`);
    servers = 2;
    for (let i = 0; i < 100 && !(existsSync(out) && readFileSync(out, "utf8").includes("WATCHDOG=1")); i++) await sleep(50);
    n.stopWatchdog();
    const lines = readFileSync(out, "utf8").split("\n").filter(Boolean);
    expect(lines[0]).toBe("READY=1 STATUS=serving, 1 server");
    expect(lines[1]).toBe("WATCHDOG=1 READY=1 STATUS=serving, 2 servers");
  });

  it("leaves a watchdog meant for another process alone", async () => {
    const out = join(dir, "other");
    const n = new SdNotify(log, { NOTIFY_SOCKET: out, WATCHDOG_USEC: "1000000", WATCHDOG_PID: "1" });
    n.startWatchdog();
    await n.ready("serving");
    await sleep(700);
    n.stopWatchdog();
    expect(readFileSync(out, "utf8")).toBe("READY=1 STATUS=serving\n");
  });
});
