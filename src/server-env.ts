// The single-user server's command and environment (docs/jupyterhub-compat.md lists every variable). Pure, so
// the web process (local spawner) and the privileged helper (systemd spawner, which rebuilds it from its own
// reading of the config) produce exactly the same thing.
import type { Config, Profile } from "./config/schema.js";
import { adminMaySet } from "./jupyterhub-env.js";
import { oauthClientId, serverFilter, serverPrefix, serverUrl } from "./names.js";

/** Variables a server may inherit from the hub's own environment; everything else stays behind. */
const INHERITED_ENV = /^(PATH|PYTHONPATH|LANG|LANGUAGE|LC_[A-Z]+|TZ|CONDA_.*|VIRTUAL_ENV|JUPYTERHUB_SINGLEUSER_APP|JUPYTERHUB_SINGLEUSER_EXTENSION)$/;

export interface ServerEnvInput {
  user: string;
  server: string;
  /** Where the server binds: http://127.0.0.1:PORT/user/NAME/ */
  serviceUrl: string;
  /** The hub API as the server reaches it. */
  hubApiUrl: string;
  profile?: Profile;
  /** The account the server runs as (USER, HOME, SHELL). */
  account: { name: string; home: string; shell: string };
  /** The hub's own environment, for the few variables passed through. */
  hubEnv: NodeJS.ProcessEnv;
}

export function serverArgv(cfg: Config, profile: Profile | undefined): string[] {
  return [...(profile?.cmd ?? cfg.spawner.cmd), ...(profile?.args ?? cfg.spawner.args)];
}

/** Everything but the API token, which each spawner delivers its own way. */
export function serverEnv(cfg: Config, i: ServerEnvInput): Record<string, string> {
  const prefix = serverPrefix(i.user, i.server);
  const filter = serverFilter(i.user, i.server);
  const accessScopes = JSON.stringify([`access:servers!server=${filter}`, `access:servers!user=${i.user}`]);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(i.hubEnv)) if (v !== undefined && INHERITED_ENV.test(k)) env[k] = v;
  // The config refuses the hub's own JUPYTERHUB_* names (src/jupyterhub-env.ts); checked again here, and the
  // hub's values below are assigned last anyway.
  for (const [k, v] of Object.entries({ ...cfg.spawner.env, ...i.profile?.env })) {
    if (adminMaySet(k)) env[k] = v;
  }
  Object.assign(env, {
    USER: i.account.name,
    HOME: i.account.home,
    SHELL: i.account.shell,
    JUPYTERHUB_CLIENT_ID: oauthClientId(i.user, i.server),
    JUPYTERHUB_HOST: "",
    JUPYTERHUB_OAUTH_CALLBACK_URL: `${prefix}oauth_callback`,
    JUPYTERHUB_OAUTH_SCOPES: accessScopes,
    JUPYTERHUB_OAUTH_ACCESS_SCOPES: accessScopes,
    JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES: "[]",
    JUPYTERHUB_USER: i.user,
    JUPYTERHUB_SERVER_NAME: i.server,
    JUPYTERHUB_API_URL: i.hubApiUrl,
    JUPYTERHUB_ACTIVITY_URL: `${i.hubApiUrl}/users/${encodeURIComponent(i.user)}/activity`,
    JUPYTERHUB_BASE_URL: "/",
    JUPYTERHUB_SERVICE_PREFIX: prefix,
    JUPYTERHUB_SERVICE_URL: i.serviceUrl,
    JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED: "0",
  });
  // As JupyterHub: the config's environment wins over spawner.default_url (a profile may pick its own page).
  if (cfg.spawner.default_url && env.JUPYTERHUB_DEFAULT_URL === undefined) env.JUPYTERHUB_DEFAULT_URL = cfg.spawner.default_url;
  // As JupyterHub's get_env: always set, empty without a public_url; the server's URL on public_url's origin.
  env.JUPYTERHUB_PUBLIC_HUB_URL = cfg.public_url ? new URL("/hub/", cfg.public_url).href : "";
  env.JUPYTERHUB_PUBLIC_URL = cfg.public_url ? new URL(prefix, cfg.public_url).href : "";
  if (cfg.subdomain_host && cfg.public_url) {
    // Subdomain mode, as JupyterHub sets it up: the server is on its own origin, so its links to the hub are
    // absolute (JUPYTERHUB_HOST) and the OAuth redirect comes back to its own origin (the same URL the hub
    // registered for its client, compared exactly).
    const own = serverUrl(cfg.subdomain_host, i.user, i.server);
    env.JUPYTERHUB_HOST = new URL(cfg.public_url).origin;
    env.JUPYTERHUB_OAUTH_CALLBACK_URL = `${own}oauth_callback`;
    env.JUPYTERHUB_PUBLIC_URL = own;
  }
  if (i.profile?.memory) env.MEM_LIMIT = i.profile.memory;
  if (i.profile?.cpu) env.CPU_LIMIT = String(i.profile.cpu);
  return env;
}

/**
 * The hub API URL a process on this host uses, from the listen address; with an https listen, the plain loopback
 * listener of tls.internal_listen (a server could not verify the public certificate on 127.0.0.1).
 */
export function internalApiUrl(cfg: Config): string {
  const https = new URL(cfg.listen).protocol === "https:";
  const { host, port } = listenAddress(https ? { ...cfg, listen: cfg.tls.internal_listen } : cfg);
  const h = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "[::1]" : host.includes(":") ? `[${host}]` : host;
  return `http://${h}:${port}/hub/api`;
}

/** Host and port of the listen URL, brackets removed from IPv6 literals. */
export function listenAddress(cfg: Config): { host: string; port: number } {
  const u = new URL(cfg.listen);
  // URL drops a port equal to the scheme's default ("https://h:443" has port "").
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || (u.protocol === "https:" ? 443 : 80)) };
}
