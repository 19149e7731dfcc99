// Which jupyterhub the single-user servers run, so the hub can report the same version (X-JupyterHub-Version,
// GET /hub/api). jupyterhub-singleuser logs a warning on every start when the hub's major.minor differs from
// its own, and admins then wonder what is wrong.
//
// Found cheaply, without starting Python (importing jupyterhub takes about a second, `--version` two): the
// command's file on PATH; a setuptools launcher names the version in its second line; else the Python of its
// `#!` line, whose site-packages hold jupyterhub-X.Y.Z.dist-info/METADATA (pip), jupyterhub-X.Y.Z.egg-info
// (Debian's package) or jupyterhub/_version.py. Only when none of that answers is the command itself run with
// --version (bounded, in the background). Answers are cached per command and looked at again after a while, so
// an upgrade of the jupyterhub package shows without a restart.
import { execFile } from "node:child_process";
import { accessSync, constants, closeSync, openSync, readdirSync, readSync, realpathSync, statSync } from "node:fs";
import { basename, delimiter, dirname, isAbsolute, join } from "node:path";

/** What is reported when neither the config nor detection says otherwise. */
export const FALLBACK_JUPYTERHUB_VERSION = "3.0.0";
/** systemd's PATH for services, searched after the process's own (a service has no login environment). */
export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export type VersionSource = "launcher" | "dist-info" | "egg-info" | "_version.py" | "--version";

export interface SingleuserVersion {
  /** The command's file, as found on PATH (not resolved through symlinks). */
  command: string;
  /** X.Y.Z, or undefined when it could not be told. */
  version: string | undefined;
  /** Where the version was read. */
  source?: VersionSource;
  /** The file the version came from (a METADATA, a _version.py) or the interpreter that was run. */
  from?: string;
  /** Why there is no version, for doctor. */
  problem?: string;
}

