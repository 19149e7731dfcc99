// /hub/token: a person's API tokens. A new token's value is shown once, on the page that answers the
// POST that made it; the store keeps only its hash. Tokens the hub made for their servers (the server's
// own token, and OAuth tokens browsers got to open a server) are listed read-only: they end when the
// server stops or the browser session ends, and revoking one by hand would only break a running server.
import { Hono, type MiddlewareHandler } from "hono";
import { raw } from "hono/html";
import { z } from "zod";
import type { Hub, HubEnv } from "../src/hub/context.js";
import { refuse } from "../src/hub/refuse.js";
import { mintToken } from "../src/hub/tokens.js";
import { hasScope } from "../src/scopes.js";
import type { TokenRow } from "../src/store/store.js";
import { isoZ } from "../src/time.js";
import { Layout, pageUser, PostButton, postedForm, type PageUser } from "./layout.js";
import { when } from "./pages.js";

const EXPIRY: Record<string, { label: string; seconds: number | null }> = {
  "1d": { label: "1 day", seconds: 86_400 },
  "7d": { label: "7 days", seconds: 7 * 86_400 },
  "30d": { label: "30 days", seconds: 30 * 86_400 },
  never: { label: "Never", seconds: null },
};

/**
 * What a token from this page may do. "full" follows the person's role as it changes; the others are fixed
 * scopes on their own account, so a script that only needs to reach a notebook cannot also make tokens.
 */
export const TOKEN_PRESETS: Record<string, { label: string; scopes: (user: string) => string[] }> = {
  full: { label: "Full access: everything you can do", scopes: () => ["inherit"] },
  servers: { label: "Start, stop and use your servers", scopes: (u) => [`servers!user=${u}`, `access:servers!user=${u}`, `read:users:name!user=${u}`] },
  access: { label: "Use your servers only (e.g. the Jupyter API)", scopes: (u) => [`access:servers!user=${u}`] },
  read: { label: "Read only: your account and your servers' status", scopes: (u) => [`read:users!user=${u}`, `read:servers!user=${u}`] },
};

const NewToken = z.looseObject({
  note: z.string().trim().max(200).default(""),
  expires: z.enum(Object.keys(EXPIRY) as [string, ...string[]]),
  // Forms from before the choice existed, and scripts that post only note and expires, get full access.
  scope: z.enum(Object.keys(TOKEN_PRESETS) as [string, ...string[]]).default("full"),
});
const Revoke = z.looseObject({ id: z.coerce.number().int().positive() });

/** "full access", or the stored scopes, without the filter to the owner's own account that most carry. */
function scopeSummary(t: TokenRow, owner: string): string {
  const scopes = JSON.parse(t.scopes) as string[];
  if (scopes.includes("inherit")) return "full access";
  if (!scopes.length) return "none";
  const own = `!user=${owner}`;
  return scopes.map((s) => (s.endsWith(own) ? s.slice(0, -own.length) : s)).join(", ");
}

