// Issue 10 at the wire: the proxy routes by Host and path (a subdomain-mode route answers only on its own host),
// strips the headers of users' servers that reach beyond them (Service-Worker-Allowed, Clear-Site-Data), refuses
// a service worker script whose scope would cover every user's server, and in path mode replaces a user
// server's Cross-Origin-Opener-Policy with noopener-allow-popups.
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeServer, handshake, listen, request, startEchoUpstream, startProxy, type ProxyHarness } from "./harness.js";

/** The lower-cased header names and values of a raw response head. */
function headersOf(head: string): [string, string][] {
  return head
    .split("\r\n")
    .slice(1)
    .map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]);
}

describe("routing by Host and path", () => {
  let proxy: ProxyHarness;
  let alice: Awaited<ReturnType<typeof startEchoUpstream>>;
  let pathMode: Awaited<ReturnType<typeof startEchoUpstream>>;

  beforeAll(async () => {
    alice = await startEchoUpstream();
    pathMode = await startEchoUpstream();
    proxy = await startProxy();
    proxy.table.set({ prefix: "/user/alice", target: alice.url, serverId: 1, host: "alice.users.test" });
    proxy.table.set({ prefix: "/user/bob", target: pathMode.url, serverId: 2 });
  });

  afterAll(async () => {
    await proxy.close();
    await alice.close();
    await pathMode.close();
  });

  it("forwards a hosted route only on its host (any case, any port); the hub gets the same path elsewhere", async () => {
    for (const host of ["alice.users.test", "Alice.Users.TEST:8000"]) {
      const r = await request(proxy.url, "/user/alice/api?x=1", { headers: { host } });
      expect(r.status, host).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ url: "/user/alice/api?x=1", headers: { host } });
    }
    for (const host of ["hub.test", "mallory.users.test", "users.test", "alice.users.test.evil", "127.0.0.1"]) {
      const r = await request(proxy.url, "/user/alice/api", { headers: { host } });
      expect([r.status, r.body], host).toEqual([404, "no route"]);
    }
    // No Host at all (HTTP/1.0) is not alice's host either.
    const bare = await request(proxy.url, "/user/alice/api", { headers: { host: "" } });
    expect(bare.body).toBe("no route");
  });

  it("keeps path-mode routes on every host", async () => {
    for (const host of ["hub.test", "alice.users.test", "127.0.0.1:1"]) {
      const r = await request(proxy.url, "/user/bob/tree", { headers: { host } });
      expect(JSON.parse(r.body), host).toMatchObject({ url: "/user/bob/tree" });
    }
  });

  it("routes websockets by Host too, and answers 503 where no route answers", async () => {
    expect(await handshake(proxy.url, "/user/alice/api/kernels/k/channels", "alice.users.test")).toMatch(/^HTTP\/1\.1 101 /);
    expect(await handshake(proxy.url, "/user/alice/api/kernels/k/channels", "ALICE.users.test:443")).toMatch(/^HTTP\/1\.1 101 /);
    expect(await handshake(proxy.url, "/user/alice/api/kernels/k/channels", "hub.test")).toMatch(/^HTTP\/1\.1 503 /);
    expect(await handshake(proxy.url, "/user/alice/api/kernels/k/channels", "mallory.users.test")).toMatch(/^HTTP\/1\.1 503 /);
    expect(await handshake(proxy.url, "/user/bob/ws", "anything.test")).toMatch(/^HTTP\/1\.1 101 /);
  });
});

// What mallory's server answers: headers that reach beyond his server, in odd cases.
const HOSTILE: Record<string, string> = {
  "Service-Worker-Allowed": "/",
  "CLEAR-SITE-DATA": '"cookies", "storage", "cache"',
  "Cross-Origin-Opener-Policy": "unsafe-none",
  "Content-Type": "text/html",
  "X-Kept": "yes",
};

