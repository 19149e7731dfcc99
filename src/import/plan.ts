// What `slicehub import jupyterhub` does with a JupyterHub database, decided against the store before anything
// is written (planImport), then done in the caller's transaction (applyPlan). The plan is what the dry run
// prints, so the dry run says exactly what the real run does.
import { decideAccess, GOOGLE_MAIL, isGoogleIssuer, normaliseUserName, userNameForEmail } from "../../auth/decide.js";
import type { Config } from "../config/schema.js";
import { SERVER_NAME } from "../names.js";
import type { Store } from "../store/store.js";
import type { JhDatabase, JhUser } from "./jupyterhub-db.js";

export type UserAction = "create" | "update" | "unchanged" | "skip";

export interface ServerPlan {
  name: string;
  action: "create" | "exists" | "skip";
  why?: string;
  lastActivity: number | null;
}

export interface UserPlan {
  /** The name in JupyterHub. */
  from: string;
  /** The slicehub user name (undefined when none can be made). */
  name?: string;
  /** The email whose first verified login takes the user; undefined when none is known. */
  email?: string;
  action: UserAction;
  /** Why it is skipped. */
  why?: string;
  /** What an update changes. */
  changes: string[];
  admin: boolean;
  groups: string[];
  note: string;
  servers: ServerPlan[];
  /** What happens when the person logs in. */
  login: string;
  warnings: string[];
  /** For applyPlan. */
  userId?: number;
  setAdmin?: boolean;
  lastActivity: number | null;
  importedAt: number;
  /** The import record to write, when it changes. */
  record?: { source: string; source_name: string; email: string | null };
}

export interface ImportPlan {
  source: string;
  /** How names are made, in words. */
  nameRule: string;
  users: UserPlan[];
  counts: Record<UserAction, number>;
  groups: { name: string; configName?: string; members: string[] }[];
  notCarried: JhDatabase["notCarried"];
  /** Config keys to add by hand (the import never edits the config file), or undefined when nothing is missing. */
  configSnippet?: Record<string, unknown>;
  warnings: string[];
}

export interface PlanOptions {
  /** Names that are not emails become name@DOMAIN. */
  emailDomain?: string;
  now: number;
}

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const GROUP_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * The claims the person's login is expected to carry: a verified email, and from Google the Workspace's `hd`
 * (assumed to be the email's domain; Gmail accounts have none).
 */
function expectedClaims(issuer: string, email: string) {
  const domain = email.slice(email.lastIndexOf("@") + 1);
  const hd = isGoogleIssuer(issuer) && !GOOGLE_MAIL.has(domain) ? domain : undefined;
  return { iss: issuer, sub: "import", email, email_verified: true, hd };
}

/** A JupyterHub group's name as a config group name (lower-case a-z, 0-9, '_', '-'), or undefined. */
export function configGroupName(name: string): string | undefined {
  const g = name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 64)
    .replace(/-+$/, "");
  return GROUP_NAME.test(g) ? g : undefined;
}

export function importNote(source: string, at: number, groups: readonly string[]): string {
  return `Imported from ${source} on ${day(at)}; ${groups.length ? `groups: ${groups.join(", ")}` : "no groups"}`;
}

/** The email a JupyterHub user is known by: their name when it is one, else name@DOMAIN with --email-domain. */
function emailOf(u: JhUser, domain: string | undefined): string | undefined {
  const name = u.name.trim().toLowerCase();
  if (EMAIL.test(name)) return name;
  if (domain && !name.includes("@") && /^[^\s@]+$/.test(name)) return `${name}@${domain}`;
  return undefined;
}

