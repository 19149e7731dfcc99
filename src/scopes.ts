// JupyterHub's RBAC scopes, the subset slicehub serves. A scope is `name` or `name!kind=value` where the
// filter limits it to one user (`!user=alice`) or one server (`!server=alice/foo`). Holding a scope
// implies its sub-scopes with the same filter; `!user=` also covers that user's servers.

const SUBSCOPES: Record<string, string[]> = {
  "admin:users": ["users", "delete:users", "admin:auth_state", "read:roles:users"],
  users: ["read:users", "users:activity"],
  "read:users": ["read:users:name", "read:users:groups", "read:users:activity"],
  "list:users": ["read:users:name"],
  "users:activity": ["read:users:activity"],
  "admin:servers": ["servers", "admin:server_state"],
  servers: ["read:servers", "delete:servers"],
  "read:servers": ["read:users:name"],
  tokens: ["read:tokens"],
  "read:roles:users": ["read:users:name"],
  // SSH public keys (slicehub's own): list; add and remove; remove only.
  "users:ssh_keys": ["read:users:ssh_keys", "delete:users:ssh_keys"],
};

/**
 * What an admin holds (unfiltered). SSH keys: an admin sees everyone's and may remove one, but only its owner
 * adds a key, since a key added to someone's account logs in as them. read:metrics: /hub/metrics (JupyterHub 5's
 * scope, also in its admin role); a token with only it is what a Prometheus server should hold.
 */
export const ADMIN_SCOPES = ["admin:users", "admin:servers", "tokens", "access:servers", "list:users", "read:hub", "read:users:ssh_keys", "delete:users:ssh_keys", "read:metrics"];

/** What a plain user holds over themselves. */
export function userScopes(name: string): string[] {
  return ["read:users", "users:activity", "servers", "access:servers", "tokens", "list:users", "users:ssh_keys"].map((s) => `${s}!user=${name}`);
}

export function roleScopes(user: { name: string; admin: number | boolean }): string[] {
  return user.admin ? [...ADMIN_SCOPES, ...userScopes(user.name)] : userScopes(user.name);
}

/** The scopes of the single-user server's own token (JupyterHub 4.x's `server` role plus identify scopes). */
export function serverTokenScopes(user: string, serverFilter: string): string[] {
  return [
    `access:servers!server=${serverFilter}`,
    `read:users:activity!user=${user}`,
    `read:users:groups!user=${user}`,
    `read:users:name!user=${user}`,
    `users:activity!user=${user}`,
  ];
}

/** Every scope slicehub understands: the keys and values of SUBSCOPES and what roles hand out. */
export const KNOWN_SCOPES: ReadonlySet<string> = new Set([
  ...Object.keys(SUBSCOPES),
  ...Object.values(SUBSCOPES).flat(),
  ...ADMIN_SCOPES,
  "access:servers",
  "read:users:activity",
]);

const FILTER = /^!(user|server)=(.*)$/;
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export type ParsedScope = { base: string; filter?: { user: string } | { server: string } };

/**
 * A scope as a client may ask for it: a known name, optionally limited to one user (`!user=alice`) or one
 * server (`!server=alice/` or `!server=alice/foo`, the slash is required). Anything else is an error
 * message, so a malformed filter can never be stored and later match something it did not name.
 */
export function parseScope(scope: string): ParsedScope | string {
  if (scope.length > 200) return `Scope is too long: ${scope.slice(0, 40)}…`;
  const [base, filter] = split(scope);
  if (!KNOWN_SCOPES.has(base)) return `Scope '${base}' does not exist`;
  if (!filter) return { base };
  const m = FILTER.exec(filter);
  if (!m) return `Scope filter '${filter}' in scope '${scope}' is not supported (use !user=NAME or !server=NAME/SERVER)`;
  if (m[1] === "user") {
    return NAME.test(m[2]!) ? { base, filter: { user: m[2]! } } : `Scope filter '${filter}' in scope '${scope}' names no valid user`;
  }
  const slash = m[2]!.indexOf("/");
  const user = slash < 0 ? "" : m[2]!.slice(0, slash);
  const server = slash < 0 ? "" : m[2]!.slice(slash + 1);
  if (slash < 0 || !NAME.test(user) || (server !== "" && !NAME.test(server))) {
    return `Scope filter '${filter}' in scope '${scope}' must be !server=USER/ or !server=USER/SERVER`;
  }
  return { base, filter: { server: m[2]! } };
}

export const isValidScope = (scope: string): boolean => typeof parseScope(scope) !== "string";

/** Does `held` (expanded) grant this concrete scope, filter included? `x!user=a` is granted by `x` or `x!user=a`. */
export function grants(held: Set<string>, scope: string): boolean {
  const parsed = parseScope(scope);
  if (typeof parsed === "string") return false;
  return hasScope(held, parsed.base, parsed.filter ?? {});
}

function split(scope: string): [string, string] {
  const i = scope.indexOf("!");
  return i < 0 ? [scope, ""] : [scope.slice(0, i), scope.slice(i)];
}

/** Every scope implied by these, filters kept (a set of concrete strings). */
export function expandScopes(scopes: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const stack = [...scopes];
  while (stack.length) {
    const s = stack.pop()!;
    if (out.has(s)) continue;
    out.add(s);
    const [base, filter] = split(s);
    for (const sub of SUBSCOPES[base] ?? []) stack.push(sub + filter);
  }
  return out;
}

export interface ScopeTarget {
  user?: string;
  /** "alice/" or "alice/foo" */
  server?: string;
}

/** Does the expanded set grant `base` on the target (or everywhere when no target is given)? */
export function hasScope(held: Set<string>, base: string, target: ScopeTarget = {}): boolean {
  if (held.has(base)) return true;
  if (target.user !== undefined && held.has(`${base}!user=${target.user}`)) return true;
  if (target.server !== undefined) {
    if (held.has(`${base}!server=${target.server}`)) return true;
    const owner = target.server.slice(0, target.server.indexOf("/"));
    if (held.has(`${base}!user=${owner}`)) return true;
  }
  return false;
}

/** The users a list:users-style scope reaches: "all", or the named ones. */
export function scopeUsers(held: Set<string>, base: string): "all" | Set<string> {
  if (held.has(base)) return "all";
  const users = new Set<string>();
  const prefix = `${base}!user=`;
  for (const s of held) if (s.startsWith(prefix)) users.add(s.slice(prefix.length));
  return users;
}

/**
 * A token's effective scopes: its own (with `inherit` meaning "whatever the owner holds now") limited to
 * what the owner holds now, so taking admin away from a user also takes it from their tokens.
 */
export function tokenScopes(stored: string[], owner: { name: string; admin: number | boolean }): Set<string> {
  const ownerHeld = expandScopes(roleScopes(owner));
  if (stored.includes("inherit")) return ownerHeld;
  // A scope stored before scopes were validated (or by hand) that does not parse grants nothing.
  return new Set([...expandScopes(stored.filter(isValidScope))].filter((s) => grants(ownerHeld, s)));
}
