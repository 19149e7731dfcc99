// Allow-lists are authoritative: a config reload that removes someone ends their sessions, API tokens and
// servers at once, and admin rights follow the config both ways. (The OIDC variant is in test/auth/.)
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, HubProcess, groupAlive } from "./harness.js";

const FAKE = join(import.meta.dirname, "fixtures/fake-singleuser.mjs");

describe("access follows the config", () => {
  let hub: HubProcess;
  const alice = () => new Browser(hub.url);
  let a: Browser;
  let b: Browser;
  let bobToken = "";

  const base = (auth: object) => ({ ...hub.config, auth });

  beforeAll(async () => {
    hub = await HubProcess.start({
      config: {
        auth: { kind: "dev", allowed_users: ["alice", "bob"], admin_users: ["alice"] },
        spawner: { cmd: [process.execPath, FAKE], args: [], start_timeout_s: 20 },
      },
    });
    a = alice();
    b = new Browser(hub.url);
    await a.login("alice");
    await b.login("bob");
    const csrf = await b.csrf();
    const t = await b.request("/hub/api/users/bob/tokens", { method: "POST", headers: { "content-type": "application/json", "x-xsrftoken": csrf }, body: "{}" });
    bobToken = ((await t.json()) as { token: string }).token;
    expect((await fetch(`${hub.url}/hub/api/users/bob/server`, { method: "POST", headers: { authorization: `token ${bobToken}` } })).status).toBe(201);
  });

  afterAll(async () => {
    await hub?.destroy();
  });

  it("counts using the hub's pages as user activity", async () => {
    await a.request("/hub/home");
    // A cookie-authenticated API GET carries the session's CSRF token.
    const model = (await (await a.request("/hub/api/users/alice", { headers: { "x-xsrftoken": await a.csrf() } })).json()) as { last_activity: string | null };
    expect(model.last_activity).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it("ends a removed user's session, tokens and server within one reload, and takes admin away", async () => {
    const whoami = async (br: Browser) => (await (await br.request("/hub/api/user", { headers: { "x-xsrftoken": await br.csrf() } })).json()) as { admin: boolean };
    expect((await whoami(a)).admin).toBe(true);
    const [bobGroup] = hub.serverProcessGroups();
    expect(groupAlive(bobGroup!)).toBe(true);

    hub.writeConfig(base({ kind: "dev", allowed_users: ["alice"], admin_users: [] }));
    await hub.waitForLog(/"access ended".*"bob"|"user":"bob".*access ended|access ended.*bob/);

    expect((await b.request("/hub/home")).status).toBe(302);
    expect((await fetch(`${hub.url}/hub/api/user`, { headers: { authorization: `token ${bobToken}` } })).status).toBe(403);
    expect(groupAlive(bobGroup!)).toBe(false);
    expect((await fetch(`${hub.url}/user/bob/x`, { redirect: "manual" })).status).toBe(302); // no route any more
    // Alice stays, without admin rights; a later reload gives them back.
    expect((await a.request("/hub/home")).status).toBe(200);
    expect((await whoami(a)).admin).toBe(false);
    hub.writeConfig(base({ kind: "dev", allowed_users: ["alice"], admin_users: ["alice"] }));
    await hub.waitForLog(/admin rights granted by config/);
    expect((await whoami(a)).admin).toBe(true);
    // Bob cannot log in again.
    const again = new Browser(hub.url);
    await expect(again.login("bob")).rejects.toThrow(/403/);
  });
});
