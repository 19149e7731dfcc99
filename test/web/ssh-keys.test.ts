// The SSH keys page against the daemon (dev login, local spawner): adding, the refusals shown on the page with
// the text kept (a private key is not sent back), removing, CSRF on every post, bob against alice's keys, and
// the cookie-authenticated API (CSRF token required). The connect box under the systemd spawner is in
// test/hub/ssh-keys-page.test.ts; real sshd logins in test/systemd/.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, type HubProcess } from "../e2e/harness.js";
import { startWebHub } from "./hub.js";

describe("SSH keys page", () => {
  let hub: HubProcess;
  let alice: Browser;
  let bob: Browser;
  let dir: string;
  const pub: Record<string, string> = {};
  const priv: Record<string, string> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-ssh-page-"));
    for (const name of ["laptop", "desk"]) {
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-C", `alice@${name}`, "-N", "", "-f", join(dir, name)]);
      pub[name] = readFileSync(join(dir, `${name}.pub`), "utf8");
      priv[name] = readFileSync(join(dir, name), "utf8");
    }
    hub = await startWebHub();
    alice = new Browser(hub.url);
    bob = new Browser(hub.url);
    await alice.login("alice");
    await bob.login("bob");
  });

  afterAll(async () => {
    await hub?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const page = async (b: Browser) => {
    // No Fetch Metadata, like a script (Node's fetch cannot send a navigation's Sec-Fetch-Mode).
    const r = await b.request("/hub/ssh-keys");
    return { status: r.status, html: await r.text() };
  };
  const xsrfOf = (html: string) => /name="_xsrf" value="([^"]+)"/.exec(html)![1]!;
  const add = async (b: Browser, key: string, xsrf?: string) => {
    const r = await b.postForm("/hub/ssh-keys", { _xsrf: xsrf ?? xsrfOf((await page(b)).html), key });
    return { status: r.status, location: r.headers.get("location"), html: await r.text() };
  };
  const ids = (html: string) => [...html.matchAll(/action="\/hub\/ssh-keys\/remove".*?name="id" value="(\d+)"/gs)].map((m) => m[1]!);

  it("is linked from the navigation and says SSH is not offered under the local spawner", async () => {
    const home = await (await alice.request("/hub/home")).text();
    expect(home).toContain('href="/hub/ssh-keys"');
    const { status, html } = await page(alice);
    expect(status).toBe(200);
    expect(html).toContain("You have no SSH keys yet.");
    expect(html).toMatch(/runs servers as its own user \(the local spawner\), so it offers no SSH logins/);
  });

  it("adds a key and lists it with type, size, comment and ssh-keygen's fingerprint", async () => {
    const r = await add(alice, pub.laptop!);
    expect(r.status).toBe(303);
    expect(r.location).toMatch(/^\/hub\/ssh-keys\?added=\d+$/);
    const shown = await (await alice.request(r.location!)).text();
    const fp = execFileSync("ssh-keygen", ["-lf", join(dir, "laptop.pub")]).toString().split(" ")[1]!;
    expect(shown).toContain(`Added the key ${fp}`);
    expect(shown).toContain(fp);
    expect(shown).toMatch(/ED25519 256/);
    expect(shown).toContain("alice@laptop");
    expect(ids(shown).length).toBe(1);
  });

  it("shows a refused key again with what is wrong, and stores nothing", async () => {
    const dup = await add(alice, pub.laptop!);
    expect(dup.status).toBe(409);
    expect(dup.html).toMatch(/is already on alice&#39;s account|is already on alice's account/);
    const opts = await add(alice, `command="/bin/sh" ${pub.desk}`);
    expect(opts.status).toBe(400);
    expect(opts.html).toMatch(/role="alert"[^>]*>\s*Remove the options in front of the key/);
    // The text is kept for correcting (escaped).
    expect(opts.html).toContain("command=&quot;/bin/sh&quot; ssh-ed25519");
    const two = await add(alice, pub.laptop! + pub.desk!);
    expect(two.status).toBe(400);
    expect(two.html).toMatch(/exactly one key/);
    const secret = await add(alice, priv.desk!);
    expect(secret.status).toBe(400);
    expect(secret.html).toMatch(/That is a private key\. Never paste it anywhere/);
    expect(secret.html).not.toContain("PRIVATE KEY");
    expect(ids((await page(alice)).html).length).toBe(1);
  });

  it("refuses posts without the CSRF token", async () => {
    const noToken = await alice.postForm("/hub/ssh-keys", { key: pub.desk! });
    expect(noToken.status).toBe(403);
    const id = ids((await page(alice)).html)[0]!;
    expect((await alice.postForm("/hub/ssh-keys/remove", { id })).status).toBe(403);
    expect(ids((await page(alice)).html)).toEqual([id]);
  });

  it("does not let bob see, add to or remove alice's keys", async () => {
    const aliceId = ids((await page(alice)).html)[0]!;
    const bobPage = await page(bob);
    expect(bobPage.html).not.toContain("alice@laptop");
    // Bob's remove form with alice's key id: not his key.
    const r = await bob.postForm("/hub/ssh-keys/remove", { _xsrf: xsrfOf(bobPage.html), id: aliceId });
    expect(r.status).toBe(404);
    // The API with bob's cookie (and his CSRF token) on alice's path.
    const xsrf = xsrfOf(bobPage.html);
    const api = (path: string, init: RequestInit = {}) => bob.request(path, { ...init, headers: { "x-xsrftoken": xsrf, ...(init.headers as object) } });
    expect((await api("/hub/api/users/alice/ssh-keys")).status).toBe(403);
    expect((await api("/hub/api/users/alice/ssh-keys", { method: "POST", body: JSON.stringify({ key: pub.desk }) })).status).toBe(403);
    expect((await api(`/hub/api/users/alice/ssh-keys/${aliceId}`, { method: "DELETE" })).status).toBe(403);
    expect(ids((await page(alice)).html)).toEqual([aliceId]);
  });

  it("serves the page to a document navigation only, not to a same-origin fetch", async () => {
    expect((await alice.request("/hub/ssh-keys", { headers: { "sec-fetch-dest": "empty", "sec-fetch-site": "same-origin" } })).status).toBe(403);
  });

  it("answers the cookie-authenticated API only with the CSRF token", async () => {
    expect((await alice.request("/hub/api/users/alice/ssh-keys")).status).toBe(403);
    const xsrf = xsrfOf((await page(alice)).html);
    const r = await alice.request("/hub/api/users/alice/ssh-keys", { headers: { "x-xsrftoken": xsrf } });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { ssh_keys: { comment: string; fingerprint: string }[] };
    expect(body.ssh_keys.map((k) => k.comment)).toEqual(["alice@laptop"]);
  });

  it("removes a key with the remove button", async () => {
    const before = await page(alice);
    const r = await alice.postForm("/hub/ssh-keys/remove", { _xsrf: xsrfOf(before.html), id: ids(before.html)[0]! });
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/hub/ssh-keys");
    const after = (await page(alice)).html;
    expect(ids(after)).toEqual([]);
    expect(after).toContain("You have no SSH keys yet.");
  });
});
