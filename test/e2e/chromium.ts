// Debian's Chromium driven by playwright-core, as every browser test uses it; screenshots go to test-artifacts/.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { ROOT } from "./harness.js";

export const CHROMIUM = "/usr/bin/chromium";
export const ARTIFACTS = join(ROOT, "test-artifacts");
export const haveChromium = existsSync(CHROMIUM);

/** `extraArgs`: more Chromium flags, e.g. `--host-resolver-rules=MAP *.localhost 127.0.0.1` for subdomain mode. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's own sandbox needs user namespaces CI does not give root; the rest keeps it off the network.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", ...extraArgs],
  });
}