describe("headers of users' servers", () => {
  let proxy: ProxyHarness;
  let upstream: http.Server;
  const raw = new Set<net.Socket>();

  beforeAll(async () => {
    upstream = http.createServer((_req, res) => res.writeHead(200, HOSTILE).end("ok"));
    upstream.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
      raw.add(socket);
      const lines = Object.entries(HOSTILE)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      if (req.url?.endsWith("/plain")) socket.end(`HTTP/1.1 400 Bad Request\r\n${lines}Content-Length: 2\r\nConnection: close\r\n\r\nno`);
      else socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${lines}\r\n`);
    });
    const target = await listen(upstream);
    proxy = await startProxy();
    proxy.table.set({ prefix: "/user/mallory", target, serverId: 1 });
    proxy.table.set({ prefix: "/user/mallory", target, serverId: 1, host: "mallory.users.test" });
  });

  afterAll(async () => {
    for (const socket of raw) socket.destroy();
    await proxy.close();
    await closeServer(upstream);
  });

  it("strips Service-Worker-Allowed and Clear-Site-Data, and makes COOP noopener-allow-popups in path mode", async () => {
    const r = await request(proxy.url, "/user/mallory/page", { headers: { host: "hub.test" } });
    expect(r.status).toBe(200);
    expect(r.headers["service-worker-allowed"]).toBeUndefined();
    expect(r.headers["clear-site-data"]).toBeUndefined();
    expect(r.headers["cross-origin-opener-policy"]).toBe("noopener-allow-popups");
    expect(r.headers["x-kept"]).toBe("yes");
    expect(proxy.logs.filter((l) => l.msg === "stripped a header a user server sent").map((l) => l.level)).toContain("debug");
  });

  it("adds COOP in path mode when the server sends none", async () => {
    const up = await startEchoUpstream();
    try {
      proxy.table.set({ prefix: "/user/quiet", target: up.url, serverId: 3 });
      expect((await request(proxy.url, "/user/quiet/")).headers["cross-origin-opener-policy"]).toBe("noopener-allow-popups");
    } finally {
      proxy.table.delete("/user/quiet");
      await up.close();
    }
  });

  it("leaves a subdomain-mode server's COOP alone, and still strips the rest", async () => {
    const r = await request(proxy.url, "/user/mallory/page", { headers: { host: "mallory.users.test" } });
    expect(r.headers["cross-origin-opener-policy"]).toBe("unsafe-none");
    expect(r.headers["service-worker-allowed"]).toBeUndefined();
    expect(r.headers["clear-site-data"]).toBeUndefined();
  });

  it.each([
    ["a 101", "/user/mallory/ws", "hub.test", /^HTTP\/1\.1 101 /],
    ["a plain answer to an upgrade", "/user/mallory/plain", "hub.test", /^HTTP\/1\.1 400 /],
    ["a 101 in subdomain mode", "/user/mallory/ws", "mallory.users.test", /^HTTP\/1\.1 101 /],
  ])("strips them from %s", async (_what, path, host, status) => {
    const head = await handshake(proxy.url, path, host);
    expect(head).toMatch(status);
    const names = headersOf(head).map(([k]) => k);
    expect(names).not.toContain("service-worker-allowed");
    expect(names).not.toContain("clear-site-data");
    expect(names).toContain("x-kept");
  });
});

describe("service worker scripts", () => {
  let proxy: ProxyHarness;
  let upstream: http.Server;
  const seen: string[] = [];

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      seen.push(req.url ?? "");
      res.writeHead(200, { "Content-Type": "text/javascript" }).end("self.onfetch = () => {};");
    });
    const target = await listen(upstream);
    proxy = await startProxy();
    proxy.table.set({ prefix: "/user/mallory", target, serverId: 1 });
    proxy.table.set({ prefix: "/user/alice/lab", target, serverId: 2 });
  });

  afterAll(async () => {
    await proxy.close();
    await closeServer(upstream);
  });

  // The default scope of a script is its directory: /user/ for /user/mallory, which covers every user's server.
  it.each(["/user/mallory", "/user/mallory?x=/user/mallory/", "/user/alice/lab", "/user/alice/lab?sw"])(
    "refuses a script at %s, not forwarded",
    async (path) => {
      seen.length = 0;
      const r = await request(proxy.url, path, { headers: { "service-worker": "script" } });
      expect([r.status, r.headers["content-type"], r.body]).toEqual([403, "text/plain; charset=UTF-8", "Forbidden\n"]);
      expect(seen).toEqual([]);
    },
  );

  it("forwards a script under the prefix, and the bare prefix without the header", async () => {
    seen.length = 0;
    expect((await request(proxy.url, "/user/mallory/sw.js", { headers: { "service-worker": "script" } })).status).toBe(200);
    expect((await request(proxy.url, "/user/mallory/", { headers: { "service-worker": "script" } })).status).toBe(200);
    expect((await request(proxy.url, "/user/alice/lab/sw.js?v=1", { headers: { "service-worker": "script" } })).status).toBe(200);
    expect((await request(proxy.url, "/user/mallory")).status).toBe(200);
    expect(seen).toEqual(["/user/mallory/sw.js", "/user/mallory/", "/user/alice/lab/sw.js?v=1", "/user/mallory"]);
  });
});