export function planImport(store: Store, cfg: Config, jh: JhDatabase, opts: PlanOptions): ImportPlan {
  const auth = cfg.auth;
  const warnings: string[] = [];
  const rule = auth.kind === "oidc" ? auth.username : "email_local";
  const byEmail: "email_local" | "email" = typeof rule === "string" ? rule : "email_local";
  let nameRule =
    byEmail === "email_local" ? 'the email\'s local part (auth.username "email_local")' : 'the whole email (auth.username "email": ada-at-example.org)';
  if (auth.kind === "dev") nameRule += ", the default of OIDC login (the config uses the dev login)";
  if (typeof rule !== "string") {
    nameRule = 'the email\'s local part (auth.username takes names from the claim "' + rule.claim + '", which the import cannot know)';
    warnings.push(`auth.username names users by the claim "${rule.claim}": imported users are named by their email's local part instead, and their first verified login with that email takes that user whatever the claim says`);
  }
  const limit = cfg.spawner.named_servers.limit;

  // Names and emails first, so that two JupyterHub users who would become one slicehub user are both refused.
  const candidates = jh.users.map((u) => {
    const email = emailOf(u, opts.emailDomain);
    const name = email ? userNameForEmail(byEmail, email) : normaliseUserName(u.name);
    return { u, email, name };
  });
  const byName = new Map<string, string[]>();
  const byMail = new Map<string, string[]>();
  for (const c of candidates) {
    if (c.name) byName.set(c.name, [...(byName.get(c.name) ?? []), c.u.name]);
    if (c.email) byMail.set(c.email, [...(byMail.get(c.email) ?? []), c.u.name]);
  }
  const identities = store.listIdentities();
  const identityByEmail = new Map(identities.filter((i) => i.email).map((i) => [i.email!.toLowerCase(), i]));

  const users: UserPlan[] = [];
  for (const { u, email, name } of candidates) {
    const servers: ServerPlan[] = [];
    const p: UserPlan = {
      from: u.name,
      name,
      email,
      action: "skip",
      changes: [],
      admin: u.admin,
      groups: u.groups,
      note: "",
      servers,
      login: "",
      warnings: [],
      lastActivity: u.lastActivity,
      importedAt: opts.now,
    };
    users.push(p);
    const skip = (why: string) => {
      p.action = "skip";
      p.why = why;
    };
    if (!name) {
      skip(`no valid slicehub user name can be made from ${JSON.stringify(u.name)} (names are 1–64 of a-z, 0-9, '.', '_', '-')`);
      continue;
    }
    const sameName = byName.get(name)!;
    if (sameName.length > 1) {
      skip(`${sameName.map((n) => JSON.stringify(n)).join(" and ")} would all become slicehub user ${name}; two JupyterHub users are never merged into one: rename all but one in JupyterHub first${byEmail === "email_local" && email ? ', or name users by the whole email (auth.username "email")' : ""}`);
      continue;
    }
    if (email && byMail.get(email)!.length > 1) {
      skip(`${byMail.get(email)!.map((n) => JSON.stringify(n)).join(" and ")} all have the email ${email}; one email can take only one user`);
      continue;
    }

    const existing = store.getUser(name);
    const identity = existing ? store.getIdentityOfUser(existing.id) : undefined;
    const record = existing ? store.getImportedUser(existing.id) : undefined;
    const mailRecord = email ? store.getImportByEmail(email) : undefined;
    if (mailRecord && mailRecord.user_id !== existing?.id) {
      skip(`${email} is already the login email of slicehub user ${store.getUserById(mailRecord.user_id)?.name ?? mailRecord.user_id} (imported from ${mailRecord.source_name})`);
      continue;
    }
    const loggedIn = email ? identityByEmail.get(email) : undefined;
    if (loggedIn && loggedIn.user_id !== existing?.id) {
      skip(`${email} already logs in here as slicehub user ${store.getUserById(loggedIn.user_id)?.name ?? loggedIn.user_id}; not imported a second time`);
      continue;
    }
    let adopt = false;
    if (existing) {
      if (record && record.source_name !== u.name) {
        skip(`slicehub user ${name} was imported from JupyterHub user ${JSON.stringify(record.source_name)}; not merged with ${JSON.stringify(u.name)}`);
        continue;
      }
      if (!record) {
        if (identity && email && identity.email?.toLowerCase() === email) adopt = true;
        else if (identity) {
          skip(`slicehub user ${name} already belongs to another account (${identity.email ?? "no email"} at ${identity.issuer}); JupyterHub's ${JSON.stringify(u.name)} is not merged into it`);
          continue;
        } else {
          skip(`slicehub user ${name} exists already without a login identity (made through the API, "slicehub token --create" or the dev login); the import does not take it over: delete it first (DELETE /hub/api/users/${name}) to import it`);
          continue;
        }
      }
    } else {
      const culled = store.getCulledUser(name);
      if (culled) {
        skip(`the name ${name} belonged to a user the culler deleted for inactivity; it is kept for that account (${culled.issuer})`);
        continue;
      }
    }

    p.importedAt = record?.imported ?? opts.now;
    p.note = importNote(`JupyterHub ${jh.version}`, p.importedAt, u.groups);
    const bindEmail = identity ? (record?.email ?? email ?? null) : (email ?? null);
    const wantRecord = { source: jh.source, source_name: u.name, email: bindEmail };

    // Named servers: JupyterHub's default server "" is every slicehub user's default server, which its first
    // start makes; only named ones become rows, stopped.
    let named = existing ? store.listServers(existing.id).filter((s) => s.name !== "").length : 0;
    for (const s of u.servers) {
      if (s.running) p.warnings.push(`JupyterHub records ${s.name ? `server ${JSON.stringify(s.name)}` : "the default server"} as running: it is imported stopped (its process, if any, is JupyterHub's: stop it there)`);
      if (!s.name) continue;
      if (!SERVER_NAME.test(s.name)) {
        const like = normaliseUserName(s.name);
        servers.push({ name: s.name, action: "skip", lastActivity: s.lastActivity, why: `not a server name slicehub allows (1–64 of a-z, 0-9, '.', '_', '-'); its owner can make it again${like ? ` as ${JSON.stringify(like)}` : ""}` });
        continue;
      }
      const there = existing ? store.getServer(existing.id, s.name) : undefined;
      servers.push({ name: s.name, action: there ? "exists" : "create", lastActivity: s.lastActivity });
      if (!there) named++;
    }
    if (named > 0 && limit === 0) p.warnings.push(`named servers are disabled here (spawner.named_servers.limit is 0): its ${named} named server${named === 1 ? "" : "s"} cannot start until you raise the limit`);
    else if (named > limit) p.warnings.push(`${named} named servers, more than spawner.named_servers.limit (${limit}): all are imported, at most ${limit} can run at once and no new one can be made`);

    if (!existing) {
      p.action = "create";
      p.setAdmin = u.admin;
      p.record = wantRecord;
    } else {
      p.userId = existing.id;
      p.action = "update";
      if (existing.note !== p.note) p.changes.push("note");
      // A user someone logs in as has admin rights from the config at every login; only a user still
      // waiting for their first login takes JupyterHub's flag.
      if (!identity && !!existing.admin !== u.admin) {
        p.setAdmin = u.admin;
        p.changes.push(u.admin ? "admin" : "no longer admin");
      }
      if (identity && !!existing.admin !== u.admin) p.warnings.push(`admin in JupyterHub: ${u.admin ? "yes" : "no"}, here: ${existing.admin ? "yes" : "no"}; left as it is (auth.admin_users decides at every login)`);
      if (u.lastActivity !== null && (existing.last_activity ?? 0) < u.lastActivity) p.changes.push("last activity");
      if (!record || record.source !== wantRecord.source || record.email !== wantRecord.email) {
        p.record = wantRecord;
        p.changes.push(!record ? `recorded as imported${adopt ? ` (${email} logs in as it already)` : ""}` : record.email !== wantRecord.email ? `login email ${wantRecord.email ?? "none"}` : "source");
      }
      for (const s of servers) if (s.action === "create") p.changes.push(`server ${s.name}`);
      if (!p.changes.length) p.action = "unchanged";
    }
    p.login = loginOutcome(cfg, p, identity !== undefined);
  }

  const counts: Record<UserAction, number> = { create: 0, update: 0, unchanged: 0, skip: 0 };
  for (const p of users) counts[p.action]++;

  // Groups become notes; for profile access they go in the config's `groups`, which the admin merges by hand.
  const kept = users.filter((p) => p.action !== "skip");
  const groups = jh.groups.map((g) => {
    const configName = configGroupName(g.name);
    const members = kept.filter((p) => p.groups.includes(g.name)).map((p) => p.name!);
    return { name: g.name, configName, members };
  });
  for (const g of groups) {
    if (!g.configName) warnings.push(`group ${JSON.stringify(g.name)} has no usable config group name; it is left out of the snippet`);
    else if (g.configName !== g.name) warnings.push(`group ${JSON.stringify(g.name)} is "${g.configName}" in the config snippet (config group names are a-z, 0-9, '_', '-')`);
  }
  if (limit === 0 && kept.some((p) => p.servers.some((s) => s.action !== "skip"))) {
    const most = Math.max(...kept.map((p) => p.servers.filter((s) => s.action !== "skip").length));
    warnings.push(`spawner.named_servers.limit is 0, so no named server can start; to use the imported ones set "spawner": {"named_servers": {"limit": ${most}}}`);
  }
  if (auth.kind === "oidc" && isGoogleIssuer(auth.issuer)) {
    warnings.push("Google login: an imported user is taken only by a verified Gmail address or a Google Workspace account; a consumer Google account with another address never takes one");
  }
  return { source: jh.source, nameRule, users, counts, groups, notCarried: jh.notCarried, configSnippet: snippet(cfg, kept, groups), warnings };
}

