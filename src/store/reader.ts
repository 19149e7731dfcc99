// Read-only access to the hub's database for the privileged helper: it asks only whether a hub user exists,
// opens the file read-only (never migrating or writing: the web process owns it) and closes it again, so an
// edit of the schema is one place, not raw SQL in the helper.
import { join } from "node:path";
import Database from "better-sqlite3";

/** The database inside a state directory. */
export function databaseFile(stateDir: string): string {
  return join(stateDir, "slicehub.sqlite");
}

export function hubUserExists(file: string, name: string): boolean {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare("SELECT 1 FROM users WHERE name = ?").get(name) !== undefined;
  } finally {
    db.close();
  }
}
