// The web process's terminals: who has which, the single-use tickets that let a terminal page's websocket in,
// and the limits: at most terminal.max_per_user each, a detached shell lives terminal.detach_grace_s, an idle
// one terminal.idle_timeout_s, and a user who loses access (blocked, deleted, off the allow-lists) loses every
// terminal within a second. Shells themselves run in a TerminalBackend (backend.ts).
import { randomBytes } from "node:crypto";
import type { WebSocket } from "ws";
import type { Config } from "../config/schema.js";
import type { Logger } from "../log.js";
import { safeEqual } from "../secrets.js";
import type { Store, UserRow } from "../store/store.js";
import type { Attachment, TerminalBackend } from "./backend.js";
import { clampSize, type PtyExit } from "./pty-session.js";

/** A ticket is good for this long after its page was served, and for one websocket. */
export const TICKET_TTL_MS = 30_000;
/** Output the browser has not taken yet beyond which the shell's output is paused. */
const WS_HIGH_WATER = 1 << 20;
const WS_LOW_WATER = 256 << 10;

export class TerminalError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface TerminalView {
  id: string;
  owner: string;
  server: string;
  account: string;
  created: number;
  lastActivity: number;
  attached: boolean;
}

interface Terminal extends TerminalView {
  ownerId: number;
  detachedAt: number | undefined;
  conn?: { ws: WebSocket; attachment?: Attachment; viewer: string; paused?: NodeJS.Timeout };
  ending?: boolean;
}

interface Ticket {
  terminal: string;
  viewerId: number;
  sessionHash: string;
  expires: number;
}

export interface ManagerOptions {
  store: Store;
  config: () => Config;
  log: Logger;
  backend: TerminalBackend;
  /** Whether this user may still use the hub (blocked, allow-lists): main/ passes auth/access.ts's rule. */
  allowed: (user: UserRow) => boolean;
  sweepMs?: number;
  now?: () => number;
}

/** Messages to the page; output goes as binary frames. */
export type ServerMessage =
  | { type: "hello"; id: string; account: string; owner: string; server: string }
  | { type: "exit"; code: number; signal: number; message: string }
  | { type: "ended"; message: string };

