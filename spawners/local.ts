// Runs user servers as plain child processes of the hub's user (the dev setup: no root, no systemd).
//
// Each server gets its own process group (so stop reaches everything it started) and writes its output to a
// file, not a pipe: when the hub dies, even by SIGKILL, the server keeps running without a SIGPIPE and a
// restarted hub adopts it from the persisted state.
//
// With a `tag` (the daemon derives one from its state directory), every server's environment carries
// SLICEHUB_SERVER=<tag>:<launch id>, from exec on and inherited by whatever it starts. /proc/<pid>/environ
// shows it to the same uid, so a hub killed between the launch and storing the state still has its server
// found, and stopped, by the next one (reconcile).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { mkdir, open, readdir, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../src/config/schema.js";
import type { Logger } from "../src/log.js";
import { serverPrefix } from "../src/names.js";
import { serverArgv, serverEnv } from "../src/server-env.js";
import type { PollResult, SpawnerState, SpawnProgress, SpawnSpec, Spawner } from "./spawner.js";

/** One process to launch: the command and environment start() builds from the config, or a test's own. */
export interface LaunchSpec {
  user: string;
  serverName: string;
  /** argv; argv[0] is looked up on PATH. */
  argv: string[];
  /** The server's environment except its API token (nothing is inherited implicitly). */
  env: Record<string, string>;
  token: string;
  host: string;
  port: number;
  /** Working directory; the hub user's home when absent. */
  cwd?: string;
  launchId?: string;
}

export type LocalState = {
  pid: number;
  pgid: number;
  /** Field 22 of /proc/<pid>/stat: tells our process apart from a later one that got the same pid. */
  startTime: number;
  logFile: string;
  host: string;
  port: number;
  /** The SLICEHUB_SERVER value in the server's environment, when the spawner has a tag. */
  marker?: string;
};

/** The environment variable that marks a server process as this hub's. */
export const MARKER_VAR = "SLICEHUB_SERVER";

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const HEADER = "--- slicehub: starting";
const TAIL_BYTES = 16 * 1024;
const TAIL_LINES = 20;
const STOP_POLL_MS = 50;
const ZOMBIE_CHECK_EVERY = 10;
const KILL_WAIT_MS = 5_000;

export class LocalSpawner implements Spawner {
  readonly kind = "local";
  private readonly logDir: string;
  private readonly log: Logger;
  /** Our own children, by pid, so their exit status is known; servers adopted from an earlier hub are not here. */
  private readonly children = new Map<number, { startTime: number; exit: Promise<Exit> }>();
  private readonly tag: string | undefined;

  private readonly servers: { config: () => Config; hubApiUrl: string } | undefined;

  /**
   * `tag`: names this hub (one per state directory) in its servers' environment; without it, reconcile finds
   * nothing. `servers`: what start() builds a server's command and environment from (the hub's config and
   * its API as servers reach it); without it only launch() works.
   */
  constructor(opts: { logDir: string; log: Logger; tag?: string; servers?: { config: () => Config; hubApiUrl: string } }) {
    this.logDir = opts.logDir;
    this.servers = opts.servers;
    this.log = opts.log.child({ spawner: "local" });
    if (opts.tag !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(opts.tag)) throw new Error(`local spawner: invalid tag ${JSON.stringify(opts.tag)}`);
    this.tag = opts.tag;
  }

  /** Every server runs as the hub's own account, so that is the USER, HOME and SHELL it gets. */
  start(spec: SpawnSpec, onProgress: (p: SpawnProgress) => void): Promise<SpawnerState> {
    if (!this.servers) throw new Error("local spawner: no config to build the server's command from");
    const cfg = this.servers.config();
    const env = serverEnv(cfg, {
      user: spec.user,
      server: spec.serverName,
      serviceUrl: `http://${spec.host}:${spec.port}${serverPrefix(spec.user, spec.serverName)}`,
      hubApiUrl: this.servers.hubApiUrl,
      profile: spec.profile,
      account: { name: process.env.USER ?? os.userInfo().username, home: process.env.HOME ?? os.homedir(), shell: process.env.SHELL ?? "/bin/sh" },
      hubEnv: process.env,
    });
    const { user, serverName, token, host, port, launchId } = spec;
    return this.launch({ user, serverName, argv: serverArgv(cfg, spec.profile), env, token, host, port, launchId }, onProgress);
  }

