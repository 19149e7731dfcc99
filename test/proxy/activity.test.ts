import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { deadTarget, request, startEchoUpstream, startProxy, waitFor, type ProxyHarness } from "./harness.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options?: Parameters<typeof startProxy>[0]): Promise<ProxyHarness> {
  const up = await startEchoUpstream();
  cleanups.push(() => up.close());
  const p = await startProxy(options);
  cleanups.push(() => p.close());
  p.table.set({ prefix: "/user/alice", target: up.url, serverId: 7 });
  p.table.set({ prefix: "/user/bob", target: up.url, serverId: 8 });
  return p;
}

async function openWs(url: string): Promise<{ socket: WebSocket; next: () => Promise<string> }> {
  const socket = new WebSocket(url);
  cleanups.push(async () => void socket.terminate());
  const messages: string[] = [];
  socket.on("message", (data) => messages.push(String(data)));
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  let read = 0;
  const next = async () => {
    await waitFor(() => messages.length > read);
    return messages[read++] ?? "";
  };
  return { socket, next };
}

describe("activity accounting", () => {
  it("reports servers that had HTTP traffic since the last flush, and nothing when idle", async () => {
    const p = await setup();
    const before = Date.now();
    expect((await request(p.url, "/user/alice/api/status")).status).toBe(200);
    p.proxy.flushActivity();
    expect(p.activity).toHaveLength(1);
    const batch = p.activity[0]!;
    expect([...batch.keys()]).toEqual([7]);
    expect(batch.get(7)!.getTime()).toBeGreaterThanOrEqual(before);
    expect(batch.get(7)!.getTime()).toBeLessThanOrEqual(Date.now());

    p.proxy.flushActivity();
    expect(p.activity).toHaveLength(1);
  });

  it("counts websocket frames in both directions", async () => {
    const p = await setup();
    const ws = await openWs(p.url.replace(/^http/, "ws") + "/user/bob/api/kernels/k/channels");
    await ws.next();
    p.proxy.flushActivity();
    expect([...p.activity[0]!.keys()]).toEqual([8]);

    p.proxy.flushActivity();
    expect(p.activity).toHaveLength(1); // an idle open websocket is not activity

    ws.socket.send("ping from the browser");
    await ws.next();
    p.proxy.flushActivity();
    expect([...p.activity[1]!.keys()]).toEqual([8]);
  });

  it("does not count requests the server never answered", async () => {
    const p = await setup();
    p.table.set({ prefix: "/user/carol", target: await deadTarget(), serverId: 9 });
    expect((await request(p.url, "/user/carol/tree")).status).toBe(503);
    p.proxy.flushActivity();
    expect(p.activity).toEqual([]);
  });

  it("flushes on its own timer and on close", async () => {
    const p = await setup({ activityFlushMs: 20 });
    await request(p.url, "/user/alice/");
    await waitFor(() => p.activity.length === 1);
    expect([...p.activity[0]!.keys()]).toEqual([7]);

    await request(p.url, "/user/bob/");
    p.proxy.close();
    expect(p.activity.some((b) => b.has(8))).toBe(true);
  });

  it("keeps going when the activity callback throws", async () => {
    let calls = 0;
    const p = await setup({
      onActivity: () => {
        calls += 1;
        throw new Error("database is locked");
      },
    });
    await request(p.url, "/user/alice/");
    p.proxy.flushActivity();
    expect(calls).toBe(1);
    expect(p.logs.some((e) => e.level === "error")).toBe(true);
    expect((await request(p.url, "/user/alice/")).status).toBe(200);
  });
});
