// Where shells run, as the web process sees it: in the privileged helper (systemd spawner; bytes over a Unix
// socket per terminal, control over the helper's IPC) or in the web process itself (local spawner: node-pty as
// the daemon's own user, who is every user's Unix account there).
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import type { HelperClient } from "../../spawners/privileged/client.js";
import { FRAME_EXIT, FRAME_OUTPUT, FrameReader } from "./frames.js";
import { TERMINAL_SOCKET_DIR } from "./helper-side.js";
import { PtySession, type PtyExit } from "./pty-session.js";
import { usableShell } from "./units.js";
import { randomBytes } from "node:crypto";

export interface OpenRequest {
  user: string;
  server: string;
  /** The profile whose limits apply ("" for the user's default); the helper resolves it again. */
  profile: string;
  cols: number;
  rows: number;
}

export interface Opened {
  id: string;
  /** The Unix account the shell runs as. */
  account: string;
}

export interface AttachHandlers {
  /** Output; the scrollback comes first, as one chunk. */
  data(chunk: Buffer): void;
  /** The shell ended. */
  exit(exit: PtyExit): void;
  /** The connection to the shell is gone without an exit (the helper went away). */
  lost(): void;
}

export interface Attachment {
  write(data: Buffer): void;
  /** Flow control: stop and restart the output while the browser is slow to take it. */
  pause(): void;
  resume(): void;
  /** Detach; the shell keeps running. */
  close(): void;
}

export interface TerminalBackend {
  open(req: OpenRequest): Promise<Opened>;
  attach(id: string, handlers: AttachHandlers): Promise<Attachment>;
  resize(id: string, cols: number, rows: number): void;
  /** Ends the shell and everything it started. */
  close(id: string): Promise<void>;
}

/** Local spawner: the daemon's own account, its login shell, a clean environment (not the hub's). */
export class LocalTerminalBackend implements TerminalBackend {
  private readonly ptys = new Map<string, PtySession>();
  constructor(private readonly config: () => Config) {}

  async open(req: OpenRequest): Promise<Opened> {
    const me = os.userInfo();
    const shell = this.config().terminal.shell ?? (usableShell(me.shell ?? undefined) ? me.shell! : "/bin/sh");
    const home = process.env.HOME || me.homedir;
    const env: Record<string, string> = {
      HOME: home,
      USER: me.username,
      LOGNAME: me.username,
      SHELL: shell,
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      TERM: "xterm-256color",
      COLORTERM: "truecolor",
      LANG: process.env.LANG && /utf-?8/i.test(process.env.LANG) ? process.env.LANG : "C.UTF-8",
    };
    const pty = await PtySession.spawn({ file: shell, args: ["-l"], cwd: home, env, cols: req.cols, rows: req.rows });
    const id = randomBytes(8).toString("hex");
    this.ptys.set(id, pty);
    pty.onExit(() => setTimeout(() => this.ptys.delete(id), 60_000).unref());
    return { id, account: me.username };
  }

  attach(id: string, h: AttachHandlers): Promise<Attachment> {
    const pty = this.ptys.get(id);
    if (!pty) return Promise.reject(new Error("no such terminal"));
    h.data(pty.scrollback.contents());
    const offData = pty.onData((chunk) => h.data(chunk));
    const offExit = pty.onExit((exit) => h.exit(exit));
    let paused = false;
    return Promise.resolve({
      write: (data) => pty.write(data),
      pause: () => {
        paused = true;
        pty.pause();
      },
      resume: () => {
        paused = false;
        pty.resume();
      },
      close: () => {
        offData();
        offExit();
        if (paused) pty.resume();
      },
    });
  }

  resize(id: string, cols: number, rows: number): void {
    this.ptys.get(id)?.resize(cols, rows);
  }

  async close(id: string): Promise<void> {
    const pty = this.ptys.get(id);
    this.ptys.delete(id);
    pty?.kill();
  }
}

/** Systemd spawner: the privileged helper runs the shells. */
export class HelperTerminalBackend implements TerminalBackend {
  constructor(
    private readonly helper: HelperClient,
    private readonly socketDir = TERMINAL_SOCKET_DIR,
  ) {}

  async open(req: OpenRequest): Promise<Opened> {
    const r = await this.helper.request<{ id: string; account: string }>({ op: "terminal-open", ...req });
    return { id: r.id, account: r.account };
  }

  attach(id: string, h: AttachHandlers): Promise<Attachment> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(join(this.socketDir, `${id}.sock`));
      let exited = false;
      let connected = false;
      const reader = new FrameReader((type, payload) => {
        if (type === FRAME_OUTPUT) h.data(payload);
        else if (type === FRAME_EXIT) {
          exited = true;
          h.exit(JSON.parse(payload.toString("utf8")) as PtyExit);
        }
      });
      sock.on("data", (chunk: Buffer) => {
        try {
          reader.push(chunk);
        } catch {
          sock.destroy();
        }
      });
      sock.once("error", (err) => {
        if (!connected) reject(err);
      });
      sock.once("close", () => {
        if (connected && !exited) h.lost();
      });
      sock.once("connect", () => {
        connected = true;
        resolve({
          write: (data) => void sock.write(data),
          pause: () => sock.pause(),
          resume: () => sock.resume(),
          close: () => {
            exited = true; // a detach is not a loss
            sock.destroy();
          },
        });
      });
    });
  }

  resize(id: string, cols: number, rows: number): void {
    void this.helper.request({ op: "terminal-resize", terminal: id, cols, rows }).catch(() => undefined);
  }

  async close(id: string): Promise<void> {
    await this.helper.request({ op: "terminal-close", terminal: id });
  }
}
