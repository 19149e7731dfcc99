// The connection every table group's methods share: WAL + synchronous=NORMAL (every committed transaction
// survives a crash of this process, kill -9; only a power cut can lose the last few), foreign keys on,
// numbered migrations, cached prepared statements, transactions.
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { MIGRATIONS } from "./migrations.js";

export class StoreBase {
  readonly db: Database.Database;
  /**
   * Prepared statements by SQL text. Preparing costs more than running most of these queries (it was 16 % of
   * the hub's CPU under API load), so each statement is prepared once and reused; the texts are fixed strings
   * or come from a small set of combinations (listUsers' filters, updateServer's columns).
   */
  private readonly statements = new Map<string, Database.Statement>();

  constructor(file: string) {
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("foreign_keys = ON");
    this.db.pragma("busy_timeout = 5000");
    this.migrate();
  }

  private migrate(): void {
    const current = this.db.pragma("user_version", { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `the database was written by a newer slicehub (schema ${current}, this one knows ${MIGRATIONS.length}); refusing to touch it`,
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  get schemaVersion(): number {
    return this.db.pragma("user_version", { simple: true }) as number;
  }

  /** The prepared statement for this SQL, prepared on first use. */
  protected stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /**
   * A value that changes whenever the database may have: this connection's row changes (total_changes) and
   * commits by other connections (data_version), e.g. a `slicehub` command run beside the daemon. Replies
   * built from the database can be kept while it stays the same.
   */
  dataVersion(): string {
    const [mine, others] = this.stmt("SELECT total_changes(), data_version FROM pragma_data_version").raw(true).get() as [number, number];
    return `${mine}.${others}`;
  }

  close(): void {
    this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}

/**
 * What a table group's mixin extends (TypeScript's mixin constructor shape); `Needs` names the methods of
 * groups applied before it that it calls.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StoreClass<Needs = object> = new (...args: any[]) => StoreBase & Needs;
