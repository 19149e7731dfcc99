// JSON models of users, servers and tokens as JupyterHub's REST API returns them, with fields limited by
// the caller's scopes (docs/jupyterhub-compat.md).
import type { Lifecycle, ServerStatus } from "../lifecycle.js";
import { progressPath, serverFilter, serverUrl } from "../names.js";
import { hasScope } from "../scopes.js";
import type { ServerRow, Store, TokenRow, UserRow } from "../store/store.js";
import { isoZ } from "../time.js";

function pendingOf(status: ServerStatus): "spawn" | "stop" | null {
  return status === "pending" ? "spawn" : status === "stopping" ? "stop" : null;
}

/**
 * A server's model. `url` is its prefix, absolute on its own origin in subdomain mode (`subdomainHost` set), as
 * JupyterHub's is.
 */
export function serverModel(lifecycle: Lifecycle, user: UserRow, s: ServerRow, withState: boolean, subdomainHost?: string): Record<string, unknown> {
  const status = lifecycle.status(s);
  const model: Record<string, unknown> = {
    name: s.name,
    full_name: serverFilter(user.name, s.name),
    last_activity: isoZ(s.last_activity),
    started: isoZ(s.started),
    pending: pendingOf(status),
    ready: status === "running",
    stopped: status === "stopped",
    url: serverUrl(subdomainHost, user.name, s.name),
    user_options: JSON.parse(s.user_options) as object,
    progress_url: progressPath(user.name, s.name),
  };
  if (withState) model.state = s.state === "stopped" ? {} : s.spawner_state ? (JSON.parse(s.spawner_state) as object) : {};
  return model;
}

/**
 * A user's model. `servers`, when given, must be the user's servers as `store.listServers` returns them (a list
 * fetches a whole page's with `store.listServersOf` in one query); otherwise they are read here, and only when
 * the caller may see something of them.
 */
export function userModel(
  store: Store,
  lifecycle: Lifecycle,
  user: UserRow,
  held: Set<string>,
  opts: { includeStopped?: boolean; servers?: readonly ServerRow[]; subdomainHost?: string } = {},
): Record<string, unknown> {
  const t = { user: user.name };
  const can = (scope: string) => hasScope(held, scope, t);
  const model: Record<string, unknown> = { kind: "user", name: user.name };
  if (can("read:users:name") || can("read:roles:users")) model.admin = !!user.admin;
  if (can("read:users:groups")) model.groups = [];
  if (can("read:users:activity")) model.last_activity = isoZ(user.last_activity);
  if (can("read:roles:users")) model.roles = user.admin ? ["admin", "user"] : ["user"];
  const readUsers = can("read:users");
  const readServers = can("read:servers");
  const servers = readUsers || readServers ? (opts.servers ?? store.listServers(user.id)) : [];
  if (readUsers) {
    const def = servers.find((s) => s.name === "");
    model.created = isoZ(user.created);
    model.server = def?.state === "running" ? serverUrl(opts.subdomainHost, user.name, "") : null;
    model.pending = def ? pendingOf(lifecycle.status(def)) : null;
    model.roles = user.admin ? ["admin", "user"] : ["user"];
    // Not a JupyterHub field (clients ignore it); only there when an admin's note is (slicehub import jupyterhub).
    if (user.note) model.note = user.note;
  }
  if (readServers) {
    const out: Record<string, unknown> = {};
    let withState: boolean | undefined;
    for (const s of servers) {
      if (s.state === "stopped" && !opts.includeStopped) continue;
      withState ??= hasScope(held, "admin:server_state", t);
      out[s.name] = serverModel(lifecycle, user, s, withState, opts.subdomainHost);
    }
    model.servers = out;
  }
  if (can("admin:auth_state")) model.auth_state = null;
  return model;
}

export function tokenModel(t: TokenRow, owner: string, clientDescription?: string): Record<string, unknown> {
  return {
    id: `a${t.id}`,
    kind: "api_token",
    user: owner,
    roles: [],
    scopes: JSON.parse(t.scopes) as string[],
    note: t.note,
    created: isoZ(t.created),
    expires_at: isoZ(t.expires_at),
    last_activity: isoZ(t.last_activity),
    session_id: t.session_id,
    oauth_client: clientDescription ?? (t.kind === "oauth" ? t.oauth_client_id : "JupyterHub"),
  };
}
