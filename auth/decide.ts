// Who may log in through OIDC, as whom, and with what rights. Pure functions of the config and the ID
// token's claims (plus, for resolveIdentity, what the store already knows), so every rule is tested directly.
import type { OidcAuthConfig } from "../src/config/schema.js";
import { USER_NAME } from "../src/names.js";
import type { Store, UserRow } from "../src/store/store.js";

export interface IdTokenClaims {
  iss: string;
  sub: string;
  email?: unknown;
  email_verified?: unknown;
  hd?: unknown;
  [claim: string]: unknown;
}

export type RefusalReason = "email_not_verified" | "no_email" | "blocked" | "not_allowed" | "wrong_domain" | "bad_username";
export type Refusal = { ok: false; reason: RefusalReason; message: string };
export type Access = { ok: true; admin: boolean; email: string };
export type Decision = { ok: true; username: string; admin: boolean; email: string } | Refusal;

const GOOGLE_ISSUERS = new Set(["https://accounts.google.com", "accounts.google.com"]);

/** Google's issuer (its ID tokens name it with and without the scheme). */
export function isGoogleIssuer(iss: unknown): boolean {
  return typeof iss === "string" && GOOGLE_ISSUERS.has(iss);
}

/**
 * May this person use the hub, and as admin? Independent of the user name, so a config reload can re-decide
 * for people already linked to a user (whose name never changes) from the claims stored at their last login.
 */
export function decideAccess(cfg: OidcAuthConfig, claims: IdTokenClaims): Access | Refusal {
  const email = typeof claims.email === "string" && /^[^@\s]+@[^@\s]+$/.test(claims.email) ? claims.email.toLowerCase() : undefined;
  if (!email) return refuse("no_email", "the provider sent no email address (is the email scope granted?)");
  // Strictly the boolean: some providers send the string "true", and an unverified email proves nothing.
  if (claims.email_verified !== true) return refuse("email_not_verified", `${email} is not verified by the provider`);
  if (cfg.blocked_users.includes(email)) return refuse("blocked", `${email} is in auth.blocked_users`);

  const admin = cfg.admin_users.includes(email);
  if (admin || cfg.allowed_users.includes(email)) return { ok: true, admin, email };
  if (cfg.allowed_domains.length === 0) {
    if (cfg.allowed_users.length === 0 && cfg.admin_users.length === 0) {
      return refuse("not_allowed", `${email} refused: auth.allowed_users, auth.admin_users and auth.allowed_domains are all empty, so nobody may log in; add people or domains to them`);
    }
    return refuse("not_allowed", `${email} is not in auth.allowed_users or auth.admin_users`);
  }
  // Google vouches for a Workspace account only through `hd`; the email's domain of a consumer account
  // (no hd) is whatever the person typed when signing up. Other issuers: the verified email's domain.
  const domain = GOOGLE_ISSUERS.has(claims.iss) ? (typeof claims.hd === "string" ? claims.hd.toLowerCase() : undefined) : email.slice(email.lastIndexOf("@") + 1);
  if (domain !== undefined && cfg.allowed_domains.includes(domain)) return { ok: true, admin: false, email };
  return refuse("wrong_domain", `${email} (domain ${domain ?? "none: not a Google Workspace account"}) is not in auth.allowed_domains`);
}

/** decideAccess, then the hub user name the person gets on their first login. */
export function decideLogin(cfg: OidcAuthConfig, claims: IdTokenClaims): Decision {
  const access = decideAccess(cfg, claims);
  if (!access.ok) return access;
  const rule = cfg.username;
  const raw = typeof rule === "string" ? access.email : claims[rule.claim];
  const username = typeof raw !== "string" ? undefined : typeof rule === "string" ? userNameForEmail(rule, raw) : normaliseUserName(raw);
  if (!username) {
    const source = typeof cfg.username === "string" ? cfg.username : `claim "${cfg.username.claim}"`;
    return refuse("bad_username", `${access.email}: no valid user name can be made from ${source}`);
  }
  return { ...access, username };
}

/** The hub user name an email gets under auth.username "email_local" or "email" (undefined: none can be made). */
export function userNameForEmail(rule: "email_local" | "email", email: string): string | undefined {
  const e = email.toLowerCase();
  // "@" is not allowed in names; "-at-" keeps the whole email readable ("ada-at-example.org").
  return normaliseUserName(rule === "email_local" ? e.slice(0, e.lastIndexOf("@")) : e.replace(/@(?=[^@]*$)/, "-at-"));
}

/**
 * Lower-case, accents dropped, every run of other characters turned into one "-", leading and trailing
 * punctuation trimmed, at most 64 characters: "José.García+lab" → "jose.garcia-lab". Undefined if nothing is left.
 */
