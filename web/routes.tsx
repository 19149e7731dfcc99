// The hub's HTML pages and the redirects single-user servers and JupyterLab rely on
// (docs/jupyterhub-compat.md, "Routing").
import type { Context } from "hono";
import { Hono } from "hono";
import { z } from "zod";
import { safeNext } from "../auth/next.js";
import { refuse } from "../src/hub/refuse.js";
import { endSession } from "../src/hub/session.js";
import type { Config } from "../src/config/schema.js";
import type { Hub, HubEnv } from "../src/hub/context.js";
import type { ProgressEvent } from "../src/lifecycle.js";
import { progressPath, SERVER_NAME, serverFilter, serverHostname, serverOrigin, serverPath, serverPrefix, serverUrl, urlName } from "../src/names.js";
import { hostnameOf } from "../proxy/table.js";
import { towardServer } from "../src/hub/hosts.js";
import { profilesFor } from "../src/profiles.js";
import { prefersJson } from "../src/negotiate.js";
import { hasScope } from "../src/scopes.js";
import type { ServerRow, UserRow } from "../src/store/store.js";
import { isoZ, settledWithin } from "../src/time.js";
import { adminPages } from "./admin.js";
import { errorPage, pageUser, postedForm } from "./layout.js";
import { chosenProfile, HomePage, NotRunningPage, SpawnFailedPage, SpawnPendingPage } from "./pages.js";
import { FAVICON_SVG, LOGO_SVG, STYLE_CSS } from "./style.js";
import { sshKeyPages } from "./ssh-keys.js";
import { tokenPages } from "./tokens.js";
import { TerminalCard, terminalRoutes, terminalStatic } from "./terminal.js";

/** The profiles `user` may choose from, or undefined when the hub has none (no choice to offer). */
const choosable = (cfg: Config, user: string) => (cfg.spawner.profiles.length ? profilesFor(cfg, user) : undefined);

function loginRedirect(c: Context): Response {
  const u = new URL(c.req.url);
  return c.redirect(`/hub/login?next=${encodeURIComponent(u.pathname + u.search)}`, 302);
}

const Form = z.looseObject({
  next: z.string().max(2048).optional(),
  server_name: z.string().max(200).optional(),
  profile: z.string().max(100).optional(),
});

