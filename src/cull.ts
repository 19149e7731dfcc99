// The built-in idle culler (config `cull`): what jupyterhub-idle-culler does from outside, done inside the hub.
// Every `every_s` it stops running servers idle longer than `idle_timeout_s` (activity: requests through the
// proxy, flushed first so none is missed, and the server's own reports to POST /hub/api/users/{name}/activity,
// which include kernel and terminal activity) or running longer than `max_age_s`, and, with `users.enabled`,
// deletes users who have had no server and no sign of life for `users.idle_timeout_s`. Admins are exempt unless
// `admins`. Each stop records its reason on the server (shown on home until the next start) and is logged.
//
// The decisions are pure functions of the config, a clock and rows (serversToCull, usersToCull), tested with an
// injected clock; the Culler applies them. Every config reload takes effect at once (reconfigure).
import type { Config } from "./config/schema.js";
import type { Lifecycle, ServerStatus } from "./lifecycle.js";
import type { Logger } from "./log.js";
import type { Store, UserActivityRow } from "./store/store.js";

export type CullConfig = Config["cull"];

/** A server as the culler judges it. */
export interface ServerView {
  id: number;
  spawnId: number;
  userId: number;
  user: string;
  server: string;
  admin: boolean;
  status: ServerStatus;
  started: number | null;
  lastActivity: number | null;
}

/** `limitMs`: the configured idle_timeout_s or max_age_s that was passed. */
export type ServerCull =
  | { server: ServerView; reason: "idle"; idleMs: number; limitMs: number }
  | { server: ServerView; reason: "max_age"; ageMs: number; limitMs: number };

export interface UserCull {
  user: UserActivityRow;
  idleMs: number;
}

/** What the culler did, for whoever counts it (metrics): one event per stopped server or deleted user. */
export type CullEvent =
  | { kind: "server"; user: string; server: string; reason: "idle" | "max_age"; idleMs: number; ageMs: number }
  | { kind: "user"; user: string; idleMs: number };

const listeners = new Set<(e: CullEvent) => void>();

