// The web process's end of the privileged helper. Two ways to reach it, one API for callers:
// - fork mode (slicehub started as root): the web process forks the helper while still root and talks to it
//   over Node's IPC; then it drops to run_as. If the helper dies, the web process exits so systemd restarts both.
// - unit mode (slicehub.service runs as run_as, slicehub-helper.service as root): it connects to the helper's
//   Unix socket (transport.ts). If the connection closes (the helper unit stopped or restarted), the web
//   process exits too and systemd restarts it once the helper is back.
// Either way user servers live in their own units and are adopted again.
import { fork, type ChildProcess } from "node:child_process";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../../src/log.js";
import type { HelperMessage, RequestBody } from "./protocol.js";
import { MAX_ANSWER_BYTES, readLines, writeLine } from "./transport.js";

interface Channel {
  send(m: object, done: (err?: Error | null) => void): void;
  close(): void;
}

export class HelperClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; onProgress?: (p: number, m: string) => void }>();
  private helperPid: number | undefined;

  private constructor(
    private readonly channel: Channel,
    private readonly log: Logger,
  ) {}

  /** Fork `cli.js privileged-helper` and wait until it says it is ready. */
  static async start(cliPath: string, configPath: string, log: Logger, onExit: (code: number | null, signal: string | null) => void): Promise<HelperClient> {
    const child: ChildProcess = fork(cliPath, ["privileged-helper", "--config", configPath], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "json" });
    const client = new HelperClient(
      {
        send: (m, done) => child.send(m, (err) => done(err)),
        close: () => child.disconnect(),
      },
      log,
    );
    client.helperPid = child.pid;
    child.on("message", (m: HelperMessage) => client.onMessage(m));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the privileged helper did not start within 15 s")), 15_000);
      child.once("message", (m: HelperMessage) => {
        clearTimeout(timer);
        if (m.type === "ready") resolve();
        else reject(new Error("the privileged helper sent something before it was ready"));
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the privileged helper exited at start (status ${code})`));
      });
    });
    child.on("exit", (code, signal) => {
      client.failPending();
      onExit(code, signal);
    });
    return client;
  }

  /**
   * Connect to slicehub-helper.service's socket, waiting up to `waitMs` for it to appear (the helper unit may
   * be starting or restarting), and wait for its ready message. `onClose` runs when the connection ends later.
   */
  static async connect(path: string, log: Logger, onClose: () => void, waitMs = 30_000): Promise<HelperClient> {
    const deadline = Date.now() + waitMs;
    let lastError = "";
    let warned = false;
    for (let attempt = 0; attempt < 1000; attempt++) {
      try {
        return await HelperClient.connectOnce(path, log, onClose);
      } catch (err) {
        lastError = (err as Error).message;
        if (Date.now() >= deadline) break;
        if (!warned) {
          log.warn("waiting for the privileged helper (slicehub-helper.service)", { socket: path, error: lastError });
          warned = true;
        }
        await sleep(250);
      }
    }
    throw new Error(`cannot reach the privileged helper at ${path}: ${lastError} (is slicehub-helper.service running? systemctl status slicehub-helper)`);
  }

  private static connectOnce(path: string, log: Logger, onClose: () => void): Promise<HelperClient> {
    return new Promise<HelperClient>((resolve, reject) => {
      const sock = net.connect(path);
      const client = new HelperClient({ send: (m, done) => writeLine(sock, m, done), close: () => sock.end() }, log);
      let ready = false;
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error("no ready message within 15 s"));
      }, 15_000);
      sock.on("error", (err: NodeJS.ErrnoException) => {
        if (!ready) {
          clearTimeout(timer);
          reject(new Error(err.code ?? err.message));
        } else log.warn("the connection to the privileged helper failed", { error: err.message });
      });
      readLines(
        sock,
        MAX_ANSWER_BYTES,
        (line) => {
          if (!line.ok) return log.warn("the privileged helper sent a line that is not JSON");
          const m = line.value as HelperMessage;
          if (!ready) {
            if (m?.type !== "ready") return;
            ready = true;
            clearTimeout(timer);
            client.helperPid = m.pid;
            resolve(client);
            return;
          }
          client.onMessage(m);
        },
        () => {
          log.error("the privileged helper sent an answer over the size limit", { limit: MAX_ANSWER_BYTES });
          sock.destroy();
        },
      );
      sock.once("close", () => {
        if (!ready) {
          clearTimeout(timer);
          reject(new Error("closed before it was ready"));
          return;
        }
        client.failPending();
        onClose();
      });
    });
  }

  get pid(): number | undefined {
    return this.helperPid;
  }

  request<T>(body: RequestBody, onProgress?: (progress: number, message: string) => void): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
      this.channel.send({ ...body, id }, (err) => {
        if (!err) return;
        this.pending.delete(id);
        reject(new Error(`cannot reach the privileged helper: ${err.message}`));
      });
    });
  }

  private failPending(): void {
    for (const p of this.pending.values()) p.reject(new Error("the privileged helper exited"));
    this.pending.clear();
  }

  private onMessage(m: HelperMessage): void {
    if (m.type === "ready") return;
    const p = this.pending.get(m.id);
    if (!p) {
      this.log.warn("unexpected message from the privileged helper", { type: m.type });
      return;
    }
    if (m.type === "progress") return p.onProgress?.(m.progress, m.message);
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(m.error));
  }

  stop(): void {
    this.channel.close();
  }
}
