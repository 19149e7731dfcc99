// The benchmark's user server: a tiny app that slicehub's local spawner can start like any user server.
// It listens where JUPYTERHUB_SERVICE_URL says and serves, under JUPYTERHUB_SERVICE_PREFIX:
//   <prefix>      200 "ok" (slicehub's readiness probe)
//   <prefix>100b  a 100-byte body
//   <prefix>1mib  a 1 MiB body (allocated once, at start)
//   <prefix>ws    a websocket that echoes every message
// Bodies are preallocated so the upstream costs as little CPU per request as node:http allows: what the
// benchmark compares is the path to it, not the app.
//
// If BENCH_UPSTREAM_INFO names a file, it writes {"pid","port"} there once listening, so the benchmark can
// reach the very process slicehub spawned directly and through configurable-http-proxy.
import { writeFileSync } from "node:fs";
import http from "node:http";
import { WebSocketServer } from "ws";

const serviceUrl = process.env.JUPYTERHUB_SERVICE_URL;
const prefix = process.env.JUPYTERHUB_SERVICE_PREFIX ?? "/";
if (!serviceUrl) {
  process.stderr.write("upstream: JUPYTERHUB_SERVICE_URL is not set (e.g. http://127.0.0.1:9000/user/bench/)\n");
  process.exit(2);
}
if (!prefix.startsWith("/") || !prefix.endsWith("/")) {
  process.stderr.write(`upstream: JUPYTERHUB_SERVICE_PREFIX must start and end with "/": ${prefix}\n`);
  process.exit(2);
}
const listenAt = new URL(serviceUrl);

const SMALL = Buffer.alloc(100, "s");
const LARGE = Buffer.alloc(1 << 20, "L");
const OK = Buffer.from("ok\n");
const NOT_FOUND = Buffer.from("not found\n");

function send(res: http.ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { "Content-Type": "application/octet-stream", "Content-Length": body.length });
  res.end(body);
}

const routes = new Map<string, Buffer>([
  [prefix, OK],
  [`${prefix}100b`, SMALL],
  [`${prefix}1mib`, LARGE],
]);

// keepAliveTimeout above the proxies' idle time, so pooled upstream sockets are not closed between wrk runs.
const server = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const body = routes.get(q < 0 ? url : url.slice(0, q));
  if (body) send(res, 200, body);
  else send(res, 404, NOT_FOUND);
});

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
wss.on("connection", (sock) => {
  sock.on("message", (data, isBinary) => sock.send(data as Buffer, { binary: isBinary }));
  sock.on("error", () => sock.terminate());
});

server.on("upgrade", (req, socket, head) => {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  if ((q < 0 ? url : url.slice(0, q)) !== `${prefix}ws`) {
    socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
});

server.listen(Number(listenAt.port), listenAt.hostname.replace(/^\[|\]$/g, ""), () => {
  const { port } = server.address() as { port: number };
  const info = process.env.BENCH_UPSTREAM_INFO;
  if (info) writeFileSync(info, JSON.stringify({ pid: process.pid, port }));
});

const stop = () => {
  for (const c of wss.clients) c.terminate();
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
