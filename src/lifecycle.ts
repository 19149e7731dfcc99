// The only writer of server state. Starts and stops user servers through a Spawner, keeps the routing
// table in step with the store, records spawn progress (stored per spawn and streamed to watchers), and
// re-adopts servers that outlived a previous hub process.
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "./config/schema.js";
import type { Logger } from "./log.js";
import { oauthClientId, routeKey, serverFilter, serverHostname, serverPrefix, serverUrl } from "./names.js";
import type { Profile } from "./config/schema.js";
import { resolveProfile } from "./profiles.js";
import { serverArgv } from "./server-env.js";
import { serverTokenScopes } from "./scopes.js";
import { sha256 } from "./secrets.js";
import type { ServerRow, Store, UserRow } from "./store/store.js";
import type { Route, RouteTable } from "../proxy/table.js";
import { freePort } from "./ports.js";
import { waitReady } from "./readiness.js";
import type { PollResult, Spawner, SpawnerState } from "../spawners/spawner.js";

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

export type ServerStatus = "stopped" | "pending" | "running" | "stopping";

export type StartRefusal = "options" | "profile" | "too_large" | "disabled" | "limit" | "running" | "stopping";

/** What `start` answers: under way (with the promise of its end), or refused before anything was recorded. */
export type StartResult = { ok: true; done: Promise<void> } | { ok: false; reason: StartRefusal; status: 400 | 403; message: string };

/** Stored as the spawner state while a launch is under way and its real state is not yet known. */
interface LaunchIntent {
  launching: string;
  port: number;
}

/** The spawner's state of a launched server; undefined with none or only the intent to launch. */
function launchedState(s: ServerRow): SpawnerState | undefined {
  if (!s.spawner_state) return undefined;
  const state = JSON.parse(s.spawner_state) as SpawnerState;
  return "launching" in state ? undefined : state;
}

function launchIntent(s: ServerRow): LaunchIntent | undefined {
  if (!s.spawner_state) return undefined;
  const state = JSON.parse(s.spawner_state) as Partial<LaunchIntent>;
  return typeof state.launching === "string" ? (state as LaunchIntent) : undefined;
}

/**
 * TEST ONLY: SLICEHUB_TEST_PAUSE_AFTER_LAUNCH_MS makes every start wait this long after the spawner has
 * launched the server and before its state is stored, so a test can kill the hub inside that gap. Never set
 * it in production.
 */
async function testPauseAfterLaunch(log: Logger): Promise<void> {
  const ms = Number(process.env.SLICEHUB_TEST_PAUSE_AFTER_LAUNCH_MS ?? "");
  if (!(ms > 0)) return;
  log.warn("test pause after launch", { ms });
  await sleep(Math.min(ms, 60_000));
}

/** Run `fn` over `items` with at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

type Check = { adopted: boolean; alive?: PollResult; notReady?: string };

/** How many servers a restarted hub checks or stops at once. */
const ADOPT_CONCURRENCY = 8;

export interface LifecycleDeps {
  store: Store;
  spawner: Spawner;
  table: RouteTable;
  config: () => Config;
  log: Logger;
  /** Spawn, stop and poll durations for /hub/metrics. */
  metrics?: LifecycleMetrics;
}

/** What the lifecycle reports for /hub/metrics (src/metrics.ts), with JupyterHub's status label values. */
export interface LifecycleMetrics {
  spawned(status: "success" | "failure" | "already-pending", seconds: number): void;
  stopped(status: "success" | "failure", seconds: number): void;
  polled(status: "running" | "stopped", seconds: number): void;
}

/** Seconds since a process.hrtime.bigint() reading. */
const secondsSince = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

export class Lifecycle {
  private readonly pending = new Map<number, Pending>();
  private readonly stopping = new Map<number, Promise<void>>();
  private readonly checking = new Set<number>();
  private readonly removing = new Set<number>();
  /** Servers a restarted hub is still checking ("pending") or cleaning up ("stopping"). */
  private readonly adopting = new Map<number, { as: "pending" | "stopping"; readonly done: Promise<void> }>();
  /** Launches wait for this: the restarted hub's search for servers the store does not know. */
  private launchGate: Promise<void> = Promise.resolve();
  private readonly events = new EventEmitter();
  private watchTimer: NodeJS.Timeout | undefined;

