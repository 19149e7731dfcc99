// The privileged helper's terminals (systemd spawner). For each, the helper runs `systemd-run --pty …` (the
// user's login shell as their Unix account, in their slice, under their profile's limits) on a pty of its own,
// keeps its scrollback, and relays the bytes over a Unix socket of its own in a directory only the service
// user (run_as) and root can enter. Control (open, resize, close, list) comes over the helper's IPC like every
// other request; the helper decides the account, shell, limits and unit itself from its own reading of the
// config and the store, never from what it was sent.
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { Config, SystemdSpawnerConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { resolveProfile } from "../profiles.js";
import { ensureAccount, lookupAccount } from "../../spawners/accounts.js";
import { listUnits, runUnit, stopUnit } from "../../spawners/systemd/systemctl.js";
import { sliceSetPropertyArgv, unitNames } from "../../spawners/systemd/units.js";
import { frame, FRAME_EXIT, FRAME_OUTPUT } from "./frames.js";
import { PtySession } from "./pty-session.js";
import { TERMINAL_UNIT_GLOB, terminalRunArgv, terminalUnit, usableShell } from "./units.js";

export const TERMINAL_SOCKET_DIR = "/run/slicehub/terminals";
const SYSTEM_BUS = "/run/dbus/system_bus_socket";
/** Output queued for a slow reader beyond which the shell's output is paused. */
const HIGH_WATER = 1 << 20;
/** How long an ended terminal's record (and its exit frame) stays for the web process to read. */
const ENDED_KEEP_MS = 60_000;
/** The longest input is held back while systemd-run starts relaying. */
const HOLD_INPUT_MS = 5_000;

export interface TerminalInfo {
  id: string;
  user: string;
  server: string;
  unit: string;
  account: string;
  created: number;
  ended: boolean;
}

interface Live extends TerminalInfo {
  pty: PtySession;
  /** Input held until systemd-run relays the shell (see open()). */
  held?: Buffer[];
  listener: net.Server;
  socket: string;
  client?: net.Socket;
}

export class Refusal extends Error {}

export class HelperTerminals {
  private readonly live = new Map<string, Live>();

  constructor(
    private readonly log: Logger,
    private readonly dir = TERMINAL_SOCKET_DIR,
  ) {}

  /** At the helper's start: no terminal of an earlier run can be reattached (its pty is gone), so end them all. */
  async endLeftovers(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    const units = await listUnits(TERMINAL_UNIT_GLOB, [], ["active", "activating", "deactivating", "reloading", "failed"]);
    await Promise.all(units.map((u) => stopUnit(u, 3_000).catch((err: unknown) => this.log.warn("could not stop a leftover terminal", { unit: u, error: err }))));
    if (units.length) this.log.info("stopped terminals of an earlier run", { units });
  }

  /** The socket directory, owned by the service user (mode 0700): root and run_as reach it, nobody else. */
  private async socketDir(cfg: Config): Promise<string> {
    const runAs = await lookupAccount(cfg.run_as);
    if (!runAs || runAs.uid === 0) throw new Refusal(`no service account ${cfg.run_as} to hand terminals to`);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chownSync(this.dir, runAs.uid, runAs.gid);
    chmodSync(this.dir, 0o700);
    return this.dir;
  }

  async open(cfg: Config, sp: SystemdSpawnerConfig, req: { user: string; server: string; profile: string; cols: number; rows: number }): Promise<TerminalInfo & { socket: string }> {
    if (!cfg.terminal.enabled) throw new Refusal("terminals are turned off (terminal.enabled)");
    const open = [...this.live.values()].filter((t) => t.user === req.user && !t.ended).length;
    if (open >= cfg.terminal.max_per_user) throw new Refusal(`${req.user} already has ${open} terminals open, the limit (terminal.max_per_user)`);
    let profile;
    try {
      profile = resolveProfile(cfg, req.user, req.profile || undefined);
    } catch (err) {
      throw new Refusal((err as Error).message);
    }
    const account = await ensureAccount(req.user, sp.unix_users, this.log);
    const shell = cfg.terminal.shell ?? account.shell;
    if (!usableShell(shell)) throw new Refusal(`Unix account ${account.name} has no login shell (${shell || "none"}); an admin can set terminal.shell`);
    // systemd-run --pty (and --wait) talk to systemd through the system bus, not its private socket.
    if (!existsSync(SYSTEM_BUS)) throw new Refusal("terminals under the systemd spawner need the system D-Bus (Debian package dbus), and it is not running");
    const id = randomBytes(8).toString("hex");
    const unit = terminalUnit(req.user, id);
    const { slice } = unitNames(req.user, "");
    const argv = terminalRunArgv({
      unit,
      slice,
      uid: account.uid,
      gid: account.gid,
      home: account.home,
      shell,
      limits: { memory: profile?.memory, cpu: profile?.cpu, tasks: profile?.tasks },
      hardening: sp.hardening,
      properties: sp.properties,
      description: `slicehub terminal ${req.user}`,
    });
    const dir = await this.socketDir(cfg);
    const pty = await PtySession.spawn({
      file: argv[0]!,
      args: argv.slice(1),
      cwd: "/",
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TERM: "xterm-256color", LANG: "C.UTF-8" },
      cols: req.cols,
      rows: req.rows,
    });
    const sliceArgv = sliceSetPropertyArgv(slice, sp.slice_limits);
    if (sliceArgv) void runUnit(sliceArgv).catch((e: unknown) => this.log.warn("could not set the user slice's limits", { slice, error: e }));
    const socket = join(dir, `${id}.sock`);
    const entry: Live = { id, user: req.user, server: req.server, unit, account: account.name, created: Date.now(), ended: false, pty, socket, listener: net.createServer(), held: [] };
    // Input typed before systemd-run has put its own terminal into raw mode and started relaying is lost (seen:
    // the line is echoed, then the shell's prompt comes and the command never runs). The first output is the
    // shell's, relayed, or systemd-run's error; either way input can go from then on (or after 5 s regardless).
    const release = () => {
      const held = entry.held;
      entry.held = undefined;
      for (const b of held ?? []) pty.write(b);
    };
    const offFirst = pty.onData(() => {
      offFirst();
      release();
    });
    setTimeout(release, HOLD_INPUT_MS).unref();
    entry.listener.on("connection", (sock) => this.attach(entry, sock));
    await new Promise<void>((resolve, reject) => {
      entry.listener.once("error", reject);
      entry.listener.listen(socket, () => resolve());
    });
    const runAs = await lookupAccount(cfg.run_as);
    chownSync(socket, runAs!.uid, runAs!.gid);
    chmodSync(socket, 0o600);
    this.live.set(id, entry);
    pty.onExit((exit) => {
      entry.ended = true;
      this.log.info("terminal ended", { user: entry.user, unit, status: exit.code, signal: exit.signal });
      setTimeout(() => this.forget(entry), ENDED_KEEP_MS).unref();
    });
    this.log.info("terminal opened", { user: req.user, server: req.server, unit, account: account.name, profile: profile?.name });
    return { id, user: req.user, server: req.server, unit, account: account.name, created: entry.created, ended: false, socket };
  }

  /** One reader at a time: a new connection (a reattach) replaces the previous one. It gets the scrollback first. */
  private attach(entry: Live, sock: net.Socket): void {
    entry.client?.destroy();
    entry.client = sock;
    sock.on("error", () => undefined);
    const send = (type: number, payload: Buffer) => {
      if (!sock.write(frame(type, payload)) && sock.writableLength > HIGH_WATER) {
        entry.pty.pause();
        sock.once("drain", () => entry.pty.resume());
      }
    };
    send(FRAME_OUTPUT, entry.pty.scrollback.contents());
    const offData = entry.pty.onData((chunk) => send(FRAME_OUTPUT, chunk));
    const offExit = entry.pty.onExit((exit) => sock.end(frame(FRAME_EXIT, Buffer.from(JSON.stringify(exit)))));
    sock.on("data", (d: Buffer) => {
      if (entry.held) entry.held.push(d);
      else entry.pty.write(d);
    });
    sock.once("close", () => {
      offData();
      offExit();
      if (entry.client === sock) {
        entry.client = undefined;
        entry.pty.resume();
      }
    });
  }

  resize(id: string, cols: number, rows: number): void {
    this.live.get(id)?.pty.resize(cols, rows);
  }

  /** Ends the terminal: its unit is stopped (every process in it), the pty hung up. */
  async close(id: string): Promise<void> {
    const entry = this.live.get(id);
    if (!entry) return;
    this.forget(entry);
    entry.pty.kill();
    await stopUnit(entry.unit, 3_000).catch((err: unknown) => this.log.warn("could not stop a terminal unit", { unit: entry.unit, error: err }));
  }

  private forget(entry: Live): void {
    if (this.live.get(entry.id) !== entry) return;
    this.live.delete(entry.id);
    entry.client?.destroy();
    entry.listener.close();
    rmSync(entry.socket, { force: true });
  }

  list(): TerminalInfo[] {
    return [...this.live.values()].map(({ id, user, server, unit, account, created, ended }) => ({ id, user, server, unit, account, created, ended }));
  }

  /** The helper is going away: its ptys go with it; stop the units so no shell outlives them. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.live.keys()].map((id) => this.close(id)));
  }

}
