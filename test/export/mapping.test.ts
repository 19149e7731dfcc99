// The mapping table (src/z2jh/mapping.ts) is complete, names real keys on both sides, and is what the docs show.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configJsonSchema } from "../../src/config/load.js";
import { MAPPING, mappingTableMarkdown, rowFor } from "../../src/z2jh/mapping.js";
import { chartData, REPO, type JsonMap } from "./helpers.js";

type SchemaNode = { [k: string]: unknown };

/** Every key of the config's JSON Schema down to its leaves ("spawner.profiles[].memory"); union branches merged. */
function configKeys(): string[] {
  const root = configJsonSchema() as SchemaNode;
  const out = new Set<string>();
  const resolve = (n: SchemaNode): SchemaNode => (typeof n.$ref === "string" ? (n.$ref.split("/").slice(1).reduce<unknown>((o, k) => (o as SchemaNode)[k], root) as SchemaNode) : n);
  const walk = (node: SchemaNode, path: string): void => {
    const n = resolve(node);
    const branches = (n.anyOf ?? n.oneOf) as SchemaNode[] | undefined;
    if (branches) return branches.forEach((b) => walk(b, path));
    const props = n.properties as Record<string, SchemaNode> | undefined;
    if (n.type === "object" && props) {
      for (const [k, v] of Object.entries(props)) walk(v, path ? `${path}.${k}` : k);
      return;
    }
    const items = n.items as SchemaNode | undefined;
    if (n.type === "array" && items && (resolve(items).properties || resolve(items).anyOf)) return walk(items, `${path}[]`);
    out.add(path);
  };
  walk(root, "");
  return [...out];
}

/** Whether a z2jh values path exists in the chart's schema, down to where the schema leaves an object open. */
function inChartSchema(path: string): boolean {
  let node = chartData().schema as JsonMap;
  for (const raw of path.replace("<Authenticator>", "GenericOAuthenticator").split(".")) {
    const seg = raw.replace(/\[\]$/, "");
    const props = (node.properties ?? {}) as Record<string, JsonMap>;
    if (props[seg]) node = props[seg];
    else {
      const pattern = Object.entries((node.patternProperties ?? {}) as Record<string, JsonMap>).find(([re]) => new RegExp(re).test(seg));
      if (pattern) node = pattern[1];
      else return node.additionalProperties === true || (node.properties === undefined && node.type !== undefined && node.additionalProperties !== false);
    }
    if (raw.endsWith("[]")) {
      if (!node.items) return true; // a list the schema does not describe (profileList: KubeSpawner's)
      node = node.items as JsonMap;
    }
  }
  return true;
}

describe("the mapping table", () => {
  const keys = configKeys();

  it("walks the whole config schema (sanity: known keys are found)", () => {
    expect(keys).toContain("auth.client_secret");
    expect(keys).toContain("spawner.profiles[].memory");
    expect(keys).toContain("cull.users.idle_timeout_s");
    expect(keys.length).toBeGreaterThan(90);
  });

  it("has a row for every config key (its own or an ancestor's), so none is dropped silently", () => {
    expect(keys.filter((k) => !rowFor(k))).toEqual([]);
  });

  it("names only keys the config has, each once", () => {
    const rowKeys = MAPPING.map((r) => r.key);
    expect(rowKeys.filter((k) => !keys.some((c) => c === k || c.startsWith(`${k}.`)))).toEqual([]);
    expect(new Set(rowKeys).size).toBe(rowKeys.length);
  });

  it("names only values paths the chart's schema has", () => {
    const paths = [...new Set(MAPPING.flatMap((r) => r.values))];
    expect(paths.filter((p) => !inChartSchema(p))).toEqual([]);
    expect(inChartSchema("singleuser.nosuchkey")).toBe(false); // the check has teeth
  });

  it("says what to do instead for every key without an equivalent", () => {
    for (const r of MAPPING.filter((row) => row.values.length === 0)) expect(r.note.length, r.key).toBeGreaterThan(30);
  });

  it("is the table docs/growing-past-one-host.md shows", () => {
    const doc = readFileSync(join(REPO, "docs", "growing-past-one-host.md"), "utf8");
    const m = /<!-- mapping-table:start[^>]*-->\n([\s\S]*?)\n<!-- mapping-table:end -->/.exec(doc);
    expect(m, "the page has the table between <!-- mapping-table:start --> and <!-- mapping-table:end -->").not.toBeNull();
    expect(m![1]).toBe(mappingTableMarkdown());
  });
});
