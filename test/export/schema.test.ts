// Every example config, every edge-case fixture and the starter config `slicehub install` writes, through
// `slicehub export z2jh` and the chart's own JSON Schema (z2jh 4.4.0), the way Helm checks values: merged onto
// the chart's defaults first.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfigText } from "../../src/config/load.js";
import { starterConfig } from "../../main/install.js";
import { chartData, exportOf, helmCoalesce, loadFixture, REPO, schemaErrors, unknownPaths, type JsonMap } from "./helpers.js";

const EXAMPLES = join(REPO, "examples");
const FIXTURES = join(import.meta.dirname, "fixtures");
const files = [
  ...readdirSync(EXAMPLES).filter((f) => f.endsWith(".json")).map((f) => join(EXAMPLES, f)),
  ...readdirSync(FIXTURES).filter((f) => f.endsWith(".json")).map((f) => join(FIXTURES, f)),
];

function check(values: JsonMap, text: string): void {
  expect(schemaErrors(values)).toEqual([]);
  expect(unknownPaths(values)).toEqual([]);
  // The text is what Helm reads: it must say exactly the same as the data.
  expect(parse(text)).toEqual(values);
}

describe("the chart's schema", () => {
  it("accepts the chart's own defaults (the validator and the merge are sound)", () => {
    expect(schemaErrors({})).toEqual([]);
  });

  it("rejects what it should (the validator is not toothless)", () => {
    expect(schemaErrors({ singleuser: { startTimeout: "soon" } } as JsonMap).join()).toMatch(/startTimeout/);
    expect(schemaErrors({ cull: { enabled: "yes" } } as JsonMap).join()).toMatch(/cull/);
    expect(schemaErrors({ hub: { nosuchkey: 1 } } as JsonMap).join()).toMatch(/additional/);
    expect(unknownPaths({ hub: { config: { JupyterHub: { x: 1 } } }, singleuser: { storage: { nope: 1 } } } as JsonMap)).toEqual([".singleuser.storage.nope"]);
  });

  it("merges like Helm: maps recursively, lists and scalars replaced, null deletes", () => {
    const merged = helmCoalesce({ a: { b: 1, c: [1, 2] }, d: 1, e: 2 } as JsonMap, { a: { c: [3] }, d: null, f: "x" } as JsonMap);
    expect(merged).toEqual({ a: { b: 1, c: [3] }, e: 2, f: "x" });
    expect(chartData().values.cull).toMatchObject({ enabled: true });
  });
});

describe.each(files.map((f) => [f.slice(REPO.length + 1), f]))("%s", (_name, file) => {
  const cfg = loadFixture(file); // also what `slicehub check-config` checks

  it("exports values the chart's schema accepts", () => {
    const dev = cfg.auth.kind === "dev";
    const r = exportOf(cfg, { allowDev: dev });
    check(r.values as JsonMap, r.text);
  });

  it("also with every option (Let's Encrypt, a storage class, other ratios, offline endpoints)", () => {
    const r = exportOf(cfg, {
      allowDev: cfg.auth.kind === "dev",
      letsencryptEmail: "admin@example.org",
      storageClass: "fast-ssd",
      storageCapacity: "50Gi",
      memoryGuaranteeRatio: 0.5,
      cpuGuaranteeRatio: 1,
      discovery: { ok: false, reason: "test" },
    });
    check(r.values as JsonMap, r.text);
  });
});

// The complete configs the docs show (fragments, which are not valid configs alone, are left out).
const docConfigs = ["docs/config.md", "docs/https.md"].flatMap((doc) =>
  [...readFileSync(join(REPO, doc), "utf8").matchAll(/```jsonc?\n([\s\S]*?)```/g)].flatMap((m, i) => {
    const r = parseConfigText(m[1]!, `${doc} block ${i + 1}`, "/etc/slicehub");
    return r.ok ? [[`${doc} block ${i + 1}`, r.config] as const] : [];
  }),
);

describe("the complete example configs in the docs", () => {
  it("are found (the docs have at least three)", () => {
    expect(docConfigs.length).toBeGreaterThanOrEqual(3);
  });

  it.each(docConfigs)("%s exports values the chart's schema accepts", (_name, cfg) => {
    const r = exportOf(cfg, { allowDev: cfg.auth.kind === "dev" });
    check(r.values as JsonMap, r.text);
  });
});

describe("the starter config of slicehub install", () => {
  it("exports valid values once its client_id is filled in", () => {
    const text = starterConfig({ configDir: "/etc/slicehub", unitDir: "/etc/systemd/system", user: "slicehub", stateDir: "/var/lib/slicehub" });
    const filled = text.replace('// "client_id"', '"client_id"');
    expect(filled).not.toBe(text);
    const loaded = parseConfigText(filled, "/etc/slicehub/config.json", "/etc/slicehub");
    if (!loaded.ok) throw new Error(loaded.errors.join("; "));
    const r = exportOf(loaded.config);
    check(r.values as JsonMap, r.text);
    // The starter's one profile and named-server limit carry over.
    expect((r.values.singleuser as JsonMap).profileList).toHaveLength(1);
    expect((r.values.hub as JsonMap).namedServerLimitPerUser).toBe(2);
  });
});
