// The only writer of server state. Starts and stops user servers through a Spawner, keeps the routing
// table in step with the store, records spawn progress (stored per spawn and streamed to watchers), and
// re-adopts servers that outlived a previous hub process.
import { EventEmitter } from "node:events";
import type { Config } from "./config/schema.js";
import type { Logger } from "./log.js";
import { oauthClientId, routeKey, serverFilter, serverPrefix } from "./names.js";
import type { Profile } from "./config/schema.js";
import { resolveProfile } from "./profiles.js";
import { serverArgv, serverEnv } from "./server-env.js";
import { serverTokenScopes } from "./scopes.js";
import { sha256 } from "./secrets.js";
import type { ServerRow, Store, UserRow } from "./store/store.js";
import type { RouteTable } from "../proxy/table.js";
import { freePort } from "../spawners/ports.js";
import { waitReady } from "../spawners/readiness.js";
import type { Spawner, SpawnerState } from "../spawners/spawner.js";

export interface ProgressEvent {
  progress: number;
  message: string;
  html_message?: string;
  ready?: boolean;
  failed?: boolean;
  url?: string;
}

export class LifecycleError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** user_options are stored with the server and shown back in the API: a few profile choices, not data. */
const MAX_USER_OPTIONS = 4096;

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface Pending {
  abort: AbortController;
  done: Promise<void>;
}

export interface LifecycleDeps {
  store: Store;
  spawner: Spawner;
  table: RouteTable;
  config: () => Config;
  log: Logger;
  /** The hub API as the server process reaches it, e.g. http://127.0.0.1:8000/hub/api */
  hubApiUrl: string;
}

export class Lifecycle {
  private readonly pending = new Map<number, Pending>();
  private readonly stopping = new Map<number, Promise<void>>();
  private readonly checking = new Set<number>();
  private readonly events = new EventEmitter();
  private watchTimer: NodeJS.Timeout | undefined;

  constructor(private readonly d: LifecycleDeps) {
    this.events.setMaxListeners(0);
  }

  isPending(serverId: number): boolean {
    return this.pending.has(serverId);
  }

  isStopping(serverId: number): boolean {
    return this.stopping.has(serverId);
  }

  /**
   * Start a server; resolves when the start is under way. `done` settles when it is ready or has failed.
   * Starting a server that is already starting returns the same `done`.
   */
  start(user: UserRow, serverName: string, userOptions: object = {}): { done: Promise<void> } {
    // Refuse a profile this user may not use now (before any record exists), rather than as a failed start;
    // record the one used by name.
    const requested = (userOptions as { profile?: unknown }).profile;
    if (requested !== undefined && typeof requested !== "string") throw new LifecycleError(400, "user_options.profile must be a string");
    let profile: Profile | undefined;
    try {
      profile = resolveProfile(this.d.config(), user.name, requested || undefined);
    } catch (err) {
      throw new LifecycleError(403, `Cannot start ${user.name}${serverName ? `/${serverName}` : ""}: ${(err as Error).message}`);
    }
    if (profile) userOptions = { ...userOptions, profile: profile.name };
    if (JSON.stringify(userOptions).length > MAX_USER_OPTIONS) throw new LifecycleError(400, `user_options is too large (at most ${MAX_USER_OPTIONS} bytes as JSON)`);
    // The limit is checked and the record made with no await in between, so concurrent starts cannot both
    // pass it; the privileged helper counts the user's running units again.
    const limit = this.d.config().spawner.named_servers.limit;
    if (serverName && !this.d.store.getServer(user.id, serverName)) {
      if (limit === 0) throw new LifecycleError(400, "Named servers are not enabled.");
      const named = this.d.store.listServers(user.id).filter((s) => s.name !== "").length;
      if (named >= limit) {
        throw new LifecycleError(400, `User ${user.name} already has the maximum of ${limit} named servers. One must be deleted before a new server can be created`);
      }
    }
    const server = this.d.store.ensureServer(user.id, serverName);
    const existing = this.pending.get(server.id);
    if (existing) return { done: existing.done };
    if (server.state === "running") throw new LifecycleError(400, `${user.name}${serverName ? `/${serverName}` : ""} is already running`);
    if (this.stopping.has(server.id)) throw new LifecycleError(400, `${user.name}${serverName ? `/${serverName}` : ""} is still stopping; try again in a moment`);

    const spawnId = server.spawn_id + 1;
    this.d.store.updateServer(server.id, {
      state: "pending",
      spawn_id: spawnId,
      failure: null,
      user_options: JSON.stringify(userOptions),
      url: null,
      spawner_state: null,
      started: null,
    });
    const abort = new AbortController();
    const done = this.runSpawn(user, this.d.store.getServerById(server.id)!, abort.signal).finally(() => this.pending.delete(server.id));
    this.pending.set(server.id, { abort, done });
    return { done };
  }

