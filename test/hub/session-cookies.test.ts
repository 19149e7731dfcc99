// Cookie tossing on one origin: a Cookie header can carry a hub cookie's name several times. Every value is
// read (hono's getCookie returns one), and the preferred order is the last first.
import { describe, expect, it } from "vitest";
import { cookieValues, MAX_COOKIE_VALUES, preferredValues } from "../../src/hub/cookie-values.js";
import { isDocumentNavigation, isHubPage } from "../../src/hub/fetch-metadata.js";

describe("cookieValues", () => {
  it("returns every value of the name, in header order, and nothing of other names", () => {
    const header = "slicehub-session=tossed; other=1; slicehub-session=real;xslicehub-session=no; slicehub-session-x=no";
    expect(cookieValues(header, "slicehub-session")).toEqual(["tossed", "real"]);
    expect(cookieValues(header, "other")).toEqual(["1"]);
    expect(cookieValues(undefined, "slicehub-session")).toEqual([]);
    expect(cookieValues("", "slicehub-session")).toEqual([]);
  });

  it("trims spaces, drops quotes, decodes %-escapes and keeps a value with malformed ones as written", () => {
    expect(cookieValues(' a = " q " ;a=x%20y; a=%E0%A4%A; a=b=c', "a")).toEqual([" q ", "x y", "%E0%A4%A", "b=c"]);
  });

  it("ignores pairs without '=' and keeps empty values in place", () => {
    expect(cookieValues("a; a=; a=1", "a")).toEqual(["", "1"]);
  });
});

describe("preferredValues", () => {
  it("puts the last value first, and drops empty and over-long ones", () => {
    expect(preferredValues("s=first; s=; s=second; s=last", "s")).toEqual(["last", "second", "first"]);
    expect(preferredValues(`s=${"x".repeat(201)}; s=ok`, "s", 200)).toEqual(["ok"]);
  });

  it("considers only the last few of a header stuffed with copies", () => {
    const header = Array.from({ length: 100 }, (_, i) => `s=v${i}`).join("; ");
    const values = preferredValues(header, "s");
    expect(values).toHaveLength(MAX_COOKIE_VALUES);
    expect(values[0]).toBe("v99");
    expect(values.at(-1)).toBe(`v${100 - MAX_COOKIE_VALUES}`);
  });
});

describe("which requests are hub pages", () => {
  it("pages, OAuth's authorize step and the login callback are; the API, styles, images and CSP reports are not", () => {
    for (const p of ["/hub", "/hub/", "/hub/home", "/hub/token", "/hub/admin", "/hub/login", "/hub/logout", "/hub/oauth_callback", "/hub/spawn/alice", "/hub/user/alice/tree", "/hub/api/oauth2/authorize", "/hub/nothing-here"]) {
      expect(isHubPage(p), p).toBe(true);
    }
    for (const p of ["/hub/api", "/hub/api/", "/hub/api/user", "/hub/api/users/alice/server/progress", "/hub/api/oauth2/token", "/hub/static/style.css", "/hub/logo", "/hub/favicon.ico", "/hub/security/csp-report", "/user/alice/", "/hubx", "/"]) {
      expect(isHubPage(p), p).toBe(false);
    }
  });

  it("only a whole-window navigation counts as a document navigation", () => {
    expect(isDocumentNavigation({ dest: "document", mode: "navigate", site: "same-origin" })).toBe(true);
    expect(isDocumentNavigation({ dest: "document", mode: "navigate", site: "cross-site" })).toBe(true);
    for (const dest of ["iframe", "frame", "object", "embed", "empty", "script", "image", "fencedframe"]) {
      expect(isDocumentNavigation({ dest, mode: "navigate", site: "same-origin" }), dest).toBe(false);
    }
    expect(isDocumentNavigation({ dest: "document", mode: "cors", site: "same-origin" })).toBe(false);
    // A browser without Sec-Fetch-Dest: a navigation is the best it tells.
    expect(isDocumentNavigation({ dest: undefined, mode: "navigate", site: "same-origin" })).toBe(true);
    expect(isDocumentNavigation({ dest: undefined, mode: "cors", site: "same-origin" })).toBe(false);
  });
});
