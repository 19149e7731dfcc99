// Conformance, §2.3, §7.1: GET /hub/api/user.
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { alice, cliToken, expectApiError, req, tokens } from "./hub.js";

describe("GET /hub/api/user (§2.3, §7.1)", () => {
  it("accepts `token` and `Bearer` in any case", async () => {
    for (const scheme of ["token", "Token", "TOKEN", "bearer", "Bearer", "BEARER"]) {
      const r = await req("/hub/api/user", { headers: { authorization: `${scheme} ${tokens.alice}` } });
      expect(r.status, scheme).toBe(200);
      expect(r.json.name).toBe("alice");
    }
  });

  it("returns a model with name, kind, admin, groups, session_id and expanded, concrete scopes", async () => {
    const r = await req("/hub/api/user", { token: tokens.alice });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ kind: "user", name: "alice", admin: false, groups: [], session_id: null });
    const scopes = r.json.scopes as string[];
    expect(scopes).toEqual([...scopes].sort());
    expect(scopes).toEqual(expect.arrayContaining(["access:servers!user=alice", "users:activity!user=alice", "read:users:name!user=alice", "servers!user=alice"]));
    // Expanded: sub-scopes are listed, and every filter names someone (never a bare `!user`).
    expect(scopes).toContain("read:users:activity!user=alice");
    for (const s of scopes) expect(s).toMatch(/^[a-z:_]+(!(user|server)=[^!\s]+)?$/);
    expect(scopes.some((s) => !s.includes("!"))).toBe(false); // a plain user holds nothing unfiltered
  });

  it("an admin's model says admin and holds unfiltered scopes", async () => {
    const r = await req("/hub/api/user", { token: tokens.admin });
    expect(r.json).toMatchObject({ name: "admin", admin: true });
    expect(r.json.scopes).toEqual(expect.arrayContaining(["admin:users", "list:users", "access:servers"]));
  });

  it("cookie-authenticated (with the session's CSRF token, as JupyterHub >= 4.1 wants on every method), session_id is the browser's jupyterhub-session-id", async () => {
    expect((await alice.request("/hub/api/user")).status).toBe(403);
    const res = await alice.request("/hub/api/user", { headers: { "x-xsrftoken": await alice.csrf() } });
    expect(res.status).toBe(200);
    const model = (await res.json()) as { name: string; session_id: string };
    expect(model.name).toBe("alice");
    expect(model.session_id).toMatch(/^[0-9a-f]{32}$/);
    expect(model.session_id).toBe(alice.cookie("jupyterhub-session-id"));
  });

  it("answers exactly 403 {status, message} for no credentials and unknown or malformed tokens", async () => {
    expectApiError(await req("/hub/api/user"), 403);
    expectApiError(await req("/hub/api/user", { token: "no-such-token" }), 403);
    expectApiError(await req("/hub/api/user", { headers: { authorization: `Basic ${Buffer.from("alice:x").toString("base64")}` } }), 403);
    expectApiError(await req("/hub/api/user", { headers: { authorization: `token ${tokens.alice} extra` } }), 403);
    // The hub API does not take ?token= (only single-user servers do, §7.4).
    expectApiError(await req(`/hub/api/user?token=${tokens.alice}`), 403);
  });

  it("answers 403 for an expired token", async () => {
    const t = await cliToken("alice", "--expires-in", "1");
    expect((await req("/hub/api/user", { token: t })).status).toBe(200);
    await sleep(1100);
    expectApiError(await req("/hub/api/user", { token: t }), 403);
  });
});
