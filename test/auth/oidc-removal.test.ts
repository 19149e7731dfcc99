// Allow-lists are authoritative under OIDC too: a reload that blocks someone ends their session, tokens and
// server at once, and admin rights follow admin_users both ways, decided from the claims stored at login.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, type HubProcess } from "../e2e/harness.js";
import { startHubWithIdp } from "./hub-with-idp.js";

async function login(b: Browser, hint: string): Promise<void> {
  let url = new URL(`/hub/oauth_login?login_hint=${hint}`, b.base);
  for (let hops = 0; hops < 20; hops++) {
    const res = await b.request(url.href);
    const location = res.headers.get("location");
    await res.arrayBuffer();
    if (!location) break;
    url = new URL(location, url);
  }
  if (url.pathname !== "/hub/home") throw new Error(`login as ${hint} ended at ${url.pathname}${url.search}`);
}

describe("OIDC access follows the config", () => {
  let hub: HubProcess;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ hub, cleanup } = await startHubWithIdp());
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it("blocking a user in the config ends their session, token and server within one reload", async () => {
    const grace = new Browser(hub.url);
    const hopper = new Browser(hub.url);
    await login(grace, "grace");
    await login(hopper, "hopper");
    const csrf = await grace.csrf();
    const created = await grace.request("/hub/api/users/grace/tokens", { method: "POST", headers: { "content-type": "application/json", "x-xsrftoken": csrf }, body: "{}" });
    const { token } = (await created.json()) as { token: string };
    const api = (path: string, init: RequestInit = {}) => fetch(`${hub.url}${path}`, { ...init, headers: { authorization: `token ${token}` } });
    expect((await api("/hub/api/users/grace/server", { method: "POST" })).status).toBe(201);
    // A cookie-authenticated API GET carries the session's CSRF token.
    const hopperCsrf = { headers: { "x-xsrftoken": await hopper.csrf() } };
    expect((await (await hopper.request("/hub/api/user", hopperCsrf)).json()) as { admin: boolean }).toMatchObject({ admin: false });

    const auth = hub.config.auth as { blocked_users: string[]; admin_users: string[] };
    hub.writeConfig({ ...hub.config, auth: { ...auth, blocked_users: [...auth.blocked_users, "grace@example.com"], admin_users: [...auth.admin_users, "hopper@example.com"] } });
    await hub.waitForLog(/access ended.*grace/);

    expect((await grace.request("/hub/home")).status).toBe(302);
    expect((await api("/hub/api/user")).status).toBe(403);
    expect(hub.serverProcessGroupOf("grace")).toBeUndefined();
    expect((await fetch(`${hub.url}/user/grace/api/status`, { redirect: "manual" })).status).toBe(302);
    expect((await (await hopper.request("/hub/api/user", hopperCsrf)).json()) as { admin: boolean }).toMatchObject({ admin: true });
  });
});
