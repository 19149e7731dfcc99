// Subdomain mode's host names (src/names.ts): every (user, server) pair gets a DNS label of its own, the same
// one every time, and no two pairs share one, however their names are chosen.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { base32, nameLabel, serverHostname, serverLabel, serverOrigin, serverUrl } from "../../src/names.js";

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

// Python: base64.b32encode(b).decode().lower().rstrip("=")
const pyBase32: [string, string][] = [
  ["", ""],
  ["f", "my"],
  ["fo", "mzxq"],
  ["foo", "mzxw6"],
  ["foob", "mzxw6yq"],
  ["fooba", "mzxw6ytb"],
  ["foobar", "mzxw6ytboi"],
];

describe("base32 (RFC 4648, lower case, unpadded)", () => {
  it("matches the RFC's test vectors", () => {
    for (const [plain, encoded] of pyBase32) expect(base32(Buffer.from(plain))).toBe(encoded);
  });
});

describe("nameLabel", () => {
  it("keeps a name that is already a safe label", () => {
    for (const n of ["alice", "bob-smith", "a", "0", "a1-b2", "xa", "x", "xn", "x0-y", "a".repeat(63)]) expect(nameLabel(n)).toBe(n);
  });

  it("encodes names with '.', '_', '--', a trailing '-', a leading 'x-' or 64 characters", () => {
    expect(nameLabel("alice.x")).toBe(`x-${base32(Buffer.from("alice.x"))}`);
    expect(nameLabel("alice.x")).toBe("x-mfwgsy3ffz4a");
    for (const n of ["a_b", "a--b", "xn--abc", "alice-", "x-alice", "x-mfwgsy3ffz4a", "a".repeat(64)]) {
      const l = nameLabel(n);
      expect(l, n).not.toBe(n);
      expect(l, n).toMatch(/^x-/);
      expect(l, n).toMatch(DNS_LABEL);
    }
  });

  it("hashes names too long to encode (over 38 bytes) into a 55-character x-0 label", () => {
    const name = `${"a".repeat(38)}.`;
    const expected = `x-0${base32(createHash("sha256").update(`name\0${name}`).digest())}`;
    expect(nameLabel(name)).toBe(expected);
    expect(expected).toHaveLength(55);
    expect(nameLabel(`${"a".repeat(37)}.`)).toMatch(/^x-[a-z2-7]{61}$/);
  });
});

describe("serverLabel", () => {
  it("is the user's label for the default server and <server>--<user> for a named one", () => {
    expect(serverLabel("alice", "")).toBe("alice");
    expect(serverLabel("alice", "foo")).toBe("foo--alice");
    expect(serverLabel("alice.x", "my_lab")).toBe(`${nameLabel("my_lab")}--${nameLabel("alice.x")}`);
  });

  it("hashes a joined label longer than 63", () => {
    const l = serverLabel("a".repeat(40), "b".repeat(30));
    expect(l).toMatch(/^x-0[a-z2-7]{52}$/);
    expect(l).not.toBe(nameLabel("a".repeat(40)));
  });
});

describe("no two servers share a host name", () => {
  // Pairs chosen to collide under naive schemes: '.' or '_' mapped to '-', a joiner of '-' or '--', names that
  // look like encodings or hashes, the 38/39-byte and 63/64-character edges, named versus default servers.
  const users = [
    "alice", "alice-x", "alice.x", "alice_x", "alice--x", "alice-", "x-alice", "x-mfwgsy3ffz4a", "mfwgsy3ffz4a", "x", "x-", "x-0",
    "foo--alice", "foo-alice", "foo", "a", "b", "a-b", "a--b", "a.b", "xn--a", "0", "00", "x0-a",
    "a".repeat(37) + ".", "a".repeat(38) + ".", "a".repeat(39), "a".repeat(63), "a".repeat(64), "b".repeat(64), "a".repeat(62) + "-",
  ];
  const servers = ["", "foo", "foo-", "foo.", "alice", "x-foo", "x", "b", "a-b", "a--b", "a.b", "lab", "c".repeat(20), "c".repeat(64), "d".repeat(64)];

  it("gives every one of the pairs a valid label, all distinct", () => {
    const seen = new Map<string, string>();
    for (const u of users) {
      for (const s of servers) {
        const label = serverLabel(u, s);
        expect(label, `${u}/${s}`).toMatch(DNS_LABEL);
        const other = seen.get(label);
        expect(other, `${u}/${s} and ${other} share ${label}`).toBeUndefined();
        seen.set(label, `${u}/${s}`);
      }
    }
    expect(seen.size).toBe(users.length * servers.length);
  });

  it("never puts '--' in a single name's label, and never ends one with '-', so a joined label splits one way", () => {
    for (const n of [...users, ...servers.filter(Boolean)]) {
      expect(nameLabel(n)).not.toContain("--");
      expect(nameLabel(n)).not.toMatch(/-$/);
    }
  });

  it("is the same every time (a restarted hub routes adopted servers to the same hosts)", () => {
    expect(serverLabel("alice.x", "lab")).toBe(serverLabel("alice.x", "lab"));
    expect(nameLabel("a".repeat(64))).toBe(nameLabel("a".repeat(64)));
  });
});

describe("host names, origins and URLs", () => {
  it("puts the label under subdomain_host, with its scheme and port; a path in path mode", () => {
    expect(serverHostname("https://users.example.org", "alice", "")).toBe("alice.users.example.org");
    expect(serverHostname("http://users.localhost:8000", "alice", "foo")).toBe("foo--alice.users.localhost");
    expect(serverOrigin("http://users.localhost:8000", "alice", "")).toBe("http://alice.users.localhost:8000");
    expect(serverUrl("https://users.example.org", "alice", "", "oauth_callback")).toBe("https://alice.users.example.org/user/alice/oauth_callback");
    expect(serverUrl("https://users.example.org", "alice.x", "foo")).toBe("https://foo--x-mfwgsy3ffz4a.users.example.org/user/alice.x/foo/");
    expect(serverUrl(undefined, "alice", "foo", "tree")).toBe("/user/alice/foo/tree");
  });
});
