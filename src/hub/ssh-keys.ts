// Users' SSH public keys: adding and removing them (shared by the REST API below and the /hub/ssh-keys page),
// the JSON model, and the API routes under the user:
//   GET    /hub/api/users/{name}/ssh-keys        read:users:ssh_keys   → {"ssh_keys": [model…]}
//   POST   /hub/api/users/{name}/ssh-keys        users:ssh_keys        {"key": "ssh-ed25519 AAAA… comment"} → 201 model
//                                                (with "warning" when the Unix account could not be prepared)
//   DELETE /hub/api/users/{name}/ssh-keys/{id}   delete:users:ssh_keys → 204, and the user's open SSH sessions end
// A bad key is a 400 that says what is wrong with it, a key the user already has a 409.
import type { Hono } from "hono";
import { z } from "zod";
import { unixAccountName } from "../../spawners/accounts.js";
import { MAX_ENTRY_CHARS, parsePublicKey } from "../ssh/keys.js";
import { parseAcceptedPublickey } from "../ssh/last-use.js";
import type { SshKeyRow, UserRow } from "../store/store.js";
import { isoZ, settledWithin } from "../time.js";
import type { Hub, HubEnv } from "./context.js";
import { jsonBody, refuse, requireScope } from "./refuse.js";

/** More than anyone needs (a few laptops and security keys); bounds what one account can make the hub store. */
export const MAX_SSH_KEYS = 50;
const END_SESSIONS_MS = 10_000;
const PREPARE_MS = 15_000;

export type SshKeyChange = { ok: true; row: SshKeyRow } | { ok: false; status: 400 | 404 | 409; message: string };
export type SshKeyAdded = { ok: true; row: SshKeyRow; warning?: string } | { ok: false; status: 400 | 409; message: string };

/**
 * Checks `text` (one pasted public key) and stores it for `owner`; nothing is written unless it is accepted.
 * Then has the SSH host side make sure the owner's Unix account exists with its SSH limits (hub.sshPrepare: a
 * user may add a key before ever starting a server); if that fails the key stays, and `warning` says why.
 */
export async function addSshKey(hub: Hub, owner: UserRow, text: string, by: string): Promise<SshKeyAdded> {
  const parsed = parsePublicKey(text);
  if (!parsed.ok) return { ok: false, status: 400, message: parsed.message };
  const k = parsed.key;
  const { store } = hub;
  const row = store.transaction(() => {
    if (store.listSshKeys(owner.id).length >= MAX_SSH_KEYS) return "full" as const;
    return store.addSshKey({ userId: owner.id, algorithm: k.type, key: k.base64, comment: k.comment, fingerprint: k.fingerprint, bits: k.bits }) ?? ("duplicate" as const);
  });
  if (row === "full") return { ok: false, status: 400, message: `An account may have at most ${MAX_SSH_KEYS} SSH keys; remove one first.` };
  if (row === "duplicate") return { ok: false, status: 409, message: `This key (${k.fingerprint}) is already on ${owner.name}'s account.` };
  hub.log.info("ssh key added", { user: owner.name, fingerprint: k.fingerprint, type: k.type, by });
  const warning = await prepareAccount(hub, owner.name);
  return warning ? { ok: true, row, warning } : { ok: true, row };
}

/** hub.sshPrepare, bounded; a message for the user when it failed. */
async function prepareAccount(hub: Hub, user: string): Promise<string | undefined> {
  if (!hub.sshPrepare) return undefined;
  let failure: string | undefined;
  const preparing = hub.sshPrepare(user).catch((err: unknown) => {
    failure = err instanceof Error ? err.message : String(err);
    hub.log.warn("could not prepare the Unix account for SSH", { user, error: failure });
  });
  if (!(await settledWithin(preparing, PREPARE_MS))) {
    hub.log.warn("Unix account for SSH still being prepared", { user, waited_ms: PREPARE_MS });
    return undefined;
  }
  return failure && `The key was added, but your Unix account could not be prepared for SSH logins: ${failure}`;
}

/**
 * Removes the key and ends the owner's open SSH sessions (a session opened with it must not outlive it; sshd
 * cannot say which key a session used, so all of them end). Waits for that up to END_SESSIONS_MS.
 */
export async function removeSshKey(hub: Hub, owner: UserRow, id: number, by: string): Promise<SshKeyChange> {
  const row = hub.store.removeSshKey(owner.id, id);
  if (!row) return { ok: false, status: 404, message: `No such SSH key: ${id}` };
  hub.log.info("ssh key removed", { user: owner.name, fingerprint: row.fingerprint, by });
  await endSshSessions(hub, owner.name);
  return { ok: true, row };
}

