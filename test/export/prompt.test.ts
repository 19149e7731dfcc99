// The image question of `slicehub export z2jh` on a terminal: runExport with the terminal's ask injected.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runExport, type ExportArgs } from "../../main/export-z2jh.js";
import { REPO, TEST_OPTIONS } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "slicehub-export-prompt-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const { storageCapacity, memoryGuaranteeRatio, cpuGuaranteeRatio, namespace, release, secretName, allowDev } = TEST_OPTIONS;
const args = (output: string): ExportArgs => ({
  ...{ storageCapacity, memoryGuaranteeRatio, cpuGuaranteeRatio, namespace, release, secretName, allowDev },
  config: join(REPO, "examples", "google-minimal.json"),
  output: join(dir, output),
  force: false,
  offline: true,
  timeoutMs: 1000,
});

/** A terminal that gives these answers in turn (an Error is thrown as readline throws it). */
function terminal(answers: (string | Error)[]) {
  const questions: string[] = [];
  let stderr = "";
  return {
    questions,
    stderr: () => stderr,
    io: {
      stdout: () => undefined,
      stderr: (t: string) => void (stderr += t),
      ask: async (q: string) => {
        questions.push(q);
        const a = answers.shift();
        if (a === undefined) throw new Error("asked more often than expected");
        if (a instanceof Error) throw a;
        return a;
      },
    },
  };
}

const imageOf = (file: string) => (parse(readFileSync(file, "utf8")) as { singleuser: { image: unknown } }).singleuser.image;

describe("the image question", () => {
  it("takes the image typed in, offering the Docker Stacks default", async () => {
    const t = terminal(["quay.io/jupyter/datascience-notebook:2025-02-03"]);
    expect(await runExport(args("typed.yaml"), t.io)).toBe(0);
    expect(t.questions).toEqual([expect.stringContaining("[quay.io/jupyter/scipy-notebook:latest]")]);
    expect(imageOf(join(dir, "typed.yaml"))).toEqual({ name: "quay.io/jupyter/datascience-notebook", tag: "2025-02-03" });
  });

  it("an empty answer takes the default", async () => {
    const t = terminal([""]);
    expect(await runExport(args("default.yaml"), t.io)).toBe(0);
    expect(imageOf(join(dir, "default.yaml"))).toEqual({ name: "quay.io/jupyter/scipy-notebook", tag: "latest" });
  });

  it("asks again after an answer that is not an image, and gives up after three, writing nothing", async () => {
    const again = terminal(["not an image!", "quay.io/jupyter/base-notebook:2025-02-03"]);
    expect(await runExport(args("again.yaml"), again.io)).toBe(0);
    expect(again.questions).toHaveLength(2);
    expect(again.stderr()).toContain("not an image reference: not an image!");

    const never = terminal(["a b", "c d", "e f"]);
    expect(await runExport(args("never.yaml"), never.io)).toBe(1);
    expect(existsSync(join(dir, "never.yaml"))).toBe(false);
  });

  it("Ctrl+D or Ctrl+C at the question cancels: exit 1, a plain message, nothing written", async () => {
    const abort = Object.assign(new Error("Aborted with Ctrl+D"), { name: "AbortError" });
    const t = terminal([abort]);
    expect(await runExport(args("cancelled.yaml"), t.io)).toBe(1);
    expect(t.stderr()).toContain("slicehub export: cancelled; nothing written");
    expect(t.stderr()).not.toContain("    at ");
    expect(existsSync(join(dir, "cancelled.yaml"))).toBe(false);
  });
});
