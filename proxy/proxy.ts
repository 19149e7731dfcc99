// The proxy: slicehub's one listener, read top to bottom like configurable-http-proxy's one file.
//
//   dispatch      by Host and path: /user/… paths with a live route (proxy/table.ts) are forwarded, a
//                 subdomain-mode route only on its own host; everything else, and every miss, goes to the hub
//                 application; a websocket to a path without a route gets a 503.
//   limits        what one client may hold: headers, request, keep-alive and idle timeouts, a connection cap.
//   HTTP          forwarded with node's client directly, pooled keep-alive, one retry on a stale pooled socket.
//   websockets    forwarded through http-proxy-3.
//   both          one X-Forwarded-* builder, the hub's cookies stripped from requests, user servers' Set-Cookie
//                 confined to their own prefix (Domain removed, hub cookie names dropped), per-server activity for
//                 the culler (configurable-http-proxy's last_activity), a 503 page when a server does not answer.
//   responses     what a user's server answers may not reach beyond it (issue 10): Service-Worker-Allowed and
//                 Clear-Site-Data are stripped; a service worker script outside the server's prefix (whose scope
//                 would be /user/) is refused with a 403; in path mode its Cross-Origin-Opener-Policy becomes
//                 noopener-allow-popups, so no other page of the origin (the hub's, another user's) shares a
//                 window handle with it. No frame-ancestors: browsers match it against origins, not paths.
//
// What the proxy reports goes to its sinks (ProxySinks). The listener binds while the daemon is still root,
// before the store and the hub application exist, so sinks may be attached later: until then the hub answers
// 503 with Retry-After, activity is kept for the first flush after, and upstream failures are only logged.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import { getRequestListener } from "@hono/node-server";
import { createProxyServer } from "http-proxy-3";
import type { Logger } from "../src/log.js";
import { prefersJson } from "../src/negotiate.js";
import { forwardedView, type ForwardedView, type TrustCheck } from "../src/forwarded.js";
import { hostnameOf, type Route, type RouteTable } from "./table.js";

// ------------------------------------------------------------------------------------------------ interface

/** The hub application, as a fetch handler (Hono's `app.fetch`). */
export type HubFetch = (req: Request, env: object) => Response | Promise<Response>;

/** Where the proxy sends what is not its own to handle. */
export interface ProxySinks {
  /** Answers every request that is not for a live route. */
  hub: HubFetch;
  /** Last activity per serverId since the previous flush; only servers that had traffic. */
  onActivity(batch: Map<number, Date>): void;
  /** A route's upstream refused a connection: its server may have died. */
  onUpstreamDown(route: Route): void;
  /**
   * A websocket upgrade without a route, for the hub's own websockets (the terminal): true when it took the
   * socket, false to have it refused like any other.
   */
  hubUpgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
}

/**
 * What one client may hold: without limits a client that connects and sends nothing, or trickles its headers,
 * keeps its connection (and a file descriptor) for as long as it likes. 0 turns a limit off.
 */