/** What happens when this user's person logs in, in words. */
function loginOutcome(cfg: Config, p: UserPlan, hasIdentity: boolean): string {
  const auth = cfg.auth;
  if (auth.kind === "dev") {
    const allowed = !auth.allowed_users || auth.allowed_users.includes(p.name!);
    const admin = auth.admin_users.includes(p.name!);
    if (!allowed) return `dev login as ${p.name} is refused until ${p.name} is in auth.allowed_users (see the snippet)`;
    return `dev login as ${p.name}${admin ? " (admin by auth.admin_users)" : p.admin ? "; admin only once in auth.admin_users (the hub sets admin rights from it when it starts)" : ""}`;
  }
  if (hasIdentity) return `logs in here already${p.admin ? "; admin rights follow auth.admin_users" : ""}`;
  if (!p.email) {
    return `no email known, so no login takes this user: a login whose name comes out as ${p.name} is refused (the name exists without a login identity). Import again with --email-domain DOMAIN if JupyterHub names were the local part of an address, or delete the user`;
  }
  const access = decideAccess(auth, expectedClaims(auth.issuer, p.email));
  const takes = `the first verified login of ${p.email} takes this user`;
  if (!access.ok) {
    if (access.reason === "blocked") return `${takes}, but ${p.email} is in auth.blocked_users: refused`;
    return `${takes}, once the config allows it: refused now (${p.email} is not in auth.${p.admin ? "admin_users" : "allowed_users"}; see the snippet)`;
  }
  const viaDomain = !auth.admin_users.includes(p.email) && !auth.allowed_users.includes(p.email);
  const admin = access.admin ? " as admin" : p.admin ? "; not as admin until it is in auth.admin_users (see the snippet)" : "";
  return `${takes}${viaDomain ? ` (allowed by auth.allowed_domains${isGoogleIssuer(auth.issuer) ? ", from a Google Workspace account of that domain" : ""})` : " (allowed by the config)"}${admin}`;
}

