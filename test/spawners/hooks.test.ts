import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runHooks, type HookContext, type HookLine, type HookNote, type RunHooksOptions } from "../../spawners/hooks.js";
import type { Logger } from "../../src/log.js";
import { alive } from "../proc.js";

const CTX: HookContext = {
  user: "ada@example.org",
  unixUser: "jupyter-ada",
  uid: 1234,
  gid: 1235,
  home: "/home/jupyter-ada",
  serverName: "gpu",
  profile: "big",
};

interface LogEntry {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

let root: string;
let dir: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "slicehub-hooks-"));
  dir = path.join(root, "roothooks.d");
  await mkdir(dir);
  await chmod(dir, 0o755);
});

// Root removes the tree whatever owners and modes the test left on it.
afterEach(() => rm(root, { recursive: true, force: true }));

/** A hook script in the hooks directory (or at `file`), root-owned and 0755 unless told otherwise. */
async function script(name: string, body: string, opts: { mode?: number; file?: string; shebang?: string } = {}) {
  const file = opts.file ?? path.join(dir, name);
  await writeFile(file, `${opts.shebang ?? "#!/bin/sh\n"}${body}\n`);
  await chmod(file, opts.mode ?? 0o755);
  return file;
}

async function run(extra: Partial<RunHooksOptions> & { onLine?: (l: HookLine) => void } = {}, hooksDir = dir) {
  const lines: HookLine[] = [];
  const notes: HookNote[] = [];
  const logs: LogEntry[] = [];
  const record = (level: string) => (msg: string, fields?: Record<string, unknown>) => logs.push({ level, msg, fields });
  const log: Logger = { debug: record("debug"), info: record("info"), warn: record("warn"), error: record("error"), child: () => log };
  const result = await runHooks(hooksDir, CTX, {
    timeoutMs: 10_000,
    log,
    onNote: (n) => notes.push(n),
    ...extra,
    onLine: (l) => {
      lines.push(l);
      extra.onLine?.(l);
    },
  });
  return { result, lines, notes, logs, text: lines.map((l) => l.line) };
}

