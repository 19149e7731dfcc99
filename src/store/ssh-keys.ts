// Users' SSH public keys (migration 4). Rows hold only what src/ssh/keys.ts checked: the type, the base64
// blob, a sanitised comment, the fingerprint and the size. sshd reads them through main/authorized-keys.ts,
// which opens the file read-only with the queries below (readSshKeys), so the schema is used in one place.
import type Database from "better-sqlite3";
import type { StoreClass } from "./base.js";

export interface SshKeyRow {
  id: number;
  user_id: number;
  algorithm: string;
  /** base64 blob */
  key: string;
  comment: string;
  fingerprint: string;
  bits: number | null;
  created: number;
  last_used: number | null;
}

const COLUMNS = "id, user_id, algorithm, key, comment, fingerprint, bits, created, last_used";

/** The user's keys, oldest first, from any connection (the store's or a read-only one). */
export function readSshKeys(db: Database.Database, userId: number): SshKeyRow[] {
  return db.prepare(`SELECT ${COLUMNS} FROM ssh_keys WHERE user_id = ? ORDER BY id`).all(userId) as SshKeyRow[];
}

export function SshKeys<B extends StoreClass>(Base: B) {
  return class SshKeys extends Base {
    listSshKeys(userId: number): SshKeyRow[] {
      return this.stmt(`SELECT ${COLUMNS} FROM ssh_keys WHERE user_id = ? ORDER BY id`).all(userId) as SshKeyRow[];
    }

    getSshKey(userId: number, id: number): SshKeyRow | undefined {
      return this.stmt(`SELECT ${COLUMNS} FROM ssh_keys WHERE user_id = ? AND id = ?`).get(userId, id) as SshKeyRow | undefined;
    }

    /** The new row, or undefined when this user already has a key with this fingerprint. */
    addSshKey(k: { userId: number; algorithm: string; key: string; comment: string; fingerprint: string; bits: number | null }): SshKeyRow | undefined {
      const r = this.stmt(
          `INSERT INTO ssh_keys (user_id, algorithm, key, comment, fingerprint, bits, created) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (user_id, fingerprint) DO NOTHING`,
        )
        .run(k.userId, k.algorithm, k.key, k.comment, k.fingerprint, k.bits, Date.now());
      return r.changes ? this.getSshKey(k.userId, Number(r.lastInsertRowid)) : undefined;
    }

    /** The removed row, or undefined when the user has no key with this id. */
    removeSshKey(userId: number, id: number): SshKeyRow | undefined {
      const row = this.getSshKey(userId, id);
      if (row) this.stmt("DELETE FROM ssh_keys WHERE user_id = ? AND id = ?").run(userId, id);
      return row;
    }

    /** Records a login with this key (from sshd's log) unless a later one is recorded; false when nothing changed (no such key, or an older login). */
    markSshKeyUsed(userId: number, fingerprint: string, at: Date): boolean {
      return (
        this.stmt("UPDATE ssh_keys SET last_used = ? WHERE user_id = ? AND fingerprint = ? AND (last_used IS NULL OR last_used < ?)")
          .run(at.getTime(), userId, fingerprint, at.getTime()).changes > 0
      );
    }
  };
}