export interface ConnectionLimits {
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

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = {
  headersTimeoutMs: 20_000,
  // Node's own default: a large single upload through a user's server must not be cut short.
  requestTimeoutMs: 300_000,
  // Longer than the 60 s a reverse proxy in front typically keeps an idle upstream connection, so that the
  // proxy, not we, closes it: closing first races the proxy's next request on that connection.
  keepAliveTimeoutMs: 65_000,
  idleTimeoutMs: 300_000,
  maxConnections: 4_096,
};

export interface ProxyOptions {
  log: Logger;
  table: RouteTable;
  /** Cookie names removed from forwarded requests, e.g. the hub's own session cookie. */
  stripCookies: string[];
  activityFlushMs: number;
  limits?: Partial<ConnectionLimits>;
  /** Sinks known at creation; the rest can be attached later. */
  sinks?: Partial<ProxySinks>;
  /**
   * TLS for an https listener (src/tls.ts: versions, ALPN; the certificate may come later through
   * setSecureContext). Without it the listener is plain HTTP.
   */
  tls?: https.ServerOptions;
  /** Whose X-Forwarded-* and Forwarded headers are believed (config trusted_proxies); nobody's without it. */
  trusted?: TrustCheck;
  /** The Strict-Transport-Security value for every answer, or undefined for none (read per request). */
  hsts?: () => string | undefined;
}

export interface RoutingProxy {
  /** The listener, not yet listening: the caller binds it. An https.Server with `tls`. */
  readonly server: http.Server | https.Server;
  /** Sinks that exist only now (the daemon's store, lifecycle and hub application); each replaces its previous one. */
  attach(sinks: Partial<ProxySinks>): void;
  flushActivity(): void;
  /**
   * Requests forwarded to users' servers since the start, by the status class the client got ("2xx" …; a
   * websocket that was upgraded is "1xx"), for /hub/metrics. Counting is one array increment a request.
   */
  requestCounts(): { http: Record<string, number>; websocket: Record<string, number> };
  /**
   * Stops the flush timer and flushes, closes the listener and its HTTP connections, and pooled upstream
   * sockets. Open websockets are left alone; the promise resolves once the listener has closed, so after them.
   * Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

// ------------------------------------------------------------------------------------------------ the proxy

// What a pooled keep-alive socket that the upstream closed under us looks like.
// Failures that may mean the server died: the lifecycle then asks the spawner (a cheap poll) and stops
// tracking the server only if its process is really gone. A server killed a moment ago can answer a new
// connection with a reset rather than a refusal.
const UPSTREAM_GONE = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE"]);
const STALE_SOCKET_CODES = new Set(["ECONNRESET", "EPIPE"]);
const RETRYABLE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function createProxy(opts: ProxyOptions): RoutingProxy {
  const { log, table } = opts;
  const sinks: Partial<ProxySinks> = {};
  let hubListener: ((req: IncomingMessage, res: ServerResponse) => unknown) | undefined;
  function attach(more: Partial<ProxySinks>): void {
    Object.assign(sinks, more);
    if (more.hub) hubListener = getRequestListener(more.hub as never, { overrideGlobalObjects: false });
  }
  if (opts.sinks) attach(opts.sinks);

  // -------------------------------------------------------------------------------- listener and limits

  const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, idleTimeoutMs, maxConnections } = {
    ...DEFAULT_CONNECTION_LIMITS,
    ...opts.limits,
  };
  const serverOptions: http.ServerOptions = {
    // Node starts a connection's headers clock when it opens: this also closes one that never sends a byte.
    headersTimeout: headersTimeoutMs,
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    // Node enforces the two timeouts above only when it sweeps its connections, every 30 s by default: a
    // connection would outlive a 20 s headers timeout by half a minute.
    connectionsCheckingInterval: headersTimeoutMs > 0 ? Math.min(1_000, Math.max(50, headersTimeoutMs >> 2)) : 1_000,
  };
  const server = opts.tls ? https.createServer({ ...opts.tls, ...serverOptions }) : http.createServer(serverOptions);
  const trusted: TrustCheck = opts.trusted ?? (() => false);
  server.timeout = idleTimeoutMs;
  server.maxConnections = maxConnections;
  // No "clientError" listener: node's own answers a timed-out or malformed request (408, 400, 431) and destroys
  // the socket. A listener has to do both itself; end() alone left the socket to clients that never close.

  // ------------------------------------------------------------------------------------------- dispatch

  // A route's path goes straight to the forwarder: no framework on the path every notebook request takes.
  // Host and path: a subdomain-mode route answers only on its own host, so the same path on the hub's host (or
  // another user's) falls through to the hub.
  server.on("request", (req, res) => {
    const hsts = opts.hsts?.();
    if (hsts) res.setHeader("Strict-Transport-Security", hsts);
    const path = routable(req.url);
    const route = path ? table.lookup(path, hostnameOf(req.headers.host)) : undefined;
    if (!route) {
      if (hubListener) void hubListener(req, res);
      else hubNotReady(res);
    } else if (req.headers["service-worker"] !== undefined && !path!.startsWith(`${route.prefix}/`)) {
      refuseServiceWorker(req, res, route);
    } else web(req, res, route);
  });
  server.on("upgrade", (req, socket: Duplex, head: Buffer) => {
    const path = routable(req.url);
    const route = path ? table.lookup(path, hostnameOf(req.headers.host)) : undefined;
    if (route) ws(req, socket, head, route);
    else if (!sinks.hubUpgrade?.(req, socket, head)) noRouteForWebsocket(socket);
  });

  /**
   * A service worker's scope is at most its script's directory once Service-Worker-Allowed is stripped. A script
   * at the bare prefix (/user/mallory, /user/mallory?x) has the directory /user/, which covers every user's server
   * on one origin: the browser asks for such a script with `Service-Worker: script`, and gets none.
   */
  function refuseServiceWorker(req: IncomingMessage, res: ServerResponse, route: Route): void {
    log.warn("refused a service worker script outside its server's prefix", { route: route.prefix, path: pathOf(req.url) });
    count(httpCounts, 403);
    res.writeHead(403, { "Content-Type": "text/plain; charset=UTF-8", "Content-Length": 10, "Cache-Control": "no-store" });
    res.end("Forbidden\n");
  }

