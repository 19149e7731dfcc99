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

function routable(url: string | undefined): string | undefined {
  if (!url || !url.startsWith("/user/")) return undefined;
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

export function createServer(deps: ServerDeps): http.Server {
  const hubListener = getRequestListener(deps.fetch as never, { overrideGlobalObjects: false });
  const server = http.createServer({ keepAliveTimeout: 65_000 });
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
    socket.end("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nNo server is running here.\n");
  });
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });
  return server;
}
