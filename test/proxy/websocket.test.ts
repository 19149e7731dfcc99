import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { closeServer, deadTarget, listen, request, startEchoUpstream, startProxy, waitFor, type ProxyHarness } from "./harness.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function proxy(): Promise<ProxyHarness> {
  const p = await startProxy({ stripCookies: ["slicehub-session"] });
  cleanups.push(() => p.close());
  return p;
}

async function echo() {
  const e = await startEchoUpstream();
  cleanups.push(() => e.close());
  return e;
}

/** Opens a websocket and collects its messages; `next()` resolves with the next one (or fails after 5 s). */
async function open(url: string, headers?: Record<string, string>) {
  const socket = new WebSocket(url, { headers });
  cleanups.push(async () => void socket.terminate());
  const inbox: string[] = [];
  const waiters: ((m: string) => void)[] = [];
  socket.on("message", (data) => {
    const text = String(data);
    const waiter = waiters.shift();
    if (waiter) waiter(text);
    else inbox.push(text);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const queued = inbox.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(() => reject(new Error("no websocket message within 5 s")), 5_000);
      waiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  return { socket, next };
}

const wsUrl = (httpUrl: string, path: string) => httpUrl.replace(/^http/, "ws") + path;

describe("websocket forwarding", () => {
  it("echoes through the proxy with the query string intact and the hub cookie stripped", async () => {
    const up = await echo();
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    const path = "/user/alice/api/kernels/k1/channels?session_id=s1&token=t1";
    const { socket, next } = await open(wsUrl(p.url, path), {
      Cookie: "jupyterhub-session-id=abc; slicehub-session=s3cret; _xsrf=2|x",
    });
    // The upstream's first message is sent together with its 101 response: it must not be lost.
    expect(JSON.parse(await next())).toEqual({ url: path, cookie: "jupyterhub-session-id=abc; _xsrf=2|x" });
    socket.send("hello");
    expect(await next()).toBe("hello");
    const big = "y".repeat(256 * 1024);
    socket.send(big);
    expect(await next()).toBe(big);
  });

  it("adds the same X-Forwarded-For/Proto/Host/Port to an upgrade as to an HTTP request", async () => {
    // An upstream that answers both with the request headers it got.
    const server = http.createServer((req, res) => res.end(JSON.stringify(req.headers)));
    const wss = new WebSocketServer({ server });
    wss.on("connection", (socket, req) => socket.send(JSON.stringify(req.headers)));
    const url = await listen(server);
    cleanups.push(async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await closeServer(server);
    });
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: url, serverId: 1 });
    const forwarded = (json: string) =>
      Object.fromEntries(Object.entries(JSON.parse(json) as Record<string, string>).filter(([k]) => k.startsWith("x-forwarded-")));

    const cases: [Record<string, string>, Record<string, string>][] = [
      [
        { Host: "example.org:8443" },
        { "x-forwarded-for": "127.0.0.1", "x-forwarded-host": "example.org:8443", "x-forwarded-port": "8443", "x-forwarded-proto": "http" },
      ],
      [
        { Host: "example.org", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example" },
        // Not from a trusted proxy (none is configured): the client's claims are replaced.
        { "x-forwarded-for": "127.0.0.1", "x-forwarded-host": "example.org", "x-forwarded-port": "80", "x-forwarded-proto": "http" },
      ],
    ];
    for (const [headers, expected] of cases) {
      const viaHttp = forwarded((await request(p.url, "/user/alice/api/status", { headers })).body);
      const { socket, next } = await open(wsUrl(p.url, "/user/alice/api/kernels/k/channels"), headers);
      const viaWs = forwarded(await next());
      socket.terminate();
      expect(viaHttp).toEqual(expected);
      expect(viaWs).toEqual(viaHttp);
    }
  });

  it("keeps open websockets running when routes are removed", async () => {
    const alice = await echo();
    const bob = await echo();
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: alice.url, serverId: 1 });
    p.table.set({ prefix: "/user/bob", target: bob.url, serverId: 2 });
    const a = await open(wsUrl(p.url, "/user/alice/terminals/websocket/1"));
    const b = await open(wsUrl(p.url, "/user/bob/api/kernels/k2/channels"));
    await a.next();
    await b.next();

    p.table.delete("/user/alice");
    b.socket.send("still there?");
    expect(await b.next()).toBe("still there?");

    // Even the removed route's own websocket keeps going: routes are looked up per request only.
    a.socket.send("me too?");
    expect(await a.next()).toBe("me too?");
    await expect(open(wsUrl(p.url, "/user/alice/terminals/websocket/2"))).rejects.toThrow();
  });

  it("closes the client socket when the upstream is down, and keeps serving", async () => {
    const up = await echo();
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: await deadTarget(), serverId: 1 });
    p.table.set({ prefix: "/user/bob", target: up.url, serverId: 2 });
    await expect(open(wsUrl(p.url, "/user/alice/api/kernels/k/channels"))).rejects.toThrow();
    expect(p.logs.find((e) => e.level === "warn")?.fields).toMatchObject({
      path: "/user/alice/api/kernels/k/channels",
      route: "/user/alice",
      error_code: "ECONNREFUSED",
    });
    const b = await open(wsUrl(p.url, "/user/bob/api/kernels/k/channels"));
    await b.next();
    expect((await request(p.url, "/user/bob/")).status).toBe(200);
  });

  it("closes the client when the upstream closes, and the upstream when the client goes away", async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    const upstreamSockets: WebSocket[] = [];
    wss.on("connection", (s) => upstreamSockets.push(s));
    const url = await listen(server);
    cleanups.push(() => closeServer(server));
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: url, serverId: 1 });

    const first = await open(wsUrl(p.url, "/user/alice/ws"));
    await waitFor(() => upstreamSockets.length === 1);
    const closed = new Promise<number>((resolve) => first.socket.once("close", (code) => resolve(code)));
    upstreamSockets[0]?.close(4001, "bye");
    expect(await closed).toBe(4001);

    const second = await open(wsUrl(p.url, "/user/alice/ws"));
    await waitFor(() => upstreamSockets.length === 2);
    const upstreamClosed = new Promise<void>((resolve) => upstreamSockets[1]?.once("close", () => resolve()));
    second.socket.terminate();
    await upstreamClosed;
    await waitFor(() => wss.clients.size === 0);
  });
});
