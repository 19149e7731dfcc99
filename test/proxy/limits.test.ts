// Connection limits of the one listener (proxy/proxy.ts), attacked on the wire: silent and trickling
// connections are closed even when the client never closes its side, while websockets, event streams and
// streaming proxied responses outlive every timeout.
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createProxy, type ConnectionLimits } from "../../proxy/proxy.js";
import { RouteTable } from "../../proxy/table.js";
import { captureLog, closeServer, connections, listen, request, sleep, startEchoUpstream, waitFor } from "./harness.js";

// Small enough for a quick test; every wait below is bounded by these plus the one-second slack SLACK_MS.
const LIMITS: ConnectionLimits = {
  headersTimeoutMs: 1_000,
  requestTimeoutMs: 2_000,
  keepAliveTimeoutMs: 1_000,
  idleTimeoutMs: 1_500,
  maxConnections: 1_000,
};
const SLACK_MS = 1_000;
const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, idleTimeoutMs } = LIMITS;
const LONGEST_MS = Math.max(headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, idleTimeoutMs);
const TICK_MS = 250;
/** Enough ticks to outlast every timeout. */
const TICKS = Math.ceil((LONGEST_MS + SLACK_MS) / TICK_MS);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The daemon's proxy with a stand-in hub that streams events on /hub/events. */
async function startHub(limits: Partial<ConnectionLimits> = {}) {
  const table = new RouteTable();
  const proxy = createProxy({
    log: captureLog(),
    table,
    stripCookies: ["slicehub-session"],
    activityFlushMs: 60_000,
    limits: { ...LIMITS, ...limits },
    sinks: {
      hub: (req) => (new URL(req.url).pathname === "/hub/events" ? ticking(TICKS) : new Response("hub")),
      onActivity: () => undefined,
      onUpstreamDown: () => undefined,
    },
  });
  const { server } = proxy;
  const url = await listen(server);
  cleanups.push(() => proxy.close());
  return { url, server, table };
}

/** An event stream like the hub's spawn progress: an event every TICK_MS, `count` of them, then the end. */
function ticking(count: number): Response {
  let timer: NodeJS.Timeout | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let sent = 0;
      timer = setInterval(() => {
        controller.enqueue(new TextEncoder().encode(`data: ${sent}\n\n`));
        if (++sent === count) {
          clearInterval(timer);
          controller.close();
        }
      }, TICK_MS);
    },
    cancel: () => clearInterval(timer),
  });
  return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
}

async function upstream(handler: http.RequestListener) {
  const server = http.createServer(handler);
  const url = await listen(server);
  cleanups.push(() => closeServer(server));
  return url;
}

/**
 * A raw connection that, like a slowloris tool, never closes its side: it ignores our FIN (allowHalfOpen), so
 * only the server destroying its socket frees it; the server's connection count tells. Records what it got.
 */
function attacker(base: string) {
  const { hostname, port } = new URL(base);
  const socket = net.connect({ port: Number(port), host: hostname, allowHalfOpen: true });
  cleanups.push(() => void socket.destroy());
  const state = {
    socket,
    connected: false,
    received: "",
    endedAt: undefined as number | undefined,
    closedAt: undefined as number | undefined,
  };
  socket.on("connect", () => (state.connected = true));
  socket.on("data", (chunk: Buffer) => (state.received += chunk.toString("latin1")));
  socket.on("end", () => (state.endedAt = Date.now()));
  socket.on("error", () => undefined);
  socket.on("close", () => (state.closedAt = Date.now()));
  return state;
}

/** Reads a streamed response on its own connection; resolves with its chunks and when each arrived. */
function stream(base: string, path: string): Promise<{ status: number; chunks: string[]; endedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const req = http.get(`${base}${path}`, { agent: false }, (res) => {
      const chunks: string[] = [];
      res.on("data", (c: Buffer) => chunks.push(c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, chunks, endedAfterMs: Date.now() - started }));
      res.on("error", reject);
    });
    req.on("error", reject);
    cleanups.push(() => void req.destroy());
  });
}

