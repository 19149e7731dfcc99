// /hub/ssh-keys: a person's SSH public keys, which let them log in with `ssh jupyter-<name>@<host>` (and VS
// Code Remote-SSH) when the hub runs the systemd spawner with ssh.enabled. Adding and removing are CSRF form
// posts; a refused key is shown again with what is wrong with it, and nothing is stored.
import { Hono } from "hono";
import { z } from "zod";
import type { Config } from "../src/config/schema.js";
import type { Hub, HubEnv } from "../src/hub/context.js";
import { refuse } from "../src/hub/refuse.js";
import { addSshKey, removeSshKey } from "../src/hub/ssh-keys.js";
import { hasScope } from "../src/scopes.js";
import { keyTypeLabel } from "../src/ssh/keys.js";
import type { SshKeyRow } from "../src/store/store.js";
import { isoZ } from "../src/time.js";
import { unixAccountName } from "../spawners/accounts.js";
import { Layout, pageUser, PostButton, postedForm, type PageUser } from "./layout.js";
import { when } from "./pages.js";

const AddForm = z.looseObject({ key: z.string().max(20_000).default("") });
const RemoveForm = z.looseObject({ id: z.coerce.number().int().positive() });

/** Whether this hub lets people in over SSH: the systemd spawner with `ssh.enabled` (read defensively: the key is the SSH host side's). */
export function sshOffered(cfg: Config): boolean {
  return cfg.spawner.kind === "systemd" && (cfg as { ssh?: { enabled?: unknown } }).ssh?.enabled === true;
}

/** What to type to connect, or why there is nothing to type. */
type Connect = { account: string; host: string; port: number } | { unavailable: string };

function connectInfo(cfg: Config, user: string): Connect {
  if (cfg.spawner.kind !== "systemd") return { unavailable: "This hub runs servers as its own user (the local spawner), so it offers no SSH logins." };
  if (!sshOffered(cfg)) return { unavailable: "SSH logins are not enabled on this hub (an admin turns them on with ssh.enabled). Keys you add are kept and work once they are." };
  let account: string;
  try {
    account = unixAccountName(cfg.spawner.unix_users.prefix, user);
  } catch (err) {
    return { unavailable: (err as Error).message };
  }
  // ssh.host and ssh.port are the SSH host side's keys (read defensively like ssh.enabled).
  const ssh = (cfg as { ssh?: { host?: unknown; port?: unknown } }).ssh;
  const host = typeof ssh?.host === "string" ? ssh.host : new URL(cfg.public_url ?? cfg.listen).hostname;
  return { account, host: host.replace(/^\[|\]$/g, ""), port: typeof ssh?.port === "number" ? ssh.port : 22 };
}

function HowToConnect(props: { connect: Connect }) {
  const c = props.connect;
  if ("unavailable" in c) {
    return (
      <section class="card">
        <h2>Connecting</h2>
        <p class="muted">{c.unavailable}</p>
      </section>
    );
  }
  return (
    <section class="card">
      <h2>Connecting</h2>
      <p>
        With one of these keys: <code>ssh {c.port === 22 ? "" : `-p ${c.port} `}{c.account}@{c.host}</code>
      </p>
      <p class="muted">
        VS Code (Remote-SSH) or Cursor: add this to <code>~/.ssh/config</code>, then run “Remote-SSH: Connect to Host…” and pick <code>slicehub</code>.
      </p>
      <pre class="log">{`Host slicehub\n    HostName ${c.host}\n${c.port === 22 ? "" : `    Port ${c.port}\n`}    User ${c.account}\n    IdentityFile ~/.ssh/id_ed25519`}</pre>
      <p class="muted">You log in as your own Unix account, inside the same limits as your servers. Removing a key ends your open SSH sessions.</p>
    </section>
  );
}

