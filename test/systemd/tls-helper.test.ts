// The privileged helper's tls-read (src/tls.ts, spawners/privileged/helper.ts): it hands over the certificate and
// key that its own reading of the config names, root-only files included, and nothing else: a message cannot
// name a path, a config without https gets a refusal. Runs the helper as a child, as root, outside systemd.
import { type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { haveOpenssl, TestCa } from "../e2e/tls-certs.js";
import { forkHelper } from "./helper-process.js";

describe.skipIf(process.getuid?.() !== 0 || !haveOpenssl)("privileged helper: tls-read", () => {
  let dir: string;
  let helper: ChildProcess;
  let nextId = 1;
  const output: string[] = [];
  let ca: TestCa;

  const ask = (msg: Record<string, unknown>): Promise<{ ok: boolean; error?: string; result?: unknown }> => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(msg)}: ${output.join("")}`)), 10_000);
      const onMessage = (m: { type: string; id: number; ok: boolean; error?: string; result?: unknown }) => {
        if (m.type !== "result" || (m.id !== id && m.id !== -1)) return;
        clearTimeout(timer);
        helper.off("message", onMessage);
        resolve(m);
      };
      helper.on("message", onMessage);
      helper.send({ ...msg, id });
    });
  };
  const writeConfig = (tls?: object) =>
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        listen: tls ? "https://127.0.0.1:18998" : "http://127.0.0.1:18998",
        state_dir: join(dir, "state"),
        ...(tls ? { tls } : {}),
        spawner: { kind: "systemd", hooks_dir: join(dir, "hooks"), unix_users: { prefix: "stz-" } },
      }),
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "slicehub-tls-helper-"));
    ca = TestCa.create(join(dir, "ca"));
    writeConfig();
    helper = await forkHelper(join(dir, "config.json"), output);
  }, 30_000);
  afterAll(() => {
    helper?.disconnect();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("refuses while the config has no https listener, and any message that names a file", async () => {
    expect(await ask({ op: "tls-read" })).toMatchObject({ ok: false, error: "tls.cert_file and tls.key_file are not set" });
    expect(await ask({ op: "tls-read", path: "/etc/shadow" })).toMatchObject({ ok: false, error: "malformed request" });
    expect(await ask({ op: "tls-read", cert_file: "/etc/shadow", key_file: "/etc/shadow" })).toMatchObject({ ok: false, error: "malformed request" });
  });

  it("reads the root-only pair its own config names, re-read at each request", async () => {
    const a = ca.leaf("a", "6001");
    chmodSync(a.key, 0o600);
    writeConfig({ cert_file: a.cert, key_file: a.key });
    const first = await ask({ op: "tls-read" });
    expect(first.ok).toBe(true);
    expect(first.result).toEqual({ cert: readFileSync(a.cert, "utf8"), key: readFileSync(a.key, "utf8") });
    const b = ca.leaf("b", "6002");
    writeConfig({ cert_file: b.cert, key_file: b.key });
    expect((await ask({ op: "tls-read" })).result).toEqual({ cert: readFileSync(b.cert, "utf8"), key: readFileSync(b.key, "utf8") });
    // A file it cannot read is an error that names it, not a crash.
    writeConfig({ cert_file: b.cert, key_file: join(dir, "gone.key") });
    const gone = await ask({ op: "tls-read" });
    expect(gone.ok).toBe(false);
    expect(gone.error).toMatch(/ENOENT.*gone\.key/);
  });
});
