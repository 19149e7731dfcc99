// Works out who a hub request comes from: an API token in the Authorization header, else the browser
// session cookie. Also the CSRF rule for cookie-authenticated requests (API reads included).
import type { Context, MiddlewareHandler } from "hono";
import { readSession } from "./session.js";
import { roleScopes, expandScopes, tokenScopes } from "../scopes.js";
import { safeEqual } from "../secrets.js";
import type { UserRow } from "../store/store.js";
import type { Hub, HubEnv, Who } from "./context.js";
import { fetchMetadata } from "./fetch-metadata.js";

const AUTH_HEADER = /^(token|bearer)\s+([^\s]+)$/i;

export function identify(hub: Hub): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    c.set("who", undefined);
    c.set("tokenRejected", false);
    const header = c.req.header("authorization");
    const m = header ? AUTH_HEADER.exec(header.trim()) : null;
    if (m) {
      const token = hub.store.findToken(m[2]!);
      const user = token && hub.store.getUserById(token.user_id);
      if (token && user && !user.blocked) {
        c.set("who", { user, via: "token", token, scopes: tokenScopes(JSON.parse(token.scopes) as string[], user) });
      } else {
        c.set("tokenRejected", true);
      }
    } else {
      // Of several session cookies (tossed ones among them), the first usable one in readSession's order.
      const usable = (u: UserRow | undefined): u is UserRow => !!u && !u.blocked;
      const session = readSession(c, hub.store, hub.config(), (s) => usable(hub.store.getUserById(s.user_id)));
      const user = session && hub.store.getUserById(session.user_id);
      // A person using the hub's pages is active too (the admin page and the culler read this); at most one
      // write a minute.
      if (session && user && !user.blocked && (user.last_activity ?? 0) < Date.now() - 60_000) hub.store.touchUser(user.id, Date.now());
      if (session && user && !user.blocked) c.set("who", { user, via: "session", session, scopes: expandScopes(roleScopes(user)) });
    }
    await next();
  };
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The CSRF rule for a cookie-authenticated request (token-authenticated ones are exempt):
 * - under /hub/api/, every method needs the session's CSRF token, in `X-XSRFToken` or the `_xsrf` query
 *   parameter (an EventSource cannot set headers), as JupyterHub >= 4.1 does: a page on this origin must not
 *   read the API with the visitor's cookie, and it cannot learn the token, which is only in hub pages served
 *   to navigations (fetch-metadata.ts);
 * - a hub page's GET is a navigation and needs none;
 * - a state change needs the token (form field `_xsrf`, or the header), an Origin of this site when the
 *   browser sends one, and, when the browser sends Fetch Metadata, to be a same-origin navigation (a form
 *   post): the hub's own pages change state only with forms, so a script's fetch with the visitor's cookie is
 *   refused even with the token.
 * The token is the session row's, never a cookie's: a page on this origin can set cookies, not sessions.
 */
export function csrfProblem(c: Context<HubEnv>, who: Who, publicUrl: string | undefined, formToken?: string): string | undefined {
  if (who.via !== "session") return undefined;
  const api = c.req.path === "/hub/api" || c.req.path.startsWith("/hub/api/");
  const safe = SAFE_METHODS.has(c.req.method);
  if (safe && !api) return undefined;
  if (!safe) {
    const origin = c.req.header("origin");
    if (origin && origin !== "null") {
      const host = c.req.header("host");
      let ok = false;
      try {
        const o = new URL(origin);
        ok = o.host === host || (publicUrl !== undefined && o.origin === new URL(publicUrl).origin);
      } catch {
        ok = false;
      }
      if (!ok) return "cross-origin request refused";
    } else if (origin === "null") {
      return "cross-origin request refused";
    }
    const meta = fetchMetadata(c);
    if (meta && (meta.mode !== "navigate" || (meta.site !== undefined && meta.site !== "same-origin"))) {
      return "a change from this browser must come from a form on a hub page";
    }
  }
  const sent = formToken ?? c.req.header("x-xsrftoken") ?? (api ? c.req.query("_xsrf") : undefined);
  if (!sent || !who.session || !safeEqual(sent, who.session.csrf)) return "missing or wrong CSRF token (_xsrf)";
  return undefined;
}
