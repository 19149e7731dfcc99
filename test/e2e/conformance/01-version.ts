// Conformance, §2.1, §4.2: the version endpoint.
import { describe, expect, it } from "vitest";
import { alice, expectApiError, req, tokens, VERSION } from "./hub.js";

describe("version endpoint (§2.1, §4.2)", () => {
  it("GET /hub/api and /hub/api/ answer 200 {version} with X-JupyterHub-Version, no auth needed", async () => {
    for (const path of ["/hub/api", "/hub/api/"]) {
      const r = await req(path);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toMatch(/^application\/json/);
      expect(r.json).toEqual({ version: VERSION });
      expect(r.headers.get("x-jupyterhub-version")).toBe(VERSION);
    }
  });

  it("every hub response carries the header: errors, redirects, pages, OAuth (streams: see §5.2 below)", async () => {
    // req() checks the header on every call; these are the odd corners.
    await req("/hub/api/nonexistent", { token: tokens.alice });
    await req("/hub/api/user");
    await req("/hub");
    await req("/");
    await req("/hub/login");
    await req("/hub/static/style.css");
    await req("/hub/api/oauth2/token", { method: "POST", raw: "{}", headers: { "content-type": "application/json" } });
    await req("/user/nobody/tree");
    await req("/user/nobody/api/x", { method: "POST" });
    await alice.request("/hub/api/oauth2/authorize?client_id=nope");
    await alice.request("/hub/home");
    await alice.request("/hub/no-such-page");
  });

  it("unknown API paths are a JSON 404", async () => {
    expectApiError(await req("/hub/api/nonexistent", { token: tokens.alice }), 404);
  });
});