export function pages(hub: Hub): Hono<HubEnv> {
  const app = new Hono<HubEnv>();
  const { store, lifecycle } = hub;

  app.get("/static/style.css", (c) => {
    c.header("Cache-Control", "public, max-age=3600");
    return c.body(STYLE_CSS, 200, { "Content-Type": "text/css; charset=utf-8" });
  });

  // The classic Notebook's header shows the hub's logo from here.
  app.get("/logo", (c) => c.body(LOGO_SVG, 200, { "Content-Type": "image/svg+xml", "Cache-Control": "public, max-age=86400" }));
  app.get("/favicon.ico", (c) => c.body(FAVICON_SVG, 200, { "Content-Type": "image/svg+xml", "Cache-Control": "public, max-age=86400" }));

  // JupyterHub 3.x single-user servers put this in their CSP report-uri.
  app.post("/security/csp-report", (c) => c.body(null, 204));

  app.get("/logout", (c) => {
    const who = c.get("who");
    endSession(c, store, hub.config(), who?.session);
    if (who) hub.log.info("user logged out", { user: who.user.name });
    return c.redirect("/hub/login", 302);
  });

  app.route("/static", terminalStatic());

  // Everything below needs a logged-in browser.
  app.use("*", async (c, next) => {
    const who = c.get("who");
    if (!who) return loginRedirect(c);
    return next();
  });

  app.get("/home", (c) => {
    const who = c.get("who")!;
    const cfg = hub.config();
    const servers = store.listServers(who.user.id).map((s) => ({
      name: s.name,
      state: lifecycle.status(s),
      url: serverUrl(cfg.subdomain_host, who.user.name, s.name),
      lastActivity: isoZ(s.last_activity),
      failure: s.state === "stopped" ? s.failure : null,
      profile: chosenProfile(s),
      stopReason: s.state === "stopped" ? s.stop_reason : null,
      stoppedAt: isoZ(s.stopped_at),
    }));
    return c.html(
      <HomePage
        user={pageUser(who)!}
        xsrf={who.session?.csrf ?? ""}
        servers={servers}
        namedLimit={cfg.spawner.named_servers.limit}
        profiles={choosable(cfg, who.user.name)}
        allProfiles={cfg.spawner.profiles}
        terminal={<TerminalCard hub={hub} user={who.user.name} xsrf={who.session?.csrf ?? ""} />}
      />,
    );
  });

  /** The user and server a /hub/spawn/… style path names, checked against the caller's scopes. */
  const target = (c: Context<HubEnv>, scope: string): { owner: UserRow; serverName: string } => {
    const who = c.get("who")!;
    const ownerName = c.req.param("user") ?? who.user.name;
    const serverName = c.req.param("server") ?? "";
    const owner = store.getUser(ownerName);
    if (!owner) refuse(404, `No such user: ${ownerName}`);
    if (!hasScope(who.scopes, scope, { server: serverFilter(owner.name, serverName) })) {
      refuse(403, `You may not manage ${owner.name}'s servers.`);
    }
    if (serverName && !SERVER_NAME.test(serverName)) refuse(400, `Invalid server name: ${serverName}`);
    return { owner, serverName };
  };

  const pendingUrl = (owner: string, serverName: string, next: string) =>
    `/hub/spawn-pending/${serverPath(owner, serverName)}?next=${encodeURIComponent(next)}`;

  /** `profile`: the one asked for; none means the owner's default. */
  const startOrShow = (c: Context<HubEnv>, owner: UserRow, serverName: string, nextRaw: string | undefined, profile?: string) => {
    const prefix = serverPrefix(owner.name, serverName);
    const next = safeNext(nextRaw, prefix);
    const server = store.getServer(owner.id, serverName);
    if (server && lifecycle.status(server) === "running") return c.redirect(towardServer(hub.config(), owner.name, serverName, next), 302);
    // A start already under way is joined, not repeated.
    const started = lifecycle.start(owner, serverName, profile ? { profile } : {});
    if (!started.ok) refuse(started.status, started.message);
    return c.redirect(pendingUrl(owner.name, serverName, next), 302);
  };

  // JupyterLab's "restart server" and /hub/user-redirect link here with a GET. A GET never starts anything
  // (a cross-site link or image would carry the cookie, SameSite=Lax lets top-level navigations through): it
  // goes on to a running server, to the progress of a starting one, or shows the start form, which POSTs
  // with the CSRF token.
  for (const path of ["/spawn", "/spawn/:user", "/spawn/:user/:server"]) {
    app.get(path, (c) => {
      const t = target(c, "servers");
      const who = c.get("who")!;
      const next = safeNext(c.req.query("next"), serverPrefix(t.owner.name, t.serverName));
      const server = store.getServer(t.owner.id, t.serverName);
      const status = server && lifecycle.status(server);
      if (status === "running") return c.redirect(towardServer(hub.config(), t.owner.name, t.serverName, next), 302);
      if (status === "pending") return c.redirect(pendingUrl(t.owner.name, t.serverName, next), 302);
      return c.html(
        <NotRunningPage user={pageUser(who)!} owner={t.owner.name} serverName={t.serverName} next={next} xsrf={who.session?.csrf ?? ""} profiles={choosable(hub.config(), t.owner.name)} />,
      );
    });
    app.post(path, postedForm(hub, Form), (c) => {
      const form = c.req.valid("form");
      const t = target(c, "servers");
      return startOrShow(c, t.owner, t.serverName, form.next, form.profile);
    });
  }

  app.post("/spawn-named", postedForm(hub, Form), (c) => {
    const form = c.req.valid("form");
    const name = (form.server_name ?? "").trim().toLowerCase();
    if (!SERVER_NAME.test(name)) refuse(400, "A server name is 1–64 lower-case letters, digits, '.', '_' or '-'.");
    return startOrShow(c, c.get("who")!.user, name, undefined, form.profile);
  });

  for (const path of ["/stop/:user", "/stop/:user/:server"]) {
    app.post(path, postedForm(hub, Form), async (c) => {
      const t = target(c, "delete:servers");
      const server = store.getServer(t.owner.id, t.serverName);
      if (server) await settledWithin(lifecycle.stop(t.owner, server), 10_000);
      return c.redirect("/hub/home", 303);
    });
  }

  for (const path of ["/spawn-pending/:user", "/spawn-pending/:user/:server"]) {
    app.get(path, (c) => {
      const t = target(c, "read:servers");
      const who = c.get("who")!;
      const prefix = serverPrefix(t.owner.name, t.serverName);
      const next = safeNext(c.req.query("next"), prefix);
      const server = store.getServer(t.owner.id, t.serverName);
      const status = server && lifecycle.status(server);
      const pending = status === "pending";
      if (status === "running") return c.redirect(towardServer(hub.config(), t.owner.name, t.serverName, next), 302);
      const common = { user: pageUser(who)!, owner: t.owner.name, serverName: t.serverName, next, xsrf: who.session?.csrf ?? "" };
      // Its script goes on to `next` when the server is ready: on the server's own origin in subdomain mode.
      if (pending) return c.html(<SpawnPendingPage {...common} next={towardServer(hub.config(), t.owner.name, t.serverName, next)} progressUrl={progressPath(t.owner.name, t.serverName)} />);
      if (server?.failure) {
        const past = store.spawnEvents(server.id, server.spawn_id) as ProgressEvent[];
        const events = past.filter((e) => !e.failed).map((e) => e.message);
        const terminal = !!hub.terminals && hub.config().terminal.enabled && (who.user.name === t.owner.name || (!!who.user.admin && hub.config().admin_access));
        return c.html(<SpawnFailedPage {...common} failure={server.failure} profile={chosenProfile(server)} pastEvents={events} terminal={terminal} />, 500);
      }
      return c.html(<NotRunningPage {...common} profiles={choosable(hub.config(), t.owner.name)} />);
    });
  }

  app.route("/", terminalRoutes(hub));
  app.route("/admin", adminPages(hub));
  app.route("/token", tokenPages(hub));
  app.route("/ssh-keys", sshKeyPages(hub));

  app.get("/user-redirect/*", (c) => {
    const who = c.get("who")!;
    const rest = c.req.path.slice("/hub/user-redirect/".length);
    const query = new URL(c.req.url).search;
    const next = `${serverPrefix(who.user.name, "")}${rest}${query}`;
    return c.redirect(`/hub/spawn/${urlName(who.user.name)}?next=${encodeURIComponent(next)}`, 302);
  });

  app.all("/user/:user/*", (c) => userPathFallback(c, hub));
  app.all("/user/:user", (c) => userPathFallback(c, hub));

  return app;
}

