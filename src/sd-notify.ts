// systemd's notification protocol (sd_notify(3)) for the Type=notify units: READY=1 once the process answers,
// STATUS= lines for `systemctl status`, RELOADING=1/READY=1 around a reload, STOPPING=1, and the watchdog.
//
// Node has no AF_UNIX datagram sockets (node:dgram is UDP only), so each message goes out through
// systemd-notify(1), run as a child. That is reliable here because systemd-notify (systemd ≥ 246, without
// --no-block) waits until PID 1 has processed the message (sd_notify_barrier) before it exits: PID 1 finds
// the sender alive and attributes the message to this unit by its cgroup. (A sender that is gone by then is
// dropped: "Cannot find unit for notify message of PID", systemd issue #2737.) The units set NotifyAccess=all,
// since the sender is a child of the main process. Messages go out one at a time, in order.
//
// Without NOTIFY_SOCKET (not under systemd, or not Type=notify) every call is a no-op and nothing is spawned.
import { execFile } from "node:child_process";
import type { Logger } from "./log.js";

/** A message that takes longer than this (PID 1 stuck) is abandoned; the next one tries again. */
const SEND_TIMEOUT_MS = 10_000;

export class SdNotify {
  private readonly socket: string | undefined;
  private readonly watchdogMs: number | undefined;
  private chain: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private warned = false;
  private isReady = false;
  private isStopping = false;
  private lastStatus = "";
  private timer: NodeJS.Timeout | undefined;

  /** Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID and removes them from `env`: no child inherits them. */
  constructor(
    private readonly log: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.socket = env.NOTIFY_SOCKET || undefined;
    const usec = Number(env.WATCHDOG_USEC);
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
    this.watchdogMs = this.socket && forUs && Number.isFinite(usec) && usec > 0 ? usec / 1000 : undefined;
    delete env.NOTIFY_SOCKET;
    delete env.WATCHDOG_USEC;
    delete env.WATCHDOG_PID;
  }

  get enabled(): boolean {
    return this.socket !== undefined;
  }

  /** READY=1 with a status line (also ends a reload). */
  ready(status: string): Promise<void> {
    this.isReady = true;
    this.lastStatus = status;
    return this.send(["READY=1", `STATUS=${status}`]);
  }

  status(status: string): Promise<void> {
    if (status === this.lastStatus) return Promise.resolve();
    this.lastStatus = status;
    return this.send([`STATUS=${status}`]);
  }

  /** RELOADING=1, then READY=1 with the status once the reload is done. */
  reloaded(status: string): Promise<void> {
    void this.send(["RELOADING=1", "STATUS=reloading the config"]);
    return this.ready(status);
  }

  stopping(status: string): Promise<void> {
    this.isStopping = true;
    this.stopWatchdog();
    this.lastStatus = status;
    return this.send(["STOPPING=1", `STATUS=${status}`]);
  }

  /**
   * WATCHDOG=1 every half of WatchdogSec, from this event loop: a loop that stops turning stops the pings and
   * systemd kills and restarts the unit. Each ping repeats READY=1 (a no-op for PID 1 once ready) so that a
   * readiness message lost on an old systemd is made up for. `status` refreshes the status line each time.
   */
  startWatchdog(status?: () => string): void {
    if (this.watchdogMs === undefined || this.timer) return;
    const every = Math.max(500, Math.floor(this.watchdogMs / 2));
    this.timer = setInterval(() => {
      // A ping still waiting for PID 1 is enough; do not pile more up behind it.
      if (this.inFlight > 0 || this.isStopping) return;
      const fields = ["WATCHDOG=1"];
      if (this.isReady) fields.push("READY=1");
      const s = status?.();
      if (s !== undefined && s !== this.lastStatus) {
        this.lastStatus = s;
        fields.push(`STATUS=${s}`);
      }
      void this.send(fields);
    }, every);
    this.timer.unref();
    this.log.debug("systemd watchdog on", { ping_every_ms: every });
  }

  stopWatchdog(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private send(fields: string[]): Promise<void> {
    const socket = this.socket;
    if (!socket) return Promise.resolve();
    // One line per field; systemd-notify takes them as arguments. A status line must stay on one line.
    const args = fields.map((f) => f.replace(/[\r\n]+/g, " "));
    this.inFlight++;
    const run = () =>
      new Promise<void>((resolve) => {
        execFile(
          "systemd-notify",
          args,
          { env: { NOTIFY_SOCKET: socket, PATH: process.env.PATH ?? "/usr/bin:/bin" }, timeout: SEND_TIMEOUT_MS, killSignal: "SIGKILL" },
          (err, _stdout, stderr) => {
            this.inFlight--;
            if (err && !this.warned) {
              this.warned = true;
              this.log.warn("could not notify systemd (systemd-notify)", { error: (stderr || err.message).trim() });
            }
            resolve();
          },
        );
      });
    this.chain = this.chain.then(run);
    return this.chain;
  }
}

/**
 * For the systemd tests of the watchdog only: with SLICEHUB_TEST_WATCHDOG_HANG=1 in the environment (which only
 * root can put there, in a unit or drop-in), SIGUSR2 blocks the event loop for good, as a hung hub would.
 * Without that variable SIGUSR2 does nothing here. The variable is removed from the environment.
 */
export function installTestHang(log: Logger, env: NodeJS.ProcessEnv = process.env): void {
  const on = env.SLICEHUB_TEST_WATCHDOG_HANG === "1";
  delete env.SLICEHUB_TEST_WATCHDOG_HANG;
  if (!on) return;
  log.warn("SLICEHUB_TEST_WATCHDOG_HANG is set: SIGUSR2 will hang this process (tests only)");
  process.on("SIGUSR2", () => {
    log.warn("SIGUSR2 with SLICEHUB_TEST_WATCHDOG_HANG: blocking the event loop");
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  });
}
