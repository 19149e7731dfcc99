// Real useradd/userdel against this machine's passwd database (as root; skipped otherwise). Every account and
// group made here starts with a per-run prefix, and afterAll deletes all of them whatever happened.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AccountError,
  ensureAccount,
  lookupAccount,
  unixAccountName,
  type UnixUsersConfig,
} from "../../spawners/accounts.js";
import type { Logger } from "../../src/log.js";

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const PREFIX = `sht${randomBytes(2).toString("hex")}-`;
const GROUP = `${PREFIX}grp`;

function recorder(): { log: Logger; infos: string[] } {
  const infos: string[] = [];
  const log: Logger = { debug() {}, info: (msg) => void infos.push(msg), warn() {}, error() {}, child: () => log };
  return { log, infos };
}

const sha6 = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 6);

describe("unixAccountName", () => {
  it("is the prefix plus the hub name", () => {
    expect(unixAccountName("jupyter-", "ada.l_x-1")).toBe("jupyter-ada.l_x-1");
  });

  it("keeps a name of exactly 32 characters", () => {
    const hub = "a".repeat(24);
    expect(unixAccountName("jupyter-", hub)).toBe(`jupyter-${hub}`);
    expect(unixAccountName("jupyter-", hub)).toHaveLength(32);
  });

  it("shortens a longer name to 32 characters with a hash of the hub name", () => {
    const hub = "b".repeat(25);
    const name = unixAccountName("jupyter-", hub);
    expect(name).toBe(`jupyter-${"b".repeat(17)}-${sha6(hub)}`);
    expect(name).toHaveLength(32);
  });

  it("maps long names that differ only at the end to different accounts", () => {
    const a = unixAccountName("jupyter-", `${"c".repeat(40)}1`);
    const b = unixAccountName("jupyter-", `${"c".repeat(40)}2`);
    expect(a).not.toBe(b);
    expect(a.slice(0, 25)).toBe(b.slice(0, 25));
  });

  it("puts _ before a leading digit (empty prefix), which no other hub name can produce", () => {
    expect(unixAccountName("", "1ada")).toBe("_1ada");
    expect(unixAccountName("", "ada")).toBe("ada");
    expect(unixAccountName("", "u1ada")).not.toBe(unixAccountName("", "1ada"));
  });

  it("never ends in '.' (chown would read it as user.group)", () => {
    const name = unixAccountName("jupyter-", "bob.");
    expect(name).toBe(`jupyter-bob.-${sha6("bob.")}`);
    expect(name).not.toBe(unixAccountName("jupyter-", "bob"));
  });

  it("refuses hub names with characters Unix names cannot have", () => {
    expect(() => unixAccountName("jupyter-", "Ada")).toThrow(AccountError);
    expect(() => unixAccountName("jupyter-", "a:b")).toThrow(AccountError);
    expect(() => unixAccountName("jupyter-", "a/b")).toThrow(AccountError);
  });
});

describe.skipIf(!isRoot)("lookupAccount", () => {
  it("parses the passwd entry", async () => {
    expect(await lookupAccount("root")).toEqual({
      name: "root", uid: 0, gid: 0, home: "/root", shell: expect.any(String), gecos: expect.any(String), createdBySlicehub: false,
    });
  });

  it("returns undefined for a missing name, and for a uid given as a name", async () => {
    expect(await lookupAccount(`${PREFIX}nobody-here`)).toBeUndefined();
    expect(await lookupAccount("0")).toBeUndefined();
  });
});

