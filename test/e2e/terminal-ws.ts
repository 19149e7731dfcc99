// A terminal client for tests, as the terminal page's script is: open a terminal with the page's form, read
// the page's ticket, connect its websocket, type and wait for output.
import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";
import type { Browser } from "./harness.js";

export function cookieOf(b: Browser): string {
  return b.cookies.map((c) => `${c.name}=${c.value}`).join("; ");
}

/** POSTs the open form; resolves with the terminal's page path (…?t=<id>) or the refusal. */
export async function openTerminal(b: Browser, owner: string, server = ""): Promise<{ status: number; location?: string; body: string }> {
  const csrf = await b.csrf();
  const path = `/hub/terminal/${owner}${server ? `/${server}` : ""}`;
  const res = await b.postForm(path, { _xsrf: csrf });
  return { status: res.status, location: res.headers.get("location") ?? undefined, body: await res.text() };
}

/** The ticket on a terminal page, or undefined (with the status) when the page has none. */
export async function ticketOf(b: Browser, pagePath: string): Promise<{ status: number; ticket?: string; html: string }> {
  const res = await b.request(pagePath);
  const html = await res.text();
  return { status: res.status, ticket: /data-ticket="([^"]+)"/.exec(html)?.[1], html };
}

export interface TermConn {
  ws: WebSocket;
  output(): string;
  messages: Record<string, unknown>[];
  send(text: string): void;
  resize(cols: number, rows: number): void;
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  waitForMessage(type: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  closed: Promise<number>;
}

/** Connects (or rejects with "refused <status>: <body>"). */
export function connectTerminal(base: string, pagePath: string, ticket: string | undefined, headers: Record<string, string>): Promise<TermConn> {
  const u = new URL(pagePath, base);
  const url = `${u.origin.replace(/^http/, "ws")}${u.pathname}${ticket === undefined ? "" : `?ticket=${encodeURIComponent(ticket)}`}`;
  const ws = new WebSocket(url, { headers });
  let out = Buffer.alloc(0);
  const messages: Record<string, unknown>[] = [];
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  ws.on("message", (data: Buffer, isBinary) => {
    if (isBinary) out = Buffer.concat([out, data]);
    else messages.push(JSON.parse(data.toString()) as Record<string, unknown>);
  });
  const conn: TermConn = {
    ws,
    messages,
    closed,
    output: () => out.toString("utf8"),
    send: (text) => ws.send(Buffer.from(text, "utf8"), { binary: true }),
    resize: (cols, rows) => ws.send(JSON.stringify({ type: "resize", cols, rows })),
    async waitFor(re, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const m = re.exec(conn.output());
        if (m) return m[0];
        await sleep(25);
      }
      throw new Error(`no ${re} in the terminal within ${timeoutMs} ms; it shows:\n${conn.output().slice(-2000)}`);
    },
    async waitForMessage(type, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const m = messages.find((x) => x.type === type);
        if (m) return m;
        await sleep(25);
      }
      throw new Error(`no ${type} message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`);
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("no websocket answer within 10 s"));
    }, 10_000);
    ws.once("unexpected-response", (_req, res) => {
      clearTimeout(timer);
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => reject(new Error(`refused ${res.statusCode}: ${body.trim()}`)));
      res.on("error", () => reject(new Error(`refused ${res.statusCode}`)));
    });
    ws.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.once("open", () => {
      clearTimeout(timer);
      resolve(conn);
    });
  });
}
