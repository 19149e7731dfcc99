// The two units `slicehub install` writes, in a real systemd (test/systemd/sandbox.ts): slicehub.service (the web
// process, as the service user from the start, Type=notify with a watchdog, strict sandboxing) and
// slicehub-helper.service (the privileged helper, root, on a Unix socket). Starts from an install of the old
// single root unit (fork mode) with a running server, upgrades by running install again, and checks: READY and
// STATUS, the sandbox really in force, a server through the helper unit, the socket closed to other accounts,
// a helper restart and a watchdog restart that both leave servers running, and a reload.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { Browser, CLI, ROOT, SINGLEUSER } from "../e2e/harness.js";
import { installArgs, removeAccounts, startHubService, SystemdSandbox } from "./sandbox.js";

const skip = SystemdSandbox.unavailable() ?? (existsSync(SINGLEUSER) ? undefined : `${SINGLEUSER} is not installed`);
if (skip) console.warn(`skipping the systemd service unit tests: ${skip}`);

const hex = randomBytes(2).toString("hex");
const SERVICE_USER = `snu${hex}`;
const PREFIX = `snp${hex}-`;
const OUTSIDER = `sno${hex}`;
const UNITS = "/run/systemd/system";
const SOCKET = "/run/slicehub-helper/helper.sock";

/** Connects to the helper's socket and prints what happened: "EACCES", "ready <line>", "closed". */
const PROBE = `
const net = require("node:net");
const s = net.connect(process.argv[1]);
let buf = "";
let lines = 0;
const big = process.argv[2] === "big";
s.on("error", (e) => { console.log(e.code); process.exit(0); });
s.on("data", (d) => {
  buf += d;
  let nl;
  while ((nl = buf.indexOf("\\n")) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    if (lines++ === 0) {
      console.log("ready " + line);
      if (big) s.write("x".repeat(9 << 20)); else s.write(JSON.stringify({ op: "oidc-secret", id: 1 }) + "\\n");
    } else { console.log("answer " + line); process.exit(0); }
  }
});
s.on("close", () => { console.log("closed"); process.exit(0); });
setTimeout(() => { console.log("timeout"); process.exit(0); }, 10000);
`;

