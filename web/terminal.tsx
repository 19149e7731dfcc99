// /hub/terminal/<user>[/<server>]: a login shell as the user's Unix account in the browser (xterm.js), which
// also works while their Jupyter server is stopped or failed to start. Opening one is a form post (a GET never
// starts anything); the page then carries a single-use ticket for its websocket (src/terminal/upgrade.ts).
// Also: the home page's card, the admin page's list with its End buttons, and the static files.
import type { Context } from "hono";
import { Hono } from "hono";
import { z } from "zod";
import type { Hub, HubEnv, Who } from "../src/hub/context.js";
import { refuse } from "../src/hub/refuse.js";
import { SERVER_NAME, serverPath } from "../src/names.js";
import { profilesFor } from "../src/profiles.js";
import { hasScope } from "../src/scopes.js";
import type { UserRow } from "../src/store/store.js";
import { TerminalError, type TerminalView } from "../src/terminal/manager.js";
import { mayUseTerminal } from "../src/terminal/upgrade.js";
import { Layout, pageUser, PostButton, postedForm, type PageUser } from "./layout.js";
import { chosenProfile } from "./pages.js";
import { assetUrl, terminalAssets } from "./terminal-assets.js";

/** The terminal page may load only its own files and talk only to its own origin. */
const TERMINAL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // xterm.js sets element styles and adds a <style> of its own for the cell sizes.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

const terminalUrl = (owner: string, server: string) => `/hub/terminal/${serverPath(owner, server)}`;

const age = (ms: number) => {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
};

function OpenForm(props: { owner: string; server: string; xsrf: string; label?: string; primary?: boolean }) {
  return <PostButton action={terminalUrl(props.owner, props.server)} xsrf={props.xsrf} class={props.primary === false ? undefined : "primary"} label={props.label ?? "Open a terminal"} />;
}

function TerminalList(props: { terminals: TerminalView[]; now: number }) {
  return (
    <ul class="terminals">
      {props.terminals.map((t) => (
        <li>
          <a href={`${terminalUrl(t.owner, t.server)}?t=${t.id}`}>Terminal {t.id.slice(0, 6)}</a>{" "}
          <span class="muted small">
            opened {age(props.now - t.created)} ago{t.server ? ` (limits of ${t.server})` : ""} · {t.attached ? "open in a window" : "detached"}
          </span>
        </li>
      ))}
    </ul>
  );
}

export function TerminalPage(props: {
  user: PageUser;
  owner: string;
  server: string;
  xsrf: string;
  ticket?: string;
  ended?: string;
  others: TerminalView[];
  max: number;
}) {
  const label = props.server ? `${props.owner}/${props.server}` : props.owner;
  const head = (
    <>
      <link rel="stylesheet" href={assetUrl("xterm.css")} />
      <link rel="stylesheet" href={assetUrl("terminal.css")} />
    </>
  );
  if (!props.ticket) {
    return (
      <Layout title={`Terminal · ${label}`} user={props.user} head={head}>
        <div class="card">
          <h1>Terminal for {label}</h1>
          {props.ended ? <p class="alert">{props.ended}</p> : null}
          <p>A login shell as {props.owner === props.user.name ? "your" : `${props.owner}'s`} Unix account, with the limits of {props.owner === props.user.name ? "your" : "their"} server. It works while the Jupyter server is stopped too.</p>
          {props.others.length ? (
            <>
              <h2>Open terminals</h2>
              <TerminalList terminals={props.others} now={Date.now()} />
            </>
          ) : null}
          <div class="actions">
            {props.others.length < props.max ? <OpenForm owner={props.owner} server={props.server} xsrf={props.xsrf} label="Open a new terminal" /> : <p class="muted">{props.max} terminals are open, the most allowed; end one to open another.</p>}
            <a class="button" href="/hub/home">
              Home
            </a>
          </div>
        </div>
      </Layout>
    );
  }
  return (
    <Layout title={`Terminal · ${label}`} user={props.user} head={head} wide>
      <div id="terminal" data-ticket={props.ticket}>
        <div class="terminal-bar">
          <h1>Terminal · {label}</h1>
          <span id="terminal-status" class="muted small">
            Connecting…
          </span>
        </div>
        <div class="terminal-frame">
          <div id="terminal-host"></div>
        </div>
        <div id="terminal-ended" class="card" hidden>
          <p id="terminal-ended-message" class="alert"></p>
          <div class="actions">
            <button id="terminal-reconnect" type="button" hidden>
              Reconnect
            </button>
            <OpenForm owner={props.owner} server={props.server} xsrf={props.xsrf} label="Open a new terminal" />
            <a class="button" href="/hub/home">
              Home
            </a>
          </div>
        </div>
      </div>
      <script src={assetUrl("xterm.js")}></script>
      <script src={assetUrl("addon-fit.js")}></script>
      <script src={assetUrl("terminal.js")}></script>
    </Layout>
  );
}

