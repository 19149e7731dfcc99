// The lifecycle routes a user's URL to a server only once the listener on its port is owned by the uid the
// spawner says the server runs as: at start and when a restarted hub adopts a server that kept running.
import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { RouteTable } from "../../proxy/table.js";
import type { Spawner, SpawnerState, SpawnSpec } from "../../spawners/spawner.js";
import { ConfigSchema } from "../../src/config/schema.js";
import { Lifecycle } from "../../src/lifecycle.js";
import type { Logger } from "../../src/log.js";
import { Store } from "../../src/store/store.js";
import { isRoot, listenAs, NOBODY } from "./fixtures/listen-as.js";

const me = process.getuid!();
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
// Far beyond each test's own timeout: only a refusal at once can pass.
const config = ConfigSchema.parse({ spawner: { kind: "local", start_timeout_s: 600, stop_timeout_s: 1 } });

type Launch = (port: number) => Promise<() => Promise<void>>;
/** Stops of every listener the tests started, by port, shared by the "hubs" of one test. */
const running = new Map<number, () => Promise<void>>();
afterEach(async () => {
  for (const stop of running.values()) await stop();
  running.clear();
});

/** The server itself, run as our own uid. */
const ownServer: Launch = async (port) => {
  const server = http.createServer((_req, res) => res.writeHead(302, { location: "/tree" }).end());
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
};

/** Another user got the port first; the real server would fail to bind it. */
const attacker: Launch = async (port) => {
  const squatter = await listenAs(NOBODY, "127.0.0.1", port);
  return () => squatter.stop();
};

/** A spawner whose server runs as `uid` (as it claims) and is whatever `launch` puts on the port. */
function fakeSpawner(uid: number, launch: Launch): Spawner {
  const spawner: Spawner = {
    kind: "fake",
    async start(spec: SpawnSpec) {
      running.set(spec.port, await launch(spec.port));
      return { port: spec.port };
    },
    poll: async () => ({ running: true }),
    async stop(state: SpawnerState) {
      await running.get(state.port as number)?.();
      running.delete(state.port as number);
    },
    failureDetail: async () => "",
    serverUid: () => uid,
    reconcile: async () => [],
  };
  return spawner;
}

function hub(store: Store, spawner: Spawner): { lifecycle: Lifecycle; table: RouteTable } {
  const table = new RouteTable();
  const lifecycle = new Lifecycle({ store, spawner, table, config: () => config, log: quiet });
  return { lifecycle, table };
}

async function spawnAda(store: Store, spawner: Spawner) {
  const { lifecycle, table } = hub(store, spawner);
  const ada = store.ensureUser("ada");
  const started = lifecycle.start(ada, "");
  if (!started.ok) throw new Error(started.message);
  await started.done;
  return { server: store.getServer(ada.id, "")!, table };
}

describe("the lifecycle checks who owns the server's port", () => {
  it("routes a server whose listener is owned by the uid its spawner names", async () => {
    const { server, table } = await spawnAda(new Store(":memory:"), fakeSpawner(me, ownServer));
    expect(server.state).toBe("running");
    expect(table.list().map((r) => r.prefix)).toEqual(["/user/ada"]);
  });

  it("fails the start at once when the listener is owned by another uid, and says whose it is", async () => {
    const { server, table } = await spawnAda(new Store(":memory:"), fakeSpawner(me + 1, ownServer));
    expect(server.state).toBe("stopped");
    expect(server.failure).toMatch(new RegExp(`^Start failed: port \\d+ is held by another user's process \\(uid ${me}\\)`));
    expect(table.size).toBe(0);
    expect(running.size).toBe(0);
  }, 10_000);

  it.skipIf(!isRoot)("fails the start at once when an attacker (another uid) holds the port [needs root]", async () => {
    const { server, table } = await spawnAda(new Store(":memory:"), fakeSpawner(me, attacker));
    expect(server.state).toBe("stopped");
    expect(server.failure).toMatch(new RegExp(`^Start failed: port \\d+ is held by another user's process \\(uid ${NOBODY}\\)`));
    expect(table.size).toBe(0);
  }, 10_000);

  it("a restarted hub adopts a running server only if its listener is owned by the server's uid", async () => {
    const store = new Store(":memory:");
    expect((await spawnAda(store, fakeSpawner(me, ownServer))).server.state).toBe("running");

    const next = hub(store, fakeSpawner(me, ownServer));
    await next.lifecycle.adopt().done;
    expect(next.table.list().map((r) => r.prefix)).toEqual(["/user/ada"]);

    // The same listener, but the spawner says the server runs as someone else: not routed, and stopped.
    const wrong = hub(store, fakeSpawner(me + 1, ownServer));
    await wrong.lifecycle.adopt().done;
    expect(wrong.table.size).toBe(0);
    expect(store.getServer(store.ensureUser("ada").id, "")!.state).toBe("stopped");
    expect(running.size).toBe(0);
  }, 10_000);
});