  constructor(private readonly d: LifecycleDeps) {
    this.events.setMaxListeners(0);
  }

  /**
   * The one answer to "what is this server doing": the in-memory starts, stops, removals and post-restart
   * checks of this hub process, and the stored row for everything else.
   */
  status(server: ServerRow): ServerStatus {
    if (this.pending.has(server.id)) return "pending";
    if (this.stopping.has(server.id) || this.removing.has(server.id)) return "stopping";
    const adopting = this.adopting.get(server.id);
    if (adopting) return adopting.as;
    return server.state;
  }

  /**
   * Start a server. On success `done` settles when it is ready or has failed; starting a server that is
   * already starting returns the same `done`. A start that cannot begin is refused with a reason, an HTTP
   * status and a message for the user, before anything is recorded.
   */
  start(user: UserRow, serverName: string, userOptions: object = {}): StartResult {
    const who = `${user.name}${serverName ? `/${serverName}` : ""}`;
    const refuse = (reason: StartRefusal, status: 400 | 403, message: string): StartResult => ({ ok: false, reason, status, message });
    const cfg = this.d.config();
    // Refuse a profile this user may not use now (before any record exists), rather than as a failed start;
    // record the one used by name. This is the only place a start's profile is resolved.
    const requested = (userOptions as { profile?: unknown }).profile;
    if (requested !== undefined && typeof requested !== "string") return refuse("options", 400, "user_options.profile must be a string");
    let profile: Profile | undefined;
    try {
      profile = resolveProfile(cfg, user.name, requested || undefined);
    } catch (err) {
      return refuse("profile", 403, `Cannot start ${who}: ${(err as Error).message}`);
    }
    if (profile) userOptions = { ...userOptions, profile: profile.name };
    if (JSON.stringify(userOptions).length > MAX_USER_OPTIONS) return refuse("too_large", 400, `user_options is too large (at most ${MAX_USER_OPTIONS} bytes as JSON)`);
    // The limit is checked and the record made with no await in between, so concurrent starts cannot both
    // pass it; the privileged helper counts the user's running units again.
    const limit = cfg.spawner.named_servers.limit;
    if (serverName && limit === 0) return refuse("disabled", 400, "Named servers are not enabled.");
    const before = this.d.store.getServer(user.id, serverName);
    if (serverName && !before) {
      const named = this.d.store.listServers(user.id).filter((s) => s.name !== "").length;
      if (named >= limit) {
        return refuse("limit", 400, `User ${user.name} already has the maximum of ${limit} named servers. One must be deleted before a new server can be created`);
      }
    }
    if (before) {
      const existing = this.pending.get(before.id);
      if (existing) {
        this.d.metrics?.spawned("already-pending", 0);
        return { ok: true, done: existing.done };
      }
      const adopting = this.adopting.get(before.id);
      // A server the restarted hub is still checking: it is either adopted (running) or stopped when that ends.
      if (adopting?.as === "pending") return { ok: true, done: adopting.done };
      const status = this.status(before);
      if (status === "running") return refuse("running", 400, `${who} is already running`);
      if (status === "stopping") return refuse("stopping", 400, `${who} is still stopping; try again in a moment`);
    }
    const server = before ?? this.d.store.ensureServer(user.id, serverName);

    const spawnId = server.spawn_id + 1;
    this.d.store.updateServer(server.id, {
      state: "pending",
      spawn_id: spawnId,
      failure: null,
      // The culler's "stopped after 2 h idle" is about the previous run.
      stop_reason: null,
      stopped_at: null,
      user_options: JSON.stringify(userOptions),
      url: null,
      spawner_state: null,
      started: null,
    });
    const abort = new AbortController();
    const done = this.runSpawn(user, this.d.store.getServerById(server.id)!, profile, abort.signal).finally(() => this.pending.delete(server.id));
    this.pending.set(server.id, { abort, done });
    return { ok: true, done };
  }

  private emit(server: ServerRow, ev: ProgressEvent): void {
    this.d.store.addSpawnEvent(server.id, server.spawn_id, ev);
    this.events.emit(`progress:${server.id}`, ev);
  }