  // ------------------------------------------------------------------------------------------- counting

  // Index = status / 100 (0 unused); read only when /hub/metrics is scraped.
  const httpCounts = [0, 0, 0, 0, 0, 0];
  const wsCounts = [0, 0, 0, 0, 0, 0];
  const count = (counts: number[], status: number) => void counts[Math.min(5, Math.max(1, Math.floor(status / 100)))]!++;
  function requestCounts(): { http: Record<string, number>; websocket: Record<string, number> } {
    const named = (counts: number[]) => Object.fromEntries(counts.slice(1).map((n, i) => [`${i + 1}xx`, n]));
    return { http: named(httpCounts), websocket: named(wsCounts) };
  }

  // ------------------------------------------------------------------------------------------- activity

  const lastActivity = new Map<number, number>();
  const touch = (serverId: number) => void lastActivity.set(serverId, Date.now());

  function flushActivity(): void {
    // Without a sink yet, activity is kept: the first flush after attach() reports it.
    if (lastActivity.size === 0 || !sinks.onActivity) return;
    const batch = new Map<number, Date>();
    for (const [serverId, ms] of lastActivity) batch.set(serverId, new Date(ms));
    lastActivity.clear();
    try {
      sinks.onActivity(batch);
    } catch (error) {
      log.error("recording proxy activity failed", { error });
    }
  }
  const timer = setInterval(flushActivity, opts.activityFlushMs);
  timer.unref();

  // ------------------------------------------------------------------------------------------ plain HTTP

  const agent = new http.Agent({ keepAlive: true });

