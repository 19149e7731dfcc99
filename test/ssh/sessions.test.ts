// The web process's side of SSH sessions (src/ssh/sessions.ts): what it asks the privileged helper, and that
// under the local spawner (no helper, no managed accounts) every call is a no-op.
import { describe, expect, it } from "vitest";
import type { HelperClient } from "../../spawners/privileged/client.js";
import { log } from "../../src/log.js";
import { SshSessions } from "../../src/ssh/sessions.js";

function fakeHelper(answers: Record<string, (req: Record<string, unknown>) => unknown>) {
  const asked: Record<string, unknown>[] = [];
  const helper = {
    request: async (req: Record<string, unknown>) => {
      asked.push(req);
      return answers[req.op as string]!(req);
    },
  } as unknown as HelperClient;
  return { helper, asked };
}

describe("SshSessions", () => {
  it("does nothing without the helper (local spawner)", async () => {
    const s = new SshSessions(undefined, log);
    expect(s.available).toBe(false);
    expect(await s.end("alice")).toBe(0);
    expect(await s.usage(["alice"])).toEqual({});
    await expect(s.endAll(["alice"])).resolves.toBeUndefined();
    await expect(s.prepare("alice")).resolves.toBeUndefined();
    await expect(s.applyLimits()).resolves.toBeUndefined();
    expect(await s.pollLogins(() => 1)).toBe(0);
  });

  it("names hub users only, and ends sessions only of those who have some", async () => {
    const { helper, asked } = fakeHelper({
      "ssh-sessions": () => ({ bob: { sessions: 2, memoryBytes: 1, cpuSeconds: 0 } }),
      "ssh-end": () => ({ sessions: 2 }),
    });
    const s = new SshSessions(helper, log);
    await s.endAll(["alice", "bob"]);
    expect(asked).toEqual([
      { op: "ssh-sessions", users: ["alice", "bob"] },
      { op: "ssh-end", user: "bob" },
    ]);
    await s.endAll([]);
    expect(asked).toHaveLength(2);
  });

  it("resumes sshd's login lines where the last poll stopped", async () => {
    let n = 0;
    const { helper, asked } = fakeHelper({
      "ssh-logins": () => ({ entries: n++ ? [] : [{ message: "Accepted publickey for x", at: 1_700_000_000_000 }], cursor: `c${n}` }),
    });
    const s = new SshSessions(helper, log);
    const seen: { message: string; at: Date }[][] = [];
    expect(await s.pollLogins((e) => (seen.push(e), e.length))).toBe(1);
    expect(await s.pollLogins((e) => (seen.push(e), e.length))).toBe(0);
    expect(asked).toEqual([{ op: "ssh-logins" }, { op: "ssh-logins", cursor: "c1" }]);
    expect(seen).toEqual([[{ message: "Accepted publickey for x", at: new Date(1_700_000_000_000) }]]);
  });
});
