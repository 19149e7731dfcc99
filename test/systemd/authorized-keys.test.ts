// dist/authorized-keys.js as sshd runs it: as the unprivileged service user, against real Unix accounts made
// the way the systemd spawner makes them (useradd, GECOS "slicehub <hub user>"), and the hub's database owned
// by the service user and opened read-only. Needs root (useradd, runuser); no sshd here (the SSH host side's
// tests run the real one). Also reports the command's wall time.
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KEY_OPTIONS } from "../../main/authorized-keys-lookup.js";
import { parsePublicKey } from "../../src/ssh/keys.js";
import { databaseFile } from "../../src/store/reader.js";
import { Store } from "../../src/store/store.js";

const ROOT = join(import.meta.dirname, "../..");
const COMMAND = join(ROOT, "dist/authorized-keys.js");
const run = promisify(execFile);

const skip =
  process.getuid?.() !== 0
    ? "needs root (useradd, runuser)"
    : !existsSync("/usr/sbin/useradd") || !existsSync("/usr/sbin/runuser")
      ? "needs useradd and runuser"
      : !existsSync(COMMAND)
        ? "needs dist/authorized-keys.js (npm run build)"
        : undefined;
if (skip) console.warn(`skipping the authorized-keys command tests with real accounts: ${skip}`);

const hex = randomBytes(2).toString("hex");
const SERVICE = `skk${hex}`;
const PREFIX = `skt${hex}-`;