  // Plain HTTP goes through node's client directly rather than http-proxy: per request that is a third less
  // CPU (bench/README.md), on the path every notebook request takes. Websockets still use http-proxy.
  function web(req: IncomingMessage, res: ServerResponse, route: Route): void {
    stripCookies(req, opts.stripCookies);
    const headers = upstreamHeaders(req, forwardedView(req, trusted));
    const target = new URL(route.target);
    const send = (fresh: boolean) => {
      // fresh: a retry avoids the pool, which may hold more sockets the upstream closed at the same moment.
      const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: fresh ? false : agent });
      let answered = false;
      upstream.on("response", (up) => {
        answered = true;
        touch(route.serverId);
        count(httpCounts, up.statusCode ?? 502);
        filterResponse(up, route, opts.stripCookies, log);
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
        if (!retry) return failed(err, req, res, route);
        log.debug("retrying on a fresh connection", { route: route.prefix, error_code: err.code });
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

  function failed(err: NodeJS.ErrnoException, req: IncomingMessage, res: ServerResponse, route: Route): void {
    if (res.destroyed) return; // the client went away first; nothing to answer
    log.warn("upstream request failed", {
      method: req.method,
      path: pathOf(req.url),
      route: route.prefix,
      error_code: err.code ?? err.message,
    });
    if (UPSTREAM_GONE.has(err.code ?? "")) sinks.onUpstreamDown?.(route);
    if (res.headersSent) res.destroy();
    else {
      count(httpCounts, 503);
      notAnswering(req, res, route);
    }
  }

  // ------------------------------------------------------------------------------------------ websockets

  // toProxy sends req.url byte-for-byte. Without it http-proxy re-serialises the URL (resolving dot segments,
  // even %2e%2e, and re-encoding the query), so a server could receive a path other than the one we routed.
  // No xfwd: setForwarded() writes the same X-Forwarded-* as for plain HTTP.
  const wsProxy = createProxyServer({ toProxy: true });
  /** Which route a websocket upgrade request is for, until http-proxy reports the upgrade. */
  const routeOf = new WeakMap<IncomingMessage, Route>();
  const upgrades = new WeakMap<Duplex, { serverId: number; client: Duplex }>();

  function ws(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route): void {
    routeOf.set(req, route);
    stripCookies(req, opts.stripCookies);
    // http-proxy copies req.headers, hop-by-hop ones included: the upgrade needs its Connection and Upgrade.
    setForwarded(req, req.headers, forwardedView(req, trusted));
    // After this callback http-proxy ends the client socket (destroySoon), before or after the upgrade.
    wsProxy.ws(req, socket, head, { target: route.target }, (err) => {
      count(wsCounts, 502);
      if (UPSTREAM_GONE.has((err as NodeJS.ErrnoException).code ?? "")) sinks.onUpstreamDown?.(route);
      log.warn("upstream websocket failed", {
        path: pathOf(req.url),
        route: route.prefix,
        error_code: (err as NodeJS.ErrnoException).code ?? err.message,
      });
    });
  }

  // http-proxy rethrows errors nobody listens for. Per-call callbacks get upstream failures; this listener
  // only sees a websocket client's own socket failing (the client went away), which is routine.
  wsProxy.on("error", (err, _req, clientSide) => {
    log.debug("proxy client connection failed", { error_code: (err as NodeJS.ErrnoException).code });
    clientSide.destroy();
  });

  // Activity listeners go on the sockets only once http-proxy has piped them together ("open"): a 'data'
  // listener added earlier switches a socket to flowing mode and the bytes it sees would never reach the pipe.
  // http-proxy copies the upstream's headers to the client as they are, both those of a 101 and those of a plain
  // answer to the upgrade request, so they need the same filter as plain HTTP. These listeners run
  // before http-proxy's own (it adds them after emitting proxyReqWs), so the headers it copies are filtered.
  wsProxy.on("proxyReqWs", (proxyReq, req, client) => {
    const route = routeOf.get(req);
    if (!route) return;
    proxyReq.once("response", (res) => {
      count(wsCounts, res.statusCode ?? 502);
      filterResponse(res, route, opts.stripCookies, log);
    });
    proxyReq.once("upgrade", (res, upstream: Duplex) => {
      count(wsCounts, 101);
      filterResponse(res, route, opts.stripCookies, log);
      upgrades.set(upstream, { serverId: route.serverId, client });
    });
  });
  wsProxy.on("open", (upstream) => {
    const pair = upgrades.get(upstream);
    if (!pair) return;
    const onData = () => touch(pair.serverId);
    onData();
    upstream.on("data", onData);
    pair.client.on("data", onData);
  });

  // -------------------------------------------------------------------------------------------- closing

  let closed: Promise<void> | undefined;
  function close(): Promise<void> {
    closed ??= new Promise<void>((resolve) => {
      clearInterval(timer);
      flushActivity();
      server.close(() => resolve());
      server.closeAllConnections();
      agent.destroy();
    });
    return closed;
  }

  return { server, attach, flushActivity, requestCounts, close };
}

// ---------------------------------------------------------------------------------------------- dispatch

/** The path (without query) of a request that may be for a route: only /user/… ones are. */
function routable(url: string | undefined): string | undefined {
  if (!url || !url.startsWith("/user/")) return undefined;
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

function hubNotReady(res: ServerResponse): void {
  res.writeHead(503, { "Content-Type": "text/plain; charset=UTF-8", "Retry-After": "1" });
  res.end("slicehub is starting; try again in a moment\n");
}

function noRouteForWebsocket(socket: Duplex): void {
  // An upgraded socket has left the server's timeouts behind, and node's sockets stay half-open after end():
  // without destroy() a client that never closes its side would keep this one for good.
  socket.end("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nNo server is running here.\n");
  socket.destroy();
}

// ------------------------------------------------------------------------------------------ request headers

// Hop-by-hop headers belong to one connection, not to the request: a client's "Connection: close" must not
// end our pooled upstream socket, and the upstream's framing is node's to redo towards the client.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade"]);

/** A plain HTTP request's headers for the upstream: hop-by-hop ones removed, X-Forwarded-* set. */
function upstreamHeaders(req: IncomingMessage, view: ForwardedView): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  setForwarded(req, out, view);
  return out;
}

/**
 * The one X-Forwarded-* builder, for plain HTTP and websockets alike: what the hub believes (src/forwarded.ts),
 * never what an untrusted client claimed. X-Forwarded-For is the believed chain (client first, our peer last),
 * Proto, Host and Port the client's as believed, X-Real-IP the client (tornado prefers it to X-Forwarded-For);
 * a client's Forwarded and X-Scheme (which tornado would prefer to X-Forwarded-Proto) are removed. Proto is http
 * or https for a websocket too (servers behind a proxy, such as tornado's, ignore ws or wss). `out` may be
 * `req.headers` itself.
 */
function setForwarded(req: IncomingMessage, out: http.OutgoingHttpHeaders, view: ForwardedView): void {
  for (const name of ["forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip", "x-scheme"]) delete out[name];
  out["x-forwarded-for"] = view.chain.join(",");
  out["x-forwarded-port"] = /:(\d+)$/.exec(view.host)?.[1] ?? (view.proto === "https" ? "443" : "80");
  out["x-forwarded-proto"] = view.proto;
  out["x-forwarded-host"] = view.host;
  out["x-real-ip"] = view.client;
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

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

function pathOf(url = ""): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

// ----------------------------------------------------------------------------------------- response headers

function responseHeaders(up: IncomingMessage): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && k !== "transfer-encoding") out[k] = v;
  return out;
}

// Headers a user's server must not send to a visitor: Service-Worker-Allowed would let a service worker's scope
// leave the server's prefix (up to `/`, taking over the hub's pages on one origin); Clear-Site-Data would wipe
// the visitor's hub cookies and storage (logging them out) and, on one origin, other users' servers' data.
// Strict-Transport-Security is the hub's to send (config tls.hsts_max_age_s): a server's max-age=0 would turn
// HSTS off for the hub's own host in path mode.
const STRIPPED_RESPONSE_HEADERS = ["service-worker-allowed", "clear-site-data", "strict-transport-security"] as const;

/**
 * Everything the proxy changes in a user's server's answer (plain HTTP, a 101, or a plain answer to an upgrade):
 * node gives header names in lower case, so a header is caught whatever case the server wrote it in.
 */
function filterResponse(res: IncomingMessage, route: Route, hubCookies: readonly string[], log: Logger): void {
  const headers = res.headers;
  for (const name of STRIPPED_RESPONSE_HEADERS) {
    if (headers[name] === undefined) continue;
    delete headers[name];
    log.debug("stripped a header a user server sent", { route: route.prefix, header: name });
  }
  // Path mode: every user's server shares the hub's origin, and a window handle between same-origin pages is
  // full access (read the DOM, run script). noopener-allow-popups puts each user's document in a browsing
  // context group of its own, whoever opened it and whomever it opens on the origin, so a page of mallory's gets
  // no handle on a hub page (which sends the same policy) or on alice's pages, nor they on it. It replaces what
  // the server sent: unsafe-none or same-origin would share a group with other same-origin pages. The cost, seen
  // in Chromium (test/proxy/browser.test.ts): pages of the same server lose their handles on each other too. A
  // window the page opens blank and then sends to its own server (Notebook 6 opens notebooks so) still loads
  // and can still close itself, but the opener cannot script it afterwards, nor it its opener. Subdomain mode:
  // each server has its own origin, and its own choice of policy is left alone.
  if (!route.host) headers["cross-origin-opener-policy"] = "noopener-allow-popups";
  filterSetCookie(res, route, hubCookies, log);
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

// ------------------------------------------------------------------------------------------ the 503 answer

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
