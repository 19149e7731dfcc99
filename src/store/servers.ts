// Users' servers: state, spawner state, activity.
import type { StoreClass } from "./base.js";

export type ServerState = "stopped" | "pending" | "running" | "stopping";

export interface ServerRow {
  id: number;
  user_id: number;
  name: string;
  state: ServerState;
  spawn_id: number;
  url: string | null;
  spawner_kind: string | null;
  spawner_state: string | null;
  user_options: string;
  started: number | null;
  last_activity: number | null;
  failure: string | null;
  /** Why the hub itself stopped it (the culler: "after 2 h idle"); null after any other stop or a start. */
  stop_reason: string | null;
  /** When the hub itself stopped it, with stop_reason. */
  stopped_at: number | null;
}

export function Servers<B extends StoreClass>(Base: B) {
  return class Servers extends Base {
    getServer(userId: number, name: string): ServerRow | undefined {
      return this.stmt("SELECT * FROM servers WHERE user_id = ? AND name = ?").get(userId, name) as ServerRow | undefined;
    }

    getServerById(id: number): ServerRow | undefined {
      return this.stmt("SELECT * FROM servers WHERE id = ?").get(id) as ServerRow | undefined;
    }

    ensureServer(userId: number, name: string): ServerRow {
      this.stmt("INSERT INTO servers (user_id, name) VALUES (?, ?) ON CONFLICT(user_id, name) DO NOTHING").run(userId, name);
      return this.getServer(userId, name)!;
    }

    deleteServer(id: number): void {
      this.stmt("DELETE FROM servers WHERE id = ?").run(id);
    }

    listServers(userId: number): ServerRow[] {
      return this.stmt("SELECT * FROM servers WHERE user_id = ? ORDER BY name").all(userId) as ServerRow[];
    }

    /**
     * The servers of several users in one query, each user's ordered by name as listServers orders them; every
     * id asked for has an entry (empty when the user has no servers).
     */
    listServersOf(userIds: readonly number[]): Map<number, ServerRow[]> {
      const out = new Map<number, ServerRow[]>();
      for (const id of userIds) out.set(id, []);
      if (!userIds.length) return out;
      const rows = this.stmt("SELECT * FROM servers WHERE user_id IN (SELECT value FROM json_each(?)) ORDER BY user_id, name").all(
        JSON.stringify(userIds),
      ) as ServerRow[];
      for (const r of rows) out.get(r.user_id)?.push(r);
      return out;
    }

    /** Servers that are not stopped, with their owner's name. */
    listActiveServers(): (ServerRow & { user_name: string })[] {
      return this.stmt("SELECT s.*, u.name AS user_name FROM servers s JOIN users u ON u.id = s.user_id WHERE s.state != 'stopped'")
        .all() as (ServerRow & { user_name: string })[];
    }

    updateServer(id: number, patch: Partial<Omit<ServerRow, "id" | "user_id" | "name">>): void {
      const keys = Object.keys(patch);
      if (!keys.length) return;
      const sets = keys.map((k) => `${k} = @${k}`).join(", ");
      this.stmt(`UPDATE servers SET ${sets} WHERE id = @id`).run({ ...patch, id });
    }

    /** Record activity for a server and its user, only ever forward. */
    touchServer(id: number, at: number): void {
      this.transaction(() => {
        this.stmt("UPDATE servers SET last_activity = ? WHERE id = ? AND (last_activity IS NULL OR last_activity < ?)")
          .run(at, id, at);
        this.stmt(
            "UPDATE users SET last_activity = ? WHERE id = (SELECT user_id FROM servers WHERE id = ?) AND (last_activity IS NULL OR last_activity < ?)",
          )
          .run(at, id, at);
      });
    }
  };
}