  /** Launch exactly this command and environment (plus the token and, with a tag, the marker). */
  async launch(spec: LaunchSpec, onProgress: (p: SpawnProgress) => void): Promise<SpawnerState> {
    const [command, ...args] = spec.argv;
    if (command === undefined) throw new Error("cannot start the server: the command is empty");
    const cwd = spec.cwd ?? os.homedir();
    await mkdir(this.logDir, { recursive: true, mode: 0o700 });
    const logFile = path.join(this.logDir, `${safeName(spec.user)}--${safeName(spec.serverName || "default")}.log`);

    // Synchronous from here until the listeners are attached: the child's 'error' or 'exit' could otherwise
    // fire before anyone listens, and it must not be reaped before its start time is read from /proc.
    const marker = this.tag === undefined ? undefined : `${this.tag}:${spec.launchId ?? randomUUID()}`;
    const out = openSync(logFile, "a", 0o600);
    let child: ChildProcess;
    try {
      // The env holds the API token, so the header names only the command.
      writeSync(out, `${HEADER} ${new Date().toISOString()} ${JSON.stringify(spec.argv)}\n`);
      // Without root there is nowhere safer for the token than the server's own environment.
      const env = { ...spec.env, JUPYTERHUB_API_TOKEN: spec.token, JPY_API_TOKEN: spec.token, ...(marker ? { [MARKER_VAR]: marker } : {}) };
      child = spawn(command, args, { env, cwd, detached: true, stdio: ["ignore", out, out] });
    } finally {
      closeSync(out);
    }
    const pid = child.pid;
    if (pid === undefined) {
      const err = await new Promise<NodeJS.ErrnoException>((resolve) => child.once("error", resolve));
      throw new Error(launchError(command, cwd, err));
    }
    const startTime = readStat(pid)?.startTime;
    if (startTime === undefined) throw new Error(`cannot start the server: process ${pid} vanished at once`);
    const exit = new Promise<Exit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    this.children.set(pid, { startTime, exit });
    child.on("error", (err) => this.log.warn("child process error", { pid, err }));
    void exit.then((e) => this.log.info("server process exited", { pid, user: spec.user, server: spec.serverName, status: exitReason(e) }));
    child.unref();

    this.log.info("server process started", { pid, user: spec.user, server: spec.serverName, argv: spec.argv, logFile });
    onProgress({ progress: 40, message: `Started process ${pid}` });
    const state: LocalState = { pid, pgid: pid, startTime, logFile, host: spec.host, port: spec.port, ...(marker ? { marker } : {}) };
    return state;
  }

  async poll(state: SpawnerState): Promise<PollResult> {
    const s = parseState(state);
    if (isRunning(s)) return { running: true };
    return { running: false, reason: (await this.exitStatus(s)) ?? `process ${s.pid} is gone` };
  }

  async stop(state: SpawnerState, timeoutMs: number): Promise<void> {
    const s = parseState(state);
    // A live process with our pid but another start time means ours is long gone and the kernel has reused
    // the number; that process and its group are someone else's. (A pid is never reused while a process
    // group of that number still has members, so a missing leader with a live group means the group is ours.)
    const leader = readStat(s.pid);
    if (leader && leader.startTime !== s.startTime) return;
    if (!signalGroup(s.pgid, "SIGTERM")) return;
    if (await groupGone(s.pgid, timeoutMs)) return;
    this.log.warn("server did not stop after SIGTERM, killing it", { pid: s.pid, timeoutMs });
    signalGroup(s.pgid, "SIGKILL");
    if (!(await groupGone(s.pgid, KILL_WAIT_MS))) throw new Error(`process group ${s.pgid} survived SIGKILL`);
  }

  /** The hub's own: servers are its children and never change uid. */
  serverUid(_state: SpawnerState): number {
    return process.getuid!();
  }

  async failureDetail(state: SpawnerState): Promise<string> {
    const s = parseState(state);
    const status = await this.exitStatus(s);
    const lines = await lastLines(s.logFile);
    const output = lines.length > 0 ? `last output:\n${lines.join("\n")}` : "the server wrote no output";
    return status ? `${status}\n${output}` : output;
  }

