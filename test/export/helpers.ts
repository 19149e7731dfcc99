// Shared by the export tests: the chart's schema and defaults (../shared/z2jh, beside the checkout, where CI has
// it), Helm's way of merging values, a JSON Schema validator, and an export with test defaults.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { loadConfigFile } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import { exportZ2jh, type ExportOptions, type ExportResult } from "../../src/z2jh/export.js";

export const REPO = join(import.meta.dirname, "..", "..");
export const CHART_DIR = join(REPO, "..", "shared", "z2jh");

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonMap = { [k: string]: Json };

let chart: { schema: JsonMap; values: JsonMap } | undefined;

/** values.schema.yaml (YAML anchors shared, as the chart's own tooling expands them) and values.yaml. */
export function chartData(): { schema: JsonMap; values: JsonMap } {
  chart ??= {
    schema: parse(readFileSync(join(CHART_DIR, "values.schema.yaml"), "utf8"), { maxAliasCount: -1 }) as JsonMap,
    values: parse(readFileSync(join(CHART_DIR, "values.yaml"), "utf8")) as JsonMap,
  };
  return chart;
}

const isMap = (v: unknown): v is JsonMap => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Helm's coalescing of a chart's defaults with user values (helm/pkg/chartutil coalesce.go), which is what Helm
 * validates against values.schema.json: maps merge key by key, recursively; a list or scalar from the user
 * replaces the default whole; a user's null deletes the key.
 */
export function helmCoalesce(defaults: JsonMap, user: JsonMap): JsonMap {
  const out: JsonMap = structuredClone(defaults);
  for (const [k, v] of Object.entries(user)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = helmCoalesce(out[k] as JsonMap, v);
    else out[k] = structuredClone(v);
  }
  return out;
}

let validator: ((v: unknown) => boolean) & { errors?: unknown } | undefined;

/** Ajv (draft-07, the schema's $schema) errors for `values` merged onto the chart's defaults; [] when valid. */
export function schemaErrors(values: JsonMap): string[] {
  if (!validator) {
    // allowMatchingProperties: hub.config has both properties (JupyterHub) and a pattern (^[A-Z]) that matches it;
    // the union types are the chart's own ([string, "null"]).
    const ajv = new Ajv({ allErrors: true, allowMatchingProperties: true, allowUnionTypes: true, strictTypes: false });
    validator = ajv.compile(chartData().schema);
  }
  const merged = helmCoalesce(chartData().values, values);
  if (validator(merged)) return [];
  return ((validator.errors ?? []) as { instancePath: string; message?: string; params?: unknown }[]).map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
}

/**
 * Stricter than the schema: every key written is one the schema names (its properties or a matching pattern),
 * down to where the schema leaves an object open (hub.config.<Class>, extraEnv, custom, extraConfig, ...).
 * additionalProperties: false already catches most; this also covers open objects that list properties.
 */
export function unknownPaths(values: Json, schema: JsonMap = chartData().schema, path = ""): string[] {
  if (isMap(values)) {
    const props = (schema.properties ?? {}) as JsonMap;
    const patterns = (schema.patternProperties ?? {}) as JsonMap;
    const hasShape = schema.properties !== undefined || schema.patternProperties !== undefined;
    if (!hasShape) return [];
    const bad: string[] = [];
    for (const [k, v] of Object.entries(values)) {
      const sub = (props[k] as JsonMap | undefined) ?? (Object.entries(patterns).find(([re]) => new RegExp(re).test(k))?.[1] as JsonMap | undefined);
      if (sub) bad.push(...unknownPaths(v, sub, `${path}.${k}`));
      else if (schema.additionalProperties !== true) bad.push(`${path}.${k}`);
    }
    return bad;
  }
  if (Array.isArray(values) && isMap(schema.items)) return values.flatMap((v, i) => unknownPaths(v, schema.items as JsonMap, `${path}[${i}]`));
  return [];
}

export const TEST_OPTIONS: ExportOptions = {
  configPath: "/etc/slicehub/config.json",
  slicehubVersion: "0.0.0-test",
  image: { name: "quay.io/jupyter/scipy-notebook", tag: "2025-03-10", source: "option" },
  storageCapacity: "10Gi",
  memoryGuaranteeRatio: 1,
  cpuGuaranteeRatio: 0.1,
  namespace: "jupyterhub",
  release: "jupyterhub",
  secretName: "slicehub-oauth",
  valuesFile: "values.yaml",
  allowDev: false,
};

export function loadFixture(path: string): Config {
  const r = loadConfigFile(path);
  if (!r.ok) throw new Error(`${path}: ${r.errors.join("; ")}`);
  return r.config;
}

export function exportOf(cfg: Config, options: Partial<ExportOptions> = {}): ExportResult {
  return exportZ2jh(cfg, { ...TEST_OPTIONS, ...options });
}

export function getPath(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const k of path.split(".")) v = isMap(v) ? v[k] : undefined;
  return v;
}
