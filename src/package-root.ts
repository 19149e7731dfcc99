// Where slicehub's own files are (package.json, the server wrapper, docs, the unit template), found by walking
// up from this module: it works from the sources, from dist/src/ and from the single-file bundle alike.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "slicehub") return (cached = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find slicehub's package.json above its code");
    dir = up;
  }
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
}

/** The command line entry point as installed: the bundle `npm run build` makes. */
export function cliPath(): string {
  return join(packageRoot(), "dist/slicehub.js");
}
