// LocalSpawner.reconcile: a tagged hub finds its servers by the SLICEHUB_SERVER marker and stops the ones
// the store does not know, never another hub's (another tag) nor a known one.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalSpawner, type LaunchSpec, type LocalState } from "../../spawners/local.js";
import { freePort } from "../../src/ports.js";
import type { Logger } from "../../src/log.js";
import { alive } from "../proc.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/server.mjs", import.meta.url));
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

let dir: string;
const started: LocalState[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "slicehub-reconcile-"));
});
afterEach(async () => {
  for (const s of started.splice(0)) await new LocalSpawner({ logDir: dir, log: quiet }).stop(s, 1_000);
  await rm(dir, { recursive: true, force: true });
});

async function launch(spawner: LocalSpawner, launchId: string): Promise<LocalState> {
  const port = await freePort();
  const spec: LaunchSpec = { user: "ada", serverName: launchId.replace(":", "-"), argv: [process.execPath, FIXTURE], env: { PORT: String(port) }, token: "t", host: "127.0.0.1", port, cwd: dir, launchId };
  const state = (await spawner.launch(spec, () => {})) as LocalState;
  started.push(state);
  return state;
}

describe("LocalSpawner.reconcile", () => {
  it("marks servers with its tag and the launch id", async () => {
    const state = await launch(new LocalSpawner({ logDir: dir, log: quiet, tag: "hubA" }), "7:3");
    expect(state.marker).toBe("hubA:7:3");
  });

  it("stops its unknown servers (a launch never recorded) and keeps known ones and other hubs'", async () => {
    const a = new LocalSpawner({ logDir: dir, log: quiet, tag: "hubA" });
    const known = await launch(a, "1:1");
    const orphan = await launch(a, "2:1");
    const otherHub = await launch(new LocalSpawner({ logDir: dir, log: quiet, tag: "hubB" }), "2:1");
    const untagged = await launch(new LocalSpawner({ logDir: dir, log: quiet }), "3:1");

    // A restarted hub: a new instance with the same tag that knows only the first server.
    const stopped = await new LocalSpawner({ logDir: dir, log: quiet, tag: "hubA" }).reconcile([known], 2_000);
    expect(stopped).toEqual([`process group ${orphan.pgid} (hubA:2:1)`]);
    expect(alive(orphan.pid)).toBe(false);
    for (const s of [known, otherHub, untagged]) expect(alive(s.pid)).toBe(true);
  });

  it("stops nothing without a tag", async () => {
    const orphan = await launch(new LocalSpawner({ logDir: dir, log: quiet, tag: "hubC" }), "1:1");
    expect(await new LocalSpawner({ logDir: dir, log: quiet }).reconcile([], 1_000)).toEqual([]);
    expect(alive(orphan.pid)).toBe(true);
  });
});