/** The first executable `name` on `path` (a name with a slash is taken as it is), or undefined. */
export function findOnPath(name: string, path = process.env.PATH ?? ""): string | undefined {
  if (name.includes("/")) return isExecutable(name) ? name : undefined;
  for (const dir of `${path}${delimiter}${SYSTEM_PATH}`.split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** X.Y.Z from a PEP 440 version ("5.2.1", "4.1.0b1" → "4.1.0", "5.0" → "5.0.0"), or undefined. */
export function normalizeVersion(v: string): string | undefined {
  const m = /^\s*v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  return m ? `${m[1]}.${m[2]}.${m[3] ?? "0"}` : undefined;
}

function readHead(p: string, bytes = 1024): string {
  const fd = openSync(p, "r");
  try {
    const buf = Buffer.alloc(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n).toString("latin1");
  } finally {
    closeSync(fd);
  }
}

/** The interpreter of a `#!` line: "/usr/bin/python3", or "python3" looked up on PATH for `#!/usr/bin/env python3`. */
export function shebangInterpreter(head: string, path?: string): string | undefined {
  const first = head.split("\n", 1)[0]!;
  if (!first.startsWith("#!")) return undefined;
  const words = first.slice(2).trim().split(/\s+/);
  let interp = words[0];
  if (interp && basename(interp) === "env") {
    interp = words.slice(1).find((w) => !w.startsWith("-") && !w.includes("="));
    if (interp) interp = findOnPath(interp, path);
  }
  if (!interp || !/python/.test(basename(interp))) return undefined;
  return interp;
}

/** Directories a Python interpreter imports packages from, in its own order (no user site: that is per user). */
export function sitePackageDirs(interpreter: string): string[] {
  let real = interpreter;
  try {
    real = realpathSync(interpreter);
  } catch {
    // keep the name
  }
  // A venv's python is a symlink to the base one, so the venv is where the interpreter's name is, not its target.
  const prefixes = [...new Set([dirname(dirname(interpreter)), dirname(dirname(real))])];
  const versions = new Set<string>();
  for (const name of [basename(real), basename(interpreter)]) {
    const m = /^python(\d+\.\d+)/.exec(name);
    if (m) versions.add(m[1]!);
  }
  const dirs: string[] = [];
  for (const prefix of prefixes) {
    const lib = join(prefix, "lib");
    let found = [...versions].map((v) => `python${v}`);
    if (!found.length) {
      try {
        found = readdirSync(lib).filter((n) => /^python3\.\d+$/.test(n));
      } catch {
        found = [];
      }
    }
    for (const py of found) {
      dirs.push(join(lib, py, "site-packages"));
      // Debian: pip's packages go to /usr/local/lib/python3.X/dist-packages, its own to /usr/lib/python3/dist-packages.
      if (prefix === "/usr") dirs.push(join("/usr/local/lib", py, "dist-packages"), join(lib, py, "dist-packages"));
    }
    if (prefix === "/usr") dirs.push(join(lib, "python3", "dist-packages"));
  }
  return [...new Set(dirs)];
}

const DIST = /^jupyterhub-([0-9][^-]*?)\.(dist-info|egg-info)$/i;

/** jupyterhub's version in one site-packages directory, from its metadata, or undefined. */
export function versionInSitePackages(dir: string): { version: string; source: VersionSource; from: string } | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    const m = DIST.exec(name);
    if (!m) continue;
    const kind = m[2]!.toLowerCase() as "dist-info" | "egg-info";
    // The Version: header is authoritative; the directory name is the fallback (an egg-info may be a file).
    const meta = join(dir, name, kind === "dist-info" ? "METADATA" : "PKG-INFO");
    let version = normalizeVersion(m[1]!);
    let from = join(dir, name);
    try {
      const header = /^Version:\s*(\S+)/m.exec(readHead(meta, 4096));
      if (header) {
        version = normalizeVersion(header[1]!) ?? version;
        from = meta;
      }
    } catch {
      // no metadata file: the name says it
    }
    if (version) return { version, source: kind, from };
  }
  const vfile = join(dir, "jupyterhub", "_version.py");
  try {
    const text = readHead(vfile, 8192);
    const m = /^version_info\s*=\s*\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)/m.exec(text) ?? /^__version__\s*=\s*["'](\d+\.\d+(?:\.\d+)?)/m.exec(text);
    if (m) {
      const version = m[3] !== undefined ? `${m[1]}.${m[2]}.${m[3]}` : normalizeVersion(m[1]!);
      if (version) return { version, source: "_version.py", from: vfile };
    }
  } catch {
    // not here
  }
  return undefined;
}

/**
 * The version of jupyterhub behind a singleuser command, from files only (a few reads, no process). `version`
 * is undefined when the files do not say; detectByRunning() can then ask the command itself.
 */
