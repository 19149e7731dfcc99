// URL and identifier spellings of user and server names, as JupyterHub produces them. The spellings must
// match exactly in routes, env vars, OAuth client registration and redirect-URI comparison.
import { createHash } from "node:crypto";

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

/** The hub API's progress stream of a server (docs/jupyterhub-compat.md, REST API). */
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

// Subdomain mode (config `subdomain_host`): each server has its own host name, `<label>.<subdomain host>`.
//
// The label of a single name (user or server):
//   - the name itself when it is a plain DNS label (a-z, 0-9, '-', not at either end, at most 63), has no "--"
//     and does not start with "x-": alice → alice;
//   - otherwise "x-" + the RFC 4648 base32 of its UTF-8 bytes, lower case, no padding, when that fits in 63:
//     alice.x → x-mfwgsy3ffz4a (names of up to 38 bytes);
//   - otherwise (longer names) "x-0" + the base32 of a SHA-256 of the name: 55 characters.
// A default server's label is its user's; a named server's is "<server label>--<user label>", or, when that is
// longer than 63, "x-0" + the base32 of a SHA-256 of both names (domain-separated from the single-name hash).
//
// No two (user, server) pairs share a label:
//   - single-name labels are distinct: plain labels never start with "x-"; base32 uses a-z and 2-7 only, so
//     "x-<base32>" never starts with "x-0" and is reversible; hashed labels differ unless SHA-256 collides.
//   - no single-name label contains "--" (plain ones by rule, base32 and hashed ones have no '-' after "x-")
//     and none ends with '-', so the first "--" of a joined label is the separator: the pair is recovered
//     from it, and a joined label is never a default server's label.
//   - hashed labels (single or joined) carry a tag in the hashed input, contain no "--", and start with "x-0",
//     which no other label does.

const PLAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
const MAX_LABEL = 63;

/** RFC 4648 base32, lower case, without padding. */
export function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

function hashedLabel(tagged: string): string {
  return `x-0${base32(createHash("sha256").update(tagged, "utf8").digest())}`;
}

/** The DNS label of one user or server name (see above). */
export function nameLabel(name: string): string {
  if (PLAIN_LABEL.test(name) && !name.includes("--") && !name.startsWith("x-")) return name;
  const encoded = `x-${base32(Buffer.from(name, "utf8"))}`;
  return encoded.length <= MAX_LABEL ? encoded : hashedLabel(`name\0${name}`);
}

/** The DNS label of a server: its user's label, or "<server label>--<user label>" for a named server. */
export function serverLabel(user: string, server: string): string {
  if (!server) return nameLabel(user);
  const joined = `${nameLabel(server)}--${nameLabel(user)}`;
  return joined.length <= MAX_LABEL ? joined : hashedLabel(`server\0${user}\0${server}`);
}

/** A server's host name in subdomain mode: lower case, no port (the proxy's route host). */
export function serverHostname(subdomainHost: string, user: string, server: string): string {
  return `${serverLabel(user, server)}.${new URL(subdomainHost).hostname}`;
}

/** A server's origin in subdomain mode: `https://alice.users.example.org[:port]`. */
export function serverOrigin(subdomainHost: string, user: string, server: string): string {
  const u = new URL(subdomainHost);
  return `${u.protocol}//${serverLabel(user, server)}.${u.host}`;
}

/**
 * Where a browser reaches a server: its prefix, on its own origin in subdomain mode (`subdomainHost` set),
 * else on the hub's origin as a path. `rest` (path below the prefix, and query) is appended as given.
 */
export function serverUrl(subdomainHost: string | undefined, user: string, server: string, rest = ""): string {
  const path = `${serverPrefix(user, server)}${rest}`;
  return subdomainHost ? `${serverOrigin(subdomainHost, user, server)}${path}` : path;
}
