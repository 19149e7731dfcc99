import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalSpawner, type LaunchSpec, type LocalState } from "../../spawners/local.js";
import { freePort } from "../../src/ports.js";
import { waitReady } from "../../src/readiness.js";
import type { SpawnerState, SpawnProgress } from "../../spawners/spawner.js";
import type { Logger } from "../../src/log.js";
import { alive } from "../proc.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/server.mjs", import.meta.url));
/** What `npm test` builds first: tsc's output of spawners/local.ts and what it imports. */
const LOCAL_JS = fileURLToPath(new URL("../../dist/spawners/local.js", import.meta.url));
const NODE = process.execPath;
const TOKEN = "d39e4b4c4ad9484fb39a9b041090cad3";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

let dir: string;
let logDir: string;
let started: SpawnerState[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "slicehub-local-"));
  logDir = path.join(dir, "logs");
  started = [];
});

afterEach(async () => {
  for (const state of started) await new LocalSpawner({ logDir, log: quiet }).stop(state, 1_000);
  await rm(dir, { recursive: true, force: true });
});

function newSpawner(): LocalSpawner {
  return new LocalSpawner({ logDir, log: quiet });
}

async function start(spawner: LocalSpawner, spec: LaunchSpec, onProgress: (p: SpawnProgress) => void = () => {}) {
  const state = await spawner.launch(spec, onProgress);
  started.push(state);
  return state as LocalState;
}

function specFor(argv: string[], env: Record<string, string> = {}, port = 0, token = TOKEN): LaunchSpec {
  return { user: "ada@example.org", serverName: "", argv, env, token, host: "127.0.0.1", port, cwd: dir };
}

/** The fixture server on a free port, with a token in its env as the real hub would pass. */
async function fixtureSpec(...flags: string[]): Promise<LaunchSpec> {
  const port = await freePort();
  return specFor([NODE, FIXTURE, ...flags], { PORT: String(port) }, port);
}

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Waits until the fixture has printed its pid and its child's pid. */
async function fixturePids(state: LocalState): Promise<{ pid: number; grandchild: number }> {
  const m = await until("the fixture to be ready", async () =>
    /ready pid=(\d+) grandchild=(\d+)/.exec(await readFile(state.logFile, "utf8")),
  );
  return { pid: Number(m[1]), grandchild: Number(m[2]) };
}

const urlOf = (s: LocalState) => `http://${s.host}:${s.port}/user/ada/`;

describe("LocalSpawner.start", () => {
  it("starts a server that answers, reports progress and keeps the token out of the log", async () => {
    const progress: SpawnProgress[] = [];
    const spawner = newSpawner();
    const spec = await fixtureSpec();
    const state = await start(spawner, spec, (p) => progress.push(p));

    expect(state).toMatchObject({ pid: expect.any(Number), startTime: expect.any(Number), host: "127.0.0.1", port: spec.port });
    expect(state.pgid).toBe(state.pid);
    expect(state.logFile).toBe(path.join(logDir, "ada%40example.org--default.log"));
    expect(progress).toEqual([{ progress: 40, message: `Started process ${state.pid}` }]);
    expect(await waitReady(urlOf(state), { timeoutMs: 10_000, uid: spawner.serverUid(state), isAlive: () => spawner.poll(state) })).toEqual({ ok: true });
    expect(await spawner.poll(state)).toEqual({ running: true });

    expect((await stat(logDir)).mode & 0o777).toBe(0o700);
    expect((await stat(state.logFile)).mode & 0o777).toBe(0o600);
    const logText = await readFile(state.logFile, "utf8");
    expect(logText).toContain(JSON.stringify(spec.argv));
    expect(logText).toContain("request /user/ada/");
    expect(logText).not.toContain(TOKEN);
  });

  it("gives the server exactly spec.env plus its token, and spec.cwd, nothing inherited", async () => {
    const spawner = newSpawner();
    const code = "console.log(JSON.stringify({ env: process.env, cwd: process.cwd() }))";
    const state = await start(spawner, specFor([NODE, "-e", code], { ONLY: "this" }));
    await until("the process to exit", async () => !(await spawner.poll(state)).running);
    const detail = await spawner.failureDetail(state);
    const printed = JSON.parse(detail.split("\n").at(-1)!);
    expect(printed).toEqual({ env: { ONLY: "this", JUPYTERHUB_API_TOKEN: TOKEN, JPY_API_TOKEN: TOKEN }, cwd: dir });
  });

  it("names one log file per server, safe for any user or server name", async () => {
    const spawner = newSpawner();
    const spec = { ...specFor([NODE, "-e", ""]), user: "../evil user", serverName: "a/b" };
    const state = await start(spawner, spec);
    expect(state.logFile).toBe(path.join(logDir, "%2E.%2Fevil%20user--a%2Fb.log"));
  });

  it("rejects with a readable message when the command does not exist", async () => {
    const spawner = newSpawner();
    await expect(spawner.launch(specFor(["jupyterhub-singleuser-missing"], { PATH: "/usr/bin:/bin" }), () => {})).rejects.toThrow(
      'cannot run "jupyterhub-singleuser-missing": command not found on PATH',
    );
    await expect(spawner.launch(specFor([path.join(dir, "nothing-here")]), () => {})).rejects.toThrow(
      `cannot run "${path.join(dir, "nothing-here")}": no such file`,
    );
    const spec = { ...specFor([NODE, "-e", ""]), cwd: path.join(dir, "missing") };
    await expect(spawner.launch(spec, () => {})).rejects.toThrow(`working directory ${spec.cwd} does not exist`);
  });
});