describe("connection limits", () => {
  it("closes connections that never send a byte, within the headers timeout", async () => {
    const hub = await startHub();
    const opened = Date.now();
    const silent = Array.from({ length: 50 }, () => attacker(hub.url));
    await waitFor(() => silent.every((s) => s.connected));
    await waitFor(async () => (await connections(hub.server)) === 0, LIMITS.headersTimeoutMs + SLACK_MS);
    await waitFor(() => silent.every((s) => s.endedAt !== undefined), SLACK_MS);
    for (const s of silent) {
      expect(s.endedAt! - opened).toBeGreaterThanOrEqual(LIMITS.headersTimeoutMs - 100);
      expect(s.received).toMatch(/^HTTP\/1\.1 408 /);
    }
  });

  it("closes a header trickler within the headers timeout while another request is in flight", async () => {
    const hub = await startHub();
    const inFlight = stream(hub.url, "/hub/events");

    const trickler = attacker(hub.url);
    const head = `GET /user/alice/ HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(500)}`;
    const started = Date.now();
    const deadline = started + LIMITS.headersTimeoutMs + SLACK_MS;
    for (let i = 0; i < head.length && trickler.closedAt === undefined && Date.now() < deadline; i++) {
      trickler.socket.write(head[i]!);
      await sleep(50);
    }
    // It keeps writing after our FIN, so our destroyed socket answers with a reset and it sees the close.
    expect(trickler.closedAt, "the trickler is still connected").toBeDefined();
    expect(trickler.closedAt! - started).toBeLessThanOrEqual(LIMITS.headersTimeoutMs + SLACK_MS);
    expect(trickler.received).toMatch(/^HTTP\/1\.1 408 /);
    expect((await inFlight).chunks.join("")).toContain(`data: ${TICKS - 1}\n\n`);
  });

  it("closes a connection that upgrades to a path without a server, even if the client never closes", async () => {
    const hub = await startHub();
    const client = attacker(hub.url);
    client.socket.write("GET /hub/nothing HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    await waitFor(() => client.closedAt !== undefined || client.received.length > 0);
    expect(client.received).toMatch(/^HTTP\/1\.1 503 /);
    await waitFor(async () => (await connections(hub.server)) === 0, SLACK_MS);
  });

  it("closes a connection whose answer does not come within the idle timeout", async () => {
    const silentUpstream = await upstream(() => undefined);
    const hub = await startHub();
    hub.table.set({ prefix: "/user/alice", target: silentUpstream, serverId: 1 });
    const started = Date.now();
    const outcome = await Promise.race([
      request(hub.url, "/user/alice/never").then(
        () => "answered",
        () => "closed",
      ),
      sleep(LIMITS.idleTimeoutMs + SLACK_MS).then(() => "still waiting"),
    ]);
    expect(outcome).toBe("closed");
    expect(Date.now() - started).toBeGreaterThanOrEqual(LIMITS.idleTimeoutMs - 100);
  });

  it("closes idle keep-alive connections after the keep-alive timeout", async () => {
    const hub = await startHub();
    const client = attacker(hub.url);
    client.socket.write("GET /hub/ HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor(() => client.received.includes("hub"));
    const answered = Date.now();
    await waitFor(async () => (await connections(hub.server)) === 0, LIMITS.keepAliveTimeoutMs + 2 * SLACK_MS);
    expect(Date.now() - answered).toBeGreaterThanOrEqual(LIMITS.keepAliveTimeoutMs - 100);
  });

  it("keeps an idle websocket open past every timeout, and it still echoes", async () => {
    const echo = await startEchoUpstream();
    cleanups.push(() => echo.close());
    const hub = await startHub();
    hub.table.set({ prefix: "/user/alice", target: echo.url, serverId: 1 });
    const socket = new WebSocket(`${hub.url.replace(/^http/, "ws")}/user/alice/api/kernels/k/channels`);
    cleanups.push(() => socket.terminate());
    const messages: string[] = [];
    socket.on("message", (data) => messages.push(String(data)));
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    await waitFor(() => messages.length === 1); // the upstream's greeting

    await sleep(LONGEST_MS + SLACK_MS);
    expect(socket.readyState).toBe(WebSocket.OPEN);
    socket.send("still here");
    await waitFor(() => messages.length === 2);
    expect(messages[1]).toBe("still here");
  });

  it("keeps the hub's event stream open well past every timeout while it writes", async () => {
    const hub = await startHub();
    const events = await stream(hub.url, "/hub/events");
    expect(events.status).toBe(200);
    expect(events.chunks.join("")).toBe(Array.from({ length: TICKS }, (_, i) => `data: ${i}\n\n`).join(""));
    expect(events.endedAfterMs).toBeGreaterThan(LONGEST_MS + TICK_MS);
  });

  it("keeps a streaming proxied response open well past every timeout", async () => {
    const streaming = await upstream((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(`data: ${sent}\n\n`);
        if (++sent === TICKS) {
          clearInterval(timer);
          res.end();
        }
      }, TICK_MS);
      res.on("close", () => clearInterval(timer));
    });
    const hub = await startHub();
    hub.table.set({ prefix: "/user/alice", target: streaming, serverId: 1 });
    const events = await stream(hub.url, "/user/alice/api/events");
    expect(events.chunks.join("")).toBe(Array.from({ length: TICKS }, (_, i) => `data: ${i}\n\n`).join(""));
    expect(events.endedAfterMs).toBeGreaterThan(LONGEST_MS + TICK_MS);
  });

  it("closes connections over the cap as they arrive, and keeps serving the ones it has", async () => {
    const cap = 5;
    const hub = await startHub({ maxConnections: cap, keepAliveTimeoutMs: 10_000, idleTimeoutMs: 10_000 });
    // Keep-alive connections that each had an answer and stay open.
    const held = Array.from({ length: cap }, () => attacker(hub.url));
    for (const c of held) c.socket.write("GET /hub/ HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor(() => held.every((c) => c.received.endsWith("hub")));

    const over = Array.from({ length: 3 }, () => attacker(hub.url));
    await waitFor(() => over.every((c) => c.endedAt !== undefined), SLACK_MS);
    expect(over.map((c) => c.received)).toEqual(["", "", ""]);
    expect(await connections(hub.server)).toBe(cap);

    const first = held[0]!;
    first.received = "";
    first.socket.write("GET /hub/again HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor(() => first.received.endsWith("hub"));
    expect(first.received).toMatch(/^HTTP\/1\.1 200 /);
    expect(held.every((c) => c.closedAt === undefined)).toBe(true);
  });
});
