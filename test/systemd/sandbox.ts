// A real systemd, booted as pid 1 of a private pid + mount namespace, for tests of the systemd spawner. It
// shares the host's file systems (users, /home, the checkout) and cgroup trees, but has its own /run (unit
// files, drop-ins, credentials), /tmp and /var/tmp. Needs root.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync, readFileSync } from "node:fs";
import { once } from "node:events";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CLI } from "../e2e/harness.js";

const SYSTEMD = "/lib/systemd/systemd";
// glibc's SIGRTMIN is 34; systemd halts on SIGRTMIN+4.
const SIGRTMIN_PLUS_4 = 38;

// Kept directories are parked under the new /run while /tmp and /var/tmp are replaced (systemd-tmpfiles would
// otherwise clean the host's /tmp), then bound back at their own paths so paths are the same inside and out.
// Shared propagation on / is what systemd expects; without it credentials directories come out empty.
const BOOT_SCRIPT = `
set -eu
mount -t tmpfs -o mode=0755 tmpfs /run
i=0
for d; do mkdir -p /run/keep/$i; mount --bind "$d" /run/keep/$i; i=$((i + 1)); done
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
i=0
for d; do mkdir -p "$d"; mount --bind /run/keep/$i "$d"; i=$((i + 1)); done
mount --make-rshared /
mkdir -p /run/systemd/system
printf '[Unit]\\nDescription=slicehub test sandbox\\n' > /run/systemd/system/sandbox.target
exec env container=unshare ${SYSTEMD} --system --unit=sandbox.target
`;

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? "/usr/bin:/bin").split(":").some((dir) => existsSync(`${dir}/${cmd}`));
}

export class SystemdSandbox {
  /** Runs a command inside the sandbox: in systemd's mount and pid namespaces. */
  readonly prefix: string[];

  private constructor(
    private readonly unshare: ChildProcess,
    /** systemd's pid as the host sees it. */
    readonly pid: number,
  ) {
    this.prefix = ["nsenter", "-t", String(pid), "-m", "-p"];
  }

  /** Why no sandbox can be made here, or undefined when it can. */
  static unavailable(): string | undefined {
    if (process.platform !== "linux") return "systemd sandbox: needs Linux";
    if (process.getuid?.() !== 0) return "systemd sandbox: needs root (namespaces, mounts, systemd as pid 1)";
    for (const cmd of ["unshare", "nsenter"]) if (!onPath(cmd)) return `systemd sandbox: ${cmd} not found on PATH`;
    try {
      accessSync(SYSTEMD, constants.X_OK);
    } catch {
      return `systemd sandbox: ${SYSTEMD} not found`;
    }
    return undefined;
  }

  /** Boots systemd with `keep` (absolute paths, e.g. a temp dir under /tmp) visible at the same paths inside. */
  static async boot(opts: { keep?: string[]; timeoutMs?: number } = {}): Promise<SystemdSandbox> {
    const unshare = spawn(
      "unshare",
      ["--pid", "--fork", "--mount", "--mount-proc", "--propagation", "private", "/bin/sh", "-c", BOOT_SCRIPT, "sandbox-boot", ...(opts.keep ?? [])],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    // systemd writes its console here; keep reading so it never blocks, and keep the tail for errors.
    let output = "";
    const collect = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8_000));
    unshare.stdout?.on("data", collect);
    unshare.stderr?.on("data", collect);
    let exited = false;
    unshare.once("exit", () => (exited = true));
    unshare.once("error", (err) => {
      exited = true;
      collect(Buffer.from(String(err)));
    });

