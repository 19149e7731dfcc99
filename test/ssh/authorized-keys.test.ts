// sshd's AuthorizedKeysCommand (main/authorized-keys.ts): who gets which keys, in-process with a stand-in for
// the passwd lookup (so no Unix accounts are needed), and the built dist/authorized-keys.js as a child process
// for everything the real getent can answer without root: root and other existing accounts, unknown ones, a
// broken config or database. The positive path with real accounts and a real service user is in
// test/systemd/authorized-keys.test.ts.
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizedKeysFor, AuthorizedKeysError, KEY_OPTIONS } from "../../main/authorized-keys-lookup.js";
import { parseConfigText } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import { parsePublicKey } from "../../src/ssh/keys.js";
import { databaseFile } from "../../src/store/reader.js";
import { Store } from "../../src/store/store.js";
import { unixAccountName, type Account } from "../../spawners/accounts.js";

const ROOT = join(import.meta.dirname, "../..");
const COMMAND = join(ROOT, "dist/authorized-keys.js");
const run = promisify(execFile);

let dir: string;
let store: Store;
const pub: Record<string, string> = {};
const LONG = "a-very-long-hub-user-name-that-needs-shortening";

function configText(extra: object = {}): string {
  return JSON.stringify({
    state_dir: join(dir, "state"),
    log_level: "error",
    auth: { kind: "dev", allowed_users: ["alice", "bob", "dave", "oot", "aemon", "mallory", LONG], admin_users: [] },
    spawner: { kind: "systemd" },
    ssh: { enabled: true },
    ...extra,
  });
}
function cfg(extra: object = {}): Config {
  const r = parseConfigText(configText(extra), "config.json", dir);
  if (!r.ok) throw new Error(r.errors.join("\n"));
  return r.config;
}

/** A passwd entry as slicehub's useradd makes it for `hub` (or with the given uid and GECOS). */
const account = (name: string, over: Partial<Account> = {}): Account => {
  const gecos = over.gecos ?? `slicehub ${name.replace(/^jupyter-/, "")}`;
  return { name, uid: 1500, gid: 1500, home: `/home/${name}`, shell: "/bin/bash", gecos, createdBySlicehub: gecos.startsWith("slicehub "), ...over };
};
const accounts = new Map<string, Account>();
const deps = { account: async (name: string) => accounts.get(name) };

const addKey = (user: string, line: string) => {
  const k = parsePublicKey(line);
  if (!k.ok) throw new Error(k.message);
  const u = store.getUser(user) ?? store.ensureUser(user, false);
  return store.addSshKey({ userId: u.id, algorithm: k.key.type, key: k.key.base64, comment: k.key.comment, fingerprint: k.key.fingerprint, bits: k.key.bits })!;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "slicehub-authorized-keys-"));
  for (const name of ["a1", "a2", "b", "c", "d", "r", "l"]) {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-C", `${name}@laptop`, "-N", "", "-f", join(dir, name)]);
    pub[name] = readFileSync(join(dir, `${name}.pub`), "utf8").trim();
  }
  store = new Store(databaseFile(join(dir, "state")));
  addKey("alice", pub.a1!);
  addKey("alice", `${pub.a2!.split(" ").slice(0, 2).join(" ")} evil comment`);
  addKey("bob", pub.b!);
  store.setBlocked(store.getUser("bob")!.id, true);
  addKey("carol", pub.c!); // not in allowed_users
  addKey("dave", pub.d!);
  // Hub users "oot" and "aemon": under the prefixes "r" and "d" their accounts would be root and daemon.
  addKey("oot", pub.r!);
  addKey("aemon", pub.r!);
  addKey(LONG, pub.l!);
  store.ensureUser("mallory", false);
  for (const name of ["jupyter-alice", "jupyter-bob", "jupyter-carol", unixAccountName("jupyter-", LONG)]) {
    accounts.set(name, account(name, name.startsWith("jupyter-a-very") ? { gecos: `slicehub ${LONG}` } : {}));
  }
  // dave's account exists but was not made by slicehub (an admin's, or someone else's).
  accounts.set("jupyter-dave", account("jupyter-dave", { gecos: "Dave Admin,,," }));
  // mallory's name maps to an account slicehub made for alice.
  accounts.set("jupyter-mallory", account("jupyter-mallory", { gecos: "slicehub alice" }));
  accounts.set("root", account("root", { uid: 0, gid: 0, gecos: "root" }));
  accounts.set("daemon", account("daemon", { uid: 1, gid: 1, gecos: "daemon" }));
});

afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("authorizedKeysFor", () => {
  it("gives a hub user's account their keys, each with fixed options and a fixed comment", async () => {
    const r = await authorizedKeysFor(cfg(), "jupyter-alice", deps);
    expect(r.lines.length).toBe(2);
    const [one, two] = r.lines;
    const ids = store.listSshKeys(store.getUser("alice")!.id).map((k) => k.id);
    expect(one).toBe(`${KEY_OPTIONS} ${pub.a1!.split(" ").slice(0, 2).join(" ")} slicehub:alice:${ids[0]}`);
    expect(two).toBe(`${KEY_OPTIONS} ${pub.a2!.split(" ").slice(0, 2).join(" ")} slicehub:alice:${ids[1]}`);
    expect(KEY_OPTIONS).toBe("restrict,pty,port-forwarding");
  });

  it("maps a shortened account name back to exactly its hub user", async () => {
    const name = unixAccountName("jupyter-", LONG);
    expect(name).toMatch(/^jupyter-a-very-long-hub-u-[0-9a-f]{6}$/);
    const r = await authorizedKeysFor(cfg(), name, deps);
    expect(r.lines).toEqual([expect.stringContaining(pub.l!.split(" ")[1]!)]);
    // The same stem with another hash is nobody's.
    expect((await authorizedKeysFor(cfg(), name.replace(/[0-9a-f]{6}$/, "000000"), deps)).lines).toEqual([]);
  });

  it("gives nothing to a blocked user, a user the allow-list no longer has, or an unknown account", async () => {
    expect(await authorizedKeysFor(cfg(), "jupyter-bob", deps)).toMatchObject({ lines: [], why: expect.stringMatching(/blocked/) });
    expect(await authorizedKeysFor(cfg(), "jupyter-carol", deps)).toMatchObject({ lines: [], why: expect.stringMatching(/allowed_users/) });
    expect(await authorizedKeysFor(cfg(), "jupyter-nobody", deps)).toMatchObject({ lines: [], why: expect.stringMatching(/no hub user/) });
    // A hub user whose account does not exist (yet).
    store.ensureUser("erin", false);
    expect(await authorizedKeysFor(cfg(), "jupyter-erin", deps)).toMatchObject({ lines: [], why: expect.stringMatching(/no Unix account/) });
    // Taken off the allow-list by a config change: the next login is refused without the daemon doing anything.
    expect((await authorizedKeysFor(cfg({ auth: { kind: "dev", allowed_users: ["bob"] } }), "jupyter-alice", deps)).lines).toEqual([]);
  });

  it("gives nothing to root, system accounts, accounts not made by slicehub, or made for another hub user", async () => {
    const r = cfg({ spawner: { kind: "systemd", unix_users: { prefix: "r" } } });
    expect(await authorizedKeysFor(r, "root", deps)).toMatchObject({ lines: [], why: expect.stringMatching(/system account/) });
    const d = cfg({ spawner: { kind: "systemd", unix_users: { prefix: "d", adopt_existing: true } } });
    expect(await authorizedKeysFor(d, "daemon", deps)).toMatchObject({ lines: [], why: expect.stringMatching(/system account/) });
    expect(await authorizedKeysFor(cfg(), "root", deps)).toMatchObject({ lines: [], why: expect.stringMatching(/prefix/) });
    expect(await authorizedKeysFor(cfg(), "jupyter-dave", deps)).toMatchObject({ lines: [], why: expect.stringMatching(/not created by slicehub/) });
    // …unless the config adopts existing accounts, as the spawner would.
    const adopt = cfg({ spawner: { kind: "systemd", unix_users: { adopt_existing: true } } });
    expect((await authorizedKeysFor(adopt, "jupyter-dave", deps)).lines.length).toBe(1);
    expect(await authorizedKeysFor(adopt, "jupyter-mallory", deps)).toMatchObject({ lines: [], why: expect.stringMatching(/created by slicehub for hub user alice/) });
  });

  it("gives nothing when SSH is off or the spawner is local, and refuses names that are no Unix account", async () => {
    expect((await authorizedKeysFor(cfg({ ssh: { enabled: false } }), "jupyter-alice", deps)).lines).toEqual([]);
    expect((await authorizedKeysFor(cfg({ spawner: { kind: "local" }, ssh: { enabled: false } }), "jupyter-alice", deps)).lines).toEqual([]);
    for (const name of ["", "jupyter-alice\nroot", "../jupyter-alice", "JUPYTER-ALICE", "x".repeat(40)]) {
      expect((await authorizedKeysFor(cfg(), name, deps)).lines, JSON.stringify(name)).toEqual([]);
    }
  });

  it("prints only rows that are exactly one valid key (a row written by hand cannot inject a line)", async () => {
    const dave = store.getUser("dave")!;
    const adopt = cfg({ spawner: { kind: "systemd", unix_users: { adopt_existing: true } } });
    const b64 = pub.d!.split(" ")[1]!;
    const insert = store.db.prepare("INSERT INTO ssh_keys (user_id, algorithm, key, comment, fingerprint, bits, created) VALUES (?, ?, ?, '', ?, 256, 0)");
    insert.run(dave.id, "ssh-ed25519", `${b64}\ncommand="sh" ssh-ed25519 ${b64}`, "SHA256:x1");
    insert.run(dave.id, 'command="sh" ssh-ed25519', b64, "SHA256:x2");
    insert.run(dave.id, "ssh-ed25519", `${b64} extra`, "SHA256:x3");
    const r = await authorizedKeysFor(adopt, "jupyter-dave", deps);
    expect(r.lines).toEqual([expect.stringMatching(new RegExp(`^${KEY_OPTIONS} ssh-ed25519 [A-Za-z0-9+/=]+ slicehub:dave:\\d+$`))]);
    store.db.prepare("DELETE FROM ssh_keys WHERE fingerprint LIKE 'SHA256:x%'").run();
  });

  it("throws (no keys) for a database it cannot read", async () => {
    await expect(authorizedKeysFor(cfg({ state_dir: join(dir, "missing") }), "jupyter-alice", deps)).rejects.toThrow(AuthorizedKeysError);
  });
});

