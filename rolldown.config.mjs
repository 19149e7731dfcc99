// The daemon ships as one bundled file, dist/slicehub.js: loading ~200 small modules is most of node's start-up
// time here (bench/README.md measured cold start 327 ms unbundled, about 220 ms bundled). better-sqlite3 and
// node-pty stay external because of their native addons.
//
// dist/authorized-keys.js is a second, separate bundle: sshd runs it at every SSH login of a managed account
// (AuthorizedKeysCommand), so it carries only the config loader, the store's read path and the access rules,
// not the web server.
import { defineConfig } from "rolldown";

const common = {
  platform: "node",
  external: ["better-sqlite3", "node-pty"],
  // jsonc-parser's "main" is a UMD build whose dynamic require a bundle cannot follow; its ESM build can be.
  resolve: { mainFields: ["module", "main"] },
  logLevel: "warn",
};

export default defineConfig([
  {
    ...common,
    input: "dist/main/cli.js",
    output: { file: "dist/slicehub.js", format: "esm", codeSplitting: false, sourcemap: true },
  },
  {
    ...common,
    input: "dist/main/authorized-keys.js",
    output: { file: "dist/authorized-keys.js", format: "esm", codeSplitting: false, sourcemap: true },
  },
]);