    const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
    const fail = (why: string): Error => {
      // Killing pid 1 of the namespace (sh, or systemd once exec'd) ends everything in it.
      for (const pid of exited || unshare.pid === undefined ? [] : [childOf(unshare.pid), unshare.pid]) {
        if (pid !== undefined) killQuietly(pid);
      }
      return new Error(`systemd sandbox: ${why}\n${output}`);
    };
    let sandbox: SystemdSandbox | undefined;
    while (!sandbox) {
      if (exited) throw fail("unshare exited during boot");
      if (Date.now() > deadline) throw fail("systemd did not start in time");
      const pid = unshare.pid === undefined ? undefined : childOf(unshare.pid);
      // The child is sh until it execs systemd.
      if (pid !== undefined && comm(pid) === "systemd") sandbox = new SystemdSandbox(unshare, pid);
      else await sleep(50);
    }
    for (;;) {
      const state = (await sandbox.exec(["systemctl", "is-system-running"])).stdout.trim();
      if (state === "running" || state === "degraded") return sandbox;
      if (exited) throw fail("systemd exited during boot");
      if (Date.now() > deadline) {
        await sandbox.stop();
        throw fail(`still "${state}" after boot timeout`);
      }
      await sleep(100);
    }
  }

  exec(argv: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.prefix[0]!,
        [...this.prefix.slice(1), ...argv],
        { timeout: opts.timeoutMs ?? 30_000, killSignal: "SIGKILL", maxBuffer: 16 << 20 },
        (err, stdout, stderr) => {
          if (err && typeof err.code !== "number") reject(err);
          else resolve({ stdout, stderr, code: err ? (err.code as number) : 0 });
        },
      );
      // A command that exits without reading its input makes this write fail (EPIPE); its exit status says enough.
      child.stdin?.on("error", () => {});
      child.stdin?.end(opts.input);
    });
  }

  /** Runs a command in the sandbox and returns its stdout; a non-zero exit throws with its output. */
  async run(argv: readonly string[], opts: { what?: string; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(argv, { timeoutMs: opts.timeoutMs ?? 60_000 });
    if (r.code !== 0) throw new Error(`${opts.what ?? argv.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** `systemctl show UNIT -p P…` as an object of property → value. */
  async show(unit: string, ...props: string[]): Promise<Record<string, string>> {
    const out = await this.run(["systemctl", "show", unit, ...props.flatMap((p) => ["-p", p])]);
    return Object.fromEntries(out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  }

  /**
   * Waits (at most `timeoutMs`) until slicehub.service is active with a main process other than `previousPid`
   * (after a restart) and the hub at `url` answers /hub/login (the listener says 503 until adoption is done).
   * Returns that process's PID; throws with both units' journals when it does not come up.
   */
  async waitForHub(url: string, o: { previousPid?: string; timeoutMs?: number } = {}): Promise<string> {
    const deadline = Date.now() + (o.timeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      const s = await this.show("slicehub.service", "MainPID", "ActiveState");
      if (s.MainPID && s.MainPID !== "0" && s.MainPID !== o.previousPid && s.ActiveState === "active") {
        if (await fetch(`${url}/hub/login`).then((r) => r.status === 200, () => false)) return s.MainPID;
      }
      await sleep(100);
    }
    const journal = await this.exec(["journalctl", "-u", "slicehub", "-u", "slicehub-helper", "--no-pager", "-n", "200", "-o", "cat"]);
    throw new Error(`slicehub did not come up:\n${journal.stdout}`);
  }

  spawn(argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn(this.prefix[0]!, [...this.prefix.slice(1), ...argv], opts);
  }

  /** Halts systemd (which stops its units) and waits for the namespace to end; SIGKILL if it takes too long. */
  async stop(timeoutMs = 20_000): Promise<void> {
    if (this.unshare.exitCode !== null || this.unshare.signalCode !== null) return;
    const exit = once(this.unshare, "exit");
    try {
      process.kill(this.pid, SIGRTMIN_PLUS_4);
    } catch {
      // Already gone; the unshare process is about to exit.
    }
    const timeout = new AbortController();
    const timer = sleep(timeoutMs, "timeout" as const, { signal: timeout.signal }).catch(() => undefined);
    const first = await Promise.race([exit, timer]);
    timeout.abort();
    if (first !== "timeout") return;
    // Killing pid 1 of the namespace kills everything in it; then unshare itself.
    killQuietly(this.pid);
    killQuietly(this.unshare.pid!);
    await exit;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

function childOf(pid: number): number | undefined {
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const child = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(/\s+/)[0];
      if (child) return Number(child);
    }
  } catch {
    // The process is gone; the caller notices through its exit event.
  }
  return undefined;
}

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/**
 * Starts the installed slicehub.service in the sandbox with the test's drop-ins: the checkout's state directory
 * `dir` writable and the host's /tmp shared (tests reach the hub's files there), for slicehub-helper.service too
 * (its PrivateTmp would hide a checkout under /tmp, such as a fresh clone's, and the helper could not start).
 */
export async function startHubService(sb: SystemdSandbox, dir: string): Promise<void> {
  const r = await sb.exec([
    "sh",
    "-c",
    `mkdir -p /run/systemd/system/slicehub.service.d /run/systemd/system/slicehub-helper.service.d
printf '[Service]\\nPrivateTmp=no\\nReadWritePaths=${dir}\\n' > /run/systemd/system/slicehub.service.d/test.conf
printf '[Service]\\nPrivateTmp=no\\n' > /run/systemd/system/slicehub-helper.service.d/test.conf
systemctl daemon-reload && systemctl start slicehub`,
  ]);
  if (r.code !== 0) throw new Error(`starting slicehub.service failed (${r.code}): ${r.stdout}${r.stderr}`);
}

/** The argv of `slicehub install` for a test: its config in DIR/etc, its state in DIR/state, the units in `unitDir`. */
export function installArgs(dir: string, serviceUser: string, unitDir = "/run/systemd/system"): string[] {
  return [process.execPath, CLI, "install", "--config-dir", join(dir, "etc"), "--unit-dir", unitDir, "--user", serviceUser, "--state-dir", join(dir, "state")];
}

/** Debian's OpenSSH client, which the SSH tests run from the host (the sandbox shares its network). */
export const SSH = "/usr/bin/ssh";

/** ssh's arguments to log in as `user` on 127.0.0.1:`port` with the key file `key` only, never asking anything. */
export function sshArgs(key: string, port: number, user: string, extra: string[] = []): string[] {
  return [
    "-i", key,
    "-p", String(port),
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "BatchMode=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", "ConnectTimeout=10",
    "-o", "LogLevel=ERROR",
    ...extra,
    `${user}@127.0.0.1`,
  ];
}

/** One ssh command from the host, killed after `timeoutMs`; code -1 when ssh did not exit by itself. */
export function runSsh(args: string[], command: string, timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(SSH, [...args, command], { timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Removes the host's Unix accounts a test made (and their homes), by name. */
export function removeAccounts(made: (name: string) => boolean): void {
  for (const line of execFileSync("getent", ["passwd"]).toString().split("\n")) {
    const name = line.split(":")[0];
    if (!name || !made(name)) continue;
    try {
      execFileSync("userdel", ["-r", name], { stdio: "ignore" });
    } catch {
      // userdel exits non-zero when the home or mail spool is already gone; the account is removed anyway.
    }
  }
}

/**
 * Debian's ssh.service inside the sandbox on 127.0.0.1:`port`, with private overlays on /etc/ssh, /etc/systemd
 * and /usr/local (what install and the helper write stays in the sandbox). With `logind`, dbus and logind run
 * first, so pam_systemd registers sshd's sessions as on a Debian host.
 */
export async function startSshd(sb: SystemdSandbox, o: { sshd: string; port: number; logind: boolean }): Promise<void> {
  const units = [...(o.logind ? ["dbus.socket", "systemd-logind.service"] : []), "systemd-user-sessions.service", "ssh.service"];
  const r = await sb.exec(
    [
      "sh",
      "-c",
      `set -e
for d in /etc/ssh /etc/systemd /usr/local; do
  k=$(echo $d | tr / _); mkdir -p /run/overlay/$k/upper /run/overlay/$k/work
  mount -t overlay overlay -o lowerdir=$d,upperdir=/run/overlay/$k/upper,workdir=/run/overlay/$k/work $d
done
ssh-keygen -A >/dev/null
mkdir -p /run/systemd/system/ssh.service.d
printf '[Service]\\nExecStart=\\nExecStart=${o.sshd} -D -p ${o.port} -o ListenAddress=127.0.0.1\\n' > /run/systemd/system/ssh.service.d/test.conf
systemctl daemon-reload
systemctl start ${units.join(" ")}`,
    ],
    { timeoutMs: 60_000 },
  );
  if (r.code !== 0) throw new Error(`starting sshd in the sandbox failed (${r.code}): ${r.stderr}${r.stdout}`);
}
