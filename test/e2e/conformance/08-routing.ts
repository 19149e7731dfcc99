// Conformance, §6: routing.
import { describe, expect, it } from "vitest";
import { admin, alice, browserAs, CheckedBrowser, hub, rawRequest, req } from "./hub.js";

describe("routing (§6)", () => {
  it("GETs outside /hub/ with no route go to the same path under /hub/", async () => {
    const cases: [string, string][] = [
      ["/user/nobody/tree?x=1", "/hub/user/nobody/tree?x=1"],
      ["/user/alicex/", "/hub/user/alicex/"], // segment-prefix routing: not alice's server
      ["/", "/hub/"],
      ["/user-redirect/lab", "/hub/user-redirect/lab"],
    ];
    for (const [from, to] of cases) {
      const r = await req(from);
      expect(r.status, from).toBe(302);
      expect(r.headers.get("location"), from).toBe(to);
    }
    const loggedIn = await alice.request("/hub");
    expect(loggedIn.status).toBe(302);
    expect(loggedIn.headers.get("location")).toBe("/hub/");
  });

  // BUG (see report): without a session, /hub is caught by the pages' login middleware (mounted on /hub)
  // before the /hub → /hub/ redirect, so it answers 302 /hub/login?next=%2Fhub.
  it("/hub → /hub/ also without a login", async () => {
    const r = await req("/hub");
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe("/hub/");
  });

  it("/hub/user/… with no route: stopped → 424 (page, or JSON for API paths), failed → 303 spawn-pending, loop → 500", async () => {
    const bob = await browserAs("bob"); // bob's default server exists and is stopped (started and stopped above)
    const page = await bob.request("/hub/user/bob/tree");
    expect(page.status).toBe(424);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const api = await bob.request("/hub/user/bob/api/status");
    expect(api.status).toBe(424);
    expect(await api.json()).toEqual({ message: `JupyterHub server no longer running at /user/bob/api/status. Restart the server at ${hub.url}/hub/spawn/bob` });
    // fail-1's last spawn failed: the admin is sent to the spawn-pending page that shows why.
    const failed = await admin.request("/hub/user/fail-1/tree?x=1");
    expect(failed.status).toBe(303);
    expect(failed.headers.get("location")).toBe(`/hub/spawn-pending/fail-1?next=${encodeURIComponent("/user/fail-1/tree?x=1")}`);
    const loop = await alice.request("/hub/user/alice/tree?redirects=4");
    expect(loop.status).toBe(500);
    // Not logged in: to the login page, which comes back here.
    const anon = await req("/hub/user/alice/tree");
    expect(anon.status).toBe(302);
    expect(anon.headers.get("location")).toBe(`/hub/login?next=${encodeURIComponent("/hub/user/alice/tree")}`);
  });

  it("accepts CSP reports from 3.x servers without a login", async () => {
    const r = await req("/hub/security/csp-report", { method: "POST", raw: '{"csp-report":{}}', headers: { "content-type": "application/csp-report" } });
    expect(r.status).toBeGreaterThanOrEqual(200);
    expect(r.status).toBeLessThan(300);
  });

  it("/hub/user-redirect/<path>?<query> sends the logged-in user to spawn their own server, then there", async () => {
    const r = await alice.request("/hub/user-redirect/lab?a=1");
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe(`/hub/spawn/alice?next=${encodeURIComponent("/user/alice/lab?a=1")}`);
    const anon = await req("/hub/user-redirect/lab?a=1");
    expect(anon.status).toBe(302);
    expect(anon.headers.get("location")).toMatch(/^\/hub\/login\?next=/);
  });

  it("/hub/user/alice/… while alice's server is ready and routed: 302 straight to it; a loop already counting goes on counting", async () => {
    const r = await alice.request("/hub/user/alice/tree?x=1");
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe("/user/alice/tree?x=1");
    const counting = await alice.request("/hub/user/alice/tree?redirects=2&x=1");
    expect(counting.status).toBe(302);
    expect(counting.headers.get("location")).toBe("/user/alice/tree?x=1&redirects=3");
  });

  it("the proxy forwards path and query unchanged, keeps Host, adds X-Forwarded-*, strips only the hub session cookie", async () => {
    const path = "/user/alice/api/contents/a%20b/../c?x=1&y=%2F&z";
    const r = await rawRequest(path, {
      host: "example.org:8443",
      cookie: "_xsrf=abc; slicehub-session=SECRET1; jupyterhub-user-alice=signed|value; __Host-slicehub-session=SECRET2; jupyterhub-session-id=0123; my-slicehub-session=kept",
      accept: "application/json",
    });
    expect(r.status).toBe(200);
    expect(r.headers["x-fake-singleuser"]).toBe("alice");
    const seen = JSON.parse(r.body) as { method: string; url: string; headers: Record<string, string> };
    expect(seen.url).toBe(path);
    expect(seen.headers.host).toBe("example.org:8443");
    expect(seen.headers["x-forwarded-host"]).toBe("example.org:8443");
    expect(seen.headers["x-forwarded-proto"]).toBe("http");
    expect(seen.headers["x-forwarded-for"]).toMatch(/127\.0\.0\.1/);
    expect(seen.headers["x-forwarded-port"]).toBeTruthy();
    expect(seen.headers.cookie).toBe("_xsrf=abc; jupyterhub-user-alice=signed|value; jupyterhub-session-id=0123; my-slicehub-session=kept");
    expect(seen.headers.cookie).not.toContain("SECRET");
  });

  it("/user/alice without the trailing slash, POST bodies and named servers are proxied too", async () => {
    const bare = await rawRequest("/user/alice", {});
    expect(JSON.parse(bare.body).url).toBe("/user/alice");
    const post = await rawRequest("/user/alice/api/contents", { "content-type": "application/json" }, "POST", '{"type":"notebook"}');
    expect(JSON.parse(post.body)).toMatchObject({ method: "POST", url: "/user/alice/api/contents", body: '{"type":"notebook"}' });
    // alice/bar is stopped: its path falls through to alice's default server, as CHP's longest-prefix match does.
    const bar = await rawRequest("/user/alice/bar/x", {});
    expect(JSON.parse(bar.body).url).toBe("/user/alice/bar/x");
    expect(bar.headers["x-fake-singleuser"]).toBe("alice");
  });

  it("login next= only goes to same-site paths; /user/… is kept (the proxy or the hub's /hub/user/… takes it from there)", async () => {
    const loginWithNext = async (next: string) => {
      const b = new CheckedBrowser(hub.url);
      const page = await (await b.request("/hub/login")).text();
      const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page)![1]!;
      return b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "alice", _xsrf: xsrf, next }) });
    };
    for (const evil of ["//evil.org", "https://evil.org", "/\\evil.org", "\\\\evil.org", "/\\/evil.org", "http:evil.org", "javascript:alert(1)", "/\tevil", " //evil.org"]) {
      const r = await loginWithNext(evil);
      expect(r.status, evil).toBe(302);
      expect(r.headers.get("location"), evil).toBe("/hub/home");
      // Already logged in, GET /hub/login?next= takes the same path.
      const again = await alice.request(`/hub/login?next=${encodeURIComponent(evil)}`);
      expect(again.headers.get("location"), evil).toBe("/hub/home");
    }
    expect((await loginWithNext("/user/alice/tree?x=1")).headers.get("location")).toBe("/user/alice/tree?x=1");
    expect((await loginWithNext("/hub/spawn")).headers.get("location")).toBe("/hub/spawn");
  });
});
