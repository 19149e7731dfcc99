// RBAC scopes as the single-user server and the hub resolve them (spec §2.3, §4.3, §7.1): expansion to
// sub-scopes with the filter kept, filter hierarchy (unfiltered ⊇ !user= ⊇ !server=), and a token never
// holding more than its owner holds now.
import { describe, expect, it } from "vitest";
import { expandScopes, hasScope, roleScopes, scopeUsers, serverTokenScopes, tokenScopes, userScopes } from "../../src/scopes.js";

const set = (...s: string[]) => expandScopes(s);

describe("expandScopes", () => {
  it("adds sub-scopes transitively and keeps the filter on each", () => {
    const e = set("admin:users!user=alice");
    for (const s of ["users", "delete:users", "admin:auth_state", "read:roles:users", "read:users", "users:activity", "read:users:name", "read:users:groups", "read:users:activity"]) {
      expect(e.has(`${s}!user=alice`), s).toBe(true);
    }
    expect(e.has("read:users")).toBe(false); // never widens to unfiltered
    expect([...e].every((s) => s.endsWith("!user=alice"))).toBe(true);
  });

  it("knows the implications the culler's scopes rely on", () => {
    const culler = set("list:users", "read:users:activity", "read:servers", "delete:servers");
    expect(culler.has("read:users:name")).toBe(true); // implied by list:users and read:servers
    expect(culler.has("read:users")).toBe(false);
    expect(culler.has("admin:server_state")).toBe(false);
    expect(set("servers").has("delete:servers")).toBe(true);
    expect(set("admin:servers").has("admin:server_state")).toBe(true);
    expect(set("tokens!user=bob").has("read:tokens!user=bob")).toBe(true);
  });

  it("leaves unknown scopes alone and is idempotent", () => {
    expect([...set("custom:thing!user=a")]).toEqual(["custom:thing!user=a"]);
    const once = set(...userScopes("alice"));
    expect(expandScopes(once)).toEqual(once);
  });
});

describe("hasScope and the filter hierarchy (spec §2.3)", () => {
  it("unfiltered covers every user and server", () => {
    const held = set("access:servers");
    expect(hasScope(held, "access:servers")).toBe(true);
    expect(hasScope(held, "access:servers", { server: "alice/" })).toBe(true);
    expect(hasScope(held, "access:servers", { server: "bob/foo" })).toBe(true);
    expect(hasScope(held, "access:servers", { user: "carol" })).toBe(true);
  });

  it("!user=alice covers alice's default and named servers", () => {
    const held = set("access:servers!user=alice");
    expect(hasScope(held, "access:servers", { server: "alice/" })).toBe(true);
    expect(hasScope(held, "access:servers", { server: "alice/foo" })).toBe(true);
    expect(hasScope(held, "access:servers", { user: "alice" })).toBe(true);
    expect(hasScope(held, "access:servers")).toBe(false); // not everywhere
    expect(hasScope(held, "access:servers", { server: "bob/" })).toBe(false);
  });

  it("!server=alice/ matches only itself", () => {
    const held = set("access:servers!server=alice/");
    expect(hasScope(held, "access:servers", { server: "alice/" })).toBe(true);
    expect(hasScope(held, "access:servers", { server: "alice/foo" })).toBe(false);
    expect(hasScope(held, "access:servers", { user: "alice" })).toBe(false);
    expect(hasScope(held, "access:servers")).toBe(false);
  });

  it("names are compared whole: alicex is not alice, and neither is a prefix of the other", () => {
    expect(hasScope(set("access:servers!user=alicex"), "access:servers", { server: "alice/" })).toBe(false);
    expect(hasScope(set("access:servers!user=alicex"), "access:servers", { user: "alice" })).toBe(false);
    expect(hasScope(set("access:servers!user=alice"), "access:servers", { server: "alicex/" })).toBe(false);
    expect(hasScope(set("access:servers!user=alice"), "access:servers", { user: "alicex" })).toBe(false);
    expect(hasScope(set("access:servers!server=alice/"), "access:servers", { server: "alicex/" })).toBe(false);
    expect(hasScope(set("access:servers!server=alice/f"), "access:servers", { server: "alice/foo" })).toBe(false);
  });

  it("a scope does not stand in for a different one", () => {
    // The spec's refused case: only read:users:name does not grant access.
    expect(hasScope(set("read:users:name!user=alice"), "access:servers", { server: "alice/" })).toBe(false);
    expect(hasScope(set("read:servers"), "delete:servers", { server: "alice/" })).toBe(false);
  });

  it("sub-scopes are granted through their parents with the filter", () => {
    expect(hasScope(set("servers!user=alice"), "delete:servers", { server: "alice/foo" })).toBe(true);
    expect(hasScope(set("admin:users"), "users:activity", { user: "bob" })).toBe(true);
  });
});

