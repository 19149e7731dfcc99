// A user's server may set cookies for its own path only: cookies it could toss onto the hub or onto other
// users' servers (same origin) are pinned to its prefix, and cookies named like the hub's are dropped.
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeServer, handshake, listen, request, startProxy, type ProxyHarness } from "./harness.js";

const SET = [
  "_xsrf=ok1; Path=/user/alice/",
  "own=ok2; Path=/user/alice",
  "nopath=ok3",
  "slicehub-session=evil; Path=/hub/",
  "__Host-slicehub-session=evil; Path=/; Secure",
  "jupyterhub-session-id=evil; Path=/",
  "toss=evil; Path=/",
  "sibling=evil; Path=/user/alicex/",
  "other=evil; Path=/user/bob/",
  "domain=evil; Path=/user/alice/; Domain=127.0.0.1",
  "slicehub-login-xsrf=evil; Path=/user/alice/",
];

describe("Set-Cookie from user servers", () => {
  let proxy: ProxyHarness;
  let upstream: http.Server;

  beforeAll(async () => {
    upstream = http.createServer((_req, res) => res.writeHead(200, { "Set-Cookie": SET }).end("ok"));
    const target = await listen(upstream);
    proxy = await startProxy();
    proxy.table.set({ prefix: "/user/alice", target, serverId: 1 });
  });

  afterAll(async () => {
    await proxy.close();
    await closeServer(upstream);
  });

  it("keeps the server's own cookies, pins others to its path, and drops hub cookies", async () => {
    const r = await request(proxy.url, "/user/alice/tree");
    expect(r.status).toBe(200);
    expect(r.headers["set-cookie"]).toEqual([
      "_xsrf=ok1; Path=/user/alice/",
      "own=ok2; Path=/user/alice",
      "nopath=ok3; Path=/user/alice/",
      "toss=evil; Path=/user/alice/",
      "sibling=evil; Path=/user/alice/",
      "other=evil; Path=/user/alice/",
      "domain=evil; Path=/user/alice/",
    ]);
    expect(proxy.logs.filter((l) => l.msg.startsWith("dropped a cookie")).map((l) => l.fields.cookie)).toEqual([
      "slicehub-session",
      "__Host-slicehub-session",
      "jupyterhub-session-id",
      "slicehub-login-xsrf",
    ]);
  });
});

/**
 * The path a browser stores a cookie under (RFC 6265 5.2.4 and 5.1.4): the last Path attribute that starts
 * with "/", or else the request path's directory.
 */
function storedPath(setCookie: string, requestPath: string): string {
  let path: string | undefined;
  for (const attr of setCookie.split(";").slice(1)) {
    const eq = attr.indexOf("=");
    if (eq < 0 || attr.slice(0, eq).trim().toLowerCase() !== "path") continue;
    const value = attr.slice(eq + 1).trim();
    path = value.startsWith("/") ? value : undefined;
  }
  if (path) return path;
  const slash = requestPath.lastIndexOf("/");
  return slash <= 0 ? "/" : requestPath.slice(0, slash);
}

