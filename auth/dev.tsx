// Development login: a form that asks for a user name. The config schema refuses it unless the hub
// listens on, and is published at, a loopback address; and each request must come from this machine
// directly, not through a reverse proxy, so a mistaken front end cannot put it on a network either.
import type { Context } from "hono";
import { Hono } from "hono";
import { setCookie } from "hono/cookie";
import { preferredValues } from "../src/hub/cookie-values.js";
import { z } from "zod";
import { bodyTooLarge } from "../src/hub/body-limit.js";
import type { Hub, HubEnv } from "../src/hub/context.js";
import { USER_NAME } from "../src/names.js";
import { newSecret, safeEqual } from "../src/secrets.js";
import { safeNext } from "./next.js";
import type { LoginPages } from "./pages.js";
import { startSession } from "../src/hub/session.js";
import { clientAddress } from "../src/forwarded.js";

/** Protects the login form itself from cross-site posting (login CSRF): a double-submit cookie. */
const LOGIN_XSRF_COOKIE = "slicehub-login-xsrf";

const LoginForm = z.object({
  username: z.string().max(200),
  next: z.string().max(2048).optional(),
  _xsrf: z.string().max(200).optional(),
});

/** 127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return address === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** Why this request may not use the dev login, or undefined if it may. */
function notLocal(c: Context<HubEnv>): string | undefined {
  if (c.req.header("x-forwarded-for") !== undefined || c.req.header("forwarded") !== undefined) return "it came through a proxy";
  const address = (c.env as Partial<HubEnv["Bindings"]> | undefined)?.incoming?.socket.remoteAddress;
  return isLoopbackAddress(address) ? undefined : "it did not come from this machine";
}

export function devLogin(hub: Hub, pages: LoginPages): Hono<HubEnv> {
  const app = new Hono<HubEnv>();

  app.use("*", async (c, next) => {
    const why = notLocal(c);
    if (!why) return next();
    hub.log.warn("dev login refused: the request was not local", { why });
    return c.text(`The development login only answers requests made on this machine directly, and ${why}. Configure "oidc" login to serve others.\n`, 403);
  });

  const form = (c: Context<HubEnv>, status: 200 | 400 | 403, next: string, error?: string) => {
    // Reuse the browser's token: a second tab or a stray sub-request rendering this form again must not
    // invalidate the form already on screen.
    const xsrf = preferredValues(c.req.header("cookie"), LOGIN_XSRF_COOKIE, 100)[0] ?? newSecret();
    setCookie(c, LOGIN_XSRF_COOKIE, xsrf, { path: "/hub/login", httpOnly: true, sameSite: "Lax", maxAge: 3600 });
    return c.html(pages.devLogin({ next, xsrf, error }), status);
  };

  app.get("/", (c) => {
    const next = safeNext(c.req.query("next"));
    if (c.get("who")?.via === "session") return c.redirect(next, 302);
    return form(c, 200, next);
  });

  app.post("/", async (c) => {
    const cfg = hub.config();
    if (cfg.auth.kind !== "dev") return c.text("dev login is not enabled", 404);
    const parsed = LoginForm.safeParse(
      await c.req.parseBody().catch((err: unknown) => {
        if (bodyTooLarge(err)) throw err;
        return undefined;
      }),
    );
    const next = safeNext(parsed.success ? parsed.data.next : undefined);
    if (!parsed.success) return form(c, 400, next, "The login form was incomplete.");
    // Any of the name's values (a page on this origin can add more, see cookie-values.ts): one it tossed
    // proves nothing it could not prove with the only one, and must not spoil the real one.
    const sent = parsed.data._xsrf;
    if (!sent || !preferredValues(c.req.header("cookie"), LOGIN_XSRF_COOKIE, 100).some((v) => safeEqual(v, sent))) {
      return form(c, 403, next, "The login form expired or came from another site. Please try again.");
    }
    const name = parsed.data.username.trim().toLowerCase();
    if (!USER_NAME.test(name)) {
      return form(c, 400, next, "A user name is 1–64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit.");
    }
    if (cfg.auth.allowed_users && !cfg.auth.allowed_users.includes(name)) {
      hub.log.info("login refused: not in allowed_users", { user: name });
      return form(c, 403, next, `${name} is not on this hub's list of allowed users.`);
    }
    const user = hub.store.ensureUser(name, cfg.auth.admin_users.includes(name));
    if (user.blocked) {
      hub.log.info("login refused: blocked by an admin", { user: name });
      return form(c, 403, next, `${name} has been blocked by an admin of this hub.`);
    }
    startSession(c, hub.store, cfg, user.id);
    hub.log.info("user logged in", { user: name, method: "dev", client: clientAddress((c.env as Partial<HubEnv["Bindings"]> | undefined)?.incoming, cfg.trusted_proxies) });
    return c.redirect(next, 302);
  });

  return app;
}