describe.skipIf(!isRoot)("ensureAccount", () => {
  let homes: string;
  const cfg = (over: Partial<UnixUsersConfig> = {}): UnixUsersConfig => ({
    prefix: PREFIX, create: true, home: homes, shell: "/bin/sh", groups: [], adopt_existing: false, ...over,
  });

  beforeAll(async () => {
    homes = await mkdtemp(path.join(os.tmpdir(), "slicehub-homes-"));
    await run("groupadd", [GROUP]);
  });

  afterAll(async () => {
    const { stdout } = await run("getent", ["passwd"]);
    const ours = stdout.split("\n").map((l) => l.split(":")[0]!).filter((n) => n.startsWith(PREFIX));
    for (const name of ours) await run("userdel", ["-r", name]).catch(() => undefined);
    await run("groupdel", [GROUP]).catch(() => undefined);
    await rm(homes, { recursive: true, force: true });
    for (const name of ours) expect(await lookupAccount(name)).toBeUndefined();
  });

  it("creates the account with a private home, the marker, the shell and the groups", async () => {
    const { log, infos } = recorder();
    const account = await ensureAccount("ada", cfg({ groups: [GROUP] }), log);
    expect(account).toMatchObject({ name: `${PREFIX}ada`, home: path.join(homes, `${PREFIX}ada`), shell: "/bin/sh", createdBySlicehub: true });
    expect(account.uid).toBeGreaterThanOrEqual(1000);
    expect(infos).toEqual(["created Unix account"]);

    const st = await stat(account.home);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    expect([st.uid, st.gid]).toEqual([account.uid, account.gid]);

    const { stdout: entry } = await run("getent", ["passwd", account.name]);
    expect(entry.trim().split(":")[4]).toBe("slicehub ada");
    const { stdout: groups } = await run("id", ["-nG", account.name]);
    expect(groups.trim().split(" ").sort()).toEqual([account.name, GROUP].sort());
  });

  it("creates an account for a long hub name under its shortened name", async () => {
    const hub = `long-${"x".repeat(40)}`;
    const account = await ensureAccount(hub, cfg(), recorder().log);
    expect(account.name).toBe(unixAccountName(PREFIX, hub));
    expect(account.name).toHaveLength(32);
    expect(account.createdBySlicehub).toBe(true);
  });

  it("reuses an account it created, without a second useradd", async () => {
    const first = await ensureAccount("bea", cfg(), recorder().log);
    const { log, infos } = recorder();
    const again = await ensureAccount("bea", cfg({ create: false }), log);
    expect(again).toEqual(first);
    expect(infos).toEqual([]);
  });

  it("refuses an account it did not create unless adopt_existing is set", async () => {
    await run("useradd", ["--no-create-home", `${PREFIX}cy`]);
    await expect(ensureAccount("cy", cfg(), recorder().log)).rejects.toThrow(
      new AccountError(`Unix account ${PREFIX}cy already exists and was not created by slicehub; an admin can set spawner.unix_users.adopt_existing to let hub user cy use it`),
    );
    const adopted = await ensureAccount("cy", cfg({ adopt_existing: true }), recorder().log);
    expect(adopted).toMatchObject({ name: `${PREFIX}cy`, createdBySlicehub: false });
  });

  it("refuses an account slicehub created for another hub user, even with adopt_existing", async () => {
    await run("useradd", ["--no-create-home", "--comment", "slicehub someone-else", `${PREFIX}dee`]);
    await expect(ensureAccount("dee", cfg({ adopt_existing: true }), recorder().log)).rejects.toThrow(
      `Unix account ${PREFIX}dee was created by slicehub for hub user someone-else, not dee`,
    );
  });

  it.each(["root", "daemon", "nobody"])("refuses the system account %s", async (hub) => {
    await expect(ensureAccount(hub, cfg({ prefix: "", adopt_existing: true }), recorder().log)).rejects.toThrow(
      new AccountError(`Unix account ${hub} is a system account; refusing to run a server as it`),
    );
  });

  it("does not create an account when create is false", async () => {
    await expect(ensureAccount("eve", cfg({ create: false }), recorder().log)).rejects.toThrow(
      new AccountError(`no Unix account ${PREFIX}eve for hub user eve, and spawner.unix_users.create is false`),
    );
    expect(await lookupAccount(`${PREFIX}eve`)).toBeUndefined();
  });

  it("names a missing supplementary group and creates nothing", async () => {
    const missing = `${PREFIX}nogrp`;
    await expect(ensureAccount("fay", cfg({ groups: [GROUP, missing] }), recorder().log)).rejects.toThrow(
      new AccountError(`group ${missing} in spawner.unix_users.groups does not exist`),
    );
    expect(await lookupAccount(`${PREFIX}fay`)).toBeUndefined();
  });

  it("refuses a home directory left from someone else and removes the new account", async () => {
    const home = path.join(homes, `${PREFIX}gus`);
    await mkdir(home);
    await expect(ensureAccount("gus", cfg(), recorder().log)).rejects.toThrow(/existed before and is not owned by it/);
    expect(await lookupAccount(`${PREFIX}gus`)).toBeUndefined();
    expect((await stat(home)).uid).toBe(0);
  });

  it("runs one useradd for concurrent calls for the same user", async () => {
    const { log, infos } = recorder();
    const accounts = await Promise.all([1, 2, 3].map(() => ensureAccount("hal", cfg(), log)));
    expect(infos).toEqual(["created Unix account"]);
    expect(new Set(accounts.map((a) => a.uid)).size).toBe(1);
  });

  it("uses the account another process created between lookup and useradd (useradd exit 9)", async () => {
    // A useradd first on PATH that lets "another process" create the account before running the real one.
    const { stdout: realUseradd } = await run("sh", ["-c", "command -v useradd"]);
    const bin = path.join(homes, "bin");
    await mkdir(bin);
    await writeFile(
      path.join(bin, "useradd"),
      `#!/bin/sh\nfor name; do :; done\n${realUseradd.trim()} --comment "slicehub ivy" "$name"\nexec ${realUseradd.trim()} "$@"\n`,
      { mode: 0o755 },
    );
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}:${savedPath}`;
    try {
      const { log, infos } = recorder();
      const account = await ensureAccount("ivy", cfg(), log);
      expect(account).toMatchObject({ name: `${PREFIX}ivy`, gecos: "slicehub ivy", createdBySlicehub: true });
      expect(infos).toEqual([]);
    } finally {
      process.env.PATH = savedPath;
    }
  });
});
