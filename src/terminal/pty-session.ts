// One shell on a pseudo-terminal (node-pty), with the scrollback a browser gets back when it reattaches. The
// privileged helper runs these for the systemd spawner (the pty's child is `systemd-run --pty …`), the web
// process for the local spawner. node-pty is loaded only when the first terminal opens: its native addon is
// external to the bundle, and nothing else needs it.
import type { IPty } from "node-pty";

/** Bytes of output kept for a reattaching browser. */
export const SCROLLBACK_BYTES = 256 * 1024;

export interface PtyExit {
  code: number;
  signal: number;
}

/** Output kept in a ring: the last `limit` bytes, as chunks (never split, except the oldest when trimmed). */
export class Scrollback {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit = SCROLLBACK_BYTES) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length) {
      const first = this.chunks[0]!;
      const over = this.size - this.limit;
      if (first.length <= over) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.size -= over;
      }
    }
  }

  /** Everything kept, as one buffer. */
  contents(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

export interface PtySpec {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  cols: number;
  rows: number;
}

type PtyModule = typeof import("node-pty");
let ptyModule: Promise<PtyModule> | undefined;
const loadPty = (): Promise<PtyModule> => (ptyModule ??= import("node-pty"));

/** Clamp a browser's idea of the window size to what a pty takes. */
export function clampSize(cols: number, rows: number): { cols: number; rows: number } {
  const clamp = (n: number, max: number) => (Number.isFinite(n) ? Math.min(max, Math.max(2, Math.floor(n))) : 24);
  return { cols: clamp(cols, 1000), rows: clamp(rows, 500) };
}

export class PtySession {
  readonly scrollback = new Scrollback();
  exit: PtyExit | undefined;
  private readonly dataListeners = new Set<(chunk: Buffer) => void>();
  private readonly exitListeners = new Set<(exit: PtyExit) => void>();

  private constructor(private readonly pty: IPty) {
    // node-pty decodes output as UTF-8 unless told not to; raw bytes keep a character split across two reads whole.
    pty.onData((data: string | Buffer) => {
      const chunk = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      this.scrollback.push(chunk);
      for (const l of this.dataListeners) l(chunk);
    });
    pty.onExit(({ exitCode, signal }) => {
      this.exit = { code: exitCode, signal: signal ?? 0 };
      for (const l of this.exitListeners) l(this.exit);
    });
  }

  static async spawn(spec: PtySpec): Promise<PtySession> {
    const { spawn } = await loadPty();
    const size = clampSize(spec.cols, spec.rows);
    const pty = spawn(spec.file, spec.args, { name: "xterm-256color", cwd: spec.cwd, env: spec.env, ...size, encoding: null });
    return new PtySession(pty);
  }

  get pid(): number {
    return this.pty.pid;
  }

  onData(listener: (chunk: Buffer) => void): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  onExit(listener: (exit: PtyExit) => void): () => void {
    if (this.exit) {
      listener(this.exit);
      return () => undefined;
    }
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  write(data: Buffer | string): void {
    if (!this.exit) this.pty.write(data);
  }

  /** Stop reading the shell's output (its writes block once the pty's buffer is full) until resume(). */
  pause(): void {
    if (!this.exit) this.pty.pause();
  }

  resume(): void {
    if (!this.exit) this.pty.resume();
  }

  resize(cols: number, rows: number): void {
    if (this.exit) return;
    const size = clampSize(cols, rows);
    try {
      this.pty.resize(size.cols, size.rows);
    } catch {
      // The pty closed between the check and the call.
    }
  }

  /** Hang up: SIGHUP to the shell (as closing a terminal window does), SIGKILL if it is still there after `graceMs`. */
  kill(graceMs = 3_000): void {
    if (this.exit) return;
    try {
      this.pty.kill("SIGHUP");
    } catch {
      return;
    }
    setTimeout(() => {
      if (this.exit) return;
      try {
        this.pty.kill("SIGKILL");
      } catch {
        // gone
      }
    }, graceMs).unref();
  }
}
