// Works out who a hub request comes from: an API token in the Authorization header, else the browser
// session cookie. Also the CSRF rule for cookie-authenticated requests that change state.
import type { Context, MiddlewareHandler } from "hono";
import { readSession } from "./session.js";
import { roleScopes, expandScopes, tokenScopes } from "../scopes.js";
import { safeEqual } from "../secrets.js";
import type { Hub, HubEnv, Who } from "./context.js";

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
      const session = readSession(c, hub.store, hub.config());
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
 * A cookie-authenticated request that changes state must carry the session's CSRF token (form field
 * `_xsrf` or header `X-XSRFToken`) and, when the browser sends one, an Origin of this site.
 */
export function csrfProblem(c: Context<HubEnv>, who: Who, publicUrl: string | undefined, formToken?: string): string | undefined {
  if (who.via !== "session" || SAFE_METHODS.has(c.req.method)) return undefined;
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
  const sent = formToken ?? c.req.header("x-xsrftoken");
  if (!sent || !who.session || !safeEqual(sent, who.session.csrf)) return "missing or wrong CSRF token (_xsrf)";
  return undefined;
}
