// One origin (path mode): what a page on a user's server can do with the visitor's hub cookies, replayed on
// the wire against the real daemon with node:http (not fetch, which adds a Sec-Fetch-Mode of its own), with
// the Fetch Metadata a browser would send: hub pages only for document navigations, the API only with the
// session's CSRF token, state changes only as form posts, and a tossed session cookie never chosen over the
// victim's real one nor logging them out. The same attacks in Chromium: browser-attacks.test.ts.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, HubProcess, rawRequest, type RawReply } from "./harness.js";

const FAKE = join(import.meta.dirname, "fixtures/fake-singleuser.mjs");

let hub: HubProcess;
let admin: Browser;
let alice: Browser;
let mallory: Browser;
let aliceCsrf: string;
let adminCsrf: string;
let aliceToken: string;

type Raw = RawReply;

/** One request exactly as given: no header of node's own beyond Host (and Content-Length for a body). */
const raw = (path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) => rawRequest(`${hub.url}${path}`, opts);

const cookieOf = (b: Browser) => `slicehub-session=${b.cookie("slicehub-session")}`;

/** What Chromium sends for each kind of request from a page on the hub's own origin. */
const DESTS: Record<string, Record<string, string>> = {
  iframe: { "sec-fetch-dest": "iframe", "sec-fetch-mode": "navigate", "sec-fetch-site": "same-origin" },
  frame: { "sec-fetch-dest": "frame", "sec-fetch-mode": "navigate", "sec-fetch-site": "same-origin" },
  object: { "sec-fetch-dest": "object", "sec-fetch-mode": "navigate", "sec-fetch-site": "same-origin" },
  embed: { "sec-fetch-dest": "embed", "sec-fetch-mode": "no-cors", "sec-fetch-site": "same-origin" },
  fetch: { "sec-fetch-dest": "empty", "sec-fetch-mode": "cors", "sec-fetch-site": "same-origin" },
  "fetch no-cors": { "sec-fetch-dest": "empty", "sec-fetch-mode": "no-cors", "sec-fetch-site": "same-origin" },
};
const NAVIGATION = { "sec-fetch-dest": "document", "sec-fetch-mode": "navigate", "sec-fetch-site": "same-origin", "sec-fetch-user": "?1" };

function expectBare403(r: Raw, who: string): void {
  expect(r.status).toBe(403);
  expect(r.headers["content-type"]).toMatch(/^text\/plain/);
  expect(r.body).toBe("Forbidden");
  expect(r.body).not.toContain(who);
  // Still every security header.
  expect(r.headers["content-security-policy"]).toBe("frame-ancestors 'none'");
  expect(r.headers["x-frame-options"]).toBe("DENY");
  expect(r.headers["cross-origin-opener-policy"]).toBe("noopener-allow-popups");
}

beforeAll(async () => {
  hub = await HubProcess.start({
    config: {
      auth: { kind: "dev", admin_users: ["admin"] },
      spawner: { cmd: [process.execPath, FAKE], args: [], start_timeout_s: 20 },
    },
  });
  admin = new Browser(hub.url);
  await admin.login("admin");
  alice = new Browser(hub.url);
  await alice.login("alice");
  mallory = new Browser(hub.url);
  await mallory.login("mallory");
  aliceCsrf = await alice.csrf();
  adminCsrf = await admin.csrf();
  // Through the session (fetch sends no Sec-Fetch-Dest or -Site: like a script, it passes).
  const t = await alice.request("/hub/api/users/alice/tokens", { method: "POST", headers: { "x-xsrftoken": aliceCsrf }, body: "{}" });
  expect(t.status).toBe(201);
  aliceToken = ((await t.json()) as { token: string }).token;
  const started = await raw("/hub/api/users/alice/server", { method: "POST", headers: { authorization: `token ${aliceToken}` } });
  expect(started.status).toBe(201);
});

afterAll(async () => {
  await hub?.destroy();
});

