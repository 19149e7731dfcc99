// URL and identifier spellings of user and server names, as JupyterHub produces them. The spellings must
// match exactly in routes, env vars, OAuth client registration and redirect-URI comparison.

/** Python's urllib.parse.quote: percent-encode everything but unreserved characters and `safe`. */
export function pyQuote(s: string, safe = "/"): string {
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9_.\-~]/.test(ch) || safe.includes(ch)) out += ch;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The name as it appears in /user/<name>/ paths (safe characters "@~"). */
export function urlName(name: string): string {
  return pyQuote(name, "@~");
}

/** /user/alice/ or /user/alice/foo/ */
export function serverPrefix(user: string, server: string): string {
  return server ? `/user/${urlName(user)}/${urlName(server)}/` : `/user/${urlName(user)}/`;
}

/** "alice" or "alice/foo": the tail of hub URLs about a server (/hub/spawn/…, /hub/spawn-pending/…). */
export function serverPath(user: string, server: string): string {
  return server ? `${urlName(user)}/${urlName(server)}` : urlName(user);
}

/** The hub API's progress stream of a server (spec §5.2). */
export function progressPath(user: string, server: string): string {
  const base = `/hub/api/users/${urlName(user)}`;
  return server ? `${base}/servers/${urlName(server)}/progress` : `${base}/server/progress`;
}

/** The routing-table key: the prefix without its trailing slash. */
export function routeKey(user: string, server: string): string {
  return serverPrefix(user, server).slice(0, -1);
}

/**
 * jupyterhub-user-alice, or jupyterhub-user-alice~foo for a named server (also the server's cookie name).
 * JupyterHub joins a named server with "-", so alice's server "foo" and user alice-foo's default server
 * share an id there; "~" is in no user or server name (and is a cookie-name character), so no two
 * (user, server) pairs share one here.
 */
export function oauthClientId(user: string, server: string): string {
  const base = `jupyterhub-user-${pyQuote(user)}`;
  return server ? `${base}~${pyQuote(server)}` : base;
}

/** "alice/" or "alice/foo": the value of `!server=` scope filters. */
export function serverFilter(user: string, server: string): string {
  return `${user}/${server}`;
}

/** Hub user names: lower-case, short, no characters that need escaping anywhere (paths, unit names, culler URLs). */
export const USER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** Named-server names: the same alphabet. */
export const SERVER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
