// The hub's HTTP application: everything that is not forwarded to a user server lands here.
import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { loginRoutes, type LoginOptions } from "../auth/login.js";
import { errorPage } from "../web/layout.js";
import { LOGIN_PAGES } from "../web/login-pages.js";
import { pages, userPathFallback } from "../web/routes.js";
import { hubApi } from "../src/hub/api.js";
import { BodyTooLarge, bodyTooLarge, limitBody } from "../src/hub/body-limit.js";
import type { Hub, HubEnv } from "../src/hub/context.js";
import { pagesOnlyAsDocuments } from "../src/hub/fetch-metadata.js";
import { userHostGuard } from "../src/hub/hosts.js";
import { identify } from "../src/hub/identify.js";
import { oauthProvider } from "../src/hub/oauth.js";
import { Refusal } from "../src/hub/refuse.js";
import { metricsRoutes } from "../src/metrics.js";
import { reportedJupyterhubVersion } from "../src/singleuser-version.js";

export function createHubApp(hub: Hub, login: LoginOptions = {}): Hono<HubEnv> {
  const app = new Hono<HubEnv>();

  // jupyterhub_request_duration_seconds for every hub request, its handler label the route's pattern.
  app.use("*", async (c, next) => {
    const t0 = performance.now();
    await next();
    hub.metrics?.request(c.req.method, c.req.routePath, c.res.status, (performance.now() - t0) / 1000);
  });
  app.use("*", async (c, next) => {
    await next();
    c.header("X-JupyterHub-Version", reportedJupyterhubVersion(hub.config()));
    // No hub page may be framed (clickjacking the Stop or Create token buttons); a page may tighten it.
    if (!c.res.headers.has("Content-Security-Policy")) c.header("Content-Security-Policy", "frame-ancestors 'none'");
    c.header("X-Frame-Options", "DENY");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "same-origin");
    // A page on this origin (a user's server in path mode) that opens a hub page gets no handle on it (a
    // same-origin opener could otherwise read it); the hub's own popups would keep theirs.
    c.header("Cross-Origin-Opener-Policy", "noopener-allow-popups");
  });
  app.use("*", userHostGuard(hub)); // subdomain mode: nothing of the hub's is served on a user's host
  // Hub pages only for whole-window navigations: not for a same-origin fetch or frame (src/hub/fetch-metadata.ts).
  app.use("*", pagesOnlyAsDocuments());
  app.use("*", limitBody(() => hub.config().http.max_body_kib * 1024));
  app.use("*", identify(hub));

  // No auth: the single-user server asks without a trailing slash, the idle culler with one.
  const version = (c: Context) => c.json({ version: reportedJupyterhubVersion(hub.config()) });
  app.get("/hub/api", version);
  app.get("/hub/api/", version);
  // /hub/metrics, /hub/health and /hub/api/health: before the API, whose every route needs a credential.
  app.route("/hub", metricsRoutes(hub));
  app.route("/hub/api/oauth2", oauthProvider(hub));
  app.route("/hub/api", hubApi(hub));
  app.get("/hub", (c) => c.redirect(`/hub/${new URL(c.req.url).search}`, 302));
  app.get("/hub/", (c) => c.redirect(c.get("who") ? "/hub/home" : "/hub/login", 302));
  app.route("/hub", loginRoutes(hub, login, LOGIN_PAGES));
  app.route("/hub", pages(hub));

  // Not under /hub/ and not routed to a server (docs/jupyterhub-compat.md, "Routing"): GETs go to the same
  // path under /hub/, where /hub/user/… explains or starts the server; other methods on /user/… get the JSON
  // answer directly.
  app.all("*", (c) => {
    const url = new URL(c.req.url);
    if (url.pathname.startsWith("/hub/")) return c.notFound();
    if (c.req.method === "GET" || c.req.method === "HEAD") return c.redirect(`/hub${url.pathname}${url.search}`, 302);
    if (url.pathname.startsWith("/user/")) return userPathFallback(c, hub);
    return c.json({ status: 405, message: "Method not allowed" }, 405);
  });

  // A client's mistake (a body over the cap, a malformed URL or header) is a 4xx that says what was wrong,
  // and a handler's refusal (src/hub/refuse.ts) is answered as it says, both logged at debug; only the hub's
  // own failures are errors.
  app.onError((err, c) => {
    const client = clientError(err);
    if (client) {
      hub.log.debug("request refused", { method: c.req.method, path: safePath(c), status: client.status, reason: client.message });
      if (client.status === 413) c.header("Connection", "close");
      // An answer of its own (OAuth's error shape), with the headers the handler set.
      if (err instanceof HTTPException && err.res) return err.getResponse();
      if (c.req.path.startsWith("/hub/api") && client.as !== "page") {
        return c.json({ status: client.status, message: client.message }, client.status as 400);
      }
      return errorPage(c, client.status, client.message);
    }
    hub.log.error("request failed", { method: c.req.method, path: safePath(c), error: err });
    if (c.req.path.startsWith("/hub/api")) return c.json({ status: 500, message: "Internal server error" }, 500);
    return errorPage(c, 500, "The hub hit an unexpected error. It has been logged.");
  });
  app.notFound((c) => {
    if (c.req.path.startsWith("/hub/api")) return c.json({ status: 404, message: "Not found" }, 404);
    return errorPage(c, 404, `There is no page at ${c.req.path}.`);
  });
  return app;
}

function clientError(err: unknown): { status: number; message: string; as?: "page" } | undefined {
  const tooLarge: BodyTooLarge | undefined = bodyTooLarge(err);
  if (tooLarge) return { status: 413, message: tooLarge.message };
  if (err instanceof Refusal) return { status: err.status, message: err.message, as: err.as };
  if (err instanceof HTTPException && err.status < 500) return { status: err.status, message: err.message || "Bad request" };
  if (err instanceof URIError) return { status: 400, message: "The URL has malformed percent-encoding." };
  return undefined;
}

/** The path for a log line, without risking a second error on a malformed one. */
function safePath(c: Context): string {
  return new URL(c.req.url).pathname.slice(0, 300);
}