/** A process that has closed its pipes is still on its way out for a moment; give it a bounded while. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(20);
  return !alive(pid);
}

const pidsIn = (text: string[]) => text.map(Number).filter((n) => Number.isInteger(n) && n > 1);

// Ownership and the root-only rules are the point of these tests; they cannot run as anyone else.
describe.skipIf(process.getuid?.() !== 0)("runHooks", () => {
  it("runs hooks in byte order of their names, not UTF-16 or locale order", async () => {
    const names = ["10-b", "2-a", "A", "a", "_x", "z", "ä", "\u{FF01}", "\u{1F600}"];
    for (const name of names) await script(name, 'basename "$0"');

    const { result, text, notes } = await run();

    // UTF-8 puts U+FF01 (EF BC 81) before U+1F600 (F0 9F 98 80); UTF-16 code units put the emoji first.
    expect(text).toEqual(["10-b", "2-a", "A", "_x", "a", "z", "ä", "\u{FF01}", "\u{1F600}"]);
    expect([...names].sort().slice(-2)).toEqual(["\u{1F600}", "\u{FF01}"]);
    expect(result).toEqual({ ran: names.length, warnings: [] });
    expect(notes).toEqual([]);
  });

  it("gives a hook exactly the fixed environment, nothing from the daemon's", async () => {
    process.env.SLICEHUB_TEST_SECRET = "must-not-leak";
    try {
      // The environ the kernel handed the shell, before the shell adds PWD and friends.
      await script("env", "tr '\\0' '\\n' < /proc/$$/environ");
      const { text, result } = await run();

      expect(text.sort()).toEqual([
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SLICEHUB_GID=1235",
        "SLICEHUB_HOME=/home/jupyter-ada",
        "SLICEHUB_PROFILE=big",
        "SLICEHUB_SERVER_NAME=gpu",
        "SLICEHUB_UID=1234",
        "SLICEHUB_UNIX_USER=jupyter-ada",
        "SLICEHUB_USER=ada@example.org",
      ]);
      expect(result.warnings).toEqual([]);
    } finally {
      delete process.env.SLICEHUB_TEST_SECRET;
    }
  });

  it("runs a hook in / with stdin on /dev/null, so reading it ends at once", async () => {
    await script("where", 'readlink /proc/$$/cwd; readlink /proc/$$/fd/0; cat; echo "stdin at EOF"');
    const { text, result } = await run({ timeoutMs: 10_000 });
    expect(text).toEqual(["/", "/dev/null", "stdin at EOF"]);
    expect(result.warnings).toEqual([]);
  });

  it("streams lines while the hook runs, named by hook and stream, and flushes a last partial line", async () => {
    const go = path.join(root, "go");
    // The hook waits for a file the test creates only once it has the first line, so the second line can
    // exist only if the first was delivered while the hook was still running.
    await script("1-slow", `echo first; echo oops >&2; while [ ! -e ${go} ]; do sleep 0.02; done; echo second`);
    await script("2-partial", "printf 'no newline'");
    const { lines, result } = await run({
      timeoutMs: 10_000,
      onLine: (l) => {
        if (l.line === "first") writeFileSync(go, "");
      },
    });

    const stdout = lines.filter((l) => l.stream === "stdout");
    expect(stdout).toEqual([
      { hook: "1-slow", stream: "stdout", line: "first" },
      { hook: "1-slow", stream: "stdout", line: "second" },
      { hook: "2-partial", stream: "stdout", line: "no newline" },
    ]);
    expect(lines.filter((l) => l.stream === "stderr")).toEqual([{ hook: "1-slow", stream: "stderr", line: "oops" }]);
    expect(result).toEqual({ ran: 2, warnings: [] });
  });

  it("reports a failing hook and carries on with the next ones", async () => {
    await script("10-fail", "echo failing; exit 3");
    await script("20-signal", "kill -TERM $$");
    await script("30-ok", "echo ok");

    const { result, text, notes, logs } = await run();

    expect(text).toEqual(["failing", "ok"]);
    const warnings = ["hook 10-fail failed with status 3", "hook 20-signal was killed by SIGTERM"];
    expect(result).toEqual({ ran: 3, warnings });
    expect(notes).toEqual([
      { hook: "10-fail", level: "warn", message: warnings[0] },
      { hook: "20-signal", level: "warn", message: warnings[1] },
    ]);
    expect(logs).toEqual([
      { level: "warn", msg: warnings[0], fields: { hook: "10-fail", user: CTX.user } },
      { level: "warn", msg: warnings[1], fields: { hook: "20-signal", user: CTX.user } },
    ]);
  });

  it("kills a hook that times out together with the processes it started, then runs the next", async () => {
    await script("1-slow", "sleep 60 & echo $!; echo $$; sleep 30");
    await script("2-next", "echo next");

    const { result, text, logs } = await run({ timeoutMs: 300 });

    const pids = pidsIn(text);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(await gone(pid)).toBe(true);
    expect(text.at(-1)).toBe("next");
    expect(result).toEqual({ ran: 2, warnings: ["hook 1-slow timed out after 0.3 s"] });
    // SIGTERM was enough.
    expect(logs.map((l) => l.msg)).toEqual(["hook 1-slow timed out after 0.3 s"]);
  });

  it("SIGKILLs a hook that ignores SIGTERM once the grace period is over", async () => {
    // An ignored signal stays ignored across exec, so the sleep ignores SIGTERM too.
    await script("stubborn", "trap '' TERM; echo $$; sleep 30");
    const started = Date.now();

    const { result, text, logs } = await run({ timeoutMs: 300, killGraceMs: 300 });

    const [pid] = pidsIn(text);
    expect(await gone(pid!)).toBe(true);
    expect(result.warnings).toEqual(["hook stubborn timed out after 0.3 s"]);
    expect(logs).toContainEqual({ level: "warn", msg: "hook still running after SIGTERM; killing it", fields: { hook: "stubborn" } });
    // Not a speed check: it cannot have ended before the grace period ran out, since it ignored SIGTERM.
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
  });

  it("waits for a hook's output to close, so a background process holding it counts as still running", async () => {
    await script("leaky", "sleep 60 & echo $!; exit 0");
    const { result, text } = await run({ timeoutMs: 300 });
    const [pid] = pidsIn(text);
    expect(await gone(pid!)).toBe(true);
    expect(result.warnings).toEqual(["hook leaky timed out after 0.3 s; it exited, but processes it started kept its output open"]);
  });

  it("skips what is not a hook with an info note saying why", async () => {
    await script("a-notexec", "echo no", { mode: 0o644 });
    await mkdir(path.join(dir, "b-dir"));
    execFileSync("mkfifo", [path.join(dir, "c-fifo")]);
    await symlink(path.join(root, "missing"), path.join(dir, "d-broken"));
    for (const name of [".hidden", "e~", "f.dpkg-old"]) await script(name, "echo no");
    await script("g-ok", "echo ok");

    const { result, text, notes } = await run();

    expect(text).toEqual(["ok"]);
    expect(result).toEqual({ ran: 1, warnings: [] });
    const info = (hook: string, why: string) => ({ hook, level: "info", message: `skipped ${hook}: ${why}` });
    expect(notes).toEqual([
      info(".hidden", "hidden, backup or package-manager file"),
      info("a-notexec", "not executable"),
      info("b-dir", "is a directory"),
      info("c-fifo", "not a regular file"),
      info("d-broken", "broken symlink"),
      info("e~", "hidden, backup or package-manager file"),
      info("f.dpkg-old", "hidden, backup or package-manager file"),
    ]);
  });

  it("warns about a script without #! or with a missing interpreter and runs the rest", async () => {
    await script("1-noshebang", "echo ran-by-sh", { shebang: "" });
    await script("2-badinterp", "echo ran", { shebang: "#!/nonexistent/sh\n" });
    await script("3-ok", "echo ok");

    const { result, text } = await run();

    expect(text).toEqual(["ok"]);
    expect(result).toEqual({
      ran: 1,
      warnings: [
        "cannot run hook 1-noshebang: it has no #! line and is not an ELF binary",
        "cannot run hook 2-badinterp: the interpreter on its #! line was not found",
      ],
    });
  });

  it("runs symlinked hooks whose targets are root-owned: a script elsewhere and an ELF binary", async () => {
    const elsewhere = await script("", "echo linked", { file: path.join(root, "linked.sh") });
    await symlink(elsewhere, path.join(dir, "1-script"));
    await symlink("/bin/true", path.join(dir, "2-binary"));

    const { result, text } = await run();

    expect(text).toEqual(["linked"]);
    expect(result).toEqual({ ran: 2, warnings: [] });
  });

  it("skips a hook file that is not root's or is writable by others, and runs the rest", async () => {
    await chown(await script("1-theirs", "echo no"), 1000, 1000);
    await script("2-group", "echo no", { mode: 0o775 });
    await script("3-world", "echo no", { mode: 0o757 });
    const target = await script("", "echo no", { file: path.join(root, "theirs.sh") });
    await chown(target, 1000, 1000);
    await symlink(target, path.join(dir, "4-link-to-theirs"));
    await script("5-ok", "echo ok");

    const { result, text, notes } = await run();

    expect(text).toEqual(["ok"]);
    const warnings = [
      "skipped hook 1-theirs: the file is owned by uid 1000, not root",
      "skipped hook 2-group: the file is writable by group 0",
      "skipped hook 3-world: the file is writable by everyone",
      "skipped hook 4-link-to-theirs: the file is owned by uid 1000, not root",
    ];
    expect(result).toEqual({ ran: 1, warnings });
    expect(notes.map((n) => n.level)).toEqual(["warn", "warn", "warn", "warn"]);
  });

  it.each([
    ["writable by its group", 0o775, 0, "is writable by group 0"],
    ["writable by everyone", 0o757, 0, "is writable by everyone"],
    ["owned by another user", 0o755, 1000, "is owned by uid 1000, not root"],
  ])("refuses every hook when the directory is %s", async (_what, mode, uid, why) => {
    await script("hook", "echo no");
    await chmod(dir, mode);
    await chown(dir, uid, 0);
    // Through a symlink, so the check is seen to apply to the real directory.
    const link = path.join(root, "link.d");
    await symlink(dir, link);

    const { result, text, notes } = await run({}, link);

    const message = `${await realpath(dir)} ${why}; refusing to run hooks from it`;
    expect(text).toEqual([]);
    expect(notes).toEqual([{ level: "warn", message }]);
    expect(result).toEqual({ ran: 0, warnings: [message] });
  });

  it("runs hooks from a safe directory reached through a symlink", async () => {
    await script("hook", "echo yes");
    const link = path.join(root, "link.d");
    await symlink(dir, link);
    expect((await run({}, link)).text).toEqual(["yes"]);
  });

  it("warns when the hooks path is a file, not a directory", async () => {
    const file = await script("", "echo no", { file: path.join(root, "file.d") });
    const { result } = await run({}, file);
    expect(result).toEqual({ ran: 0, warnings: [`${file} is not a directory; no hooks run`] });
  });

  it("notes a missing directory and runs nothing", async () => {
    const missing = path.join(root, "nope.d");
    const { result, notes, logs } = await run({}, missing);
    const message = `no hooks directory ${missing}; nothing to run`;
    expect(notes).toEqual([{ level: "info", message }]);
    expect(result).toEqual({ ran: 0, warnings: [] });
    expect(logs).toEqual([{ level: "info", msg: message, fields: { hook: undefined, user: CTX.user } }]);
  });

  it("cuts over-long lines and drops output past the per-hook cap, noting each once", async () => {
    await script("1-long", "head -c 5000 /dev/zero | tr '\\0' x; echo; echo short; head -c 10000 /dev/zero | tr '\\0' y");
    // 3 MB of output: the hook must still end on its own (the runner keeps reading), with status 0.
    await script("2-flood", "yes 0123456789abcdef | head -c 3000000");

    const { result, lines, notes } = await run();

    const long = lines.filter((l) => l.hook === "1-long").map((l) => l.line);
    expect(long).toEqual(["x".repeat(4096), "short", "y".repeat(4096)]);
    const flood = lines.filter((l) => l.hook === "2-flood");
    const delivered = flood.reduce((n, l) => n + l.line.length + 1, 0);
    expect(delivered).toBeLessThanOrEqual(1024 * 1024);
    expect(delivered).toBeGreaterThan(1024 * 1024 - 100);
    expect(flood.every((l) => l.line === "0123456789abcdef")).toBe(true);
    expect(notes).toEqual([
      { hook: "1-long", level: "info", message: "hook 1-long: lines longer than 4096 characters were cut" },
      { hook: "2-flood", level: "info", message: "hook 2-flood: output beyond 1048576 characters was dropped" },
    ]);
    expect(result).toEqual({ ran: 2, warnings: [] });
  });
});
