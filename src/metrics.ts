// /hub/metrics (Prometheus text format, through prom-client) and /hub/health (for load balancers).
//
// Names follow JupyterHub's jupyterhub/metrics.py where it has one (same type, labels, buckets and preset label
// values, so its dashboards work); slicehub's own figures have the slicehub_ prefix. prom-client is bundled, but
// its module code first runs at the first scrape (a dynamic import): a hub nobody scrapes pays only for parsing it.
// What happens before that (spawns, hub requests) is kept, at most MAX_QUEUED observations, and counted at the
// first scrape. Gauges (users, servers, cgroup usage, proxy counts) are read when scraped: nothing runs between.
//
// Who may scrape: a token (or session) with the scope read:metrics, which admins hold (JupyterHub 5's scope and
// its default authenticate_prometheus=True); or, without a token, a client in metrics.allowed_addresses (the TCP
// peer, or the client a trusted proxy names).
import { Hono, type Context } from "hono";
import type { Hub, HubEnv } from "./hub/context.js";
import type { Logger } from "./log.js";
import type { LifecycleMetrics } from "./lifecycle.js";
import { hasScope } from "./scopes.js";
import type { Store } from "./store/store.js";
import type { UsageSnapshot } from "./cgroups.js";
import { forwardedView, trustCheck, type TrustCheck } from "./forwarded.js";

/** The status label of jupyterhub_server_spawn_duration_seconds (JupyterHub's ServerSpawnStatus). */
export type SpawnStatus = "success" | "failure" | "already-pending" | "throttled" | "too-many-users";

/** Requests the proxy forwarded to users' servers, by what the client got: "2xx" … "5xx" (websockets: "1xx" = upgraded). */
export interface ProxyCounts {
  http: Record<string, number>;
  websocket: Record<string, number>;
}

/** What the scrape reads; attached by the daemon once they exist. */
export interface MetricsSources {
  store: Store;
  log: Logger;
  proxyCounts?: () => ProxyCounts;
  /** Users' slices and servers' units (the systemd spawner); absent under the local spawner. */
  cgroupUsage?: () => UsageSnapshot | undefined;
}

// jupyterhub/metrics.py's buckets for spawns; Python prometheus_client's defaults for the others.
const SPAWN_BUCKETS = [0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 180, 300, 600];
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

interface HistogramSpec {
  name: string;
  help: string;
  labels: string[];
  buckets: number[];
  /** Label values that exist from the start, as JupyterHub creates them (a dashboard sees 0, not nothing). */
  preset?: string[];
}

const HISTOGRAMS = {
  spawn: {
    name: "jupyterhub_server_spawn_duration_seconds",
    help: "time taken for server spawning operation",
    labels: ["status"],
    buckets: SPAWN_BUCKETS,
    preset: ["success", "failure", "already-pending", "throttled", "too-many-users"],
  },
  stop: {
    name: "jupyterhub_server_stop_seconds",
    help: "time taken for server stopping operation",
    labels: ["status"],
    buckets: DEFAULT_BUCKETS,
    preset: ["success", "failure"],
  },
  poll: {
    name: "jupyterhub_server_poll_duration_seconds",
    help: "time taken to poll if server is running",
    labels: ["status"],
    buckets: DEFAULT_BUCKETS,
    preset: ["running", "stopped"],
  },
  startup: { name: "jupyterhub_hub_startup_duration_seconds", help: "Time taken for Hub to start", labels: [], buckets: DEFAULT_BUCKETS },
  initSpawners: {
    name: "jupyterhub_init_spawners_duration_seconds",
    help: "Time taken for spawners to initialize (slicehub: checking and routing the servers a restarted hub adopts)",
    labels: [],
    buckets: DEFAULT_BUCKETS,
  },
  request: {
    name: "jupyterhub_request_duration_seconds",
    help: "request duration for all HTTP requests (the hub's own; handler is the route pattern)",
    labels: ["method", "handler", "code"],
    buckets: DEFAULT_BUCKETS,
  },
} satisfies Record<string, HistogramSpec>;

