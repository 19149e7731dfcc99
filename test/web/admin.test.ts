// The admin page: only for admins, shows every user and server, starts and stops anyone's server, blocks
// and unblocks users; every action is a POST that needs the session's CSRF token.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, type HubProcess } from "../e2e/harness.js";
import { eventually, startWebHub } from "./hub.js";

type Servers = Record<string, { ready: boolean; stopped: boolean }>;

describe("admin page", () => {
  let hub: HubProcess;
  let admin: Browser;
  let alice: Browser;
  let bob: Browser;
  let bobToken = "";

  beforeAll(async () => {
    hub = await startWebHub();
    [admin, alice, bob] = [new Browser(hub.url), new Browser(hub.url), new Browser(hub.url)];
    await admin.login("admin");
    await alice.login("alice");
    await bob.login("bob");
    const t = await bob.request("/hub/api/users/bob/tokens", { method: "POST", headers: { "x-xsrftoken": await bob.csrf() }, body: "{}" });
    bobToken = ((await t.json()) as { token: string }).token;
    expect((await bob.postForm("/hub/spawn/bob", { _xsrf: await bob.csrf(), profile: "gpu" })).status).toBe(302);
    await eventually(async () => (await servers("bob"))[""]?.ready === true);
  });

  afterAll(async () => {
    await hub?.destroy();
  });

  const servers = async (user: string) =>
    // A cookie-authenticated API GET carries the session's CSRF token.
    ((await (await admin.request(`/hub/api/users/${user}?include_stopped_servers=1`, { headers: { "x-xsrftoken": await admin.csrf() } })).json()) as { servers: Servers }).servers;
  const adminPage = async () => (await admin.request("/hub/admin")).text();

  it("is a 403 page for everyone else, and only admins get the link", async () => {
    const r = await alice.request("/hub/admin");
    expect(r.status).toBe(403);
    const page = await r.text();
    expect(page).toContain("403 Forbidden");
    expect(page).not.toContain('href="/hub/admin"');
    expect(await (await admin.request("/hub/home")).text()).toContain('href="/hub/admin"');
    // Nor can a non-admin use the actions, even with a valid CSRF token of their own.
    expect((await alice.postForm("/hub/admin/block", { _xsrf: await alice.csrf(), user: "bob" })).status).toBe(403);
    expect((await alice.postForm("/hub/admin/stop", { _xsrf: await alice.csrf(), user: "bob", server: "" })).status).toBe(403);
    expect((await servers("bob"))[""]?.ready).toBe(true);
  });

  it("lists every user with each server's state and profile", async () => {
    const page = await adminPage();
    for (const name of ["admin", "alice", "bob"]) expect(page).toContain(`<h2>${name}</h2>`);
    expect(page).toContain("GPU box");
    expect(page).toContain('<span class="state running">running</span>');
    expect(page).toContain("3 users · 1 server running");
  });

  it("starts and stops another user's server", async () => {
    const start = await admin.postForm("/hub/admin/start", { _xsrf: await admin.csrf(), user: "alice", server: "" });
    expect(start.status).toBe(303);
    expect(start.headers.get("location")).toBe("/hub/admin");
    await eventually(async () => (await servers("alice"))[""]?.ready === true);
    expect(await adminPage()).toContain("2 servers running");
    const stop = await admin.postForm("/hub/admin/stop", { _xsrf: await admin.csrf(), user: "alice", server: "" });
    expect(stop.status).toBe(303);
    await eventually(async () => (await servers("alice"))[""]?.stopped === true);
  });

  it("refuses actions without the session's CSRF token", async () => {
    for (const fields of [{}, { _xsrf: "forged" }] as Record<string, string>[]) {
      const r = await admin.postForm("/hub/admin/block", { ...fields, user: "bob" });
      expect(r.status).toBe(403);
      expect(await r.text()).toContain("CSRF");
    }
    const stop = await admin.postForm("/hub/admin/stop", { user: "bob", server: "" });
    expect(stop.status).toBe(403);
    expect((await servers("bob"))[""]?.ready).toBe(true);
    expect(await adminPage()).not.toContain('<span class="badge bad">blocked</span>');
  });

  it("will not block yourself", async () => {
    const r = await admin.postForm("/hub/admin/block", { _xsrf: await admin.csrf(), user: "admin" });
    expect(r.status).toBe(400);
    expect(await r.text()).toContain("You cannot block yourself.");
  });

  it("blocking ends the user's session, tokens and servers; unblocking lets them back in", async () => {
    const r = await admin.postForm("/hub/admin/block", { _xsrf: await admin.csrf(), user: "bob" });
    expect(r.status).toBe(303);
    expect((await bob.request("/hub/home")).headers.get("location")).toMatch(/^\/hub\/login/);
    expect((await fetch(`${hub.url}/hub/api/user`, { headers: { authorization: `token ${bobToken}` } })).status).toBe(403);
    await eventually(async () => (await servers("bob"))[""]?.stopped === true);
    expect(await adminPage()).toContain('<span class="badge bad">blocked</span>');
    // A new login does not get in either (whether the login form refuses or the session is ignored).
    const again = new Browser(hub.url);
    await again.login("bob").catch(() => undefined);
    expect((await again.request("/hub/home")).status).toBe(302);

    expect((await admin.postForm("/hub/admin/unblock", { _xsrf: await admin.csrf(), user: "bob" })).status).toBe(303);
    const back = new Browser(hub.url);
    await back.login("bob");
    expect((await back.request("/hub/home")).status).toBe(200);
  });
});
