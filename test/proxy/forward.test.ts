import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import {
  closeServer,
  connections,
  deadTarget,
  listen,
  request,
  sleep,
  startEchoUpstream,
  startProxy,
  waitFor,
  type ProxyHarness,
} from "./harness.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function proxy(options?: Parameters<typeof startProxy>[0]): Promise<ProxyHarness> {
  const p = await startProxy(options);
  cleanups.push(() => p.close());
  return p;
}

async function upstream(handler: http.RequestListener, setup?: (s: http.Server) => void) {
  const server = http.createServer(handler);
  setup?.(server);
  const url = await listen(server);
  cleanups.push(() => closeServer(server));
  return { server, url };
}

async function echo() {
  const e = await startEchoUpstream();
  cleanups.push(() => e.close());
  return e;
}

interface Echoed {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe("HTTP forwarding", () => {
  it("forwards path, query, Host, cookies and XSRF/fetch-metadata headers unchanged, adding X-Forwarded-*", async () => {
    const up = await echo();
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    // Dot segments (raw and encoded), a double slash and an encoded query must reach the server as sent.
    const path = "/user/alice/a/../b/%2e%2e//c%20d?x=1&y=a%2Fb&token=t0k&x=2";
    const headers = {
      Host: "example.org:8443",
      Cookie: "jupyterhub-session-id=0123abcd; _xsrf=2|ab|cd|1700000000; other=v=1",
      "X-XSRFToken": "2|ab|cd|1700000000",
      "Sec-Fetch-Mode": "cors",
      "Sec-Fetch-Site": "same-origin",
      "Sec-Fetch-Dest": "empty",
      Origin: "https://example.org:8443",
      Referer: "https://example.org:8443/user/alice/lab",
      Authorization: "token abc",
    };
    const reply = await request(p.url, path, { headers });
    expect(reply.status).toBe(200);
    expect(reply.headers["set-cookie"]).toEqual(["_xsrf=abc; Path=/user/alice/"]);
    const got = JSON.parse(reply.body) as Echoed;
    expect(got.url).toBe(path);
    expect(got.headers).toMatchObject({
      host: "example.org:8443",
      cookie: headers.Cookie,
      "x-xsrftoken": headers["X-XSRFToken"],
      "sec-fetch-mode": "cors",
      "sec-fetch-site": "same-origin",
      "sec-fetch-dest": "empty",
      origin: headers.Origin,
      referer: headers.Referer,
      authorization: "token abc",
      "x-forwarded-for": "127.0.0.1",
      "x-forwarded-host": "example.org:8443",
      "x-forwarded-port": "8443",
      "x-forwarded-proto": "http",
    });
  });

  it("replaces the X-Forwarded-Proto of a client that is not a trusted proxy (test/proxy/trusted-proxies.test.ts)", async () => {
    const up = await echo();
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    const reply = await request(p.url, "/user/alice/", { headers: { "X-Forwarded-Proto": "https" } });
    expect((JSON.parse(reply.body) as Echoed).headers["x-forwarded-proto"]).toBe("http");
  });

  it("forwards request bodies and methods", async () => {
    const up = await echo();
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    const body = JSON.stringify({ type: "notebook", content: "x".repeat(200_000) });
    const reply = await request(p.url, "/user/alice/api/contents/a.ipynb", {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body,
    });
    const got = JSON.parse(reply.body) as Echoed;
    expect(got.method).toBe("PUT");
    expect(got.body).toBe(body);
  });

  it.each([
    ["in the middle", "a=1; slicehub-session=s3cret; b=2=3; _xsrf=2|x", "a=1; b=2=3; _xsrf=2|x"],
    ["first", "slicehub-session=s3cret; a=1;b=2", "a=1;b=2"],
    ["last", "a=1; slicehub-session=s3cret", "a=1"],
    ["twice", "slicehub-session=1; a=1; slicehub-session=2", "a=1"],
    ["not a prefix match", "xslicehub-session=1; slicehub-session-x=2", "xslicehub-session=1; slicehub-session-x=2"],
  ])("strips the hub cookie (%s) and keeps the others byte for byte", async (_, sent, expected) => {
    const up = await echo();
    const p = await proxy({ stripCookies: ["slicehub-session"] });
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    const reply = await request(p.url, "/user/alice/tree", { headers: { Cookie: sent } });
    expect((JSON.parse(reply.body) as Echoed).headers.cookie).toBe(expected);
  });

  it("drops the Cookie header when the hub cookie was the only one", async () => {
    const up = await echo();
    const p = await proxy({ stripCookies: ["slicehub-session", "other-hub-cookie"] });
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    const reply = await request(p.url, "/user/alice/tree", {
      headers: { Cookie: "slicehub-session=s3cret; other-hub-cookie=1" },
    });
    expect((JSON.parse(reply.body) as Echoed).headers).not.toHaveProperty("cookie");
  });
});

describe("upstream not answering", () => {
  it("answers 503 as HTML or JSON, logs without the query string, and keeps serving", async () => {
    const up = await echo();
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: await deadTarget(), serverId: 1 });
    p.table.set({ prefix: "/user/bob", target: up.url, serverId: 2 });

    const page = await request(p.url, "/user/alice/tree?token=s3cret", { headers: { Accept: "text/html,*/*;q=0.8" } });
    expect(page.status).toBe(503);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.body).toContain("This server is not answering");
    expect(page.body).toContain('href="/hub/home"');

    const asJson = async (path: string, accept?: string) => {
      const reply = await request(p.url, path, { headers: accept ? { Accept: accept } : {} });
      expect(reply.status).toBe(503);
      expect(reply.headers["content-type"]).toBe("application/json");
      const body = JSON.parse(reply.body) as { status: number; message: string };
      expect(body.status).toBe(503);
      expect(body.message).toContain("/user/alice/");
    };
    await asJson("/user/alice/api/status");
    await asJson("/user/alice/api");
    await asJson("/user/alice/tree", "application/json");
    await asJson("/user/alice/tree", "text/html;q=0.5, application/json");

    const star = await request(p.url, "/user/alice/apis", { headers: { Accept: "*/*" } });
    expect(star.headers["content-type"]).toMatch(/^text\/html/);
    const post = await request(p.url, "/user/alice/api/contents", { method: "POST", body: "{}" });
    expect(post.status).toBe(503);

    const warn = p.logs.find((e) => e.level === "warn");
    expect(warn?.fields).toMatchObject({ method: "GET", path: "/user/alice/tree", route: "/user/alice", error_code: "ECONNREFUSED" });
    expect(JSON.stringify(p.logs)).not.toContain("s3cret");

    expect((await request(p.url, "/user/bob/tree")).status).toBe(200);
  });

  it("cuts the client off when the upstream dies in the middle of a body", async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.write("partial");
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    const outcome = await new Promise<string>((resolve) => {
      http
        .get(`${p.url}/user/alice/files/big`, { agent: false }, (res) => {
          res.on("data", () => undefined);
          res.on("end", () => resolve("ended"));
          res.on("error", () => resolve("aborted"));
          res.on("aborted", () => resolve("aborted"));
        })
        .on("error", () => resolve("aborted"));
      setTimeout(() => resolve("hung"), 5_000);
    });
    expect(outcome).toBe("aborted");
  });
});

