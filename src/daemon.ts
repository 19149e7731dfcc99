// `slicehub start`: wires config, store, proxy, spawner and lifecycle together, serves, and shuts down
// without touching running user servers.
import { join } from "node:path";
import { SESSION_COOKIE_NAMES } from "../auth/session.js";
import { createForwarder } from "../proxy/forward.js";
import { RouteTable } from "../proxy/table.js";
import { LocalSpawner } from "../spawners/local.js";
import { createHubApp } from "./app.js";
import { embeddedDefaultConfig, loadConfigFile } from "./config/load.js";
import type { Config } from "./config/schema.js";
import { ConfigWatcher } from "./config/watch.js";
import { Lifecycle } from "./lifecycle.js";
import { log, setLogLevel } from "./log.js";
import { internalApiUrl } from "./server-env.js";
import { createServer } from "./server.js";
import { Store } from "./store/store.js";

export function databasePath(cfg: Config): string {
  return join(cfg.state_dir, "slicehub.sqlite");
}

/** Host and port of the listen URL, brackets removed from IPv6 literals. */
export function listenAddress(cfg: Config): { host: string; port: number } {
  const u = new URL(cfg.listen);
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port) };
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

  let store: Store;
  try {
    store = new Store(databasePath(config));
  } catch (err) {
    process.stderr.write(`slicehub: cannot open the database ${databasePath(config)}: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const table = new RouteTable();
  let lifecycle: Lifecycle | undefined;
  const forwarder = createForwarder({
    log,
    stripCookies: SESSION_COOKIE_NAMES,
    activityFlushMs: config.proxy.activity_flush_s * 1000,
    onActivity: (batch) => {
      store.transaction(() => {
        for (const [serverId, at] of batch) store.touchServer(serverId, at.getTime());
      });
    },
    onUpstreamDown: (route) => void lifecycle?.checkServer(route.serverId),
  });
  const spawner = new LocalSpawner({ logDir: join(config.state_dir, "logs"), log });
  lifecycle = new Lifecycle({ store, spawner, table, config: () => config, log, hubApiUrl: internalApiUrl(config) });
  await lifecycle.adoptAll();

  const app = createHubApp({ store, lifecycle, config: () => config, log });
  const server = createServer({ fetch: app.fetch, table, forwarder });
  const { host, port } = listenAddress(config);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch((err: NodeJS.ErrnoException) => {
    const hint = err.code === "EADDRINUSE" ? " (is another slicehub or JupyterHub running?)" : err.code === "EACCES" ? " (ports below 1024 need root)" : "";
    process.stderr.write(`slicehub: cannot listen on ${config.listen}: ${err.code ?? err.message}${hint}\n`);
    process.exit(1);
  });
  lifecycle.startWatching();
  const housekeeping = setInterval(() => {
    store.purgeExpired();
    store.pruneSpawnEvents();
  }, 3_600_000).unref();

  const watcher = configPath
    ? new ConfigWatcher(
        configPath,
        config,
        (next) => {
          config = next;
          setLogLevel(config.log_level);
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
    server.close();
    server.closeAllConnections();
    forwarder.close();
    void lifecycle.close().finally(() => {
      store.close();
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
