// A user's server may set cookies for its own path only: cookies it could toss onto the hub or onto other
// users' servers (same origin) are pinned to its prefix, and cookies named like the hub's are dropped.
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeServer, listen, request, startProxy, type ProxyHarness } from "./harness.js";

const SET = [
  "_xsrf=ok1; Path=/user/alice/",
  "own=ok2; Path=/user/alice",
  "nopath=ok3",
  "slicehub-session=evil; Path=/hub/",
  "__Host-slicehub-session=evil; Path=/; Secure",
  "jupyterhub-session-id=evil; Path=/",
  "toss=evil; Path=/",
  "sibling=evil; Path=/user/alicex/",
  "other=evil; Path=/user/bob/",
  "domain=evil; Path=/user/alice/; Domain=127.0.0.1",
  "slicehub-login-xsrf=evil; Path=/user/alice/",
];

describe("Set-Cookie from user servers", () => {
  let proxy: ProxyHarness;
  let upstream: http.Server;

  beforeAll(async () => {
    upstream = http.createServer((_req, res) => res.writeHead(200, { "Set-Cookie": SET }).end("ok"));
    const target = await listen(upstream);
    proxy = await startProxy();
    proxy.table.set({ prefix: "/user/alice", target, serverId: 1 });
  });

  afterAll(async () => {
    await proxy.close();
    await closeServer(upstream);
  });

  it("keeps the server's own cookies, pins others to its path, and drops hub cookies", async () => {
    const r = await request(proxy.url, "/user/alice/tree");
    expect(r.status).toBe(200);
    expect(r.headers["set-cookie"]).toEqual([
      "_xsrf=ok1; Path=/user/alice/",
      "own=ok2; Path=/user/alice",
      "nopath=ok3",
      "toss=evil; Path=/user/alice/",
      "sibling=evil; Path=/user/alice/",
      "other=evil; Path=/user/alice/",
      "domain=evil; Path=/user/alice/",
    ]);
    expect(proxy.logs.filter((l) => l.msg.startsWith("dropped a cookie")).map((l) => l.fields.cookie)).toEqual([
      "slicehub-session",
      "__Host-slicehub-session",
      "jupyterhub-session-id",
      "slicehub-login-xsrf",
    ]);
  });
});
