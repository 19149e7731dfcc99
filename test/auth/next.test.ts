// safeNext: which next= targets a login or a redirect may send the browser to.
import { describe, expect, it } from "vitest";
import { MAX_NEXT_BYTES, safeNext } from "../../auth/next.js";

describe("safeNext", () => {
  it.each(["/hub/home", "/hub/home?x=1", "/hub/spawn/ada?a=b#c"])("keeps the same-site path %s", (next) => {
    expect(safeNext(next)).toBe(next);
  });

  it("keeps /user/… as it is (as JupyterHub 5; 3.0 sent it through /hub/user/…)", () => {
    expect(safeNext("/user/ada/lab?x=1")).toBe("/user/ada/lab?x=1");
  });

  it.each([undefined, null, "", "//evil.org", "https://evil.org", "/\\evil.org", "hub/home", "/a\nb", "/a\\b", "/a\u007fb", "/a\u0085b"])("falls back for %j", (next) => {
    expect(safeNext(next)).toBe("/hub/home");
    expect(safeNext(next, "/other")).toBe("/other");
  });

  it(`keeps a target of ${MAX_NEXT_BYTES} bytes and drops a longer one`, () => {
    const at = `/hub/home?q=${"a".repeat(MAX_NEXT_BYTES - "/hub/home?q=".length)}`;
    expect(at.length).toBe(MAX_NEXT_BYTES);
    expect(safeNext(at)).toBe(at);
    expect(safeNext(`${at}a`)).toBe("/hub/home");
    expect(safeNext(`/hub/home?q=${"a".repeat(100_000)}`)).toBe("/hub/home");
  });

  it("counts the cap in UTF-8 bytes, so a target of few but wide characters is dropped too", () => {
    const wide = `/hub/home?q=${"é".repeat(600)}`; // 612 characters, 1212 bytes
    expect(wide.length).toBeLessThan(MAX_NEXT_BYTES);
    expect(safeNext(wide)).toBe("/hub/home");
    expect(safeNext(`/hub/home?q=${"é".repeat(400)}`)).toBe(`/hub/home?q=${"é".repeat(400)}`);
  });
});
