// The systemd spawner end to end, in a real systemd booted in a private pid+mount namespace: `slicehub
// install`, the installed unit started by systemd, privilege separation, root hooks, per-user slices and
// limits, credentials, named servers, odd names, OOM, kill -9 with restart and adoption, orphan units.
// Runs the real /usr/bin/jupyterhub-singleuser as created Unix accounts.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { Browser, ROOT, SINGLEUSER, readSse, runOnKernel } from "../e2e/harness.js";
import { installArgs, removeAccounts, SystemdSandbox } from "./sandbox.js";

const skip = SystemdSandbox.unavailable() ?? (existsSync(SINGLEUSER) ? undefined : `${SINGLEUSER} is not installed`);
if (skip) console.warn(`skipping the systemd spawner e2e tests: ${skip}`);

const hex = randomBytes(2).toString("hex");
const SERVICE_USER = `shs${hex}`;
const PREFIX = `sht${hex}-`;
const OUTSIDER = `sho${hex}`;

describe.skipIf(skip !== undefined)("systemd spawner in a real systemd", () => {
  let sb: SystemdSandbox;
  let dir: string;
  let url: string;
  let alice: Browser;

  const sh = (argv: string[], what?: string) => sb.run(argv, { what });
  const show = (unit: string, ...props: string[]) => sb.show(unit, ...props);
  const journal = () => sb.exec(["journalctl", "-u", "slicehub", "--no-pager", "-n", "200", "-o", "cat"]).then((r) => r.stdout);
  const uidOf = (account: string) => Number(execFileSync("id", ["-u", account]).toString().trim());
  const statusUid = async (pid: string) => Number(/^Uid:\s+(\d+)/m.exec(await sh(["cat", `/proc/${pid}/status`]))?.[1]);

  /** Start a server through the hub's API with the browser's session; resolve with the progress events. */
  async function startServer(b: Browser, user: string, server = "", options: object = {}) {
    const csrf = await b.csrf();
    const path = server ? `/hub/api/users/${user}/servers/${server}` : `/hub/api/users/${user}/server`;
    const started = b.request(path, { method: "POST", headers: { "content-type": "application/json", "x-xsrftoken": csrf }, body: JSON.stringify(options) });
    // Follow the stream from the start, as the progress page does, to see every hook line.
    let events: Record<string, unknown>[] = [];
    for (let i = 0; i < 100; i++) {
      const progress = await b.request(`${path}/progress?_xsrf=${encodeURIComponent(csrf)}`);
      if (progress.status === 200) {
        events = await readSse(progress, 90_000);
        break;
      }
      await progress.arrayBuffer();
      await sleep(20);
    }
    const res = await started;
    return { status: res.status, events, last: events.at(-1) as { ready?: boolean; failed?: boolean; message: string } | undefined };
  }

  beforeAll(async () => {
    dir = mkdtempSync("/var/lib/slicehub-test-");
    chmodSync(dir, 0o755);
    sb = await SystemdSandbox.boot({ keep: [ROOT] });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const etc = join(dir, "etc");
    await sh(installArgs(dir, SERVICE_USER));
    execFileSync("useradd", ["--create-home", "--comment", "slicehub test outsider", OUTSIDER]);

    const hooks = join(etc, "roothooks.d");
    const hook = (name: string, body: string, mode = 0o755) => {
      writeFileSync(join(hooks, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(hooks, name), mode);
    };
    hook("10-hello", 'echo "hello from a hook for $SLICEHUB_UNIX_USER ($SLICEHUB_USER/$SLICEHUB_SERVER_NAME)"');
    hook("20-fail", "echo about to fail; exit 3");
    hook("30-slow", "sleep 30");
    hook("40-noexec", "echo never", 0o644);
    hook("50-last", 'echo "last hook, uid $(id -u)"');

    const config = {
      listen: url,
      state_dir: join(dir, "state"),
      run_as: SERVICE_USER,
      log_level: "debug",
      auth: { kind: "dev", admin_users: [] },
      spawner: {
        kind: "systemd",
        cmd: [SINGLEUSER],
        start_timeout_s: 90,
        hooks_dir: hooks,
        hook_timeout_s: 1,
        unix_users: { prefix: PREFIX },
        named_servers: { limit: 2 },
        slice_limits: { memory: "4G" },
        profiles: [
          { name: "small", title: "Small", memory: "1G", cpu: 1, tasks: 256 },
          { name: "hog", title: "Memory hog", memory: "64M", cmd: ["/usr/bin/python3", "-c", "x = []\nwhile True: x.append(bytearray(8 << 20))"], args: [] },
        ],
      },
    };
    writeFileSync(join(etc, "config.json"), JSON.stringify(config, null, 2));

    // The checkout may live under /tmp, which the service's PrivateTmp would hide; the test's state lives
    // outside the StateDirectory. Admin drop-ins for server units and user slices, as the docs describe.
    const dropin = (unitDir: string, body: string) => {
      mkdirSync(join("/run/systemd/system", unitDir), { recursive: true });
      return body;
    };
    await sh(["sh", "-c", `mkdir -p /run/systemd/system/slicehub.service.d /run/systemd/system/slicehub-helper.service.d /run/systemd/system/slicehub-server-.service.d /run/systemd/system/slicehub-.slice.d
printf '[Service]\\nPrivateTmp=no\\nReadWritePaths=${dir}\\n' > /run/systemd/system/slicehub.service.d/test.conf
printf '[Service]\\nPrivateTmp=no\\n' > /run/systemd/system/slicehub-helper.service.d/test.conf
printf '[Service]\\nEnvironment=SLICEHUB_DROPIN=yes\\n' > /run/systemd/system/slicehub-server-.service.d/50-test.conf
printf '[Slice]\\nTasksMax=4000\\n' > /run/systemd/system/slicehub-.slice.d/50-test.conf
systemctl daemon-reload && systemctl start slicehub`]);
    void dropin;
    await sb.waitForHub(url);
    alice = new Browser(url);
    await alice.login("alice");
  }, 180_000);

  afterAll(async () => {
    if (sb) {
      if (process.env.SLICEHUB_TEST_JOURNAL) console.log(await journal());
      await sb.stop();
    }
    removeAccounts((name) => name.startsWith(PREFIX) || name === SERVICE_USER || name === OUTSIDER);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("drops the web process to the service user while the helper stays root", async () => {
    const main = (await show("slicehub.service", "MainPID")).MainPID!;
    expect(await statusUid(main)).toBe(uidOf(SERVICE_USER));
    // Supplementary groups cleared: none, or only the user's own group.
    const gid = execFileSync("id", ["-g", SERVICE_USER]).toString().trim();
    const groups = (/^Groups:(.*)$/m.exec(await sh(["cat", `/proc/${main}/status`]))?.[1] ?? "").trim().split(/\s+/).filter(Boolean);
    expect(groups.filter((g) => g !== gid), `Groups: ${groups.join(" ")}`).toEqual([]);
    const helper = (await sh(["pgrep", "-f", "privileged-helper"])).trim().split("\n")[0]!;
    expect(await statusUid(helper)).toBe(0);
    // The state (database, sessions) belongs to the unprivileged user.
    expect(Number((await sh(["stat", "-c", "%u", join(dir, "state"), join(dir, "state", "slicehub.sqlite")])).trim().split("\n").every((u) => Number(u) === uidOf(SERVICE_USER)) ? 1 : 0)).toBe(1);
  });

  it("runs the root hooks in order before the server, shows their output and failures, and starts anyway", async () => {
    const { last, events } = await startServer(alice, "alice", "", { profile: "small" });
    const messages = events.map((e) => String(e.message));
    expect(last?.ready, messages.join("\n")).toBe(true);
    const at = (re: RegExp) => messages.findIndex((m) => re.test(m));
    const hello = at(/\[10-hello\] hello from a hook for sht.*-alice \(alice\/\)/);
    const fail = at(/20-fail.*failed with status 3/);
    const slow = at(/30-slow.*timed out/);
    const noexec = at(/40-noexec/);
    const lastHook = at(/\[50-last\] last hook, uid 0/);
    expect([hello, fail, slow, noexec, lastHook].every((i) => i >= 0), messages.join("\n")).toBe(true);
    // Entries that are not run are reported first; the hooks that run do so in byte order of their names.
    expect(hello < fail && fail < slow && slow < lastHook, messages.join("\n")).toBe(true);
    expect(messages[noexec]).toMatch(/skipped 40-noexec: not executable/);
    expect(messages.some((m) => /\[20-fail\] about to fail/.test(m))).toBe(true);
  });

  it("runs the server as the user's account, in the user's slice, with the profile's limits and the admin's drop-ins", async () => {
    const unit = "slicehub-server-alice.service";
    const s = await show(unit, "MainPID", "ControlGroup", "MemoryMax", "TasksMax", "Environment", "ActiveState");
    expect(s.ActiveState).toBe("active");
    expect(s.ControlGroup).toBe("/slicehub.slice/slicehub-alice.slice/slicehub-server-alice.service");
    expect(s.MemoryMax).toBe(String(1 << 30));
    expect(s.TasksMax).toBe("256");
    expect(s.Environment).toContain("SLICEHUB_DROPIN=yes");
    expect(await statusUid(s.MainPID!)).toBe(uidOf(`${PREFIX}alice`));
    const slice = await show("slicehub-alice.slice", "MemoryMax", "TasksMax");
    expect(slice.MemoryMax).toBe(String(4 * 2 ** 30));
    expect(slice.TasksMax).toBe("4000");
  });

  it("reaches the server through the proxy with OAuth, and its kernel runs as the user", async () => {
    const { res } = await alice.follow("/user/alice/tree");
    expect(res.status).toBe(200);
    const created = await alice.request("/user/alice/api/kernels", {
      method: "POST",
      headers: { "content-type": "application/json", "x-xsrftoken": alice.cookie("_xsrf")! },
      body: JSON.stringify({ name: "python3" }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const cookie = alice.cookies.map((c) => `${c.name}=${c.value}`).join("; ");
    const out = await runOnKernel(`${url.replace("http", "ws")}/user/alice/api/kernels/${id}/channels`, cookie, "import os; print(6*7, os.getuid())");
    expect(out).toBe(`42 ${uidOf(`${PREFIX}alice`)}\n`);
  });

  it("keeps every token away from other local users: unit properties, command lines, /run", async () => {
    const token = (await sh(["cat", "/run/slicehub/credentials/slicehub-server-alice.service.token"])).trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const asOutsider = (script: string) => sb.exec(["runuser", "-u", OUTSIDER, "--", "sh", "-c", script]);
    // Any local user can read unit properties (over D-Bus, absent in this sandbox, so read them as root here)
    // and the transient unit files systemd writes under /run/systemd/transient.
    const props = await sh(["sh", "-c", "systemctl show slicehub.service slicehub-server-alice.service slicehub-alice.slice"]);
    expect(props.length).toBeGreaterThan(1000);
    expect(props).not.toContain(token);
    const transient = await asOutsider("cat /run/systemd/transient/*");
    expect(transient.stdout, transient.stderr).toContain("LoadCredential=jupyterhub-api-token:");
    expect(transient.stdout).not.toContain(token);
    const cmdlines = await asOutsider("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '");
    expect(cmdlines.stdout).toContain("jupyterhub-singleuser");
    expect(cmdlines.stdout).not.toContain(token);
    // What the outsider can read of /run (unreadable files and directories are skipped) holds no token.
    const run = await asOutsider(`grep -rl -- '${token}' /run 2>/dev/null | wc -l`);
    expect(run.stdout.trim()).toBe("0");
    expect(await show("slicehub-server-alice.service", "Environment").then((e) => e.Environment)).not.toContain(token);
  });

  it("runs two named servers for one user at once", async () => {
    const [one, two] = await Promise.all([startServer(alice, "alice", "one"), startServer(alice, "alice", "two")]);
    expect(one.last?.ready, one.events.map((e) => e.message).join("\n")).toBe(true);
    expect(two.last?.ready, two.events.map((e) => e.message).join("\n")).toBe(true);
    for (const name of ["one", "two"]) {
      const s = await show(`slicehub-server-alice-${name}.service`, "ActiveState", "ControlGroup");
      expect(s.ActiveState).toBe("active");
      expect(s.ControlGroup).toBe(`/slicehub.slice/slicehub-alice.slice/slicehub-server-alice-${name}.service`);
      const r = await alice.request(`/user/alice/${name}/api/status`);
      expect(r.status).toBe(403); // routed to that server, which wants its own OAuth login
    }
  });

  it("keeps a user name with - and . inside its own slice", async () => {
    const bob = new Browser(url);
    await bob.login("bo-b.x");
    const { last, events } = await startServer(bob, "bo-b.x");
    expect(last?.ready, events.map((e) => e.message).join("\n")).toBe(true);
    const s = await show("slicehub-server-bo\\x2db.x.service", "ControlGroup", "MainPID");
    expect(s.ControlGroup).toBe("/slicehub.slice/slicehub-bo\\x2db.x.slice/slicehub-server-bo\\x2db.x.service");
    expect(await statusUid(s.MainPID!)).toBe(uidOf(`${PREFIX}bo-b.x`));
  });

  it("OOM-kills a server over its memory limit and says so, while the hub lives on", async () => {
    const carol = new Browser(url);
    await carol.login("carol");
    const { last, events, status } = await startServer(carol, "carol", "", { profile: "hog" });
    expect(last?.failed, `${status} ${JSON.stringify(events)}`).toBe(true);
    // cgroup v2 reports "oom-kill"; on cgroup v1 hosts (like this one may be) only a SIGKILL at the limit.
    expect(last?.message).toMatch(/ran out of memory|killed by SIGKILL \(likely out of memory/);
    expect((await fetch(`${url}/hub/api`)).status).toBe(200);
  });

  it("restarts after kill -9 of the web process and adopts every server", async () => {
    const before = (await show("slicehub.service", "MainPID")).MainPID!;
    const traffic = (async () => {
      const statuses: number[] = [];
      const end = Date.now() + 2_000;
      while (Date.now() < end) {
        statuses.push(await alice.request("/user/alice/api/status").then((r) => r.status, () => 0));
        await sleep(20);
      }
      return statuses;
    })();
    await sleep(300);
    await sh(["systemctl", "kill", "--kill-whom=main", "-s", "SIGKILL", "slicehub.service"]);
    await traffic;
    await sb.waitForHub(url, { previousPid: before });
    expect((await alice.request("/user/alice/api/status")).status).toBe(200);
    for (const unit of ["slicehub-server-alice.service", "slicehub-server-alice-one.service", "slicehub-server-bo\\x2db.x.service"]) {
      expect((await show(unit, "ActiveState")).ActiveState).toBe("active");
    }
    expect(await journal()).toMatch(/adopted running server/);
  });

  it("exits when the privileged helper dies, and comes back with the servers still running", async () => {
    const before = (await show("slicehub.service", "MainPID")).MainPID!;
    const helper = (await sh(["pgrep", "-f", "privileged-helper"])).trim().split("\n")[0]!;
    await sh(["kill", "-9", helper]);
    await sb.waitForHub(url, { previousPid: before });
    expect(await journal()).toMatch(/the privileged helper exited; exiting so the service manager restarts slicehub/);
    expect((await show("slicehub-server-alice.service", "ActiveState")).ActiveState).toBe("active");
    expect((await alice.request("/user/alice/api/status")).status).toBe(200);
  });

  it("stops units the store does not know when it starts", async () => {
    await sh(["systemd-run", "--unit", "slicehub-server-ghost.service", "sleep", "300"]);
    const before = (await show("slicehub.service", "MainPID")).MainPID!;
    await sh(["systemctl", "restart", "slicehub.service"]);
    await sb.waitForHub(url, { previousPid: before });
    const deadline = Date.now() + 20_000;
    let state = "active";
    while (Date.now() < deadline && state === "active") {
      state = (await show("slicehub-server-ghost.service", "ActiveState")).ActiveState ?? "";
      if (state === "active") await sleep(100);
    }
    expect(state).not.toBe("active");
    expect((await show("slicehub-server-alice.service", "ActiveState")).ActiveState).toBe("active");
  });

  it("stops a server: the unit and its credential file are gone", async () => {
    const csrf = await alice.csrf();
    expect((await alice.postForm("/hub/stop/alice", { _xsrf: csrf })).status).toBe(303);
    const s = await show("slicehub-server-alice.service", "ActiveState", "LoadState");
    expect(s.ActiveState).not.toBe("active");
    expect((await sb.exec(["test", "-e", "/run/slicehub/credentials/slicehub-server-alice.service.token"])).code).toBe(1);
  });
});
