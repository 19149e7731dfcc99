// /hub/admin: every user and server at a glance, with the actions an admin needs (start and stop any
// server, block and unblock users). Changes are plain POST forms carrying the session's CSRF token.
import { Hono } from "hono";
import { raw } from "hono/html";
import type { Child } from "hono/jsx";
import { TerminalsAdmin } from "./terminal.js";
import { SshSessionsAdmin } from "./ssh-sessions.js";
import { z } from "zod";
import type { Profile } from "../src/config/schema.js";
import type { Hub, HubEnv, Who } from "../src/hub/context.js";
import { SERVER_NAME } from "../src/names.js";
import { profilesFor } from "../src/profiles.js";
import { hasScope } from "../src/scopes.js";
import type { ServerRow, UserRow } from "../src/store/store.js";
import { isoZ } from "../src/time.js";
import { Layout, pageUser, PostButton, postedForm, type PageUser } from "./layout.js";
import { refuse } from "../src/hub/refuse.js";
import { serverPath } from "../src/names.js";
import { chosenProfile, profileTitle, when } from "./pages.js";

interface AdminServer {
  name: string;
  state: ServerRow["state"];
  profile: string | null;
  started: string | null;
  lastActivity: string | null;
  failure: string | null;
  /** The culler's "after 2 h idle", while it stays stopped. */
  stopReason?: string | null;
  memoryBytes?: number;
  cpuSeconds?: number;
}

interface AdminUser {
  name: string;
  admin: boolean;
  blocked: boolean;
  lastActivity: string | null;
  /** An admin's note, e.g. what `slicehub import jupyterhub` carried ("Imported from JupyterHub …; groups: …"). */
  note?: string | null;
  servers: AdminServer[];
}

/** What an admin's session holds; an admin's API token with fewer scopes gets no admin page. */
const isAdmin = (who: Who) => hasScope(who.scopes, "admin:users") && hasScope(who.scopes, "admin:servers");

