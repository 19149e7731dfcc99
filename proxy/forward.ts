// Forwards /user/… requests and websockets to user servers, answers 503 for a server that is not answering,
// and records per-server activity for the culler (what configurable-http-proxy's last_activity did).
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { createProxyServer } from "http-proxy-3";
import type { Logger } from "../src/log.js";
import { prefersJson } from "../src/negotiate.js";
import type { Route } from "./table.js";

export interface ForwarderOptions {
  log: Logger;
  /** Cookie names removed from forwarded requests, e.g. the hub's own session cookie. */
  stripCookies: string[];
  activityFlushMs: number;
  /** Last activity per serverId since the previous call; only servers that had traffic. */
  onActivity: (batch: Map<number, Date>) => void;
  /** Called when a route's upstream refuses connections: its server may have died. */
  onUpstreamDown?: (route: Route) => void;
}

export interface Forwarder {
  /** Takes over `req` (its Cookie and X-Forwarded-* headers are rewritten in place) and answers `res`. */
  web(req: IncomingMessage, res: ServerResponse, route: Route): void;
  ws(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route): void;
  flushActivity(): void;
  /** Stops the flush timer, flushes, and closes pooled upstream sockets; open connections are left alone. */
  close(): void;
}

// What a pooled keep-alive socket that the upstream closed under us looks like.
const STALE_SOCKET_CODES = new Set(["ECONNRESET", "EPIPE"]);
const RETRYABLE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

