// Spawn progress events, kept for each server's last few spawns.
import type { StoreClass } from "./base.js";

export function SpawnEvents<B extends StoreClass>(Base: B) {
  return class SpawnEvents extends Base {
    addSpawnEvent(serverId: number, spawnId: number, event: object): void {
      this.stmt("INSERT INTO spawn_events (server_id, spawn_id, ts, event) VALUES (?, ?, ?, ?)").run(serverId, spawnId, Date.now(), JSON.stringify(event));
    }

    spawnEvents(serverId: number, spawnId: number): object[] {
      return (
        this.stmt("SELECT event FROM spawn_events WHERE server_id = ? AND spawn_id = ? ORDER BY id").all(serverId, spawnId) as { event: string }[]
      ).map((r) => JSON.parse(r.event) as object);
    }

    /** Keep only the events of each server's last few spawns. */
    pruneSpawnEvents(keepSpawns = 5): void {
      this.stmt("DELETE FROM spawn_events WHERE spawn_id <= (SELECT spawn_id FROM servers WHERE servers.id = spawn_events.server_id) - ?")
        .run(keepSpawns);
    }
  };
}
