// Allow-lists are authoritative: when the config (or an admin) takes someone's access away, their browser
// sessions and API tokens end at once and, unless the config says otherwise, their servers stop. Admin
// rights follow the config both ways.
import { decideAccess } from "./decide.js";
import type { Config } from "../src/config/schema.js";
import type { Lifecycle } from "../src/lifecycle.js";
import type { Logger } from "../src/log.js";
import type { Store, UserRow } from "../src/store/store.js";

/** Why this user may no longer use the hub under `cfg`, or undefined if they may (and whether as admin). */
export function accessUnder(cfg: Config, store: Pick<Store, "getIdentityOfUser">, user: UserRow): { allowed: false; why: string } | { allowed: true; admin?: boolean } {
  if (user.blocked) return { allowed: false, why: "blocked by an admin" };
  const auth = cfg.auth;
  if (auth.kind === "dev") {
    if (auth.allowed_users && !auth.allowed_users.includes(user.name)) return { allowed: false, why: "not in auth.allowed_users" };
    return { allowed: true, admin: auth.admin_users.includes(user.name) };
  }
  const identity = store.getIdentityOfUser(user.id);
  // Users who never logged in through the provider (made with the API or `slicehub token --create`) are
  // governed by their tokens, which an admin revokes; the allow-lists speak of emails they do not have.
  if (!identity) return { allowed: true };
  const claims = JSON.parse(identity.claims) as Record<string, unknown>;
  const decision = decideAccess(auth, { ...claims, iss: identity.issuer, sub: identity.subject });
  return decision.ok ? { allowed: true, admin: decision.admin } : { allowed: false, why: decision.message };
}

/**
 * Apply `cfg` to every known user; returns the names whose access ended. `endSsh` gets every user who may not
 * use the hub (it ends the SSH sessions of those who have any).
 */
export async function enforceAccess(cfg: Config, store: Store, lifecycle: Lifecycle, log: Logger, endSsh?: (users: string[]) => Promise<void>): Promise<string[]> {
  const ended: string[] = [];
  // SSH sessions end at once, not after the servers' stops below.
  const refused = store.allUsers().filter((u) => !accessUnder(cfg, store, u).allowed).map((u) => u.name);
  const sshEnded = endSsh?.(refused).catch((err: unknown) => log.error("could not end SSH sessions of users without access", { error: err }));
  for (const user of store.allUsers()) {
    const access = accessUnder(cfg, store, user);
    if (access.allowed) {
      if (access.admin !== undefined && !!user.admin !== access.admin) {
        store.setAdmin(user.id, access.admin);
        log.info(access.admin ? "admin rights granted by config" : "admin rights removed by config", { user: user.name });
      }
      continue;
    }
    const { sessions, tokens } = store.revokeUserAccess(user.id);
    const servers = store.listServers(user.id).filter((s) => s.state !== "stopped");
    const stop = cfg.auth.kind !== "oidc" || cfg.auth.on_removal === "stop";
    if (stop) await Promise.all(servers.map((s) => lifecycle.stop(user, s)));
    if (sessions || tokens || (stop && servers.length)) {
      ended.push(user.name);
      log.warn("access ended", { user: user.name, why: access.why, sessions, tokens, servers_stopped: stop ? servers.length : 0 });
    }
  }
  await sshEnded;
  return ended;
}
