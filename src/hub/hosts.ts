// Subdomain mode (config `subdomain_host`): the hub lives on public_url's host and every user's server on a
// host of its own under subdomain_host. The proxy routes a server's requests by Host + path; what reaches
// the hub app on a user's host (a server that is not running, or a path no server has) must never be served
// by the hub with the visitor's cookies: those hosts are other people's origins. It is sent to the hub's
// host instead, where the hub explains or starts the server.
import type { MiddlewareHandler } from "hono";
import type { Config } from "../config/schema.js";
import { serverOrigin, serverPrefix } from "../names.js";
import { hostnameOf } from "../../proxy/table.js";
import type { Hub, HubEnv } from "./context.js";

/**
 * Whether `hostname` (lower case, no port) is a user's host: subdomain_host's host name or one under it,
 * other than the hub's own host (which may be subdomain_host itself, as in JupyterHub). False in path mode.
 */
export function isUserHost(cfg: Config, hostname: string): boolean {
  if (!cfg.subdomain_host || !cfg.public_url || !hostname) return false;
  const users = new URL(cfg.subdomain_host).hostname;
  if (hostname === new URL(cfg.public_url).hostname) return false;
  return hostname === users || hostname.endsWith(`.${users}`);
}

/**
 * Where to send a browser that the hub would send to `next` (a hub-origin path from safeNext) for the server
 * (`owner`, `serverName`): in subdomain mode a path into that server (`/user/alice/…`, or `/hub/user/alice/…`,
 * which safeNext makes of it) becomes absolute on the server's own origin. Anything else is returned as is
 * (an ambiguous `/hub/user/…` path is resolved by the hub's /hub/user/ handler).
 */
export function towardServer(cfg: Config, owner: string, serverName: string, next: string): string {
  if (!cfg.subdomain_host) return next;
  const prefix = serverPrefix(owner, serverName);
  const path = next.startsWith(`/hub${prefix}`) ? next.slice("/hub".length) : next;
  return path.startsWith(prefix) ? `${serverOrigin(cfg.subdomain_host, owner, serverName)}${path}` : next;
}

/**
 * Answers every request that reaches the hub on a user's host, before anything reads its cookies:
 * GET/HEAD of /user/<name>/… → the hub's /hub/user/<name>/… (which starts the server or says why not), other
 * GET/HEAD → the same path on the hub's origin, other methods → 424 for /user/… (what JupyterLab takes for
 * "the server is gone"), else 404. Requests on any other host (the hub's, or the internal API address the
 * servers use) pass.
 */
export function userHostGuard(hub: Hub): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    const cfg = hub.config();
    if (!cfg.subdomain_host || !cfg.public_url || !isUserHost(cfg, hostnameOf(c.req.header("host")))) return next();
    const url = new URL(c.req.url);
    const hubOrigin = new URL(cfg.public_url).origin;
    const userPath = /^\/user\/[^/]+(\/|$)/.test(url.pathname);
    c.header("Cache-Control", "no-store");
    if (c.req.method === "GET" || c.req.method === "HEAD") {
      return c.redirect(`${hubOrigin}${userPath ? "/hub" : ""}${url.pathname}${url.search}`, 302);
    }
    if (userPath) {
      return c.json({ status: 424, message: `No server is running at ${url.pathname}. Start it again from ${hubOrigin}/hub/home.` }, 424);
    }
    return c.json({ status: 404, message: "Not found" }, 404);
  };
}
