// /hub/user/<name>/… for a running server, in-process: straight to the server when the proxy's table routes
// it there (path mode: any host; subdomain mode: the server's own host), JupyterHub's redirects=N counter only
// when it does not (a route not in place) or when the request is already counting; 4 is a loop.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHubApp } from "../../main/app.js";
import { Lifecycle } from "../../src/lifecycle.js";
import { log } from "../../src/log.js";
import { routeKey, serverHostname } from "../../src/names.js";
import { Store } from "../../src/store/store.js";
import { RouteTable } from "../../proxy/table.js";
import { config, FakeSpawner } from "./fakes.js";

const modes = [
  { mode: "path", cfg: config(`{ "spawner": { "kind": "local" }, "log_level": "error" }`), origin: "", host: "127.0.0.1:8000" },
  {
    mode: "subdomain",
    cfg: config(`{ "public_url": "http://hub.localhost:8000", "subdomain_host": "http://users.localhost:8000", "spawner": { "kind": "local" }, "log_level": "error" }`),
    origin: "http://alice.users.localhost:8000",
    host: "hub.localhost:8000",
  },
] as const;

for (const { mode, cfg, origin, host } of modes) {
  describe(`/hub/user/alice/… while alice's server runs (${mode} mode)`, () => {
    let store: Store;
    let spawner: FakeSpawner;
    let table: RouteTable;
    let lifecycle: Lifecycle;
    let app: ReturnType<typeof createHubApp>;
    let cookie = "";

    beforeAll(async () => {
      store = new Store(":memory:");
      spawner = new FakeSpawner();
      table = new RouteTable();
      lifecycle = new Lifecycle({ store, spawner, table, config: () => cfg, log });
      app = createHubApp({ store, lifecycle, config: () => cfg, log });
      const alice = store.ensureUser("alice", false);
      const session = store.createSession(alice.id);
      cookie = `slicehub-session=${session.cookie}; __Host-slicehub-session=${session.cookie}`;
      const started = lifecycle.start(alice, "");
      if (!started.ok) throw new Error(started.message);
      await started.done;
    });

    afterAll(async () => {
      await lifecycle.close();
      for (const s of spawner.servers.values()) s.close();
      store.close();
    });

    const get = (path: string) => app.request(`http://${host}${path}`, { headers: { host, cookie, "sec-fetch-mode": "navigate", "sec-fetch-dest": "document" } });

    it("goes straight to the routed server, path and query kept, no counter", async () => {
      const r = await get("/hub/user/alice/tree?x=1&redirects=0");
      expect(r.status).toBe(302);
      expect(r.headers.get("location")).toBe(`${origin}/user/alice/tree?x=1`);
    });

    it("counts when the proxy would not route it (its route not in place) and when already counting; 4 is a loop", async () => {
      const route = table.list()[0]!;
      table.delete(routeKey("alice", ""), mode === "subdomain" ? serverHostname(cfg.subdomain_host!, "alice", "") : undefined);
      try {
        const r = await get("/hub/user/alice/tree?x=1");
        expect(r.headers.get("location")).toBe(`${origin}/user/alice/tree?x=1&redirects=1`);
      } finally {
        table.set(route);
      }
      const counting = await get("/hub/user/alice/tree?redirects=3");
      expect(counting.headers.get("location")).toBe(`${origin}/user/alice/tree?redirects=4`);
      const loop = await get("/hub/user/alice/tree?redirects=4");
      expect(loop.status).toBe(500);
      expect(await loop.text()).toContain("Redirect loop detected");
    });
  });
}
