// `slicehub install`: the one-time setup of a host. Idempotent: it creates only what is missing and never
// overwrites an admin's config.
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cliPath, packageRoot } from "../src/package-root.js";

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

export function install(o: InstallOptions, say: (line: string) => void): void {
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
  say("next: systemctl daemon-reload && systemctl enable --now slicehub");
}

function existsAccount(name: string): boolean {
  try {
    execFileSync("getent", ["passwd", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