function TokenTable(props: { tokens: TokenRow[]; owner: string; xsrf?: string }) {
  return (
    <table class="stack">
      <thead>
        <tr>
          <th>Note</th>
          <th>Scopes</th>
          <th>Created</th>
          <th>Expires</th>
          <th>Last used</th>
          {props.xsrf ? <th></th> : null}
        </tr>
      </thead>
      <tbody>
        {props.tokens.map((t) => (
          <tr>
            <td data-label="Note">{t.note || <em class="muted">no note</em>}</td>
            <td data-label="Scopes">{scopeSummary(t, props.owner)}</td>
            <td data-label="Created">{when(isoZ(t.created))}</td>
            <td data-label="Expires">{when(isoZ(t.expires_at))}</td>
            <td data-label="Last used">{when(isoZ(t.last_activity))}</td>
            {props.xsrf ? (
              <td>
                <PostButton action="/hub/token/revoke" xsrf={props.xsrf} fields={{ id: String(t.id) }} class="danger" label="Revoke" />
              </td>
            ) : null}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A labelled <select> of `options` (value → label). */
function Choice(props: { name: string; label: string; options: Record<string, { label: string }>; selected: string }) {
  return (
    <>
      <label for={props.name}>{props.label}</label>
      <select id={props.name} name={props.name}>
        {Object.entries(props.options).map(([value, o]) => (
          <option value={value} selected={value === props.selected}>
            {o.label}
          </option>
        ))}
      </select>
    </>
  );
}

function TokensPage(props: { user: PageUser; xsrf: string; tokens: TokenRow[] }) {
  const mine = props.tokens.filter((t) => t.kind === "api");
  const servers = props.tokens.filter((t) => t.kind !== "api");
  return (
    <Layout title="Tokens" user={props.user} section="token">
      <h1>API tokens</h1>
      <section class="card">
        <h2>New token</h2>
        <p class="muted">A token acts as you against the hub's API (and your servers): send it as <code>Authorization: token …</code>.</p>
        <form method="post" action="/hub/token">
          <input type="hidden" name="_xsrf" value={props.xsrf} />
          <label for="note">Note</label>
          <input type="text" id="note" name="note" maxlength={200} placeholder="What it is for, e.g. “laptop sync script”" />
          <Choice name="scope" label="May do" options={TOKEN_PRESETS} selected="full" />
          <Choice name="expires" label="Expires after" options={EXPIRY} selected="30d" />
          <div class="actions">
            <button class="primary" type="submit">
              Create token
            </button>
          </div>
        </form>
      </section>
      <section class="card">
        <h2>Your tokens</h2>
        {mine.length ? <TokenTable tokens={mine} owner={props.user.name} xsrf={props.xsrf} /> : <p class="muted">You have no API tokens.</p>}
      </section>
      {servers.length ? (
        <section class="card">
          <h2>Used by your servers</h2>
          <p class="muted">Made by the hub when a server starts or you open one; they end when it stops or you log out.</p>
          <TokenTable tokens={servers} owner={props.user.name} />
        </section>
      ) : null}
    </Layout>
  );
}

// Copying needs JavaScript; without it the field is still easy to select, so the button only appears with it.
const COPY_SCRIPT = `
(function () {
  var field = document.getElementById("token"), button = document.getElementById("copy");
  button.hidden = false;
  button.onclick = function () {
    field.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
    else { document.execCommand("copy"); done(); }
  };
})();
`;

function NewTokenPage(props: { user: PageUser; token: string; row: TokenRow }) {
  return (
    <Layout title="New token" user={props.user} section="token">
      <h1>Your new token</h1>
      <section class="card">
        <p class="alert ok">Copy it now: it is shown only this once. The hub keeps only a hash of it.</p>
        <label for="token">{props.row.note || "Token"}</label>
        <div class="actions">
          <input type="text" id="token" class="secret" readonly value={props.token} autocomplete="off" />
          <button type="button" id="copy" hidden>
            Copy
          </button>
        </div>
        <p class="muted">Expires: {when(isoZ(props.row.expires_at))}</p>
        <p>
          <a class="button" href="/hub/token">
            Done
          </a>
        </p>
      </section>
      <script>{raw(COPY_SCRIPT)}</script>
    </Layout>
  );
}

export function tokenPages(hub: Hub): Hono<HubEnv> {
  const app = new Hono<HubEnv>();
  const { store } = hub;

  // The same scopes the token API asks for: an API token that may only read cannot mint one that may write.
  const allowed = (scope: string, refusal: string): MiddlewareHandler<HubEnv> => async (c, next) => {
    if (!hasScope(c.get("who")!.scopes, scope, { user: c.get("who")!.user.name })) refuse(403, refusal);
    await next();
  };

  app.get("/", allowed("read:tokens", "You may not see this account's tokens."), (c) => {
    const who = c.get("who")!;
    return c.html(<TokensPage user={pageUser(who)!} xsrf={who.session?.csrf ?? ""} tokens={store.listTokens(who.user.id)} />);
  });

  app.post("/", allowed("tokens", "You may not create tokens."), postedForm(hub, NewToken), (c) => {
    const form = c.req.valid("form");
    const who = c.get("who")!;
    const minted = mintToken(hub, who, who.user, {
      scopes: TOKEN_PRESETS[form.scope]!.scopes(who.user.name),
      note: form.note,
      expiresInS: EXPIRY[form.expires]!.seconds,
    });
    if (!minted.ok) refuse(minted.status, minted.message);
    const { token, row } = minted;
    // The only copy of the value: keep it out of every cache, and the back button's.
    c.header("Cache-Control", "no-store");
    return c.html(<NewTokenPage user={pageUser(who)!} token={token} row={row} />);
  });

  app.post("/revoke", allowed("tokens", "You may not revoke tokens."), postedForm(hub, Revoke), (c) => {
    const form = c.req.valid("form");
    const who = c.get("who")!;
    const t = store.getToken(form.id);
    if (t?.user_id !== who.user.id || t.kind !== "api") refuse(404, "No such token.");
    store.deleteToken(t.id);
    hub.log.info("token revoked", { user: who.user.name, token_id: `a${t.id}`, via: "token page" });
    return c.redirect("/hub/token", 303);
  });

  return app;
}
