// What every hub handler gets: the shared services and, per request, who is asking.
import type { HttpBindings } from "@hono/node-server";
import type { Config } from "../config/schema.js";
import type { Lifecycle } from "../lifecycle.js";
import type { Logger } from "../log.js";
import type { SessionRow, Store, TokenRow, UserRow } from "../store/store.js";
import type { TerminalManager } from "../terminal/manager.js";
import type { SshSessions } from "../ssh/sessions.js";
import type { HubMetrics } from "../metrics.js";

export interface Hub {
  store: Store;
  config: () => Config;
  lifecycle: Lifecycle;
  log: Logger;
  /** The browser terminals (src/terminal/); absent where a hub is built without them (some tests). */
  terminals?: TerminalManager;
  /** SSH sessions (src/ssh/sessions.ts): no-ops under the local spawner; absent in some tests. */
  ssh?: SshSessions;
  /** Ends the user's open SSH sessions (a key removed, the user blocked or deleted). */
  sshEnd?: (user: string) => Promise<void>;
  /** Makes sure the user's Unix account exists and has its SSH limits (after a key is added). */
  sshPrepare?: (user: string) => Promise<void>;
  /** /hub/metrics (src/metrics.ts); absent in some tests, where /hub/metrics is a 404. */
  metrics?: HubMetrics;
  /** For /hub/health: false once the privileged helper is gone (systemd spawner). */
  helperAlive?: () => boolean;
}

export interface Who {
  user: UserRow;
  /** Expanded scopes this request may use. */
  scopes: Set<string>;
  via: "token" | "session";
  token?: TokenRow;
  session?: SessionRow;
}

export type HubEnv = {
  Bindings: HttpBindings;
  Variables: { who: Who | undefined; tokenRejected: boolean };
};
