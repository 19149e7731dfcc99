// Behind TLS (public_url https) the hub's session cookie is Secure and __Host- (so Path=/ and no Domain):
// browsers then refuse one set by anything but this host over https, e.g. a sibling subdomain. The same over
// slicehub's own https listener, and with forged X-Forwarded-Proto: test/e2e/https.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, HubProcess } from "./harness.js";

describe("cookies when the public URL is https", () => {
  let hub: HubProcess;
  beforeAll(async () => {
    // Dev login needs a loopback public URL; https on localhost is enough for the cookie rules.
    hub = await HubProcess.start({ config: { public_url: "https://localhost:8443" } });
  });
  afterAll(async () => {
    await hub?.destroy();
  });

  it("names the session cookie __Host-, Secure, HttpOnly, SameSite=Lax, Path=/", async () => {
    const b = new Browser(hub.url);
    const page = await (await b.request("/hub/login")).text();
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page)![1]!;
    const res = await b.request("/hub/login", { method: "POST", body: new URLSearchParams({ username: "ada", _xsrf: xsrf }) });
    expect(res.status).toBe(302);
    const session = res.headers.getSetCookie().find((c) => c.startsWith("__Host-slicehub-session="));
    expect(session).toBeDefined();
    expect(session).toMatch(/; Path=\/(;|$)/);
    expect(session).toMatch(/; Secure/);
    expect(session).toMatch(/; HttpOnly/);
    expect(session).toMatch(/; SameSite=Lax/);
    expect(session).not.toMatch(/Domain=/i);
    expect(res.headers.getSetCookie().some((c) => c.startsWith("slicehub-session="))).toBe(false);
    // The session works, and a plain-named cookie with a stolen-looking value is not accepted instead.
    expect((await b.request("/hub/home")).status).toBe(200);
    const forged = await fetch(`${hub.url}/hub/home`, { headers: { cookie: `slicehub-session=${/=([^;]+)/.exec(session!)![1]}` }, redirect: "manual" });
    expect(forged.status).toBe(302);
  });
});
