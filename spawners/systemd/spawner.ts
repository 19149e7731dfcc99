// The systemd spawner as the (unprivileged) web process sees it: every operation is a request to the
// privileged helper, which does the work as root and checks each request itself.
import type { HelperClient } from "../privileged/client.js";
import type { SystemdState } from "../privileged/protocol.js";
import type { PollResult, SpawnerState, SpawnProgress, SpawnSpec, Spawner } from "../spawner.js";

function unitOf(state: SpawnerState): string {
  const unit = (state as Partial<SystemdState>).unit;
  if (typeof unit !== "string") throw new Error("systemd spawner: state without a unit");
  return unit;
}

function uidOf(state: SpawnerState): number {
  const uid = (state as Partial<SystemdState>).uid;
  if (!Number.isInteger(uid) || uid! < 0) throw new Error("systemd spawner: state without the account's uid");
  return uid!;
}

export class SystemdSpawner implements Spawner {
  readonly kind = "systemd";
  constructor(private readonly helper: HelperClient) {}

  async start(spec: SpawnSpec, onProgress: (p: SpawnProgress) => void): Promise<SpawnerState> {
    return this.helper.request<SystemdState>(
      { op: "start", user: spec.user, server: spec.serverName, profile: spec.profile?.name ?? "", port: spec.port, token: spec.token },
      (progress, message) => onProgress({ progress, message }),
    );
  }

  poll(state: SpawnerState): Promise<PollResult> {
    return this.helper.request<PollResult>({ op: "poll", unit: unitOf(state) });
  }

  stop(state: SpawnerState, timeoutMs: number): Promise<void> {
    return this.helper.request<void>({ op: "stop", unit: unitOf(state), timeoutMs: Math.max(100, Math.round(timeoutMs)) });
  }

  /** The user's Unix account, which the helper put in the state when it started the unit. */
  serverUid(state: SpawnerState): number {
    return uidOf(state);
  }

  failureDetail(state: SpawnerState): Promise<string> {
    return this.helper.request<string>({ op: "detail", unit: unitOf(state) });
  }

  usage(state: SpawnerState): Promise<{ memoryBytes?: number; cpuSeconds?: number }> {
    return this.helper.request({ op: "usage", unit: unitOf(state) });
  }

  /** Units are named by user and server, so an unrecorded launch is simply a unit the store does not know. */
  async reconcile(known: SpawnerState[], timeoutMs: number): Promise<string[]> {
    const keep = new Set(known.map(unitOf));
    const running = await this.helper.request<string[]>({ op: "list" });
    const orphans = running.filter((u) => !keep.has(u));
    const ms = Math.min(600_000, Math.max(100, Math.round(timeoutMs)));
    await Promise.all(orphans.map((unit) => this.helper.request({ op: "stop", unit, timeoutMs: ms })));
    return orphans;
  }
}