describe("keep-alive to upstreams", () => {
  // An upstream that drops any request arriving on an already-used connection without answering: exactly what
  // a pooled socket looks like when the server closed it just as the proxy reused it.
  async function droppingUpstream(dropAfterFirst: "reused" | "all") {
    let seen = 0;
    const perSocket = new WeakMap<object, number>();
    const up = await upstream((req, res) => {
      seen += 1;
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if ((dropAfterFirst === "reused" && n > 1) || (dropAfterFirst === "all" && seen > 1)) {
        req.socket.destroy();
        return;
      }
      req.resume();
      req.on("end", () => res.end(`ok from ${req.headers["x-forwarded-for"]}`));
    });
    return { ...up, seen: () => seen };
  }

  it("reuses one upstream connection for sequential requests", async () => {
    const up = await upstream((_req, res) => res.end("ok"));
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    const sockets = new Set<unknown>();
    up.server.on("connection", (s) => sockets.add(s));
    for (let i = 0; i < 3; i++) expect((await request(p.url, "/user/alice/")).body).toBe("ok");
    expect(sockets.size).toBe(1);
  });

  it("retries a GET once when the pooled socket turns out closed", async () => {
    const up = await droppingUpstream("reused");
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    expect((await request(p.url, "/user/alice/a")).status).toBe(200);
    await sleep(20);
    const second = await request(p.url, "/user/alice/b");
    expect(second.status).toBe(200);
    expect(second.body).toBe("ok from 127.0.0.1"); // X-Forwarded-For not appended twice
    expect(up.seen()).toBe(3);
    expect(p.logs.filter((e) => e.level === "warn")).toEqual([]);
  });

  it("retries on a fresh connection, not on another pooled one", async () => {
    const up = await droppingUpstream("reused");
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    // Two concurrent requests leave two sockets in the pool; both are dropped on reuse.
    const first = await Promise.all([request(p.url, "/user/alice/a"), request(p.url, "/user/alice/b")]);
    expect(first.map((r) => r.status)).toEqual([200, 200]);
    await sleep(20);
    expect((await request(p.url, "/user/alice/c")).status).toBe(200);
    expect(up.seen()).toBe(4);
  });

  it("retries only once", async () => {
    const up = await droppingUpstream("all");
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    expect((await request(p.url, "/user/alice/a")).status).toBe(200);
    await sleep(20);
    expect((await request(p.url, "/user/alice/b")).status).toBe(503);
    expect(up.seen()).toBe(3);
  });

  it("does not retry a request with a body", async () => {
    const up = await droppingUpstream("reused");
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    expect((await request(p.url, "/user/alice/a")).status).toBe(200);
    await sleep(20);
    const post = await request(p.url, "/user/alice/api/contents", { method: "POST", body: '{"type":"file"}' });
    expect(post.status).toBe(503);
    expect(up.seen()).toBe(2);
  });

  it("survives an upstream with a very short keep-alive timeout", async () => {
    const up = await upstream(
      (_req, res) => res.end("ok"),
      (s) => (s.keepAliveTimeout = 30),
    );
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    for (const delay of [0, 30, 60, 25]) {
      await sleep(delay);
      expect((await request(p.url, "/user/alice/")).status).toBe(200);
    }
  });
});