/** The config keys the admin should merge: who may log in, who is admin, and the groups. */
function snippet(cfg: Config, kept: UserPlan[], groups: ImportPlan["groups"]): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  const auth = cfg.auth;
  const admins: string[] = [];
  const allowed: string[] = [];
  if (auth.kind === "oidc") {
    for (const p of kept) {
      if (!p.email || auth.blocked_users.includes(p.email)) continue;
      if (p.admin) {
        if (!auth.admin_users.includes(p.email)) admins.push(p.email);
        continue;
      }
      const access = decideAccess(auth, expectedClaims(auth.issuer, p.email));
      if (!access.ok) allowed.push(p.email);
    }
  } else {
    for (const p of kept) {
      if (p.admin && !auth.admin_users.includes(p.name!)) admins.push(p.name!);
      if (auth.allowed_users && !auth.allowed_users.includes(p.name!)) allowed.push(p.name!);
    }
  }
  const authPart: Record<string, unknown> = {};
  if (admins.length) authPart.admin_users = [...(auth.admin_users as string[]), ...admins];
  if (allowed.length) authPart.allowed_users = [...((auth.allowed_users as string[] | undefined) ?? []), ...allowed];
  if (Object.keys(authPart).length) out.auth = authPart;
  const groupPart: Record<string, string[]> = {};
  for (const g of groups) {
    if (!g.configName || !g.members.length) continue;
    const have = cfg.groups[g.configName] ?? [];
    const merged = [...new Set([...have, ...(groupPart[g.configName] ?? []), ...g.members])];
    if (merged.length !== have.length) groupPart[g.configName] = merged;
  }
  if (Object.keys(groupPart).length) out.groups = groupPart;
  return Object.keys(out).length ? out : undefined;
}

/** Does the plan, in the caller's transaction; `progress` hears every few hundred users. */
export function applyPlan(store: Store, plan: ImportPlan, progress?: (done: number, total: number) => void): void {
  const todo = plan.users.filter((p) => p.action === "create" || p.action === "update");
  todo.forEach((p, i) => {
    let userId = p.userId;
    if (p.action === "create") {
      const row = store.createUser(p.name!, p.admin);
      if (!row) throw new Error(`user ${p.name} appeared while importing`);
      userId = row.id;
    } else if (p.setAdmin !== undefined) {
      store.setAdmin(userId!, p.setAdmin);
    }
    store.setNote(userId!, p.note);
    if (p.lastActivity !== null) store.raiseLastActivity(userId!, p.lastActivity);
    if (p.record) store.saveImportedUser({ user_id: userId!, ...p.record, imported: p.importedAt });
    for (const s of p.servers) {
      if (s.action !== "create") continue;
      const row = store.ensureServer(userId!, s.name);
      if (s.lastActivity !== null) store.updateServer(row.id, { last_activity: s.lastActivity });
    }
    if (progress && (i + 1) % 500 === 0) progress(i + 1, todo.length);
  });
}
