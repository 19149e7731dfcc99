// The terminal's rules without a daemon: tickets (single use, short life, bound to a session), the limits
// (max_per_user, detach grace, idle), access (blocked, deleted, allow-lists, admin_access for admins), the
// Origin and path checks of the websocket, the systemd-run argv, the helper protocol's terminal ops, the
// scrollback ring and the frames on the helper's socket.
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import type { WebSocket } from "ws";
import { HelperRequest } from "../../spawners/privileged/protocol.js";
import type { Config, SystemdSpawnerConfig } from "../../src/config/schema.js";
import { log } from "../../src/log.js";
import { Store } from "../../src/store/store.js";
import type { AttachHandlers, Attachment, OpenRequest, TerminalBackend } from "../../src/terminal/backend.js";
import { frame, FRAME_EXIT, FRAME_OUTPUT, FrameReader } from "../../src/terminal/frames.js";
import { TerminalManager, TICKET_TTL_MS } from "../../src/terminal/manager.js";
import { clampSize, Scrollback } from "../../src/terminal/pty-session.js";
import { terminalRunArgv, terminalUnit, usableShell } from "../../src/terminal/units.js";
import { hubOrigin, mayUseTerminal, terminalPath } from "../../src/terminal/upgrade.js";
import { config as parse } from "./fakes.js";

class FakeBackend implements TerminalBackend {
  opened: OpenRequest[] = [];
  closed: string[] = [];
  handlers = new Map<string, AttachHandlers>();
  written: Buffer[] = [];
  private n = 0;
  async open(req: OpenRequest) {
    this.opened.push(req);
    return { id: (++this.n).toString(16).padStart(16, "0"), account: `jupyter-${req.user}` };
  }
  async attach(id: string, h: AttachHandlers): Promise<Attachment> {
    this.handlers.set(id, h);
    h.data(Buffer.from("scrollback\r\n"));
    return { write: (d) => void this.written.push(d), pause: () => undefined, resume: () => undefined, close: () => void this.handlers.delete(id) };
  }
  resize() {}
  async close(id: string) {
    this.closed.push(id);
  }
}

/** Enough of a ws WebSocket for the manager: records what it is sent and how it is closed. */
class FakeWs extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  sent: (string | Buffer)[] = [];
  closedWith: number | undefined;
  send(data: string | Buffer) {
    this.sent.push(data);
  }
  close(code?: number) {
    this.closedWith = code;
    this.readyState = 3;
    this.emit("close");
  }
  messages(): Record<string, unknown>[] {
    return this.sent.filter((s): s is string => typeof s === "string").map((s) => JSON.parse(s) as Record<string, unknown>);
  }
}

function setup(cfgText = "{}") {
  let cfg: Config = parse(cfgText);
  let now = 1_000_000;
  const store = new Store(":memory:");
  const alice = store.createUser("alice", false)!;
  const bob = store.createUser("bob", false)!;
  const root = store.createUser("root", true)!;
  const denied = new Set<string>();
  const backend = new FakeBackend();
  const manager = new TerminalManager({ store, config: () => cfg, log, backend, allowed: (u) => !denied.has(u.name), sweepMs: 3_600_000, now: () => now });
  return {
    store,
    alice,
    bob,
    root,
    backend,
    manager,
    denied,
    setConfig: (text: string) => (cfg = parse(text)),
    advance: (ms: number) => (now += ms),
  };
}

describe("terminal tickets", () => {
  it("are single use, bound to the session and terminal they were issued for, and short-lived", async () => {
    const s = setup();
    const t = await s.manager.open(s.alice, "", "", "alice");
    const ticket = s.manager.issueTicket(t.id, s.alice, "session-hash");
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.manager.redeem(ticket)).toEqual({ terminal: t.id, viewerId: s.alice.id, sessionHash: "session-hash" });
    expect(s.manager.redeem(ticket)).toBeUndefined();
    const late = s.manager.issueTicket(t.id, s.alice, "session-hash");
    s.advance(TICKET_TTL_MS + 1);
    expect(s.manager.redeem(late)).toBeUndefined();
    expect(s.manager.redeem("made-up")).toBeUndefined();
    expect(TerminalManager.sameSession("a".repeat(64), "a".repeat(64))).toBe(true);
    expect(TerminalManager.sameSession("a".repeat(64), "b".repeat(64))).toBe(false);
  });

  it("differ every time", async () => {
    const s = setup();
    const t = await s.manager.open(s.alice, "", "", "alice");
    const seen = new Set(Array.from({ length: 200 }, () => s.manager.issueTicket(t.id, s.alice, "h")));
    expect(seen.size).toBe(200);
  });
});

