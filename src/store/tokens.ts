// API tokens; only SHA-256 hashes are stored.
import { newSecret, sha256 } from "../secrets.js";
import type { StoreClass } from "./base.js";

export type TokenKind = "api" | "server" | "oauth";

export interface TokenRow {
  id: number;
  user_id: number;
  prefix: string;
  kind: TokenKind;
  note: string;
  scopes: string;
  server_id: number | null;
  oauth_client_id: string | null;
  session_id: string | null;
  created: number;
  expires_at: number | null;
  last_activity: number | null;
}

const TOKEN_COLUMNS =
  "id, user_id, prefix, kind, note, scopes, server_id, oauth_client_id, session_id, created, expires_at, last_activity";

export function Tokens<B extends StoreClass>(Base: B) {
  return class Tokens extends Base {
    createToken(t: {
      userId: number;
      kind: TokenKind;
      scopes: string[];
      note?: string;
      serverId?: number | null;
      oauthClientId?: string | null;
      sessionId?: string | null;
      expiresInS?: number | null;
    }): { token: string; row: TokenRow } {
      const token = newSecret();
      const now = Date.now();
      const r = this.stmt(
          `INSERT INTO api_tokens (user_id, hash, prefix, kind, note, scopes, server_id, oauth_client_id, session_id, created, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          t.userId,
          sha256(token),
          token.slice(0, 4),
          t.kind,
          t.note ?? "",
          JSON.stringify(t.scopes),
          t.serverId ?? null,
          t.oauthClientId ?? null,
          t.sessionId ?? null,
          now,
          t.expiresInS ? now + t.expiresInS * 1000 : null,
        );
      return { token, row: this.getToken(Number(r.lastInsertRowid))! };
    }

    getToken(id: number): TokenRow | undefined {
      return this.stmt(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = ?`).get(id) as TokenRow | undefined;
    }

    /** The live token with this value, or undefined (unknown, revoked or expired). */
    findToken(token: string): TokenRow | undefined {
      return this.stmt(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE hash = ? AND (expires_at IS NULL OR expires_at > ?)`)
        .get(sha256(token), Date.now()) as TokenRow | undefined;
    }

    listTokens(userId: number): TokenRow[] {
      return this.stmt(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY id`)
        .all(userId, Date.now()) as TokenRow[];
    }

    deleteToken(id: number): void {
      this.stmt("DELETE FROM api_tokens WHERE id = ?").run(id);
    }

    /** The server's own API token (not the OAuth tokens browsers got for it). */
    deleteServerTokens(serverId: number): void {
      this.stmt("DELETE FROM api_tokens WHERE server_id = ? AND kind = 'server'").run(serverId);
    }

    deleteTokensForSession(sessionPublicId: string): number {
      return this.stmt("DELETE FROM api_tokens WHERE session_id = ?").run(sessionPublicId).changes;
    }

    touchToken(id: number, at: number): void {
      this.stmt("UPDATE api_tokens SET last_activity = ? WHERE id = ?").run(at, id);
    }
  };
}
