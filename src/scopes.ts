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
};

/** What an admin holds (unfiltered). */
export const ADMIN_SCOPES = ["admin:users", "admin:servers", "tokens", "access:servers", "list:users", "read:hub"];

/** What a plain user holds over themselves. */
export function userScopes(name: string): string[] {
  return ["read:users", "users:activity", "servers", "access:servers", "tokens", "list:users"].map((s) => `${s}!user=${name}`);
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
  const out = new Set<string>();
  for (const s of expandScopes(stored)) {
    const [base, filter] = split(s);
    const target: ScopeTarget = filter.startsWith("!user=")
      ? { user: filter.slice(6) }
      : filter.startsWith("!server=")
        ? { server: filter.slice(8) }
        : {};
    if (filter === "" ? ownerHeld.has(base) : hasScope(ownerHeld, base, target)) out.add(s);
  }
  return out;
}