describe("scopeUsers", () => {
  it("is 'all' for an unfiltered scope and the named users otherwise", () => {
    expect(scopeUsers(set("list:users"), "list:users")).toBe("all");
    expect(scopeUsers(set("list:users!user=alice", "list:users!user=bob"), "list:users")).toEqual(new Set(["alice", "bob"]));
    expect(scopeUsers(set("read:users!user=alice"), "list:users")).toEqual(new Set());
  });
});

describe("role and server-token scopes", () => {
  it("a plain user holds rights over themselves only; an admin holds them everywhere", () => {
    const alice = expandScopes(roleScopes({ name: "alice", admin: 0 }));
    expect(hasScope(alice, "servers", { server: "alice/foo" })).toBe(true);
    expect(hasScope(alice, "servers", { server: "bob/" })).toBe(false);
    expect(hasScope(alice, "admin:users")).toBe(false);
    const root = expandScopes(roleScopes({ name: "root", admin: 1 }));
    expect(hasScope(root, "delete:users", { user: "bob" })).toBe(true);
    expect(hasScope(root, "admin:server_state", { user: "bob" })).toBe(true);
    expect(hasScope(root, "list:users")).toBe(true);
  });

  it("the server token has activity for its user and access to exactly its server (spec §7.1)", () => {
    const s = serverTokenScopes("alice", "alice/");
    expect(s).toContain("users:activity!user=alice");
    expect(s).toContain("access:servers!server=alice/");
    const held = expandScopes(s);
    expect(hasScope(held, "users:activity", { user: "alice" })).toBe(true);
    expect(hasScope(held, "access:servers", { server: "alice/foo" })).toBe(false);
    expect(hasScope(held, "users:activity", { user: "bob" })).toBe(false);
    // Concrete names only: the single-user server cannot resolve a bare `!user`.
    expect(s.every((x) => /!(user|server)=[^!]+$/.test(x))).toBe(true);
  });
});

describe("tokenScopes: a token never holds more than its owner holds now", () => {
  const admin = { name: "root", admin: 1 };
  const demoted = { name: "root", admin: 0 };

  it("inherit follows the owner's current role: demoting an admin takes admin scopes from their tokens", () => {
    expect(hasScope(tokenScopes(["inherit"], admin), "admin:users")).toBe(true);
    const after = tokenScopes(["inherit"], demoted);
    expect(hasScope(after, "admin:users")).toBe(false);
    expect(hasScope(after, "list:users")).toBe(false);
    expect(hasScope(after, "access:servers", { server: "bob/" })).toBe(false);
    expect(hasScope(after, "servers", { server: "root/" })).toBe(true); // own rights stay
  });

  it("explicit admin scopes are dropped once the owner is demoted", () => {
    const stored = ["admin:users", "list:users", "read:servers", "access:servers!user=root"];
    const before = tokenScopes(stored, admin);
    expect(hasScope(before, "admin:users")).toBe(true);
    expect(hasScope(before, "read:servers", { user: "bob" })).toBe(true);
    const after = tokenScopes(stored, demoted);
    expect(hasScope(after, "admin:users")).toBe(false);
    expect(hasScope(after, "list:users")).toBe(false);
    expect(hasScope(after, "read:servers", { user: "bob" })).toBe(false);
    expect(after.has("access:servers!user=root")).toBe(true);
  });

  it("keeps a narrower scope the owner covers and drops one about someone else", () => {
    const alice = { name: "alice", admin: 0 };
    const t = tokenScopes(["access:servers!server=alice/foo", "read:users!user=bob", "read:users:name!user=alice"], alice);
    expect(t.has("access:servers!server=alice/foo")).toBe(true);
    expect(t.has("read:users:name!user=alice")).toBe(true);
    expect([...t].some((s) => s.includes("bob"))).toBe(false);
  });

  it("a token asking for nothing holds nothing", () => {
    expect(tokenScopes([], admin).size).toBe(0);
  });
});