export class TerminalManager {
  private readonly terminals = new Map<string, Terminal>();
  private readonly tickets = new Map<string, Ticket>();
  /** Opens under way per owner, counted against the limit so two quick clicks cannot both pass it. */
  private readonly opening = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly opts: ManagerOptions) {
    this.now = opts.now ?? Date.now;
    this.timer = setInterval(() => this.sweep(), opts.sweepMs ?? 1_000);
    this.timer.unref();
  }

  private view(t: Terminal): TerminalView {
    return { id: t.id, owner: t.owner, server: t.server, account: t.account, created: t.created, lastActivity: t.lastActivity, attached: !!t.conn };
  }

  list(): TerminalView[] {
    return [...this.terminals.values()].filter((t) => !t.ending).map((t) => this.view(t));
  }

  of(owner: string, server?: string): TerminalView[] {
    return this.list().filter((t) => t.owner === owner && (server === undefined || t.server === server));
  }

  get(id: string): TerminalView | undefined {
    const t = this.terminals.get(id);
    return t && !t.ending ? this.view(t) : undefined;
  }

  /** A new shell for `owner`, with the limits of `profile` ("" for their default); `by` is who asked. */
  async open(owner: UserRow, server: string, profile: string, by: string): Promise<TerminalView> {
    const cfg = this.opts.config().terminal;
    if (!this.opts.config().terminal.enabled) throw new TerminalError(404, "Terminals are turned off on this hub.");
    if (owner.blocked || !this.opts.allowed(owner)) throw new TerminalError(403, `${owner.name} may not use this hub now.`);
    const pending = this.opening.get(owner.name) ?? 0;
    const open = this.of(owner.name).length + pending;
    if (open >= cfg.max_per_user) {
      throw new TerminalError(429, `${by === owner.name ? "You have" : `${owner.name} has`} ${open} terminal${open === 1 ? "" : "s"} open, the most allowed. End one (type exit in it) and try again.`);
    }
    this.opening.set(owner.name, pending + 1);
    try {
      const opened = await this.opts.backend.open({ user: owner.name, server, profile, cols: 80, rows: 24 });
      const now = this.now();
      const t: Terminal = { id: opened.id, owner: owner.name, ownerId: owner.id, server, account: opened.account, created: now, lastActivity: now, attached: false, detachedAt: now };
      this.terminals.set(t.id, t);
      const fields = { user: owner.name, server, terminal: t.id, account: opened.account, by };
      if (by === owner.name) this.opts.log.info("terminal opened", fields);
      else this.opts.log.warn("terminal opened by an admin for another user (admin_access)", fields);
      return this.view(t);
    } catch (err) {
      if (err instanceof TerminalError) throw err;
      throw new TerminalError(500, `The terminal could not be started: ${(err as Error).message}`);
    } finally {
      const left = (this.opening.get(owner.name) ?? 1) - 1;
      if (left > 0) this.opening.set(owner.name, left);
      else this.opening.delete(owner.name);
    }
  }

  /** A ticket for one websocket to `terminal`, bound to the browser session that loaded its page. */
  issueTicket(terminal: string, viewer: UserRow, sessionHash: string): string {
    const ticket = randomBytes(32).toString("base64url");
    this.tickets.set(ticket, { terminal, viewerId: viewer.id, sessionHash, expires: this.now() + TICKET_TTL_MS });
    return ticket;
  }

  /** The ticket's terms if it is live; it is spent either way. */
  redeem(ticket: string): Omit<Ticket, "expires"> | undefined {
    const t = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    if (!t || t.expires <= this.now()) return undefined;
    return { terminal: t.terminal, viewerId: t.viewerId, sessionHash: t.sessionHash };
  }

  /** Constant-time check that a session is the one a ticket was issued to. */
  static sameSession(a: string, b: string): boolean {
    return safeEqual(a, b);
  }

  /** Puts a websocket on a terminal; an earlier one is told and closed (the same shell in a newer window). */
  async connect(id: string, ws: WebSocket, viewer: string): Promise<void> {
    const t = this.terminals.get(id);
    const send = (m: ServerMessage) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(m));
    if (!t || t.ending) {
      send({ type: "ended", message: "This terminal has ended." });
      ws.close(1000);
      return;
    }
    if (t.conn) this.disconnect(t, "This terminal was opened in another window.");
    const conn: NonNullable<Terminal["conn"]> = { ws, viewer };
    // A reverse proxy in front closes a websocket that is quiet for a minute or so (nginx: 60 s); pings keep a
    // quiet shell's connection open without counting as activity.
    const ping = setInterval(() => ws.readyState === ws.OPEN && ws.ping(), 30_000);
    ping.unref();
    ws.once("close", () => clearInterval(ping));
    t.conn = conn;
    t.detachedAt = undefined;
    if (viewer !== t.owner) this.opts.log.warn("admin attached to another user's terminal (admin_access)", { user: t.owner, terminal: id, by: viewer });
    const queued: Buffer[] = [];
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      t.lastActivity = this.now();
      if (isBinary) {
        if (conn.attachment) conn.attachment.write(data);
        else queued.push(data);
        return;
      }
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString("utf8"));
      } catch {
        return;
      }
      const m = msg as { type?: unknown; cols?: unknown; rows?: unknown };
      if (m.type === "resize" && typeof m.cols === "number" && typeof m.rows === "number") {
        const size = clampSize(m.cols, m.rows);
        this.opts.backend.resize(id, size.cols, size.rows);
      }
    });
    ws.on("close", () => {
      if (t.conn !== conn) return;
      conn.attachment?.close();
      if (conn.paused) clearInterval(conn.paused);
      t.conn = undefined;
      t.detachedAt = this.now();
    });
    ws.on("error", () => undefined);
    try {
      conn.attachment = await this.opts.backend.attach(id, {
        data: (chunk) => {
          if (ws.readyState !== ws.OPEN || !chunk.length) return;
          t.lastActivity = this.now();
          ws.send(chunk, { binary: true });
          if (ws.bufferedAmount > WS_HIGH_WATER && !conn.paused) {
            conn.attachment?.pause();
            conn.paused = setInterval(() => {
              if (ws.bufferedAmount > WS_LOW_WATER && ws.readyState === ws.OPEN) return;
              clearInterval(conn.paused);
              conn.paused = undefined;
              conn.attachment?.resume();
            }, 50);
          }
        },
        exit: (exit) => this.exited(t, exit),
        lost: () => void this.end(id, "The connection to the shell was lost: the hub (or its helper) restarted, which ends terminals."),
      });
    } catch {
      void this.end(id, "The shell is gone: the hub may have restarted, which ends terminals.");
      return;
    }
    if (t.conn !== conn) {
      conn.attachment.close();
      return;
    }
    send({ type: "hello", id, account: t.account, owner: t.owner, server: t.server });
    for (const q of queued.splice(0)) conn.attachment.write(q);
  }

  private disconnect(t: Terminal, message: string, code = 4000): void {
    const conn = t.conn;
    if (!conn) return;
    t.conn = undefined;
    t.detachedAt = this.now();
    conn.attachment?.close();
    if (conn.paused) clearInterval(conn.paused);
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(JSON.stringify({ type: "ended", message } satisfies ServerMessage));
    conn.ws.close(code, "detached");
  }

  private exited(t: Terminal, exit: PtyExit): void {
    if (t.ending) return;
    t.ending = true;
    const how = exit.signal ? `was ended by signal ${exit.signal}` : `exited${exit.code ? ` with status ${exit.code}` : ""}`;
    const conn = t.conn;
    t.conn = undefined;
    if (conn && conn.ws.readyState === conn.ws.OPEN) {
      conn.ws.send(JSON.stringify({ type: "exit", code: exit.code, signal: exit.signal, message: `The shell ${how}.` } satisfies ServerMessage));
      conn.ws.close(1000, "exited");
    }
    conn?.attachment?.close();
    this.terminals.delete(t.id);
    void this.opts.backend.close(t.id).catch(() => undefined);
    this.opts.log.info("terminal shell exited", { user: t.owner, terminal: t.id, status: exit.code, signal: exit.signal });
  }

  /** Ends a terminal: the page is told `why`, the shell and everything it started are stopped. */
  async end(id: string, why: string, by?: string): Promise<void> {
    const t = this.terminals.get(id);
    if (!t || t.ending) return;
    t.ending = true;
    this.disconnect(t, why, 1000);
    this.terminals.delete(id);
    this.opts.log.info("terminal ended", { user: t.owner, terminal: id, why, ...(by ? { by } : {}) });
    await this.opts.backend.close(id).catch((err: unknown) => this.opts.log.warn("ending a terminal failed", { terminal: id, error: err }));
  }

  /** Every terminal of `owner`; resolves when their shells have been told to stop. */
  async endUser(owner: string, why: string, by?: string): Promise<number> {
    const mine = [...this.terminals.values()].filter((t) => t.owner === owner && !t.ending);
    await Promise.all(mine.map((t) => this.end(t.id, why, by)));
    return mine.length;
  }

  /** Limits and access, once a second. */
  sweep(): void {
    const cfg = this.opts.config();
    const now = this.now();
    for (const [k, ticket] of this.tickets) if (ticket.expires <= now) this.tickets.delete(k);
    const allowed = new Map<number, boolean>();
    for (const t of [...this.terminals.values()]) {
      if (t.ending) continue;
      if (!cfg.terminal.enabled) {
        void this.end(t.id, "Terminals have been turned off on this hub.");
        continue;
      }
      if (!allowed.has(t.ownerId)) {
        const user = this.opts.store.getUserById(t.ownerId);
        allowed.set(t.ownerId, !!user && user.name === t.owner && !user.blocked && this.opts.allowed(user));
      }
      if (!allowed.get(t.ownerId)) {
        void this.end(t.id, "Your access to this hub has ended.");
        continue;
      }
      if (t.conn && t.conn.viewer !== t.owner) {
        const viewer = this.opts.store.getUser(t.conn.viewer);
        if (!cfg.admin_access || !viewer?.admin || viewer.blocked) this.disconnect(t, "Admins may no longer use other users' terminals (admin_access).", 1000);
      }
      if (now - t.lastActivity > cfg.terminal.idle_timeout_s * 1000) {
        void this.end(t.id, `The terminal was idle for ${cfg.terminal.idle_timeout_s} s (terminal.idle_timeout_s) and has been ended.`);
      } else if (!t.conn && t.detachedAt !== undefined && now - t.detachedAt > cfg.terminal.detach_grace_s * 1000) {
        void this.end(t.id, `No browser was attached for ${cfg.terminal.detach_grace_s} s (terminal.detach_grace_s).`);
      }
    }
  }

  /** The hub is stopping: every terminal ends (their shells cannot outlive the helper or this process). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.terminals.keys()].map((id) => this.end(id, "The hub is restarting, which ends terminals.")));
  }
}
