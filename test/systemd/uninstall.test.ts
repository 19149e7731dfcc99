// `slicehub uninstall` in a real systemd booted in a private pid+mount namespace: install, slicehub.service
// started by systemd, a user's server (the real jupyterhub-singleuser) and a terminal unit, SSH on; then
// uninstall. Units, servers, the runtime directory, sshd's drop-in and keys command and the user-slice limits
// go, sshd -T for every account is as before install; the managed account and its home, the database and the
// config stay, and the account is locked: a key planted in its ~/.ssh/authorized_keys does not log in (while an
// ordinary account's still does). A second run finds nothing left. With --remove-homes --remove-data
// --remove-config --yes the account, its home, the state directory, the service user and the config go, and an
// account with the prefix that slicehub did not make stays.
//
// As in ssh.e2e.test.ts, an overlay over /etc/ssh, /etc/systemd and /usr/local inside the sandbox keeps install's
// and uninstall's file work there.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { Browser, CLI, ROOT, SINGLEUSER } from "../e2e/harness.js";
import { installArgs, removeAccounts, runSsh, SSH, sshArgs, startHubService, startSshd, SystemdSandbox } from "./sandbox.js";

const SSHD = "/usr/sbin/sshd";
const skip =
  SystemdSandbox.unavailable() ??
  (existsSync(SINGLEUSER) ? undefined : `${SINGLEUSER} is not installed`) ??
  (!existsSync(SSHD) ? `${SSHD} is not installed (openssh-server)` : !existsSync(SSH) ? `${SSH} is not installed (openssh-client)` : undefined);
if (skip) console.warn(`skipping the uninstall tests: ${skip}`);

const hex = randomBytes(2).toString("hex");
const SERVICE_USER = `sus${hex}`;
const PREFIX = `suu${hex}-`;
const OUTSIDER = `suo${hex}`;
/** An account with the prefix that slicehub did not make: never slicehub's to lock or remove. */
const SQUATTER = `${PREFIX}squat`;
const ALICE = `${PREFIX}alice`;

