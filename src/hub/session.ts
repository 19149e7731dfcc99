// Browser sessions: a random cookie whose hash is a row in the store. The cookie is scoped to /hub/ (or is
// a __Host- cookie under https) so user servers never see it; the proxy strips it as well.
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Config } from "../config/schema.js";
import type { SessionRow, Store } from "../store/store.js";

/** Read by single-user servers as a cache key and XSRF ingredient; not a credential. */
export const SESSION_ID_COOKIE = "jupyterhub-session-id";

export function isHttps(cfg: Config): boolean {
  return cfg.public_url?.startsWith("https:") ?? false;
}

export function sessionCookieName(cfg: Config): string {
  return isHttps(cfg) ? "__Host-slicehub-session" : "slicehub-session";
}

/** Every spelling, so the proxy strips both whatever the config says now. */
export const SESSION_COOKIE_NAMES = ["slicehub-session", "__Host-slicehub-session"];

function cookieOptions(cfg: Config) {
  const https = isHttps(cfg);
  return { path: https ? "/" : "/hub/", httpOnly: true, sameSite: "Lax" as const, secure: https };
}

export function readSession(c: Context, store: Store, cfg: Config): SessionRow | undefined {
  const value = getCookie(c, sessionCookieName(cfg));
  if (!value || value.length > 200) return undefined;
  return store.findSession(value, cfg.session.idle_timeout_s * 1000, cfg.session.max_age_s * 1000);
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
  deleteCookie(c, SESSION_ID_COOKIE, { path: "/", secure: isHttps(cfg) });
}
