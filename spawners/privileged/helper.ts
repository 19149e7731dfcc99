// The privileged helper: a child of `slicehub start` that stays root while the web process drops to an
// unprivileged user. It answers a handful of typed requests (protocol.ts) and decides everything itself:
// it re-reads the config to resolve profiles and limits, checks the user against the store and the account
// rules, runs the root hooks, and builds every systemd-run argv. It never runs a command it was sent.
import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { dirname, join } from "node:path";
import { loadConfigFile } from "../../src/config/load.js";
import type { Config, SystemdSpawnerConfig } from "../../src/config/schema.js";
import { log, type Logger } from "../../src/log.js";
import { serverPrefix } from "../../src/names.js";
import { packageRoot } from "../../src/package-root.js";
import { resolveProfile } from "../../src/profiles.js";
import { databaseFile, hubUserExists } from "../../src/store/reader.js";
import { internalApiUrl, serverArgv, serverEnv } from "../../src/server-env.js";
import { ensureAccount, lookupAccount } from "../accounts.js";
import { runHooks } from "../hooks.js";
import { journalTail, listUnits, resetFailed, runUnit, showUnit, stopUnit } from "../systemd/systemctl.js";
import { namedUnitsOf, sliceSetPropertyArgv, systemdRunArgv, unitNames } from "../systemd/units.js";
import { HelperRequest, type HelperMessage, type SystemdState } from "./protocol.js";
import { SdNotify } from "../../src/sd-notify.js";
import { HELPER_SOCKET, HELPER_SOCKET_DIR, MAX_REQUEST_BYTES, readLines, writeLine } from "./transport.js";
import { applyAllSshLimits, applySshLimits, endSshSessions, existingAccount, logindAvailable, sshLogins, sshUsageOf } from "./ssh.js";
import { HelperTerminals, Refusal as TerminalRefusal } from "../../src/terminal/helper-side.js";
import { readTlsFiles } from "../../src/tls.js";

const RUN_DIR = "/run/slicehub";
/** Root-only home of the token files systemd loads as credentials; each is removed when its server stops. */
export const CREDENTIAL_DIR = `${RUN_DIR}/credentials`;
const WRAPPER_SOURCE = join(packageRoot(), "spawners/systemd/slicehub-server-wrapper");
/**
 * Where units run the wrapper from: a root-owned copy the server accounts can reach, wherever the package
 * was unpacked (a checkout in a private directory, say) and whoever owns the package files.
 */
export const WRAPPER = `${RUN_DIR}/bin/slicehub-server-wrapper`;

function installWrapper(): void {
  mkdirSync(RUN_DIR, { recursive: true });
  chmodSync(RUN_DIR, 0o711);
  mkdirSync(CREDENTIAL_DIR, { recursive: true, mode: 0o700 });
  chmodSync(CREDENTIAL_DIR, 0o700);
  mkdirSync(dirname(WRAPPER), { recursive: true, mode: 0o755 });
  copyFileSync(WRAPPER_SOURCE, WRAPPER);
  chmodSync(WRAPPER, 0o755);
}

class Refused extends Error {}

/** Where requests come from: the IPC channel of the `slicehub start` that forked us, or one socket connection. */
interface Conn {
  send: (m: HelperMessage) => void;
  /** The terminals this connection opened: they end with it (their web process is gone). */
  terminals: Set<string>;
}

/**
 * `listen` false: forked by `slicehub start` (started as root), requests over Node's IPC, exits with it.
 * `listen` true: slicehub-helper.service, requests over the Unix socket of transport.ts from the web unit.
 */
