// OAuth clients (one per server) and single-use codes.
import { newSecret, sha256 } from "../secrets.js";
import type { StoreClass } from "./base.js";

export interface OAuthClientRow {
  id: string;
  secret_hash: string;
  redirect_uri: string;
  description: string;
  allowed_scopes: string;
  server_id: number | null;
}

export interface OAuthCodeRow {
  client_id: string;
  user_id: number;
  scopes: string;
  redirect_uri: string;
  session_id: string | null;
  code_challenge: string | null;
  expires_at: number;
}

export function OAuth<B extends StoreClass>(Base: B) {
  return class OAuth extends Base {
    /**
     * Registers (or re-keys) a server's OAuth client. A client id already registered to another server is a
     * clash: refused, so one server can never take over another's login or, when stopped, revoke its tokens.
     */
    upsertOAuthClient(c: OAuthClientRow): void {
      const existing = this.getOAuthClient(c.id);
      if (existing && existing.server_id !== c.server_id) throw new Error(`OAuth client id ${c.id} already belongs to another server`);
      this.stmt(
          `INSERT INTO oauth_clients (id, secret_hash, redirect_uri, description, allowed_scopes, server_id)
           VALUES (@id, @secret_hash, @redirect_uri, @description, @allowed_scopes, @server_id)
           ON CONFLICT(id) DO UPDATE SET secret_hash = excluded.secret_hash, redirect_uri = excluded.redirect_uri,
             description = excluded.description, allowed_scopes = excluded.allowed_scopes, server_id = excluded.server_id`,
        )
        .run(c);
    }

    getOAuthClient(id: string): OAuthClientRow | undefined {
      return this.stmt("SELECT * FROM oauth_clients WHERE id = ?").get(id) as OAuthClientRow | undefined;
    }

    deleteOAuthClient(id: string): void {
      this.stmt("DELETE FROM oauth_clients WHERE id = ?").run(id);
    }

    /** Every client registered for this server, and by cascade the OAuth tokens and codes issued through them. */
    deleteServerOAuthClients(serverId: number): void {
      this.stmt("DELETE FROM oauth_clients WHERE server_id = ?").run(serverId);
    }

    /**
     * A new single-use code. A user holds at most `perUser` live ones (a browser needs one per server it
     * opens, for a few seconds): expired ones and then the oldest go, so a script hammering /authorize cannot
     * grow the table.
     */
    createOAuthCode(c: OAuthCodeRow, perUser = 20): string {
      const code = newSecret();
      this.stmt(
          `DELETE FROM oauth_codes WHERE user_id = @user AND (expires_at <= @now OR hash IN
             (SELECT hash FROM oauth_codes WHERE user_id = @user ORDER BY expires_at DESC LIMIT -1 OFFSET @keep))`,
        )
        .run({ user: c.user_id, now: Date.now(), keep: perUser - 1 });
      this.stmt(
          `INSERT INTO oauth_codes (hash, client_id, user_id, scopes, redirect_uri, session_id, code_challenge, expires_at)
           VALUES (@hash, @client_id, @user_id, @scopes, @redirect_uri, @session_id, @code_challenge, @expires_at)`,
        )
        .run({ ...c, hash: sha256(code) });
      return code;
    }

    /** Single use: the code is deleted whether or not it is still valid. */
    consumeOAuthCode(code: string): OAuthCodeRow | undefined {
      return this.transaction(() => {
        const hash = sha256(code);
        const row = this.stmt("SELECT * FROM oauth_codes WHERE hash = ?").get(hash) as (OAuthCodeRow & { hash: string }) | undefined;
        if (!row) return undefined;
        this.stmt("DELETE FROM oauth_codes WHERE hash = ?").run(hash);
        return row.expires_at > Date.now() ? row : undefined;
      });
    }
  };
}
