// Read replies kept while nothing they were built from has changed. `GET /hub/api/users` is what dashboards
// and the idle culler poll; building it costs a query per table and a JSON model per user (≈ 1.3 µs per row
// in better-sqlite3 alone), while the data behind it changes far less often than it is read.
//
// A kept reply is valid only while all of these stay the same:
//  - the database (`store.dataVersion()`: this connection's changes and other connections' commits),
//  - the config object (a reload replaces it),
//  - the credential (its scopes decide the fields) and the exact request (URL and pagination),
//  - the lifecycle's answer for each server in the reply (starts and stops in flight live in memory, not in
//    the database): the caller passes those servers and the memo compares their statuses.
import type { Lifecycle } from "../lifecycle.js";
import type { ServerRow } from "../store/store.js";
import type { Hub, Who } from "./context.js";

interface Kept {
  body: string;
  servers: readonly ServerRow[];
  statuses: string;
}

const MAX_KEPT = 256;

export class ReplyMemo {
  private version = "";
  private config: unknown;
  private readonly kept = new Map<string, Kept>();

  constructor(private readonly hub: Hub) {}

  /** The key for this caller and request; `undefined` when a reply must not be kept (no credential id). */
  static key(who: Who, request: string): string | undefined {
    const cred = who.via === "token" ? who.token && `t${who.token.id}` : who.session && `s${who.session.public_id}`;
    return cred && `${cred} ${request}`;
  }

  /** The kept body for `key`, when nothing it depends on has changed since it was built. */
  get(key: string): string | undefined {
    this.sync();
    const hit = this.kept.get(key);
    if (!hit) return undefined;
    if (statusesOf(this.hub.lifecycle, hit.servers) !== hit.statuses) {
      this.kept.delete(key);
      return undefined;
    }
    return hit.body;
  }

  /**
   * Keep `body`, built from the database as it was at the last `get` (call `get` first, in the same
   * synchronous turn) and from the lifecycle's view of `servers`.
   */
  set(key: string, body: string, servers: readonly ServerRow[]): void {
    if (this.kept.size >= MAX_KEPT) this.kept.delete(this.kept.keys().next().value!);
    this.kept.set(key, { body, servers, statuses: statusesOf(this.hub.lifecycle, servers) });
  }

  private sync(): void {
    const version = this.hub.store.dataVersion();
    const config = this.hub.config();
    if (version !== this.version || config !== this.config) {
      this.kept.clear();
      this.version = version;
      this.config = config;
    }
  }
}

function statusesOf(lifecycle: Lifecycle, servers: readonly ServerRow[]): string {
  let out = "";
  for (const s of servers) out += `${lifecycle.status(s)},`;
  return out;
}
