// Shared pieces of the in-process hub tests: a config from JSON text, and a spawner whose "server" is an
// http.Server in this process.
import http from "node:http";
import { parseConfigText } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import type { ServerEnvInput } from "../../src/server-env.js";
import type { SpawnSpec, Spawner, SpawnerState } from "../../spawners/spawner.js";

/** A config parsed from JSON text as the daemon would read it; throws with every problem if it is invalid. */
export function config(text: string): Config {
  const r = parseConfigText(text, "config.json", "/tmp");
  if (!r.ok) throw new Error(r.errors.join("\n"));
  return r.config;
}

/** alice's default server on port 5000, for serverEnv: what the spawner would pass. */
export const ALICE_SERVER_ENV_INPUT: ServerEnvInput = {
  user: "alice",
  server: "",
  serviceUrl: "http://127.0.0.1:5000/user/alice/",
  hubApiUrl: "http://127.0.0.1:8000/hub/api",
  account: { name: "alice", home: "/home/alice", shell: "/bin/sh" },
  hubEnv: {},
};

/** Starts an in-process server on the port the lifecycle chose; answers 302 on its prefix like the real one. */
export class FakeSpawner implements Spawner {
  readonly kind = "fake";
  readonly servers = new Map<number, http.Server>();
  readonly specs: SpawnSpec[] = [];

  async start(spec: SpawnSpec): Promise<SpawnerState> {
    this.specs.push(spec);
    const server = http.createServer((_req, res) => res.writeHead(302, { location: "tree/" }).end());
    await new Promise<void>((resolve) => server.listen(spec.port, spec.host, resolve));
    this.servers.set(spec.port, server);
    return { port: spec.port };
  }
  async poll(state: SpawnerState) {
    return this.servers.has(state.port as number) ? ({ running: true } as const) : ({ running: false, reason: "gone" } as const);
  }
  async stop(state: SpawnerState): Promise<void> {
    const server = this.servers.get(state.port as number);
    this.servers.delete(state.port as number);
    if (server) await new Promise((resolve) => server.close(resolve));
  }
  serverUid(): number {
    return process.getuid!();
  }
  async failureDetail(): Promise<string> {
    return "";
  }
  async reconcile(): Promise<string[]> {
    return [];
  }
}
