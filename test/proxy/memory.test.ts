// A proxied body is streamed, never buffered: a large upload through the hub must not grow the hub's memory
// by anything like its size. The hub runs in a child process (memory-hub.ts, bundled for node) so the
// measurement is its own; the client and the upstream run here.
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { build } from "rolldown";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeServer, listen, sleep } from "./harness.js";

const MB = 1024 * 1024;
const BODY_MB = 200;
// A hub that held the body would grow by BODY_MB. One that streams it grew by 33–39 MB, the same for bodies
// from 50 to 800 MB: socket reads' buffers (about 31 MB of them) awaiting collection.
const ALLOWED_GROWTH_MB = 64;

describe("large uploads through the proxy", () => {
  let dir: string;
  let hub: ChildProcess;
  let hubUrl: string;
  let upstream: http.Server;
  let received = 0;
  const stalled: http.IncomingMessage[] = [];

  const ask = <T>(message: string) =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the hub did not answer "${message}" within 5 s`)), 5_000);
      hub.once("message", (reply) => {
        clearTimeout(timer);
        resolve(reply as T);
      });
      hub.send(message);
    });

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      if (req.url?.endsWith("/stalled")) return void stalled.push(req); // never reads
      req.on("data", (chunk: Buffer) => (received += chunk.length));
      req.on("end", () => res.end(String(received)));
    });
    const target = await listen(upstream);

    dir = mkdtempSync(join(tmpdir(), "slicehub-memory-"));
    const bundle = join(dir, "hub.mjs");
    await build({
      input: fileURLToPath(new URL("./memory-hub.ts", import.meta.url)),
      platform: "node",
      resolve: { mainFields: ["module", "main"] },
      output: { file: bundle, format: "esm", codeSplitting: false },
      logLevel: "silent",
    });
    hub = fork(bundle, [target], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      env: { ...process.env, SLICEHUB_LOG_LEVEL: "error" },
    });
    hubUrl = await new Promise<string>((resolve, reject) => {
      hub.once("message", (m) => resolve((m as { url: string }).url));
      hub.once("exit", (code) => reject(new Error(`the hub exited with ${code}`)));
    });
  });

  afterAll(async () => {
    for (const req of stalled) req.destroy();
    hub?.kill();
    await closeServer(upstream);
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * POSTs `mb` MiB, one reused 64 KiB chunk at a time and only as fast as the hub takes them. `answer` resolves
   * with the response body; `sent` is how many bytes have gone to the hub's connection so far.
   */
  function upload(mb: number, path = "/user/alice/api/contents/big.bin") {
    const chunk = Buffer.alloc(64 * 1024, "x");
    const chunks = (mb * MB) / chunk.length;
    let pulled = 0;
    const body = new Readable({ read: () => void body.push(pulled++ < chunks ? chunk : null) });
    const req = http.request(`${hubUrl}${path}`, {
      method: "POST",
      headers: { "Content-Length": mb * MB, "Content-Type": "application/octet-stream" },
      agent: false,
    });
    const answer = new Promise<string>((resolve, reject) => {
      req.on("error", reject);
      req.on("response", (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve(text));
      });
    });
    body.pipe(req);
    return { answer, sent: () => req.socket?.bytesWritten ?? 0, abort: () => req.destroy() };
  }

  /** How much the hub's RSS grows at its peak while `during` runs. */
  async function growthMb(during: () => Promise<void>): Promise<number> {
    await ask("peak"); // ends the previous window
    const { peak: before } = await ask<{ peak: number }>("peak");
    await during();
    const { peak } = await ask<{ peak: number }>("peak");
    return (peak - before) / MB;
  }

  it(`streams a ${BODY_MB} MB POST to the upstream without holding it`, async () => {
    // Warm up first: the first request loads code and sets up the upstream pool.
    expect(await upload(1).answer).toBe(String(MB));
    received = 0;
    const growth = await growthMb(async () => {
      expect(await upload(BODY_MB).answer).toBe(String(BODY_MB * MB));
    });
    expect(growth, `hub RSS grew by ${growth.toFixed(1)} MB`).toBeLessThan(ALLOWED_GROWTH_MB);
  });

  it("takes no more of a body than the upstream reads", async () => {
    let sentMb = 0;
    const growth = await growthMb(async () => {
      const { answer, sent, abort } = upload(BODY_MB, "/user/alice/stalled");
      answer.catch(() => undefined); // aborted below
      // The client's bytes stop flowing once every buffer between it and the upstream is full; the kernel's
      // socket buffers may take tens of MB, but those are not the hub's memory.
      let last = -1;
      for (let steady = 0, polls = 0; steady < 5 && polls < 100; polls++) {
        await sleep(100);
        steady = sent() === last ? steady + 1 : 0;
        last = sent();
      }
      sentMb = last / MB;
      abort();
    });
    expect(sentMb, "the hub took the whole body while its upstream read nothing").toBeLessThan(BODY_MB);
    expect(growth, `hub RSS grew by ${growth.toFixed(1)} MB, ${sentMb.toFixed(1)} MB sent`).toBeLessThan(ALLOWED_GROWTH_MB);
  });
});
