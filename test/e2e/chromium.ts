// Debian's Chromium driven by playwright-core, as every browser test uses it; screenshots go to test-artifacts/.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
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

/**
 * On a classic Notebook 6 tree page of the server at `prefix` (e.g. `/user/carla/`): creates a notebook the way
 * the "New" menu does (which opens a new window, so with the same REST call), opens it, runs `print(6*7)` in its
 * first cell and returns what the cell printed.
 */
export async function printInNewNotebook(page: Page, prefix: string): Promise<string | undefined> {
  const created = await page.evaluate(async (prefix) => {
    const xsrf = document.cookie.split("; ").find((c) => c.startsWith("_xsrf="))?.slice(6) ?? "";
    const r = await fetch(`${prefix}api/contents`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-XSRFToken": decodeURIComponent(xsrf) },
      body: JSON.stringify({ type: "notebook" }),
    });
    return { status: r.status, body: (await r.json()) as { path: string } };
  }, prefix);
  if (created.status !== 201) throw new Error(`creating a notebook answered ${created.status}`);
  await page.goto(new URL(`${prefix}notebooks/${created.body.path}`, page.url()).href);
  await page.waitForSelector(".kernel_idle_icon", { state: "attached", timeout: 60_000 });
  await page.click(".cell .CodeMirror");
  await page.keyboard.type("print(6*7)");
  await page.keyboard.press("Shift+Enter");
  const output = page.locator(".output_area .output_text").first();
  await output.waitFor({ timeout: 30_000 });
  return (await output.textContent())?.trim();
}