const NOT_ANSWERING_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Server not answering</title></head>
<body>
<h1>This server is not answering</h1>
<p>It may be starting, stopping, or it may have crashed. Try again in a moment, or check it from the
<a href="/hub/home">control panel</a>.</p>
</body>
</html>
`;

export function createForwarder(opts: ForwarderOptions): Forwarder {
  const { log } = opts;
  const agent = new http.Agent({ keepAlive: true });
  // toProxy sends req.url byte-for-byte. Without it http-proxy re-serialises the URL (resolving dot segments,
  // even %2e%2e, and re-encoding the query), so a server could receive a path other than the one we routed.
  const proxy = createProxyServer({ xfwd: true, toProxy: true });

  const lastActivity = new Map<number, number>();
  /** Which route a websocket upgrade request is for, until http-proxy reports the upgrade. */
  const routeOf = new WeakMap<IncomingMessage, Route>();
  const upgrades = new WeakMap<Duplex, { serverId: number; client: Duplex }>();

  const touch = (serverId: number | undefined) => {
    if (serverId !== undefined) lastActivity.set(serverId, Date.now());
  };

  // http-proxy rethrows errors nobody listens for. Per-call callbacks get upstream failures; this listener
  // only sees a websocket client's own socket failing (the client went away), which is routine.
  proxy.on("error", (err, _req, clientSide) => {
    log.debug("proxy client connection failed", { code: (err as NodeJS.ErrnoException).code });
    clientSide.destroy();
  });

  // Activity listeners go on the sockets only once http-proxy has piped them together ("open"): a 'data'
  // listener added earlier switches a socket to flowing mode and the bytes it sees would never reach the pipe.
  // http-proxy copies the upstream's headers to the client as they are, both those of a 101 and those of a plain
  // answer to the upgrade request, so their cookies need the same filter as plain HTTP. These listeners run
  // before http-proxy's own (it adds them after emitting proxyReqWs), so the headers it copies are filtered.
  proxy.on("proxyReqWs", (proxyReq, req, client) => {
    const route = routeOf.get(req);
    if (!route) return;
    proxyReq.once("response", (res) => filterSetCookie(res, route, opts.stripCookies, log));
    proxyReq.once("upgrade", (res, upstream: Duplex) => {
      filterSetCookie(res, route, opts.stripCookies, log);
      upgrades.set(upstream, { serverId: route.serverId, client });
    });
  });
  proxy.on("open", (upstream) => {
    const pair = upgrades.get(upstream);
    if (!pair) return;
    const onData = () => touch(pair.serverId);
    onData();
    upstream.on("data", onData);
    pair.client.on("data", onData);
  });

  function fail(err: NodeJS.ErrnoException, req: IncomingMessage, res: ServerResponse, route: Route): void {
    if (res.destroyed) return; // the client went away first; nothing to answer
    log.warn("upstream request failed", {
      method: req.method,
      path: pathOf(req.url),
      route: route.prefix,
      code: err.code ?? err.message,
    });
    if (err.code === "ECONNREFUSED") opts.onUpstreamDown?.(route);
    if (res.headersSent) res.destroy();
    else notAnswering(req, res, route);
  }

  // Plain HTTP goes through node's client directly rather than http-proxy: per request that is a third less
  // CPU (bench/README.md), on the path every notebook request takes. Websockets still use http-proxy.
  function web(req: IncomingMessage, res: ServerResponse, route: Route): void {
    stripCookies(req, opts.stripCookies);
    const headers = forwardedHeaders(req);
    const target = new URL(route.target);
    const send = (fresh: boolean) => {
      // fresh: a retry avoids the pool, which may hold more sockets the upstream closed at the same moment.
      const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: fresh ? false : agent });
      let answered = false;
      upstream.on("response", (up) => {
        answered = true;
        touch(route.serverId);
        filterSetCookie(up, route, opts.stripCookies, log);
        res.writeHead(up.statusCode ?? 502, up.statusMessage, responseHeaders(up));
        up.pipe(res);
        // The upstream's socket failing mid-body surfaces here; without a listener it would crash the hub.
        up.on("error", () => res.destroy());
        up.once("close", () => {
          touch(route.serverId);
          // The upstream died mid-body: end the client's response too, or it waits forever for the rest.
          if (!up.complete) res.destroy();
        });
      });
      upstream.on("error", (err: NodeJS.ErrnoException) => {
        const retry =
          !fresh &&
          !answered &&
          upstream.reusedSocket &&
          STALE_SOCKET_CODES.has(err.code ?? "") &&
          !res.headersSent &&
          !res.destroyed &&
          RETRYABLE_METHODS.has(req.method ?? "") &&
          !hasBody(req);
        if (!retry) return fail(err, req, res, route);
        log.debug("retrying on a fresh connection", { route: route.prefix, code: err.code });
        send(true);
      });
      // A client that goes away must not leave the upstream request (and its socket) behind.
      res.once("close", () => {
        if (!res.writableFinished) upstream.destroy();
      });
      if (hasBody(req)) req.pipe(upstream);
      else upstream.end();
    };
    send(false);
  }

  function ws(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route): void {
    routeOf.set(req, route);
    stripCookies(req, opts.stripCookies);
    // After this callback http-proxy ends the client socket (destroySoon), before or after the upgrade.
    proxy.ws(req, socket, head, { target: route.target }, (err) => {
      if ((err as NodeJS.ErrnoException).code === "ECONNREFUSED") opts.onUpstreamDown?.(route);
      log.warn("upstream websocket failed", {
        path: pathOf(req.url),
        route: route.prefix,
        code: (err as NodeJS.ErrnoException).code ?? err.message,
      });
    });
  }

  function flushActivity(): void {
    if (lastActivity.size === 0) return;
    const batch = new Map<number, Date>();
    for (const [serverId, ms] of lastActivity) batch.set(serverId, new Date(ms));
    lastActivity.clear();
    try {
      opts.onActivity(batch);
    } catch (error) {
      log.error("recording proxy activity failed", { error });
    }
  }

  const timer = setInterval(flushActivity, opts.activityFlushMs);
  timer.unref();

  return {
    web,
    ws,
    flushActivity,
    close() {
      clearInterval(timer);
      flushActivity();
      agent.destroy();
    },
  };
}

function pathOf(url = ""): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/**
 * A user's server (whose code its owner controls) may set cookies for itself only. All servers share one
 * origin, so a cookie for another path or with a Domain would be "tossed" onto the hub or another user's
 * server (to fix an XSRF token there, or log a victim into the attacker's session). Such cookies are pinned
 * to the server's own prefix (Path rewritten, Domain removed): the classic Notebook sets its _xsrf cookie on
 * Path=/ and keeps working. A cookie without a Path gets the server's prefix too. Cookies named like the hub's
 * are dropped.
 */
function filterSetCookie(res: IncomingMessage, route: Route, hubCookies: readonly string[], log: Logger): void {
  const headers = res.headers["set-cookie"];
  if (!headers) return;
  const own = `${route.prefix}/`;
  let changed = false;
  const kept: string[] = [];
  for (const line of headers) {
    const [pair = "", ...attrs] = line.split(";");
    const name = pair.slice(0, pair.indexOf("=") >>> 0).trim();
    if (hubCookies.includes(name) || name.startsWith("__Host-") || name.startsWith("slicehub-") || name === "jupyterhub-session-id") {
      log.warn("dropped a cookie a user server set with a hub cookie's name", { route: route.prefix, cookie: name });
      changed = true;
      continue;
    }
    let pinned = false;
    let hasPath = false;
    const out = [pair];
    for (const attr of attrs) {
      const eq = attr.indexOf("=");
      const key = (eq < 0 ? attr : attr.slice(0, eq)).trim().toLowerCase();
      const value = eq < 0 ? "" : attr.slice(eq + 1).trim();
      if (key === "domain") pinned = true;
      else if (key === "path" && value !== route.prefix && !value.startsWith(own)) {
        out.push(` Path=${own}`);
        hasPath = pinned = true;
      } else {
        if (key === "path") hasPath = true;
        out.push(attr);
      }
    }
    // Without a Path the browser uses the request's directory: for a request to the bare prefix
    // (/user/mallory) that is /user, which every user's server receives.
    if (!hasPath) {
      out.push(` Path=${own}`);
      pinned = true;
    }
    if (pinned) {
      log.debug("pinned a user server's cookie to its own path", { route: route.prefix, cookie: name });
      changed = true;
    }
    kept.push(out.join(";"));
  }
  if (changed) res.headers["set-cookie"] = kept;
}

// Hop-by-hop headers belong to one connection, not to the request: a client's "Connection: close" must not
// end our pooled upstream socket, and the upstream's framing is node's to redo towards the client.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade"]);

/** The request's headers for the upstream: hop-by-hop ones removed, X-Forwarded-* added as http-proxy's xfwd does. */
function forwardedHeaders(req: IncomingMessage): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
  const add = (name: string, value: string) => {
    const prior = req.headers[name];
    out[name] = prior ? `${String(prior)},${value}` : value;
  };
  add("x-forwarded-for", req.socket.remoteAddress ?? "");
  add("x-forwarded-port", /:(\d+)$/.exec(req.headers.host ?? "")?.[1] ?? (encrypted ? "443" : "80"));
  add("x-forwarded-proto", encrypted ? "https" : "http");
  out["x-forwarded-host"] = req.headers["x-forwarded-host"] ?? req.headers.host ?? "";
  return out;
}

function responseHeaders(up: IncomingMessage): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && k !== "transfer-encoding") out[k] = v;
  return out;
}

/** Removes the named cookies; every other cookie keeps its bytes and its place. */
function stripCookies(req: IncomingMessage, names: readonly string[]): void {
  const header = req.headers.cookie;
  if (!header || !names.some((name) => header.includes(name))) return;
  const kept = header.split(";").filter((pair) => {
    const eq = pair.indexOf("=");
    return !names.includes((eq === -1 ? pair : pair.slice(0, eq)).trim());
  });
  const cookie = kept.join(";").trimStart();
  if (cookie) req.headers.cookie = cookie;
  else delete req.headers.cookie;
}

function notAnswering(req: IncomingMessage, res: ServerResponse, route: Route): void {
  const json = prefersJson(pathOf(req.url), req.headers.accept);
  const body = json
    ? JSON.stringify({
        status: 503,
        message: `The server at ${route.prefix}/ is not answering. Try again in a moment, or check it at /hub/home.`,
      })
    : NOT_ANSWERING_PAGE;
  res.writeHead(503, {
    "Content-Type": json ? "application/json" : "text/html; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
  });
  res.end(body);
}
