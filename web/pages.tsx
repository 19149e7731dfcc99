import { raw } from "hono/html";
import { Layout, type PageUser } from "./layout.js";

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
}

function serverPath(user: string, server: string): string {
  return server ? `${encodeURIComponent(user)}/${encodeURIComponent(server)}` : encodeURIComponent(user);
}

/** A one-button form that changes state, carrying the session's CSRF token. */
function PostButton(props: { action: string; xsrf: string; class: string; label: string }) {
  return (
    <form method="post" action={props.action}>
      <input type="hidden" name="_xsrf" value={props.xsrf} />
      <button class={props.class} type="submit">
        {props.label}
      </button>
    </form>
  );
}

export function HomePage(props: { user: PageUser; xsrf: string; servers: HomeServer[]; namedLimit: number }) {
  const { user } = props;
  const hasDefault = props.servers.some((s) => s.name === "");
  const rows: HomeServer[] = hasDefault ? props.servers : [{ name: "", state: "stopped", url: `/user/${user.name}/`, lastActivity: null, failure: null }, ...props.servers];
  const named = rows.filter((s) => s.name !== "").length;
  return (
    <Layout title="Home" user={user}>
      <h1>My servers</h1>
      <div class="card">
        <table>
          <thead>
            <tr>
              <th>Server</th>
              <th>State</th>
              <th>Last activity</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <tr>
                <td>
                  {s.name ? s.name : <em>default</em>}
                  {s.failure ? <div class="error">{s.failure.split("\n")[0]}</div> : null}
                </td>
                <td>
                  <span class={`state ${s.state}`}>{s.state}</span>
                </td>
                <td class="muted">{s.lastActivity ? s.lastActivity.replace("T", " ").slice(0, 19) + " UTC" : "never"}</td>
                <td>
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
                    {s.state === "stopped" ? (
                      <PostButton action={`/hub/spawn/${serverPath(user.name, s.name)}`} xsrf={props.xsrf} class="primary" label="Start" />
                    ) : null}
                    {s.state === "running" || s.state === "pending" ? (
                      <PostButton action={`/hub/stop/${serverPath(user.name, s.name)}`} xsrf={props.xsrf} class="danger" label="Stop" />
                    ) : null}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {props.namedLimit > 0 ? (
        <div class="card">
          <form method="post" action="/hub/spawn-named">
            <input type="hidden" name="_xsrf" value={props.xsrf} />
            <label for="server_name">New named server</label>
            <p class="muted">
              {named} of {props.namedLimit} named servers in use. Letters, digits, '.', '_' and '-'.
            </p>
            <div class="actions">
              <input type="text" id="server_name" name="server_name" required pattern="[a-z0-9][a-z0-9._\-]{0,63}" />
              <button type="submit" disabled={named >= props.namedLimit}>
                Add and start
              </button>
            </div>
          </form>
        </div>
      ) : null}
    </Layout>
  );
}

const PROGRESS_SCRIPT = `
(function () {
  var root = document.getElementById("spawn");
  var bar = root.querySelector(".progress"), fill = bar.firstElementChild, log = document.getElementById("log");
  var status = document.getElementById("status"), retry = document.getElementById("retry");
  var next = root.dataset.next;
  var es = new EventSource(root.dataset.progressUrl);
  function line(text) { log.textContent += text + "\\n"; log.scrollTop = log.scrollHeight; }
  es.onmessage = function (m) {
    var ev; try { ev = JSON.parse(m.data); } catch (e) { return; }
    if (typeof ev.progress === "number") fill.style.width = ev.progress + "%";
    if (ev.message) line(ev.message);
    if (ev.ready) { es.close(); bar.classList.add("ready"); status.textContent = "Ready. Opening your server…"; location.replace(next || ev.url); }
    if (ev.failed) { es.close(); bar.classList.add("failed"); status.textContent = "The server could not be started."; status.className = "error"; retry.hidden = false; }
  };
  es.onerror = function () { if (es.readyState === 2) { status.textContent = "Lost the progress stream; reload the page."; } };
})();
`;

export function SpawnPendingPage(props: {
  user: PageUser;
  owner: string;
  serverName: string;
  progressUrl: string;
  next: string;
  xsrf: string;
  failure?: string;
  pastEvents: string[];
}) {
  const label = props.serverName ? `${props.owner}/${props.serverName}` : props.owner;
  const failed = props.failure !== undefined;
  return (
    <Layout
      title={failed ? "Start failed" : "Starting"}
      user={props.user}
      head={failed ? undefined : <noscript>{raw('<meta http-equiv="refresh" content="3">')}</noscript>}
    >
      <div class="card" id="spawn" data-progress-url={props.progressUrl} data-next={props.next}>
        <h1>{failed ? `Could not start ${label}` : `Starting ${label}`}</h1>
        <div class={`progress${failed ? " failed" : ""}`}>
          <div style={failed ? "width:100%" : "width:2%"}></div>
        </div>
        <p id="status" class={failed ? "error" : "muted"}>
          {failed ? "The server could not be started." : "Your server is starting. This page follows its progress."}
        </p>
        <pre class="log" id="log">
          {props.pastEvents.join("\n")}
          {failed ? `\n${props.failure}` : ""}
        </pre>
        <form method="post" action={`/hub/spawn/${serverPath(props.owner, props.serverName)}`} id="retry" hidden={!failed}>
          <input type="hidden" name="_xsrf" value={props.xsrf} />
          <input type="hidden" name="next" value={props.next} />
          <div class="actions">
            <button class="primary" type="submit">
              Try again
            </button>
            <a class="button" href="/hub/home">
              Home
            </a>
          </div>
        </form>
      </div>
      {failed ? null : <script>{raw(PROGRESS_SCRIPT)}</script>}
    </Layout>
  );
}

export function NotRunningPage(props: { user: PageUser; owner: string; serverName: string; next: string; xsrf: string }) {
  const label = props.serverName ? `${props.owner}/${props.serverName}` : props.owner;
  return (
    <Layout title="Server not running" user={props.user}>
      <div class="card">
        <h1>Server not running</h1>
        <p>The server {label} is not running. Would you like to start it?</p>
        <form method="post" action={`/hub/spawn/${serverPath(props.owner, props.serverName)}`}>
          <input type="hidden" name="_xsrf" value={props.xsrf} />
          <input type="hidden" name="next" value={props.next} />
          <div class="actions">
            <button class="primary" type="submit">
              Start {label}
            </button>
            <a class="button" href="/hub/home">
              Home
            </a>
          </div>
        </form>
      </div>
    </Layout>
  );
}
