import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../src/ports.js";
import { waitReady } from "../../src/readiness.js";
import { isRoot, listenAs, NOBODY, type Squatter } from "../spawners/fixtures/listen-as.js";

const me = process.getuid!();

const servers: http.Server[] = [];
const squatters: Squatter[] = [];
afterEach(async () => {
  for (const s of squatters.splice(0)) await s.stop();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

/** A server on 127.0.0.1 that answers every request with `status`; null means it accepts and never answers. */
async function serve(status: number | null, port = 0): Promise<string> {
  const server = http.createServer((_req, res) => {
    if (status !== null) res.writeHead(status, status === 302 ? { location: "/elsewhere" } : {}).end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/user/ada/`;
}

describe("waitReady", () => {
  it.each([200, 302, 404])("counts %i as ready", async (status) => {
    expect(await waitReady(await serve(status), { timeoutMs: 5_000, uid: me })).toEqual({ ok: true });
  });

  it("keeps waiting on 500 and gives up after the timeout with a reason", async () => {
    const url = await serve(500);
    expect(await waitReady(url, { timeoutMs: 300, uid: me })).toEqual({ ok: false, reason: `did not answer on ${url} within 0.3 s` });
  });

  it("gives up after the timeout when the server accepts but never answers", async () => {
    const url = await serve(null);
    expect(await waitReady(url, { timeoutMs: 300, uid: me })).toEqual({ ok: false, reason: `did not answer on ${url} within 0.3 s` });
  });

  it("waits through refused connections until the server comes up", async () => {
    const port = await freePort();
    const ready = waitReady(`http://127.0.0.1:${port}/`, { timeoutMs: 10_000, uid: me });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await serve(302, port);
    expect(await ready).toEqual({ ok: true });
  });

  it("stops as soon as isAlive reports the process gone", async () => {
    const url = await serve(500);
    let calls = 0;
    const isAlive = async () =>
      ++calls < 3 ? ({ running: true } as const) : ({ running: false, reason: "exited with status 1" } as const);
    // The test timeout is far below timeoutMs, so only an early stop can pass.
    expect(await waitReady(url, { timeoutMs: 600_000, uid: me, isAlive })).toEqual({ ok: false, reason: "exited with status 1" });
    expect(calls).toBe(3);
  }, 10_000);

  it("stops with 'cancelled' when aborted, while waiting or before starting", async () => {
    const url = `http://127.0.0.1:${await freePort()}/`;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    expect(await waitReady(url, { timeoutMs: 600_000, uid: me, signal: controller.signal })).toEqual({ ok: false, reason: "cancelled" });
    expect(await waitReady(url, { timeoutMs: 600_000, uid: me, signal: AbortSignal.abort() })).toEqual({ ok: false, reason: "cancelled" });
  }, 10_000);

  it("stops with 'cancelled' when aborted during a request", async () => {
    const url = await serve(null);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    expect(await waitReady(url, { timeoutMs: 600_000, uid: me, signal: controller.signal })).toEqual({ ok: false, reason: "cancelled" });
  }, 10_000);
});

/** Another user's process listening on `host`; returns the URL the hub would probe (always 127.0.0.1). */
async function squat(uid: number, host: string, port = 0): Promise<{ url: string; port: number }> {
  const squatter = await listenAs(uid, host, port);
  squatters.push(squatter);
  return { url: `http://127.0.0.1:${squatter.port}/user/ada/`, port: squatter.port };
}

const heldBy = (port: number, uid: number) => ({ ok: false, reason: expect.stringMatching(new RegExp(`^port ${port} is held by another user's process \\(uid ${uid}\\)`)) });

// Every test below passes a timeout far beyond the test's own: only a refusal at once can pass.
describe("waitReady accepts only a listener owned by the server's uid", () => {
  it("refuses at once a listener owned by another uid than the server's, and says whose it is", async () => {
    const url = await serve(302);
    const port = Number(new URL(url).port);
    expect(await waitReady(url, { timeoutMs: 600_000, uid: me + 1 })).toEqual(heldBy(port, me));
  }, 10_000);
});

if (!isRoot) console.warn("readiness.test.ts: not root, so the tests with a listener run as another uid are skipped");

describe.skipIf(!isRoot)("an attacker (another uid) on the server's port [needs root]", () => {
  it("is refused on 127.0.0.1 although it answers like a server; the same listener is accepted for its own uid", async () => {
    const { url, port } = await squat(NOBODY, "127.0.0.1");
    expect(await waitReady(url, { timeoutMs: 600_000, uid: me })).toEqual(heldBy(port, NOBODY));
    expect(await waitReady(url, { timeoutMs: 10_000, uid: NOBODY })).toEqual({ ok: true });
  }, 10_000);

  it.each(["0.0.0.0", "::", "::ffff:127.0.0.1"])("is refused when it listens on %s, which takes 127.0.0.1's connections", async (host) => {
    const { url, port } = await squat(NOBODY, host);
    expect(await waitReady(url, { timeoutMs: 600_000, uid: me })).toEqual(heldBy(port, NOBODY));
  }, 10_000);

  it("is refused as soon as it binds the port while the server is still starting", async () => {
    const port = await freePort();
    const ready = waitReady(`http://127.0.0.1:${port}/user/ada/`, { timeoutMs: 600_000, uid: me });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await squat(NOBODY, "127.0.0.1", port);
    expect(await ready).toEqual(heldBy(port, NOBODY));
  }, 10_000);

  it("does not matter when it listens only on ::1, which 127.0.0.1's connections never reach", async () => {
    const { port } = await squat(NOBODY, "::1");
    const url = await serve(302, port);
    expect(await waitReady(url, { timeoutMs: 10_000, uid: me })).toEqual({ ok: true });
  }, 10_000);
});
