// What `slicehub import jupyterhub` recorded about the users it made (table imported_users, migration 6), and
// users' notes.
import type { StoreClass } from "./base.js";
import type { UserRow } from "./users.js";

export interface ImportedUserRow {
  user_id: number;
  /** Where the user came from: "JupyterHub 3.x (schema 651f5419b74d)". */
  source: string;
  /** The user's name there. */
  source_name: string;
  /** The (lower-case) email whose first verified login takes this user; null when none is known. */
  email: string | null;
  /** When the first import made or adopted the user (ms). */
  imported: number;
}

export function Imports<B extends StoreClass>(Base: B) {
  return class Imports extends Base {
    getImportedUser(userId: number): ImportedUserRow | undefined {
      return this.stmt("SELECT * FROM imported_users WHERE user_id = ?").get(userId) as ImportedUserRow | undefined;
    }

    getImportByEmail(email: string): ImportedUserRow | undefined {
      return this.stmt("SELECT * FROM imported_users WHERE email = ?").get(email) as ImportedUserRow | undefined;
    }

    /** Records (or updates) where a user came from; `imported` is kept from the first import. */
    saveImportedUser(r: ImportedUserRow): void {
      this.stmt(
        `INSERT INTO imported_users (user_id, source, source_name, email, imported) VALUES (@user_id, @source, @source_name, @email, @imported)
         ON CONFLICT(user_id) DO UPDATE SET source = excluded.source, source_name = excluded.source_name, email = excluded.email`,
      ).run(r);
    }

    /**
     * The imported user waiting for the first login of `email`: one the import recorded with that email that
     * no login identity is linked to yet.
     */
    importedUserAwaiting(email: string): UserRow | undefined {
      return this.stmt(
        `SELECT u.* FROM imported_users i JOIN users u ON u.id = i.user_id
         WHERE i.email = ? AND NOT EXISTS (SELECT 1 FROM identities d WHERE d.user_id = u.id)`,
      ).get(email) as UserRow | undefined;
    }

    setNote(userId: number, note: string | null): void {
      this.stmt("UPDATE users SET note = ? WHERE id = ?").run(note, userId);
    }

    /** Sets a user's last activity to `at` if it is later (activity only moves forward); true if it changed. */
    raiseLastActivity(userId: number, at: number): boolean {
      return this.stmt("UPDATE users SET last_activity = ? WHERE id = ? AND (last_activity IS NULL OR last_activity < ?)").run(at, userId, at).changes > 0;
    }
  };
}