/**
 * /hub/user/<name>/<path>: a request for a server the proxy has no route for (docs/jupyterhub-compat.md,
 * "Routing"). Also answers non-GET requests to unrouted /user/… paths directly.
 */
export function userPathFallback(c: Context<HubEnv>, hub: Hub): Response | Promise<Response> {
  const who = c.get("who");
  const url = new URL(c.req.url);
  const path = url.pathname.replace(/^\/hub\//, "/");
  const m = /^\/user\/([^/]+)\/?(.*)$/.exec(path);
  if (!m) return errorPage(c, 404, "Not found");
  const ownerName = decodeURIComponent(m[1]!);
  const rest = m[2]!;
  const wantsJson = c.req.method !== "GET" || prefersJson(`/${rest}`, c.req.header("accept"));
  if (!who) {
    // A browser's API call to a server that went away, without a live hub session (the hub cookie has
    // Path=/ but may be gone). Tell it the server is gone (what JupyterLab looks for) without saying whose or why.
    if (c.req.method !== "GET" && !url.pathname.startsWith("/hub/")) {
      return c.json({ status: 424, message: `No server is running at ${path}. Start it again from /hub/home.` }, 424);
    }
    if (wantsJson) return c.json({ status: 403, message: "Forbidden" }, 403);
    return c.redirect(`/hub/login?next=${encodeURIComponent(path + url.search)}`, 302);
  }
  const owner = hub.store.getUser(ownerName);
  if (!owner) return wantsJson ? c.json({ status: 404, message: `No such user: ${ownerName}` }, 404) : errorPage(c, 404, `No such user: ${ownerName}`);
  const servers = hub.store.listServers(owner.id);
  const first = rest.split("/")[0] ?? "";
  const server: ServerRow | undefined = servers.find((s) => s.name !== "" && s.name === decodeURIComponent(first)) ?? servers.find((s) => s.name === "");
  const serverName = server?.name ?? "";
  if (!hasScope(who.scopes, "access:servers", { server: serverFilter(owner.name, serverName) })) {
    return wantsJson ? c.json({ status: 403, message: "Forbidden" }, 403) : errorPage(c, 403, `You do not have access to ${owner.name}'s server.`);
  }
  url.searchParams.delete("redirects");
  const target = `${path}${url.search}`;
  const redirects = Number.parseInt(new URL(c.req.url).searchParams.get("redirects") ?? "0", 10) || 0;
  const status = server && hub.lifecycle.status(server);
  if (status === "running") {
    if (redirects >= 4) return errorPage(c, 500, "Redirect loop detected.");
    // Subdomain mode: the server is on its own origin (a path on the hub's host reaches no server there).
    const subdomainHost = hub.config().subdomain_host;
    const origin = subdomainHost ? serverOrigin(subdomainHost, owner.name, serverName) : "";
    const hostname = subdomainHost ? serverHostname(subdomainHost, owner.name, serverName) : hostnameOf(c.req.header("host"));
    // Straight to a server the proxy routes there (path and query kept, no counter): nothing can send the
    // browser back here. Only a request already counting, or one the proxy would not route (its route not in
    // place yet), gets JupyterHub's redirects=N, which ends in "Redirect loop detected" instead of a browser's
    // own too-many-redirects error.
    if (!redirects && hub.lifecycle.routesTo(server!, path, hostname)) return c.redirect(origin + target, 302);
    const u = new URL(target, "http://x");
    u.searchParams.set("redirects", String(redirects + 1));
    return c.redirect(origin + u.pathname + u.search, 302);
  }
  if (status === "pending" || (status === "stopped" && server?.failure)) {
    return c.redirect(`/hub/spawn-pending/${serverPath(owner.name, serverName)}?next=${encodeURIComponent(target)}`, 303);
  }
  const spawnUrl = `/hub/spawn/${serverPath(owner.name, serverName)}`;
  if (wantsJson) {
    const origin = `${url.protocol}//${c.req.header("host") ?? url.host}`;
    return c.json({ message: `JupyterHub server no longer running at ${path}. Restart the server at ${origin}${spawnUrl}` }, 424);
  }
  return c.html(
    <NotRunningPage user={pageUser(who)!} owner={owner.name} serverName={serverName} next={target} xsrf={who.session?.csrf ?? ""} profiles={choosable(hub.config(), owner.name)} />,
    424,
  );
}