/** Be told of every cull (e.g. a Prometheus counter); returns the function that stops it. */
export function onCull(listener: (e: CullEvent) => void): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** "45 s", "12 min", "2 h", "2 h 5 min", "3 days", "3 days 4 h": a span as people say it, rounded down. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} days ${h % 24} h` : `${d} days`;
}

/** The reason stored with a culled server and shown on home after "Your server was stopped ": the limit it passed. */
export function stopReason(c: Pick<ServerCull, "reason" | "limitMs">): string {
  return c.reason === "idle" ? `after ${humanDuration(c.limitMs)} idle` : `after reaching its maximum age of ${humanDuration(c.limitMs)}`;
}

/**
 * The running servers to stop now: idle (no activity since its start or its last activity) for longer than
 * idle_timeout_s, else running longer than max_age_s (if set). Pending and stopping servers are left alone,
 * and admins' servers unless `admins`. Named servers count like the default one. `watchingSince`: when this hub
 * process started; idleness counts from then at the earliest, because while the hub was down no request could
 * reach a server and its activity reports were refused, so the store does not know whether it was in use.
 */
export function serversToCull(cfg: CullConfig, now: number, servers: readonly ServerView[], watchingSince = 0): ServerCull[] {
  if (!cfg.enabled) return [];
  const out: ServerCull[] = [];
  for (const s of servers) {
    if (s.status !== "running" || s.started === null) continue;
    if (s.admin && !cfg.admins) continue;
    const idleMs = now - Math.max(s.started, s.lastActivity ?? 0, watchingSince);
    const ageMs = now - s.started;
    if (idleMs > cfg.idle_timeout_s * 1000) out.push({ server: s, reason: "idle", idleMs, limitMs: cfg.idle_timeout_s * 1000 });
    else if (cfg.max_age_s > 0 && ageMs > cfg.max_age_s * 1000) out.push({ server: s, reason: "max_age", ageMs, limitMs: cfg.max_age_s * 1000 });
  }
  return out;
}

/**
 * The users to delete now (only with users.enabled): no server that is not stopped, no sign of life for longer
 * than users.idle_timeout_s, not blocked (deleting a blocked user would unblock the name), not an admin unless
 * `admins`.
 */
export function usersToCull(cfg: CullConfig, now: number, users: readonly UserActivityRow[]): UserCull[] {
  if (!cfg.enabled || !cfg.users.enabled) return [];
  const out: UserCull[] = [];
  for (const u of users) {
    if (u.blocked || u.has_server) continue;
    if (u.admin && !cfg.admins) continue;
    const idleMs = now - u.last_seen;
    if (idleMs > cfg.users.idle_timeout_s * 1000) out.push({ user: u, idleMs });
  }
  return out;
}

export interface CullerDeps {
  store: Store;
  lifecycle: Lifecycle;
  config: () => Config;
  log: Logger;
  /** Writes the proxy's activity not yet flushed to the store, so a check sees every request. */
  flushActivity?: () => void;
  /** Whether the user has something the store does not show: an open browser terminal, an SSH session. */
  userBusy?: (user: string) => Promise<boolean>;
  /** After a user was deleted: end whatever of theirs still runs (terminals, SSH). */
  userDeleted?: (user: string) => Promise<void>;
  /** The clock (tests inject one). */
  now?: () => number;
}

/** How many servers one check stops at once (each may take up to spawner.stop_timeout_s). */
const STOP_CONCURRENCY = 4;

export class Culler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly now: () => number;
  /** When this culler (this hub process) began: see serversToCull's watchingSince. */
  private readonly since: number;

  constructor(private readonly d: CullerDeps) {
    this.now = d.now ?? Date.now;
    this.since = this.now();
  }

  /** Check every cull.every_s from now on (whether it is enabled is read at each check). */
  start(): void {
    if (this.timer) return;
    this.closed = false;
    this.announce();
    this.schedule();
  }

  /** After a config reload: the next check comes every_s (the new one) from now. */
  reconfigure(): void {
    if (this.closed || !this.timer) return;
    this.announce();
    clearTimeout(this.timer);
    this.schedule();
  }

  private announced: string | undefined;

  /** Logs the culling settings at start and whenever a reload changes them, so the journal says what applies. */
  private announce(): void {
    const cfg = this.d.config().cull;
    const text = JSON.stringify(cfg);
    if (text === this.announced) return;
    const first = this.announced === undefined;
    this.announced = text;
    if (!cfg.enabled) {
      if (!first) this.d.log.info("culling idle servers is off");
      return;
    }
    this.d.log.info("culling idle servers", {
      idle_timeout_s: cfg.idle_timeout_s,
      max_age_s: cfg.max_age_s || null,
      every_s: cfg.every_s,
      admins: cfg.admins,
      users_idle_timeout_s: cfg.users.enabled ? cfg.users.idle_timeout_s : null,
    });
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.check().finally(() => {
        if (!this.closed) this.schedule();
      });
    }, this.d.config().cull.every_s * 1000);
    this.timer.unref();
  }

  /** One check; a check already under way is joined, not repeated. */
  check(): Promise<void> {
    this.running ??= this.run()
      .catch((err: unknown) => this.d.log.error("the culler's check failed", { error: err }))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<void> {
    const cfg = this.d.config().cull;
    if (!cfg.enabled) return;
    this.d.flushActivity?.();
    const { store, lifecycle } = this.d;
    const now = this.now();
    const views: ServerView[] = store.listActiveServers().map((s) => {
      const owner = store.getUserById(s.user_id);
      return {
        id: s.id,
        spawnId: s.spawn_id,
        userId: s.user_id,
        user: s.user_name,
        server: s.name,
        admin: !!owner?.admin,
        status: lifecycle.status(s),
        started: s.started,
        lastActivity: s.last_activity,
      };
    });
    const culls = serversToCull(cfg, now, views, this.since);
    let next = 0;
    const worker = async () => {
      while (next < culls.length) await this.cullServer(culls[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(STOP_CONCURRENCY, culls.length) }, worker));
    for (const u of usersToCull(cfg, this.now(), store.userActivity())) await this.cullUser(u);
  }

  private async cullServer(c: ServerCull): Promise<void> {
    const { store, lifecycle, log } = this.d;
    const s = c.server;
    const user = store.getUserById(s.userId);
    const fresh = store.getServerById(s.id);
    // Started again, or stopped, since the check looked.
    if (!user || !fresh || fresh.spawn_id !== s.spawnId || lifecycle.status(fresh) !== "running") return;
    const reason = stopReason(c);
    const idleMs = this.now() - Math.max(s.started ?? 0, s.lastActivity ?? 0, this.since);
    const ageMs = this.now() - (s.started ?? this.now());
    log.info(`culling server: stopping it ${reason}`, {
      user: s.user,
      server: s.server,
      reason: c.reason,
      idle_s: Math.round(idleMs / 1000),
      age_s: Math.round(ageMs / 1000),
    });
    try {
      await lifecycle.stop(user, fresh);
    } catch (err) {
      log.error("culling a server failed", { user: s.user, server: s.server, error: err });
      return;
    }
    const after = store.getServerById(s.id);
    // Only the run that was culled: a new start since clears the reason and has its own spawn_id.
    if (after?.state === "stopped" && after.spawn_id === s.spawnId) store.setStopReason(s.id, reason, this.now());
    emit({ kind: "server", user: s.user, server: s.server, reason: c.reason, idleMs, ageMs });
  }

  private async cullUser(c: UserCull): Promise<void> {
    const { store, log } = this.d;
    const name = c.user.name;
    if (await this.d.userBusy?.(name).catch(() => true)) return;
    const cfg = this.d.config().cull;
    // Looked at again in the same transaction as the delete: a login or a start since the list was read wins.
    const deleted = store.transaction(() => {
      const fresh = store.userActivityOf(c.user.id);
      if (!fresh || fresh.name !== name || usersToCull(cfg, this.now(), [fresh]).length === 0) return false;
      const identity = store.getIdentityOfUser(fresh.id);
      if (identity) store.rememberCulledUser(name, identity.issuer, identity.subject, this.now());
      store.deleteUser(fresh.id);
      return true;
    });
    if (!deleted) return;
    log.info(`culling user: deleted after ${humanDuration(c.idleMs)} without activity and without a server`, { user: name, idle_s: Math.round(c.idleMs / 1000) });
    await this.d.userDeleted?.(name).catch((err: unknown) => log.error("ending a culled user's sessions failed", { user: name, error: err }));
    emit({ kind: "user", user: name, idleMs: c.idleMs });
  }

  /** Stop checking; waits for a check under way. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}

function emit(e: CullEvent): void {
  for (const l of listeners) {
    try {
      l(e);
    } catch {
      // a listener's failure is its own
    }
  }
}