/** Ends the user's SSH sessions through the SSH host side (hub.sshEnd), when the hub has it; bounded. */
export async function endSshSessions(hub: Hub, user: string): Promise<void> {
  if (!hub.sshEnd) return;
  const ending = hub.sshEnd(user).catch((err: unknown) => hub.log.error("could not end SSH sessions", { user, error: err }));
  if (!(await settledWithin(ending, END_SESSIONS_MS))) hub.log.warn("SSH sessions still ending", { user, waited_ms: END_SESSIONS_MS });
}

/**
 * Records the logins in these sshd log messages as the keys' last use (see src/ssh/last-use.ts for where the
 * messages must come from). Unix accounts map back to hub users exactly as the AuthorizedKeysCommand maps them
 * (unixAccountName of the candidate); lines for other accounts, other messages and unknown keys are skipped.
 * Returns how many keys were marked.
 */
export function recordSshLogins(hub: Hub, entries: Iterable<{ message: string; at: Date }>): number {
  const cfg = hub.config();
  if (cfg.spawner.kind !== "systemd") return 0;
  const prefix = cfg.spawner.unix_users.prefix;
  const owners = new Map<string, UserRow | undefined>();
  const ownerOf = (account: string): UserRow | undefined => {
    if (owners.has(account)) return owners.get(account);
    const named = (u: UserRow | undefined) => {
      try {
        return u && unixAccountName(prefix, u.name) === account ? u : undefined;
      } catch {
        return undefined;
      }
    };
    // Usually the name after the prefix; a shortened account name needs a look at every user.
    let owner = account.startsWith(prefix) ? named(hub.store.getUser(account.slice(prefix.length))) : undefined;
    if (!owner && /-[0-9a-f]{6}$/.test(account)) {
      const all = hub.store.allUsers().filter((u) => named(u));
      owner = all.length === 1 ? all[0] : undefined;
    }
    owners.set(account, owner);
    return owner;
  };
  let marked = 0;
  hub.store.transaction(() => {
    for (const { message, at } of entries) {
      const login = parseAcceptedPublickey(message);
      const owner = login && ownerOf(login.account);
      if (owner && hub.store.markSshKeyUsed(owner.id, login.fingerprint, at)) marked++;
    }
  });
  return marked;
}

/** A key as the API shows it. */
export function sshKeyModel(row: SshKeyRow) {
  return {
    id: row.id,
    algorithm: row.algorithm,
    bits: row.bits,
    comment: row.comment,
    fingerprint: row.fingerprint,
    key: `${row.algorithm} ${row.key}`,
    created: isoZ(row.created),
    last_used: isoZ(row.last_used),
  };
}

const NewKey = z.strictObject({ key: z.string().max(MAX_ENTRY_CHARS + 100) });

/** Registers the routes on the hub API (before its catch-all 404). */
export function sshKeyApi(api: Hono<HubEnv>, hub: Hub): void {
  const { store } = hub;
  api.get("/users/:name/ssh-keys", requireScope(hub, "read:users:ssh_keys", "user"), (c) =>
    c.json({ ssh_keys: store.listSshKeys(c.get("user").id).map(sshKeyModel) }),
  );

  api.post(
    "/users/:name/ssh-keys",
    requireScope(hub, "users:ssh_keys", "user"),
    jsonBody(NewKey, 'body must be a JSON object like {"key": "ssh-ed25519 AAAA… comment"}: one public key, the line of a .pub file'),
    async (c) => {
      const added = await addSshKey(hub, c.get("user"), c.req.valid("json").key, c.get("who")!.user.name);
      if (!added.ok) refuse(added.status, added.message);
      return c.json({ ...sshKeyModel(added.row), ...(added.warning ? { warning: added.warning } : {}) }, 201);
    },
  );

  api.delete("/users/:name/ssh-keys/:id", requireScope(hub, "delete:users:ssh_keys", "user"), async (c) => {
    const raw = c.req.param("id");
    const id = /^[1-9]\d{0,15}$/.test(raw) ? Number(raw) : undefined;
    if (id === undefined) refuse(404, `No such SSH key: ${raw.slice(0, 40)}`);
    const removed = await removeSshKey(hub, c.get("user"), id, c.get("who")!.user.name);
    if (!removed.ok) refuse(removed.status, removed.message);
    return c.body(null, 204);
  });
}