describe.skipIf(skip !== undefined)("authorized-keys as the service user with real accounts", () => {
  let dir: string;
  let state: string;
  let store: Store;
  const made: string[] = [];
  const pub: Record<string, string> = {};

  const useradd = (name: string, comment: string, system = false) => {
    execFileSync("useradd", [...(system ? ["--system", "--no-create-home"] : ["--no-create-home"]), "--comment", comment, "--shell", "/bin/bash", "--user-group", name]);
    made.push(name);
  };
  const writeConfig = (name: string, extra: object = {}) => {
    const file = join(dir, name);
    writeFileSync(
      file,
      JSON.stringify({
        state_dir: state,
        run_as: SERVICE,
        auth: { kind: "dev", allowed_users: ["alice", "bob", "dave", "oot"] },
        spawner: { kind: "systemd", unix_users: { prefix: PREFIX } },
        ssh: { enabled: true },
        ...extra,
      }),
      { mode: 0o644 },
    );
    return file;
  };
  /** The command as sshd runs it: as the service user, with the account name as its one argument. */
  const keysFor = async (config: string, account: string) => {
    const started = process.hrtime.bigint();
    try {
      const { stdout, stderr } = await run("runuser", ["-u", SERVICE, "--", process.execPath, COMMAND, "--config", config, account], { timeout: 20_000 });
      return { code: 0, stdout, stderr, ms: Number(process.hrtime.bigint() - started) / 1e6 };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr, ms: Number(process.hrtime.bigint() - started) / 1e6 };
    }
  };
  const addKey = (user: string, line: string) => {
    const k = parsePublicKey(line);
    if (!k.ok) throw new Error(k.message);
    const u = store.getUser(user) ?? store.ensureUser(user, false);
    store.addSshKey({ userId: u.id, algorithm: k.key.type, key: k.key.base64, comment: k.key.comment, fingerprint: k.key.fingerprint, bits: k.key.bits });
  };
  /** Hand the database to the service user, as the daemon running as it would own it. */
  const handOver = () => {
    const uid = Number(execFileSync("id", ["-u", SERVICE]).toString());
    const gid = Number(execFileSync("id", ["-g", SERVICE]).toString());
    chownSync(state, uid, gid);
    for (const f of readdirSync(state)) chownSync(join(state, f), uid, gid);
  };

  beforeAll(() => {
    dir = mkdtempSync("/tmp/slicehub-akc-");
    chmodSync(dir, 0o755);
    state = join(dir, "state");
    mkdirSync(state, { mode: 0o700 });
    for (const name of ["a1", "a2", "b", "c", "d", "r"]) {
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-C", `${name}@laptop`, "-N", "", "-f", join(dir, name)]);
      pub[name] = readFileSync(join(dir, `${name}.pub`), "utf8").trim();
    }
    useradd(SERVICE, "slicehub service (test)", true);
    useradd(`${PREFIX}alice`, "slicehub alice");
    useradd(`${PREFIX}bob`, "slicehub bob");
    useradd(`${PREFIX}carol`, "slicehub carol");
    useradd(`${PREFIX}dave`, "Dave, not made by slicehub");

    store = new Store(databaseFile(state));
    addKey("alice", pub.a1!);
    addKey("alice", pub.a2!);
    addKey("bob", pub.b!);
    store.setBlocked(store.getUser("bob")!.id, true);
    addKey("carol", pub.c!);
    addKey("dave", pub.d!);
    addKey("oot", pub.r!);
    store.close();
    handOver();
  });

  afterAll(() => {
    store?.close();
    for (const name of made.reverse()) {
      try {
        execFileSync("userdel", [name], { stdio: "ignore" });
      } catch {
        // already gone
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("prints a hub user's keys for their account, read-only, as the service user", async () => {
    const config = writeConfig("config.json");
    const times: number[] = [];
    let r = await keysFor(config, `${PREFIX}alice`);
    for (let i = 0; i < 5; i++) {
      r = await keysFor(config, `${PREFIX}alice`);
      times.push(r.ms);
    }
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^${KEY_OPTIONS} ${pub.a1!.split(" ").slice(0, 2).join(" ").replace(/[+/]/g, "\\$&")} slicehub:alice:\\d+$`)),
      expect.stringMatching(new RegExp(`^${KEY_OPTIONS} ${pub.a2!.split(" ").slice(0, 2).join(" ").replace(/[+/]/g, "\\$&")} slicehub:alice:\\d+$`)),
    ]);
    // ssh-keygen reads what it printed as an authorized_keys file (options included).
    const file = join(dir, "authorized_keys");
    writeFileSync(file, r.stdout);
    expect(execFileSync("ssh-keygen", ["-lf", file]).toString().trim().split("\n").length).toBe(2);
    // Read-only: the database files are unchanged, and nothing new is left beside them.
    expect(readdirSync(state).filter((f) => !/^slicehub\.sqlite(-wal|-shm)?$/.test(f))).toEqual([]);
    times.sort((a, b) => a - b);
    console.log(`authorized-keys wall time (runuser + node, 5 runs): median ${times[2]!.toFixed(0)} ms, min ${times[0]!.toFixed(0)} ms, max ${times[4]!.toFixed(0)} ms`);
    // Only a gross regression fails here: on a loaded CI machine the median has been seen at 650 ms.
    expect(times[2]).toBeLessThan(10_000);
  });

  it("prints nothing (exit 0) for a blocked user, one not in allowed_users, an account not made by slicehub, and unknown accounts", async () => {
    const config = writeConfig("config.json");
    for (const account of [`${PREFIX}bob`, `${PREFIX}carol`, `${PREFIX}dave`, `${PREFIX}nobody`, "nobody", SERVICE]) {
      const r = await keysFor(config, account);
      expect(r, account).toMatchObject({ code: 0, stdout: "", stderr: "" });
    }
  });

  it("gives root nothing even when a hub user's name maps to it (prefix r, hub user oot)", async () => {
    const config = writeConfig("root.json", { spawner: { kind: "systemd", unix_users: { prefix: "r", adopt_existing: true } } });
    expect(await keysFor(config, "root")).toMatchObject({ code: 0, stdout: "" });
  });

  it("follows a block and an allow-list change at the next login, without the daemon", async () => {
    const config = writeConfig("config.json");
    expect((await keysFor(writeConfig("fewer.json", { auth: { kind: "dev", allowed_users: ["bob"] } }), `${PREFIX}alice`)).stdout).toBe("");
    store = new Store(databaseFile(state));
    store.setBlocked(store.getUser("alice")!.id, true);
    store.close();
    handOver();
    expect(await keysFor(config, `${PREFIX}alice`)).toMatchObject({ code: 0, stdout: "" });
    store = new Store(databaseFile(state));
    store.setBlocked(store.getUser("alice")!.id, false);
    store.close();
    handOver();
    expect((await keysFor(config, `${PREFIX}alice`)).stdout.trim().split("\n").length).toBe(2);
  });

  it("sees a key the running hub just wrote (the hub, as the service user, holds the database open in WAL mode)", async () => {
    const config = writeConfig("config.json");
    const k = parsePublicKey(pub.c!);
    if (!k.ok) throw new Error(k.message);
    // A stand-in for the daemon: the service user's Store, open, with a fresh key in its write-ahead log.
    const script = `
      const { Store } = await import(${JSON.stringify(join(ROOT, "dist/src/store/store.js"))});
      const store = new Store(${JSON.stringify(databaseFile(state))});
      const alice = store.getUser("alice");
      store.addSshKey({ userId: alice.id, algorithm: ${JSON.stringify(k.key.type)}, key: ${JSON.stringify(k.key.base64)}, comment: "", fingerprint: ${JSON.stringify(k.key.fingerprint)}, bits: 256 });
      process.stdout.write("ready");
      process.stdin.on("end", () => { store.removeSshKey(alice.id, store.listSshKeys(alice.id).at(-1).id); store.close(); });
      process.stdin.resume();
    `;
    const hub = spawn("runuser", ["-u", SERVICE, "--", process.execPath, "--input-type=module", "-e", script], { stdio: ["pipe", "pipe", "inherit"] });
    try {
      await new Promise<void>((resolve, reject) => {
        hub.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
        hub.once("exit", (code) => reject(new Error(`the stand-in hub exited (${code})`)));
      });
      expect(readdirSync(state)).toContain("slicehub.sqlite-wal");
      const r = await keysFor(config, `${PREFIX}alice`);
      expect(r.stderr).toBe("");
      expect(r.stdout.trim().split("\n").length).toBe(3);
      expect(r.stdout).toContain(k.key.base64);
    } finally {
      hub.stdin!.end();
      if (hub.exitCode === null && hub.signalCode === null) await new Promise((resolve) => hub.once("exit", resolve));
    }
    expect((await keysFor(config, `${PREFIX}alice`)).stdout.trim().split("\n").length).toBe(2);
  });

  it("exits 1 with a message and no key for a config it cannot read or a database it cannot open", async () => {
    const secret = writeConfig("secret.json");
    chmodSync(secret, 0o600);
    const unreadable = await keysFor(secret, `${PREFIX}alice`);
    expect(unreadable).toMatchObject({ code: 1, stdout: "" });
    expect(unreadable.stderr).toMatch(/permission denied/);
    const elsewhere = writeConfig("elsewhere.json", { state_dir: join(dir, "no-state") });
    const r = await keysFor(elsewhere, `${PREFIX}alice`);
    expect(r).toMatchObject({ code: 1, stdout: "" });
    expect(r.stderr).toMatch(/cannot open the hub's database/);
  });
});
