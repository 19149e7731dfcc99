// trusted_proxies (src/forwarded.ts): whose X-Forwarded-*/Forwarded are believed, and what the proxy then tells
// a user's server; and the hub's Strict-Transport-Security, which a user's server cannot override.
import http from "node:http";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { clientAddress, forwardedView, trustCheck } from "../../src/forwarded.js";
import { TrustedProxiesSchema } from "../../src/config/https.js";
import { closeServer, listen, request, startEchoUpstream, startProxy, type ProxyHarness } from "./harness.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A request as forwardedView sees it: the peer's address, TLS or not, and headers. */
function req(peer: string, headers: Record<string, string>, encrypted = false): http.IncomingMessage {
  return { socket: { remoteAddress: peer, encrypted } as unknown as Socket, headers } as unknown as http.IncomingMessage;
}

describe("forwardedView", () => {
  const caddyOnLoopback = trustCheck(["127.0.0.1", "::1"]);

  it("believes nothing from a peer that is not a trusted proxy (the default trusts nobody)", () => {
    const spoof = { host: "hub.example.org", "x-forwarded-for": "10.9.9.9", "x-forwarded-proto": "https", "x-forwarded-host": "evil.example", forwarded: "for=10.8.8.8;proto=https;host=evil.example" };
    for (const check of [trustCheck([]), caddyOnLoopback]) {
      const v = forwardedView(req("203.0.113.7", spoof), check);
      expect(v).toEqual({ client: "203.0.113.7", proto: "http", host: "hub.example.org", chain: ["203.0.113.7"], viaTrustedProxy: false });
    }
    // Loopback is not trusted by default either: users' servers run on this host.
    expect(forwardedView(req("127.0.0.1", spoof), trustCheck([])).client).toBe("127.0.0.1");
    expect(forwardedView(req("::ffff:127.0.0.1", spoof), trustCheck([])).proto).toBe("http");
    expect(forwardedView(req("127.0.0.1", spoof, true), trustCheck([])).proto).toBe("https");
  });

  it("takes client, proto and host from a trusted proxy, walking X-Forwarded-For from the right", () => {
    // Caddy on loopback appends the address it saw; the client's own first entry is never reached.
    const v = forwardedView(req("::ffff:127.0.0.1", { host: "127.0.0.1:8000", "x-forwarded-for": "6.6.6.6, 198.51.100.4", "x-forwarded-proto": "https", "x-forwarded-host": "hub.example.org" }), caddyOnLoopback);
    expect(v).toEqual({ client: "198.51.100.4", proto: "https", host: "hub.example.org", chain: ["198.51.100.4", "127.0.0.1"], viaTrustedProxy: true });
    // Two trusted hops (a load balancer in 10.0.0.0/8, then nginx on loopback).
    const two = trustCheck(["127.0.0.1", "10.0.0.0/8"]);
    const w = forwardedView(req("127.0.0.1", { host: "x", "x-forwarded-for": "6.6.6.6,198.51.100.4,10.1.2.3", "x-forwarded-proto": "https,https,http" }), two);
    expect(w.client).toBe("198.51.100.4");
    expect(w.proto).toBe("https");
    expect(w.chain).toEqual(["198.51.100.4", "10.1.2.3", "127.0.0.1"]);
    // A trusted proxy with no headers is the client itself.
    expect(forwardedView(req("127.0.0.1", { host: "h:1" }), caddyOnLoopback)).toMatchObject({ client: "127.0.0.1", proto: "http", host: "h:1" });
  });

  it("reads RFC 7239 Forwarded (ports, quotes, IPv6) from a proxy that sends no X-Forwarded-For", () => {
    const v = forwardedView(req("::1", { host: "127.0.0.1:8000", forwarded: 'for="[2001:db8::7]:4711";proto=https;host=hub.example.org' }), caddyOnLoopback);
    expect(v).toMatchObject({ client: "2001:db8::7", proto: "https", host: "hub.example.org" });
    expect(forwardedView(req("::1", { host: "h", forwarded: "for=192.0.2.60:80;proto=https" }), caddyOnLoopback).client).toBe("192.0.2.60");
  });

  it("ignores a Forwarded next to X-Forwarded-For: nginx and Caddy pass a client's own Forwarded through", () => {
    // What nginx forwards when the client sent Forwarded and X-Forwarded-For of its own (test/e2e/browser-proxies.test.ts).
    const v = forwardedView(
      req("127.0.0.1", { host: "hub", forwarded: "for=6.6.6.6;proto=http;host=evil.example", "x-forwarded-for": "6.6.6.6, 203.0.113.9", "x-forwarded-proto": "https", "x-forwarded-host": "hub.example.org" }),
      caddyOnLoopback,
    );
    expect(v).toMatchObject({ client: "203.0.113.9", proto: "https", host: "hub.example.org", chain: ["203.0.113.9", "127.0.0.1"] });
  });

  it("ignores values that are not addresses, schemes or hosts", () => {
    const v = forwardedView(req("127.0.0.1", { host: "hub:443", "x-forwarded-for": "unknown", "x-forwarded-proto": "javascript", "x-forwarded-host": "evil.example/path" }), caddyOnLoopback);
    expect(v).toMatchObject({ client: "127.0.0.1", proto: "http", host: "hub:443" });
  });

  it("login log lines name the believed client, never a non-proxy's claim", () => {
    const spoof = { host: "h", "x-forwarded-for": "10.9.9.9", forwarded: "for=10.8.8.8" };
    expect(clientAddress(req("192.0.2.5", spoof), [])).toBe("192.0.2.5");
    expect(clientAddress(req("127.0.0.1", spoof), [])).toBe("127.0.0.1");
    expect(clientAddress(req("127.0.0.1", { host: "h", "x-forwarded-for": "198.51.100.4" }), ["127.0.0.1"])).toBe("198.51.100.4");
    expect(clientAddress(undefined, ["127.0.0.1"])).toBeUndefined();
  });

  it("config: IPs and CIDR blocks only", () => {
    expect(TrustedProxiesSchema.safeParse(["127.0.0.1", "::1", "10.0.0.0/8", "fd00::/8"]).success).toBe(true);
    for (const bad of ["localhost", "10.0.0.0/33", "::1/129", "1.2.3", "10.0.0.0/x", "*"]) expect(TrustedProxiesSchema.safeParse([bad]).success, bad).toBe(false);
    expect(trustCheck(["10.0.0.0/8"])("10.200.1.1")).toBe(true);
    expect(trustCheck(["10.0.0.0/8"])("11.0.0.1")).toBe(false);
    expect(trustCheck(["127.0.0.1"])("::ffff:127.0.0.1")).toBe(true);
  });
});