type HistogramKey = keyof typeof HISTOGRAMS;
type Observation = [HistogramKey, Record<string, string>, number];

/** Observations kept before prom-client is loaded (the first scrape). */
export const MAX_QUEUED = 10_000;

// prom-client's module, typed without importing it at start.
type PromClient = typeof import("prom-client");

interface Loaded {
  registry: InstanceType<PromClient["Registry"]>;
  histograms: Record<HistogramKey, InstanceType<PromClient["Histogram"]>>;
}

/** What the built-in culler ended (src/cull.ts): servers for being idle or old, users for being inactive. */
export type CullKind = "server:idle" | "server:max_age" | "user:inactive";

export class HubMetrics implements LifecycleMetrics {
  private readonly culls = new Map<CullKind, number>([
    ["server:idle", 0],
    ["server:max_age", 0],
    ["user:inactive", 0],
  ]);
  private queue: Observation[] = [];
  private dropped = 0;
  private loaded: Loaded | undefined;
  private loading: Promise<Loaded> | undefined;
  private sources: MetricsSources | undefined;

  attach(sources: MetricsSources): void {
    this.sources = sources;
  }

  spawned(status: SpawnStatus, seconds: number): void {
    this.observe("spawn", { status }, seconds);
  }

  stopped(status: "success" | "failure", seconds: number): void {
    this.observe("stop", { status }, seconds);
  }

  polled(status: "running" | "stopped", seconds: number): void {
    this.observe("poll", { status }, seconds);
  }

  startup(seconds: number): void {
    this.observe("startup", {}, seconds);
  }

  initSpawners(seconds: number): void {
    this.observe("initSpawners", {}, seconds);
  }

  culled(kind: CullKind): void {
    this.culls.set(kind, (this.culls.get(kind) ?? 0) + 1);
  }

  /** A hub request (not proxied traffic): method, route pattern, status. */
  request(method: string, handler: string, code: number, seconds: number): void {
    this.observe("request", { method, handler, code: String(code) }, seconds);
  }

  private observe(key: HistogramKey, labels: Record<string, string>, seconds: number): void {
    if (this.loaded) this.loaded.histograms[key].observe(labels, seconds);
    else if (this.queue.length < MAX_QUEUED) this.queue.push([key, labels, seconds]);
    else this.dropped++;
  }