describe.skipIf(skip !== undefined)("slicehub uninstall in a real systemd", () => {
  let sb: SystemdSandbox;
  let dir: string;
  let etc: string;
  let url: string;
  let sshPort: number;
  const before: Record<string, string> = {};
  let aliceHome = "";
  let alice: Browser;

  const sh = (argv: string[], what?: string) => sb.run(argv, { what, timeoutMs: 120_000 });
  const show = (unit: string, ...props: string[]) => sb.show(unit, ...props);
  const journal = () => sb.exec(["journalctl", "-u", "slicehub", "-u", "slicehub-helper", "--no-pager", "-n", "80", "-o", "cat"]).then((r) => r.stdout);
  const sshdT = (user: string) => sh([SSHD, "-T", "-C", `user=${user},host=client.example.org,addr=192.0.2.7`]);
  const exists = (account: string) => {
    try {
      execFileSync("getent", ["passwd", account], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };
  const key = (name: string) => join(dir, `key-${name}`);
  const ssh = (user: string, keyName: string) => runSsh(sshArgs(key(keyName), sshPort, user), "true");
  const uninstall = (...flags: string[]) =>
    sb.exec([process.execPath, CLI, "uninstall", "--config", join(etc, "config.json"), "--unit-dir", "/run/systemd/system", ...flags], { timeoutMs: 180_000 });

  beforeAll(async () => {
    dir = mkdtempSync("/var/lib/slicehub-uninstall-test-");
    chmodSync(dir, 0o755);
    etc = join(dir, "etc");
    for (const name of ["alice", "outsider"]) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}@test`, "-f", key(name)]);
    execFileSync("useradd", ["--create-home", "--comment", "slicehub test outsider", OUTSIDER]);
    execFileSync("useradd", ["--create-home", "--comment", "not slicehub's", SQUATTER]);
    execFileSync("sh", ["-c", `mkdir -p /home/${OUTSIDER}/.ssh && cp ${key("outsider")}.pub /home/${OUTSIDER}/.ssh/authorized_keys && chown -R ${OUTSIDER}: /home/${OUTSIDER}/.ssh && chmod 700 /home/${OUTSIDER}/.ssh`]);

    sb = await SystemdSandbox.boot({ keep: [ROOT] });
    url = `http://127.0.0.1:${await freePort()}`;
    sshPort = await freePort();
    await startSshd(sb, { sshd: SSHD, port: sshPort, logind: false });
    for (const user of ["root", OUTSIDER, SQUATTER, ALICE]) before[user] = await sshdT(user);

    const installCmd = installArgs(dir, SERVICE_USER);
    await sh(installCmd);
    writeFileSync(
      join(etc, "config.json"),
      JSON.stringify({
        listen: url,
        state_dir: join(dir, "state"),
        run_as: SERVICE_USER,
        log_level: "debug",
        auth: { kind: "dev" },
        ssh: { enabled: true, port: sshPort },
        spawner: { kind: "systemd", cmd: [SINGLEUSER], start_timeout_s: 90, unix_users: { prefix: PREFIX }, profiles: [{ name: "small", title: "Small", memory: "1G", tasks: 300 }] },
      }),
    );
    const second = await sh(installCmd);
    expect(second).toMatch(/wrote \/etc\/ssh\/sshd_config\.d\/slicehub\.conf/);
    await startHubService(sb, dir);
    await sb.waitForHub(url);

    // Alice's server, started through the API as her browser does.
    alice = new Browser(url);
    await alice.login("alice");
    const csrf = await alice.csrf();
    const res = await alice.request("/hub/api/users/alice/server", { method: "POST", headers: { "content-type": "application/json", "x-xsrftoken": csrf }, body: "{}" });
    expect([201, 202], await res.text()).toContain(res.status);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const model = (await (await alice.request(`/hub/api/users/alice?_xsrf=${encodeURIComponent(csrf)}`)).json()) as { servers?: Record<string, { ready: boolean }> };
      if (model.servers?.[""]?.ready) break;
      if (Date.now() > deadline) throw new Error(`alice's server did not start:\n${await journal()}`);
      await sleep(250);
    }
    // A terminal unit as the helper names them (opening one needs a websocket; the unit is what uninstall sees).
    await sh(["systemd-run", "--unit", `slicehub-terminal-alice-${hex}aaaa.service`, "--slice", "slicehub.slice", "sleep", "600"]);
    // What a user could do from their server: a key in ~/.ssh/authorized_keys, which the drop-in ignores.
    aliceHome = execFileSync("getent", ["passwd", ALICE]).toString().split(":")[5]!;
    execFileSync("sh", ["-c", `mkdir -p ${aliceHome}/.ssh && cp ${key("alice")}.pub ${aliceHome}/.ssh/authorized_keys && chown -R ${ALICE}: ${aliceHome}/.ssh && chmod 700 ${aliceHome}/.ssh`]);
  }, 300_000);

  afterAll(async () => {
    if (sb) {
      if (process.env.SLICEHUB_TEST_JOURNAL) console.log(await journal());
      await sb.stop();
    }
    removeAccounts((name) => name.startsWith(PREFIX) || name === SERVICE_USER || name === OUTSIDER);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("--dry-run lists what would go and changes nothing", async () => {
    const r = await uninstall("--dry-run");
    expect(r.code, r.stderr).toBe(0);
    console.log(`slicehub uninstall --dry-run:\n${r.stdout}`);
    expect(r.stdout).toMatch(/^would stop slicehub\.service$/m);
    expect(r.stdout).toMatch(/^would remove \/run\/systemd\/system\/slicehub\.service$/m);
    expect(r.stdout).toMatch(/^would stop slicehub-server-alice\.service$/m);
    expect(r.stdout).toMatch(new RegExp(`^would stop slicehub-terminal-alice-${hex}aaaa\\.service$`, "m"));
    expect(r.stdout).toMatch(/^would remove \/etc\/ssh\/sshd_config\.d\/slicehub\.conf and \/usr\/local\/libexec\/slicehub\/authorized-keys, reload sshd$/m);
    expect(r.stdout).toMatch(new RegExp(`^would lock ${ALICE} \\(hub user alice\\)`, "m"));
    expect(r.stdout).toMatch(/^would keep .*state \(the database; --remove-data removes it\)$/m);
    expect(r.stdout).not.toContain(SQUATTER);
    expect((await show("slicehub.service", "ActiveState")).ActiveState).toBe("active");
    expect((await show("slicehub-server-alice.service", "ActiveState")).ActiveState).toBe("active");
    expect((await sb.exec(["test", "-e", "/etc/ssh/sshd_config.d/slicehub.conf"])).code).toBe(0);
  });

  it("refuses the --remove-* options without --yes when there is no terminal to ask on, changing nothing", async () => {
    const r = await uninstall("--remove-homes", "--remove-data");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/delete data for good: add --yes/);
    expect((await show("slicehub.service", "ActiveState")).ActiveState).toBe("active");
    expect(exists(ALICE)).toBe(true);
  });

  it("backup while slicehub.service runs; restore refused until it stops, then owned by run_as; the restarted hub adopts alice's server", async () => {
    const cfg = join(etc, "config.json");
    const file = join(dir, "hub-backup.sqlite");
    const backup = await sb.exec([process.execPath, CLI, "backup", file, "--config", cfg], { timeoutMs: 120_000 });
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stdout).toMatch(/1 server recorded as running \(alice\); integrity ok/);
    const refused = await sb.exec([process.execPath, CLI, "restore", file, "--config", cfg]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/slicehub\.service is running: stop it first/);

    await sh(["systemctl", "stop", "slicehub.service"]);
    const r = await sb.exec([process.execPath, CLI, "restore", file, "--config", cfg], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kept the previous database as .*before-restore-/);
    const [owner, mode] = (await sh(["stat", "-c", "%U %a", join(dir, "state", "slicehub.sqlite")])).trim().split(" ");
    expect(owner).toBe(SERVICE_USER);
    expect(mode).toBe("600");

    await sh(["systemctl", "start", "slicehub.service"]);
    await sb.waitForHub(url);
    const deadline = Date.now() + 30_000;
    while (!(await journal()).match(/adopted running server.*alice/) && Date.now() < deadline) await sleep(200);
    expect(await journal()).toMatch(/adopted running server.*alice/);
    const csrf = await alice.csrf();
    const model = (await (await alice.request(`/hub/api/users/alice?_xsrf=${encodeURIComponent(csrf)}`)).json()) as { servers?: Record<string, { ready: boolean }> };
    expect(model.servers?.[""]?.ready).toBe(true);
  }, 180_000);

  it("removes units, servers and sshd's drop-in; keeps homes, the database and the config; locks the account", async () => {
    const uid = Number(execFileSync("id", ["-u", ALICE]).toString().trim());
    expect((await sb.exec(["test", "-e", `/etc/systemd/system/user-${uid}.slice.d/50-slicehub.conf`])).code).toBe(0);
    const r = await uninstall();
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    const out = r.stdout;
    console.log(`slicehub uninstall:\n${out}`);
    for (const line of [
      "stopped slicehub.service",
      "removed /run/systemd/system/slicehub.service",
      "stopped slicehub-server-alice.service",
      `stopped slicehub-terminal-alice-${hex}aaaa.service`,
      "removed /run/slicehub",
      "removed /etc/ssh/sshd_config.d/slicehub.conf",
      "removed /usr/local/libexec/slicehub/authorized-keys",
      "reloaded ssh.service",
      `removed /etc/systemd/system/user-${uid}.slice.d/50-slicehub.conf`,
      "systemctl daemon-reload",
    ]) {
      expect(out, line).toMatch(new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`, "m"));
    }
    expect(out).toMatch(new RegExp(`^locked ${ALICE} \\(expired\\)`, "m"));
    expect(out).toMatch(new RegExp(`^kept 1 Unix account and their homes: ${ALICE} `, "m"));
    expect(out).toMatch(/^kept .*\/state \(the database; --remove-data removes it\)$/m);

    for (const unit of ["slicehub.service", "slicehub-helper.service", "slicehub-server-alice.service", `slicehub-terminal-alice-${hex}aaaa.service`]) {
      // A stopped transient unit may stay loaded (inactive) until systemd collects it.
      expect((await show(unit, "ActiveState")).ActiveState, unit).toBe("inactive");
    }
    expect((await show("slicehub.service", "LoadState")).LoadState).toBe("not-found");
    expect((await sb.exec(["pgrep", "-u", ALICE])).code, "no process of alice's is left").toBe(1);
    for (const path of ["/run/slicehub", "/etc/ssh/sshd_config.d/slicehub.conf", "/usr/local/libexec/slicehub", `/etc/systemd/system/user-${uid}.slice.d/50-slicehub.conf`]) {
      expect((await sb.exec(["test", "-e", path])).code, path).toBe(1);
    }
    // sshd: every account exactly as before install.
    for (const user of Object.keys(before)) expect(await sshdT(user), user).toBe(before[user]);
    // Kept: her account and home, the database, the config, the service user.
    expect(exists(ALICE)).toBe(true);
    expect(existsSync(aliceHome)).toBe(true);
    expect(existsSync(join(dir, "state", "slicehub.sqlite"))).toBe(true);
    expect(existsSync(join(etc, "config.json"))).toBe(true);
    expect(exists(SERVICE_USER)).toBe(true);
    expect(exists(SQUATTER)).toBe(true);
  }, 240_000);

  it("a key alice planted in her ~/.ssh/authorized_keys does not log her in after the uninstall; an ordinary account's does", async () => {
    const outsider = await ssh(OUTSIDER, "outsider");
    expect(outsider.code, outsider.stderr).toBe(0);
    const planted = await ssh(ALICE, "alice");
    expect(planted.code).not.toBe(0);
    const expire = execFileSync("getent", ["shadow", ALICE]).toString().split(":")[7];
    expect(expire).toBe("1");
    // The lock is what stops it: unlocked as the help says, the planted key works; then locked again.
    await sh(["usermod", "--expiredate", "", ALICE]);
    const unlocked = await ssh(ALICE, "alice");
    expect(unlocked.code, unlocked.stderr).toBe(0);
    await sh(["usermod", "--expiredate", "1", ALICE]);
  });

  it("runs again with nothing left to do", async () => {
    const r = await uninstall();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^nothing left to remove: slicehub is not installed on this host$/m);
    expect(r.stdout).not.toMatch(/^(stopped|removed|locked) /m);
  });

  it("with --remove-homes --remove-data --remove-config --yes: the account, its home, the state, the service user and the config go", async () => {
    const r = await uninstall("--remove-homes", "--remove-data", "--remove-config", "--yes");
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    console.log(`slicehub uninstall --remove-homes --remove-data --remove-config --yes:\n${r.stdout}`);
    expect(r.stdout).toMatch(new RegExp(`^removed Unix account ${ALICE} and ${aliceHome.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`, "m"));
    expect(r.stdout).toMatch(new RegExp(`^removed the service user ${SERVICE_USER}$`, "m"));
    expect(exists(ALICE)).toBe(false);
    expect(existsSync(aliceHome)).toBe(false);
    expect(existsSync(join(dir, "state"))).toBe(false);
    expect(exists(SERVICE_USER)).toBe(false);
    expect(existsSync(join(etc, "config.json"))).toBe(false);
    expect(existsSync(join(etc, "roothooks.d"))).toBe(false);
    expect(existsSync(etc)).toBe(false);
    // Not slicehub's: the squatter with the prefix, and the ordinary account.
    expect(exists(SQUATTER)).toBe(true);
    expect(exists(OUTSIDER)).toBe(true);
    // Left in the test's directory: the backup made above and the test's keys.
    expect(readdirSync(dir).filter((e) => !e.startsWith("key-"))).toEqual(["hub-backup.sqlite"]);

    const again = await uninstall("--remove-homes", "--remove-data", "--remove-config", "--yes");
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^nothing left to remove/m);
  }, 120_000);
});
