// How user and server names are spelled in paths, client ids and scope filters (spec §0, §1.2, §7.5).
// Paths keep `@` and `~` literal (Python quote(name, safe="@~")); client ids and cookie names use
// quote(name) with only `/` safe, so `@` becomes %40. Redirect-URI comparison is an exact string compare,
// so these must agree everywhere.
import { describe, expect, it } from "vitest";
import { SERVER_NAME, USER_NAME, oauthClientId, pyQuote, routeKey, serverFilter, serverPrefix, urlName } from "../../src/names.js";

describe("pyQuote (Python's urllib.parse.quote)", () => {
  it("keeps unreserved characters and the safe set, percent-encodes the rest as upper-case UTF-8 bytes", () => {
    expect(pyQuote("AZaz09_.-~")).toBe("AZaz09_.-~");
    expect(pyQuote("a/b")).toBe("a/b"); // default safe is "/"
    expect(pyQuote("a/b", "")).toBe("a%2Fb");
    expect(pyQuote("a@b")).toBe("a%40b");
    expect(pyQuote("a b+c")).toBe("a%20b%2Bc");
    expect(pyQuote("é")).toBe("%C3%A9");
    expect(pyQuote("?#%&=")).toBe("%3F%23%25%26%3D");
    expect(pyQuote("a@b", "@")).toBe("a@b");
  });
});

describe("urlName (paths: safe '@~')", () => {
  it("leaves @ and ~ literal and encodes everything else that needs it, including '/'", () => {
    expect(urlName("alice@example.org")).toBe("alice@example.org");
    expect(urlName("a~b")).toBe("a~b");
    expect(urlName("a b")).toBe("a%20b");
    expect(urlName("a/b")).toBe("a%2Fb");
  });

  it("builds server prefixes, route keys and progress-style paths", () => {
    expect(serverPrefix("alice", "")).toBe("/user/alice/");
    expect(serverPrefix("alice", "foo")).toBe("/user/alice/foo/");
    expect(serverPrefix("a@b.c", "")).toBe("/user/a@b.c/");
    expect(serverPrefix("a b", "x y")).toBe("/user/a%20b/x%20y/");
    expect(routeKey("alice", "")).toBe("/user/alice");
    expect(routeKey("alice", "foo")).toBe("/user/alice/foo");
  });
});

describe("oauthClientId (client ids and cookie names: quote with '/' safe)", () => {
  it("matches JupyterHub's jupyterhub-user-{q(name)} and joins a named server with ~", () => {
    expect(oauthClientId("alice", "")).toBe("jupyterhub-user-alice");
    expect(oauthClientId("alice", "foo")).toBe("jupyterhub-user-alice~foo");
    expect(oauthClientId("a@b.c", "")).toBe("jupyterhub-user-a%40b.c");
    expect(oauthClientId("a@b.c", "s@t")).toBe("jupyterhub-user-a%40b.c~s%40t");
    expect(oauthClientId("a b", "")).toBe("jupyterhub-user-a%20b");
  });

  it("gives no two (user, server) pairs the same id (JupyterHub's '-' made alice/foo and alice-foo's default collide)", () => {
    expect(oauthClientId("alice", "foo")).not.toBe(oauthClientId("alice-foo", ""));
    const names = ["a", "a-b", "b", "a-b-c", "b-c", "c", "a.b", "a_b"];
    const ids = new Set<string>();
    for (const u of names) for (const s of ["", ...names]) ids.add(oauthClientId(u, s));
    expect(ids.size).toBe(names.length * (names.length + 1));
  });
});

describe("serverFilter (the value of !server=)", () => {
  it("is user/ for the default server and user/name for a named one, unescaped", () => {
    expect(serverFilter("alice", "")).toBe("alice/");
    expect(serverFilter("alice", "foo")).toBe("alice/foo");
    expect(serverFilter("a@b.c", "")).toBe("a@b.c/");
  });
});

describe("accepted names", () => {
  it("allows only names that need no escaping anywhere", () => {
    for (const ok of ["alice", "a", "a.b", "a_b", "a-b", "0day", "x".repeat(64)]) expect(USER_NAME.test(ok), ok).toBe(true);
    for (const bad of ["", "Alice", "-a", ".a", "_a", "a b", "a/b", "a@b", "a%b", "a?b", "a#b", "é", "x".repeat(65)]) {
      expect(USER_NAME.test(bad), bad).toBe(false);
    }
    expect(SERVER_NAME.test("foo")).toBe(true);
    expect(SERVER_NAME.test("Foo")).toBe(false);
    expect(SERVER_NAME.test("")).toBe(false);
  });
});
