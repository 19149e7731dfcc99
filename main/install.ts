// `slicehub install`: the one-time setup of a host. Idempotent: it creates only what is missing and never
// overwrites an admin's config.
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { loadConfigFile } from "../src/config/load.js";
import type { Config } from "../src/config/schema.js";
import { cliPath, packageRoot } from "../src/package-root.js";
import { configureSshd, SSHD_DROPIN, sshdInstalled } from "../src/ssh/sshd.js";
import { prefixAccounts } from "../spawners/privileged/ssh.js";

const PACKAGE_ROOT = packageRoot();

export interface InstallOptions {
  configDir: string;
  unitDir: string;
  user: string;
  stateDir: string;
}

/** The config `slicehub install` writes: valid once the admin fills in the OIDC client. */
export const starterConfig = (o: InstallOptions): string => `{
  // slicehub's configuration. Reference: ${join(PACKAGE_ROOT, "docs/config.md")}
  // Edit, then check with: slicehub check-config ${join(o.configDir, "config.json")}
  // The running daemon picks up valid edits by itself (or on systemctl reload slicehub).
  "$schema": "../src/config.schema.json",
  "listen": "http://127.0.0.1:8000",
  // The address people use; a reverse proxy with TLS forwards it to listen. Uncomment and set it:
  // "public_url": "https://hub.example.org",
  "state_dir": "${o.stateDir}",
  "run_as": "${o.user}",
  // Login with Google (or any OpenID Connect issuer: set "issuer"). Register <public_url>/hub/oauth_callback
  // as the redirect URI with the provider, put the client secret in the file below (chmod 600), and fill in
  // client_id and who may log in. Until client_id is set, check-config and start refuse this file: there is
  // deliberately no login without a password on a server.
  "auth": {
    "kind": "oidc",
    // "client_id": "1234-abc.apps.googleusercontent.com",
    "client_secret_file": "${join(o.configDir, "oidc-client-secret")}",
    "allowed_users": [],
    "allowed_domains": [],
    "admin_users": []
  },
  "spawner": {
    "kind": "systemd",
    "cmd": ["jupyterhub-singleuser"],
    "hooks_dir": "${join(o.configDir, "roothooks.d")}",
    "unix_users": { "prefix": "jupyter-", "create": true },
    "profiles": [
      { "name": "small", "title": "2 GB, 1 CPU", "memory": "2G", "cpu": 1, "tasks": 512 }
    ],
    "named_servers": { "limit": 2 }
  }
}
`;

export async function install(o: InstallOptions, say: (line: string) => void): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("install needs root (it creates a system user and writes under /etc)");

  // 1. The unprivileged user the web process drops to.
  if (!existsAccount(o.user)) {
    execFileSync("useradd", ["--system", "--user-group", "--home-dir", o.stateDir, "--no-create-home", "--shell", "/usr/sbin/nologin", "--comment", "slicehub daemon", o.user]);
    say(`created system user ${o.user}`);
  } else say(`system user ${o.user} exists`);
  const gid = Number(execFileSync("id", ["-g", o.user]).toString().trim());

  // 2. Config: root-owned so the web process cannot change what the root helper does, group-readable so it
  //    can read (and reload) it. It will hold the OIDC client secret, hence no world access.
  mkdirSync(o.configDir, { recursive: true, mode: 0o755 });
  const configPath = join(o.configDir, "config.json");
  if (existsSync(configPath)) say(`${configPath} exists; left as it is`);
  else {
    writeFileSync(configPath, starterConfig(o), { mode: 0o640 });
    chownSync(configPath, 0, gid);
    say(`wrote ${configPath} (root:${o.user}, mode 0640)`);
  }
  const schemaPath = join(o.configDir, "config.schema.json");
  writeFileSync(schemaPath, execFileSync(process.execPath, [cliPath(), "schema"]), { mode: 0o644 });
  say(`wrote ${schemaPath}`);

  // 3. Root hooks: root-owned, not writable by anyone else (the helper refuses to run them otherwise).
  const hooks = join(o.configDir, "roothooks.d");
  if (!existsSync(hooks)) {
    mkdirSync(hooks, { mode: 0o755 });
    say(`created ${hooks} (empty; executables here run as root before each server starts)`);
  } else say(`${hooks} exists`);

  // 4. State directory, owned by the unprivileged user.
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  chownSync(o.stateDir, Number(execFileSync("id", ["-u", o.user]).toString().trim()), gid);
  say(`state directory ${o.stateDir} belongs to ${o.user}`);

  // 5. The service units: the web process as the service user from the start, the privileged helper as root.
  //    The service user must be able to read the package and node (a checkout in a root-only place cannot run).
  checkReadableBy(o.user);
  mkdirSync(o.unitDir, { recursive: true });
  const parsed = loadConfigFile(configPath);
  const fill = (name: string, extra = "") =>
    readFileSync(join(PACKAGE_ROOT, "deploy", name), "utf8")
      .replaceAll("@NODE@", process.execPath)
      .replaceAll("@CLI@", cliPath())
      .replaceAll("@DOCS@", join(PACKAGE_ROOT, "README.md"))
      .replaceAll("@USER@", o.user)
      .replace("@EXTRA@", extra)
      .replace("--config /etc/slicehub/config.json", `--config ${configPath}`);
  const units: [string, string][] = [
    ["slicehub-helper.service", fill("slicehub-helper.service")],
    ["slicehub.service", fill("slicehub.service", webUnitExtras({ configDir: o.configDir, stateDir: parsed.ok ? parsed.config.state_dir : o.stateDir }, parsed.ok ? parsed.config : undefined).join("\n"))],
  ];
  for (const [name, text] of units) {
    const unitPath = join(o.unitDir, name);
    writeFileSync(unitPath, text, { mode: 0o644 });
    say(`wrote ${unitPath}`);
  }
  if (!parsed.ok) say("the config is not valid yet: the web unit may bind ports below 1024 only after slicehub install runs again with a valid config");

  // 6. The host's OpenSSH, for the accounts slicehub manages.
  await installSshd(configPath, say);
  say("next: systemctl daemon-reload && systemctl enable --now slicehub   (an upgrade from one unit: systemctl daemon-reload && systemctl restart slicehub)");
}

