// Browser sessions: a random cookie whose hash is a row in the store. User servers never see it: the proxy
// strips both of its names from every request it forwards.
import type { Context } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import type { Config } from "../config/schema.js";
import type { SessionRow, Store } from "../store/store.js";
import { preferredValues } from "./cookie-values.js";

/** Read by single-user servers as a cache key and XSRF ingredient; not a credential. */
export const SESSION_ID_COOKIE = "jupyterhub-session-id";

/**
 * Whether browsers reach the hub over https: public_url's scheme, else the listener's (an https listen). Never a
 * request's header: no client (trusted proxy or not) can turn Secure and __Host- off.
 */
export function isHttps(cfg: Config): boolean {
  return (cfg.public_url ?? cfg.listen).startsWith("https:");
}

export function sessionCookieName(cfg: Config): string {
  return isHttps(cfg) ? "__Host-slicehub-session" : "slicehub-session";
}

/** Every spelling, so the proxy strips both whatever the config says now. */
export const SESSION_COOKIE_NAMES = ["slicehub-session", "__Host-slicehub-session"];

/**
 * Path=/ in both modes (JupyterHub's login cookie has Path=/hub/). A page on this origin can toss cookies with
 * this name (see cookie-values.ts), and the hub prefers the last value the browser lists, which is ours only
 * if ours has the shortest path: browsers order longer paths first, and one with our name and path cannot be
 * set from JavaScript while our HttpOnly one exists. With Path=/hub/ a page could toss a valid session of
 * its owner's onto Path=/, listed after ours, and the victim would use the attacker's account. Under https the
 * __Host- prefix makes Path=/ mandatory and forbids Domain, so no second cookie can be made at all. (Under
 * http a Domain= copy with Path=/ can still come after ours: use https.) The proxy strips the cookie from
 * everything it forwards, so users' servers still never see it.
 */
function cookieOptions(cfg: Config) {
  return { path: "/", httpOnly: true, sameSite: "Lax" as const, secure: isHttps(cfg) };
}

/** Before Path=/, the http-mode cookie had Path=/hub/; logout clears that one too. */
const LEGACY_HTTP_PATH = "/hub/";

/**
 * The session the browser's cookies name: every value of the session cookie's name is tried, the last one
 * first (cookie-values.ts), and the first live session that `usable` accepts wins. A tossed garbage value
 * therefore never hides the real session, and one for another path never outranks it.
 */
export function readSession(c: Context, store: Store, cfg: Config, usable: (s: SessionRow) => boolean = () => true): SessionRow | undefined {
  for (const value of preferredValues(c.req.header("cookie"), sessionCookieName(cfg), 200)) {
    const session = store.findSession(value, cfg.session.idle_timeout_s * 1000, cfg.session.max_age_s * 1000);
    if (session && usable(session)) return session;
  }
  return undefined;
}

export function startSession(c: Context, store: Store, cfg: Config, userId: number): SessionRow {
  const { cookie, session } = store.createSession(userId);
  setCookie(c, sessionCookieName(cfg), cookie, { ...cookieOptions(cfg), maxAge: cfg.session.max_age_s });
  setCookie(c, SESSION_ID_COOKIE, session.public_id, { path: "/", httpOnly: true, sameSite: "Lax", secure: isHttps(cfg), maxAge: cfg.session.max_age_s });
  return session;
}

export function endSession(c: Context, store: Store, cfg: Config, session: SessionRow | undefined): void {
  if (session) store.deleteSession(session);
  deleteCookie(c, sessionCookieName(cfg), cookieOptions(cfg));
  if (!isHttps(cfg)) deleteCookie(c, sessionCookieName(cfg), { ...cookieOptions(cfg), path: LEGACY_HTTP_PATH });
  deleteCookie(c, SESSION_ID_COOKIE, { path: "/", secure: isHttps(cfg) });
}
