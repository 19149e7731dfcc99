// SSH end to end, in a real systemd booted in a private pid+mount namespace, with Debian's openssh-server and
// ssh client: `slicehub install` configures sshd (and nobody else's login changes), a key added on the hub's
// page lets alice in as her Unix account (made for her by the add: she never starts a server) and shows as the
// key's last use, her session is held to her limits, `ssh -L` reaches her own ports, the admin page counts her
// sessions, and removing her key, blocking her or taking her access away in the config refuses her and ends open
// sessions, also without logind.
//
// The sandbox shares the host's file systems, so the test lays a private overlay over /etc/ssh, /etc/systemd and
// /usr/local inside it: install's drop-in and wrapper and the helper's user-slice drop-ins never reach the host.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { ARTIFACTS, haveChromium, launchChromium } from "../e2e/chromium.js";
import { Browser, ROOT, SINGLEUSER } from "../e2e/harness.js";
import { installArgs, removeAccounts, runSsh, SSH, sshArgs, startHubService, startSshd, SystemdSandbox } from "./sandbox.js";

const SSHD = "/usr/sbin/sshd";
const skip =
  SystemdSandbox.unavailable() ??
  (!existsSync(SSHD) ? `${SSHD} is not installed (openssh-server)` : !existsSync(SSH) ? `${SSH} is not installed (openssh-client)` : undefined) ??
  (existsSync("/lib/systemd/systemd-logind") && existsSync("/usr/bin/dbus-daemon") ? undefined : "logind or dbus is not installed (systemd, dbus, libpam-systemd)");
if (skip) console.warn(`skipping the SSH e2e tests: ${skip}`);