  /**
   * Stop every process group holding a process marked with this hub's tag that belongs to none of `known`
   * (by marker, or by process group for states from before markers). Without a tag it cannot tell its
   * servers from anyone else's and stops nothing.
   */
  async reconcile(known: SpawnerState[], timeoutMs: number): Promise<string[]> {
    if (this.tag === undefined) return [];
    const keepMarkers = new Set<string>();
    const keepGroups = new Set<number>();
    for (const state of known) {
      const s = parseState(state);
      if (s.marker) keepMarkers.add(s.marker);
      keepGroups.add(s.pgid);
    }
    const own = readStat(process.pid)?.pgrp;
    const prefix = `${MARKER_VAR}=${this.tag}:`;
    const orphans = new Map<number, string>();
    for (const name of await readdir("/proc")) {
      if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
      const stat = await readFile(`/proc/${name}/stat`, "utf8").then(parseStat, () => undefined);
      if (!stat || isDead(stat) || stat.pgrp <= 1 || stat.pgrp === own || keepGroups.has(stat.pgrp)) continue;
      // Another user's processes cannot be read (EACCES) and are not ours anyway.
      const environ = await readFile(`/proc/${name}/environ`, "utf8").catch(() => "");
      const entry = environ.split("\0").find((e) => e.startsWith(prefix));
      if (!entry) continue;
      const marker = entry.slice(MARKER_VAR.length + 1);
      if (keepMarkers.has(marker)) continue;
      orphans.set(stat.pgrp, marker);
    }
    const stopped: string[] = [];
    await Promise.all(
      [...orphans].map(async ([pgid, marker]) => {
        this.log.warn("stopping a server process the store does not know", { pgid, marker });
        if (!signalGroup(pgid, "SIGTERM")) return;
        if (!(await groupGone(pgid, timeoutMs))) {
          signalGroup(pgid, "SIGKILL");
          if (!(await groupGone(pgid, KILL_WAIT_MS))) throw new Error(`process group ${pgid} survived SIGKILL`);
        }
        stopped.push(`process group ${pgid} (${marker})`);
      }),
    );
    return stopped;
  }

  private async exitStatus(s: LocalState): Promise<string | undefined> {
    const child = this.children.get(s.pid);
    if (child?.startTime !== s.startTime || isRunning(s)) return undefined;
    // Gone or a zombie: the exit event is at most one loop turn away.
    return exitReason(await child.exit);
  }
}

function exitReason(e: Exit): string {
  return e.signal ? `killed by ${e.signal}` : `exited with status ${e.code}`;
}

function launchError(command: string, cwd: string, err: NodeJS.ErrnoException): string {
  const what = `cannot run "${command}"`;
  if (err.code === "ENOENT") {
    // spawn reports a missing working directory with the same ENOENT as a missing command.
    if (!existsSync(cwd)) return `${what}: working directory ${cwd} does not exist`;
    return command.includes("/") ? `${what}: no such file` : `${what}: command not found on PATH`;
  }
  if (err.code === "EACCES") return `${what}: permission denied`;
  return `${what}: ${err.message}`;
}

/** File-name-safe and reversible, so two users never share a log file. */
function safeName(name: string): string {
  return encodeURIComponent(name).replace(/^\./, "%2E");
}

interface Stat {
  state: string;
  pgrp: number;
  startTime: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

function parseStat(text: string): Stat {
  // The command name (field 2) is in parentheses and may itself contain spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", pgrp: Number(fields[2]), startTime: Number(fields[19]) };
}

const isDead = (stat: Stat) => stat.state === "Z" || stat.state === "X";

function isRunning(s: LocalState): boolean {
  const stat = readStat(s.pid);
  return stat?.startTime === s.startTime && !isDead(stat);
}

/** False when the group has no members left. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw e;
  }
}

async function groupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 1; signalGroup(pgid, 0); i++) {
    // Dead orphans still count as members until init reaps them, which some init processes (a container's)
    // do late or never; so every so often (scanning /proc is not free) look for a member that still lives.
    if ((i % ZOMBIE_CHECK_EVERY === 0 || Date.now() >= deadline) && !(await hasLiveMember(pgid))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(STOP_POLL_MS);
  }
  return true;
}

async function hasLiveMember(pgid: number): Promise<boolean> {
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").then(parseStat, () => undefined);
    if (stat?.pgrp === pgid && !isDead(stat)) return true;
  }
  return false;
}

/** The last lines the server wrote since its most recent start, reading only the end of the file. */
async function lastLines(file: string): Promise<string[]> {
  let text: string;
  try {
    const fh = await open(file, "r");
    try {
      const { size } = await fh.stat();
      const from = Math.max(0, size - TAIL_BYTES);
      const buf = Buffer.alloc(size - from);
      await fh.read(buf, 0, buf.length, from);
      text = buf.toString("utf8");
      if (from > 0) text = text.slice(text.indexOf("\n") + 1);
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const sinceStart = lines.slice(lines.map((l) => l.startsWith(HEADER)).lastIndexOf(true) + 1);
  return sinceStart.slice(-TAIL_LINES);
}

function parseState(state: SpawnerState): LocalState {
  const { pid, pgid, startTime, logFile, host, port, marker } = state;
  // pgid 0 or 1 would make kill(-pgid) hit the hub's own group or every process on the host.
  const isPid = (v: unknown): v is number => isInt(v) && v > 1;
  if (isPid(pid) && isPid(pgid) && isInt(startTime) && typeof logFile === "string" && typeof host === "string" && isInt(port)) {
    return { pid, pgid, startTime, logFile, host, port, ...(typeof marker === "string" ? { marker } : {}) };
  }
  throw new Error(`local spawner: invalid server state ${JSON.stringify(state)}`);
}

function isInt(v: unknown): v is number {
  return Number.isInteger(v);
}