  private emit(server: ServerRow, ev: ProgressEvent): void {
    this.d.store.addSpawnEvent(server.id, server.spawn_id, ev);
    this.events.emit(`progress:${server.id}`, ev);
  }

  private async runSpawn(user: UserRow, server: ServerRow, signal: AbortSignal): Promise<void> {
    const cfg = this.d.config();
    const log = this.d.log.child({ user: user.name, server: server.name });
    const prefix = serverPrefix(user.name, server.name);
    this.emit(server, { progress: 0, message: "Server requested" });
    let state: SpawnerState | undefined;
    try {
      const options = JSON.parse(server.user_options) as { profile?: unknown };
      const profile = resolveProfile(cfg, user.name, typeof options.profile === "string" ? options.profile : undefined);
      const token = this.issueServerCredentials(user, server);
      const port = await freePort();
      const host = "127.0.0.1";
      const env = serverEnv(cfg, {
        user: user.name,
        server: server.name,
        serviceUrl: `http://${host}:${port}${prefix}`,
        hubApiUrl: this.d.hubApiUrl,
        profile,
        account: { name: process.env.USER ?? user.name, home: process.env.HOME ?? "/", shell: process.env.SHELL ?? "/bin/sh" },
        hubEnv: process.env,
      });
      const argv = serverArgv(cfg, profile);
      this.emit(server, { progress: 10, message: profile ? `Launching ${argv[0]} (profile ${profile.title})` : `Launching ${argv[0]}` });
      log.info("spawning server", { argv: argv[0], port, profile: profile?.name });
      state = await this.d.spawner.start({ user: user.name, serverName: server.name, profile: profile?.name ?? "", argv, env, token, host, port }, (p) => {
        this.emit(server, { progress: Math.min(90, Math.max(1, p.progress)), message: p.message, html_message: p.html_message });
      });
      const url = `http://${host}:${port}`;
      this.d.store.updateServer(server.id, { spawner_kind: this.d.spawner.kind, spawner_state: JSON.stringify(state), url });
      if (signal.aborted) throw new LifecycleError(499, "Spawn cancelled");
      this.emit(server, { progress: 50, message: "Waiting for the server to answer" });
      const launched = state;
      const ready = await waitReady(`${url}${prefix}`, {
        timeoutMs: cfg.spawner.start_timeout_s * 1000,
        uid: this.d.spawner.serverUid(launched),
        signal,
        isAlive: () => this.d.spawner.poll(launched),
      });
      if (!ready.ok) throw new LifecycleError(500, ready.reason);
      // The stop request may have arrived between the probe answering and now.
      if (signal.aborted) throw new LifecycleError(499, "Spawn cancelled");
      this.d.store.updateServer(server.id, { state: "running", started: Date.now(), last_activity: Date.now() });
      this.d.table.set({ prefix: routeKey(user.name, server.name), target: url, serverId: server.id });
      this.emit(server, {
        progress: 100,
        ready: true,
        message: `Server ready at ${prefix}`,
        html_message: `Server ready at <a href="${escapeHtml(prefix)}">${escapeHtml(prefix)}</a>`,
        url: prefix,
      });
      log.info("server ready", { url: prefix });
    } catch (err) {
      const cancelled = signal.aborted;
      let reason = err instanceof Error ? err.message : String(err);
      if (state && !cancelled) {
        const detail = await this.d.spawner.failureDetail(state).catch(() => "");
        if (detail) reason = `${reason}\n${detail}`;
      }
      if (state) await this.d.spawner.stop(state, cfg.spawner.stop_timeout_s * 1000).catch((e: unknown) => log.error("could not stop failed server", { error: e }));
      this.revokeServerCredentials(server);
      this.d.store.updateServer(server.id, { state: "stopped", url: null, spawner_state: null, failure: cancelled ? null : `Start failed: ${reason}` });
      this.emit(server, cancelled ? { progress: 100, failed: true, message: "Spawn cancelled" } : { progress: 100, failed: true, message: `Spawn failed: ${reason}` });
      if (cancelled) log.info("spawn cancelled");
      else log.warn("spawn failed", { reason });
    }
  }

