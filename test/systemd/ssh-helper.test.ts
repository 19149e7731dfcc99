// The privileged helper's SSH ops (ssh-*) against what a compromised web process might ask: no uid or account
// name is accepted, only a hub user name, and the helper acts only on accounts that are slicehub's. Runs outside
// systemd: a root process named "sshd" (a copy of sleep) makes this test's own cgroup look like an SSH session's,
// and processes of test accounts in it stand for what a session runs.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Store } from "../../src/store/store.js";
import { forkHelper } from "./helper-process.js";

const hex = randomBytes(2).toString("hex");
const PREFIX = `shy${hex}-`;

describe.skipIf(process.getuid?.() !== 0)("privileged helper: SSH requests", () => {
  let dir: string;
  let helper: ChildProcess;
  let nextId = 1;
  const output: string[] = [];
  const children: ChildProcess[] = [];
  let config: Record<string, unknown>;

  const ask = (msg: Record<string, unknown>): Promise<{ ok: boolean; error?: string; result?: unknown }> => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(msg)}: ${output.join("")}`)), 20_000);
      const onMessage = (m: { type: string; id: number; ok: boolean; error?: string; result?: unknown }) => {
        if (m.type !== "result" || m.id !== id) return;
        clearTimeout(timer);
        helper.off("message", onMessage);
        resolve(m);
      };
      helper.on("message", onMessage);
      helper.send({ ...msg, id });
    });
  };

  const writeConfig = (ssh: boolean) => writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, ssh: { enabled: ssh } }));

  /** A process of `account` (or root) running `file` (sleep under another name), in this test's cgroup. */
  const run = (file: string, account?: string) => {
    const child = account ? spawn("runuser", ["-u", account, "--", file, "600"], { stdio: "ignore" }) : spawn(file, ["600"], { stdio: "ignore" });
    children.push(child);
    return child;
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  /** The pid of `account`'s process named `comm` (runuser forks it). */
  const pidOf = async (account: string, comm: string) => {
    for (let i = 0; i < 100; i++) {
      try {
        return Number(execFileSync("pgrep", ["-u", account, "-x", comm]).toString().trim().split("\n")[0]);
      } catch {
        await sleep(50);
      }
    }
    throw new Error(`no ${comm} of ${account}`);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-ssh-helper-"));
    chmodSync(dir, 0o755);
    config = {
      listen: "http://127.0.0.1:18998",
      state_dir: join(dir, "state"),
      spawner: { kind: "systemd", hooks_dir: join(dir, "hooks"), unix_users: { prefix: PREFIX } },
    };
    writeConfig(false);
    const store = new Store(join(dir, "state", "slicehub.sqlite"));
    store.ensureUser("alice");
    store.ensureUser("mallory");
    store.close();
    // alice's account is slicehub's (its marker names her); mallory's has the prefix but is someone else's.
    execFileSync("useradd", ["--create-home", "--comment", "slicehub alice", `${PREFIX}alice`]);
    execFileSync("useradd", ["--create-home", "--comment", "not slicehub's", `${PREFIX}mallory`]);
    for (const name of ["sshd", "work"]) {
      copyFileSync("/bin/sleep", join(dir, name));
      chmodSync(join(dir, name), 0o755);
    }
    helper = await forkHelper(join(dir, "config.json"), output);
  });

  afterAll(() => {
    for (const c of children) c.kill("SIGKILL");
    for (const name of [`${PREFIX}alice`, `${PREFIX}mallory`]) {
      try {
        execFileSync("pkill", ["-KILL", "-u", name], { stdio: "ignore" });
      } catch {
        // none left
      }
      try {
        execFileSync("userdel", ["-r", name], { stdio: "ignore" });
      } catch {
        // userdel exits non-zero without a mail spool; the account is gone anyway
      }
    }
    helper?.disconnect();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ["a uid", { op: "ssh-end", user: "alice", uid: 0 }],
    ["an account name", { op: "ssh-end", user: "alice", account: "root" }],
    ["a Unix account as the user", { op: "ssh-end", user: `${PREFIX}alice ` }],
    ["a user name with a slash", { op: "ssh-end", user: "../root" }],
    ["no user", { op: "ssh-end" }],
    ["uids to count", { op: "ssh-sessions", users: [0] }],
    ["more users than any hub has", { op: "ssh-sessions", users: Array.from({ length: 100_001 }, (_, i) => `u${i}`) }],
    ["a journal cursor with a blank", { op: "ssh-logins", cursor: "s=1 --since" }],
    ["limits with a user", { op: "ssh-limits", user: "alice" }],
  ])("refuses %s as malformed", async (_what, msg) => {
    const r = await ask(msg);
    expect(r).toMatchObject({ ok: false, error: "malformed request" });
  });

  it("ends the sessions of slicehub's account only, and only what runs in an sshd cgroup", async () => {
    run(join(dir, "sshd")); // root "sshd": this cgroup now holds SSH sessions
    run(join(dir, "sshd"), `${PREFIX}alice`); // her connection's own sshd
    run(join(dir, "work"), `${PREFIX}alice`); // what her session runs
    run(join(dir, "work"), `${PREFIX}mallory`);
    const [aliceSshd, aliceWork, malloryWork] = await Promise.all([pidOf(`${PREFIX}alice`, "sshd"), pidOf(`${PREFIX}alice`, "work"), pidOf(`${PREFIX}mallory`, "work")]);

    const counted = await ask({ op: "ssh-sessions", users: ["alice", "mallory", "nobody"] });
    expect(counted.ok, counted.error).toBe(true);
    const usage = counted.result as Record<string, { sessions: number; memoryBytes: number; cpuSeconds: number }>;
    expect(Object.keys(usage)).toEqual(["alice"]);
    expect(usage.alice!.sessions).toBe(1);
    expect(usage.alice!.memoryBytes).toBeGreaterThan(0);

    // mallory's account is not slicehub's: nothing is done to it.
    expect(await ask({ op: "ssh-end", user: "mallory" })).toMatchObject({ ok: true, result: { sessions: 0 } });
    expect(alive(malloryWork)).toBe(true);

    expect(await ask({ op: "ssh-end", user: "alice" })).toMatchObject({ ok: true, result: { sessions: 1 } });
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && (alive(aliceSshd) || alive(aliceWork))) await sleep(50);
    expect(alive(aliceSshd)).toBe(false);
    expect(alive(aliceWork)).toBe(false);
    expect(alive(malloryWork)).toBe(true);
  });

  it("prepares an account only with SSH on, and only for a known hub user", async () => {
    expect(await ask({ op: "ssh-prepare", user: "alice" })).toMatchObject({ ok: false, error: "ssh.enabled is false" });
    writeConfig(true);
    expect(await ask({ op: "ssh-prepare", user: "eve" })).toMatchObject({ ok: false, error: "no hub user eve" });
    // mallory is a hub user, but the account with her name is not slicehub's to use.
    expect((await ask({ op: "ssh-prepare", user: "mallory" })).error).toMatch(/already exists and was not created by slicehub/);
  });
});
