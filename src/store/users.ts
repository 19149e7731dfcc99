// Hub users: names, admin and blocked flags, activity.
import type { StoreClass } from "./base.js";

export interface UserRow {
  id: number;
  name: string;
  admin: number;
  blocked: number;
  created: number;
  last_activity: number | null;
  /** An admin's note on the user (the admin page shows it), e.g. what `slicehub import jupyterhub` carried. */
  note: string | null;
}

export interface UserQuery {
  state?: "active" | "ready" | "inactive";
  nameFilter?: string;
  offset: number;
  limit: number;
}

export function Users<B extends StoreClass>(Base: B) {
  return class Users extends Base {
    getUser(name: string): UserRow | undefined {
      return this.stmt("SELECT * FROM users WHERE name = ?").get(name) as UserRow | undefined;
    }

    getUserById(id: number): UserRow | undefined {
      return this.stmt("SELECT * FROM users WHERE id = ?").get(id) as UserRow | undefined;
    }

    /** Create the user if missing; admin follows the given flag when it is defined. */
    ensureUser(name: string, admin?: boolean): UserRow {
      this.stmt("INSERT INTO users (name, admin, created) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING")
        .run(name, admin ? 1 : 0, Date.now());
      if (admin !== undefined) this.stmt("UPDATE users SET admin = ? WHERE name = ?").run(admin ? 1 : 0, name);
      return this.getUser(name)!;
    }

    createUser(name: string, admin: boolean): UserRow | undefined {
      const r = this.stmt("INSERT INTO users (name, admin, created) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING")
        .run(name, admin ? 1 : 0, Date.now());
      return r.changes ? this.getUser(name) : undefined;
    }

    deleteUser(id: number): void {
      this.stmt("DELETE FROM users WHERE id = ?").run(id);
    }

    private userFilter(q: Omit<UserQuery, "offset" | "limit">): { where: string; args: unknown[] } {
      const clauses: string[] = [];
      const args: unknown[] = [];
      if (q.nameFilter) {
        clauses.push("instr(u.name, ?) > 0");
        args.push(q.nameFilter);
      }
      if (q.state === "active") clauses.push("EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.state != 'stopped')");
      if (q.state === "ready") clauses.push("EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.state = 'running')");
      if (q.state === "inactive") clauses.push("NOT EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.state != 'stopped')");
      return { where: clauses.length ? `WHERE ${clauses.join(" AND ")}` : "", args };
    }

    listUsers(q: UserQuery): { users: UserRow[]; total: number } {
      return { users: this.pageOfUsers(q), total: this.countUsers(q) };
    }

    /** One page of the users the query matches, by id. */
    pageOfUsers(q: UserQuery): UserRow[] {
      const { where, args } = this.userFilter(q);
      return this.stmt(`SELECT u.* FROM users u ${where} ORDER BY u.id LIMIT ? OFFSET ?`).all(...args, q.limit, q.offset) as UserRow[];
    }

    /** How many users the query matches (what a paginated list reports as its total). */
    countUsers(q: Omit<UserQuery, "offset" | "limit">): number {
      const { where, args } = this.userFilter(q);
      return (this.stmt(`SELECT count(*) AS n FROM users u ${where}`).get(...args) as { n: number }).n;
    }

    /** Activity only ever moves forward. */
    touchUser(id: number, at: number): void {
      this.stmt("UPDATE users SET last_activity = ? WHERE id = ? AND (last_activity IS NULL OR last_activity < ?)").run(at, id, at);
    }

    setBlocked(userId: number, blocked: boolean): void {
      this.stmt("UPDATE users SET blocked = ? WHERE id = ?").run(blocked ? 1 : 0, userId);
    }

    setAdmin(userId: number, admin: boolean): void {
      this.stmt("UPDATE users SET admin = ? WHERE id = ?").run(admin ? 1 : 0, userId);
    }

    allUsers(): UserRow[] {
      return this.stmt("SELECT * FROM users ORDER BY id").all() as UserRow[];
    }
  };
}
