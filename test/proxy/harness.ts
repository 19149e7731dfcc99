// The proxy (proxy/proxy.ts) as the daemon creates it, with a stand-in hub that answers 404 "no route", plus
// small upstream and client helpers. Everything listens on 127.0.0.1, port 0.
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { WebSocketServer } from "ws";
import { createProxy, type ProxyOptions, type RoutingProxy } from "../../proxy/proxy.js";
import { RouteTable } from "../../proxy/table.js";
import type { Level, Logger } from "../../src/log.js";

export interface LogEntry {
  level: Level;
  msg: string;
  fields: Record<string, unknown>;
}

export function captureLog(entries: LogEntry[] = [], base: Record<string, unknown> = {}): Logger {
  const at = (level: Level) => (msg: string, fields?: Record<string, unknown>) =>
    void entries.push({ level, msg, fields: { ...base, ...fields } });
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: (fields) => captureLog(entries, { ...base, ...fields }),
  };
}

export async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A target URL nothing listens on. */
export async function deadTarget(): Promise<string> {
  const server = http.createServer();
  const url = await listen(server);
  await closeServer(server);
  return url;
}

export interface ProxyHarness {
  url: string;
  table: RouteTable;
  proxy: RoutingProxy;
  /** Every batch passed to onActivity. */
  activity: Map<number, Date>[];
  logs: LogEntry[];
  close(): Promise<void>;
}

export async function startProxy(
  options: { stripCookies?: string[]; activityFlushMs?: number; onActivity?: (batch: Map<number, Date>) => void } & Pick<ProxyOptions, "trusted" | "hsts"> = {},
): Promise<ProxyHarness> {
  const table = new RouteTable();
  const activity: Map<number, Date>[] = [];
  const logs: LogEntry[] = [];
  const proxy = createProxy({
    log: captureLog(logs),
    table,
    stripCookies: options.stripCookies ?? ["slicehub-session"],
    activityFlushMs: options.activityFlushMs ?? 60_000,
    trusted: options.trusted,
    hsts: options.hsts,
    sinks: {
      hub: () => new Response("no route", { status: 404, headers: { "Content-Type": "text/plain" } }),
      onActivity: options.onActivity ?? ((batch) => void activity.push(batch)),
      onUpstreamDown: () => undefined,
    },
  });
  const url = await listen(proxy.server as http.Server);
  return {
    url,
    table,
    proxy,
    activity,
    logs,
    close: () => proxy.close(),
  };
}

/** An upstream that answers every request with what it received, and echoes websocket messages. */
export async function startEchoUpstream(): Promise<{ url: string; server: http.Server; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.stringify({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(200, { "Content-Type": "application/json", "Set-Cookie": "_xsrf=abc; Path=/user/alice/" });
      res.end(body);
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on("connection", (socket, req) => {
    socket.send(JSON.stringify({ url: req.url, cookie: req.headers.cookie ?? null }));
    socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  const url = await listen(server);
  return {
    url,
    server,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await closeServer(server);
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection, so a test never shares sockets with another; `path` is sent as is. */
export function request(
  base: string,
  path: string,
  init: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    const req = http.request({ hostname, port, path, method: init.method ?? "GET", headers: init.headers, agent: false });
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.end(init.body);
  });
}

/** Polls `check` every 10 ms until it holds; fails after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  for (let waited = 0; waited <= timeoutMs; waited += 10) {
    if (await check()) return;
    await sleep(10);
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function connections(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * A websocket handshake on a raw socket, with `host` as its Host header (default: `base`'s) and `extra` header
 * lines; returns the response head as the proxy sent it.
 */
export function handshake(base: string, path: string, host = new URL(base).host, extra = ""): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let received = "";
    const timer = setTimeout(() => finish(new Error(`no response head within 5 s: ${JSON.stringify(received)}`)), 5_000);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(received.slice(0, received.indexOf("\r\n\r\n")));
    };
    socket.on("error", finish);
    socket.on("close", () => finish());
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (received.includes("\r\n\r\n")) finish();
    });
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}` +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
  });
}