export function normaliseUserName(raw: string): string | undefined {
  const name = raw
    .toLowerCase()
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 64)
    .replace(/[^a-z0-9]+$/, "");
  return USER_NAME.test(name) ? name : undefined;
}

function refuse(reason: RefusalReason, message: string): Refusal {
  return { ok: false, reason, message };
}

export type Resolution = { ok: true; name: string; user: UserRow | undefined } | { ok: false; reason: "subject_collision"; message: string };

/** Google's consumer mail domains: Google itself owns every address in them. */
export const GOOGLE_MAIL: ReadonlySet<string> = new Set(["gmail.com", "googlemail.com"]);

/**
 * The email a login proves, for taking a user `slicehub import jupyterhub` made, or undefined. It must be a
 * verified email (strictly the boolean). From Google, only an address Google vouches for: a Gmail address, or
 * any address of a Workspace account (`hd` present: the Workspace's admin owns its domains). A consumer Google
 * account with an outside address (no `hd`) only proves the mailbox once received a message: a former
 * member of a domain can make one with their old address, so it never takes an imported user.
 */
export function bindingEmail(claims: Pick<IdTokenClaims, "iss" | "email" | "email_verified" | "hd">): string | undefined {
  if (claims.email_verified !== true || typeof claims.email !== "string" || !/^[^@\s]+@[^@\s]+$/.test(claims.email)) return undefined;
  const email = claims.email.toLowerCase();
  if (GOOGLE_ISSUERS.has(claims.iss)) {
    const domain = email.slice(email.lastIndexOf("@") + 1);
    if (!GOOGLE_MAIL.has(domain) && (typeof claims.hd !== "string" || claims.hd === "")) return undefined;
  }
  return email;
}

/**
 * Which hub user an (issuer, subject) logs in as. A known subject keeps the user it was first linked to, even
 * if the username rule would now give another name. A new subject whose verified email (bindingEmail) is the
 * one `slicehub import jupyterhub` recorded for a user no one has logged in as yet gets that user: the import's
 * promise that this person is that JupyterHub user. Otherwise it gets `username` only if nobody has it: a name
 * already linked to another identity is a different person (collisions are refused, never merged), and a name
 * with no identity (made through the API, the dev login or an import for another email) is refused too,
 * because nothing proves the person logging in is the one it was made for. `user` is the existing row,
 * undefined for a new user. `claims` are the ID token's (without them no imported user is taken).
 */
export function resolveIdentity(
  store: Store,
  issuer: string,
  subject: string,
  username: string,
  claims?: { readonly [claim: string]: unknown },
): Resolution {
  const known = store.getIdentity(issuer, subject);
  if (known) {
    // The identity row is deleted with its user (ON DELETE CASCADE), so its user exists.
    const user = store.getUserById(known.user_id)!;
    return { ok: true, name: user.name, user };
  }
  const email = claims ? bindingEmail({ iss: issuer, email: claims.email, email_verified: claims.email_verified, hd: claims.hd }) : undefined;
  const imported = email ? store.importedUserAwaiting(email) : undefined;
  if (imported) return { ok: true, name: imported.name, user: imported };
  const taken = store.getUser(username);
  if (!taken) {
    // A user the culler deleted keeps their name for their own identity (their Unix account and home remain).
    const culled = store.getCulledUser(username);
    if (culled && (culled.issuer !== issuer || culled.subject !== subject)) {
      return {
        ok: false,
        reason: "subject_collision",
        message: `user name ${username} belonged to another account at ${culled.issuer === issuer ? "the provider" : culled.issuer}, deleted for inactivity; its files are kept for that account`,
      };
    }
    return { ok: true, name: username, user: undefined };
  }
  const other = store.getIdentityOfUser(taken.id);
  const importedAs = other ? undefined : store.getImportedUser(taken.id);
  const loginEmail = typeof claims?.email === "string" ? claims.email.toLowerCase() : undefined;
  return {
    ok: false,
    reason: "subject_collision",
    message: other
      ? `user name ${username} already belongs to another account at ${other.issuer === issuer ? "the provider" : other.issuer}`
      : importedAs
        ? importedAs.email === null
          ? `user name ${username} was imported from ${importedAs.source} (${importedAs.source_name}) without an email to bind a login to; an admin can run the import again with --email-domain, or delete that user`
          : importedAs.email === loginEmail
            ? `user name ${username} was imported for ${loginEmail}, but this login does not prove that address (${issuer} must send email_verified true${GOOGLE_ISSUERS.has(issuer) ? ", from a Gmail or Google Workspace account" : ""})`
            : `user name ${username} was imported from ${importedAs.source} for another email address; it is kept for that person`
        : `user name ${username} already exists without a login identity (made through the API or the dev login); an admin can delete that user to let this account have the name`,
  };
}
