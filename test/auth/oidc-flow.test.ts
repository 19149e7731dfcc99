// OIDC login end to end: the real daemon (dist/) against a real OpenID provider, a cookie-jar client following
// every redirect between the two. Everything listens on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loginErrorText } from "../../web/login-pages.js";
import { Browser, type HubProcess } from "../e2e/harness.js";
import { go, loginAs } from "./follow.js";
import { CLIENT_ID, CLIENT_SECRET, startHubWithIdp } from "./hub-with-idp.js";
import type { Idp } from "./idp.js";

/** The page's visible text, entities decoded, to compare with the texts the hub renders. */
async function pageText(res: Response): Promise<string> {
  const html = await res.text();
  return html
    .replace(/<[^>]*>/g, " ")
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ");
}

describe("OIDC login against a real provider", () => {
  let idp: Idp;
  let hub: HubProcess;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ idp, hub, cleanup } = await startHubWithIdp({ registerHub: false }));
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it("shows a clear error while the provider cannot be read, and retries later", async () => {
    const b = new Browser(hub.url);
    const down = await b.request("/hub/oauth_login");
    expect(down.status).toBe(503);
    expect(await pageText(down)).toContain("cannot be reached right now");
    await hub.waitForLog(/cannot read the OIDC provider's configuration/);

    idp.setRedirectUri(`${hub.url}/hub/oauth_callback`);
    const up = await b.request("/hub/oauth_login");
    expect(up.status).toBe(303);
    expect(up.headers.get("location")).toMatch(new RegExp(`^${idp.issuer}/auth\\?`));
  });

  it("offers a button that starts the provider's login", async () => {
    const res = await new Browser(hub.url).request("/hub/login?next=%2Fhub%2Ftoken");
    const html = await res.text();
    expect(html).toContain(`Sign in with ${new URL(idp.issuer).host}`);
    expect(html).toContain('href="/hub/oauth_login?next=%2Fhub%2Ftoken"');
  });

  it("sends an exact redirect_uri, PKCE S256, state, nonce, the scopes and the login hint", async () => {
    const res = await new Browser(hub.url).request("/hub/oauth_login?login_hint=ada");
    const q = new URL(res.headers.get("location")!).searchParams;
    expect(q.get("redirect_uri")).toBe(`${hub.url}/hub/oauth_callback`);
    expect(q.get("code_challenge_method")).toBe("S256");
    expect(q.get("code_challenge")).toMatch(/^[\w-]{43}$/);
    expect(q.get("state")).toBeTruthy();
    expect(q.get("nonce")).toBeTruthy();
    expect(q.get("scope")).toBe("openid email profile");
    expect(q.get("login_hint")).toBe("ada");
    expect(q.get("client_id")).toBe(CLIENT_ID);
  });

  it("logs in and lands on the home page", async () => {
    const b = new Browser(hub.url);
    const { res, url } = await go(b, "/hub/login");
    expect(url.pathname).toBe("/hub/login");
    const button = /href="(\/hub\/oauth_login[^"]*)"/.exec(await res.text())![1]!.replace(/&amp;/g, "&");
    const done = await go(b, `${button}&login_hint=ada`);
    expect(done.url.pathname).toBe("/hub/home");
    expect(done.res.status).toBe(200);
    expect(await done.res.text()).toContain("ada");
    // A cookie-authenticated API GET carries the session's CSRF token.
    const me = (await (await b.request("/hub/api/user", { headers: { "x-xsrftoken": await b.csrf() } })).json()) as { name: string; admin: boolean };
    expect(me).toMatchObject({ name: "ada", admin: false });
  });

  it("makes admin_users admins (emails compared in lower case)", async () => {
    const b = new Browser(hub.url);
    expect((await loginAs(b, "boss")).url.pathname).toBe("/hub/home");
    expect(await (await b.request("/hub/api/user", { headers: { "x-xsrftoken": await b.csrf() } })).json()).toMatchObject({ name: "boss", admin: true });
    const guest = new Browser(hub.url);
    expect((await loginAs(guest, "guest")).url.pathname).toBe("/hub/home");
  });

  it.each([
    ["unverified", "email_not_verified"],
    ["stringly", "email_not_verified"],
    ["spoof", "wrong_domain"],
    ["blocked", "blocked"],
    ["stranger", "wrong_domain"],
  ])("refuses %s with the reason %s", async (hint, reason) => {
    const b = new Browser(hub.url);
    const { res, url } = await loginAs(b, hint);
    expect(url.pathname + url.search).toBe(`/hub/login?error=${reason}`);
    expect(await pageText(res)).toContain(loginErrorText(reason));
    expect(b.cookie("slicehub-session")).toBeUndefined();
    await hub.waitForLog(new RegExp(`"msg":"login refused","reason":"${reason}"`));
  });

  it("never reflects an unknown error code", async () => {
    const res = await new Browser(hub.url).request("/hub/login?error=%3Cb%3EYou%20won%3C%2Fb%3E");
    const text = await pageText(res);
    expect(text).toContain("The login did not succeed");
    expect(text).not.toContain("You won");
  });

  it("refuses a replayed callback", async () => {
    const b = new Browser(hub.url);
    const started = await go(b, "/hub/oauth_login?login_hint=grace", true);
    const sealed = b.cookie("slicehub-oauth-state")!;
    expect(sealed).toBeTruthy();
    const link = started.callback!.pathname + started.callback!.search;
    expect((await go(b, link)).url.pathname).toBe("/hub/home");
    // The callback deleted the state cookie; even with it put back, the attempt was used up.
    expect(b.cookie("slicehub-oauth-state")).toBeUndefined();
    b.cookies.push({ name: "slicehub-oauth-state", value: sealed, path: "/hub/oauth_callback" });
    const replay = await b.request(link);
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toBe("/hub/login?error=expired");
    await hub.waitForLog(/"msg":"login refused","reason":"expired","why":"this login attempt was used already"/);
  });

  it("refuses a callback whose state cookie was altered, or is missing", async () => {
    const b = new Browser(hub.url);
    const started = await go(b, "/hub/oauth_login?login_hint=grace", true);
    const link = started.callback!.pathname + started.callback!.search;
    const jar = b.cookies.find((c) => c.name === "slicehub-oauth-state")!;
    const [header, , iv, ciphertext, tag] = jar.value.split(".");
    // Flip a bit of the ciphertext: A256GCM's tag no longer matches.
    const flipped = Buffer.from(ciphertext!, "base64url");
    flipped[0]! ^= 1;
    jar.value = [header, "", iv, flipped.toString("base64url"), tag].join(".");
    const altered = await go(b, link);
    expect(altered.url.pathname + altered.url.search).toBe("/hub/login?error=expired");
    expect(b.cookie("slicehub-session")).toBeUndefined();
    await hub.waitForLog(/"reason":"expired","why":"the state cookie is not one this hub sealed/);

    const none = await go(new Browser(hub.url), link);
    expect(none.url.pathname + none.url.search).toBe("/hub/login?error=expired");
  });

  it("a state cookie a page on this origin tossed, listed before or after the real one, does not spoil the login", async () => {
    for (const path of ["/hub/oauth_callback/", "/"]) {
      const b = new Browser(hub.url);
      const started = await go(b, "/hub/oauth_login?login_hint=grace", true);
      // A longer path is listed first, a shorter one last.
      b.cookies.push({ name: "slicehub-oauth-state", value: "garbage", path });
      const done = await go(b, started.callback!.pathname + started.callback!.search);
      expect(done.url.pathname, path).toBe("/hub/home");
      expect(b.cookie("slicehub-session"), path).toBeDefined();
    }
  });

  it("keeps the state cookie small, HttpOnly, SameSite=Lax and on the callback path only", async () => {
    const res = await new Browser(hub.url).request(`/hub/oauth_login?next=${encodeURIComponent(`/hub/home?q=${"é".repeat(500)}`)}`);
    const line = res.headers.getSetCookie().find((l) => l.startsWith("slicehub-oauth-state="))!;
    expect(line).toMatch(/; Max-Age=600;/);
    expect(line).toMatch(/; Path=\/hub\/oauth_callback;/);
    expect(line).toMatch(/; HttpOnly/);
    expect(line).toMatch(/; SameSite=Lax/);
    expect(line.length).toBeLessThan(2500);
    // Nothing readable in it: the nonce the provider was sent does not appear.
    const nonce = new URL(res.headers.get("location")!).searchParams.get("nonce")!;
    expect(line).not.toContain(nonce);
  });

  it.each(["//evil.org", "https://evil.org", "/\\evil.org"])("ignores next=%s", async (next) => {
    const { url } = await loginAs(new Browser(hub.url), "hopper", next);
    expect(url.href).toBe(`${hub.url}/hub/home`);
  });

  it("keeps a same-site next", async () => {
    const { url } = await loginAs(new Browser(hub.url), "hopper", "/hub/home?x=1");
    expect(url.pathname + url.search).toBe("/hub/home?x=1");
  });

  it("refuses a callback carrying another browser's state, which still works in its own browser", async () => {
    const victim = new Browser(hub.url);
    const attacker = new Browser(hub.url);
    const started = await go(attacker, "/hub/oauth_login?login_hint=linus", true);
    const link = started.callback!.pathname + started.callback!.search;
    const refused = await go(victim, link);
    expect(refused.url.pathname + refused.url.search).toBe("/hub/login?error=expired");
    expect(victim.cookie("slicehub-session")).toBeUndefined();
    const own = await go(attacker, link);
    expect(own.url.pathname).toBe("/hub/home");
  });

  it("refuses a second provider account that maps to a taken user name", async () => {
    expect((await loginAs(new Browser(hub.url), "ada")).url.pathname).toBe("/hub/home");
    const { res, url } = await loginAs(new Browser(hub.url), "impostor");
    expect(url.pathname + url.search).toBe("/hub/login?error=subject_collision");
    expect(await pageText(res)).toContain(loginErrorText("subject_collision"));
  });

  it("never logs a code, token, ID token or the client secret", async () => {
    expect(idp.issued.length).toBeGreaterThan(5);
    for (const secret of [...idp.issued, CLIENT_SECRET]) expect(hub.output).not.toContain(secret);
    expect(hub.output).toContain('"msg":"user logged in"');
  });
});