const mib = (bytes: number | undefined) => (bytes === undefined ? "—" : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
const cpu = (seconds: number | undefined) => (seconds === undefined ? "—" : `${seconds.toFixed(1)} s`);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function AdminPage(props: { user: PageUser; xsrf: string; users: AdminUser[]; allProfiles: Profile[]; terminals?: Child; ssh?: Child }) {
  const servers = props.users.flatMap((u) => u.servers);
  const running = servers.filter((s) => s.state === "running").length;
  // Starts and stops finish in the background: while one is under way the page reloads itself.
  const busy = servers.some((s) => s.state === "pending" || s.state === "stopping");
  const act = (action: string, user: string, server: string, label: string, cls?: string) => (
    <PostButton action={`/hub/admin/${action}`} xsrf={props.xsrf} fields={{ user, server }} label={label} class={cls} />
  );
  return (
    <Layout title="Admin" user={props.user} section="admin" wide head={busy ? raw('<meta http-equiv="refresh" content="3">') : undefined}>
      <h1>Admin</h1>
      <p class="muted">
        {plural(props.users.length, "user")} · {plural(running, "server")} running
      </p>
      <div class="card scroll">
        <table class="stack admin">
          <thead>
            <tr>
              <th>Server</th>
              <th>State</th>
              <th>Profile</th>
              <th>Started</th>
              <th>Last activity</th>
              <th>Memory</th>
              <th>CPU time</th>
              <th></th>
            </tr>
          </thead>
          {/* One tbody per user: a heading row with the user, then a row per server. */}
          {props.users.map((u) => (
            <tbody class={u.blocked ? "blocked" : undefined}>
              <tr class="user">
                <td colspan={8}>
                  <div class="server-head">
                    <h2>{u.name}</h2>
                    {u.admin ? <span class="badge">admin</span> : null}
                    {u.blocked ? <span class="badge bad">blocked</span> : null}
                    <span class="muted small">Last activity: {when(u.lastActivity)}</span>
                    {u.note ? <span class="muted small note">{u.note}</span> : null}
                    <span class="grow">
                      {u.name === props.user.name ? null : u.blocked ? act("unblock", u.name, "", "Unblock") : act("block", u.name, "", "Block", "danger")}
                    </span>
                  </div>
                </td>
              </tr>
              {u.servers.map((s) => (
                <tr>
                  <td data-label="Server">{s.name || <em>default</em>}</td>
                  <td data-label="State">
                    <div>
                      <span class={`state ${s.state}`}>{s.state}</span>
                      {s.stopReason ? <div class="notice small">Culled {s.stopReason}</div> : null}
                      {s.failure ? (
                        <div class="error small">
                          {s.failure.split("\n")[0]} <a href={`/hub/spawn-pending/${serverPath(u.name, s.name)}`}>Details</a>
                        </div>
                      ) : null}
                    </div>
                  </td>
                  <td data-label="Profile">{profileTitle(props.allProfiles, s.profile) ?? "—"}</td>
                  <td data-label="Started" class="nowrap">{when(s.started, "—")}</td>
                  <td data-label="Last activity" class="nowrap">{when(s.lastActivity)}</td>
                  <td data-label="Memory" class="nowrap">{mib(s.memoryBytes)}</td>
                  <td data-label="CPU time" class="nowrap">{cpu(s.cpuSeconds)}</td>
                  <td>
                    {s.state === "stopped" && !u.blocked ? act("start", u.name, s.name, "Start", "primary") : null}
                    {s.state === "running" || s.state === "pending" ? act("stop", u.name, s.name, "Stop", "danger") : null}
                  </td>
                </tr>
              ))}
            </tbody>
          ))}
        </table>
      </div>
      {props.terminals}
      {props.ssh}
    </Layout>
  );
}

const Target = z.looseObject({ user: z.string().max(200), server: z.string().max(200).default("") });

export function adminPages(hub: Hub): Hono<HubEnv> {
  const app = new Hono<HubEnv>();
  const { store, lifecycle } = hub;

  app.use("*", async (c, next) => {
    if (!isAdmin(c.get("who")!)) refuse(403, "Only hub admins may use the admin page.");
    await next();
  });

  const serverOf = async (s: ServerRow): Promise<AdminServer> => ({
    name: s.name,
    state: lifecycle.status(s),
    profile: chosenProfile(s),
    started: isoZ(s.started),
    lastActivity: isoZ(s.last_activity),
    failure: s.state === "stopped" ? s.failure : null,
    stopReason: s.state === "stopped" ? s.stop_reason : null,
    ...(await lifecycle.usage(s)),
  });

  app.get("/", async (c) => {
    const who = c.get("who")!;
    const users = await Promise.all(
      store
        .allUsers()
        .sort((a, b) => a.name.localeCompare(b.name))
        .map(async (u): Promise<AdminUser> => {
          const servers = await Promise.all(store.listServers(u.id).map(serverOf));
          // Everyone has a default server to start, even before its first start made a row for it.
          if (!servers.some((s) => s.name === "")) servers.unshift({ name: "", state: "stopped", profile: null, started: null, lastActivity: null, failure: null });
          return { name: u.name, admin: !!u.admin, blocked: !!u.blocked, lastActivity: isoZ(u.last_activity), note: u.note, servers };
        }),
    );
    return c.html(<AdminPage user={pageUser(who)!} xsrf={who.session?.csrf ?? ""} users={users} allProfiles={hub.config().spawner.profiles} terminals={<TerminalsAdmin hub={hub} xsrf={who.session?.csrf ?? ""} />} ssh={<SshSessionsAdmin hub={hub} users={users.map((u) => u.name)} />} />);
  });

  const targetForm = postedForm(hub, Target);
  /** The user (and their existing server, or the default one) a posted action names. */
  const posted = (form: z.output<typeof Target>) => {
    const user = store.getUser(form.user);
    if (!user) refuse(404, `No such user: ${form.user}`);
    if (form.server && !SERVER_NAME.test(form.server)) refuse(400, `Invalid server name: ${form.server}`);
    return { user, server: store.getServer(user.id, form.server), serverName: form.server };
  };

  /** The page shows the server as stopping and looks again until it is stopped. */
  const stopInBackground = (user: UserRow, server: ServerRow) =>
    void lifecycle.stop(user, server).catch((err: unknown) => hub.log.error("stopping a server failed", { user: user.name, server: server.name, error: err }));

  app.post("/start", targetForm, (c) => {
    const t = posted(c.req.valid("form"));
    if (t.user.blocked) refuse(400, `${t.user.name} is blocked; unblock them first.`);
    // Named servers are made by their owners; an admin only starts ones that exist.
    if (t.serverName && !t.server) refuse(404, `${t.user.name} has no server named ${t.serverName}.`);
    // The profile it last used if its owner may still use it, else (none asked for) their default; the
    // lifecycle resolves it.
    const last = t.server && chosenProfile(t.server);
    const keep = last ? profilesFor(hub.config(), t.user.name).some((p) => p.name === last) : false;
    const started = lifecycle.start(t.user, t.serverName, keep ? { profile: last } : {});
    if (!started.ok) refuse(started.status, started.message);
    hub.log.info("server started by admin", { user: t.user.name, server: t.serverName, by: c.get("who")!.user.name });
    return c.redirect("/hub/admin", 303);
  });

  app.post("/stop", targetForm, (c) => {
    const t = posted(c.req.valid("form"));
    if (t.server) stopInBackground(t.user, t.server);
    hub.log.info("server stopped by admin", { user: t.user.name, server: t.serverName, by: c.get("who")!.user.name });
    return c.redirect("/hub/admin", 303);
  });

  app.post("/block", targetForm, async (c) => {
    const t = posted(c.req.valid("form"));
    const who = c.get("who")!;
    if (t.user.id === who.user.id) refuse(400, "You cannot block yourself.");
    store.setBlocked(t.user.id, true);
    const { sessions, tokens } = store.revokeUserAccess(t.user.id);
    for (const s of store.listServers(t.user.id)) if (lifecycle.status(s) !== "stopped") stopInBackground(t.user, s);
    await hub.sshEnd?.(t.user.name).catch((err: unknown) => hub.log.error("could not end SSH sessions", { user: t.user.name, error: err }));
    void hub.terminals?.endUser(t.user.name, "Your access to this hub has ended.", who.user.name);
    hub.log.warn("user blocked by admin", { user: t.user.name, by: who.user.name, sessions, tokens });
    return c.redirect("/hub/admin", 303);
  });

  app.post("/unblock", targetForm, (c) => {
    const t = posted(c.req.valid("form"));
    store.setBlocked(t.user.id, false);
    hub.log.info("user unblocked by admin", { user: t.user.name, by: c.get("who")!.user.name });
    return c.redirect("/hub/admin", 303);
  });

  return app;
}
