// Conformance, the tokens API.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { expectApiError, req, TIMESTAMP, tokens } from "./hub.js";

describe("tokens API", () => {
  it("creates a token (201, value shown once), lists and gets it without value or hash, revokes it (204)", async () => {
    const made = await req("/hub/api/users/alice/tokens", { method: "POST", token: tokens.alice, body: { note: "for a script", expires_in: 3600 } });
    expect(made.status, made.text).toBe(201);
    const { token, id } = made.json as { token: string; id: string };
    expect(token).toMatch(/^\S{20,}$/);
    expect(id).toMatch(/^a\d+$/);
    expect(made.json).toMatchObject({ user: "alice", note: "for a script" });
    expect(made.json.created).toMatch(TIMESTAMP);
    expect(made.json.expires_at).toMatch(TIMESTAMP);
    expect((await req("/hub/api/user", { token })).json.name).toBe("alice");

    const hash = createHash("sha256").update(token).digest("hex");
    const list = await req("/hub/api/users/alice/tokens", { token: tokens.alice });
    expect(list.status).toBe(200);
    const listed = list.json.api_tokens as Record<string, unknown>[];
    expect(listed.map((t) => t.id)).toContain(id);
    for (const t of listed) {
      expect(t).not.toHaveProperty("token");
      expect(t).not.toHaveProperty("hash");
    }
    for (const secret of [token, hash, tokens.alice, createHash("sha256").update(tokens.alice).digest("hex")]) expect(list.text).not.toContain(secret);

    const one = await req(`/hub/api/users/alice/tokens/${id}`, { token: tokens.alice });
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({ id, note: "for a script" });
    expect(one.text).not.toContain(token);
    expect(one.text).not.toContain(hash);

    const revoked = await req(`/hub/api/users/alice/tokens/${id}`, { method: "DELETE", token: tokens.alice });
    expect(revoked.status).toBe(204);
    expectApiError(await req("/hub/api/user", { token }), 403);
    expectApiError(await req(`/hub/api/users/alice/tokens/${id}`, { token: tokens.alice }), 404);
  });

  it("refuses scopes the owner does not hold (403), grants ones they do, limited to exactly those", async () => {
    const ask = (scopes: string[]) => req("/hub/api/users/alice/tokens", { method: "POST", token: tokens.alice, body: { scopes } });
    expectApiError(await ask(["admin:users"]), 403);
    expectApiError(await ask(["read:users!user=bob"]), 403);
    expectApiError(await ask(["read:users:name!user=alice", "access:servers"]), 403);
    const ok = await ask(["read:users:name!user=alice"]);
    expect(ok.status, ok.text).toBe(201);
    const me = await req("/hub/api/user", { token: ok.json.token });
    expect(me.json.scopes).toEqual(["read:users:name!user=alice"]);
  });

  it("one user cannot list, create or revoke another's tokens", async () => {
    expectApiError(await req("/hub/api/users/alice/tokens", { token: tokens.bob }), 403);
    expectApiError(await req("/hub/api/users/alice/tokens", { method: "POST", token: tokens.bob, body: {} }), 403);
    const mine = (await req("/hub/api/users/alice/tokens", { token: tokens.alice })).json.api_tokens[0].id as string;
    expectApiError(await req(`/hub/api/users/alice/tokens/${mine}`, { method: "DELETE", token: tokens.bob }), 403);
    // …and cannot reach it by putting their own name in the path either.
    expectApiError(await req(`/hub/api/users/bob/tokens/${mine}`, { method: "DELETE", token: tokens.bob }), 404);
  });
});
