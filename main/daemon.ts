// `slicehub start`: wires config, store, proxy, spawner and lifecycle together, serves, and shuts down
// without touching running user servers.
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { resolveClientSecret } from "../auth/secret.js";
import { SESSION_COOKIE_NAMES } from "../src/hub/session.js";
import { createProxy, type ProxySinks } from "../proxy/proxy.js";
import { RouteTable } from "../proxy/table.js";
import { lookupAccount } from "../spawners/accounts.js";
import { LocalSpawner } from "../spawners/local.js";
import { HelperClient } from "../spawners/privileged/client.js";
import { HELPER_SOCKET } from "../spawners/privileged/transport.js";
import type { Spawner } from "../spawners/spawner.js";
import { SystemdSpawner } from "../spawners/systemd/spawner.js";
import { accessUnder, enforceAccess } from "../auth/access.js";
import { HelperTerminalBackend, LocalTerminalBackend } from "../src/terminal/backend.js";
import { TerminalManager } from "../src/terminal/manager.js";
import { terminalUpgrade } from "../src/terminal/upgrade.js";
import { SshSessions } from "../src/ssh/sessions.js";
import { recordSshLogins } from "../src/hub/ssh-keys.js";
import { createHubApp } from "./app.js";
import { embeddedDefaultConfig, loadConfigFile } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { ConfigWatcher } from "../src/config/watch.js";
import { Lifecycle } from "../src/lifecycle.js";
import { Culler, onCull } from "../src/cull.js";
import { log, setLogLevel } from "../src/log.js";
import { dropPrivileges, prepareStateDir } from "../src/privileges.js";
import { internalApiUrl, listenAddress } from "../src/server-env.js";
import { sha256 } from "../src/secrets.js";
import { Store } from "../src/store/store.js";
import { installTestHang, SdNotify } from "../src/sd-notify.js";
import { HubMetrics } from "../src/metrics.js";
import { ownLayout, readUsage } from "../src/cgroups.js";
import { cachedTrustCheck } from "../src/forwarded.js";
import { getRequestListener } from "@hono/node-server";
import { checkPair, createInternalApiServer, createRedirectServer, hstsHeader, readTlsFiles, TlsReloader, tlsServerOptions, tlsSource, type TlsPair } from "../src/tls.js";
import { lockPath, tryLockState } from "../src/store/state-lock.js";
import { reportedJupyterhubVersion } from "../src/singleuser-version.js";


export function databasePath(cfg: Config): string {
  return join(cfg.state_dir, "slicehub.sqlite");
}

export function loadConfigOrExit(configPath: string | undefined): Config {
  if (!configPath) return embeddedDefaultConfig(process.cwd());
  const r = loadConfigFile(configPath);
  if (r.ok) return r.config;
  process.stderr.write(`slicehub: the config has ${r.errors.length} problem${r.errors.length === 1 ? "" : "s"}:\n`);
  for (const e of r.errors) process.stderr.write(`  ${e}\n`);
  process.exit(1);
}