  private async runSpawn(user: UserRow, server: ServerRow, profile: Profile | undefined, signal: AbortSignal): Promise<void> {
    const cfg = this.d.config();
    const log = this.d.log.child({ user: user.name, server: server.name });
    const prefix = serverPrefix(user.name, server.name);
    this.emit(server, { progress: 0, message: "Server requested" });
    const t0 = process.hrtime.bigint();
    let state: SpawnerState | undefined;
    try {
      const token = this.issueServerCredentials(user, server);
      const port = await freePort();
      const host = "127.0.0.1";
      const command = serverArgv(cfg, profile)[0];
      this.emit(server, { progress: 10, message: profile ? `Launching ${command} (profile ${profile.title})` : `Launching ${command}` });
      // Servers found by a restarted hub's reconcile are stopped before anything new is launched.
      await this.launchGate;
      if (signal.aborted) throw new LifecycleError(499, "Spawn cancelled");
      // The intent goes on record before the launch: a hub killed before the state below is stored leaves a
      // row that says a process may exist, and the spawner tags it with launchId so a later hub finds it.
      const launchId = `${server.id}:${server.spawn_id}`;
      const intent: LaunchIntent = { launching: launchId, port };
      this.d.store.updateServer(server.id, { spawner_kind: this.d.spawner.kind, spawner_state: JSON.stringify(intent), url: null });
      log.info("spawning server", { command, port, profile: profile?.name });
      state = await this.d.spawner.start({ user: user.name, serverName: server.name, profile, token, host, port, launchId }, (p) => {
        this.emit(server, { progress: Math.min(90, Math.max(1, p.progress)), message: p.message, html_message: p.html_message });
      });
      await testPauseAfterLaunch(log);
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
      this.d.table.set(this.route(user.name, server.name, url, server.id));
      // On its own origin in subdomain mode (as JupyterHub's progress event gives it), else the prefix.
      const where = serverUrl(cfg.subdomain_host, user.name, server.name);
      this.emit(server, {
        progress: 100,
        ready: true,
        message: `Server ready at ${where}`,
        html_message: `Server ready at <a href="${escapeHtml(where)}">${escapeHtml(where)}</a>`,
        url: where,
      });
      log.info("server ready", { url: where });
      this.d.metrics?.spawned("success", secondsSince(t0));
    } catch (err) {
      // Like JupyterHub: any start that did not end ready, a cancelled one included.
      this.d.metrics?.spawned("failure", secondsSince(t0));
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

  /**
   * The route of a server: in subdomain mode it answers only on the server's own host name (config
   * `subdomain_host`, which needs a restart to change, so deleting with the same host finds it).
   */
  private route(user: string, serverName: string, target: string, serverId: number): Route {
    const subdomainHost = this.d.config().subdomain_host;
    const prefix = routeKey(user, serverName);
    return subdomainHost ? { prefix, target, serverId, host: serverHostname(subdomainHost, user, serverName) } : { prefix, target, serverId };
  }

  /**
   * Whether the proxy sends `path` (a request path, no query) on `hostname` to this server now: the hub's
   * /hub/user/… answer redirects straight to a server it routes, and counts redirects only when it does not.
   */
  routesTo(server: ServerRow, path: string, hostname: string): boolean {
    return this.d.table.lookup(path, hostname)?.serverId === server.id;
  }

  private deleteRoute(user: string, serverName: string): void {
    const subdomainHost = this.d.config().subdomain_host;
    this.d.table.delete(routeKey(user, serverName), subdomainHost ? serverHostname(subdomainHost, user, serverName) : undefined);
  }

  /** The OAuth redirect URI the server's client is registered with: absolute on its own origin in subdomain mode. */
  private redirectUri(user: string, serverName: string): string {
    return serverUrl(this.d.config().subdomain_host, user, serverName, "oauth_callback");
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
        redirect_uri: this.redirectUri(user.name, server.name),
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
    const adopting = this.adopting.get(server.id);
    if (adopting) {
      // Checked first: adopted, it is then stopped like any running server; not adopted, it is stopped already.
      return adopting.done.then(() => {
        const fresh = this.d.store.getServerById(server.id);
        return fresh ? this.stop(user, fresh) : undefined;
      });
    }
    if (server.state === "stopped") return Promise.resolve();
    const p = this.doStop(user, server).finally(() => this.stopping.delete(server.id));
    this.stopping.set(server.id, p);
    return p;
  }

  private async doStop(user: UserRow, server: ServerRow): Promise<void> {
    const log = this.d.log.child({ user: user.name, server: server.name });
    this.d.store.updateServer(server.id, { state: "stopping" });
    this.deleteRoute(user.name, server.name);
    const state = launchedState(server);
    if (state) {
      const t0 = process.hrtime.bigint();
      try {
        await this.d.spawner.stop(state, this.d.config().spawner.stop_timeout_s * 1000);
        this.d.metrics?.stopped("success", secondsSince(t0));
      } catch (err) {
        this.d.metrics?.stopped("failure", secondsSince(t0));
        log.error("stopping the server failed", { error: err });
      }
    }
    this.revokeServerCredentials(server);
    this.d.store.updateServer(server.id, { state: "stopped", url: null, spawner_state: null, started: null });
    log.info("server stopped");
  }

  /** Stop a server and delete its record (a named server's `remove`, a deleted user). Resolves when it is gone. */
  async remove(user: UserRow, server: ServerRow): Promise<void> {
    if (this.removing.has(server.id)) return;
    this.removing.add(server.id);
    try {
      // While removing, status says "stopping" and starts are refused, so the stop is the last word.
      await this.stop(user, server);
      this.d.store.deleteServer(server.id);
    } finally {
      this.removing.delete(server.id);
    }
  }

  /** Live memory and CPU of a running server, where the spawner can tell (the systemd one reads its cgroup). */
  async usage(server: ServerRow): Promise<{ memoryBytes?: number; cpuSeconds?: number } | undefined> {
    const state = launchedState(server);
    if (server.state !== "running" || !state || !this.d.spawner.usage) return undefined;
    return this.d.spawner.usage(state).catch(() => undefined);
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
   * After a hub restart: servers that still run are routed again (each as soon as it answers); those that
   * died while the hub was away, and starts the old process left half-done, are cleaned up and marked
   * stopped. In two phases: everything it will look at is registered before this returns: `status` says
   * "pending" for a running server being checked and "stopping" for one to clean up. `checked` resolves
   * when every running server has been checked (in parallel, bounded; routed at once if it answers), which
   * is quick; `done` when the rest have been stopped as well (up to stop_timeout_s each, also in parallel),
   * and the spawner's reconcile has stopped what the store does not know.
   */
  adopt(): { checked: Promise<void>; done: Promise<void> } {
    const servers = this.d.store.listActiveServers();
    // Every launched server the store knows, taken before anything new can launch: whatever else the
    // spawner finds running (a launch the old process never recorded) is an orphan.
    const known = servers.filter((s) => s.spawner_kind === this.d.spawner.kind).flatMap((s): SpawnerState[] => {
      const state = launchedState(s);
      return state ? [state] : [];
    });
    const reconciled = this.reconcile(known);
    this.launchGate = reconciled;
    const jobs = servers.map((s) => {
      const running = s.state === "running" && !!launchedState(s);
      let release!: () => void;
      const done = new Promise<void>((r) => (release = r));
      const entry = { as: running ? ("pending" as const) : ("stopping" as const), done };
      this.adopting.set(s.id, entry);
      return { s, entry, release, check: undefined as Check | undefined };
    });
    const finish = (job: (typeof jobs)[number]) => {
      this.adopting.delete(job.s.id);
      job.release();
    };
    const failed = (job: (typeof jobs)[number], err: unknown) =>
      this.d.log.error("adopting a server failed", { user: job.s.user_name, server: job.s.name, error: err });
    const checked = eachLimited(jobs, ADOPT_CONCURRENCY, async (job) => {
      try {
        job.check = await this.checkAdopted(job.s);
        if (job.check.adopted) finish(job);
        else job.entry.as = "stopping";
      } catch (err) {
        failed(job, err);
        job.check = { adopted: false };
        job.entry.as = "stopping";
      }
    });
    const cleaned = checked.then(() =>
      eachLimited(
        jobs.filter((j) => !j.check?.adopted),
        ADOPT_CONCURRENCY,
        async (job) => {
          try {
            await this.cleanUpAdopted(job.s, job.check ?? { adopted: false }, reconciled);
          } catch (err) {
            failed(job, err);
          } finally {
            finish(job);
          }
        },
      ),
    );
    return { checked, done: Promise.all([cleaned, reconciled]).then(() => undefined) };
  }

  private async reconcile(known: SpawnerState[]): Promise<void> {
    const stopped = await this.d.spawner.reconcile(known, this.d.config().spawner.stop_timeout_s * 1000).catch((err: unknown) => {
      this.d.log.error("could not look for servers the store does not know", { error: err });
      return [];
    });
    for (const unit of stopped) this.d.log.warn("stopped a server the store did not know", { unit });
  }

  /** Phase one of adoption: route a server that still runs and answers. */
  private async checkAdopted(s: ServerRow & { user_name: string }): Promise<Check> {
    const log = this.d.log.child({ user: s.user_name, server: s.name });
    const state = launchedState(s);
    const alive = state && s.spawner_kind === this.d.spawner.kind ? await this.d.spawner.poll(state).catch(() => undefined) : undefined;
    let notReady: string | undefined;
    // A server started before subdomain_host was set, changed or removed was given other links and another
    // OAuth redirect; it cannot work under the new setting, so it is stopped rather than adopted.
    const client = this.d.store.getOAuthClient(oauthClientId(s.user_name, s.name));
    if (client && client.server_id === s.id && client.redirect_uri !== this.redirectUri(s.user_name, s.name)) {
      return { adopted: false, alive, notReady: "it was started with another subdomain_host setting" };
    }
    if (s.state === "running" && alive?.running && s.url) {
      const ready = await waitReady(`${s.url}${serverPrefix(s.user_name, s.name)}`, {
        timeoutMs: 5000,
        uid: this.d.spawner.serverUid(state!),
        isAlive: () => this.d.spawner.poll(state!),
      });
      if (ready.ok) {
        this.d.table.set(this.route(s.user_name, s.name, s.url, s.id));
        log.info("adopted running server", { url: serverPrefix(s.user_name, s.name) });
        return { adopted: true };
      }
      notReady = ready.reason;
    }
    return { adopted: false, alive, notReady };
  }

  /** Phase two: stop what was not adopted and mark it stopped. */
  private async cleanUpAdopted(s: ServerRow & { user_name: string }, check: Check, reconciled: Promise<void>): Promise<void> {
    const cfg = this.d.config();
    const log = this.d.log.child({ user: s.user_name, server: s.name });
    const state = launchedState(s);
    const { alive, notReady } = check;
    if (state && alive?.running) await this.d.spawner.stop(state, cfg.spawner.stop_timeout_s * 1000).catch(() => undefined);
    // Launched but never recorded: the spawner's reconcile finds the process by its tag and stops it.
    const intent = launchIntent(s);
    if (intent) await reconciled;
    const why = s.state === "pending" ? "the hub restarted while this server was starting" : alive && !alive.running ? alive.reason : `not reachable after hub restart${notReady ? `: ${notReady}` : ""}`;
    this.revokeServerCredentials(s);
    this.d.store.updateServer(s.id, { state: "stopped", url: null, spawner_state: null, started: null, failure: s.state === "pending" ? why : null });
    log.info("server not adopted, marked stopped", { reason: why, ...(intent ? { launch: intent.launching } : {}) });
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
    const state = s && launchedState(s);
    if (s?.state !== "running" || !state || this.stopping.has(s.id) || this.adopting.has(s.id) || this.checking.has(s.id)) return;
    this.checking.add(s.id);
    try {
      const t0 = process.hrtime.bigint();
      const poll = await this.d.spawner.poll(state);
      this.d.metrics?.polled(poll.running ? "running" : "stopped", secondsSince(t0));
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
    await Promise.allSettled([...this.adopting.values()].map((a) => a.done));
  }
}
