import { describe, expect, it } from "vitest";
import { RouteTable } from "../../proxy/table.js";

function table(...prefixes: string[]): RouteTable {
  const t = new RouteTable();
  prefixes.forEach((prefix, i) => t.set({ prefix, target: `http://127.0.0.1:${10000 + i}`, serverId: i + 1 }));
  return t;
}

const prefixOf = (t: RouteTable, path: string) => t.lookup(path)?.prefix;

describe("RouteTable.lookup", () => {
  it("matches on path-segment boundaries only", () => {
    const t = table("/user/alice");
    expect(prefixOf(t, "/user/alice")).toBe("/user/alice");
    expect(prefixOf(t, "/user/alice/")).toBe("/user/alice");
    expect(prefixOf(t, "/user/alice/x")).toBe("/user/alice");
    expect(prefixOf(t, "/user/alice//x")).toBe("/user/alice");
    expect(prefixOf(t, "/user/alicex")).toBeUndefined();
    expect(prefixOf(t, "/user/alicex/tree")).toBeUndefined();
    expect(prefixOf(t, "/user/alic")).toBeUndefined();
    expect(prefixOf(t, "/user")).toBeUndefined();
    expect(prefixOf(t, "/")).toBeUndefined();
    expect(prefixOf(t, "")).toBeUndefined();
    expect(prefixOf(t, "/hub/user/alice")).toBeUndefined();
  });

  it("prefers the longest prefix (named servers)", () => {
    const t = table("/user/alice", "/user/alice/foo");
    expect(prefixOf(t, "/user/alice/foo/x")).toBe("/user/alice/foo");
    expect(prefixOf(t, "/user/alice/foo")).toBe("/user/alice/foo");
    expect(prefixOf(t, "/user/alice/foo/")).toBe("/user/alice/foo");
    expect(prefixOf(t, "/user/alice/foobar/x")).toBe("/user/alice");
    expect(prefixOf(t, "/user/alice/lab")).toBe("/user/alice");
    t.delete("/user/alice/foo");
    expect(prefixOf(t, "/user/alice/foo/x")).toBe("/user/alice");
  });

  it("compares escaped names as they appear in the path", () => {
    const t = table("/user/a%40b", "/user/a@b");
    expect(t.lookup("/user/a%40b/tree")?.serverId).toBe(1);
    expect(t.lookup("/user/a@b/tree")?.serverId).toBe(2);
    expect(prefixOf(t, "/user/a%40bc/tree")).toBeUndefined();
    expect(prefixOf(t, "/user/A%40b/tree")).toBeUndefined();
  });
});

describe("RouteTable", () => {
  it("sets, replaces, gets, lists and deletes routes", () => {
    const t = table("/user/alice", "/user/bob");
    expect(t.size).toBe(2);
    t.set({ prefix: "/user/alice", target: "http://127.0.0.1:1", serverId: 9 });
    expect(t.size).toBe(2);
    expect(t.get("/user/alice")).toEqual({ prefix: "/user/alice", target: "http://127.0.0.1:1", serverId: 9 });
    expect(t.get("/user/alice/x")).toBeUndefined();
    expect(t.list().map((r) => r.prefix).sort()).toEqual(["/user/alice", "/user/bob"]);
    expect(t.delete("/user/alice")).toBe(true);
    expect(t.delete("/user/alice")).toBe(false);
    expect(t.lookup("/user/alice/x")).toBeUndefined();
    expect(t.size).toBe(1);
  });

  it("refuses prefixes with a trailing slash or without a leading one", () => {
    const t = new RouteTable();
    expect(() => t.set({ prefix: "/user/alice/", target: "http://127.0.0.1:1", serverId: 1 })).toThrow(/trailing|end/);
    expect(() => t.set({ prefix: "user/alice", target: "http://127.0.0.1:1", serverId: 1 })).toThrow();
    expect(() => t.set({ prefix: "/", target: "http://127.0.0.1:1", serverId: 1 })).toThrow();
    expect(t.size).toBe(0);
  });
});