const hex = randomBytes(2).toString("hex");
const SERVICE_USER = `shs${hex}`;
const PREFIX = `shx${hex}-`;
const OUTSIDER = `sho${hex}`;
/** A Unix account with the prefix that slicehub did not make: install must leave its login alone. */
const SQUATTER = `${PREFIX}squat`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(skip !== undefined)("SSH with the host's OpenSSH in a real systemd", () => {
  let sb: SystemdSandbox;
  let dir: string;
  let etc: string;
  let url: string;
  let sshPort: number;
  let alice: Browser;
  let admin: Browser;
  const before: Record<string, string> = {};
  let installCmd: string[];
  const clients = new Set<ChildProcess>();

  const sh = (argv: string[], what?: string) => sb.run(argv, { what });
  const journal = (unit = "slicehub") => sb.exec(["journalctl", "-u", unit, "--no-pager", "-n", "60", "-o", "cat"]).then((r) => r.stdout);
  const uidOf = (account: string) => Number(execFileSync("id", ["-u", account]).toString().trim());
  const key = (name: string) => join(dir, `key-${name}`);

  const sshArgsOf = (user: string, keyName: string, extra: string[] = []) => sshArgs(key(keyName), sshPort, user, extra);
  /** One ssh command from the host (the sandbox shares its network), bounded. */
  const ssh = (user: string, keyName: string, command: string, extra: string[] = [], timeoutMs = 30_000): Promise<Run> =>
    runSsh(sshArgsOf(user, keyName, extra), command, timeoutMs);
  /** A long-running ssh client (a session to end, a forward); stopped in afterAll if still running. */
  const background = (user: string, keyName: string, command: string | undefined, extra: string[] = []) => {
    const child = spawn(SSH, [...sshArgsOf(user, keyName, extra), ...(command ? [command] : [])], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    clients.add(child);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    void exited.then(() => clients.delete(child));
    return { child, exited, output: () => output };
  };
  const within = <T,>(p: Promise<T>, ms: number) => Promise.race([p, sleep(ms).then(() => "timeout" as const)]);

  /** Waits until the account has n SSH connections (its own sshd processes), as the admin page counts them. */
  async function waitForSessions(account: string, n: number, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    let count = -1;
    while (Date.now() < deadline) {
      const r = await sb.exec(["pgrep", "-c", "-u", account, "-x", "sshd"]);
      count = Number(r.stdout.trim() || "0");
      if (count === n) return;
      await sleep(100);
    }
    throw new Error(`${account} has ${count} SSH connections, not ${n}`);
  }

  /**
   * The admin page shows alice with one SSH session. A session's sshd forks once more before it execs the
   * command (two sshd processes of the account for a moment, longer on a loaded machine), so the page is read
   * again, for at most 10 s, until it settles.
   */
  async function expectAdminCountsOneSession(): Promise<string> {
    const row = /<tr data-user="alice">\s*<td[^>]*>alice<\/td>\s*<td[^>]*>1<\/td>/;
    let page = "";
    for (let i = 0; i < 50; i++) {
      page = await (await admin.request("/hub/admin")).text();
      if (row.test(page)) break;
      await sleep(200);
    }
    expect(page).toMatch(row);
    return page;
  }

  const show = (unit: string, ...props: string[]) => sb.show(unit, ...props);
  const sshdT = (user: string) => sh([SSHD, "-T", "-C", `user=${user},host=client.example.org,addr=192.0.2.7`]);

  async function addKey(b: Browser, keyName: string): Promise<void> {
    const csrf = await b.csrf();
    const res = await b.postForm("/hub/ssh-keys", { _xsrf: csrf, key: readFileSync(`${key(keyName)}.pub`, "utf8") });
    expect(res.status, await res.text()).toBe(303);
  }

  async function removeKeys(b: Browser): Promise<void> {
    const page = await (await b.request("/hub/ssh-keys")).text();
    const ids = [...page.matchAll(/name="id" value="(\d+)"/g)].map((m) => m[1]!);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) {
      const res = await b.postForm("/hub/ssh-keys/remove", { _xsrf: await b.csrf(), id });
      expect(res.status).toBe(303);
    }
  }

  const writeConfig = (extra: { allowed?: string[]; memory?: string; ssh?: boolean } = {}) =>
    writeFileSync(
      join(etc, "config.json"),
      JSON.stringify(
        {
          listen: url,
          state_dir: join(dir, "state"),
          run_as: SERVICE_USER,
          log_level: "debug",
          auth: { kind: "dev", admin_users: ["admin"], ...(extra.allowed ? { allowed_users: extra.allowed } : {}) },
          ssh: { enabled: extra.ssh ?? true, port: sshPort },
          spawner: {
            kind: "systemd",
            cmd: [SINGLEUSER],
            unix_users: { prefix: PREFIX },
            slice_limits: { memory: "4G" },
            profiles: [{ name: "small", title: "Small", memory: extra.memory ?? "256M", cpu: 1, tasks: 200 }],
          },
        },
        null,
        2,
      ),
    );

  beforeAll(async () => {
    dir = mkdtempSync("/var/lib/slicehub-ssh-test-");
    chmodSync(dir, 0o755);
    etc = join(dir, "etc");
    for (const name of ["alice", "alice2", "bob", "outsider"]) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}@test`, "-f", key(name)]);
    execFileSync("useradd", ["--create-home", "--comment", "slicehub test outsider", OUTSIDER]);
    execFileSync("useradd", ["--create-home", "--comment", "not slicehub's", SQUATTER]);
    for (const account of [OUTSIDER, SQUATTER]) {
      const home = join("/home", account);
      execFileSync("sh", ["-c", `mkdir -p ${home}/.ssh && cp ${key("outsider")}.pub ${home}/.ssh/authorized_keys && chown -R ${account}: ${home}/.ssh && chmod 700 ${home}/.ssh`]);
    }

    sb = await SystemdSandbox.boot({ keep: [ROOT] });
    url = `http://127.0.0.1:${await freePort()}`;
    sshPort = await freePort();
    // Private copies of what install and the helper write, inside the sandbox only; then logind (pam_systemd
    // registers sshd's sessions with it, as on a Debian host) and Debian's ssh.service on a free loopback port.
    await startSshd(sb, { sshd: SSHD, port: sshPort, logind: true });
    for (const user of ["root", OUTSIDER, SQUATTER]) before[user] = await sshdT(user);

    // First install: the starter config is not valid yet (no OIDC client), so sshd is left alone.
    installCmd = installArgs(dir, SERVICE_USER);
    const first = await sh(installCmd);
    expect(first).toMatch(/sshd: left as it is: .* is not valid yet/);
    writeConfig();
    const second = await sh(installCmd);
    expect(second, second).toMatch(/wrote \/usr\/local\/libexec\/slicehub\/authorized-keys/);
    expect(second).toMatch(/wrote \/etc\/ssh\/sshd_config\.d\/slicehub\.conf/);
    expect(second).toMatch(new RegExp(`left out of .*: ${SQUATTER}`));
    expect(second).toMatch(/reloaded ssh\.service/);
    const third = await sh(installCmd);
    expect(third).toMatch(/slicehub\.conf is up to date/);
    expect(third).not.toMatch(/reloaded/);

    await startHubService(sb, dir);
    await sb.waitForHub(url);
    alice = new Browser(url);
    await alice.login("alice");
    admin = new Browser(url);
    await admin.login("admin");
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) c.kill("SIGKILL");
    if (sb) {
      if (process.env.SLICEHUB_TEST_JOURNAL) console.log(await journal(), await journal("ssh"));
      await sb.stop();
    }
    removeAccounts((name) => name.startsWith(PREFIX) || name === SERVICE_USER || name === OUTSIDER);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("install configures sshd for the managed accounts only: a valid config, the same for everyone else", async () => {
    expect((await sb.exec([SSHD, "-t"])).code).toBe(0);
    const dropIn = await sh(["cat", "/etc/ssh/sshd_config.d/slicehub.conf"]);
    expect(dropIn).toMatch(new RegExp(`^Match User ${PREFIX}\\*,!${SQUATTER}$`, "m"));
    // sshd's own check of the command's ownership, for the file and every directory above it.
    for (const path of ["/usr/local/libexec/slicehub/authorized-keys", "/usr/local/libexec/slicehub", "/usr/local/libexec", "/usr/local", "/usr", "/"]) {
      const [uid, mode] = (await sh(["stat", "-c", "%u %a", path])).trim().split(" ");
      expect(uid, path).toBe("0");
      expect(Number.parseInt(mode!, 8) & 0o022, `${path} mode ${mode}`).toBe(0);
    }
    // root, an ordinary account and an account with the prefix that is not slicehub's: not a byte changed.
    for (const user of ["root", OUTSIDER, SQUATTER]) expect(await sshdT(user), user).toBe(before[user]);
    const managed = await sshdT(`${PREFIX}alice`);
    expect(managed).toMatch(/^authorizedkeyscommand \/usr\/local\/libexec\/slicehub\/authorized-keys %u$/m);
    expect(managed).toMatch(new RegExp(`^authorizedkeyscommanduser ${SERVICE_USER}$`, "m"));
    expect(managed).toMatch(/^authorizedkeysfile none$/m);
    expect(managed).toMatch(/^authenticationmethods publickey$/m);
    expect(managed).toMatch(/^passwordauthentication no$/m);
    expect(managed).toMatch(/^allowtcpforwarding local$/m);
    expect(managed).toMatch(/^x11forwarding no$/m);
    expect(managed).toMatch(/^allowagentforwarding no$/m);
  });

  it("lets a key added on the hub's page log alice in as her own account", async () => {
    await addKey(alice, "alice");
    const account = `${PREFIX}alice`;
    // The page's add made her account (she never started a server); allow the helper a moment.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && (await sb.exec(["id", "-u", account])).code !== 0) await sleep(100);
    const r = await ssh(account, "alice", "id -u");
    expect(r.code, `${r.stderr}\n${await journal()}\n${await journal("ssh")}`).toBe(0);
    expect(r.stdout.trim()).toBe(String(uidOf(account)));
    // The login shows as the key's last use (from sshd's journal lines, read by the helper every 10 s).
    let lastUsed: string | null = null;
    const until = Date.now() + 30_000;
    while (Date.now() < until && !lastUsed) {
      const res = await alice.request(`/hub/api/users/alice/ssh-keys?_xsrf=${encodeURIComponent(await alice.csrf())}`);
      const body = (await res.json()) as { ssh_keys: { last_used: string | null }[] };
      lastUsed = body.ssh_keys[0]?.last_used ?? null;
      if (!lastUsed) await sleep(500);
    }
    expect(lastUsed, "the key's last use was not recorded").toMatch(/^\d{4}-\d\d-\d\dT/);
    // Someone else's key does not open her account, nor hers someone else's.
    expect((await ssh(account, "bob", "true")).code).not.toBe(0);
    expect((await ssh(`${PREFIX}bob`, "alice", "true")).code).not.toBe(0);
  });

  it("holds her session to her limits: its cgroup is in her user slice, which has her profile's limits", async () => {
    const account = `${PREFIX}alice`;
    const uid = uidOf(account);
    const r = await ssh(account, "alice", "cat /proc/self/cgroup");
    expect(r.code, r.stderr).toBe(0);
    const memLine = r.stdout.split("\n").find((l) => /^\d+:memory:/.test(l)) ?? r.stdout.split("\n").find((l) => l.startsWith("0::"))!;
    const cgroup = memLine.replace(/^\d+:[^:]*:/, "");
    expect(cgroup).toMatch(new RegExp(`^/user\\.slice/user-${uid}\\.slice/session-\\d+\\.scope$`));
    const slice = cgroup.slice(0, cgroup.lastIndexOf("/"));
    const v1 = /^\d+:memory:/.test(memLine);
    const limit = await ssh(account, "alice", v1 ? `cat /sys/fs/cgroup/memory${slice}/memory.limit_in_bytes` : `cat /sys/fs/cgroup${slice}/memory.max`);
    expect(limit.stdout.trim()).toBe(String(256 * 2 ** 20));
    const pids = await ssh(account, "alice", v1 ? `cat /sys/fs/cgroup/pids${slice}/pids.max` : `cat /sys/fs/cgroup${slice}/pids.max`);
    expect(pids.stdout.trim()).toBe("200");
    // And it holds: 100 MB fits, 400 MB does not (the kernel kills the process).
    const small = await ssh(account, "alice", "python3 -c 'x = bytearray(100 << 20); x[::4096] = b\"1\" * len(x[::4096]); print(\"ok\")'");
    expect(small.stdout.trim(), small.stderr).toBe("ok");
    const big = await ssh(account, "alice", "python3 -c 'x = bytearray(400 << 20); x[::4096] = b\"1\" * len(x[::4096]); print(\"ok\")'");
    expect(big.stdout.trim()).not.toBe("ok");
  });

  it("forwards ssh -L to a port alice's own process listens on, and nothing else", async () => {
    const account = `${PREFIX}alice`;
    const [remote, local] = [await freePort(), await freePort()];
    const marker = `hello from ${account} ${hex}`;
    expect((await ssh(account, "alice", `mkdir -p ~/www && echo '${marker}' > ~/www/hello.txt`)).code).toBe(0);
    const server = background(account, "alice", `exec python3 -m http.server ${remote} --bind 127.0.0.1 --directory ~/www`);
    const forward = background(account, "alice", undefined, ["-N", "-o", "ExitOnForwardFailure=yes", "-L", `${local}:127.0.0.1:${remote}`]);
    try {
      let body = "";
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !body.includes(marker)) {
        body = await fetch(`http://127.0.0.1:${local}/hello.txt`).then((r) => r.text(), () => "");
        if (!body.includes(marker)) await sleep(200);
      }
      expect(body.trim(), `${server.output()}\n${forward.output()}`).toBe(marker);
      // Not to other hosts (PermitOpen: this host's loopback only), and no remote forwarding at all.
      const elsewhere = await ssh(account, "alice", "", ["-W", "192.0.2.1:80"], 15_000);
      expect(elsewhere.code).not.toBe(0);
      expect(elsewhere.stderr).toMatch(/administratively prohibited|open failed|stdio forwarding failed/);
      const reverse = await ssh(account, "alice", "true", ["-o", "ExitOnForwardFailure=yes", "-R", `${await freePort()}:127.0.0.1:22`]);
      expect(reverse.code).not.toBe(0);
    } finally {
      forward.child.kill();
      server.child.kill();
      await within(Promise.all([forward.exited, server.exited]), 10_000);
    }
  });

  it("shows open SSH sessions on the admin page", async () => {
    const account = `${PREFIX}alice`;
    await waitForSessions(account, 0);
    const session = background(account, "alice", "sleep 600");
    await waitForSessions(account, 1);
    const page = await expectAdminCountsOneSession();
    expect(page).toMatch(/id="ssh-sessions"/);
    if (haveChromium) {
      // As an admin sees it (test-artifacts/ssh-admin-sessions.png).
      const browser = await launchChromium();
      try {
        const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
        await context.addCookies(admin.cookies.map((c) => ({ name: c.name, value: c.value, url })));
        const tab = await context.newPage();
        await tab.goto(`${url}/hub/admin`);
        const block = tab.locator("#ssh-sessions");
        await block.scrollIntoViewIfNeeded();
        expect(await block.locator("tr[data-user=alice] .ssh-count").textContent()).toBe("1");
        await tab.screenshot({ path: join(ARTIFACTS, "ssh-admin-sessions.png"), fullPage: true });
      } finally {
        await browser.close();
      }
    }
    session.child.kill();
    await within(session.exited, 10_000);
    await waitForSessions(account, 0);
  });

  it("refuses a removed key and ends the session it had opened (also a key planted in ~/.ssh does not count)", async () => {
    const account = `${PREFIX}alice`;
    // Her key also sits where sshd would normally look (she could put it there herself); slicehub's accounts
    // ignore that file.
    const home = (await sh(["sh", "-c", `getent passwd ${account} | cut -d: -f6`])).trim();
    await sh(["sh", "-c", `mkdir -p ${home}/.ssh && cp ${key("alice")}.pub ${home}/.ssh/authorized_keys && chown -R ${account}: ${home}/.ssh && chmod 700 ${home}/.ssh`]);
    const session = background(account, "alice", "sleep 600");
    await waitForSessions(account, 1);
    await removeKeys(alice);
    expect(await within(session.exited, 15_000), `the session survived the key's removal:\n${await journal()}`).not.toBe("timeout");
    expect((await sb.exec(["pgrep", "-u", account, "-x", "sleep"])).code).toBe(1);
    const again = await ssh(account, "alice", "id -u");
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/Permission denied \(publickey\)/);
  });

  it("refuses a blocked user and ends their open session", async () => {
    const account = `${PREFIX}alice`;
    await addKey(alice, "alice2");
    expect((await ssh(account, "alice2", "true")).code).toBe(0);
    const session = background(account, "alice2", "sleep 600");
    await waitForSessions(account, 1);
    const res = await admin.postForm("/hub/admin/block", { _xsrf: await admin.csrf(), user: "alice", server: "" });
    expect(res.status).toBe(303);
    expect(await within(session.exited, 15_000), `the session survived the block:\n${await journal()}`).not.toBe("timeout");
    expect((await sb.exec(["pgrep", "-u", account, "-x", "sleep"])).code).toBe(1);
    const again = await ssh(account, "alice2", "id -u");
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/Permission denied \(publickey\)/);
  });

  it("refuses a user the config no longer allows and ends their open session", async () => {
    const bob = new Browser(url);
    await bob.login("bob");
    await addKey(bob, "bob");
    const account = `${PREFIX}bob`;
    const deadline = Date.now() + 15_000;
    let ok: Run = { code: -1, stdout: "", stderr: "" };
    while (Date.now() < deadline && ok.code !== 0) {
      ok = await ssh(account, "bob", "id -un");
      if (ok.code !== 0) await sleep(200);
    }
    expect(ok.stdout.trim(), ok.stderr).toBe(account);
    const session = background(account, "bob", "sleep 600");
    await waitForSessions(account, 1);
    writeConfig({ allowed: ["admin", "alice"] });
    expect(await within(session.exited, 20_000), `the session survived the config change:\n${await journal()}`).not.toBe("timeout");
    expect((await ssh(account, "bob", "true")).code).not.toBe(0);
  });

  it("follows a config change of the limits in every managed account's user slice", async () => {
    writeConfig({ allowed: ["admin", "alice"], memory: "300M" });
    const uid = uidOf(`${PREFIX}alice`);
    const file = `/etc/systemd/system/user-${uid}.slice.d/50-slicehub.conf`;
    const deadline = Date.now() + 20_000;
    let text = "";
    while (Date.now() < deadline && !text.includes(`MemoryMax=${300 * 2 ** 20}`)) {
      text = (await sb.exec(["cat", file])).stdout;
      if (!text.includes(`MemoryMax=${300 * 2 ** 20}`)) await sleep(200);
    }
    expect(text).toMatch(new RegExp(`^MemoryMax=${300 * 2 ** 20}$`, "m"));
    expect(text).toMatch(/^TasksMax=200$/m);
    // The helper writes the drop-in first and then has systemd apply it (daemon-reload): read the live value
    // until it follows, within the same bound.
    let live = "";
    while (Date.now() < deadline && live !== String(300 * 2 ** 20)) {
      live = (await show(`user-${uid}.slice`, "MemoryMax")).MemoryMax ?? "";
      if (live !== String(300 * 2 ** 20)) await sleep(200);
    }
    expect(live).toBe(String(300 * 2 ** 20));
  });

  it("leaves everyone else's login alone: an ordinary account with ~/.ssh/authorized_keys still logs in", async () => {
    const r = await ssh(OUTSIDER, "outsider", "id -un");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(OUTSIDER);
    // The account with the prefix that is not slicehub's keeps its own authorized_keys too.
    const squat = await ssh(SQUATTER, "outsider", "id -un");
    expect(squat.stdout.trim(), squat.stderr).toBe(SQUATTER);
    for (const user of ["root", OUTSIDER, SQUATTER]) expect(await sshdT(user), user).toBe(before[user]);
  });

  it("ends sessions without logind too, where they stay in ssh.service's cgroup", async () => {
    const unblock = await admin.postForm("/hub/admin/unblock", { _xsrf: await admin.csrf(), user: "alice", server: "" });
    expect(unblock.status).toBe(303);
    alice = new Browser(url);
    await alice.login("alice");
    await addKey(alice, "alice");
    await sh(["sh", "-c", "systemctl mask --runtime systemd-logind.service && systemctl stop systemd-logind.service"]);
    const account = `${PREFIX}alice`;
    const where = await ssh(account, "alice", "cat /proc/self/cgroup");
    expect(where.code, where.stderr).toBe(0);
    expect(where.stdout).toMatch(/^\d+:name=systemd:\/system\.slice\/ssh\.service$|^0::\/system\.slice\/ssh\.service$/m);
    const session = background(account, "alice", "sleep 600");
    await waitForSessions(account, 1);
    await expectAdminCountsOneSession();
    await removeKeys(alice);
    expect(await within(session.exited, 15_000), `the session survived the key's removal:\n${await journal()}`).not.toBe("timeout");
    expect((await sb.exec(["pgrep", "-u", account, "-x", "sleep"])).code).toBe(1);
    // sshd itself lives on.
    expect((await sh(["systemctl", "is-active", "ssh.service"])).trim()).toBe("active");
  });

  it("ends every open session when the config turns SSH off", async () => {
    await sh(["sh", "-c", "systemctl unmask --runtime systemd-logind.service"]);
    await addKey(alice, "alice");
    const account = `${PREFIX}alice`;
    const session = background(account, "alice", "sleep 600");
    await waitForSessions(account, 1);
    writeConfig({ allowed: ["admin", "alice"], memory: "300M", ssh: false });
    expect(await within(session.exited, 20_000), `the session survived SSH being turned off:\n${await journal()}`).not.toBe("timeout");
    expect((await ssh(account, "alice", "true")).code).not.toBe(0);
  });

  it("takes it all out again with the removal functions (what slicehub uninstall will call)", async () => {
    const script = `
      const sshd = await import(${JSON.stringify(join(ROOT, "dist/src/ssh/sshd.js"))});
      const host = await import(${JSON.stringify(join(ROOT, "dist/spawners/privileged/ssh.js"))});
      sshd.removeSshd((line) => console.log(line));
      for (const f of host.removeSshLimits()) console.log("removed " + f);`;
    const out = await sh([process.execPath, "--input-type=module", "-e", script]);
    expect(out).toMatch(/removed \/etc\/ssh\/sshd_config\.d\/slicehub\.conf/);
    expect(out).toMatch(/removed \/usr\/local\/libexec\/slicehub\/authorized-keys/);
    expect(out).toMatch(/removed \/etc\/systemd\/system\/user-\d+\.slice\.d\/50-slicehub\.conf/);
    expect(out).toMatch(/reloaded ssh\.service/);
    expect((await sb.exec(["test", "-e", "/usr/local/libexec/slicehub"])).code).toBe(1);
    // Back to exactly what sshd said before install, for the managed accounts too.
    for (const user of ["root", OUTSIDER, SQUATTER]) expect(await sshdT(user), user).toBe(before[user]);
    expect(await sshdT(`${PREFIX}alice`)).not.toMatch(/authorizedkeyscommand \//);
  });

  it("install fails, saying why, when sshd would not apply the drop-in to the managed accounts", async () => {
    // An earlier file whose Match block sets a key first: sshd keeps the first value it obtains.
    await sh(["sh", "-c", `printf 'Match User ${PREFIX}*\n    PasswordAuthentication yes\n' > /etc/ssh/sshd_config.d/00-admin.conf`]);
    const r = await sb.exec(installCmd, { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/sshd does not apply \/etc\/ssh\/sshd_config\.d\/slicehub\.conf .*lacks: passwordauthentication no/);
    await sh(["rm", "/etc/ssh/sshd_config.d/00-admin.conf"]);
  });
});