const HOME_ROOTS = ["/home", "/root", "/run/user"];
const underHome = (p: string) => HOME_ROOTS.some((h) => p === h || p.startsWith(`${h}/`));
/** A path in a unit setting: quoted when it has spaces (systemd unquotes it). */
const unitPath = (p: string) => (/[\s"\\]/.test(p) ? JSON.stringify(p) : p);

/**
 * What slicehub.service needs beyond its template, from the config as it is now: CAP_NET_BIND_SERVICE only when
 * a listener's port is below 1024 (else no capability at all); the state directory writable when it is not
 * /var/lib/slicehub (the StateDirectory); and paths under /home or /root that ProtectHome=tmpfs would hide
 * (a checkout or a node in a home) bound back, read-only except the state directory.
 */
export function webUnitExtras(o: { configDir: string; stateDir: string; packageRoot?: string; node?: string }, cfg: Config | undefined): string[] {
  const lines: string[] = [];
  const low = cfg ? lowPorts(cfg) : [];
  if (low.length) lines.push(`# Ports below 1024 (${low.join(", ")}): run slicehub install again after changing listen.`, "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE");
  else lines.push("CapabilityBoundingSet=", "AmbientCapabilities=");
  const stateDir = resolve(o.stateDir);
  if (stateDir !== "/var/lib/slicehub") lines.push(`ReadWritePaths=${unitPath(stateDir)}`);
  // The web process also reads tls.acme_webroot itself (the redirect listener serves certbot's tokens from it).
  const webroot = (cfg as { tls?: { acme_webroot?: string } } | undefined)?.tls?.acme_webroot;
  const readOnly = [o.packageRoot ?? PACKAGE_ROOT, dirname(dirname(o.node ?? process.execPath)), resolve(o.configDir), ...(webroot ? [resolve(webroot)] : [])].filter(underHome);
  // ProtectHome=yes makes the homes inaccessible; tmpfs makes them empty, so that these can be bound back.
  if (readOnly.length || underHome(stateDir)) lines.push("ProtectHome=tmpfs");
  for (const p of new Set(readOnly)) lines.push(`BindReadOnlyPaths=${unitPath(p)}`);
  if (underHome(stateDir)) lines.push(`BindPaths=${unitPath(stateDir)}`);
  return lines;
}

/** The ports below 1024 the web process binds (listen, and the https helper's extra listeners). */
function lowPorts(cfg: Config): number[] {
  const tls = (cfg as { tls?: { redirect_http?: string; internal_listen?: string } }).tls;
  const ports: number[] = [];
  for (const url of [cfg.listen, tls?.redirect_http, tls?.internal_listen]) {
    if (!url) continue;
    const u = new URL(url);
    const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
    if (port < 1024) ports.push(port);
  }
  return [...new Set(ports)];
}

/** slicehub.service runs as the service user from its first instruction: it must read node and the package. */
function checkReadableBy(user: string): void {
  try {
    execFileSync("runuser", ["-u", user, "--", process.execPath, cliPath(), "--version"], { stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim().split("\n")[0] ?? "";
    throw new Error(`the service user ${user} cannot run ${cliPath()} with ${process.execPath} (${stderr || (err as Error).message}); put slicehub where ${user} can read it (e.g. /opt/slicehub) and run install again`);
  }
}

/**
 * sshd's drop-in for the managed accounts (src/ssh/sshd.ts), from the config as it is now: written whenever the
 * systemd spawner is configured and OpenSSH's server is installed, with SSH on or off. Off, it still matters: it
 * makes sure nobody logs in to a managed account with a key planted in ~/.ssh/authorized_keys. Run install again
 * after changing ssh.enabled, unix_users.prefix or run_as.
 */
async function installSshd(configPath: string, say: (line: string) => void): Promise<void> {
  const r = loadConfigFile(configPath);
  if (!r.ok) {
    say(`sshd: left as it is: ${configPath} is not valid yet (${r.errors[0]}); run slicehub install again once it is`);
    return;
  }
  const cfg = r.config;
  if (cfg.spawner.kind !== "systemd") {
    say("sshd: left as it is (the local spawner has no managed accounts)");
    return;
  }
  if (!sshdInstalled()) {
    say(`sshd: OpenSSH's server is not installed${cfg.ssh.enabled ? "; ssh.enabled needs it: apt install openssh-server, then run slicehub install again" : ""}`);
    return;
  }
  const unixUsers = cfg.spawner.unix_users;
  // Accounts with the prefix that slicehub did not make (and may not adopt) are not its to configure.
  const exclude = (await prefixAccounts(unixUsers)).filter((a) => a.hubUser === undefined).map((a) => a.name);
  if (exclude.length) say(`sshd: left out of ${SSHD_DROPIN} (accounts with the prefix that are not slicehub's): ${exclude.join(", ")}`);
  configureSshd(
    {
      prefix: unixUsers.prefix,
      serviceUser: cfg.run_as,
      enabled: cfg.ssh.enabled,
      exclude,
      node: process.execPath,
      entry: join(PACKAGE_ROOT, "dist/authorized-keys.js"),
      configPath,
    },
    say,
  );
}

function existsAccount(name: string): boolean {
  try {
    execFileSync("getent", ["passwd", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