  /** The exposition text and its content type; loads prom-client on the first call. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const { registry } = await this.load();
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  private load(): Promise<Loaded> {
    this.loading ??= import("prom-client").then((prom) => {
      const loaded = this.build(prom);
      for (const [key, labels, value] of this.queue) loaded.histograms[key].observe(labels, value);
      if (this.dropped) this.sources?.log.warn("metrics: observations before the first scrape were dropped", { dropped: this.dropped, kept: this.queue.length });
      this.queue = [];
      this.loaded = loaded;
      return loaded;
    });
    return this.loading;
  }

  private build(prom: PromClient): Loaded {
    const registry = new prom.Registry();
    prom.collectDefaultMetrics({ register: registry });
    const histograms = {} as Loaded["histograms"];
    for (const [key, spec] of Object.entries(HISTOGRAMS) as [HistogramKey, HistogramSpec][]) {
      const h = new prom.Histogram({ name: spec.name, help: spec.help, labelNames: spec.labels, buckets: spec.buckets, registers: [registry] });
      for (const value of spec.preset ?? []) h.zero({ [spec.labels[0]!]: value });
      histograms[key] = h;
    }
    const src = () => this.sources;
    // Counted when scraped: cheap queries on a small table (and only while someone scrapes).
    let stmts: { running: { get(): unknown }; users: { get(): unknown }; active: { get(...a: number[]): unknown } } | undefined;
    const queries = () =>
      (stmts ??= {
        running: src()!.store.db.prepare("SELECT COUNT(*) AS n FROM servers WHERE state = 'running'"),
        users: src()!.store.db.prepare("SELECT COUNT(*) AS n FROM users"),
        active: src()!.store.db.prepare(
          "SELECT COUNT(*) AS n FROM users u WHERE u.last_activity >= ? OR EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.last_activity >= ?)",
        ),
      });
    const count = (row: unknown) => (row as { n: number }).n;
    new prom.Gauge({
      name: "jupyterhub_running_servers",
      help: "the number of user servers currently running",
      registers: [registry],
      collect() {
        if (src()) this.set(count(queries().running.get()));
      },
    });
    new prom.Gauge({
      name: "jupyterhub_total_users",
      help: "total number of users",
      registers: [registry],
      collect() {
        if (src()) this.set(count(queries().users.get()));
      },
    });
    const PERIODS: [string, number][] = [
      ["24h", 86_400_000],
      ["7d", 7 * 86_400_000],
      ["30d", 30 * 86_400_000],
    ];
    new prom.Gauge({
      name: "jupyterhub_active_users",
      help: "number of users who were active in the given time period",
      labelNames: ["period"],
      registers: [registry],
      collect() {
        if (!src()) return;
        const now = Date.now();
        for (const [period, ms] of PERIODS) this.set({ period }, count(queries().active.get(now - ms, now - ms)));
      },
    });
    new prom.Counter({
      name: "slicehub_proxy_requests_total",
      help: "requests the proxy forwarded to users' servers, by protocol and the status class the client got (websocket 1xx: upgraded)",
      labelNames: ["protocol", "code"],
      registers: [registry],
      collect() {
        const counts = src()?.proxyCounts?.();
        if (!counts) return;
        this.reset();
        for (const protocol of ["http", "websocket"] as const) {
          for (const [code, n] of Object.entries(counts[protocol])) this.inc({ protocol, code }, n);
        }
      },
    });
    const culls = this.culls;
    new prom.Counter({
      name: "slicehub_culled_total",
      help: "servers and users the built-in culler ended (config cull), by kind and reason",
      labelNames: ["kind", "reason"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [key, n] of culls) {
          const [kind, reason] = key.split(":") as [string, string];
          this.inc({ kind, reason }, n);
        }
      },
    });
    // Per user and per server, from the cgroups (systemd spawner). One read of the tree serves the four metrics.
    let snapshot: { at: number; usage: UsageSnapshot | undefined } | undefined;
    const usage = () => {
      const now = Date.now();
      if (!snapshot || now - snapshot.at > 1000) snapshot = { at: now, usage: src()?.cgroupUsage?.() };
      return snapshot.usage;
    };
    type Row = { user: string; server?: string; memoryBytes?: number; cpuSeconds?: number };
    const perCgroup = (rows: (u: UsageSnapshot) => Row[], labels: (r: Row) => Record<string, string>, field: "memoryBytes" | "cpuSeconds") =>
      function (this: { reset(): void; set?(l: Record<string, string>, v: number): void; inc?(l: Record<string, string>, v: number): void }) {
        this.reset();
        const u = usage();
        if (!u) return;
        for (const r of rows(u)) {
          const v = r[field];
          if (v === undefined) continue;
          if (this.set) this.set(labels(r), v);
          else this.inc!(labels(r), v);
        }
      };
    const userLabels = (r: Row) => ({ user: r.user });
    const serverLabels = (r: Row) => ({ user: r.user, server: r.server ?? "" });
    new prom.Gauge({
      name: "slicehub_user_memory_bytes",
      help: "memory the user's slice uses now (all their servers, terminals and SSH sessions), from its cgroup",
      labelNames: ["user"],
      registers: [registry],
      collect: perCgroup((u) => u.users, userLabels, "memoryBytes"),
    });
    new prom.Counter({
      name: "slicehub_user_cpu_seconds_total",
      help: "CPU time the user's slice has used, from its cgroup",
      labelNames: ["user"],
      registers: [registry],
      collect: perCgroup((u) => u.users, userLabels, "cpuSeconds"),
    });
    new prom.Gauge({
      name: "slicehub_server_memory_bytes",
      help: 'memory the server\'s unit uses now, from its cgroup (server="" is the default server)',
      labelNames: ["user", "server"],
      registers: [registry],
      collect: perCgroup((u) => u.servers, serverLabels, "memoryBytes"),
    });
    new prom.Counter({
      name: "slicehub_server_cpu_seconds_total",
      help: "CPU time the server's unit has used, from its cgroup",
      labelNames: ["user", "server"],
      registers: [registry],
      collect: perCgroup((u) => u.servers, serverLabels, "cpuSeconds"),
    });
    return { registry, histograms };
  }
}

// ------------------------------------------------------------------------------------------------ access

const lists = new WeakMap<readonly string[], TrustCheck>();

/**
 * Is this peer address in the list? The same matcher as trusted_proxies' (src/forwarded.ts): an IPv4-mapped IPv6
 * peer (::ffff:10.0.0.1) counts as its IPv4 address. One per allowed_addresses array (it changes on a reload).
 */
export function addressAllowed(allowed: readonly string[], peer: string | undefined): boolean {
  if (!peer) return false;
  let check = lists.get(allowed);
  if (!check) lists.set(allowed, (check = trustCheck(allowed)));
  return check(peer);
}

/**
 * The address a scrape comes from, for allowed_addresses: the TCP peer; behind a reverse proxy listed in
 * trusted_proxies, the client it names (src/forwarded.ts). A request with X-Forwarded-For or Forwarded from a peer
 * that is not a trusted proxy gets no address at all: a proxy nobody declared would make everyone behind it look
 * like its own (often loopback) address. Undefined in-process (app.request in tests).
 */
function scraperAddress(c: Context<HubEnv>, trustedProxies: readonly string[]): string | undefined {
  const incoming = (c.env as Partial<HubEnv["Bindings"]> | undefined)?.incoming;
  if (!incoming?.socket) return undefined;
  const view = forwardedView(incoming, trustCheck(trustedProxies));
  const forwarded = c.req.header("x-forwarded-for") !== undefined || c.req.header("forwarded") !== undefined;
  if (forwarded && !view.viaTrustedProxy) return undefined;
  return view.client || undefined;
}

// ------------------------------------------------------------------------------------------------ routes

/** GET /hub/metrics and GET|HEAD /hub/health, mounted at /hub. */
export function metricsRoutes(hub: Hub): Hono<HubEnv> {
  const app = new Hono<HubEnv>();

  app.get("/metrics", async (c) => {
    const config = hub.config();
    const cfg = config.metrics;
    if (!cfg.enabled || !hub.metrics) return c.notFound();
    const who = c.get("who");
    const from = scraperAddress(c, config.trusted_proxies);
    const byAddress = !who && !c.get("tokenRejected") && addressAllowed(cfg.allowed_addresses, from);
    if (!byAddress && !(who && hasScope(who.scopes, "read:metrics"))) {
      hub.log.debug("metrics refused", { user: who?.user.name, client: from, token_rejected: c.get("tokenRejected") });
      return c.json({ status: 403, message: "Access to metrics requires scope 'read:metrics'" }, 403);
    }
    const { contentType, body } = await hub.metrics.scrape();
    return c.body(body, 200, { "Content-Type": contentType, "Cache-Control": "no-store" });
  });

  // Load balancers: no auth, nothing but whether the hub can serve. JupyterHub answers 200 (empty) to GET and
  // HEAD of /hub/health and /hub/api/health.
  let check: { get(): unknown } | undefined;
  let lastProblems = ""; // logged when it changes, not at every probe
  const health = (c: Context<HubEnv>) => {
    const problems: string[] = [];
    try {
      check ??= hub.store.db.prepare("SELECT COUNT(*) FROM sqlite_master");
      check.get();
    } catch {
      problems.push("database");
    }
    if (hub.helperAlive && !hub.helperAlive()) problems.push("helper");
    c.header("Cache-Control", "no-store");
    const now = problems.join(",");
    if (now !== lastProblems) {
      if (now) hub.log.warn("health check failing", { problems });
      else hub.log.info("health check passing again");
      lastProblems = now;
    }
    if (problems.length) return c.json({ status: "unhealthy", problems }, 503);
    return c.json({ status: "ok" });
  };
  app.get("/health", health);
  app.get("/api/health", health);
  return app;
}