describe("client aborts", () => {
  it("closes the upstream connection when a client abandons a streaming response", async () => {
    let upstreamClosed = false;
    const up = await upstream((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      const timer = setInterval(() => res.write("data: tick\n\n"), 10);
      res.on("close", () => {
        clearInterval(timer);
        upstreamClosed = true;
      });
    });
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${p.url}/user/alice/api/events/subscribe`, { agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", (err) => ((err as NodeJS.ErrnoException).code === "ECONNRESET" ? undefined : reject(err)));
    });
    await waitFor(() => upstreamClosed);
    await waitFor(async () => (await connections(up.server)) === 0);
    expect(p.logs.filter((e) => e.level === "warn")).toEqual([]);
  });

  it("closes the upstream connection when a client gives up before the response starts", async () => {
    let arrived = false;
    const up = await upstream(() => {
      arrived = true; // never answers
    });
    const p = await proxy();
    p.table.set({ prefix: "/user/alice", target: up.url, serverId: 1 });
    const req = http.get(`${p.url}/user/alice/slow`, { agent: false });
    req.on("error", () => undefined);
    await waitFor(() => arrived);
    expect(await connections(up.server)).toBe(1);
    req.destroy();
    await waitFor(async () => (await connections(up.server)) === 0);
    expect(p.logs.filter((e) => e.level === "warn")).toEqual([]);
    expect((await request(p.url, "/nowhere")).status).toBe(404);
  });
});