  /** A fresh server token and OAuth client for this spawn; the token is also the client's secret. */
  private issueServerCredentials(user: UserRow, server: ServerRow): string {
    return this.d.store.transaction(() => {
      this.revokeServerCredentials(server);
      const filter = serverFilter(user.name, server.name);
      const { token } = this.d.store.createToken({
        userId: user.id,
        kind: "server",
        scopes: serverTokenScopes(user.name, filter),
        note: `Server at ${serverPrefix(user.name, server.name)}`,
        serverId: server.id,
      });
      this.d.store.upsertOAuthClient({
        id: oauthClientId(user.name, server.name),
        secret_hash: sha256(token),
        redirect_uri: `${serverPrefix(user.name, server.name)}oauth_callback`,
        description: `Server at ${serverPrefix(user.name, server.name)}`,
        allowed_scopes: JSON.stringify([`access:servers!server=${filter}`]),
        server_id: server.id,
      });
      return token;
    });
  }

  /**
   * Deleting the clients also deletes (by cascade) the OAuth tokens browsers got for this server. Found by
   * the server's id, never by a client id, so one server's stop cannot touch another's login.
   */
  private revokeServerCredentials(server: ServerRow): void {
    this.d.store.transaction(() => {
      this.d.store.deleteServerTokens(server.id);
      this.d.store.deleteServerOAuthClients(server.id);
    });
  }

  /** Stop a server (or cancel its start). Resolves when it is gone. */
  stop(user: UserRow, server: ServerRow): Promise<void> {
    const inflight = this.stopping.get(server.id);
    if (inflight) return inflight;
    const pending = this.pending.get(server.id);
    if (pending) {
      pending.abort.abort();
      return pending.done;
    }
    if (server.state === "stopped") return Promise.resolve();
    const p = this.doStop(user, server).finally(() => this.stopping.delete(server.id));
    this.stopping.set(server.id, p);
    return p;
  }

  private async doStop(user: UserRow, server: ServerRow): Promise<void> {
    const log = this.d.log.child({ user: user.name, server: server.name });
    this.d.store.updateServer(server.id, { state: "stopping" });
    this.d.table.delete(routeKey(user.name, server.name));
    if (server.spawner_state) {
      try {
        await this.d.spawner.stop(JSON.parse(server.spawner_state) as SpawnerState, this.d.config().spawner.stop_timeout_s * 1000);
      } catch (err) {
        log.error("stopping the server failed", { error: err });
      }
    }
    this.revokeServerCredentials(server);
    this.d.store.updateServer(server.id, { state: "stopped", url: null, spawner_state: null, started: null });
    log.info("server stopped");
  }

  /** Live memory and CPU of a running server, where the spawner can tell (the systemd one reads its cgroup). */
  async usage(server: ServerRow): Promise<{ memoryBytes?: number; cpuSeconds?: number } | undefined> {
    if (server.state !== "running" || !server.spawner_state || !this.d.spawner.usage) return undefined;
    return this.d.spawner.usage(JSON.parse(server.spawner_state) as SpawnerState).catch(() => undefined);
  }

  /** Past events of the current (or last) spawn and a subscription to the ones to come. */
  progress(serverId: number, onEvent: (ev: ProgressEvent) => void): { past: ProgressEvent[]; unsubscribe: () => void } {
    const server = this.d.store.getServerById(serverId);
    const past = server ? (this.d.store.spawnEvents(serverId, server.spawn_id) as ProgressEvent[]) : [];
    const key = `progress:${serverId}`;
    this.events.on(key, onEvent);
    return { past, unsubscribe: () => this.events.off(key, onEvent) };
  }

