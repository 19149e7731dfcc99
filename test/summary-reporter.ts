// Prints, after Vitest's own output, the tests of each tier (passed / failed / skipped) and the one closing line
// CI reads: "N passed, N failed[, N skipped]" (Vitest's own summary is not parsed there).
//
// Skips: a test skipped because this machine lacks something (root, systemd, Chromium, jupyterhub-singleuser)
// is a warning on a developer's machine. Under CI (CI set, as .ci/run is run) or SLICEHUB_REQUIRE_ALL_TIERS=1 it
// is a failure, named with the reason, unless test/allowed-skips.ts lists it: a green CI run means every tier ran.
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join, relative } from "node:path";
import type { Reporter, SerializedError, TestCase, TestModule, Vitest } from "vitest/node";
import { ALLOWED_SKIPS } from "./allowed-skips.js";

const ROOT = join(import.meta.dirname, "..");

interface Need {
  what: string;
  met: () => boolean;
}

interface Tier {
  name: string;
  /** Matched against the test file's path from the repository root; the first tier that matches wins. */
  files: RegExp;
  about: string;
  /** What this machine must have for the tier's tests to run rather than skip (used to explain skips). */
  needs: Need[];
}

const executable = (file: string) => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
const onPath = (cmd: string) => (process.env.PATH ?? "/usr/bin:/bin").split(delimiter).some((dir) => executable(join(dir, cmd)));
const file = (path: string): Need => ({ what: path, met: () => existsSync(path) });
const root: Need = { what: "root", met: () => process.getuid?.() === 0 };
const built: Need = { what: "dist/ (npm run build)", met: () => existsSync(join(ROOT, "dist/slicehub.js")) };
// The same paths the tests check (test/e2e/harness.ts, test/e2e/chromium.ts, test/systemd/sandbox.ts).
const singleuser = file("/usr/bin/jupyterhub-singleuser");
const chromium = file("/usr/bin/chromium");

/** The one place that says which tier a test file belongs to. Keep .ci/run installing what every tier needs. */
export const TIERS: readonly Tier[] = [
  {
    name: "browser",
    files: /^test\/(e2e\/browser(-attacks|-origins|-terminal|-https|-cull|-proxies)?|web\/screens|auth\/oidc-browser|proxy\/browser)\.test\.tsx?$/,
    about: "Debian's Chromium via playwright-core",
    needs: [chromium, singleuser, built],
  },
  {
    name: "systemd",
    files: /^test\/(systemd\/.*|spawners\/(hooks|accounts))\.test\.tsx?$/,
    about: "root: a real systemd in a pid+mount namespace, the privileged helper, Unix accounts, root hooks",
    needs: [
      root,
      { what: "/lib/systemd/systemd", met: () => executable("/lib/systemd/systemd") },
      { what: "unshare and nsenter (util-linux)", met: () => onPath("unshare") && onPath("nsenter") },
      singleuser,
      built,
    ],
  },
  {
    name: "oidc",
    files: /^test\/auth\/oidc-.*\.test\.tsx?$/,
    about: "the daemon against a real OpenID provider (oidc-provider)",
    needs: [built],
  },
  {
    name: "e2e",
    files: /^test\/(e2e|web)\/.*\.test\.tsx?$/,
    about: "the daemon as a process; the real jupyterhub-singleuser in e2e/jupyter",
    needs: [singleuser, built],
  },
  { name: "unit", files: /^/, about: "in-process", needs: [built] },
];

export function tierOf(path: string): Tier {
  return TIERS.find((t) => t.files.test(path))!;
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && value !== "" && value !== "0" && value.toLowerCase() !== "false";
}

interface Counts {
  files: number;
  passed: number;
  failed: number;
  skipped: number;
}

export default class SummaryReporter implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  async onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): Promise<void> {
    const strict = truthy(process.env.CI) || truthy(process.env.SLICEHUB_REQUIRE_ALL_TIERS);
    // With -t, Vitest skips every test whose name does not match: those skips say nothing about the machine.
    const nameFilter = this.vitest?.config.testNamePattern;
    const counts = new Map(TIERS.map((t) => [t.name, { files: 0, passed: 0, failed: 0, skipped: 0 } as Counts]));
    const allowed: string[] = [];
    const unexpected: string[] = [];
    const ranFiles = new Set<string>();

