import { raw } from "hono/html";
import type { Child } from "hono/jsx";
import type { Profile } from "../src/config/schema.js";
import { serverPath } from "../src/names.js";
import type { ServerRow } from "../src/store/store.js";
import { Layout, PostButton, type PageUser } from "./layout.js";

export function DevLoginPage(props: { next: string; xsrf: string; error?: string }) {
  return (
    <Layout title="Log in">
      <div class="card">
        <h1>Log in</h1>
        <p class="muted">Development login: any allowed user name, no password. Only offered on a loopback address.</p>
        {props.error ? <p class="error">{props.error}</p> : null}
        <form method="post" action="/hub/login">
          <input type="hidden" name="_xsrf" value={props.xsrf} />
          <input type="hidden" name="next" value={props.next} />
          <label for="username">User name</label>
          <input type="text" id="username" name="username" autocomplete="username" autofocus required pattern="[a-z0-9][a-z0-9._\-]{0,63}" />
          <p>
            <button class="primary" type="submit">
              Log in
            </button>
          </p>
        </form>
      </div>
    </Layout>
  );
}

export interface HomeServer {
  name: string;
  state: "stopped" | "pending" | "running" | "stopping";
  url: string;
  lastActivity: string | null;
  failure: string | null;
  /** The profile its last start asked for (user_options.profile), if any. */
  profile: string | null;
  /** Why the hub stopped it by itself (the culler: "after 2 h idle"), while it stays stopped. */
  stopReason?: string | null;
  /** When it did. */
  stoppedAt?: string | null;
}

