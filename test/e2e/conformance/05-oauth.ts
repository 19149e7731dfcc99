// Conformance, §3: the OAuth provider.
import { createHash, randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Browser } from "../harness.js";
import { admin, alice, browserAs, CheckedBrowser, expectApiError, hub, req, serverEnv, tokens } from "./hub.js";

describe("OAuth provider (§3)", () => {
  // Needs alice's default server (its client jupyterhub-user-alice is registered at spawn).
  const CLIENT = "jupyterhub-user-alice";
  const REDIRECT = "/user/alice/oauth_callback";
  let secret = "";
  beforeAll(async () => {
    secret = (await serverEnv(tokens.admin, "alice")).JUPYTERHUB_API_TOKEN!;
  });

  const authorizePath = (params: Record<string, string>) => `/hub/api/oauth2/authorize?${new URLSearchParams(params).toString()}`;
  const standard = (state = "s") => ({ client_id: CLIENT, redirect_uri: REDIRECT, response_type: "code", state });

  async function code(b: Browser, extra: Record<string, string> = {}): Promise<string> {
    const r = await b.request(authorizePath({ ...standard(), ...extra }));
    expect(r.status, await r.text()).toBe(302);
    const c = new URL(r.headers.get("location")!, hub.url).searchParams.get("code");
    expect(c).toBeTruthy();
    return c!;
  }

  /** The single-user server's token request: form body, secret in the form, its own token in the header too. */
  const exchange = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    req("/hub/api/oauth2/token", {
      method: "POST",
      raw: new URLSearchParams(fields).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `token ${secret}`, ...headers },
    });
  const grant = (c: string, extra: Record<string, string> = {}) =>
    exchange({ client_id: CLIENT, client_secret: secret, grant_type: "authorization_code", code: c, redirect_uri: REDIRECT, ...extra });

  it("without a hub login: 302 /hub/login?next=<the authorize URL>, and logging in leads back to it", async () => {
    const path = authorizePath(standard());
    const r = await req(path);
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe(`/hub/login?next=${encodeURIComponent(path)}`);

    const b = new CheckedBrowser(hub.url);
    const page = await (await b.request(r.headers.get("location")!)).text();
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page)![1]!;
    const next = /name="next" value="([^"]+)"/.exec(page)![1]!.replaceAll("&amp;", "&");
    expect(next).toBe(path);
    const login = await b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "alice", _xsrf: xsrf, next }) });
    expect(login.status).toBe(302);
    expect(login.headers.get("location")).toBe(path);
    const again = await b.request(path);
    expect(again.status).toBe(302);
    expect(again.headers.get("location")).toMatch(/^\/user\/alice\/oauth_callback\?/);
  });

  it("400 without redirect for an unknown client and for a redirect_uri that is not string-equal", async () => {
    for (const params of [
      { ...standard(), client_id: "jupyterhub-user-nobody" },
      { ...standard(), redirect_uri: "/user/alice/other" },
      { ...standard(), redirect_uri: "/user/alice/oauth_callback/" },
      { ...standard(), redirect_uri: `${hub.url}/user/alice/oauth_callback` },
    ]) {
      const r = await alice.request(authorizePath(params));
      expect(r.status, JSON.stringify(params)).toBe(400);
      expect(r.headers.get("location")).toBeNull();
    }
  });

  it("302 to the redirect_uri with a code and the state echoed exactly", async () => {
    const states = [
      "eyJ1dWlkIjogIjBmMTJhIiwgIm5leHRfdXJsIjogIi91c2VyL2FsaWNlL3RyZWUifQ", // 3.x: b64url JSON, unpadded
      "8Y2fpOnRwMgtCBgBtxnp6Q", // 5.x: opaque id
      "a b+c/=?&%é", // anything at all
    ];
    for (const state of states) {
      const r = await alice.request(authorizePath(standard(state)));
      expect(r.status).toBe(302);
      const loc = r.headers.get("location")!;
      expect(loc.startsWith(`${REDIRECT}?`)).toBe(true);
      const q = new URL(loc, hub.url).searchParams;
      expect(q.get("state")).toBe(state);
      expect(q.get("code")).toMatch(/^\S{16,}$/);
    }
    // Without redirect_uri the registered one is used; unknown extra parameters are ignored.
    const r = await alice.request(authorizePath({ client_id: CLIENT, response_type: "code", state: "x", scope: "whatever", foo: "bar" }));
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toMatch(/^\/user\/alice\/oauth_callback\?code=[^&]+&state=x$/);
  });

  it("a user without access to the server gets 403; an admin may authorize", async () => {
    const bob = await browserAs("bob");
    const r = await bob.request(authorizePath(standard()));
    expect(r.status).toBe(403);
    expect(r.headers.get("location")).toBeNull();
    const a = await admin.request(authorizePath(standard()));
    expect(a.status).toBe(302);
  });

  it("token endpoint: success reply is exactly the real hub's shape, no-store", async () => {
    const r = await grant(await code(alice));
    expect(r.status, r.text).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(r.headers.get("pragma")).toBe("no-cache");
    expect(r.json).toEqual({ access_token: expect.stringMatching(/^\S{20,}$/), token_type: "Bearer", expires_in: 1209600, scope: expect.any(String) });
    expect((r.json.scope as string).split(" ")).toContain("access:servers!server=alice/");
  });

  it("the issued token identifies alice with the browser's session_id and the granted scopes", async () => {
    const r = await grant(await code(alice));
    const me = await req("/hub/api/user", { headers: { authorization: `Bearer ${r.json.access_token}` } });
    expect(me.status).toBe(200);
    expect(me.json).toMatchObject({ kind: "user", name: "alice", groups: [], session_id: alice.cookie("jupyterhub-session-id") });
    expect([...me.json.scopes].sort()).toEqual(["access:servers!server=alice/", "read:users:groups!user=alice", "read:users:name!user=alice"]);
  });

  it("redirect_uri may be omitted from the token request; extra parameters are ignored", async () => {
    const c = await code(alice);
    const r = await exchange({ client_id: CLIENT, client_secret: secret, grant_type: "authorization_code", code: c, code_verifier: "unused-without-a-challenge" });
    expect(r.status, r.text).toBe(200);
  });

  it("a code is single use: the second exchange is 400 invalid_grant", async () => {
    const c = await code(alice);
    expect((await grant(c)).status).toBe(200);
    const again = await grant(c);
    expect(again.status).toBe(400);
    expect(again.json).toMatchObject({ error: "invalid_grant" });
  });

  it("a JSON body is 400 unsupported_grant_type", async () => {
    const c = await code(alice);
    const r = await req("/hub/api/oauth2/token", {
      method: "POST",
      body: { client_id: CLIENT, client_secret: secret, grant_type: "authorization_code", code: c, redirect_uri: REDIRECT },
    });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: "unsupported_grant_type" });
  });

  it("a wrong or missing secret, or an unknown client, is 401 invalid_client", async () => {
    const c = await code(alice);
    const cases: Record<string, string>[] = [
      { client_id: CLIENT, client_secret: "wrong", grant_type: "authorization_code", code: c },
      { client_id: CLIENT, grant_type: "authorization_code", code: c },
      { client_id: "jupyterhub-user-nobody", client_secret: secret, grant_type: "authorization_code", code: c },
    ];
    for (const fields of cases) {
      const r = await exchange(fields);
      expect(r.status, JSON.stringify(fields)).toBe(401);
      expect(r.json).toMatchObject({ error: "invalid_client" });
    }
  });

  it("other grant types are refused; a redirect_uri that differs is refused", async () => {
    const r = await exchange({ client_id: CLIENT, client_secret: secret, grant_type: "refresh_token", refresh_token: "x" });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: "unsupported_grant_type" });
    const mismatch = await grant(await code(alice), { redirect_uri: "/user/alice/elsewhere" });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json).toHaveProperty("error");
    expect((await grant("no-such-code")).json).toMatchObject({ error: "invalid_grant" });
  });

  it("PKCE S256: the verifier must match the challenge sent to authorize", async () => {
    const verifier = randomBytes(48).toString("base64url");
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const pkce = { code_challenge: challenge, code_challenge_method: "S256" };

    const wrong = await grant(await code(alice, pkce), { code_verifier: randomBytes(48).toString("base64url") });
    expect(wrong.status).toBe(400);
    expect(wrong.json).toMatchObject({ error: "invalid_grant" });
    const missing = await grant(await code(alice, pkce));
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({ error: "invalid_grant" });
    const right = await grant(await code(alice, pkce), { code_verifier: verifier });
    expect(right.status, right.text).toBe(200);
  });

  it("an OAuth token only identifies: it cannot manage servers or tokens", async () => {
    const t = (await grant(await code(alice))).json.access_token as string;
    expectApiError(await req("/hub/api/users/alice/tokens", { method: "POST", token: t, body: {} }), 403);
    expectApiError(await req("/hub/api/users/alice/server", { method: "DELETE", token: t }), 403);
    expectApiError(await req("/hub/api/users/alice/activity", { method: "POST", token: t, body: { last_activity: new Date().toISOString() } }), 403);
  });

  it("each server is its own client: codes do not cross clients, and a stopped server's client and token are gone (§3.1)", async () => {
    // Start alice/bar (its record exists from above, stopped), use it, stop it again.
    expect((await req("/hub/api/users/alice/servers/bar", { method: "POST", token: tokens.alice })).status).toBe(201);
    const barSecret = (await serverEnv(tokens.admin, "alice", "bar")).JUPYTERHUB_API_TOKEN!;
    const barAuth = await alice.request(authorizePath({ client_id: "jupyterhub-user-alice~bar", redirect_uri: "/user/alice/bar/oauth_callback", response_type: "code", state: "b" }));
    expect(barAuth.status).toBe(302);
    expect(barAuth.headers.get("location")).toMatch(/^\/user\/alice\/bar\/oauth_callback\?code=/);
    // The default server's redirect_uri is not bar's.
    expect((await alice.request(authorizePath({ client_id: "jupyterhub-user-alice~bar", redirect_uri: REDIRECT, response_type: "code" }))).status).toBe(400);

    const crossed = await exchange({ client_id: "jupyterhub-user-alice~bar", client_secret: barSecret, grant_type: "authorization_code", code: await code(alice) });
    expect(crossed.status).toBe(400);
    expect(crossed.json).toMatchObject({ error: "invalid_grant" });
    // One server's token is not another client's secret.
    const wrongSecret = await exchange({ client_id: "jupyterhub-user-alice~bar", client_secret: secret, grant_type: "authorization_code", code: "x" });
    expect(wrongSecret.status).toBe(401);

    const barCode = new URL(barAuth.headers.get("location")!, hub.url).searchParams.get("code")!;
    const barToken = await exchange({ client_id: "jupyterhub-user-alice~bar", client_secret: barSecret, grant_type: "authorization_code", code: barCode, redirect_uri: "/user/alice/bar/oauth_callback" });
    expect(barToken.status, barToken.text).toBe(200);
    const me = await req("/hub/api/user", { token: barToken.json.access_token });
    expect(me.json.scopes).toContain("access:servers!server=alice/bar");
    expect(me.json.scopes).not.toContain("access:servers!server=alice/");

    expect((await req("/hub/api/users/alice/servers/bar", { method: "DELETE", token: tokens.alice })).status).toBe(204);
    expect((await alice.request(authorizePath({ client_id: "jupyterhub-user-alice~bar", response_type: "code" }))).status).toBe(400);
    expectApiError(await req("/hub/api/user", { token: barSecret }), 403);
    expectApiError(await req("/hub/api/user", { token: barToken.json.access_token }), 403);
    // alice's default server and its client are untouched.
    expect((await alice.request(authorizePath(standard()))).status).toBe(302);
  });

  it("logging out of the hub revokes the OAuth tokens issued through that session only", async () => {
    const other = await browserAs("alice");
    const viaOther = (await grant(await code(other))).json.access_token as string;
    const viaMain = (await grant(await code(alice))).json.access_token as string;
    expect((await req("/hub/api/user", { token: viaOther })).status).toBe(200);
    expect((await other.request("/hub/logout")).status).toBe(302);
    expectApiError(await req("/hub/api/user", { token: viaOther }), 403);
    expect((await req("/hub/api/user", { token: viaMain })).status).toBe(200);
  });
});
