// Conformance, CSRF on cookie-authenticated requests.
import { describe, expect, it } from "vitest";
import { Browser } from "../harness.js";
import { alice, browserAs, CheckedBrowser, expectApiError, hub, req, tokens } from "./hub.js";

describe("CSRF on cookie-authenticated requests", () => {
  const post = (b: Browser, headers: Record<string, string>) =>
    b.request("/hub/api/users/alice/tokens", { method: "POST", headers: { "content-type": "application/json", ...headers }, body: "{}" });

  it("a cookie-authenticated API POST without X-XSRFToken is 403, with the right one 201", async () => {
    const r = await post(alice, {});
    expect(r.status).toBe(403);
    expect(await r.json()).toEqual({ status: 403, message: expect.any(String) });
    expect((await post(alice, { "x-xsrftoken": "wrong" })).status).toBe(403);
    // Any state-changing method, checked before the route itself answers.
    expect((await alice.request("/hub/api/users/alice/servers/nope", { method: "DELETE" })).status).toBe(403);
    expect((await alice.request("/hub/api/users/alice/server", { method: "POST" })).status).toBe(403);
    expect((await post(alice, { "x-xsrftoken": await alice.csrf() })).status).toBe(201);
  });

  it("a foreign or null Origin is 403 even with the right token; this site's Origin is fine", async () => {
    const xsrf = await alice.csrf();
    expect((await post(alice, { "x-xsrftoken": xsrf, origin: "http://evil.org" })).status).toBe(403);
    expect((await post(alice, { "x-xsrftoken": xsrf, origin: "null" })).status).toBe(403);
    expect((await post(alice, { "x-xsrftoken": xsrf, origin: hub.url })).status).toBe(201);
  });

  it("another session's token does not pass", async () => {
    const other = await browserAs("alice");
    expect((await post(alice, { "x-xsrftoken": await other.csrf() })).status).toBe(403);
  });

  it("token-authenticated requests need no XSRF token", async () => {
    const r = await req("/hub/api/users/alice/tokens", { method: "POST", token: tokens.alice, body: {}, headers: { origin: "http://evil.org" } });
    expect(r.status).toBe(201);
  });

  // JupyterHub's login cookie has Path=/hub/; slicehub's has Path=/ so a cookie tossed onto Path=/ cannot be
  // listed after it (src/hub/session.ts), and the proxy keeps it from users' servers.
  it("login sets the session cookie on / (HttpOnly) and jupyterhub-session-id (32 hex) on / (§7.1)", async () => {
    const b = new CheckedBrowser(hub.url);
    const page = await (await b.request("/hub/login")).text();
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page)![1]!;
    const r = await b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "alice", _xsrf: xsrf, next: "/hub/home" }) });
    expect(r.status).toBe(302);
    const cookies = r.headers.getSetCookie();
    const session = cookies.find((c) => c.startsWith("slicehub-session="));
    const sid = cookies.find((c) => c.startsWith("jupyterhub-session-id="));
    expect(session).toMatch(/; Path=\/(;|$)/);
    expect(session).toMatch(/; HttpOnly(;|$)/);
    expect(sid).toMatch(/^jupyterhub-session-id=[0-9a-f]{32};/);
    expect(sid).toMatch(/; Path=\/(;|$)/);
    expect(sid).toMatch(/; HttpOnly(;|$)/);
  });

  it("the dev login POST without the form's _xsrf, or with another one, is 403", async () => {
    const b = new CheckedBrowser(hub.url);
    await b.request("/hub/login"); // gets the login-xsrf cookie
    const none = await b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "mallory", next: "/hub/home" }) });
    expect(none.status).toBe(403);
    const forged = await b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "mallory", _xsrf: "forged", next: "/hub/home" }) });
    expect(forged.status).toBe(403);
    // A cross-site form post carries no cookie at all.
    const fresh = await req("/hub/login", { method: "POST", raw: new URLSearchParams({ username: "mallory", _xsrf: "x" }).toString(), headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(fresh.status).toBe(403);
    expect(b.cookie("slicehub-session")).toBeUndefined();
    expectApiError(await req("/hub/api/users/mallory", { token: tokens.admin }), 404);
  });
});
