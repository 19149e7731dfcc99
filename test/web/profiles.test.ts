// The profile choice on the home page: only the profiles a user may use are offered, the one chosen is the
// one started (and shown), and a profile someone may not use is refused with a page that says so.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, type HubProcess } from "../e2e/harness.js";
import { eventually, startWebHub } from "./hub.js";

type Servers = Record<string, { ready: boolean; user_options: { profile?: string } }>;

describe("profile choice", () => {
  let hub: HubProcess;
  let alice: Browser;
  let bob: Browser;

  beforeAll(async () => {
    hub = await startWebHub();
    alice = new Browser(hub.url);
    bob = new Browser(hub.url);
    await alice.login("alice");
    await bob.login("bob");
  });

  afterAll(async () => {
    await hub?.destroy();
  });

  const html = async (b: Browser, path: string) => (await b.request(path)).text();
  const offered = (page: string) => [...new Set([...page.matchAll(/name="profile" value="([^"]+)"/g)].map((m) => m[1]))];
  const servers = async (b: Browser, user: string) =>
    // A cookie-authenticated API GET carries the session's CSRF token.
    ((await (await b.request(`/hub/api/users/${user}?include_stopped_servers=1`, { headers: { "x-xsrftoken": await b.csrf() } })).json()) as { servers: Servers }).servers;

  it("offers each user only the profiles they may use, with limits and descriptions", async () => {
    const page = await html(alice, "/hub/home");
    expect(offered(page)).toEqual(["small", "large"]);
    expect(page).toContain("8 GiB memory · 4 CPUs");
    expect(page).toContain("Bigger data sets and parallel jobs.");
    expect(page).not.toContain("GPU box");
    expect(offered(await html(bob, "/hub/home"))).toEqual(["small", "large", "gpu"]);
  });

  it("refuses a profile the user may not use with a readable page, and starts nothing", async () => {
    const r = await alice.postForm("/hub/spawn/alice", { _xsrf: await alice.csrf(), profile: "gpu" });
    expect(r.status).toBe(403);
    const page = await r.text();
    expect(page).toContain("<header>");
    expect(page).toMatch(/Cannot start alice: profile .*gpu.* does not exist or is not open to alice/);
    expect(await servers(alice, "alice")).toEqual({});
  });

  it("starts the profile chosen on the home page and shows it there", async () => {
    const r = await alice.postForm("/hub/spawn/alice", { _xsrf: await alice.csrf(), profile: "large" });
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toMatch(/^\/hub\/spawn-pending\/alice/);
    await eventually(async () => (await servers(alice, "alice"))[""]?.ready === true);
    expect((await servers(alice, "alice"))[""]?.user_options).toEqual({ profile: "large" });
    expect(await html(alice, "/hub/home")).toContain("Profile: Large");
  });

  it("the named-server form takes a profile too", async () => {
    const r = await bob.postForm("/hub/spawn-named", { _xsrf: await bob.csrf(), server_name: "train", profile: "gpu" });
    expect(r.status).toBe(302);
    await eventually(async () => (await servers(bob, "bob")).train?.ready === true);
    expect((await servers(bob, "bob")).train?.user_options).toEqual({ profile: "gpu" });
  });

  it("GET /hub/spawn only shows the start form; its POST starts the user's default profile", async () => {
    const shown = await bob.request("/hub/spawn/bob");
    expect(shown.status).toBe(200);
    expect(await shown.text()).toContain('action="/hub/spawn/bob"');
    expect((await servers(bob, "bob"))[""]).toBeUndefined();
    expect((await bob.postForm("/hub/spawn/bob", { _xsrf: await bob.csrf() })).status).toBe(302);
    await eventually(async () => (await servers(bob, "bob"))[""]?.ready === true);
    expect((await servers(bob, "bob"))[""]?.user_options).toEqual({ profile: "small" });
  });

  it("without JavaScript, a failed start shows the reason and retries with the same profile", async () => {
    const fail = new Browser(hub.url);
    await fail.login("fail-y");
    const r = await fail.postForm("/hub/spawn/fail-y", { _xsrf: await fail.csrf(), profile: "large" });
    let page = "";
    await eventually(async () => {
      const res = await fail.request(r.headers.get("location")!);
      page = await res.text();
      return res.status === 500;
    });
    expect(page).toContain("Could not start fail-y");
    expect(page).toContain("exited with status 1");
    expect(page).toContain("fake-singleuser: refusing to start for fail-y");
    expect(page).toContain('name="profile" value="large"');
    expect(page).toContain("Try again");
  });
});
