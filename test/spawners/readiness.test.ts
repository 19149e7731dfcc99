import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../spawners/ports.js";
import { waitReady } from "../../spawners/readiness.js";

const servers: http.Server[] = [];
afterEach(async () => {
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
    expect(await waitReady(await serve(status), { timeoutMs: 5_000 })).toEqual({ ok: true });
  });

  it("keeps waiting on 500 and gives up after the timeout with a reason", async () => {
    const url = await serve(500);
    expect(await waitReady(url, { timeoutMs: 300 })).toEqual({ ok: false, reason: `did not answer on ${url} within 0.3 s` });
  });

  it("gives up after the timeout when the server accepts but never answers", async () => {
    const url = await serve(null);
    expect(await waitReady(url, { timeoutMs: 300 })).toEqual({ ok: false, reason: `did not answer on ${url} within 0.3 s` });
  });

  it("waits through refused connections until the server comes up", async () => {
    const port = await freePort();
    const ready = waitReady(`http://127.0.0.1:${port}/`, { timeoutMs: 10_000 });
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
    expect(await waitReady(url, { timeoutMs: 600_000, isAlive })).toEqual({ ok: false, reason: "exited with status 1" });
    expect(calls).toBe(3);
  }, 10_000);

  it("stops with 'cancelled' when aborted, while waiting or before starting", async () => {
    const url = `http://127.0.0.1:${await freePort()}/`;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    expect(await waitReady(url, { timeoutMs: 600_000, signal: controller.signal })).toEqual({ ok: false, reason: "cancelled" });
    expect(await waitReady(url, { timeoutMs: 600_000, signal: AbortSignal.abort() })).toEqual({ ok: false, reason: "cancelled" });
  }, 10_000);

  it("stops with 'cancelled' when aborted during a request", async () => {
    const url = await serve(null);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    expect(await waitReady(url, { timeoutMs: 600_000, signal: controller.signal })).toEqual({ ok: false, reason: "cancelled" });
  }, 10_000);
});