describe.skipIf(skip !== undefined)("slicehub.service and slicehub-helper.service", () => {
  let sb: SystemdSandbox;
  let dir: string;
  let etc: string;
  let url: string;
  let alice: Browser;

  const sh = (argv: string[], what?: string) => sb.run(argv, { what });
  const show = (unit: string, ...props: string[]) => sb.show(unit, ...props);
  const journal = (unit = "slicehub") => sb.exec(["journalctl", "-u", unit, "--no-pager", "-n", "300", "-o", "cat"]).then((r) => r.stdout);
  const uidOf = (account: string) => Number(execFileSync("id", ["-u", account]).toString().trim());
  const statusOf = async (pid: string) => sh(["cat", `/proc/${pid}/status`]);
  const mainPid = async (unit = "slicehub.service") => (await show(unit, "MainPID")).MainPID!;

  async function startServer(b: Browser, user: string): Promise<void> {
    const csrf = await b.csrf();
    const res = await b.request(`/hub/api/users/${user}/server`, { method: "POST", headers: { "content-type": "application/json", "x-xsrftoken": csrf }, body: "{}" });
    expect([201, 202], await res.text()).toContain(res.status);
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const r = await b.request(`/hub/api/users/${user}`, { headers: { "x-xsrftoken": csrf } });
      const body = (await r.json()) as { servers?: Record<string, { ready?: boolean }> };
      if (body.servers?.[""]?.ready) {
        // The server's own OAuth login, so that its API answers this browser.
        expect((await b.follow(`/user/${user}/tree`)).res.status).toBe(200);
        return;
      }
      await sleep(200);
    }
    throw new Error(`${user}'s server did not become ready:\n${await journal("slicehub-helper")}`);
  }

  beforeAll(async () => {
    dir = mkdtempSync("/var/lib/slicehub-test-");
    chmodSync(dir, 0o755);
    sb = await SystemdSandbox.boot({ keep: [ROOT] });
    // The sandbox shares the host's files: the second install (valid config) writes sshd's drop-in and may write
    // the keys command; private overlays keep them from the host, as in ssh.e2e.test.ts.
    await sh(["sh", "-c", `set -e
for d in /etc/ssh /usr/local; do
  k=$(echo $d | tr / _); mkdir -p /run/overlay/$k/upper /run/overlay/$k/work
  mount -t overlay overlay -o lowerdir=$d,upperdir=/run/overlay/$k/upper,workdir=/run/overlay/$k/work $d
done
mkdir -p /run/sshd`]);
    url = `http://127.0.0.1:${await freePort()}`;
    etc = join(dir, "etc");
    await sh(installArgs(dir, SERVICE_USER, UNITS));
    execFileSync("useradd", ["--create-home", "--comment", "slicehub test outsider", OUTSIDER]);
    const config = {
      listen: url,
      state_dir: join(dir, "state"),
      run_as: SERVICE_USER,
      log_level: "debug",
      auth: { kind: "dev" },
      spawner: { kind: "systemd", cmd: [SINGLEUSER], hooks_dir: join(etc, "roothooks.d"), unix_users: { prefix: PREFIX } },
    };
    writeFileSync(join(etc, "config.json"), JSON.stringify(config, null, 2));
    // An install from before the helper had its own unit: one root unit; slicehub forks the helper and drops.
    writeFileSync(
      join(dir, "old.service"),
      `[Service]\nType=exec\nExecStart=${process.execPath} ${CLI} start --config ${join(etc, "config.json")}\nRestart=on-failure\nRuntimeDirectory=slicehub\nRuntimeDirectoryMode=0711\nRuntimeDirectoryPreserve=yes\nProtectSystem=yes\n\n[Install]\nWantedBy=multi-user.target\n`,
    );
    await sh(["sh", "-c", `cp ${join(dir, "old.service")} ${UNITS}/slicehub.service && rm ${UNITS}/slicehub-helper.service`]);
    await startHubService(sb, dir);
    await sb.waitForHub(url);
    alice = new Browser(url);
    await alice.login("alice");
  }, 180_000);

  afterAll(async () => {
    if (sb) {
      if (process.env.SLICEHUB_TEST_JOURNAL) console.log(await journal(), await journal("slicehub-helper"));
      await sb.stop();
    }
    removeAccounts((name) => name.startsWith(PREFIX) || name === SERVICE_USER || name === OUTSIDER);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("the old single root unit still runs (fork mode): the web process drops to the service user, a server starts", async () => {
    const main = await mainPid();
    expect(Number(/^Uid:\s+(\d+)/m.exec(await statusOf(main))?.[1])).toBe(uidOf(SERVICE_USER));
    await startServer(alice, "alice");
    expect((await show("slicehub-server-alice.service", "ActiveState")).ActiveState).toBe("active");
  });

  let serverPid = "";

  it("install again upgrades to two units; restart brings both up, and the server is adopted, not restarted", async () => {
    serverPid = (await show("slicehub-server-alice.service", "MainPID")).MainPID!;
    const before = await mainPid();
    const out = await sh(installArgs(dir, SERVICE_USER, UNITS));
    expect(out).toContain(`wrote ${UNITS}/slicehub-helper.service`);
    expect(out).toContain(`wrote ${UNITS}/slicehub.service`);
    expect(await sh(["cat", join(UNITS, "slicehub.service")])).toContain(`User=${SERVICE_USER}`);
    await sh(["systemctl", "daemon-reload"]);
    // Type=notify: `systemctl restart` returns once the new process said READY=1, after adoption was checked.
    await sh(["systemctl", "restart", "slicehub"]);
    const s = await show("slicehub.service", "ActiveState", "StatusText", "MainPID", "Type", "NotifyAccess", "WatchdogUSec", "User", "Requires", "After");
    expect(s.ActiveState).toBe("active");
    expect(s.MainPID).not.toBe(before);
    expect(s.StatusText).toBe(`serving on ${url}, 1 server running`);
    expect(s).toMatchObject({ Type: "notify", NotifyAccess: "all", WatchdogUSec: "30s", User: SERVICE_USER });
    expect(s.Requires).toContain("slicehub-helper.service");
    expect(s.After).toContain("slicehub-helper.service");
    // It answers at once: no polling needed after READY.
    expect((await fetch(`${url}/hub/api`)).status).toBe(200);
    const h = await show("slicehub-helper.service", "ActiveState", "StatusText", "Type", "User", "MainPID");
    expect(h).toMatchObject({ ActiveState: "active", Type: "notify", User: "" });
    expect(h.StatusText).toMatch(/^listening on \/run\/slicehub-helper\/helper\.sock, 1 web process connected$/);
    expect(Number(/^Uid:\s+(\d+)/m.exec(await statusOf(h.MainPID!))?.[1])).toBe(0);
    expect((await show("slicehub-server-alice.service", "MainPID")).MainPID).toBe(serverPid);
    expect((await alice.request("/user/alice/api/status")).status).toBe(200);
    expect(await journal()).toMatch(/adopted running server/);
  });

  it("runs the web process as the service user with no capabilities, in a read-only system with hidden homes", async () => {
    const main = await mainPid();
    const status = await statusOf(main);
    expect(Number(/^Uid:\s+(\d+)/m.exec(status)?.[1])).toBe(uidOf(SERVICE_USER));
    expect(/^CapEff:\s+(\w+)/m.exec(status)?.[1]).toBe("0000000000000000");
    expect(/^CapBnd:\s+(\w+)/m.exec(status)?.[1]).toBe("0000000000000000");
    expect(/^NoNewPrivs:\s+(\d)/m.exec(status)?.[1]).toBe("1");
    expect(/^Seccomp:\s+(\d)/m.exec(status)?.[1]).toBe("2");
    const props = await show("slicehub.service", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "RestrictAddressFamilies", "ProtectProc", "MemoryDenyWriteExecute");
    expect(props, JSON.stringify(props)).toMatchObject({ ProtectSystem: "strict", ProtectHome: "yes", PrivateTmp: "no" /* the test's drop-in */, PrivateDevices: "yes", RestrictAddressFamilies: "AF_INET AF_INET6 AF_UNIX", ProtectProc: "invisible" });
    // systemd's own rating (1.4 as installed; the test's drop-in turns PrivateTmp off, which costs a little).
    const score = async (unit: string) => Number(/Overall exposure level for \S+: ([\d.]+)/.exec(await sh(["systemd-analyze", "security", "--no-pager", unit]))?.[1]);
    const web = await score("slicehub.service");
    console.log(`systemd-analyze security: slicehub.service ${web}, slicehub-helper.service ${await score("slicehub-helper.service")}`);
    expect(web).toBeLessThanOrEqual(2);
    // In its mount namespace, as its user: a directory anyone may write is read-only there, the state is writable.
    const open = mkdtempSync("/var/lib/slicehub-test-open-");
    try {
      chmodSync(open, 0o777);
      const gid = execFileSync("id", ["-g", SERVICE_USER]).toString().trim();
      const asService = (script: string) => sb.exec(["nsenter", "-t", main, "-m", "-S", String(uidOf(SERVICE_USER)), "-G", gid, "--", "sh", "-c", script]);
      const outside = await sb.exec(["runuser", "-u", SERVICE_USER, "--", "sh", "-c", `touch ${open}/outside && echo ok`]);
      expect(outside.stdout.trim(), outside.stderr).toBe("ok"); // the same write works outside the unit
      const inside = await asService(`touch ${open}/inside 2>&1; touch ${join(dir, "state", "probe")} && echo state-ok; ls /home 2>&1 | head -1; ls /root 2>&1 | head -1`);
      expect(inside.stdout).toMatch(/Read-only file system/);
      expect(inside.stdout).toContain("state-ok");
      expect(inside.stdout).toMatch(/Permission denied/);
      expect(existsSync(join(open, "inside"))).toBe(false);
    } finally {
      rmSync(open, { recursive: true, force: true });
      rmSync(join(dir, "state", "probe"), { force: true });
    }
  });

  it("starts a server as the user's account through the helper unit", async () => {
    const bob = new Browser(url);
    await bob.login("bob");
    await startServer(bob, "bob");
    const s = await show("slicehub-server-bob.service", "MainPID", "ControlGroup");
    expect(s.ControlGroup).toBe("/slicehub.slice/slicehub-bob.slice/slicehub-server-bob.service");
    expect(Number(/^Uid:\s+(\d+)/m.exec(await statusOf(s.MainPID!))?.[1])).toBe(uidOf(`${PREFIX}bob`));
    expect(await journal("slicehub-helper")).toMatch(/started server unit.*"user":"bob"/);
    expect((await bob.request("/user/bob/api/status")).status).toBe(200);
  });

  it("refuses the helper's socket to accounts other than root and the service user", async () => {
    expect((await sh(["stat", "-c", "%U:%G %a", "/run/slicehub-helper", SOCKET])).trim().split("\n")).toEqual([`root:${SERVICE_USER} 750`, `root:${SERVICE_USER} 660`]);
    for (const account of [OUTSIDER, "nobody", `${PREFIX}bob`]) {
      const r = await sb.exec(["runuser", "-u", account, "--", process.execPath, "-e", PROBE, SOCKET]);
      expect(r.stdout.trim(), `${account}: ${r.stderr}`).toBe("EACCES");
    }
    // The service user gets in (as the web process does), and the helper still checks what it is sent.
    const ok = await sb.exec(["runuser", "-u", SERVICE_USER, "--", process.execPath, "-e", PROBE, SOCKET]);
    expect(ok.stdout).toMatch(/^ready \{"type":"ready","pid":\d+\}$/m);
    expect(ok.stdout).toMatch(/answer .*"ok":false,"error":"auth.kind is not oidc"/);
    // A request over the size limit ends that connection only.
    const helperPid = await mainPid("slicehub-helper.service");
    const big = await sb.exec(["runuser", "-u", SERVICE_USER, "--", process.execPath, "-e", PROBE, SOCKET, "big"]);
    expect(big.stdout).toMatch(/closed|ECONNRESET|EPIPE/);
    expect(await mainPid("slicehub-helper.service")).toBe(helperPid);
    expect((await fetch(`${url}/hub/api`)).status).toBe(200);
  });

  it("a helper restart restarts the web unit too, and user servers keep running", async () => {
    const web = await mainPid();
    await sh(["systemctl", "restart", "slicehub-helper"]);
    await sb.waitForHub(url, { previousPid: web });
    for (const user of ["alice", "bob"]) expect((await show(`slicehub-server-${user}.service`, "ActiveState")).ActiveState).toBe("active");
    expect((await show("slicehub-server-alice.service", "MainPID")).MainPID).toBe(serverPid);
    expect((await alice.request("/user/alice/api/status")).status).toBe(200);
    // Killed rather than restarted: the helper unit comes back by itself (Restart=on-failure), and the web unit with it.
    const web2 = await mainPid();
    await sh(["systemctl", "kill", "--kill-whom=main", "-s", "SIGKILL", "slicehub-helper"]);
    await sb.waitForHub(url, { previousPid: web2 });
    expect((await show("slicehub-helper.service", "ActiveState")).ActiveState).toBe("active");
    expect((await alice.request("/user/alice/api/status")).status).toBe(200);
  });

  it("a reload says so in the status", async () => {
    await sh(["systemctl", "reload", "slicehub"]);
    const deadline = Date.now() + 20_000;
    let s: Record<string, string> = {};
    while (Date.now() < deadline) {
      s = await show("slicehub.service", "ActiveState", "StatusText");
      if (s.StatusText?.endsWith("reloaded config")) break;
      await sleep(100);
    }
    expect(s.ActiveState).toBe("active");
    expect(s.StatusText, await journal()).toMatch(new RegExp(`^serving on ${url}, \\d+ servers? running; reloaded config$`));
  });

  it("the watchdog restarts a hub whose event loop is stuck; servers keep running", async () => {
    // Only for tests: this variable makes SIGUSR2 block the event loop (src/sd-notify.ts); only root can set it.
    await sh(["sh", "-c", `printf '[Service]\\nEnvironment=SLICEHUB_TEST_WATCHDOG_HANG=1\\nWatchdogSec=4\\n' > ${UNITS}/slicehub.service.d/watchdog.conf && systemctl daemon-reload && systemctl restart slicehub`]);
    const stuck = await sb.waitForHub(url);
    const restarts = Number((await show("slicehub.service", "NRestarts")).NRestarts);
    // Pings continue while the loop turns: longer than WatchdogSec, still the same process.
    await sleep(6_000);
    expect(await mainPid()).toBe(stuck);
    await sh(["kill", "-USR2", stuck]);
    await sb.waitForHub(url, { previousPid: stuck });
    const s = await show("slicehub.service", "NRestarts", "StatusText");
    expect(Number(s.NRestarts)).toBe(restarts + 1);
    expect(s.StatusText).toBe(`serving on ${url}, 2 servers running`);
    expect(await journal()).toMatch(/slicehub\.service: Watchdog timeout \(limit 4s\)!/);
    expect((await show("slicehub-server-alice.service", "MainPID")).MainPID).toBe(serverPid);
    expect((await alice.request("/user/alice/api/status")).status).toBe(200);
    await sh(["sh", "-c", `rm ${UNITS}/slicehub.service.d/watchdog.conf && systemctl daemon-reload`]);
  });

  it("stopping the web unit leaves servers running", async () => {
    await sh(["systemctl", "stop", "slicehub"]);
    expect((await show("slicehub.service", "ActiveState")).ActiveState).toBe("inactive");
    expect((await show("slicehub-server-alice.service", "MainPID")).MainPID).toBe(serverPid);
    await sh(["systemctl", "start", "slicehub"]);
    expect((await show("slicehub.service", "StatusText")).StatusText).toBe(`serving on ${url}, 2 servers running`);
  });

  it("gets a root-only OIDC client secret through the helper (op oidc-secret)", async () => {
    const secret = join(etc, "oidc-client-secret");
    writeFileSync(secret, "not-a-real-secret\n", { mode: 0o600 });
    const denied = await sb.exec(["runuser", "-u", SERVICE_USER, "--", "cat", secret]);
    expect(denied.code).not.toBe(0);
    const config = JSON.parse(await sh(["cat", join(etc, "config.json")])) as Record<string, unknown>;
    // No issuer is contacted before the first login, so an unreachable one is fine for starting.
    config.auth = { kind: "oidc", issuer: "http://127.0.0.1:9/", client_id: "slicehub-test", client_secret_file: secret, allowed_users: ["alice@example.org"] };
    const before = await mainPid();
    // The running hub picks the edited file up by itself (an auth change applies at once) and says so.
    writeFileSync(join(etc, "config.json"), JSON.stringify(config, null, 2));
    let status = "";
    for (let i = 0; i < 200 && !status.endsWith("reloaded config"); i++) {
      status = (await show("slicehub.service", "StatusText")).StatusText ?? "";
      if (!status.endsWith("reloaded config")) await sleep(100);
    }
    expect(status).toBe(`serving on ${url}, 2 servers running; reloaded config`);
    await sh(["systemctl", "restart", "slicehub"]);
    const s = await show("slicehub.service", "ActiveState", "StatusText", "MainPID");
    expect(s.MainPID).not.toBe(before);
    expect(s, await journal()).toMatchObject({ ActiveState: "active", StatusText: `serving on ${url}, 2 servers running` });
  });
});
