// The systemd spawner's building blocks against a real systemd (booted in a private namespace by
// SystemdSandbox) and a real Unix account.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SystemdSpawnerSchema } from "../../src/config/schema.js";
import { journalTail, listUnits, runUnit, showUnit, stopUnit } from "../../spawners/systemd/systemctl.js";
import { sliceSetPropertyArgv, systemdEscape, systemdRunArgv, unitNames, type Limits, type UnitSpec } from "../../spawners/systemd/units.js";
import { SystemdSandbox } from "./sandbox.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const WRAPPER_SOURCE = path.join(REPO, "spawners/systemd/slicehub-server-wrapper");
// Units get a private /tmp, and the checkout may live under /tmp: run the wrapper from a copy in /run, as the
// privileged helper does.
const WRAPPER = "/run/slicehub-test/slicehub-server-wrapper";
const TOKEN = randomBytes(16).toString("hex");
const HARDENING = SystemdSpawnerSchema.parse({ kind: "systemd" }).hardening;

const unavailable = SystemdSandbox.unavailable();

describe.skipIf(unavailable)(`real systemd in a sandbox${unavailable ? ` — skipped: ${unavailable}` : ""}`, () => {
  let sb: SystemdSandbox;
  let dir: string;
  let account: { name: string; uid: number; gid: number; home: string } | undefined;
  let started: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "slicehub-sandbox-"));
    const name = `sht-${randomBytes(2).toString("hex")}`;
    execFileSync("useradd", ["--create-home", "--comment", "slicehub test", name]);
    const [, , uid, gid, , home] = execFileSync("getent", ["passwd", name], { encoding: "utf8" }).trim().split(":");
    account = { name, uid: Number(uid), gid: Number(gid), home: home! };
    sb = await SystemdSandbox.boot({ keep: [REPO, dir] });
    const copied = await sb.exec(["install", "-D", "-m", "0755", WRAPPER_SOURCE, WRAPPER]);
    if (copied.code !== 0) throw new Error(`cannot copy the wrapper: ${copied.stderr}`);
  });

  afterAll(async () => {
    await sb?.stop();
    if (account) execFileSync("userdel", ["-r", account.name], { stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    for (const unit of started) await stopUnit(unit, 2_000, sb.prefix);
    started = [];
  });

  const user = () => account!;

  /** A root-only token file, as the helper would write it. */
  function credential(): string {
    const file = path.join(dir, `token-${randomBytes(4).toString("hex")}`);
    writeFileSync(file, TOKEN, { mode: 0o600 });
    return file;
  }

  function spec(server: string, argv: string[], over: Partial<UnitSpec> = {}): UnitSpec {
    const { name, uid, gid, home } = user();
    return {
      ...unitNames(name, server),
      uid,
      gid,
      home,
      argv,
      env: {},
      credentialPath: credential(),
      wrapperPath: WRAPPER,
      limits: {},
      hardening: HARDENING,
      properties: {},
      description: `slicehub test server ${name}/${server}`,
      ...over,
    };
  }

  async function start(s: UnitSpec): Promise<string> {
    await runUnit(systemdRunArgv(s), sb.prefix);
    started.push(s.unit);
    return s.unit;
  }

  const show = (unit: string, ...props: string[]) => showUnit(unit, props, sb.prefix);

  async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  }

  const journalHas = (unit: string, pattern: RegExp) =>
    until(`${unit} to log ${pattern}`, async () => {
      const log = await journalTail(unit, 50, sb.prefix);
      return pattern.test(log) && log;
    });

  it("runs the server as the user, in the home, in the user's slice, with its limits, and stops it", async () => {
    const { name, uid, gid, home } = user();
    const limits: Limits = { memory: "64M", cpu: 1.5, tasks: 50 };
    const unit = await start(spec("", ["sh", "-c", "echo started in $(pwd); exec sleep 300"], { limits }));

    const p = await show(unit, "MainPID", "ControlGroup", "MemoryMax", "CPUQuotaPerSecUSec", "TasksMax", "ProtectSystem", "ReadWritePaths", "NoNewPrivileges");
    expect(p.ControlGroup).toBe(`/slicehub.slice/slicehub-${systemdEscape(name)}.slice/slicehub-server-${systemdEscape(name)}.service`);
    expect(p).toMatchObject({ MemoryMax: String(64 << 20), CPUQuotaPerSecUSec: "1.500000s", TasksMax: "50" });
    expect(p).toMatchObject({ ProtectSystem: "strict", ReadWritePaths: home, NoNewPrivileges: "yes" });

    const status = (await sb.exec(["cat", `/proc/${p.MainPID}/status`])).stdout;
    expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s`, "m"));
    expect(status).toMatch(new RegExp(`^Gid:\\s+${gid}\\s+${gid}\\s`, "m"));
    expect((await sb.exec(["readlink", `/proc/${p.MainPID}/cwd`])).stdout.trim()).toBe(home);
    await journalHas(unit, new RegExp(`^started in ${home}$`, "m"));

    expect(await listUnits(undefined, sb.prefix)).toContain(unit);
    await stopUnit(unit, 5_000, sb.prefix);
    expect(await show(unit, "LoadState")).toEqual({ LoadState: "not-found" });
    expect(await listUnits(undefined, sb.prefix)).not.toContain(unit);
  });

  it("keeps names with - and . inside one level of the hierarchy", async () => {
    const { name } = user();
    const unit = await start(spec("x-y.z", ["sleep", "300"]));
    const slice = unitNames(name, "").slice;
    expect(unit).toBe(`slicehub-server-${systemdEscape(name)}-x\\x2dy.z.service`);
    expect((await show(unit, "ControlGroup")).ControlGroup).toBe(`/slicehub.slice/${slice}/${unit}`);
    expect((await show(slice, "Slice")).Slice).toBe("slicehub.slice");
  });

  it("hands the token over as a credential only: in the server's env, not in any unit property", async () => {
    const s = spec("token", [
      "sh",
      "-c",
      'echo "sha=$(printf %s "$JUPYTERHUB_API_TOKEN" | sha256sum | cut -d" " -f1) same=$([ "$JPY_API_TOKEN" = "$JUPYTERHUB_API_TOKEN" ] && echo yes)"; exec sleep 300',
    ]);
    const unit = await start(s);
    // systemd copied the file at start; the helper may delete its copy right away.
    rmSync(s.credentialPath);

    const sha = createHash("sha256").update(TOKEN).digest("hex");
    await journalHas(unit, new RegExp(`^sha=${sha} same=yes$`, "m"));
    expect((await show(unit, "ActiveState")).ActiveState).toBe("active");

    // Both are readable by every local user: all properties, and the transient unit file.
    const properties = (await sb.exec(["systemctl", "show", unit])).stdout;
    expect(properties).toContain(`Id=${unit}`);
    expect(properties).not.toContain(TOKEN);
    const unitFile = (await sb.exec(["systemctl", "cat", unit])).stdout;
    expect(unitFile).toContain(`LoadCredential=jupyterhub-api-token:${s.credentialPath}`);
    expect(unitFile).not.toContain(TOKEN);
    // Readable by the server's user and nobody else.
    const stat = await sb.exec(["stat", "-c", "%u %a", `/run/credentials/${unit}`, `/run/credentials/${unit}/jupyterhub-api-token`]);
    expect(stat.stdout).toBe(`${user().uid} 500\n${user().uid} 400\n`);
  });

  it("fails the start with systemd's message when the credential file is missing", async () => {
    const s = spec("nocred", ["sleep", "300"], { credentialPath: path.join(dir, "missing") });
    await expect(start(s)).rejects.toThrow(/systemd-run .*failed \(exit 1\): Job for .* failed/);
  });

  it("OOM-kills a server over MemoryMax and keeps systemd running", async () => {
    const hog = "a = []\nwhile True: a.append(b'x' * (1 << 20))";
    const unit = await start(spec("hog", ["/usr/bin/python3", "-c", hog], { limits: { memory: "64M" } }));
    // cgroup v1 here: systemd sees the kernel's OOM kill as SIGKILL (Result=signal), on v2 as Result=oom-kill.
    await journalHas(unit, /status=9\/KILL|oom-kill/);
    expect((await sb.exec(["systemctl", "is-system-running"])).stdout.trim()).toMatch(/^(running|degraded)$/);
  });

  it("applies admin drop-ins to every new server unit and user slice", async () => {
    const dropIns = {
      "/run/systemd/system/slicehub-server-.service.d": "[Service]\nEnvironment=DROPIN=1\n",
      "/run/systemd/system/slicehub-.slice.d": "[Slice]\nTasksMax=77\n",
    };
    const write = async (d: string, text: string) => {
      const r = await sb.exec(["sh", "-c", 'mkdir -p "$1" && cat > "$1/50-test.conf"', "sh", d], { input: text });
      expect(r.code).toBe(0);
    };
    try {
      for (const [d, text] of Object.entries(dropIns)) await write(d, text);
      await sb.exec(["systemctl", "daemon-reload"]);
      const { slice } = unitNames("dropin-user", "");
      const unit = await start(spec("dropin", ["sleep", "300"], { env: { GREETING: "hi" }, slice }));
      expect((await show(unit, "Environment")).Environment).toMatch(/(^| )DROPIN=1( |$)/);
      expect((await show(slice, "TasksMax")).TasksMax).toBe("77");
    } finally {
      await sb.exec(["rm", "-rf", ...Object.keys(dropIns)]);
      await sb.exec(["systemctl", "daemon-reload"]);
    }
  });

  it("changes a user slice's limits at runtime", async () => {
    await start(spec("slice", ["sleep", "300"]));
    const { slice } = unitNames(user().name, "");
    const argv = sliceSetPropertyArgv(slice, { memory: "256M", cpu: 0.5, tasks: 64 })!;
    expect((await sb.exec(argv)).code).toBe(0);
    expect(await show(slice, "MemoryMax", "CPUQuotaPerSecUSec", "TasksMax")).toEqual({
      MemoryMax: String(256 << 20),
      CPUQuotaPerSecUSec: "500ms",
      TasksMax: "64",
    });
  });

  it("kills a server that ignores SIGTERM, and stopping it again is fine", async () => {
    const stubborn = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(300)";
    const unit = await start(spec("stubborn", ["/usr/bin/python3", "-c", stubborn]));
    await journalHas(unit, /^ready$/m);
    await stopUnit(unit, 500, sb.prefix);
    expect((await show(unit, "LoadState")).LoadState).toBe("not-found");
    await stopUnit(unit, 500, sb.prefix);
  });
});
