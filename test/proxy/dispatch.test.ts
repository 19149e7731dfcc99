// Dispatch and sinks of the proxy (proxy/proxy.ts): /user/… paths with a route are forwarded, the rest goes to
// the hub; before the daemon attaches its sinks the hub answers 503 and activity waits for them.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createProxy } from "../../proxy/proxy.js";
import type { Route } from "../../proxy/table.js";
import { RouteTable } from "../../proxy/table.js";
import { captureLog, deadTarget, listen, request, startEchoUpstream } from "./harness.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start() {
  const table = new RouteTable();
  const proxy = createProxy({ log: captureLog(), table, stripCookies: [], activityFlushMs: 60_000 });
  const url = await listen(proxy.server);
  cleanups.push(() => proxy.close());
  return { url, table, proxy };
}

/** The first bytes the proxy answers a raw websocket upgrade with ("" if it just closes); then hangs up. */
function upgrade(base: string, path: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    socket.once("data", (chunk: Buffer) => {
      resolve(chunk.toString("latin1"));
      socket.destroy();
    });
    socket.on("close", () => resolve(""));
    socket.on("error", reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
  });
}

describe("dispatch", () => {
  it("answers 503 with Retry-After until the hub is attached, then hands it every non-route request", async () => {
    const { url, proxy } = await start();
    const early = await request(url, "/hub/api");
    expect(early.status).toBe(503);
    expect(early.headers["retry-after"]).toBe("1");
    expect(early.body).toBe("slicehub is starting; try again in a moment\n");

    proxy.attach({ hub: (req) => new Response(`hub saw ${new URL(req.url).pathname}`) });
    expect((await request(url, "/hub/api")).body).toBe("hub saw /hub/api");
    // A /user/ path without a route is the hub's too (it explains or starts the server).
    expect((await request(url, "/user/nobody/tree?x=1")).body).toBe("hub saw /user/nobody/tree");
  });

  it("forwards only /user/ paths, and answers 503 to a websocket without a route", async () => {
    const up = await startEchoUpstream();
    cleanups.push(() => up.close());
    const { url, table, proxy } = await start();
    proxy.attach({ hub: () => new Response("hub") });
    table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    table.set({ prefix: "/elsewhere", target: up.url, serverId: 2 });
    expect((await request(url, "/elsewhere/x")).body).toBe("hub");
    expect(JSON.parse((await request(url, "/user/alice/x?y=1")).body)).toMatchObject({ url: "/user/alice/x?y=1" });
    expect(await upgrade(url, "/user/bob/api/kernels/k/channels")).toMatch(/^HTTP\/1\.1 503 /);
    expect(await upgrade(url, "/elsewhere/ws")).toMatch(/^HTTP\/1\.1 503 /);
    expect(await upgrade(url, "/user/alice/ws")).toMatch(/^HTTP\/1\.1 101 /);
  });
});

describe("sinks attached later", () => {
  it("keeps activity until onActivity is attached, then reports it", async () => {
    const up = await startEchoUpstream();
    cleanups.push(() => up.close());
    const { url, table, proxy } = await start();
    table.set({ prefix: "/user/alice", target: up.url, serverId: 7 });
    expect((await request(url, "/user/alice/")).status).toBe(200);
    proxy.flushActivity();

    const batches: Map<number, Date>[] = [];
    proxy.attach({ onActivity: (batch) => void batches.push(batch) });
    proxy.flushActivity();
    expect(batches.map((b) => [...b.keys()])).toEqual([[7]]);
  });

  it("tells onUpstreamDown about a refused connection, for HTTP and websockets", async () => {
    const { url, table, proxy } = await start();
    const down: Route[] = [];
    proxy.attach({ hub: () => new Response("hub"), onUpstreamDown: (route) => void down.push(route) });
    table.set({ prefix: "/user/alice", target: await deadTarget(), serverId: 3 });
    expect((await request(url, "/user/alice/tree")).status).toBe(503);
    await upgrade(url, "/user/alice/ws");
    expect(down.map((r) => r.serverId)).toEqual([3, 3]);
  });

  it("also about a connection reset before any answer (a server killed a moment ago can do that)", async () => {
    const { url, table, proxy } = await start();
    const down: Route[] = [];
    proxy.attach({ hub: () => new Response("hub"), onUpstreamDown: (route) => void down.push(route) });
    const resetter = net.createServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((resolve) => resetter.listen(0, "127.0.0.1", resolve));
    try {
      table.set({ prefix: "/user/bob", target: `http://127.0.0.1:${(resetter.address() as net.AddressInfo).port}`, serverId: 4 });
      expect((await request(url, "/user/bob/tree")).status).toBe(503);
      expect(down.map((r) => r.serverId)).toEqual([4]);
    } finally {
      resetter.close();
    }
  });
});
