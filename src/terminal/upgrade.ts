// The terminal's websocket: the proxy hands every upgrade it has no route for to the hub, and this takes those
// for /hub/terminal/…. A cookie is not enough to get in: in path mode a page of another user's server shares the
// hub's origin and its websocket would carry the visitor's cookies. The page's single-use ticket is what counts
// (only a hub page served to a window's navigation carries it, which no script on the origin can read), bound to
// the session that loaded the page, checked with the Origin, the path and the viewer's right to the terminal.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { Hono } from "hono";
import { WebSocketServer } from "ws";
import type { Hub, HubEnv } from "../hub/context.js";
import { userHostGuard } from "../hub/hosts.js";
import { identify } from "../hub/identify.js";
import { TerminalManager } from "./manager.js";

/** Whether `viewer` may use `owner`'s terminals: their own, or an admin's where admin_access says so. */
export function mayUseTerminal(hub: Hub, viewer: { name: string; admin: number | boolean }, owner: string): boolean {
  return viewer.name === owner || (!!viewer.admin && hub.config().admin_access);
}

/** Whether the Origin a browser sent is the hub's own (its public URL, or the Host it was asked on). */
export function hubOrigin(origin: string | undefined, host: string | undefined, publicUrl: string | undefined): boolean {
  if (!origin || origin === "null") return false;
  try {
    const o = new URL(origin);
    if (o.protocol !== "http:" && o.protocol !== "https:") return false;
    return (publicUrl !== undefined && o.origin === new URL(publicUrl).origin) || (publicUrl === undefined && o.host === host);
  } catch {
    return false;
  }
}

/** /hub/terminal/<user>[/<server>] as (owner, server), or undefined for anything else. */
export function terminalPath(pathname: string): { owner: string; server: string } | undefined {
  const m = /^\/hub\/terminal\/([^/]+)(?:\/([^/]+))?\/?$/.exec(pathname);
  if (!m) return undefined;
  try {
    return { owner: decodeURIComponent(m[1]!), server: m[2] ? decodeURIComponent(m[2]) : "" };
  } catch {
    return undefined;
  }
}

interface Admitted {
  terminal: string;
  viewer: string;
}

/**
 * The upgrade listener for the proxy (ProxySinks.hubUpgrade): true when it took the socket (a /hub/terminal/
 * path), false to let the proxy refuse it as it does every websocket without a route.
 */
export function terminalUpgrade(hub: Hub, terminals: TerminalManager): (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });
  const admitted = new WeakMap<Request, Admitted>();
  // The decision runs through the hub's own middleware (user-host guard, identify), as for any hub request.
  const gate = new Hono<HubEnv>();
  gate.use("*", userHostGuard(hub));
  gate.use("*", identify(hub));
  gate.get("*", (c) => {
    const refuse = (status: number, message: string) => {
      hub.log.info("terminal websocket refused", { path: c.req.path.slice(0, 200), status, reason: message, user: c.get("who")?.user.name });
      return c.text(`${message}\n`, status as 403);
    };
    const place = terminalPath(c.req.path);
    if (!place) return refuse(404, "No terminal here.");
    const cfg = hub.config();
    const ticket = c.req.query("ticket");
    // Spent by any attempt, whatever is wrong with it.
    const terms = ticket ? terminals.redeem(ticket) : undefined;
    if (!hubOrigin(c.req.header("origin"), c.req.header("host"), cfg.public_url)) return refuse(403, "A terminal's websocket must come from the hub's own pages (Origin).");
    if (!ticket) return refuse(403, "A terminal's websocket needs the ticket its page carries.");
    if (!terms) return refuse(403, "The terminal ticket is unknown, used or expired: reload the page.");
    const who = c.get("who");
    if (!who || who.via !== "session" || !who.session || !TerminalManager.sameSession(who.session.hash, terms.sessionHash) || who.user.id !== terms.viewerId) {
      return refuse(403, "The terminal ticket belongs to another session.");
    }
    const t = terminals.get(terms.terminal);
    if (!t) return refuse(410, "This terminal has ended.");
    if (t.owner !== place.owner || t.server !== place.server) return refuse(403, "The ticket is for another terminal.");
    if (!mayUseTerminal(hub, who.user, t.owner)) return refuse(403, `You may not use ${t.owner}'s terminal.`);
    admitted.set(c.req.raw, { terminal: t.id, viewer: who.user.name });
    return c.body(null, 204);
  });

  const answer = (socket: Duplex, status: number, body: string) => {
    const reason = { 403: "Forbidden", 404: "Not Found", 410: "Gone", 503: "Service Unavailable" }[status] ?? "Error";
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`);
    socket.destroy();
  };

  return (req, socket, head) => {
    if (!req.url?.startsWith("/hub/terminal/")) return false;
    socket.on("error", () => undefined);
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined) continue;
      for (const value of Array.isArray(v) ? v : [v]) headers.append(k, value);
    }
    let request: Request;
    try {
      request = new Request(new URL(req.url, `http://${req.headers.host ?? "localhost"}`), { headers });
    } catch {
      answer(socket, 403, "Bad request.\n");
      return true;
    }
    void (async () => {
      try {
        const res = await gate.fetch(request, { incoming: req, outgoing: undefined } as never);
        const ok = admitted.get(request);
        if (!ok) return answer(socket, res.status, await res.text());
        wss.handleUpgrade(req, socket, head, (ws) => void terminals.connect(ok.terminal, ws, ok.viewer));
      } catch (err) {
        hub.log.error("terminal websocket failed", { error: err });
        answer(socket, 503, "The terminal could not be reached.\n");
      }
    })();
    return true;
  };
}