function KeyTable(props: { keys: SshKeyRow[]; xsrf: string }) {
  return (
    <table class="stack">
      <thead>
        <tr>
          <th>Key</th>
          <th>Fingerprint</th>
          <th>Added</th>
          <th>Last used</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        {props.keys.map((k) => (
          <tr>
            <td data-label="Key">
              <span>
                {keyTypeLabel(k.algorithm)}
                {k.bits ? ` ${k.bits}` : ""}
                {k.comment ? (
                  <>
                    {" · "}
                    <span class="muted">{k.comment}</span>
                  </>
                ) : null}
              </span>
            </td>
            <td data-label="Fingerprint">
              <code style="overflow-wrap:anywhere">{k.fingerprint}</code>
            </td>
            <td data-label="Added">{when(isoZ(k.created))}</td>
            <td data-label="Last used">{when(isoZ(k.last_used))}</td>
            <td>
              <PostButton action="/hub/ssh-keys/remove" xsrf={props.xsrf} fields={{ id: String(k.id) }} class="danger" label="Remove" />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function SshKeysPage(props: { user: PageUser; xsrf: string; keys: SshKeyRow[]; connect: Connect; error?: string; text?: string; added?: string; warning?: string }) {
  return (
    <Layout title="SSH keys" user={props.user} section="ssh-keys" wide>
      <h1>SSH keys</h1>
      <HowToConnect connect={props.connect} />
      <section class="card">
        <h2>Your keys</h2>
        {props.added ? <p class="alert ok">Added the key {props.added}.</p> : null}
        {props.warning ? (
          <p class="alert" role="alert">
            {props.warning}
          </p>
        ) : null}
        {props.keys.length ? <KeyTable keys={props.keys} xsrf={props.xsrf} /> : <p class="muted">You have no SSH keys yet.</p>}
      </section>
      <section class="card">
        <h2>Add a key</h2>
        <form method="post" action="/hub/ssh-keys">
          <input type="hidden" name="_xsrf" value={props.xsrf} />
          {props.error ? (
            <p class="alert" id="key-error" role="alert">
              {props.error}
            </p>
          ) : null}
          <label for="key">Public key</label>
          <textarea
            id="key"
            name="key"
            rows={4}
            required
            spellcheck={false}
            autocomplete="off"
            aria-describedby={props.error ? "key-error key-help" : "key-help"}
            placeholder="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… you@laptop"
            style="width:100%;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem;padding:.45rem .6rem;border:1px solid var(--line);border-radius:6px;box-sizing:border-box"
          >
            {props.text ?? ""}
          </textarea>
          <p class="muted" id="key-help">
            One key: the contents of your <code>.pub</code> file (e.g. <code>cat ~/.ssh/id_ed25519.pub</code>). No key yet? Make one with{" "}
            <code>ssh-keygen -t ed25519</code>. Accepted: Ed25519, ECDSA, security keys (-sk) and RSA of at least 2048 bits.
          </p>
          <div class="actions">
            <button class="primary" type="submit">
              Add key
            </button>
          </div>
        </form>
      </section>
    </Layout>
  );
}

export function sshKeyPages(hub: Hub): Hono<HubEnv> {
  const app = new Hono<HubEnv>();
  const { store } = hub;

  const page = (who: NonNullable<HubEnv["Variables"]["who"]>, extra: { error?: string; text?: string; added?: string; warning?: string } = {}) => (
    <SshKeysPage
      user={pageUser(who)!}
      xsrf={who.session?.csrf ?? ""}
      keys={store.listSshKeys(who.user.id)}
      connect={connectInfo(hub.config(), who.user.name)}
      {...extra}
    />
  );

  app.get("/", (c) => {
    const who = c.get("who")!;
    if (!hasScope(who.scopes, "read:users:ssh_keys", { user: who.user.name })) refuse(403, "You may not see this account's SSH keys.");
    const added = c.req.query("added");
    const row = added && /^\d{1,16}$/.test(added) ? store.getSshKey(who.user.id, Number(added)) : undefined;
    return c.html(page(who, { added: row?.fingerprint }));
  });

  app.post("/", postedForm(hub, AddForm), async (c) => {
    const who = c.get("who")!;
    if (!hasScope(who.scopes, "users:ssh_keys", { user: who.user.name })) refuse(403, "You may not add SSH keys.");
    const text = c.req.valid("form").key;
    const added = await addSshKey(hub, who.user, text, who.user.name);
    // A private key pasted by mistake is not sent back.
    const again = /PRIVATE KEY-----|PuTTY-User-Key-File/.test(text) ? "" : text;
    if (!added.ok) return c.html(page(who, { error: added.message, text: again }), added.status === 409 ? 409 : 400);
    // The key is stored either way; a failure to prepare the account is said at once rather than lost in a redirect.
    if (added.warning) return c.html(page(who, { warning: added.warning }));
    return c.redirect(`/hub/ssh-keys?added=${added.row.id}`, 303);
  });

  app.post("/remove", postedForm(hub, RemoveForm), async (c) => {
    const who = c.get("who")!;
    if (!hasScope(who.scopes, "delete:users:ssh_keys", { user: who.user.name })) refuse(403, "You may not remove SSH keys.");
    const removed = await removeSshKey(hub, who.user, c.req.valid("form").id, who.user.name);
    if (!removed.ok) refuse(removed.status, "No such SSH key.");
    return c.redirect("/hub/ssh-keys", 303);
  });

  return app;
}
