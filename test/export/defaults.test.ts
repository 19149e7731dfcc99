// The export leaves a key out only where the chart's default (values.yaml of z2jh 4.4.0) already does what
// slicehub does, and writes every key whose chart default differs from slicehub's, also for a config at
// slicehub's defaults.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.js";
import { OVERRIDDEN_CHART_DEFAULTS, RELIED_CHART_DEFAULTS } from "../../src/z2jh/mapping.js";
import { chartData, exportOf, getPath, loadFixture, REPO } from "./helpers.js";

// A config at slicehub's defaults apart from what OIDC needs.
const minimal = ConfigSchema.parse({ auth: { kind: "oidc", client_id: "x" }, spawner: { kind: "systemd" } });

describe("chart defaults", () => {
  it.each(RELIED_CHART_DEFAULTS.map((d) => [d.path, d]))("relied on: %s", (_p, d) => {
    expect(getPath(chartData().values, d.path), d.why).toEqual(d.value);
  });

  it("relied-on keys are left out for a config at slicehub's defaults", () => {
    const values = exportOf(minimal).values;
    for (const d of RELIED_CHART_DEFAULTS) expect(getPath(values, d.path), d.path).toBeUndefined();
  });

  it.each(OVERRIDDEN_CHART_DEFAULTS.map((d) => [d.path, d]))("differs from slicehub's and is always written: %s", (_p, d) => {
    expect(getPath(chartData().values, d.path)).toEqual(d.chart);
    expect(d.chart).not.toEqual(d.slicehub);
    expect(getPath(exportOf(minimal).values, d.path)).toEqual(d.slicehub);
  });

  it("slicehub's side of that list is slicehub's real default", () => {
    expect(minimal.admin_access).toBe(false);
    expect(minimal.cull.enabled).toBe(false);
    expect(minimal.cull.every_s).toBe(60);
    expect(minimal.cull.admins).toBe(false);
    expect(minimal.spawner.start_timeout_s).toBe(120);
    expect(minimal.spawner.cmd).toEqual([getPath(chartData().values, "singleuser.cmd")]);
  });

  it("culling is written in full when off too (the chart would cull)", () => {
    const v = exportOf(minimal).values;
    expect(v.cull).toEqual({ enabled: false, timeout: 3600, every: 60, maxAge: 0, adminUsers: false, users: false });
    expect((v.hub as Record<string, unknown>).allowNamedServers).toBe(false);
  });

  it("a non-default command is written, a host path as the name on the image's PATH", () => {
    const cfg = loadFixture(join(REPO, "examples", "single-user-laptop.json"));
    expect(getPath(exportOf(cfg).values, "singleuser.cmd")).toEqual(["jupyter-labhub"]);
    const edge = exportOf(loadFixture(join(import.meta.dirname, "fixtures", "edge-values.json")));
    expect(getPath(edge.values, "singleuser.cmd")).toEqual(["jupyterhub-singleuser", "--KernelManager.autorestart=False"]);
    expect(edge.text).toContain("/opt/conda/bin/jupyterhub-singleuser is a path on this host");
  });
});
