// The login routes under /hub/: the dev login form or OIDC, whichever auth.kind says. The kind cannot change
// without a restart, but it is read per request so nothing here caches a config.
import { Hono } from "hono";
import type { Hub, HubEnv } from "../src/hub/context.js";
import { devLogin } from "./dev.js";
import { oidcHandlers } from "./oidc.js";
import type { LoginPages } from "./pages.js";

export interface LoginOptions {
  /** Read at start-up (resolveClientSecret), before privileges are dropped. */
  oidcClientSecret?: string;
}

export type { LoginPages } from "./pages.js";

export function loginRoutes(hub: Hub, opts: LoginOptions, pages: LoginPages): Hono<HubEnv> {
  const app = new Hono<HubEnv>();
  const oidc = oidcHandlers(hub, opts.oidcClientSecret, pages);
  const isOidc = () => hub.config().auth.kind === "oidc";

  // Under dev login, GET /login falls through to the form below; its POST refuses itself under OIDC.
  app.get("/login", (c, next) => (isOidc() ? oidc.loginPage(c) : next()));
  app.route("/login", devLogin(hub, pages));
  app.get("/oauth_login", (c) => (isOidc() ? oidc.start(c) : c.notFound()));
  app.get("/oauth_callback", (c) => (isOidc() ? oidc.callback(c) : c.notFound()));
  return app;
}
