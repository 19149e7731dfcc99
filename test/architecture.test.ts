// The layers, and that imports only go down them: a module may import its own layer or a lower one, never a
// higher one. Read from the source files themselves (relative imports), so a new upward edge fails here
// before it becomes a tangle.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const FOLDERS = ["src", "main", "auth", "web", "proxy", "spawners"];

/** Bottom first. The first rule whose pattern matches a file's path decides its layer. */
const LAYERS: { name: string; files: RegExp }[] = [
  { name: "core", files: /^src\/(config|store)\/|^src\/(names|log|scopes|time|secrets|negotiate|profiles|server-env|jupyterhub-env|package-root|privileges|singleuser-version|cgroups|sd-notify|forwarded|tls)\.ts$|^src\/ssh\/(keys|last-use|sshd)\.ts$/ },
  { name: "spawners", files: /^spawners\/|^src\/terminal\/(pty-session|frames|units|helper-side|backend)\.ts$/ },
  { name: "proxy", files: /^proxy\// },
  { name: "lifecycle", files: /^src\/(lifecycle|readiness|ports|cull)\.ts$/ },
  { name: "hub", files: /^src\/hub\/|^src\/metrics\.ts$|^src\/terminal\/(manager|upgrade)\.ts$|^src\/ssh\/sessions\.ts$/ },
  { name: "auth", files: /^auth\// },
  { name: "web", files: /^web\// },
  // slicehub export z2jh and import jupyterhub: they read config and store and use auth's name rules.
  { name: "migration tools", files: /^src\/z2jh\/|^src\/import\// },
  { name: "composition root", files: /^main\// },
];

/** Layers that sit side by side: neither may import the other. */
const SIBLINGS: [string, string][] = [["spawners", "proxy"]];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return /\.tsx?$/.test(e.name) && !e.name.endsWith(".d.ts") ? [path] : [];
  });
}

function layerOf(file: string): number {
  const i = LAYERS.findIndex((l) => l.files.test(file));
  if (i < 0) throw new Error(`${file} is in no layer: add it to LAYERS in test/architecture.test.ts`);
  return i;
}

/** Relative imports (static, dynamic and type-only), as repository paths of the .ts/.tsx file they name. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)["'](\.{1,2}\/[^"']+)["']/g)].map((m) => m[1]!);
  return specs.map((spec) => {
    const target = relative(ROOT, resolve(ROOT, dirname(file), spec)).replace(/\.js$/, "");
    const candidates = [`${target}.ts`, `${target}.tsx`];
    return candidates.find((c) => {
      try {
        readFileSync(join(ROOT, c));
        return true;
      } catch {
        return false;
      }
    }) ?? `${target}.ts`;
  });
}

describe("the import graph", () => {
  const files = FOLDERS.flatMap(sources);

  it("puts every source file in a layer", () => {
    for (const f of files) expect(() => layerOf(f), f).not.toThrow();
  });

  it("has no upward edges and no edges between sibling layers", () => {
    const bad: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const target of importsOf(file)) {
        if (!files.includes(target)) continue;
        const to = layerOf(target);
        const sideways = SIBLINGS.some(([a, b]) => (LAYERS[from]!.name === a && LAYERS[to]!.name === b) || (LAYERS[from]!.name === b && LAYERS[to]!.name === a));
        if (to > from || sideways) bad.push(`${file} (${LAYERS[from]!.name}) imports ${target} (${LAYERS[to]!.name})`);
      }
    }
    expect(bad).toEqual([]);
  });
});
