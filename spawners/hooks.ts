// Runs the admin's root hooks (roothooks.d) before a user server starts: every executable in one directory,
// as root, one after another in byte order of their names. A hook can only warn: whatever it does, the server
// still starts, and the problem is shown to the user and logged.
import { spawn } from "node:child_process";
import type { Stats } from "node:fs";
import { open, readdir, realpath, stat } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../src/log.js";

export interface HookContext {
  user: string;
  unixUser: string;
  uid: number;
  gid: number;
  home: string;
  serverName: string;
  profile: string;
}

export interface HookLine {
  hook: string;
  stream: "stdout" | "stderr";
  line: string;
}

export interface HookNote {
  hook?: string;
  level: "info" | "warn";
  message: string;
}

export interface HookResult {
  /** Hooks that were started, whatever their outcome; skipped and unlaunchable ones do not count. */
  ran: number;
  /** The message of every warn note, in order. */
  warnings: string[];
}

export interface RunHooksOptions {
  timeoutMs: number;
  onLine: (l: HookLine) => void;
  onNote: (n: HookNote) => void;
  log: Logger;
  /** Between SIGTERM and SIGKILL when a hook times out. */
  killGraceMs?: number;
}

// Hooks run as root with nothing inherited from the daemon, whose environment may hold secrets.
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const DEFAULT_KILL_GRACE_MS = 5_000;
// A process that outlives SIGKILL (or escaped the group while holding the pipes) is left behind after this.
const ABANDON_MS = 1_000;
// Caps that keep a runaway hook from flooding the progress page and the hub's memory.
const MAX_LINE_CHARS = 4096;
const MAX_OUTPUT_CHARS = 1024 * 1024;
// Names run-parts also ignores: hidden files, editor backups, files dpkg leaves on upgrades.
const IGNORED_NAME = /^\.|~$|\.dpkg-\w+$/;

interface Hook {
  name: string;
  file: string;
}

type Note = (n: HookNote) => void;

export async function runHooks(dir: string, ctx: HookContext, opts: RunHooksOptions): Promise<HookResult> {
  const warnings: string[] = [];
  const note: Note = (n) => {
    const fields = { hook: n.hook, user: ctx.user };
    if (n.level === "warn") {
      warnings.push(n.message);
      opts.log.warn(n.message, fields);
    } else {
      opts.log.info(n.message, fields);
    }
    opts.onNote(n);
  };
  const env = {
    PATH,
    SLICEHUB_USER: ctx.user,
    SLICEHUB_UNIX_USER: ctx.unixUser,
    SLICEHUB_UID: String(ctx.uid),
    SLICEHUB_GID: String(ctx.gid),
    SLICEHUB_HOME: ctx.home,
    SLICEHUB_SERVER_NAME: ctx.serverName,
    SLICEHUB_PROFILE: ctx.profile,
  };
  let ran = 0;
  for (const hook of await listHooks(dir, note)) {
    if (await runHook(hook, env, opts, note)) ran++;
  }
  return { ran, warnings };
}

/** The hooks to run, in order; everything skipped gets a note saying why. */
async function listHooks(dir: string, note: Note): Promise<Hook[]> {
  let real: string;
  let names: string[];
  try {
    // Everything below uses the resolved path, so swapping a symlink after the check changes nothing.
    real = await realpath(dir);
    const st = await stat(real);
    if (!st.isDirectory()) {
      note({ level: "warn", message: `${real} is not a directory; no hooks run` });
      return [];
    }
    const unsafe = unsafeReason(st);
    if (unsafe) {
      note({ level: "warn", message: `${real} ${unsafe}; refusing to run hooks from it` });
      return [];
    }
    names = await readdir(real);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      note({ level: "info", message: `no hooks directory ${dir}; nothing to run` });
    } else {
      note({ level: "warn", message: `cannot read hooks directory ${dir}: ${(err as Error).message}` });
    }
    return [];
  }
  // Byte order of the UTF-8 names, as `ls` in the C locale shows them; not UTF-16 order, not the locale's.
  names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const hooks: Hook[] = [];
  for (const name of names) {
    const file = path.join(real, name);
    const skip = await skipNote(name, file);
    if (skip) note(skip);
    else hooks.push({ name, file });
  }
  return hooks;
}

/** Why an entry is not run (info for what is plainly not a hook, warn for a hook that is unsafe or unrunnable). */
async function skipNote(name: string, file: string): Promise<HookNote | undefined> {
  const info = (why: string): HookNote => ({ hook: name, level: "info", message: `skipped ${name}: ${why}` });
  if (IGNORED_NAME.test(name)) return info("hidden, backup or package-manager file");
  let st: Stats;
  try {
    st = await stat(file);
  } catch (err) {
    return info((err as NodeJS.ErrnoException).code === "ENOENT" ? "broken symlink" : (err as Error).message);
  }
  if (st.isDirectory()) return info("is a directory");
  if (!st.isFile()) return info("not a regular file");
  if ((st.mode & 0o111) === 0) return info("not executable");
  const unsafe = unsafeReason(st);
  if (unsafe) return { hook: name, level: "warn", message: `skipped hook ${name}: the file ${unsafe}` };
  // Node's spawn falls back to /bin/sh for a file the kernel cannot execute; run-parts and systemd do not,
  // and a hook silently run by the wrong interpreter is worse than one that is reported.
  const magic = await hasExecMagic(file).catch((err: Error) => err);
  if (magic instanceof Error) return info(magic.message);
  if (!magic) {
    return { hook: name, level: "warn", message: `cannot run hook ${name}: it has no #! line and is not an ELF binary` };
  }
  return undefined;
}