    for (const mod of testModules) {
      const path = relative(ROOT, mod.moduleId);
      ranFiles.add(path);
      const tier = tierOf(path);
      const c = counts.get(tier.name)!;
      c.files++;
      const tests = [...mod.children.allTests()];
      for (const test of tests) {
        const result = test.result();
        if (result.state === "passed") c.passed++;
        else if (result.state === "failed") c.failed++;
        else {
          c.skipped++;
          const entry = ALLOWED_SKIPS.find((a) => a.file === path && a.test === test.fullName && (a.when?.() ?? true));
          const label = `${path} > ${test.fullName}`;
          if (entry) allowed.push(`${label}: ${entry.why}`);
          else if (!nameFilter || nameFilter.test(test.fullName)) unexpected.push(`${label}: ${whySkipped(test, tier)}`);
        }
      }
      // A file that fails to load has no tests but must still count as a failure.
      if (mod.state() === "failed" && tests.every((t) => t.result().state !== "failed")) c.failed++;
    }

    // In a full run under CI every tier must have run something: a file moved out of its tier's paths (or a tier
    // left out of the include globs) would otherwise make that tier silently disappear.
    const missingTiers: string[] = [];
    if (strict && !nameFilter && this.vitest) {
      const all = await this.vitest.globTestSpecifications().catch(() => []);
      const full = all.length > 0 && all.every((spec) => ranFiles.has(relative(ROOT, spec.moduleId)));
      if (full) for (const [name, c] of counts) if (c.passed + c.failed + c.skipped === 0) missingTiers.push(name);
    }

    const out: string[] = ["", `tests by tier (test/summary-reporter.ts)${strict ? ", every tier required (CI)" : ""}:`];
    out.push(`  ${"tier".padEnd(8)} ${"passed".padStart(6)} ${"failed".padStart(6)} ${"skipped".padStart(7)} ${"files".padStart(5)}  what it runs`);
    for (const tier of TIERS) {
      const c = counts.get(tier.name)!;
      out.push(`  ${tier.name.padEnd(8)} ${String(c.passed).padStart(6)} ${String(c.failed).padStart(6)} ${String(c.skipped).padStart(7)} ${String(c.files).padStart(5)}  ${tier.about}`);
    }
    for (const line of allowed) out.push(`allowed skip (test/allowed-skips.ts): ${line}`);
    if (strict) {
      for (const line of unexpected) out.push(`FAILED, skipped in CI: ${line}`);
      for (const name of missingTiers) out.push(`FAILED, tier ran no test: ${name} (no test in this full run belongs to it; see TIERS in test/summary-reporter.ts)`);
      if (unexpected.length) out.push(`${unexpected.length} skipped test(s) counted as failed: install what they need in .ci/run, or list them with a reason in test/allowed-skips.ts`);
    } else {
      for (const line of unexpected) out.push(`WARNING, skipped (CI would fail on this): ${line}`);
    }

    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const c of counts.values()) {
      passed += c.passed;
      failed += c.failed;
      skipped += c.skipped;
    }
    if (strict) {
      failed += unexpected.length + missingTiers.length;
      skipped -= unexpected.length;
      // Vitest itself exits 0 when every test that ran passed; this run still failed.
      if (unexpected.length || missingTiers.length) process.exitCode = 1;
    }
    out.push("", `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
    process.stdout.write(`${out.join("\n")}\n`);
  }
}

/** Why a test was skipped, as far as can be told: ctx.skip's note, or what its tier needs that this machine lacks. */
function whySkipped(test: TestCase, tier: Tier): string {
  const result = test.result();
  if (result.state === "skipped" && result.note) return result.note;
  if (test.options.mode === "todo") return "it.todo";
  const missing = tier.needs.filter((n) => !n.met()).map((n) => n.what);
  if (missing.length) return `${tier.name} tier, this machine lacks ${missing.join(", ")}`;
  return `${tier.name} tier, nothing it needs is missing here: an unconditional skip, or a skipIf condition the tier table does not know`;
}
