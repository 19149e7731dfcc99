// The helper unit's socket framing (spawners/privileged/transport.ts) over a real Unix socket: one JSON value per
// line whatever the chunking, a line that is not JSON reported and skipped, a line over the limit ends reading
// (also when it never gets its newline), and HelperClient.connect against a stand-in helper: the ready message,
// requests with progress and answers, and the close callback.
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { log } from "../../src/log.js";
import { HelperClient } from "../../spawners/privileged/client.js";
import { readLines, writeLine, type Line } from "../../spawners/privileged/transport.js";

describe("helper transport", () => {
  let dir: string;
  let n = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-transport-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A server socket that reads lines with `max`; resolves with what it saw once the client is done. */
  async function exchange(max: number, send: (c: net.Socket) => void): Promise<{ lines: Line[]; tooLong: number }> {
    const path = join(dir, `s${n++}.sock`);
    const lines: Line[] = [];
    let tooLong = 0;
    const done = new Promise<void>((resolve) => {
      const server = net.createServer((sock) => {
        readLines(sock, max, (l) => lines.push(l), () => {
          tooLong++;
          sock.destroy();
        });
        sock.on("close", () => {
          server.close();
          resolve();
        });
      });
      server.listen(path, () => {
        const c = net.connect(path, () => send(c));
        c.on("error", () => undefined);
      });
    });
    await done;
    return { lines, tooLong };
  }

  it("splits values at newlines however the bytes arrive, and reports a line that is not JSON", async () => {
    const r = await exchange(1024, (c) => {
      c.write('{"a":1}\n{"b"');
      setTimeout(() => c.write(':"x\\ny"}\nnot json\n[1,2]'), 10);
      setTimeout(() => c.end("\n"), 20);
    });
    expect(r.lines).toEqual([{ ok: true, value: { a: 1 } }, { ok: true, value: { b: "x\ny" } }, { ok: false, why: "not JSON" }, { ok: true, value: [1, 2] }]);
    expect(r.tooLong).toBe(0);
  });

  it("ends reading at a line over the limit, with or without its newline", async () => {
    const withNewline = await exchange(100, (c) => c.end(`{"ok":1}\n"${"x".repeat(200)}"\n{"after":1}\n`));
    expect(withNewline).toEqual({ lines: [{ ok: true, value: { ok: 1 } }], tooLong: 1 });
    const endless = await exchange(100, (c) => c.write("y".repeat(500)));
    expect(endless).toEqual({ lines: [], tooLong: 1 });
  });

  it("HelperClient.connect: ready, progress, answers and errors, then the close callback", async () => {
    const path = join(dir, "helper.sock");
    let peer: net.Socket | undefined;
    const server = net.createServer((sock) => {
      peer = sock;
      writeLine(sock, { type: "ready", pid: 4242 });
      readLines(sock, 1 << 20, (l) => {
        const req = (l as { value: { id: number; op: string } }).value;
        if (req.op === "list") {
          writeLine(sock, { type: "progress", id: req.id, progress: 50, message: "half" });
          writeLine(sock, { type: "result", id: req.id, ok: true, result: ["slicehub-server-a.service"] });
        } else writeLine(sock, { type: "result", id: req.id, ok: false, error: "refused" });
      }, () => sock.destroy());
    });
    await new Promise<void>((r) => server.listen(path, r));
    let closed = 0;
    const client = await HelperClient.connect(path, log, () => closed++, 5_000);
    expect(client.pid).toBe(4242);
    const progress: string[] = [];
    expect(await client.request({ op: "list" }, (p, m) => progress.push(`${p} ${m}`))).toEqual(["slicehub-server-a.service"]);
    expect(progress).toEqual(["50 half"]);
    await expect(client.request({ op: "ssh-limits" })).rejects.toThrow("refused");
    // The helper goes away: a request in flight fails, and the owner hears of it once.
    const pending = client.request({ op: "terminal-list" });
    peer!.destroy();
    await expect(pending).rejects.toThrow();
    for (let i = 0; i < 100 && closed === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(1);
    server.close();
  });

  it("HelperClient.connect gives up after its wait, naming the unit to check", async () => {
    await expect(HelperClient.connect(join(dir, "absent.sock"), log, () => undefined, 300)).rejects.toThrow(/slicehub-helper/);
  });
});