/** Anyone but root able to change the file or directory could run code as root through it. */
function unsafeReason(st: Stats): string | undefined {
  if (st.uid !== 0) return `is owned by uid ${st.uid}, not root`;
  if (st.mode & 0o002) return "is writable by everyone";
  if (st.mode & 0o020) return `is writable by group ${st.gid}`;
  return undefined;
}

async function hasExecMagic(file: string): Promise<boolean> {
  const fh = await open(file, "r");
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(4), 0, 4, 0);
    const head = buffer.subarray(0, bytesRead);
    return head.subarray(0, 2).toString("latin1") === "#!" || head.toString("latin1") === "\x7fELF";
  } finally {
    await fh.close();
  }
}

/** Resolves to whether the hook was started; every problem becomes a note, never an exception. */
function runHook(hook: Hook, env: Record<string, string>, opts: RunHooksOptions, note: Note): Promise<boolean> {
  const { name } = hook;
  return new Promise((resolve) => {
    // Its own process group, so a timeout reaches whatever the hook started as well.
    const child = spawn(hook.file, [], { cwd: "/", env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const pid = child.pid;
    if (pid === undefined) {
      child.once("error", (err: NodeJS.ErrnoException) => {
        note({ hook: name, level: "warn", message: `cannot run hook ${name}: ${launchError(err)}` });
        resolve(false);
      });
      return;
    }

    const output = splitLines(name, opts.onLine, note);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => output.stdout.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => output.stderr.push(chunk));

    let exited = false;
    let timedOut = false;
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = () => {
      if (done) return;
      done = true;
      timers.forEach(clearTimeout);
      output.end();
      resolve(true);
    };

    child.once("exit", () => {
      exited = true;
    });
    // "close" comes after the output pipes are drained, so every line has been delivered by then.
    child.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
      if (!timedOut && signal) note({ hook: name, level: "warn", message: `hook ${name} was killed by ${signal}` });
      else if (!timedOut && code !== 0) note({ hook: name, level: "warn", message: `hook ${name} failed with status ${code}` });
      finish();
    });

    timers.push(
      setTimeout(() => {
        timedOut = true;
        // A hook is done when it has exited and closed its output; a background process it left holding the
        // output keeps it running, so say which case this is.
        const why = exited ? "; it exited, but processes it started kept its output open" : "";
        note({ hook: name, level: "warn", message: `hook ${name} timed out after ${opts.timeoutMs / 1000} s${why}` });
        signalGroup(pid, "SIGTERM");
        timers.push(
          setTimeout(() => {
            opts.log.warn("hook still running after SIGTERM; killing it", { hook: name });
            signalGroup(pid, "SIGKILL");
            timers.push(
              setTimeout(() => {
                opts.log.warn("hook output still open after SIGKILL; leaving it behind", { hook: name });
                child.stdout.destroy();
                child.stderr.destroy();
                finish();
              }, ABANDON_MS),
            );
          }, opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS),
        );
      }, opts.timeoutMs),
    );
  });
}

function launchError(err: NodeJS.ErrnoException): string {
  // The file was there a moment ago, so ENOENT from exec means the #! line names a missing interpreter.
  if (err.code === "ENOENT") return "the interpreter on its #! line was not found";
  if (err.code === "EACCES") return "permission denied (is it on a noexec mount?)";
  return err.message;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    // The group is already gone.
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

interface LineStream {
  push(chunk: string): void;
  end(): void;
}

/**
 * Splits a hook's stdout and stderr into lines as they arrive. A line longer than the cap is cut and the rest
 * of it dropped; past the total cap, output is still read (so the hook does not block on a full pipe) but not
 * delivered. Each cut is noted once per hook.
 */
function splitLines(hook: string, onLine: (l: HookLine) => void, note: Note): { stdout: LineStream; stderr: LineStream; end(): void } {
  let total = 0;
  let lineCutNoted = false;
  let totalCutNoted = false;

  const deliver = (stream: HookLine["stream"], line: string) => {
    if (line.length > MAX_LINE_CHARS) {
      line = line.slice(0, MAX_LINE_CHARS);
      if (!lineCutNoted) note({ hook, level: "info", message: `hook ${hook}: lines longer than ${MAX_LINE_CHARS} characters were cut` });
      lineCutNoted = true;
    }
    if (total + line.length + 1 > MAX_OUTPUT_CHARS) {
      if (!totalCutNoted) note({ hook, level: "info", message: `hook ${hook}: output beyond ${MAX_OUTPUT_CHARS} characters was dropped` });
      totalCutNoted = true;
      total = MAX_OUTPUT_CHARS;
      return;
    }
    total += line.length + 1;
    onLine({ hook, stream, line });
  };

  const lineStream = (stream: HookLine["stream"]): LineStream => {
    let partial = "";
    // Inside the dropped rest of an over-long line, until its newline.
    let skipping = false;
    return {
      push(chunk) {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          if (skipping) skipping = false;
          else deliver(stream, line);
        }
        if (skipping) {
          partial = "";
        } else if (partial.length > MAX_LINE_CHARS) {
          deliver(stream, partial);
          partial = "";
          skipping = true;
        }
      },
      end() {
        if (partial !== "" && !skipping) deliver(stream, partial);
        partial = "";
      },
    };
  };

  const stdout = lineStream("stdout");
  const stderr = lineStream("stderr");
  return {
    stdout,
    stderr,
    end() {
      stdout.end();
      stderr.end();
    },
  };
}
