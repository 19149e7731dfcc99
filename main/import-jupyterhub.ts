// `slicehub import jupyterhub SQLITE_FILE`: users, admins, groups (as notes) and named servers from a JupyterHub
// 3.x–5.x database into the hub's store. The JupyterHub file is only read (src/import/jupyterhub-db.ts); what
// happens is planned against the store first (src/import/plan.ts) and printed, then done in ONE transaction.
//
// The hub may be running meanwhile: the store is SQLite in WAL mode, the import is one write transaction (the
// hub's readers see all of it or none, its writers wait for it, as they do for `slicehub token`), and nothing
// the hub holds in memory goes stale (users and servers are read from the store per request; imported servers
// are stopped). So the state lock, which would refuse while the hub runs, is not taken.
//
// A dry run plans against a copy of the store (SQLite's online backup into a private temporary directory, so
// even the schema upgrade happens only there) and changes nothing.
import { chownSync, existsSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import type { Config } from "../src/config/schema.js";
import { ImportError, readJupyterhubDb } from "../src/import/jupyterhub-db.js";
import { applyPlan, planImport, type ImportPlan, type UserPlan } from "../src/import/plan.js";
import { Store } from "../src/store/store.js";
import { databaseOwner } from "./backup.js";
import { databasePath } from "./daemon.js";

export { ImportError } from "../src/import/jupyterhub-db.js";

export interface ImportOptions {
  cfg: Config;
  configPath: string;
  file: string;
  dryRun: boolean;
  emailDomain?: string;
  json: boolean;
  /** Lines of the report (stdout). */
  say: (line: string) => void;
  /** Progress (stderr). */
  progress: (line: string) => void;
  now?: number;
}

export interface ImportResult {
  plan: ImportPlan;
  dryRun: boolean;
  /** Whether the store was written. */
  changed: boolean;
}

/** What --email-domain accepts: a domain name like example.org. */
export const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export async function importJupyterhub(o: ImportOptions): Promise<ImportResult> {
  const now = o.now ?? Date.now();
  const emailDomain = o.emailDomain?.toLowerCase();
  if (emailDomain !== undefined && !DOMAIN.test(emailDomain)) throw new ImportError(`--email-domain ${o.emailDomain} is not a domain name like example.org`);
  const file = resolve(o.file);
  const target = databasePath(o.cfg);
  if (existsSync(target) && existsSync(file) && realpathSync(target) === realpathSync(file)) throw new ImportError(`${file} is slicehub's own database`);

  o.progress(`reading ${file} (read-only)…`);
  const jh = readJupyterhubDb(file);
  const named = jh.users.reduce((n, u) => n + u.servers.filter((s) => s.name).length, 0);
  const header = `${jh.source} at ${file}: ${plural(jh.users.length, "user")}, ${plural(jh.groups.length, "group")}, ${plural(named, "named server")}`;

  let store: Store;
  let scratch: string | undefined;
  const created = { stateDir: !existsSync(o.cfg.state_dir), db: !existsSync(target) };
  try {
    if (o.dryRun) {
      if (created.db) store = new Store(":memory:");
      else {
        // A private copy, so that not even the schema upgrade to this slicehub's version touches the store. Opened
        // read-write as `slicehub backup` does: a read-only connection would leave a -wal and -shm behind (made
        // by root, when run as root, which the hub could then not open); this one removes them when it is the
        // last to close.
        scratch = mkdtempSync(join(tmpdir(), "slicehub-import-"));
        const copy = join(scratch, "slicehub.sqlite");
        const live = new Database(target, { fileMustExist: true, timeout: 5000 });
        try {
          await live.backup(copy);
        } finally {
          live.close();
        }
        store = new Store(copy);
      }
    } else {
      store = new Store(target);
    }
  } catch (err) {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    throw new ImportError(`cannot open slicehub's database ${target}: ${(err as Error).message}`);
  }

  let plan: ImportPlan;
  let changed = false;
  try {
    plan = store.transaction(() => {
      const p = planImport(store, o.cfg, jh, { emailDomain, now });
      if (!o.dryRun && (p.counts.create || p.counts.update)) {
        const total = p.counts.create + p.counts.update;
        if (total >= 500) o.progress(`importing ${plural(total, "user")} in one transaction…`);
        applyPlan(store, p, (done, all) => o.progress(`  ${done} of ${all} users`));
        changed = true;
      }
      return p;
    });
  } catch (err) {
    // The transaction rolled back: nothing of this run is in the store.
    throw new ImportError(`nothing was imported (the transaction was rolled back): ${(err as Error).message}`);
  } finally {
    store.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
  if (!o.dryRun && process.getuid?.() === 0 && (created.db || created.stateDir)) {
    // Made as root: hand them to whoever runs the hub, or the hub could not write its own database.
    const who = await databaseOwner(o.cfg);
    if (who) {
      if (created.stateDir) chownSync(o.cfg.state_dir, who.uid, who.gid);
      chownSync(target, who.uid, who.gid);
    }
  }

  if (o.json) {
    o.say(JSON.stringify({ dry_run: o.dryRun, changed, file, store: target, ...jsonPlan(plan) }, null, 2));
  } else {
    report(o, plan, { header, target, changed });
  }
  return { plan, dryRun: o.dryRun, changed };
}

function jsonPlan(plan: ImportPlan): Record<string, unknown> {
  return {
    source: plan.source,
    name_rule: plan.nameRule,
    counts: plan.counts,
    users: plan.users.map((p) => ({
      from: p.from,
      name: p.name ?? null,
      email: p.email ?? null,
      action: p.action,
      why: p.why ?? null,
      changes: p.changes,
      admin: p.admin,
      groups: p.groups,
      note: p.action === "skip" ? null : p.note,
      login: p.login || null,
      servers: p.servers.map((s) => ({ name: s.name, action: s.action, why: s.why ?? null })),
      warnings: p.warnings,
    })),
    groups: plan.groups,
    not_carried: plan.notCarried,
    config_snippet: plan.configSnippet ?? null,
    warnings: plan.warnings,
  };
}

function userLines(p: UserPlan): string[] {
  const label = p.name && p.name !== p.from ? `${p.name} (from ${p.from}${p.admin ? ", admin" : ""})` : `${p.from}${p.admin ? " (admin)" : ""}`;
  if (p.action === "skip") return [`skip ${label}: ${p.why}`];
  // Unchanged users take one line, so that a second run over many users says so briefly.
  if (p.action === "unchanged") return [`unchanged ${label}`];
  const head = p.action === "update" ? `update ${label}: ${p.changes.join(", ")}` : `${p.action} ${label}`;
  const lines = [head, `  note: ${p.note}`];
  if (p.login) lines.push(`  login: ${p.login}`);
  for (const s of p.servers) {
    lines.push(s.action === "skip" ? `  server ${JSON.stringify(s.name)}: skipped, ${s.why}` : `  server ${s.name}: ${s.action === "create" ? "create (stopped)" : "exists"}`);
  }
  for (const w of p.warnings) lines.push(`  warning: ${w}`);
  return lines;
}

function report(o: ImportOptions, plan: ImportPlan, r: { header: string; target: string; changed: boolean }): void {
  const say = o.say;
  say(r.header);
  say(`into ${r.target}${o.dryRun ? " (dry run: planned against a copy; nothing is changed)" : " (one transaction; the hub may be running)"}`);
  say(`user names: ${plan.nameRule}`);
  say("");
  for (const p of plan.users) for (const line of userLines(p)) say(line);
  if (!plan.users.length) say("(no users)");

  const n = plan.notCarried;
  say("");
  say("Not carried:");
  say(
    `  API tokens: ${plural(n.userTokens, "user token")} and ${plural(n.serviceTokens, "service token")} (JupyterHub keeps only their hashes): people make new ones on their token page (/hub/token), services get one from slicehub token`,
  );
  if (n.services.length) say(`  services: ${n.services.join(", ")} (slicehub runs no services; give each a token: slicehub token USER --scopes …)`);
  say(`  passwords and login state: auth_state of ${plural(n.authStates, "user")}; people log in through the provider in auth`);
  say(`  spawner state of ${plural(n.spawnerStates, "server")} and user_options of ${plural(n.userOptions, "server")}: imported servers start fresh with this hub's spawner and profiles`);
  say(`  roles other than admin (${n.roles.length ? n.roles.join(", ") : "none"}) and shares (${n.shares}): slicehub has admins and users only`);

  if (plan.warnings.length) {
    say("");
    for (const w of plan.warnings) say(`warning: ${w}`);
  }
  say("");
  if (plan.configSnippet) {
    say(`Add this to the config ${o.configPath} (merge by hand: the import never edits it, it may hold comments; the hub reloads it when it changes):`);
    for (const line of compactJson(plan.configSnippet).split("\n")) say(line);
  } else {
    say("The config already allows every imported user and names its admins and groups: nothing to add.");
  }
  say("");
  const c = plan.counts;
  const summary = `${c.create} to create, ${c.update} to update, ${c.unchanged} unchanged, ${c.skip} skipped`;
  if (o.dryRun) say(`dry run: ${summary}; nothing was changed. Run it again without --dry-run to import.`);
  else if (!r.changed) say(`nothing to change: ${c.unchanged} already imported as they are, ${c.skip} skipped`);
  else say(`done: created ${c.create}, updated ${c.update}, ${c.unchanged} unchanged, ${c.skip} skipped (one transaction)`);
}

/** JSON with two-space indents, but each list of plain values on one line. */
export function compactJson(v: unknown): string {
  return JSON.stringify(v, null, 2).replace(/\[\n\s*([^[\]{}]*?)\n\s*\]/g, (_, inner: string) => `[${inner.split(/,\n\s*/).join(", ")}]`);
}