describe("hub pages are served only to document navigations", () => {
  const authorize = "/hub/api/oauth2/authorize?client_id=jupyterhub-user-alice&redirect_uri=%2Fuser%2Falice%2Foauth_callback&response_type=code&state=s1";
  const pages = (): [string, Browser, string][] => [
    ["/hub/home", alice, "alice"],
    ["/hub/token", alice, "alice"],
    ["/hub/admin", admin, "admin"],
    [authorize, alice, "alice"],
  ];

  it("an iframe, frame, object, embed or fetch gets a bare 403 that names no one", async () => {
    for (const [path, b, who] of pages()) {
      for (const [kind, meta] of Object.entries(DESTS)) {
        const r = await raw(path, { headers: { cookie: cookieOf(b), ...meta } });
        expect(r.status, `${kind} ${path}`).toBe(403);
        expectBare403(r, who);
        expect(r.headers["set-cookie"], `${kind} ${path}`).toBeUndefined();
      }
    }
  });

  it("a document navigation, same-site or cross-site, and a request without Fetch Metadata get the page", async () => {
    for (const [path, b, who] of pages()) {
      for (const meta of [NAVIGATION, { ...NAVIGATION, "sec-fetch-site": "cross-site" }, {}]) {
        const r = await raw(path, { headers: { cookie: cookieOf(b), ...meta } });
        if (path === authorize) {
          // Hands out a code to the server's callback.
          expect(r.status, JSON.stringify(meta)).toBe(302);
          expect(r.headers.location).toMatch(/^\/user\/alice\/oauth_callback\?code=[^&]+&state=s1$/);
        } else {
          expect(r.status, `${path} ${JSON.stringify(meta)}`).toBe(200);
          expect(r.body).toContain(who);
        }
        expect(r.headers["cross-origin-opener-policy"]).toBe("noopener-allow-popups");
        expect(r.headers["content-security-policy"]).toBe("frame-ancestors 'none'");
        expect(r.headers.vary).toMatch(/Sec-Fetch-Dest/);
      }
    }
  });

  it("a script's API call that reaches a stopped server still gets the JSON 424 JupyterLab reads; its pages stay documents-only", async () => {
    const cookie = cookieOf(mallory);
    const api = await raw("/hub/user/mallory/api/kernels", { headers: { cookie, ...DESTS.fetch } });
    expect(api.status).toBe(424);
    expect(api.headers["content-type"]).toMatch(/^application\/json/);
    expect(api.body).not.toContain("_xsrf");
    // A page (the start form, with the CSRF token) only as a document.
    expectBare403(await raw("/hub/user/mallory/tree", { headers: { cookie, ...DESTS.fetch } }), "mallory");
    expectBare403(await raw("/hub/user/mallory/tree", { headers: { cookie, ...DESTS.fetch, accept: "text/html" } }), "mallory");
    // %61pi is not "api" to the page handler, so not to the gate either.
    expectBare403(await raw("/hub/user/mallory/%61pi/kernels", { headers: { cookie, ...DESTS.fetch } }), "mallory");
    const page = await raw("/hub/user/mallory/tree", { headers: { cookie, ...NAVIGATION } });
    expect(page.status).toBe(424);
    expect(page.body).toContain('name="_xsrf"');
  });

  it("the page's own style sheet and images load as subresources", async () => {
    const style = { "sec-fetch-dest": "style", "sec-fetch-mode": "no-cors", "sec-fetch-site": "same-origin" };
    const image = { "sec-fetch-dest": "image", "sec-fetch-mode": "no-cors", "sec-fetch-site": "same-origin" };
    expect((await raw("/hub/static/style.css", { headers: style })).status).toBe(200);
    expect((await raw("/hub/logo", { headers: image })).status).toBe(200);
    expect((await raw("/hub/favicon.ico", { headers: image })).status).toBe(200);
  });
});

