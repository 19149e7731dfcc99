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
import { log, setLogLevel } from "../src/log.js";
import { dropPrivileges, prepareStateDir } from "../src/privileges.js";
import { internalApiUrl, listenAddress } from "../src/server-env.js";
import { sha256 } from "../src/secrets.js";
import { Store } from "../src/store/store.js";


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

  // Read while still root: the secret file or systemd credential may be readable by root only.
  let oidcClientSecret: string | undefined;
  try {
    if (config.auth.kind === "oidc") oidcClientSecret = resolveClientSecret(config.auth, configPath);
  } catch (err) {
    fail((err as Error).message);
  }

  // The systemd spawner needs root for the helper, and the web process must then give root up.
  let runAs: { name: string; uid: number; gid: number } | undefined;
  if (config.spawner.kind === "systemd") {
    if (process.getuid?.() !== 0) fail("the systemd spawner starts servers as other users, so slicehub must be started as root (it drops to run_as itself)");
    if (!configPath) fail("the systemd spawner needs a config file (--config)");
    runAs = await lookupAccount(config.run_as);
    if (!runAs) fail(`no Unix account ${config.run_as} (run_as) to drop to; "slicehub install" creates it`);
    if (runAs.uid === 0) fail(`run_as names ${config.run_as}, which is root; that would defeat the point`);
    prepareStateDir(config.state_dir, runAs.uid, runAs.gid);
  }

  const table = new RouteTable();
  let store: Store | undefined;
  let lifecycle: Lifecycle | undefined;
  const msOf = (s: number) => Math.round(s * 1000);
  // Its sinks (store, lifecycle, hub application) are attached once they exist; until then the hub answers 503.
  const proxy = createProxy({
    log,
    table,
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
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    const hint = err.code === "EADDRINUSE" ? " (is another slicehub or JupyterHub running?)" : err.code === "EACCES" ? " (ports below 1024 need root)" : "";
    fail(`cannot listen on ${config.listen}: ${err.code ?? err.message}${hint}`);
  });

  let spawner: Spawner;
  let helper: HelperClient | undefined;
  if (runAs) {
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

  try {
    store = new Store(databasePath(config));
  } catch (err) {
    fail(`cannot open the database ${databasePath(config)}: ${(err as Error).message}`);
  }
  const db = store;
  lifecycle = new Lifecycle({ store: db, spawner, table, config: () => config, log });
  proxy.attach(proxySinks(db, lifecycle));
  // Adoption in two phases: live servers are checked (in parallel, quickly) and routed before the hub
  // answers, so a request for one never sees it missing; half-started and dead ones are stopped in the
  // background (status "stopping" until done), never delaying the first answer.
  const adoptionStarted = process.hrtime.bigint();
  const adoption = lifecycle.adopt();
  void adoption.done.then(
    () => log.info("adoption finished", { adopted: table.size, ms: Math.round(Number(process.hrtime.bigint() - adoptionStarted) / 1e6) }),
    (err: unknown) => log.error("adoption failed", { error: err }),
  );
  await adoption.checked;
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
  };
  const app = createHubApp(hubContext, { oidcClientSecret });
  proxy.attach({ hub: app.fetch, hubUpgrade: terminalUpgrade(hubContext, terminals) });
  lifecycle.startWatching();
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
        },
        log,
      )
    : undefined;
  watcher?.start();

  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  log.info("slicehub is listening", { url: config.listen, public_url: config.public_url ?? config.listen, startup_ms: Math.round(ms), adopted: table.size });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down; user servers keep running", { signal });
    watcher?.stop();
    clearInterval(housekeeping);
    clearInterval(sshLogins);
    void proxy.close();
    void Promise.allSettled([lc.close(), terminals.close()]).finally(() => {
      db.close();
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

function fail(message: string): never {
  process.stderr.write(`slicehub: ${message}\n`);
  process.exit(1);
}