/** "2025-06-01 14:05 UTC", or `none` for a missing time. Absolute: a server-rendered "5 minutes ago" goes stale. */
export function when(iso: string | null, none = "never"): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` : none;
}

const SIZE_UNITS: Record<string, string> = { "": "bytes", K: "KiB", M: "MiB", G: "GiB", T: "TiB" };

/** "2 GiB memory · 1 CPU": a profile's limits as people read them (config sizes are powers of 1024). */
export function profileLimits(p: Profile): string {
  const parts: string[] = [];
  const size = p.memory ? /^([\d.]+)([KMGT]?)$/.exec(p.memory) : null;
  if (size) parts.push(`${size[1]} ${SIZE_UNITS[size[2]!]} memory`);
  if (p.cpu) parts.push(`${p.cpu} CPU${p.cpu === 1 ? "" : "s"}`);
  return parts.length ? parts.join(" · ") : "no limits";
}

/** user_options.profile of a server's last start. */
export function chosenProfile(s: ServerRow): string | null {
  const options = JSON.parse(s.user_options) as { profile?: unknown };
  return typeof options.profile === "string" ? options.profile : null;
}

/** The title of a profile by name, falling back to the name for one the config no longer has. */
export function profileTitle(profiles: Profile[], name: string | null): string | null {
  return name === null ? null : (profiles.find((p) => p.name === name)?.title ?? name);
}

/** Radio cards rather than a select: each shows its description and limits, and they are easy to tap on a phone. */
function ProfileChoice(props: { profiles: Profile[]; selected: string | null }) {
  const selected = props.profiles.some((p) => p.name === props.selected) ? props.selected : props.profiles[0]?.name;
  return (
    <fieldset class="profiles">
      <legend>Profile</legend>
      {props.profiles.map((p) => (
        <label class="choice">
          <input type="radio" name="profile" value={p.name} checked={p.name === selected} />
          <span>
            <strong>{p.title}</strong>
            <span class="limits">{profileLimits(p)}</span>
            {p.description ? <span class="description">{p.description}</span> : null}
          </span>
        </label>
      ))}
    </fieldset>
  );
}

function StartForm(props: { action: string; xsrf: string; profiles: Profile[] | undefined; selected: string | null; next?: string; label: string }) {
  return (
    <form method="post" action={props.action}>
      <input type="hidden" name="_xsrf" value={props.xsrf} />
      {props.next ? <input type="hidden" name="next" value={props.next} /> : null}
      {props.profiles?.length ? <ProfileChoice profiles={props.profiles} selected={props.selected} /> : null}
      <div class="actions">
        <button class="primary" type="submit">
          {props.label}
        </button>
      </div>
    </form>
  );
}

/** `profiles`: those this user may use, or undefined when the hub offers no choice; `allProfiles` names past choices. */
export function HomePage(props: { user: PageUser; xsrf: string; servers: HomeServer[]; namedLimit: number; profiles: Profile[] | undefined; allProfiles: Profile[]; terminal?: Child }) {
  const { user } = props;
  const hasDefault = props.servers.some((s) => s.name === "");
  const rows: HomeServer[] = hasDefault
    ? props.servers
    : [{ name: "", state: "stopped", url: `/user/${user.name}/`, lastActivity: null, failure: null, profile: null }, ...props.servers];
  const named = rows.filter((s) => s.name !== "").length;
  const noProfile = props.profiles?.length === 0;
  return (
    <Layout title="Home" user={user} section="home">
      <h1>My servers</h1>
      {noProfile ? <p class="card error">No server profile is open to you, so you cannot start a server. Ask an admin.</p> : null}
      {rows.map((s) => {
        const profile = profileTitle(props.allProfiles, s.profile);
        return (
          <section class="card server">
            <div class="server-head">
              <h2>{s.name ? s.name : "Default server"}</h2>
              <span class={`state ${s.state}`}>{s.state}</span>
            </div>
            <p class="meta">
              {profile ? <span>Profile: {profile}</span> : null}
              <span>Last activity: {when(s.lastActivity)}</span>
            </p>
            {s.stopReason && s.state === "stopped" ? (
              <p class="notice culled">
                {s.name ? `Your server ${s.name}` : "Your server"} was stopped {s.stopReason} ({when(s.stoppedAt ?? null)}). Start it again when you need it.
              </p>
            ) : null}
            {s.failure ? (
              <p class="error">
                {s.failure.split("\n")[0]} <a href={`/hub/spawn-pending/${serverPath(user.name, s.name)}`}>Details</a>
              </p>
            ) : null}
            {s.state === "stopped" ? (
              noProfile ? null : (
                <StartForm action={`/hub/spawn/${serverPath(user.name, s.name)}`} xsrf={props.xsrf} profiles={props.profiles} selected={s.profile} label="Start" />
              )
            ) : (
              <div class="actions">
                {s.state === "running" ? (
                  <a class="button primary" href={s.url}>
                    Open
                  </a>
                ) : null}
                {s.state === "pending" ? (
                  <a class="button" href={`/hub/spawn-pending/${serverPath(user.name, s.name)}`}>
                    Progress
                  </a>
                ) : null}
                {s.state !== "stopping" ? <PostButton action={`/hub/stop/${serverPath(user.name, s.name)}`} xsrf={props.xsrf} class="danger" label="Stop" /> : null}
              </div>
            )}
          </section>
        );
      })}
      {props.namedLimit > 0 && !noProfile ? (
        <section class="card">
          <h2>New named server</h2>
          <form method="post" action="/hub/spawn-named">
            <input type="hidden" name="_xsrf" value={props.xsrf} />
            <label for="server_name">Name</label>
            <input type="text" id="server_name" name="server_name" required pattern="[a-z0-9][a-z0-9._\-]{0,63}" disabled={named >= props.namedLimit} />
            <p class="muted hint">
              {named} of {props.namedLimit} named servers in use. Lower-case letters, digits, '.', '_' and '-'.
            </p>
            {props.profiles?.length ? <ProfileChoice profiles={props.profiles} selected={null} /> : null}
            <div class="actions">
              <button type="submit" disabled={named >= props.namedLimit}>
                Add and start
              </button>
            </div>
          </form>
        </section>
      ) : null}
      {props.terminal}
    </Layout>
  );
}

// Follows the progress stream; on failure the page reloads, and the server renders why (as without JS).
const PROGRESS_SCRIPT = `
(function () {
  var root = document.getElementById("spawn");
  var bar = root.querySelector(".progress"), fill = bar.firstElementChild, log = document.getElementById("log");
  var status = document.getElementById("status");
  var next = root.dataset.next;
  // The API wants the session's CSRF token even on a GET from a cookie; an EventSource cannot send headers.
  var es = new EventSource(root.dataset.progressUrl + "?_xsrf=" + encodeURIComponent(root.dataset.xsrf));
  function line(text) { log.textContent += text + "\\n"; log.scrollTop = log.scrollHeight; }
  es.onmessage = function (m) {
    var ev; try { ev = JSON.parse(m.data); } catch (e) { return; }
    if (typeof ev.progress === "number") fill.style.width = ev.progress + "%";
    if (ev.message) line(ev.message);
    if (ev.ready) { es.close(); bar.classList.add("ready"); status.textContent = "Ready. Opening your server…"; location.replace(next || ev.url); }
    if (ev.failed) { es.close(); bar.classList.add("failed"); status.textContent = "The server could not be started."; location.reload(); }
  };
  es.onerror = function () { if (es.readyState === 2) { status.textContent = "Lost the progress stream; reload the page."; } };
})();
`;

export function SpawnPendingPage(props: { user: PageUser; owner: string; serverName: string; progressUrl: string; next: string; xsrf: string }) {
  const label = props.serverName ? `${props.owner}/${props.serverName}` : props.owner;
  return (
    <Layout title="Starting" user={props.user} head={<noscript>{raw('<meta http-equiv="refresh" content="3">')}</noscript>}>
      <div class="card" id="spawn" data-progress-url={props.progressUrl} data-xsrf={props.xsrf} data-next={props.next}>
        <h1>Starting {label}</h1>
        <div class="progress">
          <div style="width:2%"></div>
        </div>
        <p id="status" class="muted">
          Your server is starting. This page follows its progress.
        </p>
        <pre class="log" id="log"></pre>
      </div>
      <script>{raw(PROGRESS_SCRIPT)}</script>
    </Layout>
  );
}

/**
 * Why a start failed. The stored failure reads "Start failed: <reason>" then the spawner's detail (exit
 * status, the server's last output): the reason becomes the headline, the detail is shown as written.
 */
export function SpawnFailedPage(props: {
  user: PageUser;
  owner: string;
  serverName: string;
  next: string;
  xsrf: string;
  failure: string;
  profile: string | null;
  pastEvents: string[];
  /** Offer a terminal (web/terminal.tsx) to repair what broke. */
  terminal?: boolean;
}) {
  const label = props.serverName ? `${props.owner}/${props.serverName}` : props.owner;
  const [headline = "", ...rest] = props.failure.replace(/^Start failed: /, "").split("\n");
  // The spawner's detail often repeats the exit status the reason already gave.
  const detail = rest.filter((line) => line !== headline);
  return (
    <Layout title="Start failed" user={props.user}>
      <div class="card failed">
        <h1>Could not start {label}</h1>
        <div class="progress failed">
          <div style="width:100%"></div>
        </div>
        <p class="alert">{headline}</p>
        {detail.length ? <pre class="log">{detail.join("\n")}</pre> : null}
        {props.pastEvents.length ? (
          <details>
            <summary>Start progress</summary>
            <ol class="events">
              {props.pastEvents.map((m) => (
                <li>{m}</li>
              ))}
            </ol>
          </details>
        ) : null}
        <form method="post" action={`/hub/spawn/${serverPath(props.owner, props.serverName)}`}>
          <input type="hidden" name="_xsrf" value={props.xsrf} />
          <input type="hidden" name="next" value={props.next} />
          {props.profile ? <input type="hidden" name="profile" value={props.profile} /> : null}
          <div class="actions">
            <button class="primary" type="submit">
              Try again
            </button>
            {props.terminal ? (
              <button type="submit" formaction={`/hub/terminal/${serverPath(props.owner, props.serverName)}`}>
                Open a terminal
              </button>
            ) : null}
            <a class="button" href="/hub/home">
              Home
            </a>
          </div>
        </form>
      </div>
    </Layout>
  );
}

export function NotRunningPage(props: { user: PageUser; owner: string; serverName: string; next: string; xsrf: string; profiles: Profile[] | undefined }) {
  const label = props.serverName ? `${props.owner}/${props.serverName}` : props.owner;
  return (
    <Layout title="Server not running" user={props.user}>
      <div class="card">
        <h1>Server not running</h1>
        <p>The server {label} is not running. Would you like to start it?</p>
        <StartForm
          action={`/hub/spawn/${serverPath(props.owner, props.serverName)}`}
          xsrf={props.xsrf}
          next={props.next}
          profiles={props.profiles}
          selected={null}
          label={`Start ${label}`}
        />
      </div>
    </Layout>
  );
}
