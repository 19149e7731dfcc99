// Fetch Metadata (Sec-Fetch-*): how the browser is about to use the answer. On one origin a user's page can
// fetch or frame any hub page with the visitor's cookies and read it (its CSRF token, a new API token, the
// admin page). Hub pages are therefore served only to navigations of a whole window (Sec-Fetch-Dest:
// document), which a script on the same origin cannot read (COOP cuts the opener's handle, see main/app.ts).
import type { Context, MiddlewareHandler } from "hono";
import { prefersJson } from "../negotiate.js";
import type { HubEnv } from "./context.js";

export interface FetchMetadata {
  dest: string | undefined;
  mode: string | undefined;
  site: string | undefined;
}

/**
 * The request's Fetch Metadata, or undefined when it has none a browser sends. Browsers that send it send
 * Sec-Fetch-Site and Sec-Fetch-Mode (and, since Chromium 80, Firefox 90 and Safari 16.4, Sec-Fetch-Dest) on
 * every request to a secure context (https, or a loopback host). Node's own fetch adds a lone
 * `Sec-Fetch-Mode: cors`; a request with no Site and no Dest is a script or curl, not a victim's browser
 * (an attacker cannot make a browser leave them out), and passes like one without any.
 */
export function fetchMetadata(c: Context): FetchMetadata | undefined {
  const dest = c.req.header("sec-fetch-dest")?.trim().toLowerCase();
  const site = c.req.header("sec-fetch-site")?.trim().toLowerCase();
  if (dest === undefined && site === undefined) return undefined;
  return { dest, mode: c.req.header("sec-fetch-mode")?.trim().toLowerCase(), site };
}

/** A navigation of a whole window (a link, a typed URL, a form post, a redirect): not a frame, not a fetch. */
export function isDocumentNavigation(meta: FetchMetadata): boolean {
  // Browsers without Sec-Fetch-Dest: the best they tell is a navigation (a frame's too).
  if (meta.dest === undefined) return meta.mode === "navigate";
  return meta.dest === "document" && (meta.mode === undefined || meta.mode === "navigate");
}

/** What the page loads (style, icon, the classic Notebook's logo) and a CSP report: not pages. */
const SUBRESOURCES = new Set(["/hub/static/style.css", "/hub/logo", "/hub/favicon.ico", "/hub/security/csp-report"]);

/**
 * Whether `path` is a hub page: everything under /hub/ except the REST API and the subresources above. OAuth's
 * authorize step is under /hub/api/ but is a page-like navigation that hands out a code, so it is a page; the
 * token endpoint is called by servers, not browsers.
 */
export function isHubPage(path: string): boolean {
  if (path !== "/hub" && !path.startsWith("/hub/")) return false;
  if (SUBRESOURCES.has(path) || path.startsWith("/hub/static/")) return false;
  if (path === "/hub/api" || path.startsWith("/hub/api/")) return path.startsWith("/hub/api/oauth2/") && path !== "/hub/api/oauth2/token";
  return true;
}

/**
 * /hub/user/<name>/<rest> that web/routes.tsx's userPathFallback answers as JSON (an `api` path, or a client
 * that prefers JSON): a 424 JupyterLab reads when a script's call reaches a stopped server, or a 403/404, or a
 * redirect; never a page or a CSRF token. Decided on the same URL, the same way.
 */
function jsonUserPath(c: Context): boolean {
  if (!c.req.path.startsWith("/hub/user/")) return false;
  const m = /^\/hub\/user\/[^/]+\/?(.*)$/.exec(new URL(c.req.url).pathname);
  return !!m && prefersJson(`/${m[1]}`, c.req.header("accept"));
}

/**
 * Hub pages answer only document navigations (or clients that send no Fetch Metadata). Anything else, a
 * fetch, an iframe, an object or embed, gets a bare 403 that says nothing about who is logged in: no name,
 * no page chrome, not even the error page.
 */
export function pagesOnlyAsDocuments(): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    if (!isHubPage(c.req.path) || jsonUserPath(c)) return next();
    // Shared caches must not hand one kind of request the answer meant for another.
    const VARY = "Sec-Fetch-Dest, Sec-Fetch-Mode, Sec-Fetch-Site";
    const meta = fetchMetadata(c);
    if (meta && !isDocumentNavigation(meta)) return c.text("Forbidden", 403, { Vary: VARY });
    await next();
    c.header("Vary", VARY, { append: true });
  };
}
