// Browser sessions (the cookie value is a secret; only its hash is stored), and ending a user's sessions and
// tokens when their access ends.
import { newHexId, newSecret, sha256 } from "../secrets.js";
import type { StoreClass } from "./base.js";

export interface SessionRow {
  hash: string;
  public_id: string;
  user_id: number;
  csrf: string;
  created: number;
  last_seen: number;
}

export function Sessions<B extends StoreClass<{ deleteTokensForSession(sessionPublicId: string): number }>>(Base: B) {
  return class Sessions extends Base {
    createSession(userId: number): { cookie: string; session: SessionRow } {
      const cookie = newSecret();
      const now = Date.now();
      const session: SessionRow = { hash: sha256(cookie), public_id: newHexId(), user_id: userId, csrf: newSecret(), created: now, last_seen: now };
      this.stmt("INSERT INTO sessions (hash, public_id, user_id, csrf, created, last_seen) VALUES (@hash, @public_id, @user_id, @csrf, @created, @last_seen)")
        .run(session);
      return { cookie, session };
    }

    /** The live session for a cookie value; expired ones are deleted on sight. */
    findSession(cookie: string, idleMs: number, maxAgeMs: number): SessionRow | undefined {
      const hash = sha256(cookie);
      const row = this.stmt("SELECT * FROM sessions WHERE hash = ?").get(hash) as SessionRow | undefined;
      if (!row) return undefined;
      const now = Date.now();
      if (now - row.last_seen > idleMs || now - row.created > maxAgeMs) {
        this.deleteSession(row);
        return undefined;
      }
      // Write at most once a minute per session: this runs on every hub request.
      if (now - row.last_seen > 60_000) this.stmt("UPDATE sessions SET last_seen = ? WHERE hash = ?").run(now, hash);
      return row;
    }

    /** Ends a session and revokes the OAuth tokens single-user servers got through it. */
    deleteSession(s: Pick<SessionRow, "hash" | "public_id">): void {
      this.transaction(() => {
        this.stmt("DELETE FROM sessions WHERE hash = ?").run(s.hash);
        this.deleteTokensForSession(s.public_id);
      });
    }

    /** Ends every browser session and revokes every API and OAuth token of a user (server tokens stay). */
    revokeUserAccess(userId: number): { sessions: number; tokens: number } {
      return this.transaction(() => {
        const sessions = this.stmt("DELETE FROM sessions WHERE user_id = ?").run(userId).changes;
        const tokens = this.stmt("DELETE FROM api_tokens WHERE user_id = ? AND kind != 'server'").run(userId).changes;
        return { sessions, tokens };
      });
    }
  };
}
