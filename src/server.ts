// The one listener. /user/… paths with a live route go straight to the proxy (no Hono on that hot path);
// everything else, and every miss, goes to the hub application.
import http from "node:http";
import type { Duplex } from "node:stream";
import { getRequestListener } from "@hono/node-server";
import type { Forwarder } from "../proxy/forward.js";
import type { RouteTable } from "../proxy/table.js";

export interface ServerDeps {
  fetch: (req: Request, env: object) => Response | Promise<Response>;
  table: RouteTable;
  forwarder: Forwarder;
}

/**
 * What one client may hold: without limits a client that connects and sends nothing, or trickles its headers,
 * keeps its connection (and a file descriptor) for as long as it likes. 0 turns a limit off.
 */
export interface ServerLimits {
  /** From a connection's start, or a keep-alive connection's next request's first byte, to the end of the headers. */
  headersTimeoutMs: number;
  /** From the same start to the end of the request's body: an upload has to arrive within it. */
  requestTimeoutMs: number;
  /** How long a keep-alive connection may wait for its next request. */
  keepAliveTimeoutMs: number;
  /**
   * An HTTP connection with no byte in either direction for this long is closed: a client that stopped reading,
   * or an answer that never comes (an answer that takes longer to start is cut too). Upgraded connections
   * (websockets) are not HTTP connections any more and are left alone.
   */
  idleTimeoutMs: number;
  /** Connections beyond this many, websockets included, are closed as they arrive. */
  maxConnections: number;
}

export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = {
  headersTimeoutMs: 20_000,
  // Node's own default: a large single upload through a user's server must not be cut short.
  requestTimeoutMs: 300_000,
  // Longer than the 60 s a reverse proxy in front typically keeps an idle upstream connection, so that the
  // proxy, not we, closes it: closing first races the proxy's next request on that connection.
  keepAliveTimeoutMs: 65_000,
  idleTimeoutMs: 300_000,
  maxConnections: 4_096,
};

function routable(url: string | undefined): string | undefined {
  if (!url || !url.startsWith("/user/")) return undefined;
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

export function createServer(deps: ServerDeps, limits: Partial<ServerLimits> = {}): http.Server {
  const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, idleTimeoutMs, maxConnections } = {
    ...DEFAULT_SERVER_LIMITS,
    ...limits,
  };
  const hubListener = getRequestListener(deps.fetch as never, { overrideGlobalObjects: false });
  const server = http.createServer({
    // Node starts a connection's headers clock when it opens: this also closes one that never sends a byte.
    headersTimeout: headersTimeoutMs,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    // Node enforces the two timeouts above only when it sweeps its connections, every 30 s by default: a
    // connection would outlive a 20 s headers timeout by half a minute.
    connectionsCheckingInterval: headersTimeoutMs > 0 ? Math.min(1_000, Math.max(50, headersTimeoutMs >> 2)) : 1_000,
  });
  server.timeout = idleTimeoutMs;
  server.maxConnections = maxConnections;
  server.on("request", (req, res) => {
    const path = routable(req.url);
    const route = path ? deps.table.lookup(path) : undefined;
    if (route) deps.forwarder.web(req, res, route);
    else void hubListener(req, res);
  });
  server.on("upgrade", (req, socket: Duplex, head: Buffer) => {
    const path = routable(req.url);
    const route = path ? deps.table.lookup(path) : undefined;
    if (route) return deps.forwarder.ws(req, socket, head, route);
    // An upgraded socket has left the server's timeouts behind, and node's sockets stay half-open after end():
    // without destroy() a client that never closes its side would keep this one for good.
    socket.end("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nNo server is running here.\n");
    socket.destroy();
  });
  // No "clientError" listener: node's own answers a timed-out or malformed request (408, 400, 431) and destroys
  // the socket. A listener has to do both itself; end() alone left the socket to clients that never close.
  return server;
}
