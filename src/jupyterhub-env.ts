// Which JUPYTERHUB_* (and legacy JPY_*) environment variables an admin may put in spawner.env or a profile's
// env, and which belong to the hub. The single-user server reads both kinds from its environment; the hub's
// own ones carry its contract with the server (who it is, where it is, its token, its OAuth client), so a
// config value for one of them is refused when the config is loaded (check-config, start, reload) with the
// reason, instead of being dropped without a word. Names from JupyterHub's spawner.py (get_env) and
// singleuser (extension.py, mixins.py, app.py).

/** Settings of the single-user server that JupyterHub takes from its own Spawner config: the admin's. */
export const ADMIN_JUPYTERHUB_ENV: Readonly<Record<string, string>> = {
  JUPYTERHUB_ACTIVITY_INTERVAL: "seconds between the server's activity reports to the hub (default 300)",
  JUPYTERHUB_DEBUG: "debug logging in the server (JupyterHub's Spawner.debug)",
  JUPYTERHUB_DEFAULT_URL: "the page the server opens at (overrides spawner.default_url)",
  JUPYTERHUB_DISABLE_USER_CONFIG: "ignore Jupyter config files in the user's home (Spawner.disable_user_config)",
  JUPYTERHUB_ROOT_DIR: "the directory the server shows (Spawner.notebook_dir)",
  JUPYTERHUB_SINGLEUSER_APP: "the application jupyterhub-singleuser wraps, e.g. notebook.notebookapp.NotebookApp",
  JUPYTERHUB_SINGLEUSER_EXTENSION: "1/0: run as a Jupyter Server extension or the older wrapped app (4.x, 5.x)",
  JUPYTERHUB_SINGLEUSER_LOAD_OTHER_EXTENSIONS: "0 stops other server extensions from loading (5.x)",
};

/** Variables the hub owns, with why. slicehub sets the first group itself for every server. */
export const HUB_JUPYTERHUB_ENV: Readonly<Record<string, string>> = {
  JUPYTERHUB_API_TOKEN: "the server's own API token, issued by the hub at each start",
  JPY_API_TOKEN: "the server's own API token, issued by the hub at each start",
  JUPYTERHUB_API_URL: "where the server reaches the hub's API, set by the hub",
  JUPYTERHUB_ACTIVITY_URL: "where the server reports activity, set by the hub",
  JUPYTERHUB_BASE_URL: "the hub's base URL, set by the hub",
  JUPYTERHUB_CLIENT_ID: "the server's OAuth client, registered by the hub",
  JUPYTERHUB_OAUTH_CALLBACK_URL: "the OAuth redirect URI the hub registered for the server",
  JUPYTERHUB_OAUTH_SCOPES: "the scopes that grant access to the server, set by the hub",
  JUPYTERHUB_OAUTH_ACCESS_SCOPES: "the scopes that grant access to the server, set by the hub",
  JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES: "the scopes the hub lets the server's OAuth client ask for",
  JUPYTERHUB_USER: "the server's owner, set by the hub",
  JUPYTERHUB_SERVER_NAME: "the server's name, set by the hub",
  JUPYTERHUB_SERVICE_PREFIX: "the server's URL prefix, which the hub routes",
  JUPYTERHUB_SERVICE_URL: "the address the server binds, chosen by the hub at each start",
  JUPYTERHUB_HOST: "the hub's origin for the server's links (subdomain mode), set by the hub",
  JUPYTERHUB_PUBLIC_URL: "derived from public_url (and subdomain_host) by the hub",
  JUPYTERHUB_PUBLIC_HUB_URL: "derived from public_url by the hub",
  JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED: "cookie settings are the hub's (its proxy rewrites the server's cookies)",
  // Not set by slicehub, still the hub's: they would break the proxy, OAuth or who may use the server.
  JUPYTERHUB_COOKIE_OPTIONS: "cookie settings are the hub's (its proxy rewrites the server's cookies)",
  JUPYTERHUB_ADMIN_ACCESS: "who may use a server is decided by the hub's scopes (admins hold access:servers)",
  JUPYTERHUB_GROUP: "who may use a server is decided by the hub's scopes",
  JUPYTERHUB_SERVICE_NAME: "for hub services, which slicehub does not run; it would change the server's access scopes",
  JUPYTERHUB_SSL_KEYFILE: "the hub's proxy talks plain HTTP to servers on loopback (no internal TLS)",
  JUPYTERHUB_SSL_CERTFILE: "the hub's proxy talks plain HTTP to servers on loopback (no internal TLS)",
  JUPYTERHUB_SSL_CLIENT_CA: "the hub's proxy talks plain HTTP to servers on loopback (no internal TLS)",
};

const OWNED_PREFIX = /^(JUPYTERHUB_|JPY_)/;

/** Whether `name` may be passed from the config to a server: anything but JUPYTERHUB_ and JPY_ names, and the admin's ones of those. */
export function adminMaySet(name: string): boolean {
  return !OWNED_PREFIX.test(name) || Object.hasOwn(ADMIN_JUPYTERHUB_ENV, name);
}

/** Why `name` may not be set in spawner.env or a profile's env, or undefined when it may. */
export function envKeyProblem(name: string): string | undefined {
  if (adminMaySet(name)) return undefined;
  const owned = HUB_JUPYTERHUB_ENV[name];
  if (owned) return `${name} is set by the hub, not by config: ${owned}`;
  const near = Object.keys(ADMIN_JUPYTERHUB_ENV).find((k) => closeTo(name, k));
  const hint = near ? `did you mean ${near}? ` : "";
  return `${name} is not a JupyterHub variable an admin may set (${hint}allowed: ${Object.keys(ADMIN_JUPYTERHUB_ENV).join(", ")})`;
}

/** A typo's distance: at most two single-character edits. */
function closeTo(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 2) return false;
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]! <= 2;
}

/**
 * An environment variable name that reads like a secret's: SECRET or PASSWORD/PASSWD anywhere (PGPASSWORD), a
 * trailing _PWD (MYSQL_PWD), TOKEN as a word (GH_TOKEN, HF_TOKEN, but not TOKENIZERS_PARALLELISM), or an API,
 * access or private key (OPENAI_API_KEY, AWS_ACCESS_KEY_ID, SSH_PRIVATE_KEY). Under the systemd spawner a
 * server's environment is a property of its unit, which every local user can read with `systemctl show`.
 */
export const SECRET_ENV_NAME = /SECRET|PASSW(OR)?D|_PWD$|(^|_)(AUTH_?)?TOKENS?(_|$)|(^|_)(API|ACCESS|PRIVATE)_?KEYS?(_|$)/i;

/** Why a name may not be in a systemd-spawned server's environment, or undefined. */
export function secretEnvProblem(name: string): string | undefined {
  if (!SECRET_ENV_NAME.test(name)) return undefined;
  return `${name} looks like a secret's name, and with the systemd spawner a server's environment is a unit property every local user can read (systemctl show); give a user a secret through a file only their account can read (e.g. written by a root hook), not the config`;
}