  /**
   * After a hub restart: servers that still run are routed again; those that died while the hub was away,
   * and starts the old process left half-done, are cleaned up and marked stopped.
   */
  async adoptAll(): Promise<void> {
    const cfg = this.d.config();
    for (const s of this.d.store.listActiveServers()) {
      const log = this.d.log.child({ user: s.user_name, server: s.name });
      const state = s.spawner_state ? (JSON.parse(s.spawner_state) as SpawnerState) : undefined;
      const alive = state && s.spawner_kind === this.d.spawner.kind ? await this.d.spawner.poll(state) : undefined;
      let notReady: string | undefined;
      if (s.state === "running" && alive?.running && s.url) {
        const ready = await waitReady(`${s.url}${serverPrefix(s.user_name, s.name)}`, {
          timeoutMs: 5000,
          uid: this.d.spawner.serverUid(state!),
          isAlive: () => this.d.spawner.poll(state!),
        });
        if (ready.ok) {
          this.d.table.set({ prefix: routeKey(s.user_name, s.name), target: s.url, serverId: s.id });
          log.info("adopted running server", { url: serverPrefix(s.user_name, s.name) });
          continue;
        }
        notReady = ready.reason;
      }
      if (state && alive?.running) await this.d.spawner.stop(state, cfg.spawner.stop_timeout_s * 1000).catch(() => undefined);
      const why = s.state === "pending" ? "the hub restarted while this server was starting" : alive && !alive.running ? alive.reason : `not reachable after hub restart${notReady ? `: ${notReady}` : ""}`;
      this.revokeServerCredentials(s);
      this.d.store.updateServer(s.id, { state: "stopped", url: null, spawner_state: null, started: null, failure: s.state === "pending" ? why : null });
      log.info("server not adopted, marked stopped", { reason: why });
    }
    if (this.d.spawner.reconcile) {
      const known = this.d.store
        .listActiveServers()
        .filter((s) => s.spawner_state && s.spawner_kind === this.d.spawner.kind)
        .map((s) => JSON.parse(s.spawner_state!) as SpawnerState);
      const stopped = await this.d.spawner.reconcile(known).catch((err: unknown) => {
        this.d.log.error("could not look for servers the store does not know", { error: err });
        return [];
      });
      for (const unit of stopped) this.d.log.warn("stopped a server the store did not know", { unit });
    }
  }

  /** Notice servers that die on their own, so their routes go and their pages say so. */
  startWatching(everyMs = 15_000): void {
    this.watchTimer = setInterval(() => void this.checkRunning(), everyMs);
    this.watchTimer.unref();
  }

  async checkRunning(): Promise<void> {
    for (const s of this.d.store.listActiveServers()) await this.checkServer(s.id);
  }

  /** If this running server's process is gone, stop tracking it: route removed, state stopped, reason kept. */
  async checkServer(serverId: number): Promise<void> {
    const s = this.d.store.getServerById(serverId);
    if (s?.state !== "running" || !s.spawner_state || this.stopping.has(s.id) || this.checking.has(s.id)) return;
    this.checking.add(s.id);
    try {
      const poll = await this.d.spawner.poll(JSON.parse(s.spawner_state) as SpawnerState);
      if (poll.running) return;
      const fresh = this.d.store.getServerById(s.id);
      if (fresh?.state !== "running" || fresh.spawn_id !== s.spawn_id) return;
      const user = this.d.store.getUserById(s.user_id)!;
      this.d.log.warn("server exited on its own", { user: user.name, server: s.name, reason: poll.reason });
      await this.stop(user, fresh);
      this.d.store.updateServer(s.id, { failure: `The server exited: ${poll.reason}` });
    } finally {
      this.checking.delete(s.id);
    }
  }

  /** Stop watching and wait for in-flight starts and stops; running servers are left running. */
  async close(): Promise<void> {
    if (this.watchTimer) clearInterval(this.watchTimer);
    for (const p of this.pending.values()) p.abort.abort();
    await Promise.allSettled([...this.pending.values()].map((p) => p.done));
    await Promise.allSettled([...this.stopping.values()]);
  }
}
