// Websocket load client, run by bench/proxy.ts as its own process so its event loop is not shared with
// anything being measured. Prints one JSON line on stdout and exits 0, or prints the problem on stderr and
// exits 1. Every phase is bounded in count and in time.
//
//   node dist/bench/ws-client.js latency    URL [--count 2000] [--warmup 200] [--size 64]
//   node dist/bench/ws-client.js throughput URL [--conns 8] [--window 16] [--seconds 5] [--warmup-s 1] [--size 64]
//
// latency:    sequential round trips on one connection; reports p50/p90/p99/max in microseconds.
// throughput: --conns connections, each keeping --window messages in flight (send one per echo received);
//             reports echoed messages per second over --seconds after a --warmup-s warm-up.
import { parseArgs } from "node:util";
import WebSocket from "ws";

const HARD_TIMEOUT_MS = 60_000;
const MAX_THROUGHPUT_MESSAGES = 20_000_000;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    count: { type: "string", default: "2000" },
    warmup: { type: "string", default: "200" },
    size: { type: "string", default: "64" },
    conns: { type: "string", default: "8" },
    window: { type: "string", default: "16" },
    seconds: { type: "string", default: "5" },
    "warmup-s": { type: "string", default: "1" },
  },
});
const [mode, url] = positionals;
const int = (name: keyof typeof values, max: number): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0 || n > max) die(`--${name} must be a whole number from 0 to ${max}`);
  return n;
};

function die(msg: string): never {
  process.stderr.write(`ws-client: ${msg}\n`);
  process.exit(1);
}

const hardTimer = setTimeout(() => die(`gave up after ${HARD_TIMEOUT_MS / 1000} s`), HARD_TIMEOUT_MS);

function connect(target: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target, { perMessageDeflate: false });
    ws.binaryType = "nodebuffer";
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function latency(target: string): Promise<object> {
  const count = int("count", 1_000_000);
  const warmup = int("warmup", 100_000);
  const payload = Buffer.alloc(int("size", 1 << 20), "p");
  const ws = await connect(target);
  const samples: number[] = [];
  await new Promise<void>((resolve, reject) => {
    let i = 0;
    let sent = 0n;
    const next = () => {
      sent = process.hrtime.bigint();
      ws.send(payload);
    };
    ws.on("message", (data: Buffer) => {
      const dt = Number(process.hrtime.bigint() - sent) / 1000;
      if (data.length !== payload.length) return reject(new Error(`echo of ${data.length} bytes, sent ${payload.length}`));
      if (i >= warmup) samples.push(dt);
      if (++i >= warmup + count) return resolve();
      next();
    });
    ws.once("close", () => reject(new Error(`connection closed after ${i} round trips`)));
    ws.once("error", reject);
    next();
  });
  ws.removeAllListeners("close");
  ws.close();
  samples.sort((a, b) => a - b);
  return {
    mode: "latency",
    round_trips: samples.length,
    p50_us: percentile(samples, 50),
    p90_us: percentile(samples, 90),
    p99_us: percentile(samples, 99),
    max_us: samples.at(-1),
  };
}

async function throughput(target: string): Promise<object> {
  const conns = int("conns", 256);
  const window = int("window", 1024);
  const seconds = int("seconds", 30);
  const warmupS = int("warmup-s", 10);
  const payload = Buffer.alloc(int("size", 1 << 20), "p");
  const sockets = await Promise.all(Array.from({ length: conns }, () => connect(target)));

  let sending = true;
  let measuring = false;
  let total = 0;
  let measured = 0;
  let failure: Error | undefined;
  for (const ws of sockets) {
    ws.on("message", () => {
      total++;
      if (measuring) measured++;
      if (sending && total < MAX_THROUGHPUT_MESSAGES) ws.send(payload);
    });
    ws.on("error", (err) => (failure ??= err));
    ws.on("close", () => {
      if (sending) failure ??= new Error("a connection closed during the run");
    });
    for (let k = 0; k < window; k++) ws.send(payload);
  }
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  measuring = true;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsedS = Number(process.hrtime.bigint() - t0) / 1e9;
  const count = measured;
  sending = false;
  for (const ws of sockets) ws.close();
  if (failure) throw failure;
  return { mode: "throughput", conns, window, seconds: elapsedS, messages: count, msgs_per_s: count / elapsedS, capped: total >= MAX_THROUGHPUT_MESSAGES };
}

async function main(): Promise<void> {
  if (!url || !/^wss?:\/\//.test(url)) die("usage: ws-client.js latency|throughput ws://HOST:PORT/PATH [options]");
  let result: object;
  if (mode === "latency") result = await latency(url);
  else if (mode === "throughput") result = await throughput(url);
  else die(`unknown mode ${mode ?? ""} (latency or throughput)`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  clearTimeout(hardTimer);
  process.exit(0);
}

main().catch((err: unknown) => die((err as Error).message));
