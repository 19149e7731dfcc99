// What the built-in culler (src/cull.ts) reads and writes: every user's latest sign of life, why a server was
// stopped by the hub itself, and the identities of users it deleted (table culled_users, migration 5).
import type { StoreClass } from "./base.js";

/** A user as the culler judges them. */
export interface UserActivityRow {
  id: number;
  name: string;
  admin: number;
  blocked: number;
  /**
   * The latest of: created, last_activity, a browser session's last request, an API token's last use, an SSH
   * key's last use, the last login, a server's last activity, start or culled stop (ms).
   */
  last_seen: number;
  /** 1 when one of their servers is not stopped. */
  has_server: number;
}

export interface CulledUserRow {
  name: string;
  issuer: string;
  subject: string;
  culled: number;
}

const USER_ACTIVITY = `
  SELECT u.id, u.name, u.admin, u.blocked,
    max(u.created,
        coalesce(u.last_activity, 0),
        coalesce((SELECT max(last_seen) FROM sessions WHERE user_id = u.id), 0),
        coalesce((SELECT max(last_activity) FROM api_tokens WHERE user_id = u.id), 0),
        coalesce((SELECT max(last_used) FROM ssh_keys WHERE user_id = u.id), 0),
        coalesce((SELECT last_login FROM identities WHERE user_id = u.id), 0),
        coalesce((SELECT max(max(coalesce(last_activity, 0), coalesce(started, 0), coalesce(stopped_at, 0))) FROM servers WHERE user_id = u.id), 0)
    ) AS last_seen,
    EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.state != 'stopped') AS has_server
  FROM users u`;

export function Culling<B extends StoreClass>(Base: B) {
  return class Culling extends Base {
    /** Every user with their latest sign of life. */
    userActivity(): UserActivityRow[] {
      return this.stmt(`${USER_ACTIVITY} ORDER BY u.id`).all() as UserActivityRow[];
    }

    /** One user's, read again just before deleting them. */
    userActivityOf(id: number): UserActivityRow | undefined {
      return this.stmt(`${USER_ACTIVITY} WHERE u.id = ?`).get(id) as UserActivityRow | undefined;
    }

    /** Record why the hub stopped a server by itself; cleared by the next start. */
    setStopReason(serverId: number, reason: string, at: number): void {
      this.stmt("UPDATE servers SET stop_reason = ?, stopped_at = ? WHERE id = ?").run(reason, at, serverId);
    }

    /** Keep a deleted user's login identity, so only that identity may take the name again. */
    rememberCulledUser(name: string, issuer: string, subject: string, at: number): void {
      this.stmt(
        "INSERT INTO culled_users (name, issuer, subject, culled) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET issuer = excluded.issuer, subject = excluded.subject, culled = excluded.culled",
      ).run(name, issuer, subject, at);
    }

    getCulledUser(name: string): CulledUserRow | undefined {
      return this.stmt("SELECT * FROM culled_users WHERE name = ?").get(name) as CulledUserRow | undefined;
    }

    forgetCulledUser(name: string): void {
      this.stmt("DELETE FROM culled_users WHERE name = ?").run(name);
    }
  };
}