describe("dist/authorized-keys.js as a child process", () => {
  const cli = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [COMMAND, ...args], { timeout: 20_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  let file: string;
  beforeAll(() => {
    file = join(dir, "config.json");
    // Prefix "r": hub user "oot" (who has a key) maps to the account root.
    writeFileSync(file, configText({ spawner: { kind: "systemd", unix_users: { prefix: "r", adopt_existing: true } } }));
  });

  it("explains itself with --help, and refuses to run without --config and one user", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/AuthorizedKeysCommand \/usr\/local\/libexec\/slicehub\/authorized-keys %u/);
    expect(help.stdout).toMatch(/--config \/etc\/slicehub\/config\.json --explain jupyter-alice/);
    expect(help.stdout).toMatch(/AuthorizedKeysCommandUser slicehub/);
    for (const args of [[], ["root"], ["--config", file], ["--config", file, "a", "b"], ["--bogus"]]) {
      const r = await cli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
    }
  });

  it("prints nothing and exits 0 for root (hub user oot, with a key, maps to it), an unknown account and an existing non-managed one", async () => {
    for (const user of ["root", "rnobody-here-at-all", "nobody-here-at-all", "daemon", "bin"]) {
      const r = await cli(["--config", file, "--explain", user]);
      expect(r, user).toMatchObject({ code: 0, stdout: "" });
    }
    expect((await cli(["--config", file, "--explain", "root"])).stderr).toMatch(/root: .*system account/);
  });

  it("exits 1 with the reason on stderr and no key for a broken config or database", async () => {
    const broken = join(dir, "broken.json");
    writeFileSync(broken, `{ "spawner": { "kind": "systemd" }, "ssh": { "enabled": tru } }`);
    const bad = await cli(["--config", broken, "root"]);
    expect(bad).toMatchObject({ code: 1, stdout: "" });
    expect(bad.stderr).toMatch(/config is not valid; no keys given/);
    const missing = await cli(["--config", join(dir, "nope.json"), "root"]);
    expect(missing).toMatchObject({ code: 1, stdout: "" });
    expect(missing.stderr).toMatch(/no such file/);
    const noDb = join(dir, "nodb.json");
    writeFileSync(noDb, JSON.stringify({ ...JSON.parse(configText()), state_dir: join(dir, "empty-state") }));
    const r = await cli(["--config", noDb, "jupyter-alice"]);
    expect(r).toMatchObject({ code: 1, stdout: "" });
    expect(r.stderr).toMatch(/cannot open the hub's database .* read-only.*no keys given/);
  });
});
