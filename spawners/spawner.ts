// The one interface the lifecycle uses to run user servers. Spawners never call back into the web layer:
// they report progress through the callback and keep everything they need to find the server again
// (after a hub restart) in a JSON-serialisable state object that the lifecycle stores.
import type { Profile } from "../src/config/schema.js";

export interface SpawnProgress {
  /** 0–100; the lifecycle clamps it. */
  progress: number;
  message: string;
  html_message?: string;
}

/**
 * What the lifecycle tells a spawner: who, which server, the profile it resolved, where to listen and the
 * server's token. Each spawner builds the server's command and environment itself (src/server-env.ts), for
 * the account the server really runs as.
 */
export interface SpawnSpec {
  /** Hub user name. */
  user: string;
  /** "" for the default server. */
  serverName: string;
  /** The profile the lifecycle resolved (none without profiles); a privileged spawner resolves it again. */
  profile: Profile | undefined;
  /** The server's API token: each spawner delivers it its own way, never through argv or logs. */
  token: string;
  /** Where the server must listen. */
  host: string;
  port: number;
  /**
   * Names this launch ("<server id>:<spawn id>"); the lifecycle records it before calling start. A spawner
   * tags the server with it where it can, so a later hub finds a server whose state was never stored.
   */
  launchId?: string;
}

/** Opaque to the lifecycle; persisted as JSON in the store and handed back to poll/stop/failureDetail. */
export type SpawnerState = Record<string, unknown>;

export type PollResult = { running: true } | { running: false; reason: string };

export interface Spawner {
  readonly kind: string;
  /**
   * Launch the server process and resolve as soon as it is launched (not when it is ready: the lifecycle
   * polls readiness over HTTP). Rejects with an Error whose message a user can read if it cannot launch.
   */
  start(spec: SpawnSpec, onProgress: (p: SpawnProgress) => void): Promise<SpawnerState>;
  /** Is the server still running? Works on state from an earlier hub process too (adoption). */
  poll(state: SpawnerState): Promise<PollResult>;
  /** Stop the server and every process it started; TERM, wait up to timeoutMs, then KILL. Idempotent. */
  stop(state: SpawnerState, timeoutMs: number): Promise<void>;
  /**
   * The Unix uid the server runs as. The lifecycle counts the server as up only when the socket listening on
   * its port belongs to this uid, so another local user who binds the port first never gets its traffic.
   */
  serverUid(state: SpawnerState): number;
  /** Why it died, for the user: exit status and the last lines of its output. */
  failureDetail(state: SpawnerState): Promise<string>;
  /**
   * When a hub starts: stop every server this spawner finds running that is not among `known` (a unit the
   * store forgot, or a process launched by a hub killed before it stored the state), TERM, up to timeoutMs,
   * then KILL. Returns what it stopped. Only the lifecycle calls it, before it launches anything new.
   */
  reconcile(known: SpawnerState[], timeoutMs: number): Promise<string[]>;
  /** Live figures for the admin page, where the spawner can tell. */
  usage?(state: SpawnerState): Promise<{ memoryBytes?: number; cpuSeconds?: number }>;
}
