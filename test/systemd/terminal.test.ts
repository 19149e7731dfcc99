// The browser terminal under the systemd spawner, in a real systemd (test/systemd/sandbox.ts): the privileged
// helper runs the login shell with `systemd-run --pty` as jupyter-<name>'s account (here a test prefix), in the
// user's slice with the profile's limits and the servers' hardening, and relays it over a Unix socket only the
// service user can reach. Works without any Jupyter server. Also: reattach, the limits, an admin's End, and a
// hub restart ending terminals (the page then says so).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { Browser, ROOT } from "../e2e/harness.js";
import { connectTerminal, cookieOf, openTerminal, ticketOf, type TermConn } from "../e2e/terminal-ws.js";
import { installArgs, removeAccounts, startHubService, SystemdSandbox } from "./sandbox.js";

const skip = SystemdSandbox.unavailable();
if (skip) console.warn(`skipping the systemd terminal tests: ${skip}`);

const hex = randomBytes(2).toString("hex");
const SERVICE_USER = `sts${hex}`;
const PREFIX = `stt${hex}-`;

describe.skipIf(skip !== undefined)("browser terminal under the systemd spawner", () => {
  let sb: SystemdSandbox;
  let dir: string;
  let url: string;
  let alice: Browser;
  let root: Browser;
  const conns: TermConn[] = [];

  const sh = (argv: string[], what?: string) => sb.run(argv, { what });
  const show = (unit: string, ...props: string[]) => sb.show(unit, ...props);
  const journal = () => sb.exec(["journalctl", "-u", "slicehub", "--no-pager", "-n", "200", "-o", "cat"]).then((r) => r.stdout);
  const terminalUnits = async () => (await sh(["systemctl", "list-units", "--plain", "--no-legend", "--all", "slicehub-terminal-*.service"])).split("\n").map((l) => l.split(/\s+/)[0]).filter(Boolean);

  async function connect(b: Browser, page: string): Promise<TermConn> {
    const { ticket, status, html } = await ticketOf(b, page);
    if (!ticket) throw new Error(`no ticket on ${page} (${status}): ${html.slice(0, 500)}`);
    const c = await connectTerminal(url, page, ticket, { cookie: cookieOf(b), origin: url });
    conns.push(c);
    await c.waitForMessage("hello", 20_000);
    return c;
  }

  /** Runs `wait`; if it fails, prints what the processes and units were doing, then fails. */
  async function diagnosed<T>(t: TermConn, wait: () => Promise<T>): Promise<T> {
    try {
      return await wait();
    } catch (e) {
      const ps = await sh(["sh", "-c", "ps -eo pid,ppid,stat,wchan:32,args | grep -E 'systemd-run|bash|dbus' | grep -v grep; for p in $(pgrep -f 'systemd-run --pty'); do echo == $p; cat /proc/$p/stack 2>/dev/null; ls -l /proc/$p/fd; done; ls -la /run/slicehub/terminals; systemctl status --no-pager 'slicehub-terminal-*' dbus.service"]).catch((err: unknown) => String(err));
      console.log("terminal diagnostics:", JSON.stringify(t.messages), JSON.stringify(t.output()), ps, (await journal()).split("\n").filter((l) => /terminal|dbus/i.test(l)).slice(-30).join("\n"));
      throw e;
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync("/var/lib/slicehub-test-");
    chmodSync(dir, 0o755);
    sb = await SystemdSandbox.boot({ keep: [ROOT] });
    // systemd-run --pty needs the system bus, as on any Debian host with the dbus package.
    await sh(["systemctl", "start", "dbus.socket"]);
    url = `http://127.0.0.1:${await freePort()}`;
    const etc = join(dir, "etc");
    await sh(installArgs(dir, SERVICE_USER));
    const config = {
      listen: url,
      state_dir: join(dir, "state"),
      run_as: SERVICE_USER,
      log_level: "debug",
      auth: { kind: "dev", admin_users: ["root1"] },
      spawner: {
        kind: "systemd",
        cmd: ["/bin/false"],
        unix_users: { prefix: PREFIX },
        slice_limits: { memory: "2G" },
        profiles: [
          { name: "small", title: "Small", memory: "512M", cpu: 1, tasks: 200 },
          { name: "big", title: "Big", memory: "1G", cpu: 2 },
        ],
      },
      terminal: { max_per_user: 2 },
    };
    writeFileSync(join(etc, "config.json"), JSON.stringify(config, null, 2));
    await startHubService(sb, dir);
    await sb.waitForHub(url);
    alice = new Browser(url);
    await alice.login("alice");
    root = new Browser(url);
    await root.login("root1");
  }, 180_000);

  afterAll(async () => {
    for (const c of conns) c.ws.terminate();
    if (sb) {
      if (process.env.SLICEHUB_TEST_JOURNAL) console.log(await journal());
      await sb.stop();
    }
    removeAccounts((name) => name.startsWith(PREFIX) || name === SERVICE_USER);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  let page = "";

  it("runs a login shell as the user's account, in their slice, with their profile's MemoryMax, without a server", async () => {
    const opened = await openTerminal(alice, "alice");
    expect(opened.status, opened.body).toBe(303);
    page = opened.location!;
    const t = await connect(alice, page);
    t.send("id -un; echo $((6*7)); cat /proc/self/cgroup; export KEEP=still-here\r");
    await diagnosed(t, () => t.waitFor(new RegExp(`[\\r\\n]${PREFIX}alice\\r?\\n`), 15_000));
    await t.waitFor(/[\r\n]42\r?\n/);
    const cgroup = await t.waitFor(/0::\/\S+/);
    expect(cgroup).toMatch(/\/slicehub\.slice\/slicehub-alice\.slice\/slicehub-terminal-alice-[0-9a-f]{16}\.service$/);
    const unit = /slicehub-terminal-alice-[0-9a-f]{16}\.service/.exec(cgroup)![0];
    const props = await show(unit, "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec", "User", "NoNewPrivileges", "ProtectSystem", "Slice");
    expect(props).toMatchObject({ MemoryMax: String(512 * 2 ** 20), TasksMax: "200", CPUQuotaPerSecUSec: "1s", User: execFileSync("id", ["-u", `${PREFIX}alice`]).toString().trim(), NoNewPrivileges: "yes", ProtectSystem: "strict", Slice: "slicehub-alice.slice" });
    expect((await show("slicehub-alice.slice", "MemoryMax")).MemoryMax).toBe(String(2 * 2 ** 30));
    // No server was ever started.
    expect((await sh(["systemctl", "list-units", "--plain", "--no-legend", "--all", "slicehub-server-*"])).trim()).toBe("");
    // The bytes' socket: only the service user (and root) can reach it.
    const st = (await sh(["stat", "-c", "%U %a", "/run/slicehub/terminals"])).trim();
    expect(st).toBe(`${SERVICE_USER} 700`);
    t.resize(120, 40);
    t.send("stty size\r");
    await t.waitFor(/40 120/);
    t.ws.close();
    await t.closed;
  }, 60_000);

  it("reattaches to the same shell after a reload", async () => {
    const t = await connect(alice, page);
    t.send("echo keep=$KEEP\r");
    await t.waitFor(/keep=still-here/);
    t.ws.close();
    await t.closed;
  }, 30_000);

  it("ends the unit when the shell exits, and holds the user to max_per_user", async () => {
    const second = await openTerminal(alice, "alice");
    expect(second.status, second.body).toBe(303);
    const third = await openTerminal(alice, "alice");
    expect(third.status).toBe(429);
    const t = await connect(alice, second.location!);
    t.send("exit 5\r");
    expect((await diagnosed(t, () => t.waitForMessage("exit", 15_000))).code).toBe(5);
    const deadline = Date.now() + 10_000;
    while ((await terminalUnits()).length !== 1 && Date.now() < deadline) await sleep(100);
    expect(await terminalUnits()).toHaveLength(1);
  }, 60_000);

  it("an admin's End stops the unit at once", async () => {
    const t = await connect(alice, page);
    const csrf = await root.csrf();
    expect((await root.postForm("/hub/terminals/end", { _xsrf: csrf, user: "alice" })).status).toBe(303);
    expect(String((await t.waitForMessage("ended")).message)).toMatch(/admin/);
    const deadline = Date.now() + 10_000;
    while ((await terminalUnits()).length && Date.now() < deadline) await sleep(100);
    expect(await terminalUnits()).toEqual([]);
  }, 30_000);

  it("repairs a server that failed to start: the terminal gets the limits of the profile it was started with", async () => {
    const csrf = await alice.csrf();
    const started = await alice.request("/hub/api/users/alice/server", { method: "POST", headers: { "content-type": "application/json", "x-xsrftoken": csrf }, body: JSON.stringify({ profile: "big" }) });
    // /bin/false as the server: the start fails (at once, or while the hub waits for it).
    await started.arrayBuffer();
    const deadline = Date.now() + 30_000;
    let failed = "";
    while (Date.now() < deadline && !/Could not start/.test(failed)) {
      failed = await (await alice.request("/hub/spawn-pending/alice")).text();
      await sleep(200);
    }
    expect(failed).toMatch(/Could not start alice/);
    expect(failed).toContain('formaction="/hub/terminal/alice"');
    // The failed page's button posts its form (with _xsrf) to the terminal path.
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(failed)![1]!;
    const res = await alice.postForm("/hub/terminal/alice", { _xsrf: xsrf, next: "/hub/user/alice/", profile: "big" });
    expect(res.status).toBe(303);
    const t = await connect(alice, res.headers.get("location")!);
    t.send("cat /proc/self/cgroup\r");
    const cgroup = await diagnosed(t, () => t.waitFor(/0::\/\S+terminal\S+/));
    const unit = /slicehub-terminal-alice-[0-9a-f]{16}\.service/.exec(cgroup)![0];
    expect(await show(unit, "MemoryMax", "CPUQuotaPerSecUSec")).toMatchObject({ MemoryMax: String(2 ** 30), CPUQuotaPerSecUSec: "2s" });
    t.send("exit\r");
    await t.waitForMessage("exit", 15_000);
  }, 60_000);

  it("a hub restart ends terminals, and the page says so and offers a new one", async () => {
    const opened = await openTerminal(alice, "alice");
    expect(opened.status, opened.body).toBe(303);
    const t = await connect(alice, opened.location!);
    t.send("echo before-restart\r");
    await t.waitFor(/before-restart/);
    const pid = (await show("slicehub.service", "MainPID")).MainPID;
    await sh(["systemctl", "restart", "slicehub"]);
    await t.closed;
    await sb.waitForHub(url, { previousPid: pid });
    const deadline = Date.now() + 15_000;
    while ((await terminalUnits()).length && Date.now() < deadline) await sleep(200);
    expect(await terminalUnits()).toEqual([]);
    const after = await ticketOf(alice, opened.location!);
    expect(after.status).toBe(410);
    expect(after.html).toMatch(/hub restarted/);
    expect(after.html).toContain("Open a new terminal");
    // And a new one works.
    const again = await openTerminal(alice, "alice");
    expect(again.status, again.body).toBe(303);
    const t2 = await connect(alice, again.location!);
    t2.send("echo $((6*7))\r");
    await t2.waitFor(/[\r\n]42\r?\n/);
  }, 90_000);
});