export function detectFromFiles(cmd0: string, path?: string): SingleuserVersion {
  const command = findOnPath(cmd0, path);
  if (!command) return { command: cmd0, version: undefined, problem: cmd0.includes("/") ? "no such executable file" : "not found on PATH" };
  let head: string;
  try {
    head = readHead(command);
  } catch (err) {
    return { command, version: undefined, problem: `cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  // setuptools' launcher: "# EASY-INSTALL-ENTRY-SCRIPT: 'jupyterhub==3.0.0','console_scripts',…"
  const launcher = /EASY-INSTALL-ENTRY-SCRIPT:\s*'jupyterhub==([^']+)'/.exec(head);
  const fromLauncher = launcher ? normalizeVersion(launcher[1]!) : undefined;
  const interp = shebangInterpreter(head, path);
  if (interp) {
    for (const dir of sitePackageDirs(interp)) {
      const found = versionInSitePackages(dir);
      if (found) return { command, ...found };
    }
  }
  if (fromLauncher) return { command, version: fromLauncher, source: "launcher", from: command };
  return {
    command,
    version: undefined,
    problem: interp ? `no jupyterhub package found for ${interp}` : "not a Python script (no python #! line)",
  };
}

/**
 * Why running `command` (and the interpreter of its #! line) would be unsafe, or undefined when it is not: the
 * file or its directory writable by another account than root and this process's own. The hub would otherwise
 * run, as itself, code some other user can change (a shared venv under /home, say).
 */
export function unsafeToRun(command: string): string | undefined {
  const me = process.getuid?.() ?? 0;
  const files = [command];
  try {
    const interp = shebangInterpreter(readHead(command));
    if (interp) files.push(interp);
  } catch {
    // unreadable: the run fails by itself
  }
  for (const f of files) {
    let real: string;
    try {
      real = realpathSync(f);
    } catch {
      continue;
    }
    for (const p of [real, dirname(real)]) {
      const st = statSync(p);
      if ((st.uid !== 0 && st.uid !== me) || (st.mode & 0o022) !== 0) {
        return `not run: ${p} can be changed by another account (owner uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})`;
      }
    }
  }
  return undefined;
}

/** Runs `<command> --version` (bounded) and reads the version from its output. */
export function detectByRunning(command: string, timeoutMs = 5000): Promise<SingleuserVersion> {
  const unsafe = unsafeToRun(command);
  if (unsafe) return Promise.resolve({ command, version: undefined, problem: `${command} --version ${unsafe}` });
  return new Promise((resolve) => {
    execFile(command, ["--version"], { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 1 << 20 }, (err, stdout) => {
      const line = stdout.split("\n").map((l) => l.trim()).find((l) => /^\d+\.\d+/.test(l));
      const version = line ? normalizeVersion(line) : undefined;
      if (version) return resolve({ command, version, source: "--version", from: command });
      const why = err ? ((err as { killed?: boolean }).killed ? `timed out after ${timeoutMs} ms` : err.message.split("\n")[0]!) : "printed no version";
      resolve({ command, version: undefined, problem: `${command} --version: ${why}` });
    });
  });
}

/** Files first, then the command itself; for doctor, which may take its time. */
export async function detectSingleuserVersion(cmd0: string, opts: { path?: string; timeoutMs?: number } = {}): Promise<SingleuserVersion> {
  const files = detectFromFiles(cmd0, opts.path);
  if (files.version || !files.command.startsWith("/") || files.problem === "not found on PATH") return files;
  if (!isExecutable(files.command)) return files;
  const ran = await detectByRunning(files.command, opts.timeoutMs);
  return ran.version ? ran : { ...files, problem: `${files.problem}; ${ran.problem}` };
}

/** How long a detected version is trusted before the files are read again (an upgrade shows within this). */
const REFRESH_MS = 5 * 60_000;

interface Entry {
  at: number;
  version: string | undefined;
  running: boolean;
}

const cache = new Map<string, Entry>();

/**
 * The jupyterhub version of the single-user command `cmd0` for the hub to report: from files, read at most every
 * few minutes (well under a millisecond each time). When the files do not tell, `<cmd> --version` runs once in
 * the background (5 s at most) and the fallback is reported until it answers.
 */
export function singleuserVersion(cmd0: string, now = Date.now()): string | undefined {
  const hit = cache.get(cmd0);
  if (hit && (hit.running || now - hit.at < REFRESH_MS)) return hit.version;
  const found = detectFromFiles(cmd0);
  const entry: Entry = { at: now, version: found.version ?? hit?.version, running: false };
  cache.set(cmd0, entry);
  if (!found.version && found.command.startsWith("/") && isExecutable(found.command)) {
    entry.running = true;
    void detectByRunning(found.command).then((r) => {
      entry.running = false;
      entry.at = Date.now();
      if (r.version) entry.version = r.version;
    });
  }
  return entry.version;
}

/** Forgets detected versions (tests). */
export function clearSingleuserVersionCache(): void {
  cache.clear();
}

/** What the hub reports as its version: the config's jupyterhub_version, else the installed singleuser's, else 3.0.0. */
export function reportedJupyterhubVersion(config: { jupyterhub_version?: string | undefined; spawner: { cmd: string[] } }): string {
  return config.jupyterhub_version ?? singleuserVersion(config.spawner.cmd[0]!) ?? FALLBACK_JUPYTERHUB_VERSION;
}
