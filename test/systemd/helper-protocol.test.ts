// The privileged helper refuses what a compromised web process might ask: malformed messages, other users,
// root, unknown or forbidden profiles, path tricks. It runs here outside systemd: every request below is
// refused before it would reach systemctl.
import { type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Store } from "../../src/store/store.js";
import { forkHelper } from "./helper-process.js";

const TOKEN = "A".repeat(43);

describe.skipIf(process.getuid?.() !== 0)("privileged helper requests", () => {
  let dir: string;
  let helper: ChildProcess;
  let nextId = 1;
  const output: string[] = [];

  const ask = (msg: Record<string, unknown>, withId = true): Promise<{ ok: boolean; error?: string; result?: unknown }> => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(msg)}`)), 10_000);
      const onMessage = (m: { type: string; id: number; ok: boolean; error?: string; result?: unknown }) => {
        if (m.type !== "result" || (withId && m.id !== id) || (!withId && m.id !== -1)) return;
        clearTimeout(timer);
        helper.off("message", onMessage);
        resolve(m);
      };
      helper.on("message", onMessage);
      helper.send(withId ? { ...msg, id } : msg);
    });
  };

  let config: { spawner: Record<string, unknown> } & Record<string, unknown>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-helper-"));
    config = {
      listen: "http://127.0.0.1:18999",
      state_dir: join(dir, "state"),
      spawner: {
        kind: "systemd",
        hooks_dir: join(dir, "hooks"),
        unix_users: { prefix: "shx-" },
        named_servers: { limit: 1 },
        profiles: [
          { name: "small", title: "small" },
          { name: "big", title: "big", users: ["bob"] },
        ],
      },
    };
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    const store = new Store(join(dir, "state", "slicehub.sqlite"));
    store.ensureUser("alice");
    store.ensureUser("bob");
    store.close();
    helper = await forkHelper(join(dir, "config.json"), output);
  });

  afterAll(() => {
    helper?.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (over: Record<string, unknown>) => ask({ op: "start", user: "alice", server: "", profile: "", port: 20000, token: TOKEN, ...over });

  it.each([
    ["an unknown op", { op: "exec", cmd: "id" }],
    ["a start without a token", { op: "start", user: "alice", server: "", profile: "", port: 20000 }],
    ["an extra field", { op: "start", user: "alice", server: "", profile: "", port: 20000, token: TOKEN, argv: ["/bin/sh"] }],
    ["root as the user", { op: "start", user: "root ", server: "", profile: "", port: 20000, token: TOKEN }],
    ["a user name with a slash", { op: "start", user: "../root", server: "", profile: "", port: 20000, token: TOKEN }],
    ["a server name with a path", { op: "start", user: "alice", server: "../../etc", profile: "", port: 20000, token: TOKEN }],
    ["a privileged port", { op: "start", user: "alice", server: "", profile: "", port: 80, token: TOKEN }],
    ["a token with spaces", { op: "start", user: "alice", server: "", profile: "", port: 20000, token: "a b" }],
    ["a unit outside slicehub", { op: "stop", unit: "ssh.service", timeoutMs: 1000 }],
    ["a unit name with a path", { op: "stop", unit: "slicehub-server-../../x.service", timeoutMs: 1000 }],
    ["a unit name with a newline", { op: "poll", unit: "slicehub-server-a.service\nExecStart=/bin/sh" }],
  ])("refuses %s as malformed", async (_what, msg) => {
    const r = await ask(msg);
    expect(r.ok).toBe(false);
    expect(r.error).toBe("malformed request");
  });

  it("answers a message without an id too (and refuses it)", async () => {
    const r = await ask({ op: "list" }, false);
    expect(r).toMatchObject({ ok: false, error: "malformed request" });
  });

  it("refuses a user the hub does not know", async () => {
    expect(await start({ user: "mallory" })).toMatchObject({ ok: false, error: "no hub user mallory" });
  });

  it("refuses a profile that does not exist, or that this user may not use", async () => {
    expect((await start({ profile: "huge" })).error).toMatch(/profile "huge" does not exist or is not open to alice/);
    expect((await start({ profile: "big" })).error).toMatch(/profile "big" does not exist or is not open to alice/);
  });

  it("re-reads the config for every start: named servers switched off are refused", async () => {
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, spawner: { ...config.spawner, named_servers: { limit: 0 } } }));
    expect(await start({ server: "extra" })).toMatchObject({ ok: false, error: "named servers are not enabled" });
  });
});
