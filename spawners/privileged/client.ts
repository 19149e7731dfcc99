// The web process's end of the privileged helper: starts it (while still root), then sends it requests and
// routes its progress and results back. If the helper dies, the web process exits so systemd restarts both;
// user servers live in their own units and are adopted again.
import { fork, type ChildProcess } from "node:child_process";
import type { Logger } from "../../src/log.js";
import type { HelperMessage, RequestBody } from "./protocol.js";

export class HelperClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; onProgress?: (p: number, m: string) => void }>();

  private constructor(
    private readonly child: ChildProcess,
    private readonly log: Logger,
  ) {
    child.on("message", (m: HelperMessage) => this.onMessage(m));
  }

  /** Fork `cli.js privileged-helper` and wait until it says it is ready. */
  static async start(cliPath: string, configPath: string, log: Logger, onExit: (code: number | null, signal: string | null) => void): Promise<HelperClient> {
    const child = fork(cliPath, ["privileged-helper", "--config", configPath], { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "json" });
    const client = new HelperClient(child, log);
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
      for (const p of client.pending.values()) p.reject(new Error("the privileged helper exited"));
      client.pending.clear();
      onExit(code, signal);
    });
    return client;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  request<T>(body: RequestBody, onProgress?: (progress: number, message: string) => void): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
      this.child.send({ ...body, id }, (err) => {
        if (!err) return;
        this.pending.delete(id);
        reject(new Error(`cannot reach the privileged helper: ${err.message}`));
      });
    });
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
    this.child.disconnect();
  }
}