/** Whether a browser sends a cookie stored under `cookiePath` with a request for `requestPath` (RFC 6265 5.1.4). */
function pathMatches(cookiePath: string, requestPath: string): boolean {
  if (cookiePath === requestPath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith("/") || requestPath[cookiePath.length] === "/";
}

/** Every Set-Cookie line of a raw HTTP response head. */
function setCookiesOf(head: string): string[] {
  return head
    .split("\r\n")
    .filter((line) => /^set-cookie:/i.test(line))
    .map((line) => line.slice(line.indexOf(":") + 1).trim());
}

// What mallory's server sends to toss cookies onto bob's server and the hub: every way to leave a cookie's
// path to the browser or to point it elsewhere.
const TOSS = [
  "nopath=evil",
  "emptypath=evil; Path=",
  "relative=evil; Path=user/bob/",
  "lastwins=evil; Path=/user/mallory/; Path=/",
  "domainonly=evil; Domain=127.0.0.1",
  "PATHCASE=evil; pAtH=/user/bob/",
];

describe("cookie tossing from a user's server, as a browser would store the cookies", () => {
  let proxy: ProxyHarness;
  let upstream: http.Server;
  const raw = new Set<net.Socket>();

  beforeAll(async () => {
    upstream = http.createServer((_req, res) => res.writeHead(200, { "Set-Cookie": TOSS }).end("ok"));
    // Websocket handshakes get a 101, or a plain answer on /plain; both carry the cookies.
    upstream.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
      raw.add(socket);
      const cookies = TOSS.map((c) => `Set-Cookie: ${c}\r\n`).join("");
      if (req.url?.endsWith("/plain")) socket.end(`HTTP/1.1 200 OK\r\n${cookies}Content-Length: 2\r\nConnection: close\r\n\r\nok`);
      else socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${cookies}\r\n`);
    });
    const target = await listen(upstream);
    proxy = await startProxy();
    proxy.table.set({ prefix: "/user/mallory", target, serverId: 1 });
  });

  afterAll(async () => {
    for (const socket of raw) socket.destroy();
    await proxy.close();
    await closeServer(upstream);
  });

  /** Each cookie must reach mallory's own server and nothing else on the origin. */
  function expectConfined(setCookies: string[], requestPath: string): void {
    expect(setCookies.map((c) => c.split("=")[0])).toEqual(TOSS.map((c) => c.split("=")[0]));
    for (const cookie of setCookies) {
      const path = storedPath(cookie, requestPath);
      expect(pathMatches(path, "/user/mallory/tree"), `${cookie} from ${requestPath}`).toBe(true);
      for (const victim of ["/user/bob/", "/user/bob/api/contents", "/hub/home", "/user/malloryx/", "/"]) {
        expect(pathMatches(path, victim), `${cookie} from ${requestPath} reaches ${victim}`).toBe(false);
      }
      expect(cookie.split(";").slice(1).map((attr) => attr.split("=")[0]!.trim().toLowerCase())).not.toContain("domain");
    }
  }

  // The bare prefix is the attack: its directory is /user, so a cookie without a Path would reach every server.
  it.each(["/user/mallory", "/user/mallory?next=/x/y", "/user/mallory/", "/user/mallory/lab/tree/a.ipynb"])(
    "confines cookies set on a plain response to %s",
    async (path) => {
      const r = await request(proxy.url, path);
      expect(r.status).toBe(200);
      expectConfined(r.headers["set-cookie"] ?? [], path.split("?")[0]!);
    },
  );

  it.each(["/user/mallory", "/user/mallory/plain"])("confines cookies set on a websocket handshake to %s", async (path) => {
    const head = await handshake(proxy.url, path);
    expect(head.split("\r\n")[0]).toMatch(path.endsWith("/plain") ? /^HTTP\/1\.1 200/ : /^HTTP\/1\.1 101/);
    expectConfined(setCookiesOf(head), path);
  });

  it("drops hub-named cookies from a websocket handshake", async () => {
    const server = http.createServer();
    const sockets: net.Socket[] = [];
    server.on("upgrade", (_req, socket: net.Socket) => {
      sockets.push(socket);
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Set-Cookie: slicehub-session=evil; Path=/hub/\r\nSet-Cookie: own=ok; Path=/user/alice/\r\n\r\n",
      );
    });
    const target = await listen(server);
    try {
      proxy.table.set({ prefix: "/user/alice", target, serverId: 2 });
      expect(setCookiesOf(await handshake(proxy.url, "/user/alice/ws"))).toEqual(["own=ok; Path=/user/alice/"]);
    } finally {
      proxy.table.delete("/user/alice");
      for (const socket of sockets) socket.destroy();
      await closeServer(server);
    }
  });
});

// Subdomain mode: a Domain= on alice.users.example.org's cookie (Domain=users.example.org) would reach every
// user's host and, with a hub under the same parent, the hub's: it is stripped there too.
describe("Set-Cookie from a subdomain-mode route", () => {
  let proxy: ProxyHarness;
  let upstream: http.Server;

  beforeAll(async () => {
    upstream = http.createServer((_req, res) =>
      res
        .writeHead(200, {
          "Set-Cookie": [
            "_xsrf=ok; Path=/user/alice/; Domain=users.test",
            "wide=evil; Domain=.test; Path=/",
            "slicehub-session=evil; Domain=test; Path=/hub/",
            "__Host-slicehub-session=evil; Path=/; Secure",
          ],
        })
        .end("ok"),
    );
    const target = await listen(upstream);
    proxy = await startProxy();
    proxy.table.set({ prefix: "/user/alice", target, serverId: 1, host: "alice.users.test" });
  });

  afterAll(async () => {
    await proxy.close();
    await closeServer(upstream);
  });

  it("strips Domain, pins the path and drops hub cookies", async () => {
    const r = await request(proxy.url, "/user/alice/tree", { headers: { host: "alice.users.test" } });
    expect(r.status).toBe(200);
    expect(r.headers["set-cookie"]).toEqual(["_xsrf=ok; Path=/user/alice/", "wide=evil; Path=/user/alice/"]);
  });
});
