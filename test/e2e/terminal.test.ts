// The browser terminal with the real daemon (local spawner: shells run as the daemon's own user): opening one
// with the page's form, its websocket's refusals (another user, no ticket, a reused ticket, a foreign Origin,
// no session), reattaching with the scrollback and the same shell, the per-user limit, admins and
// admin_access, the shell's exit, and a blocked user losing their terminals at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser, HubProcess } from "./harness.js";
import { connectTerminal, cookieOf, openTerminal, ticketOf, type TermConn } from "./terminal-ws.js";

describe("browser terminal (daemon, local spawner)", () => {
  let hub: HubProcess;
  let alice: Browser;
  let bob: Browser;
  let root: Browser;
  const conns: TermConn[] = [];
  const headers = (b: Browser, origin?: string) => ({ cookie: cookieOf(b), origin: origin ?? hub.url });
  const connect = async (b: Browser, page: string, ticket: string | undefined, origin?: string) => {
    const c = await connectTerminal(hub.url, page, ticket, headers(b, origin));
    conns.push(c);
    return c;
  };

  beforeAll(async () => {
    hub = await HubProcess.start({ config: { auth: { kind: "dev", admin_users: ["root1"] }, terminal: { max_per_user: 2 } } });
    alice = new Browser(hub.url);
    bob = new Browser(hub.url);
    root = new Browser(hub.url);
    await alice.login("alice");
    await bob.login("bob");
    await root.login("root1");
  }, 30_000);

  afterAll(async () => {
    for (const c of conns) c.ws.terminate();
    await hub?.destroy();
  }, 30_000);

  let page = "";
  let ticketForLater = "";

  it("opens a shell with the page's form and its ticket; input, output and resize work", async () => {
    const opened = await openTerminal(alice, "alice");
    expect(opened.status).toBe(303);
    expect(opened.location).toMatch(/^\/hub\/terminal\/alice\?t=[0-9a-f]{16}$/);
    page = opened.location!;
    const { status, ticket, html } = await ticketOf(alice, page);
    expect(status).toBe(200);
    expect(ticket).toBeDefined();
    expect(html).toContain("/hub/static/terminal/xterm.js?v=");
    // The page's files: cached for good at their versioned URL, revalidated without it, and 304 when unchanged.
    const js = /src="(\/hub\/static\/terminal\/xterm\.js\?v=[0-9a-f]+)"/.exec(html)![1]!;
    const res = await fetch(`${hub.url}${js}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await res.text()).length).toBeGreaterThan(100_000);
    const bare = await fetch(`${hub.url}/hub/static/terminal/xterm.js`);
    expect(bare.headers.get("cache-control")).toBe("no-cache");
    expect((await fetch(`${hub.url}/hub/static/terminal/xterm.js`, { headers: { "if-none-match": bare.headers.get("etag")! } })).status).toBe(304);
    expect((await fetch(`${hub.url}/hub/static/terminal/nope.js`)).status).toBe(404);
    expect(html).toMatch(/<script src="\/hub\/static\/terminal\/terminal\.js\?v=[0-9a-f]+"><\/script>/);
    expect(html).not.toMatch(/<script>/);
    const csp = (await alice.request(page)).headers.get("content-security-policy") ?? "";
    expect(csp).toMatch(/default-src 'none'.*script-src 'self';.*connect-src 'self'.*frame-ancestors 'none'/);
    const t = await connect(alice, page, ticket);
    const hello = await t.waitForMessage("hello");
    expect(hello.owner).toBe("alice");
    t.resize(100, 30);
    t.send("export SLICEHUB_T=kept; echo $((6*7)); stty size; echo héllo-✓\r");
    await t.waitFor(/[\r\n]42\r?\n/);
    await t.waitFor(/30 100/);
    await t.waitFor(/héllo-✓/);
    // The same ticket again: spent.
    ticketForLater = ticket!;
    t.ws.close();
    await t.closed;
  }, 30_000);

  it("refuses a reused ticket", async () => {
    await expect(connect(alice, page, ticketForLater)).rejects.toThrow(/refused 403.*unknown, used or expired/);
  });

  it("refuses a websocket with alice's cookies but no ticket", async () => {
    await expect(connect(alice, page, undefined)).rejects.toThrow(/refused 403.*needs the ticket/);
  });

  it("refuses a foreign Origin, even with a fresh ticket", async () => {
    const { ticket } = await ticketOf(alice, page);
    await expect(connect(alice, page, ticket, "http://evil.example:8000")).rejects.toThrow(/refused 403.*Origin/);
    // ...and the ticket is spent by that attempt.
    await expect(connect(alice, page, ticket)).rejects.toThrow(/refused 403/);
  });

  it("refuses alice's ticket without her session, and bob with his", async () => {
    const { ticket } = await ticketOf(alice, page);
    await expect(connectTerminal(hub.url, page, ticket, { origin: hub.url })).rejects.toThrow(/refused 403.*another session/);
    const { ticket: t2 } = await ticketOf(alice, page);
    await expect(connect(bob, page, t2)).rejects.toThrow(/refused 403.*another session/);
  });

  it("gives bob a 403 on alice's terminal page and form, and refuses his own ticket on her path", async () => {
    expect((await bob.request(page)).status).toBe(403);
    expect((await bob.request("/hub/terminal/alice")).status).toBe(403);
    expect((await openTerminal(bob, "alice")).status).toBe(403);
    expect((await bob.postForm("/hub/terminals/end", { _xsrf: await bob.csrf(), user: "alice" })).status).toBe(403);
    // A ticket for bob's own terminal does not open alice's path.
    const own = await openTerminal(bob, "bob");
    expect(own.status).toBe(303);
    const { ticket } = await ticketOf(bob, own.location!);
    await expect(connect(bob, page.replace(/\?.*/, ""), ticket)).rejects.toThrow(/refused 403.*another terminal/);
  });

  it("reattaches to the same shell after a reload, with the scrollback", async () => {
    const { ticket } = await ticketOf(alice, page);
    const t = await connect(alice, page, ticket);
    await t.waitForMessage("hello");
    await t.waitFor(/héllo-✓/); // the scrollback
    t.send("echo var=$SLICEHUB_T\r");
    await t.waitFor(/var=kept/);
    t.ws.close();
    await t.closed;
  }, 20_000);

  it("a second window takes the terminal over; the first is told", async () => {
    const first = await connect(alice, page, (await ticketOf(alice, page)).ticket);
    await first.waitForMessage("hello");
    const second = await connect(alice, page, (await ticketOf(alice, page)).ticket);
    await second.waitForMessage("hello");
    const told = await first.waitForMessage("ended");
    expect(String(told.message)).toMatch(/another window/);
    second.ws.close();
  }, 20_000);

  it("holds alice to terminal.max_per_user", async () => {
    const second = await openTerminal(alice, "alice");
    expect(second.status).toBe(303);
    const third = await openTerminal(alice, "alice");
    expect(third.status).toBe(429);
    expect(third.body).toMatch(/most allowed/);
    // The second one ends when its shell exits, which frees the slot.
    const { ticket } = await ticketOf(alice, second.location!);
    const t = await connect(alice, second.location!, ticket);
    await t.waitForMessage("hello");
    t.send("exit 3\r");
    const exit = await t.waitForMessage("exit");
    expect(exit.code).toBe(3);
    expect(String(exit.message)).toMatch(/exited with status 3/);
    await t.closed;
    const again = await ticketOf(alice, second.location!);
    expect(again.status).toBe(410);
    expect(again.html).toMatch(/no longer running/);
    expect(again.html).toContain("Open a new terminal");
  }, 20_000);

  it("keeps admins out while admin_access is off", async () => {
    expect((await root.request(page)).status).toBe(403);
    expect((await openTerminal(root, "alice")).status).toBe(403);
  });

  it("shows terminals on the admin page and on alice's home page", async () => {
    const admin = await (await root.request("/hub/admin")).text();
    expect(admin).toMatch(/<h2>Terminals<\/h2>/);
    expect(admin).toMatch(/<td data-label="User">alice<\/td><td data-label="Open">1<\/td>/);
    const home = await (await alice.request("/hub/home")).text();
    expect(home).toContain('action="/hub/terminal/alice"');
    expect(home).toContain(page);
  });

  it("closes alice's terminals at once when she is blocked", async () => {
    const t = await connect(alice, page, (await ticketOf(alice, page)).ticket);
    await t.waitForMessage("hello");
    const csrf = await root.csrf();
    const started = Date.now();
    expect((await root.postForm("/hub/admin/block", { _xsrf: csrf, user: "alice", server: "" })).status).toBe(303);
    const ended = await t.waitForMessage("ended", 5_000);
    expect(String(ended.message)).toMatch(/access/);
    await t.closed;
    expect(Date.now() - started).toBeLessThan(3_000);
    const admin = await (await root.request("/hub/admin")).text();
    expect(admin).not.toMatch(/<td data-label="User">alice<\/td>/);
    await root.postForm("/hub/admin/unblock", { _xsrf: csrf, user: "alice", server: "" });
  }, 20_000);

  it("deleting a user through the API ends their terminals", async () => {
    const carol = new Browser(hub.url);
    await carol.login("carol");
    const opened = await openTerminal(carol, "carol");
    const t = await connect(carol, opened.location!, (await ticketOf(carol, opened.location!)).ticket);
    await t.waitForMessage("hello");
    const csrf = await root.csrf();
    const res = await root.request("/hub/api/users/carol", { method: "DELETE", headers: { "x-xsrftoken": csrf } });
    expect(res.status).toBe(204);
    expect(String((await t.waitForMessage("ended", 3_000)).message)).toMatch(/access/);
    await t.closed;
  }, 20_000);

  it("a hub restart ends terminals; the page then says so and offers a new one", async () => {
    const opened = await openTerminal(bob, "bob");
    expect(opened.status).toBe(303);
    const t = await connect(bob, opened.location!, (await ticketOf(bob, opened.location!)).ticket);
    await t.waitForMessage("hello");
    await hub.stop();
    await t.closed;
    await hub.launch();
    const after = await ticketOf(bob, opened.location!);
    expect(after.status).toBe(410);
    expect(after.ticket).toBeUndefined();
    expect(after.html).toMatch(/no longer running.*hub restarted/s);
    expect(after.html).toContain(`action="/hub/terminal/bob"`);
  }, 40_000);
});

describe("browser terminal with admin_access", () => {
  let hub: HubProcess;
  afterAll(async () => {
    await hub?.destroy();
  }, 30_000);

  it("lets an admin open a user's terminal, and logs it", async () => {
    hub = await HubProcess.start({ config: { auth: { kind: "dev", admin_users: ["root1"] }, admin_access: true } });
    const alice = new Browser(hub.url);
    await alice.login("alice");
    const root = new Browser(hub.url);
    await root.login("root1");
    const opened = await openTerminal(root, "alice");
    expect(opened.status).toBe(303);
    await hub.waitForLog(/terminal opened by an admin for another user.*"user":"alice".*"by":"root1"|terminal opened by an admin for another user.*by.*root1/);
    const { ticket } = await ticketOf(root, opened.location!);
    const t = await connectTerminal(hub.url, opened.location!, ticket, { cookie: cookieOf(root), origin: hub.url });
    await t.waitForMessage("hello");
    await hub.waitForLog(/admin attached to another user's terminal/);
    t.ws.close();
    // The admin ends it from the admin page.
    const csrf = await root.csrf();
    expect((await root.postForm("/hub/terminals/end", { _xsrf: csrf, user: "alice" })).status).toBe(303);
    expect((await ticketOf(root, opened.location!)).status).toBe(410);
  }, 30_000);
});