describe("LocalSpawner.poll and failureDetail", () => {
  it("reports a command that exits at once with its exit status and output", async () => {
    const spawner = newSpawner();
    const code = "console.log('line one'); console.error('boom on stderr'); process.exit(3)";
    const state = await start(spawner, specFor([NODE, "-e", code]));
    const result = await until("the process to exit", async () => {
      const r = await spawner.poll(state);
      return !r.running && r;
    });
    expect(result).toEqual({ running: false, reason: "exited with status 3" });
    expect(await spawner.failureDetail(state)).toBe("exited with status 3\nlast output:\nline one\nboom on stderr");
  });

  it("reports a signal as the cause of death", async () => {
    const spawner = newSpawner();
    const state = await start(spawner, specFor([NODE, "-e", "process.kill(process.pid, 'SIGKILL')"]));
    await until("the process to die", async () => !(await spawner.poll(state)).running);
    expect(await spawner.poll(state)).toEqual({ running: false, reason: "killed by SIGKILL" });
  });

  it("shows only the last 20 lines of the latest start", async () => {
    const spawner = newSpawner();
    const first = await start(spawner, specFor([NODE, "-e", "console.log('from the first start')"]));
    await until("the first start to exit", async () => !(await spawner.poll(first)).running);
    const code = "for (let i = 1; i <= 30; i++) console.log('line ' + i); process.exit(1)";
    const second = await start(spawner, specFor([NODE, "-e", code]));
    await until("the second start to exit", async () => !(await spawner.poll(second)).running);

    const lines = (await spawner.failureDetail(second)).split("\n");
    expect(lines.slice(0, 2)).toEqual(["exited with status 1", "last output:"]);
    expect(lines.slice(2)).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 11}`));
  });

  it("gives the output so far, without a status, while the server still runs", async () => {
    const spawner = newSpawner();
    const state = await start(spawner, await fixtureSpec());
    await fixturePids(state);
    expect(await spawner.failureDetail(state)).toMatch(/^last output:\nready pid=\d+ grandchild=\d+$/);
  });

  it("says so when the server wrote nothing", async () => {
    const spawner = newSpawner();
    const state = await start(spawner, specFor([NODE, "-e", "process.exit(2)"]));
    await until("the process to exit", async () => !(await spawner.poll(state)).running);
    expect(await spawner.failureDetail(state)).toBe("exited with status 2\nthe server wrote no output");
  });

  it("does not take another process with the same pid for the server (pid reuse)", async () => {
    const spawner = newSpawner();
    const state = await start(spawner, await fixtureSpec());
    await fixturePids(state);
    const reused = { ...state, startTime: state.startTime - 1 };
    expect(await spawner.poll(reused)).toEqual({ running: false, reason: `process ${state.pid} is gone` });
    await spawner.stop(reused, 1_000);
    expect(await spawner.poll(state)).toEqual({ running: true });
  });

  it("rejects a state that is not its own", async () => {
    await expect(newSpawner().poll({ pid: "12" })).rejects.toThrow("local spawner: invalid server state");
    // pgid 1 would make stop signal every process on the host; poll parses the state the same way.
    await expect(newSpawner().poll({ pid: 1234, pgid: 1, startTime: 1, logFile: "x", host: "h", port: 1 })).rejects.toThrow(
      "invalid server state",
    );
  });
});

describe("LocalSpawner.stop", () => {
  it("stops the whole process group, grandchildren included, and is idempotent", async () => {
    const spawner = newSpawner();
    const state = await start(spawner, await fixtureSpec());
    const { pid, grandchild } = await fixturePids(state);
    expect(alive(pid) && alive(grandchild)).toBe(true);

    await spawner.stop(state, 10_000);
    expect(alive(pid)).toBe(false);
    expect(alive(grandchild)).toBe(false);
    expect(await spawner.poll(state)).toEqual({ running: false, reason: "killed by SIGTERM" });
    await spawner.stop(state, 10_000);
  });

  it("kills a server that ignores SIGTERM once the timeout has passed", async () => {
    const spawner = newSpawner();
    const state = await start(spawner, await fixtureSpec("--ignore-term"));
    const { pid, grandchild } = await fixturePids(state);

    await spawner.stop(state, 300);
    expect(alive(pid)).toBe(false);
    expect(alive(grandchild)).toBe(false);
    expect(await readFile(state.logFile, "utf8")).toContain("ignoring SIGTERM");
    expect(await spawner.poll(state)).toEqual({ running: false, reason: "killed by SIGKILL" });
  });
});

describe("adoption after a hub restart", () => {
  it("a new spawner instance polls and stops a server started by another", async () => {
    const state = await start(newSpawner(), await fixtureSpec());
    const { pid, grandchild } = await fixturePids(state);

    const restarted = newSpawner();
    expect(await restarted.poll(state)).toEqual({ running: true });
    await restarted.stop(state, 10_000);
    expect(alive(pid) || alive(grandchild)).toBe(false);
    // The new instance was not the parent, so the exit status is unknown to it.
    expect(await restarted.poll(state)).toEqual({ running: false, reason: `process ${pid} is gone` });
  });

  it("the server outlives a hub killed with SIGKILL and is adopted by the next hub", async () => {
    // The spawner must run in a process of its own that can be killed; Node 20 cannot run TypeScript, so that
    // process loads the compiled module.
    const hubJs = path.join(dir, "hub.mjs");
    await writeFile(
      hubJs,
      `const { LocalSpawner } = await import(${JSON.stringify(LOCAL_JS)});
       const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
       const [spec, logDir] = [JSON.parse(process.argv[2]), process.argv[3]];
       const state = await new LocalSpawner({ logDir, log: quiet }).launch(spec, () => {});
       process.stdout.write(JSON.stringify(state) + "\\n");
       setInterval(() => {}, 1000);`,
    );

    const hub = spawn(NODE, [hubJs, JSON.stringify(await fixtureSpec()), logDir], { stdio: ["ignore", "pipe", "inherit"] });
    const hubExit = new Promise((resolve) => hub.once("exit", resolve));
    let out = "";
    hub.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const state = JSON.parse(await until("the hub to print the state", async () => out.includes("\n") && out)) as LocalState;
    started.push(state);
    const { pid } = await fixturePids(state);
    hub.kill("SIGKILL");
    await hubExit;

    const next = newSpawner();
    expect(await next.poll(state)).toEqual({ running: true });
    expect(await waitReady(urlOf(state), { timeoutMs: 10_000, uid: next.serverUid(state) })).toEqual({ ok: true });
    // It still writes its output after the hub died: no pipe to break.
    await until("the request to be logged", async () => (await readFile(state.logFile, "utf8")).includes("request /user/ada/"));
    await next.stop(state, 10_000);
    expect(alive(pid)).toBe(false);
    expect(await next.poll(state)).toEqual({ running: false, reason: `process ${pid} is gone` });
  });
});
