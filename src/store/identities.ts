// Who a user is at the identity provider.
import type { StoreClass } from "./base.js";

export interface IdentityRow {
  issuer: string;
  subject: string;
  user_id: number;
  email: string | null;
  /** JSON of the claims access decisions use: email, email_verified, hd. */
  claims: string;
  created: number;
  last_login: number;
}

export function Identities<B extends StoreClass>(Base: B) {
  return class Identities extends Base {
    getIdentity(issuer: string, subject: string): IdentityRow | undefined {
      return this.stmt("SELECT * FROM identities WHERE issuer = ? AND subject = ?").get(issuer, subject) as IdentityRow | undefined;
    }

    getIdentityOfUser(userId: number): IdentityRow | undefined {
      return this.stmt("SELECT * FROM identities WHERE user_id = ?").get(userId) as IdentityRow | undefined;
    }

    /** Records a first login; updates email and time on later ones. */
    saveIdentity(i: { issuer: string; subject: string; userId: number; email: string | null; claims: object }): void {
      const now = Date.now();
      this.stmt(
          `INSERT INTO identities (issuer, subject, user_id, email, claims, created, last_login) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(issuer, subject) DO UPDATE SET email = excluded.email, claims = excluded.claims, last_login = excluded.last_login`,
        )
        .run(i.issuer, i.subject, i.userId, i.email, JSON.stringify(i.claims), now, now);
    }

    listIdentities(): (IdentityRow & { user_name: string })[] {
      return this.stmt("SELECT i.*, u.name AS user_name FROM identities i JOIN users u ON u.id = i.user_id").all() as (IdentityRow & { user_name: string })[];
    }
  };
}