export async function runHelper(configPath: string, opts: { listen?: boolean } = {}): Promise<void> {
  const hlog = log.child({ component: "privileged-helper" });
  if (process.getuid?.() !== 0) throw new Error("the privileged helper must run as root");
  if (!opts.listen && !process.send) throw new Error("the privileged helper is started by `slicehub start` or by slicehub-helper.service (--listen), not by hand");
  // Its own unit is Type=notify: READY=1 once the socket listens. Read before anything runs a child.
  const notify = opts.listen ? new SdNotify(hlog) : undefined;

  // The last valid config: an invalid edit must not stop servers from starting with the previous one.
  let lastGood: Config | undefined;
  const config = (): Config => {
    const r = loadConfigFile(configPath);
    if (r.ok) lastGood = r.config;
    else hlog.warn("config invalid; the helper keeps using the last good one", { errors: r.errors });
    if (!lastGood) throw new Refused("no valid config");
    return lastGood;
  };
  const systemdConfig = (cfg: Config): SystemdSpawnerConfig => {
    if (cfg.spawner.kind !== "systemd") throw new Refused("spawner.kind is not systemd");
    return cfg.spawner;
  };
  config();
  installWrapper();
  const terminals = new HelperTerminals(hlog);
  {
    // SSH sessions' limits follow the config even for users who start no server after a change made while
    // slicehub was down.
    const cfg = config();
    if (cfg.ssh.enabled && cfg.spawner.kind === "systemd") {
      void applyAllSshLimits(cfg, cfg.spawner, hlog).catch((err: unknown) => hlog.warn("could not set the SSH limits", { error: err }));
      void logindAvailable().then((ok) => {
        if (!ok) hlog.warn("ssh.enabled, but logind does not answer: SSH sessions stay in sshd's own cgroup, without per-user limits (install libpam-systemd and dbus)");
      });
    }
  }
  void terminals.endLeftovers().catch((err: unknown) => hlog.warn("could not end the terminals of an earlier run", { error: err }));

  const userExists = (cfg: Config, name: string): boolean => hubUserExists(databaseFile(cfg.state_dir), name);

  const handle = async (req: HelperRequest, conn: Conn): Promise<unknown> => {
    const progress = (p: number, message: string) => conn.send({ type: "progress", id: req.id, progress: p, message });
    switch (req.op) {
      case "start": {
        const cfg = config();
        const sp = systemdConfig(cfg);
        if (!userExists(cfg, req.user)) throw new Refused(`no hub user ${req.user}`);
        if (req.server && sp.named_servers.limit === 0) throw new Refused("named servers are not enabled");
        const { unit, slice } = unitNames(req.user, req.server);
        if (req.server) {
          // The web process counts named servers too; this holds even if it is wrong or compromised.
          const live = await listUnits("slicehub-server-*.service", [], ["active", "activating", "deactivating", "reloading"]);
          const running = namedUnitsOf(req.user, live).filter((u) => u !== unit);
          if (running.length >= sp.named_servers.limit) {
            throw new Refused(`${req.user} already runs ${running.length} named servers, the limit (${sp.named_servers.limit})`);
          }
        }
        const profile = resolveProfile(cfg, req.user, req.profile || undefined);
        progress(15, "Preparing your Unix account");
        const account = await ensureAccount(req.user, sp.unix_users, hlog);
        if (cfg.ssh.enabled) await applySshLimits(cfg, req.user, account, hlog).catch((e: unknown) => hlog.warn("could not set the SSH limits", { user: req.user, error: e }));
        const current = await showUnit(unit, ["ActiveState", "LoadState"]);
        if (current.ActiveState === "active" || current.ActiveState === "activating") {
          throw new Refused(`${unit} is already running`);
        }
        // The last run of this server may have left its unit loaded as failed; free the name.
        if (current.LoadState === "loaded") await resetFailed(unit);
        progress(20, "Running root hooks");
        const hooks = await runHooks(
          sp.hooks_dir,
          { user: req.user, unixUser: account.name, uid: account.uid, gid: account.gid, home: account.home, serverName: req.server, profile: profile?.name ?? "" },
          {
            timeoutMs: sp.hook_timeout_s * 1000,
            log: hlog,
            onLine: (l) => progress(25, `[${l.hook}] ${l.line}`),
            onNote: (n) => progress(25, n.level === "warn" ? `Warning: ${n.message}` : n.message),
          },
        );
        if (hooks.warnings.length) progress(30, `Root hooks finished with ${hooks.warnings.length} warning(s); starting the server anyway`);
        const credentialPath = join(CREDENTIAL_DIR, `${unit}.token`);
        writeFileSync(credentialPath, req.token, { mode: 0o600 });
        const host = "127.0.0.1";
        const env = serverEnv(cfg, {
          user: req.user,
          server: req.server,
          serviceUrl: `http://${host}:${req.port}${serverPrefix(req.user, req.server)}`,
          hubApiUrl: internalApiUrl(cfg),
          profile,
          account,
          hubEnv: process.env,
        });
        const argv = systemdRunArgv({
          unit,
          slice,
          uid: account.uid,
          gid: account.gid,
          home: account.home,
          argv: serverArgv(cfg, profile),
          env,
          credentialPath,
          wrapperPath: WRAPPER,
          limits: { memory: profile?.memory, cpu: profile?.cpu, tasks: profile?.tasks },
          hardening: sp.hardening,
          properties: sp.properties,
          description: `slicehub server ${req.user}${req.server ? `/${req.server}` : ""}`,
        });
        progress(35, `Starting ${unit} as ${account.name}`);
        try {
          await runUnit(argv);
        } catch (err) {
          rmSync(credentialPath, { force: true });
          throw err;
        }
        const sliceArgv = sliceSetPropertyArgv(slice, sp.slice_limits);
        if (sliceArgv) await runUnit(sliceArgv).catch((e: unknown) => hlog.warn("could not set the user slice's limits", { slice, error: e }));
        const { InvocationID: invocation } = await showUnit(unit, ["InvocationID"]);
        hlog.info("started server unit", { user: req.user, server: req.server, unit, account: account.name, profile: profile?.name });
        const state: SystemdState = { unit, slice, host, port: req.port, uid: account.uid, invocation };
        return state;
      }
      case "stop": {
        await stopUnit(req.unit, req.timeoutMs);
        rmSync(join(CREDENTIAL_DIR, `${req.unit}.token`), { force: true });
        hlog.info("stopped server unit", { unit: req.unit });
        return null;
      }
      case "poll": {
        const s = await showUnit(req.unit, ["ActiveState", "SubState", "Result", "LoadState"]);
        const running = s.ActiveState === "active" || s.ActiveState === "activating" || s.ActiveState === "reloading";
        return running ? { running: true } : { running: false, reason: describeEnd(s) };
      }
      case "detail": {
        const s = await showUnit(req.unit, ["ActiveState", "Result", "ExecMainCode", "ExecMainStatus", "LoadState", "InvocationID", "MemoryMax"]);
        const tail = await journalTail(req.unit, 20, [], s.InvocationID).catch(() => "");
        return [describeEnd(s), tail].filter(Boolean).join("\n");
      }
      case "usage": {
        const s = await showUnit(req.unit, ["MemoryCurrent", "CPUUsageNSec"]);
        const num = (v: string | undefined) => (v && /^\d+$/.test(v) ? Number(v) : undefined);
        const cpu = num(s.CPUUsageNSec);
        return { memoryBytes: num(s.MemoryCurrent), cpuSeconds: cpu === undefined ? undefined : cpu / 1e9 };
      }
      case "list":
        return await listUnits("slicehub-server-*.service");
      case "terminal-open": {
        const cfg = config();
        const sp = systemdConfig(cfg);
        if (!userExists(cfg, req.user)) throw new Refused(`no hub user ${req.user}`);
        try {
          const opened = await terminals.open(cfg, sp, req);
          conn.terminals.add(opened.id);
          return opened;
        } catch (err) {
          throw err instanceof TerminalRefusal ? new Refused(err.message) : err;
        }
      }
      case "terminal-resize":
        terminals.resize(req.terminal, req.cols, req.rows);
        return null;
      case "terminal-close":
        conn.terminals.delete(req.terminal);
        await terminals.close(req.terminal);
        return null;
      case "terminal-list":
        return terminals.list();
      case "ssh-end": {
        // Also under an older config or with SSH now off: ending sessions is always safe, and wanted.
        const account = await existingAccount(req.user, systemdConfig(config()).unix_users);
        if (!account) return { sessions: 0 };
        const sessions = await endSshSessions(account.uid, hlog);
        if (sessions) hlog.info("ended SSH sessions", { user: req.user, account: account.name, sessions });
        return { sessions };
      }
      case "ssh-sessions":
        return await sshUsageOf(req.users, systemdConfig(config()).unix_users);
      case "ssh-prepare": {
        // A user who adds a key before ever starting a server needs an account to log in to.
        const cfg = config();
        const sp = systemdConfig(cfg);
        if (!cfg.ssh.enabled) throw new Refused("ssh.enabled is false");
        if (!userExists(cfg, req.user)) throw new Refused(`no hub user ${req.user}`);
        const account = await ensureAccount(req.user, sp.unix_users, hlog);
        await applySshLimits(cfg, req.user, account, hlog);
        return { account: account.name };
      }
      case "ssh-logins":
        return await sshLogins(req.cursor);
      case "oidc-secret": {
        // Only a file can be root's alone: an inline secret needs a 0600 config the web unit could not read at
        // all, and a systemd credential on the web unit is readable by it. No path comes from the message.
        const cfg = config();
        if (cfg.auth.kind !== "oidc") throw new Refused("auth.kind is not oidc");
        if (!cfg.auth.client_secret_file) throw new Refused("auth.client_secret_file is not set");
        const secret = readFileSync(cfg.auth.client_secret_file, "utf8").replace(/\r?\n$/, "");
        if (!secret.trim()) throw new Refused(`${cfg.auth.client_secret_file} is empty`);
        return secret;
      }
      case "tls-read": {
        // Only the files the config names (never a path from the message): the key may be root's alone.
        const cfg = config();
        if (!cfg.tls.cert_file || !cfg.tls.key_file) throw new Refused("tls.cert_file and tls.key_file are not set");
        return readTlsFiles(cfg.tls);
      }
      case "ssh-limits": {
        const cfg = config();
        return cfg.ssh.enabled ? { changed: await applyAllSshLimits(cfg, systemdConfig(cfg), hlog) } : { changed: 0 };
      }
    }
  };

  const dispatch = (raw: unknown, conn: Conn) => {
    const parsed = HelperRequest.safeParse(raw);
    if (!parsed.success) {
      const rid = typeof raw === "object" && raw !== null && typeof (raw as { id?: unknown }).id === "number" ? (raw as { id: number }).id : -1;
      hlog.warn("refused a malformed request", { issues: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) });
      conn.send({ type: "result", id: rid, ok: false, error: "malformed request" });
      return;
    }
    const req = parsed.data;
    handle(req, conn).then(
      (result) => conn.send({ type: "result", id: req.id, ok: true, result }),
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        if (err instanceof Refused) hlog.warn("refused a request", { op: req.op, reason: message });
        else hlog.error("request failed", { op: req.op, error: message });
        conn.send({ type: "result", id: req.id, ok: false, error: message });
      },
    );
  };

  if (notify) {
    await serveSocket(config(), hlog, notify, dispatch, (conn) => Promise.all([...conn.terminals].map((id) => terminals.close(id))).then(() => undefined), () => terminals.closeAll());
    return;
  }
  const conn: Conn = { send: (m) => process.send!(m), terminals: new Set() };
  process.on("message", (raw: unknown) => dispatch(raw, conn));
  // The web process is our only client: when it goes, so do we (servers keep running in their units).
  // Terminals cannot outlive the helper (their ptys are its own): their units are stopped, within 5 s.
  process.on("disconnect", () => {
    setTimeout(() => process.exit(0), 5_000).unref();
    void terminals.closeAll().finally(() => process.exit(0));
  });
  conn.send({ type: "ready", pid: process.pid });
}