describe("what a user's server is told", () => {
  async function setup(trusted: string[]): Promise<{ p: ProxyHarness; headers: (h: Record<string, string>) => Promise<http.IncomingHttpHeaders> }> {
    const up = await startEchoUpstream();
    cleanups.push(() => up.close());
    const p = await startProxy({ trusted: trustCheck(trusted), hsts: () => "max-age=31536000" });
    cleanups.push(() => p.close());
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    return { p, headers: async (h) => (JSON.parse((await request(p.url, "/user/alice/", { headers: h })).body) as { headers: http.IncomingHttpHeaders }).headers };
  }

  it("an attacker's X-Forwarded-*, Forwarded, X-Real-IP and X-Scheme are replaced by what the proxy saw", async () => {
    const { headers } = await setup([]);
    const got = await headers({
      Host: "hub.example.org",
      "X-Forwarded-For": "10.9.9.9",
      "X-Forwarded-Proto": "https",
      "X-Forwarded-Host": "evil.example",
      "X-Forwarded-Port": "1",
      Forwarded: "for=10.8.8.8;proto=https",
      "X-Real-IP": "10.7.7.7",
      "X-Scheme": "https",
    });
    expect(got).toMatchObject({ "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": "hub.example.org", "x-forwarded-port": "80", "x-real-ip": "127.0.0.1" });
    expect(got.forwarded).toBeUndefined();
    expect(got["x-scheme"]).toBeUndefined();
  });

  it("a trusted proxy's view is passed on", async () => {
    const { headers } = await setup(["127.0.0.1", "::1"]);
    const got = await headers({ Host: "127.0.0.1:8000", "X-Forwarded-For": "6.6.6.6, 198.51.100.4", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "hub.example.org" });
    expect(got).toMatchObject({ "x-forwarded-for": "198.51.100.4,127.0.0.1", "x-forwarded-proto": "https", "x-forwarded-host": "hub.example.org", "x-forwarded-port": "443", "x-real-ip": "198.51.100.4" });
  });

  it("every answer carries the hub's Strict-Transport-Security; a server's own (max-age=0) is dropped", async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { "Strict-Transport-Security": "max-age=0", "Content-Type": "text/plain" });
      res.end("ok");
    });
    const url = await listen(server);
    cleanups.push(() => closeServer(server));
    const p = await startProxy({ hsts: () => "max-age=31536000" });
    cleanups.push(() => p.close());
    p.table.set({ prefix: "/user/mallory", target: url, serverId: 2 });
    const proxied = await request(p.url, "/user/mallory/");
    expect(proxied.headers["strict-transport-security"]).toBe("max-age=31536000");
    const hub = await request(p.url, "/hub/login");
    expect(hub.headers["strict-transport-security"]).toBe("max-age=31536000");
    // Without it (public_url http): none, and still not the server's.
    const q = await startProxy({});
    cleanups.push(() => q.close());
    q.table.set({ prefix: "/user/mallory", target: url, serverId: 2 });
    expect((await request(q.url, "/user/mallory/")).headers["strict-transport-security"]).toBeUndefined();
  });
});