describe("cookie-authenticated requests", () => {
  it("an API GET needs the session's CSRF token, in X-XSRFToken or ?_xsrf; with a token it needs none", async () => {
    const cookie = cookieOf(alice);
    const none = await raw("/hub/api/user", { headers: { cookie, ...DESTS.fetch } });
    expect(none.status).toBe(403);
    expect(none.body).not.toContain('"name"');
    expect((await raw("/hub/api/user", { headers: { cookie } })).status).toBe(403);
    expect((await raw("/hub/api/user", { headers: { cookie, "x-xsrftoken": "wrong" } })).status).toBe(403);
    expect((await raw("/hub/api/user", { headers: { cookie, "x-xsrftoken": adminCsrf } })).status).toBe(403);
    const header = await raw("/hub/api/user", { headers: { cookie, "x-xsrftoken": aliceCsrf, ...DESTS.fetch } });
    expect(header.status).toBe(200);
    expect(JSON.parse(header.body)).toMatchObject({ name: "alice" });
    const query = await raw(`/hub/api/user?_xsrf=${encodeURIComponent(aliceCsrf)}`, { headers: { cookie } });
    expect(query.status).toBe(200);
    expect((await raw("/hub/api/users/alice/tokens", { headers: { cookie } })).status).toBe(403);
    const token = await raw("/hub/api/user", { headers: { authorization: `token ${aliceToken}`, ...DESTS.fetch } });
    expect(token.status).toBe(200);
    expect(JSON.parse(token.body)).toMatchObject({ name: "alice" });
  });

  it("the spawn-pending page's EventSource carries the token in the query, and the query is not logged", async () => {
    const page = await raw("/hub/spawn-pending/alice", { headers: { cookie: cookieOf(alice), ...NAVIGATION } });
    // The server is running: the page sends the browser on. The script still reads data-xsrf.
    expect([200, 302]).toContain(page.status);
    const es = { "sec-fetch-dest": "empty", "sec-fetch-mode": "cors", "sec-fetch-site": "same-origin", accept: "text/event-stream" };
    expect((await raw("/hub/api/users/alice/server/progress", { headers: { cookie: cookieOf(alice), ...es } })).status).toBe(403);
    const r = await raw(`/hub/api/users/alice/server/progress?_xsrf=${encodeURIComponent(aliceCsrf)}`, { headers: { cookie: cookieOf(alice), ...es } });
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(r.body).toContain('"ready":true');
    expect(hub.output).not.toContain(aliceCsrf);
  });

  it("a state change with the right token is refused unless it is a form post (a navigation)", async () => {
    const cookie = cookieOf(alice);
    // A script's fetch to the API, with the token it could have read: refused.
    const api = await raw("/hub/api/users/alice/tokens", { method: "POST", headers: { cookie, "x-xsrftoken": aliceCsrf, ...DESTS.fetch, origin: hub.url }, body: "{}" });
    expect(api.status).toBe(403);
    // A script's fetch to a page's form handler: the page gate answers.
    const form = new URLSearchParams({ _xsrf: aliceCsrf, note: "stolen", expires: "1d", scope: "full" }).toString();
    const formHeaders = { cookie, "content-type": "application/x-www-form-urlencoded", origin: hub.url };
    expectBare403(await raw("/hub/token", { method: "POST", headers: { ...formHeaders, ...DESTS.fetch }, body: form }), "alice");
    // A form post from another site (its cookie would be SameSite=Lax-withheld anyway) is refused too.
    const cross = await raw("/hub/token", { method: "POST", headers: { ...formHeaders, ...NAVIGATION, "sec-fetch-site": "cross-site" }, body: form });
    expect(cross.status).toBe(403);
    // The hub's own form: fine.
    const own = await raw("/hub/token", { method: "POST", headers: { ...formHeaders, ...NAVIGATION }, body: form });
    expect(own.status).toBe(200);
    expect(own.body).toContain('id="token"');
  });
});

describe("tossed session cookies (same name, other path or garbage)", () => {
  const whoFor = async (cookie: string, csrf = aliceCsrf) => {
    const r = await raw("/hub/api/user", { headers: { cookie, "x-xsrftoken": csrf } });
    return r.status === 200 ? (JSON.parse(r.body) as { name: string }).name : `status ${r.status}`;
  };
  const real = () => alice.cookie("slicehub-session")!;

  it("the victim's own valid session wins: garbage first, garbage last, or another user's valid session first", async () => {
    expect(await whoFor(`slicehub-session=garbage; other=1; slicehub-session=${real()}`)).toBe("alice");
    expect(await whoFor(`slicehub-session=${real()}; slicehub-session=garbage`)).toBe("alice");
    expect(await whoFor(`slicehub-session=${real()}; slicehub-session=`)).toBe("alice");
    // mallory's page tossed his own session onto a longer path, which the browser lists first.
    expect(await whoFor(`slicehub-session=${mallory.cookie("slicehub-session")}; slicehub-session=${real()}`)).toBe("alice");
    const home = await raw("/hub/home", { headers: { cookie: `slicehub-session=${mallory.cookie("slicehub-session")}; slicehub-session=garbage; slicehub-session=${real()}`, ...NAVIGATION } });
    expect(home.status).toBe(200);
    expect(home.body).toContain('<span class="who">alice</span>');
  });

  it("the session cookie is set on Path=/ (so the hub's is listed last), HttpOnly", async () => {
    const b = new Browser(hub.url);
    await b.login("alice");
    const r = await b.request("/hub/login", { method: "GET" });
    await r.arrayBuffer();
    expect(b.cookies.find((c) => c.name === "slicehub-session")?.path).toBe("/");
  });

  it("logging out with a garbage cookie listed too ends the real session and clears the real cookie", async () => {
    const b = new Browser(hub.url);
    await b.login("alice");
    const value = b.cookie("slicehub-session")!;
    const out = await raw("/hub/logout", { headers: { cookie: `slicehub-session=garbage; slicehub-session=${value}`, ...NAVIGATION } });
    expect(out.status).toBe(302);
    const cleared = (out.headers["set-cookie"] ?? []).filter((c) => c.startsWith("slicehub-session=;") || c.startsWith("slicehub-session=\"\""));
    expect(cleared.some((c) => /Path=\/(;|$)/.test(c))).toBe(true);
    const after = await raw("/hub/home", { headers: { cookie: `slicehub-session=${value}`, ...NAVIGATION } });
    expect(after.status).toBe(302);
    expect(after.headers.location).toMatch(/^\/hub\/login/);
    // The other alice session is untouched.
    expect(await whoFor(`slicehub-session=${real()}`)).toBe("alice");
  });
});