/**
 * slicehub-helper.service: listen on HELPER_SOCKET (root:<run_as group> 0660 in a 0750 directory of the same
 * owners, so only root and the service user connect). Each connection is one web process; the terminals it
 * opened end when it goes. The helper itself lives on until systemd stops it; user servers never depend on it.
 */
async function serveSocket(cfg: Config, hlog: Logger, notify: SdNotify, dispatch: (raw: unknown, conn: Conn) => void, onClose: (conn: Conn) => Promise<void>, onStop: () => Promise<void>): Promise<void> {
  const runAs = await lookupAccount(cfg.run_as);
  if (!runAs || runAs.uid === 0) throw new Error(`no Unix account ${cfg.run_as} (run_as) to open the helper's socket to; "slicehub install" creates it`);
  mkdirSync(HELPER_SOCKET_DIR, { recursive: true, mode: 0o750 });
  if (!lstatSync(HELPER_SOCKET_DIR).isDirectory()) throw new Error(`${HELPER_SOCKET_DIR} is not a directory`);
  chownSync(HELPER_SOCKET_DIR, 0, runAs.gid);
  chmodSync(HELPER_SOCKET_DIR, 0o750);
  rmSync(HELPER_SOCKET, { force: true });
  const conns = new Set<net.Socket>();
  const status = () => `listening on ${HELPER_SOCKET}, ${conns.size} web process${conns.size === 1 ? "" : "es"} connected`;
  let stopping = false;
  const server = net.createServer((sock) => {
    conns.add(sock);
    const conn: Conn = { send: (m) => writeLine(sock, m), terminals: new Set() };
    hlog.info("the web process connected", { connections: conns.size });
    void notify.status(status());
    sock.on("error", (err) => hlog.warn("helper connection failed", { error: err.message }));
    readLines(
      sock,
      MAX_REQUEST_BYTES,
      (line) => (line.ok ? dispatch(line.value, conn) : dispatch(undefined, conn)),
      () => {
        hlog.warn("refused a request over the size limit; closing the connection", { limit: MAX_REQUEST_BYTES });
        sock.destroy();
      },
    );
    sock.once("close", () => {
      conns.delete(sock);
      hlog.info("the web process disconnected", { connections: conns.size, terminals: conn.terminals.size });
      if (!stopping) void notify.status(status());
      void onClose(conn).catch((err: unknown) => hlog.warn("could not end a connection's terminals", { error: err }));
    });
    conn.send({ type: "ready", pid: process.pid });
  });
  // Only the web process connects (and a restarted one while the old one goes); a few more are plenty.
  server.maxConnections = 8;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(HELPER_SOCKET, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chownSync(HELPER_SOCKET, 0, runAs.gid);
  chmodSync(HELPER_SOCKET, 0o660);
  hlog.info("privileged helper listening", { socket: HELPER_SOCKET, group: runAs.gid, pid: process.pid });
  notify.startWatchdog(status);
  void notify.ready(status());
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    hlog.info("privileged helper stopping; user servers keep running", { signal });
    void notify.stopping("stopping; user servers keep running");
    server.close();
    for (const s of conns) s.destroy();
    setTimeout(() => process.exit(0), 5_000).unref();
    void onStop().finally(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/** Why a unit is not running, in words for the user. */
function describeEnd(s: Record<string, string>): string {
  if (s.LoadState === "not-found") return "its unit is gone";
  if (s.ActiveState === "active" || s.ActiveState === "activating") return "it is still running";
  // ExecMainCode: 1 = exited, 2 = killed, 3 = dumped core (siginfo codes).
  const status = s.ExecMainCode === "1" ? `it exited with status ${s.ExecMainStatus}` : s.ExecMainCode === "2" || s.ExecMainCode === "3" ? `it was killed by signal ${s.ExecMainStatus}` : "";
  if (s.Result === "oom-kill") return `it ran out of memory (limit ${s.MemoryMax}) and the kernel killed it`;
  if (s.Result === "signal" && s.ExecMainStatus === "9") {
    // cgroup v1 hosts report a memory-limit kill only like this.
    return `it was killed by SIGKILL${s.MemoryMax && s.MemoryMax !== "infinity" ? ` (likely out of memory: its limit is ${s.MemoryMax} bytes)` : ""}`;
  }
  if (status) return status;
  if (s.Result && s.Result !== "success") return `its unit ended with result ${s.Result}`;
  return `its unit is ${s.ActiveState ?? "unknown"}`;
}
