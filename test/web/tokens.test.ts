// The tokens page: a new token is shown once and works against the API until it is revoked; the page's
// POSTs need the session's CSRF token; and error pages never show internals.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, type HubProcess } from "../e2e/harness.js";
import { startWebHub } from "./hub.js";

describe("tokens page", () => {
  let hub: HubProcess;
  let alice: Browser;

  beforeAll(async () => {
    hub = await startWebHub();
    alice = new Browser(hub.url);
    await alice.login("alice");
  });

  afterAll(async () => {
    await hub?.destroy();
  });

  const asToken = (token: string, path = "/hub/api/user", init: RequestInit = {}) =>
    fetch(`${hub.url}${path}`, { ...init, redirect: "manual", headers: { authorization: `token ${token}` } });
  const create = async (fields: Record<string, string>) => alice.postForm("/hub/token", { _xsrf: await alice.csrf(), ...fields });
  const tokenIn = (page: string) => /id="token"[^>]*value="([^"]+)"/.exec(page)?.[1];

  it("creates a token that is shown once, works against the API, and stops working when revoked", async () => {
    const r = await create({ note: "ci job", expires: "7d" });
    expect(r.status).toBe(200);
    expect(r.headers.get("cache-control")).toBe("no-store");
    const token = tokenIn(await r.text())!;
    expect(token).toBeTruthy();

    const list = await (await alice.request("/hub/token")).text();
    expect(list).toContain("ci job");
    expect(list).not.toContain(token);

    const me = await asToken(token);
    expect(me.status).toBe(200);
    expect(((await me.json()) as { name: string }).name).toBe("alice");

    const id = /name="id" value="(\d+)"/.exec(list)![1]!;
    const revoke = await alice.postForm("/hub/token/revoke", { _xsrf: await alice.csrf(), id });
    expect(revoke.status).toBe(303);
    expect((await asToken(token)).status).toBe(403);
    expect(await (await alice.request("/hub/token")).text()).not.toContain("ci job");
  });

  it("expiry follows the choice; “never” has none", async () => {
    const page = await (await create({ note: "forever", expires: "never" })).text();
    expect(page).toContain("Expires: never");
    const day = await (await create({ note: "one day", expires: "1d" })).text();
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(day).toContain(`Expires: ${tomorrow}`);
  });

  it("refuses creating and revoking without the CSRF token, and revoking what is not yours", async () => {
    expect((await alice.postForm("/hub/token", { note: "x", expires: "1d" })).status).toBe(403);
    const token = tokenIn(await (await create({ note: "keep", expires: "1d" })).text())!;
    const id = /name="id" value="(\d+)"/.exec(await (await alice.request("/hub/token")).text())![1]!;
    expect((await alice.postForm("/hub/token/revoke", { id })).status).toBe(403);
    const bob = new Browser(hub.url);
    await bob.login("bob");
    expect((await bob.postForm("/hub/token/revoke", { _xsrf: await bob.csrf(), id })).status).toBe(404);
    expect((await asToken(token)).status).toBe(200);
  });

  it("lists the tokens the hub made for a running server apart, without a revoke button", async () => {
    expect((await alice.postForm("/hub/spawn/alice", { _xsrf: await alice.csrf() })).status).toBe(302);
    const page = await (await alice.request("/hub/token")).text();
    const servers = page.slice(page.indexOf("Used by your servers"));
    expect(servers).toContain("Server at /user/alice/");
    expect(servers).not.toContain("Revoke");
  });

  it("an API token that may only read cannot use the page to mint a stronger one", async () => {
    const t = await alice.request("/hub/api/users/alice/tokens", {
      method: "POST",
      headers: { "x-xsrftoken": await alice.csrf() },
      body: JSON.stringify({ scopes: ["read:users!user=alice"] }),
    });
    const weak = ((await t.json()) as { token: string }).token;
    expect((await asToken(weak, "/hub/token")).status).toBe(403);
    const minted = await asToken(weak, "/hub/token", { method: "POST", body: new URLSearchParams({ note: "x", expires: "never" }) });
    expect(minted.status).toBe(403);
  });

  it("error pages use the layout and never show internals", async () => {
    const missing = await alice.request("/hub/no-such-page");
    expect(missing.status).toBe(404);
    const page = await missing.text();
    expect(page).toContain("404 Not found");
    expect(page).toContain('href="/hub/token"'); // the header, for a logged-in person
    const broken = await alice.request("/hub/token", {
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=x" },
      body: "--x\r\nnot a part",
    });
    expect(broken.status).toBe(400);
    const text = await broken.text();
    expect(text).toContain("The form could not be read.");
    expect(text).not.toMatch(/ at |node_modules|\.js:\d+/);
  });
});
