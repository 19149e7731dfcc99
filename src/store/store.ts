// The hub's state in one SQLite file: the connection, migrations and transactions in base.ts, and the
// methods grouped by the tables they serve, one file a group, composed here into one Store. All multi-row
// changes run in a transaction so the file is always consistent.
import { StoreBase } from "./base.js";
import { Culling } from "./cull.js";
import { SpawnEvents } from "./events.js";
import { HubSecrets } from "./hub-secrets.js";
import { Identities } from "./identities.js";
import { Imports } from "./imports.js";
import { OAuth } from "./oauth.js";
import { Servers } from "./servers.js";
import { Sessions, type SessionRow } from "./sessions.js";
import { SshKeys } from "./ssh-keys.js";
import { Tokens } from "./tokens.js";
import { Users } from "./users.js";

export type { CulledUserRow, UserActivityRow } from "./cull.js";
export type { IdentityRow } from "./identities.js";
export type { ImportedUserRow } from "./imports.js";
export type { OAuthClientRow, OAuthCodeRow } from "./oauth.js";
export type { ServerRow, ServerState } from "./servers.js";
export type { SessionRow } from "./sessions.js";
export type { SshKeyRow } from "./ssh-keys.js";
export type { TokenKind, TokenRow } from "./tokens.js";
export type { UserQuery, UserRow } from "./users.js";

// Later groups may use earlier ones' methods (sessions end their tokens; the purge ends sessions).
export class Store extends Imports(Culling(SshKeys(HubSecrets(SpawnEvents(Identities(Sessions(OAuth(Tokens(Servers(Users(StoreBase))))))))))) {
  /** Remove expired codes, tokens and sessions (and the OAuth tokens bound to those sessions). */
  purgeExpired(session: { idleMs: number; maxAgeMs: number }): void {
    const now = Date.now();
    const stale = this.stmt("SELECT hash, public_id FROM sessions WHERE last_seen < ? OR created < ?")
      .all(now - session.idleMs, now - session.maxAgeMs) as Pick<SessionRow, "hash" | "public_id">[];
    for (const s of stale) this.deleteSession(s);
    this.stmt("DELETE FROM oauth_codes WHERE expires_at <= ?").run(now);
    this.stmt("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= ?").run(now);
  }
}