describe("terminal limits", () => {
  it("allows terminal.max_per_user per user, counting opens under way, and frees a slot when one ends", async () => {
    const s = setup('{"terminal": {"max_per_user": 2}}');
    const both = await Promise.allSettled([s.manager.open(s.alice, "", "", "alice"), s.manager.open(s.alice, "", "", "alice"), s.manager.open(s.alice, "", "", "alice")]);
    expect(both.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
    expect((both[2] as PromiseRejectedResult).reason).toMatchObject({ status: 429 });
    // Bob has his own allowance.
    await s.manager.open(s.bob, "", "", "bob");
    const first = (both[0] as PromiseFulfilledResult<{ id: string }>).value.id;
    await s.manager.end(first, "test");
    expect(s.backend.closed).toEqual([first]);
    await expect(s.manager.open(s.alice, "", "", "alice")).resolves.toBeDefined();
  });

  it("refuses when terminals are turned off, and ends open ones", async () => {
    const s = setup();
    const t = await s.manager.open(s.alice, "", "", "alice");
    s.setConfig('{"terminal": {"enabled": false}}');
    await expect(s.manager.open(s.alice, "", "", "alice")).rejects.toMatchObject({ status: 404 });
    s.manager.sweep();
    expect(s.manager.get(t.id)).toBeUndefined();
  });

  it("ends a detached shell after detach_grace_s, not an attached one", async () => {
    const s = setup('{"terminal": {"detach_grace_s": 60, "idle_timeout_s": 100000}}');
    const detached = await s.manager.open(s.alice, "", "", "alice");
    const attached = await s.manager.open(s.bob, "", "", "bob");
    await s.manager.connect(attached.id, new FakeWs() as unknown as WebSocket, "bob");
    s.advance(59_000);
    s.manager.sweep();
    expect(s.manager.get(detached.id)).toBeDefined();
    s.advance(2_000);
    s.manager.sweep();
    expect(s.manager.get(detached.id)).toBeUndefined();
    expect(s.manager.get(attached.id)).toBeDefined();
  });

  it("ends a terminal idle for idle_timeout_s (no input, no output), told to its page", async () => {
    const s = setup('{"terminal": {"idle_timeout_s": 100}}');
    const t = await s.manager.open(s.alice, "", "", "alice");
    const ws = new FakeWs();
    await s.manager.connect(t.id, ws as unknown as WebSocket, "alice");
    s.advance(90_000);
    ws.emit("message", Buffer.from("ls\r"), true); // input resets the clock
    s.advance(90_000);
    s.backend.handlers.get(t.id)!.data(Buffer.from("output\r\n")); // so does output
    s.advance(90_000);
    s.manager.sweep();
    expect(s.manager.get(t.id)).toBeDefined();
    s.advance(20_000);
    s.manager.sweep();
    expect(s.manager.get(t.id)).toBeUndefined();
    expect(ws.messages().at(-1)).toMatchObject({ type: "ended", message: expect.stringMatching(/idle/) });
    expect(s.backend.written.map(String)).toEqual(["ls\r"]);
  });
});

describe("terminal access", () => {
  it("ends a user's terminals when they are blocked, deleted or no longer allowed", async () => {
    const s = setup();
    const a = await s.manager.open(s.alice, "", "", "alice");
    const b = await s.manager.open(s.bob, "", "", "bob");
    const r = await s.manager.open(s.root, "", "", "root");
    const ws = new FakeWs();
    await s.manager.connect(a.id, ws as unknown as WebSocket, "alice");
    s.store.setBlocked(s.alice.id, true);
    s.denied.add("bob");
    s.store.deleteUser(s.root.id);
    s.manager.sweep();
    expect(s.manager.list()).toEqual([]);
    expect(s.backend.closed.sort()).toEqual([a.id, b.id, r.id].sort());
    expect(ws.messages().at(-1)).toMatchObject({ type: "ended", message: expect.stringMatching(/access/) });
    expect(ws.closedWith).toBe(1000);
  });

  it("lets admins in only with admin_access, and takes an admin's window away when it is turned off", async () => {
    const s = setup('{"admin_access": true}');
    const hub = (text: string) => ({ config: () => parse(text) }) as never;
    expect(mayUseTerminal(hub("{}"), { name: "alice", admin: 0 }, "alice")).toBe(true);
    expect(mayUseTerminal(hub("{}"), { name: "bob", admin: 0 }, "alice")).toBe(false);
    expect(mayUseTerminal(hub("{}"), { name: "root", admin: 1 }, "alice")).toBe(false);
    expect(mayUseTerminal(hub('{"admin_access": true}'), { name: "root", admin: 1 }, "alice")).toBe(true);
    expect(mayUseTerminal(hub('{"admin_access": true}'), { name: "bob", admin: 0 }, "alice")).toBe(false);

    const t = await s.manager.open(s.alice, "", "", "root");
    const ws = new FakeWs();
    await s.manager.connect(t.id, ws as unknown as WebSocket, "root");
    s.manager.sweep();
    expect(ws.closedWith).toBeUndefined();
    s.setConfig("{}");
    s.manager.sweep();
    expect(ws.closedWith).toBe(1000);
    expect(ws.messages().at(-1)).toMatchObject({ type: "ended", message: expect.stringMatching(/admin_access/) });
    // The shell itself stays: it is alice's.
    expect(s.manager.get(t.id)).toBeDefined();
  });

  it("a newer window takes the terminal over and the older one is told", async () => {
    const s = setup();
    const t = await s.manager.open(s.alice, "", "", "alice");
    const first = new FakeWs();
    const second = new FakeWs();
    await s.manager.connect(t.id, first as unknown as WebSocket, "alice");
    await s.manager.connect(t.id, second as unknown as WebSocket, "alice");
    expect(first.messages().at(-1)).toMatchObject({ type: "ended", message: expect.stringMatching(/another window/) });
    expect(second.messages()[0]).toMatchObject({ type: "hello", id: t.id, account: "jupyter-alice" });
    expect(second.sent.find((x) => Buffer.isBuffer(x))?.toString()).toBe("scrollback\r\n");
    s.backend.handlers.get(t.id)!.exit({ code: 2, signal: 0 });
    expect(second.messages().at(-1)).toMatchObject({ type: "exit", code: 2, message: "The shell exited with status 2." });
    expect(s.manager.get(t.id)).toBeUndefined();
  });
});

describe("terminal websocket checks", () => {
  it("accepts only the hub's own Origin", () => {
    expect(hubOrigin("http://127.0.0.1:8000", "127.0.0.1:8000", undefined)).toBe(true);
    expect(hubOrigin("http://127.0.0.1:8001", "127.0.0.1:8000", undefined)).toBe(false);
    expect(hubOrigin("http://evil.example", "127.0.0.1:8000", undefined)).toBe(false);
    expect(hubOrigin(undefined, "127.0.0.1:8000", undefined)).toBe(false);
    expect(hubOrigin("null", "127.0.0.1:8000", undefined)).toBe(false);
    expect(hubOrigin("file://", "127.0.0.1:8000", undefined)).toBe(false);
    expect(hubOrigin("https://hub.example.org", "127.0.0.1:8000", "https://hub.example.org")).toBe(true);
    // Behind a proxy with a public URL, only that origin: not a user's host in subdomain mode.
    expect(hubOrigin("https://alice.users.example.org", "alice.users.example.org", "https://hub.example.org")).toBe(false);
    expect(hubOrigin("http://hub.example.org", "hub.example.org", "https://hub.example.org")).toBe(false);
  });

  it("reads the owner and server from the path", () => {
    expect(terminalPath("/hub/terminal/alice")).toEqual({ owner: "alice", server: "" });
    expect(terminalPath("/hub/terminal/alice/")).toEqual({ owner: "alice", server: "" });
    expect(terminalPath("/hub/terminal/alice/gpu")).toEqual({ owner: "alice", server: "gpu" });
    expect(terminalPath("/hub/terminal/alice/gpu/x")).toBeUndefined();
    expect(terminalPath("/hub/terminal/")).toBeUndefined();
    expect(terminalPath("/hub/terminal/%E0%A4%A")).toBeUndefined();
  });
});

describe("terminal units", () => {
  const spec = {
    unit: terminalUnit("al-ice", "0123456789abcdef"),
    slice: "slicehub-al\\x2dice.slice",
    uid: 1001,
    gid: 1001,
    home: "/home/jupyter-al-ice",
    shell: "/bin/bash",
    limits: { memory: "2G", cpu: 1.5, tasks: 100 },
    hardening: (parse('{"spawner": {"kind": "systemd"}}').spawner as SystemdSpawnerConfig).hardening,
    properties: { IOWeight: "50" },
    description: "slicehub terminal al-ice",
  };

  it("runs the login shell through systemd-run --pty in the user's slice with their limits and the hardening", () => {
    expect(spec.unit).toBe("slicehub-terminal-al\\x2dice-0123456789abcdef.service");
    const argv = terminalRunArgv(spec);
    expect(argv.slice(0, 5)).toEqual(["systemd-run", "--pty", "--quiet", "--collect", "--wait"]);
    expect(argv.slice(-3)).toEqual(["--", "/bin/bash", "-l"]);
    const props = argv.flatMap((a, i) => (argv[i - 1] === "-p" ? [a] : []));
    expect(props).toEqual(expect.arrayContaining(["IOWeight=50", "MemoryMax=2G", "CPUQuota=150%", "TasksMax=100", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/home/jupyter-al-ice", "PrivateTmp=yes"]));
    expect(argv).toEqual(expect.arrayContaining(["--slice", spec.slice, "--uid", "1001", "--gid", "1001", "--unit", spec.unit]));
  });

  it("refuses odd shells and homes rather than quote them", () => {
    expect(() => terminalRunArgv({ ...spec, shell: "/bin/sh -c evil" })).toThrow(/shell/);
    expect(() => terminalRunArgv({ ...spec, shell: "bash" })).toThrow(/shell/);
    expect(() => terminalRunArgv({ ...spec, home: "/home/a b" })).toThrow(/home/);
    expect(() => terminalUnit("alice", "../x")).toThrow();
    expect(usableShell("/usr/sbin/nologin")).toBe(false);
    expect(usableShell("/bin/false")).toBe(false);
    expect(usableShell("")).toBe(false);
    expect(usableShell("/bin/zsh")).toBe(true);
  });

  it("has helper ops that take only an id, sizes and names", () => {
    expect(HelperRequest.safeParse({ op: "terminal-open", id: 1, user: "alice", server: "", profile: "", cols: 80, rows: 24 }).success).toBe(true);
    expect(HelperRequest.safeParse({ op: "terminal-open", id: 1, user: "alice", server: "", profile: "", cols: 80, rows: 24, shell: "/bin/sh" }).success).toBe(false);
    expect(HelperRequest.safeParse({ op: "terminal-open", id: 1, user: "../root", server: "", profile: "", cols: 80, rows: 24 }).success).toBe(false);
    expect(HelperRequest.safeParse({ op: "terminal-resize", id: 1, terminal: "0123456789abcdef", cols: 5000, rows: 24 }).success).toBe(false);
    expect(HelperRequest.safeParse({ op: "terminal-close", id: 1, terminal: "/etc/passwd" }).success).toBe(false);
    expect(HelperRequest.safeParse({ op: "terminal-list", id: 1 }).success).toBe(true);
  });
});

describe("terminal bytes", () => {
  it("keeps the last bytes of output in the scrollback ring", () => {
    const ring = new Scrollback(10);
    ring.push(Buffer.from("hello "));
    ring.push(Buffer.from("world!"));
    expect(ring.contents().toString()).toBe("llo world!");
    ring.push(Buffer.from("0123456789abc"));
    expect(ring.contents().toString()).toBe("3456789abc");
  });

  it("frames output and the exit on the helper's socket, however the stream is cut", () => {
    const got: [number, string][] = [];
    const reader = new FrameReader((type, payload) => got.push([type, payload.toString()]));
    const stream = Buffer.concat([frame(FRAME_OUTPUT, Buffer.from("héllo")), frame(FRAME_OUTPUT, Buffer.alloc(0)), frame(FRAME_EXIT, Buffer.from('{"code":0,"signal":0}'))]);
    for (const byte of stream) reader.push(Buffer.from([byte]));
    expect(got).toEqual([
      [FRAME_OUTPUT, "héllo"],
      [FRAME_OUTPUT, ""],
      [FRAME_EXIT, '{"code":0,"signal":0}'],
    ]);
    expect(() => new FrameReader(() => undefined).push(Buffer.from([9, 0, 0, 0, 1, 0]))).toThrow(/malformed/);
  });

  it("clamps window sizes", () => {
    expect(clampSize(80, 24)).toEqual({ cols: 80, rows: 24 });
    expect(clampSize(0, 1e9)).toEqual({ cols: 2, rows: 500 });
    expect(clampSize(Number.NaN, 10.7)).toEqual({ cols: 24, rows: 10 });
  });
});