/** The home page's card: open a terminal (also while the server is stopped or failed), or go back to one. */
export function TerminalCard(props: { hub: Hub; user: string; xsrf: string }) {
  const terminals = props.hub.terminals;
  if (!terminals || !props.hub.config().terminal.enabled) return null;
  const mine = terminals.of(props.user);
  const max = props.hub.config().terminal.max_per_user;
  return (
    <section class="card" id="terminal-card">
      <div class="server-head">
        <h2>Terminal</h2>
      </div>
      <p class="muted hint">A shell as your Unix account in the browser, also when your server is stopped or failed to start.</p>
      {mine.length ? <TerminalList terminals={mine} now={Date.now()} /> : null}
      <div class="actions">{mine.length < max ? <OpenForm owner={props.user} server="" xsrf={props.xsrf} /> : <span class="muted small">{max} terminals open, the most allowed.</span>}</div>
    </section>
  );
}

/** The admin page's block: open terminals per user (how many, the oldest's age) with a button that ends them. */
export function TerminalsAdmin(props: { hub: Hub; xsrf: string }) {
  const terminals = props.hub.terminals;
  if (!terminals) return null;
  const byUser = new Map<string, TerminalView[]>();
  for (const t of terminals.list()) byUser.set(t.owner, [...(byUser.get(t.owner) ?? []), t]);
  const now = Date.now();
  return (
    <section class="card" id="admin-terminals">
      <h2>Terminals</h2>
      {byUser.size === 0 ? (
        <p class="muted">No terminal is open.</p>
      ) : (
        <table class="stack">
          <thead>
            <tr>
              <th>User</th>
              <th>Open</th>
              <th>Oldest</th>
              <th>In a window</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {[...byUser.entries()]
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([user, list]) => (
                <tr>
                  <td data-label="User">{user}</td>
                  <td data-label="Open">{list.length}</td>
                  <td data-label="Oldest" class="nowrap">
                    {age(now - Math.min(...list.map((t) => t.created)))}
                  </td>
                  <td data-label="In a window">{list.filter((t) => t.attached).length}</td>
                  <td>
                    <PostButton action="/hub/terminals/end" xsrf={props.xsrf} fields={{ user }} class="danger" label="End" />
                  </td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** /hub/static/terminal/*: xterm.js, its CSS and fit addon, and the page's own script and style. */
export function terminalStatic(): Hono<HubEnv> {
  const app = new Hono<HubEnv>();
  app.get("/terminal/:name", (c) => {
    const asset = terminalAssets().get(c.req.param("name"));
    if (!asset) return c.text("Not found", 404);
    // The page asks for ?v=<content hash>: that URL never changes content. Without it, revalidate.
    const cache = c.req.query("v") === asset.version ? "public, max-age=31536000, immutable" : "no-cache";
    if (c.req.header("if-none-match") === `"${asset.version}"`) return c.body(null, 304, { "Cache-Control": cache, ETag: `"${asset.version}"` });
    return c.body(typeof asset.body === "string" ? asset.body : new Uint8Array(asset.body), 200, { "Content-Type": asset.type, "Cache-Control": cache, ETag: `"${asset.version}"` });
  });
  return app;
}

const OpenFormFields = z.looseObject({});
const EndForm = z.looseObject({ user: z.string().max(200), id: z.string().max(40).optional() });

/** The owner and server a terminal path names, once the caller may use them. */
function target(c: Context<HubEnv>, hub: Hub): { who: Who; owner: UserRow; server: string } {
  const who = c.get("who")!;
  if (!hub.terminals || !hub.config().terminal.enabled) refuse(404, "Terminals are turned off on this hub.");
  const ownerName = c.req.param("user")!;
  const server = c.req.param("server") ?? "";
  if (server && !SERVER_NAME.test(server)) refuse(400, `Invalid server name: ${server}`);
  const owner = hub.store.getUser(ownerName);
  if (!owner) refuse(404, `No such user: ${ownerName}`);
  if (who.via !== "session" || !mayUseTerminal(hub, who.user, owner.name)) {
    refuse(403, who.user.admin ? `Admins may use other users' terminals only when admin_access is on.` : `You may not use ${owner.name}'s terminal.`);
  }
  return { who, owner, server };
}

export function terminalRoutes(hub: Hub): Hono<HubEnv> {
  const app = new Hono<HubEnv>();

  for (const path of ["/terminal/:user", "/terminal/:user/:server"]) {
    app.get(path, (c) => {
      const { who, owner, server } = target(c, hub);
      const terminals = hub.terminals!;
      const cfg = hub.config();
      c.header("Content-Security-Policy", TERMINAL_CSP);
      c.header("Cache-Control", "no-store");
      const common = { user: pageUser(who)!, owner: owner.name, server, xsrf: who.session?.csrf ?? "", others: terminals.of(owner.name), max: cfg.terminal.max_per_user };
      const id = c.req.query("t");
      if (id === undefined) return c.html(<TerminalPage {...common} />);
      const t = terminals.get(id);
      if (!t || t.owner !== owner.name || t.server !== server) {
        return c.html(<TerminalPage {...common} ended="This terminal is no longer running: its shell ended, it was idle or detached for too long, or the hub restarted (which ends terminals)." />, 410);
      }
      if (who.user.name !== owner.name) hub.log.warn("admin opened another user's terminal page (admin_access)", { user: owner.name, terminal: id, by: who.user.name });
      const ticket = terminals.issueTicket(t.id, who.user, who.session!.hash);
      return c.html(<TerminalPage {...common} ticket={ticket} />);
    });

    app.post(path, postedForm(hub, OpenFormFields), async (c) => {
      const { who, owner, server } = target(c, hub);
      // The limits of the server the path names: the profile it last started with, if its owner may still use it.
      const row = hub.store.getServer(owner.id, server);
      const last = row ? chosenProfile(row) : null;
      const profile = last && hub.config().spawner.profiles.length && profilesFor(hub.config(), owner.name).some((p) => p.name === last) ? last : "";
      try {
        const t = await hub.terminals!.open(owner, server, profile, who.user.name);
        return c.redirect(`${terminalUrl(owner.name, server)}?t=${t.id}`, 303);
      } catch (err) {
        if (err instanceof TerminalError) refuse(err.status, err.message);
        throw err;
      }
    });
  }

  app.post("/terminals/end", postedForm(hub, EndForm), async (c) => {
    const who = c.get("who")!;
    const form = c.req.valid("form");
    const admin = hasScope(who.scopes, "admin:users") && hasScope(who.scopes, "admin:servers");
    if (!hub.terminals) refuse(404, "Terminals are turned off on this hub.");
    if (!admin) refuse(403, "Only hub admins may end other users' terminals.");
    const n = await hub.terminals.endUser(form.user, "An admin ended this terminal.", who.user.name);
    hub.log.warn("terminals ended by admin", { user: form.user, terminals: n, by: who.user.name });
    return c.redirect("/hub/admin", 303);
  });

  return app;
}

