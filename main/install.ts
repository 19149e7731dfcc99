// `slicehub install`: the one-time setup of a host. Idempotent: it creates only what is missing and never
// overwrites an admin's config.
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfigFile } from "../src/config/load.js";
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

  // 5. The service unit.
  mkdirSync(o.unitDir, { recursive: true });
  const unit = readFileSync(join(PACKAGE_ROOT, "deploy/slicehub.service"), "utf8")
    .replaceAll("@NODE@", process.execPath)
    .replaceAll("@CLI@", cliPath())
    .replaceAll("@DOCS@", join(PACKAGE_ROOT, "README.md"))
    .replace("--config /etc/slicehub/config.json", `--config ${configPath}`);
  const unitPath = join(o.unitDir, "slicehub.service");
  writeFileSync(unitPath, unit, { mode: 0o644 });
  say(`wrote ${unitPath}`);

  // 6. The host's OpenSSH, for the accounts slicehub manages.
  await installSshd(configPath, say);
  say("next: systemctl daemon-reload && systemctl enable --now slicehub");
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

