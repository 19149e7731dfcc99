// The daemon ships as one bundled file, dist/slicehub.js: loading ~200 small modules is most of node's start-up
// time here (bench/README.md measured cold start 327 ms unbundled, about 220 ms bundled). better-sqlite3 and
// node-pty stay external because of their native addons.
import { defineConfig } from "rolldown";

export default defineConfig({
  input: "dist/main/cli.js",
  platform: "node",
  external: ["better-sqlite3", "node-pty"],
  // jsonc-parser's "main" is a UMD build whose dynamic require a bundle cannot follow; its ESM build can be.
  resolve: { mainFields: ["module", "main"] },
  output: { file: "dist/slicehub.js", format: "esm", codeSplitting: false, sourcemap: true },
  logLevel: "warn",
});