export async function runDaemon(configPath: string | undefined): Promise<void> {
  const started = process.hrtime.bigint();
  let config = loadConfigOrExit(configPath);
  setLogLevel(config.log_level);
  log.info("starting slicehub", { config: configPath ?? "(embedded default)", state_dir: config.state_dir, pid: process.pid });
  // systemd (Type=notify): READY=1 once the hub answers, STATUS= lines, the watchdog from this event loop. Read
  // first, so the forked helper does not inherit NOTIFY_SOCKET. No-ops when not under systemd.
  const notify = new SdNotify(log);
  installTestHang(log);
  let statusLine = () => "starting";
  notify.startWatchdog(() => statusLine());

  // Read while still root: the secret file or systemd credential may be readable by root only.
  let oidcClientSecret: string | undefined;
  let secretError: Error | undefined;
  try {
    if (config.auth.kind === "oidc") oidcClientSecret = resolveClientSecret(config.auth, configPath);
  } catch (err) {
    secretError = err as Error;
  }
  // The TLS key too (certbot's privkey.pem is root's alone). Not readable and not root: the web process was
  // started unprivileged, and the privileged helper reads it below (op tls-read).
  const httpsListen = new URL(config.listen).protocol === "https:";
  let tlsPair: TlsPair | undefined;
  if (httpsListen) {
    try {
      tlsPair = readTlsFiles(config.tls);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== "EACCES" && code !== "EPERM") || process.getuid?.() === 0) fail(`cannot read the TLS certificate or key: ${(err as Error).message}`);
    }
    if (tlsPair) checkTlsOrFail(tlsPair);
  }

  // The systemd spawner needs a root helper, and the web process must not be root. Two ways (see
  // spawners/privileged/client.ts): started as root, it forks the helper and drops to run_as ("fork"); started
  // as run_as (slicehub.service from `slicehub install`), it connects to slicehub-helper.service ("unit").
  let runAs: { name: string; uid: number; gid: number } | undefined;
  let helperMode: "fork" | "unit" | undefined;
  if (config.spawner.kind === "systemd") {
    if (!configPath) fail("the systemd spawner needs a config file (--config)");
    runAs = await lookupAccount(config.run_as);
    if (!runAs) fail(`no Unix account ${config.run_as} (run_as) to drop to; "slicehub install" creates it`);
    if (runAs.uid === 0) fail(`run_as names ${config.run_as}, which is root; that would defeat the point`);
    const uid = process.getuid?.();
    if (uid === 0) {
      helperMode = "fork";
      prepareStateDir(config.state_dir, runAs.uid, runAs.gid);
    } else if (uid === runAs.uid) helperMode = "unit";
    else fail(`the systemd spawner starts servers as other users: start slicehub as root (it forks the privileged helper and drops to ${config.run_as}) or as ${config.run_as} with slicehub-helper.service running ("slicehub install" writes both units)`);
  }
  // In unit mode a root-only client_secret_file is read by the helper instead, once it is connected.
  if (secretError && helperMode !== "unit") fail(secretError.message);
  // One process at a time on a state directory: held until exit, checked by `slicehub restore` (main/backup.ts).
  const stateLock = tryLockState(config.state_dir) ?? fail(`another slicehub runs on ${config.state_dir} (it holds ${lockPath(config.state_dir)}), or a slicehub restore is replacing its database`);

  const table = new RouteTable();
  const metrics = new HubMetrics();
  let store: Store | undefined;
  let lifecycle: Lifecycle | undefined;
  const msOf = (s: number) => Math.round(s * 1000);
  // Its sinks (store, lifecycle, hub application) are attached once they exist; until then the hub answers 503.
  const proxy = createProxy({
    log,
    table,
    tls: httpsListen ? tlsServerOptions(config.tls, tlsPair) : undefined,
    trusted: cachedTrustCheck(() => config.trusted_proxies),
    hsts: () => hstsHeader(config),
    stripCookies: SESSION_COOKIE_NAMES,
    activityFlushMs: config.proxy.activity_flush_s * 1000,
    limits: {
      headersTimeoutMs: msOf(config.http.headers_timeout_s),
      requestTimeoutMs: msOf(config.http.request_timeout_s),
      keepAliveTimeoutMs: msOf(config.http.keep_alive_timeout_s),
      idleTimeoutMs: msOf(config.http.idle_timeout_s),
      maxConnections: config.http.max_connections,
    },
  });
  const { server } = proxy;

  // Bind while still root (ports below 1024), before anything else can fail half-way.
  const { host, port } = listenAddress(config);
  await bindOrFail(server, host, port, config.listen);
  // tls.redirect_http: a plain-HTTP listener that only redirects to the https one.
  let redirectServer: ReturnType<typeof createRedirectServer> | undefined;
  if (httpsListen && config.tls.redirect_http) {
    redirectServer = createRedirectServer(() => config);
    const r = listenAddress({ ...config, listen: config.tls.redirect_http });
    await bindOrFail(redirectServer, r.host, r.port, config.tls.redirect_http);
  }
  // With https, servers' hub API calls come over plain HTTP on loopback (tls.internal_listen).
  const internalApi = httpsListen ? createInternalApiServer() : undefined;
  if (internalApi) {
    const i = listenAddress({ ...config, listen: config.tls.internal_listen });
    await bindOrFail(internalApi.server, i.host, i.port, config.tls.internal_listen);
  }

  let spawner: Spawner;
  let helper: HelperClient | undefined;
  if (runAs && helperMode === "unit") {
    helper = await HelperClient.connect(HELPER_SOCKET, log, () => {
      // As in fork mode: exit, and systemd starts us again once slicehub-helper.service is back. Servers keep running.
      log.error("the privileged helper exited; exiting so the service manager restarts slicehub", { socket: HELPER_SOCKET });
      process.exit(70);
    }).catch((err: unknown) => fail((err as Error).message));
    log.info("connected to the privileged helper", { socket: HELPER_SOCKET, helper_pid: helper.pid, user: runAs.name, uid: runAs.uid });
    if (secretError) {
      const why = secretError.message;
      oidcClientSecret = await helper.request<string>({ op: "oidc-secret" }).catch((err: unknown) => fail(`${why}; the privileged helper could not read it either: ${(err as Error).message}`));
    }
    spawner = new SystemdSpawner(helper);
  } else if (runAs) {
    helper = await HelperClient.start(resolve(process.argv[1]!), configPath!, log, (code, signal) => {
      // Without the helper nothing can start or stop; exit so systemd restarts us. Servers keep running.
      log.error("the privileged helper exited; exiting so the service manager restarts slicehub", { code, signal });
      process.exit(70);
    });
    // better-sqlite3 loads its native addon on first use; load it while the package is surely readable
    // (a checkout in a root-only directory is not, for the unprivileged user).
    new Database(":memory:").close();
    dropPrivileges(runAs);
    log.info("dropped privileges", { user: runAs.name, uid: runAs.uid, helper_pid: helper.pid });
    spawner = new SystemdSpawner(helper);
  } else {
    // The tag marks this hub's servers (one per state directory), so a restarted hub finds unrecorded ones.
    spawner = new LocalSpawner({
      logDir: join(config.state_dir, "logs"),
      log,
      tag: sha256(resolve(config.state_dir)).slice(0, 16),
      servers: { config: () => config, hubApiUrl: internalApiUrl(config) },
    });
  }

  // The certificate, checked again whenever its files change (certbot renewals), without a restart.
  let tlsReloader: TlsReloader | undefined;
  if (httpsListen) {
    const h = helper;
    const source = tlsSource(() => config, h ? () => h.request<TlsPair>({ op: "tls-read" }) : undefined, log);
    if (!tlsPair) {
      tlsPair = await source().catch((err: unknown) => fail(`cannot read the TLS certificate or key${h ? ", also through the privileged helper" : " (not readable by this user; start as root, or make them readable)"}: ${(err as Error).message}`));
      checkTlsOrFail(tlsPair);
      (server as import("node:https").Server).setSecureContext(tlsServerOptions(config.tls, tlsPair));
    }
    tlsReloader = new TlsReloader({ server: server as import("node:https").Server, source, log, config: () => config, current: tlsPair });
    log.info("serving TLS", { ...tlsReloader.info, min_version: config.tls.min_version, redirect_http: config.tls.redirect_http });
    tlsReloader.start();
  }

  try {
    store = new Store(databasePath(config));
  } catch (err) {
    fail(`cannot open the database ${databasePath(config)}: ${(err as Error).message}`);
  }
  const db = store;
  lifecycle = new Lifecycle({ store: db, spawner, table, config: () => config, log, metrics });
  proxy.attach(proxySinks(db, lifecycle));
  // Adoption in two phases: live servers are checked (in parallel, quickly) and routed before the hub
  // answers, so a request for one never sees it missing; half-started and dead ones are stopped in the
  // background (status "stopping" until done), never delaying the first answer.
  const adoptionStarted = process.hrtime.bigint();
  const toAdopt = db.listActiveServers().length;
  void notify.status(`adopting ${toAdopt} server${toAdopt === 1 ? "" : "s"}`);
  const adoption = lifecycle.adopt();
  void adoption.done.then(
    () => log.info("adoption finished", { adopted: table.size, ms: Math.round(Number(process.hrtime.bigint() - adoptionStarted) / 1e6) }),
    (err: unknown) => log.error("adoption failed", { error: err }),
  );
  await adoption.checked;
  metrics.initSpawners(Number(process.hrtime.bigint() - adoptionStarted) / 1e9);
  // The config may have changed while the hub was down.
  // SSH sessions: ended with access (a key removed, a user blocked, deleted or no longer allowed); no-ops without the helper.
  const ssh = new SshSessions(helper, log);
  const endSsh = (users: string[]) => ssh.endAll(users);
  await enforceAccess(config, db, lifecycle, log, endSsh);
  const lc = lifecycle;
  // Browser terminals: shells in the helper (systemd spawner) or here (local spawner); a user who loses access
  // loses them too (the manager checks every second with the same rule as enforceAccess).
  const terminals = new TerminalManager({
    store: db,
    config: () => config,
    log,
    backend: helper ? new HelperTerminalBackend(helper) : new LocalTerminalBackend(() => config),
    allowed: (user) => accessUnder(config, db, user).allowed,
  });
  const hubContext = {
    store: db,
    lifecycle,
    config: () => config,
    log,
    terminals,
    ssh,
    sshEnd: (user: string) => ssh.end(user).then(() => undefined),
    sshPrepare: (user: string) => (config.ssh.enabled ? ssh.prepare(user) : Promise.resolve()),
    metrics,
    helperAlive: helper ? processAlive(helper) : undefined,
  };
  // Per-user and per-server memory and CPU from the cgroups: only the systemd spawner has slices.
  const cgroups = helper ? ownLayout() : undefined;
  onCull((e) => metrics.culled(e.kind === "server" ? (e.reason === "idle" ? "server:idle" : "server:max_age") : "user:inactive"));
  metrics.attach({
    store: db,
    log,
    proxyCounts: proxy.requestCounts,
    cgroupUsage: cgroups ? () => readUsage(cgroups, (name) => db.getUser(name) !== undefined) : undefined,
  });
  const app = createHubApp(hubContext, { oidcClientSecret });
  proxy.attach({ hub: app.fetch, hubUpgrade: terminalUpgrade(hubContext, terminals) });
  internalApi?.attach(getRequestListener(app.fetch as never, { overrideGlobalObjects: false }));
  lifecycle.startWatching();
  // Built-in idle culling (config cull, off by default; read at every check). The proxy's activity is flushed
  // first, so a request just before a check counts.
  const culler = new Culler({
    store: db,
    lifecycle,
    config: () => config,
    log,
    flushActivity: () => proxy.flushActivity(),
    userBusy: async (user) => terminals.of(user).length > 0 || (await ssh.usage([user]))[user] !== undefined,
    userDeleted: async (user) => {
      await ssh.end(user);
      await terminals.endUser(user, "Your hub account was deleted for inactivity.");
    },
  });
  culler.start();
  // Keys' last use, from sshd's journal lines (the helper reads them as root).
  const sshLogins = setInterval(() => {
    if (config.ssh.enabled) void ssh.pollLogins((entries) => recordSshLogins(hubContext, entries)).catch((err: unknown) => log.warn("could not read sshd's logins", { error: err }));
  }, 10_000).unref();
  const housekeeping = setInterval(() => {
    db.purgeExpired({ idleMs: config.session.idle_timeout_s * 1000, maxAgeMs: config.session.max_age_s * 1000 });
    db.pruneSpawnEvents();
  }, 3_600_000).unref();

  const watcher = configPath
    ? new ConfigWatcher(
        configPath,
        config,
        (next, prev) => {
          config = next;
          setLogLevel(config.log_level);
          terminals.sweep(); // terminals of users this config refuses end now, not at the next tick
          if (next.ssh.enabled) void ssh.applyLimits().catch((err: unknown) => log.error("applying SSH limits failed", { error: err }));
          // SSH turned off: nobody's key works any more (the keys command prints none), and open sessions end too.
          else if (prev.ssh.enabled) void endSsh(db.allUsers().map((u) => u.name)).catch((err: unknown) => log.error("ending SSH sessions failed", { error: err }));
          void enforceAccess(next, db, lc, log, endSsh).catch((err: unknown) => log.error("applying access changes failed", { error: err }));
          culler.reconfigure();
          void notify.status(`${statusLine()}; reloaded config`);
        },
        log,
      )
    : undefined;
  watcher?.start();
  // `systemctl reload` sends SIGHUP; the watcher has applied (or refused) the file by the time this runs.
  if (watcher) process.on("SIGHUP", () => void notify.reloaded(`${statusLine()}; reloaded config`));

  // The version servers are told (config, else the installed singleuser's, read from its package files: about a
  // millisecond, never a Python start here; see src/singleuser-version.ts), logged once so a mismatch is visible.
  const jupyterhubVersion = reportedJupyterhubVersion(config);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  metrics.startup(ms / 1000);
  log.info("slicehub is listening", { url: config.listen, public_url: config.public_url ?? config.listen, startup_ms: Math.round(ms), adopted: table.size, jupyterhub_version: jupyterhubVersion });
  if (!httpsListen && config.public_url?.startsWith("https:") && config.trusted_proxies.length === 0) {
    log.info("public_url is https but listen is plain http, and trusted_proxies is empty: if a TLS-terminating proxy forwards to slicehub, list its address in trusted_proxies so that logs and users' servers see the real client address and scheme (docs/https.md)");
  }
  statusLine = () => `serving on ${config.public_url ?? config.listen}, ${table.size} server${table.size === 1 ? "" : "s"} running`;
  void notify.ready(statusLine());

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down; user servers keep running", { signal });
    void notify.stopping("stopping; user servers keep running");
    watcher?.stop();
    tlsReloader?.stop();
    redirectServer?.close();
    redirectServer?.closeAllConnections();
    internalApi?.server.close();
    internalApi?.server.closeAllConnections();
    clearInterval(housekeeping);
    clearInterval(sshLogins);
    void proxy.close();
    void Promise.allSettled([culler.close(), lc.close(), terminals.close()]).finally(() => {
      db.close();
      stateLock.release();
      helper?.stop();
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

/** The proxy's activity goes to the store (the culler reads it), a refused upstream connection to the lifecycle. */
function proxySinks(db: Store, lifecycle: Lifecycle): Pick<ProxySinks, "onActivity" | "onUpstreamDown"> {
  return {
    onActivity: (batch) => {
      db.transaction(() => {
        for (const [serverId, at] of batch) db.touchServer(serverId, at.getTime());
      });
    },
    onUpstreamDown: (route) => void lifecycle.checkServer(route.serverId),
  };
}

/** Binds while still root (ports below 1024); a clear message and exit 1 if it cannot. */
async function bindOrFail(server: import("node:net").Server, host: string, port: number, url: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    const hint = err.code === "EADDRINUSE" ? " (is another slicehub or JupyterHub running?)" : err.code === "EACCES" ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE: slicehub install grants it to slicehub.service when listen's port is below 1024, so run it again after changing listen)" : "";
    fail(`cannot listen on ${url}: ${err.code ?? err.message}${hint}`);
  });
}

/** A pair that cannot work stops the start; an expired certificate is served (what else) and logged as an error. */
function checkTlsOrFail(pair: TlsPair): void {
  try {
    checkPair(pair);
  } catch (err) {
    const message = (err as Error).message;
    if (message.startsWith("the certificate expired")) log.error("the TLS certificate has expired; serving it anyway until it is renewed", { error: message });
    else fail(`the TLS certificate or key in tls.cert_file / tls.key_file does not work: ${message}`);
  }
}

/** For /hub/health: is the helper's process still there? One signal-0 probe; EPERM (it is root's) means it is. */
function processAlive(helper: HelperClient): () => boolean {
  return () => {
    const pid = helper.pid;
    if (!pid) return true;
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "EPERM";
    }
  };
}

function fail(message: string): never {
  process.stderr.write(`slicehub: ${message}\n`);
  process.exit(1);
}
