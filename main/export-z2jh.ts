// `slicehub export z2jh`: reads the config, asks for the image, reads a generic issuer's discovery document,
// and writes the Helm values (src/z2jh/export.ts) to stdout or, atomically, to a file. Messages go to stderr.
import { randomBytes } from "node:crypto";
import { existsSync, linkSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import { isGoogleIssuer } from "../auth/decide.js";
import { loadConfigFile } from "../src/config/load.js";
import { packageVersion } from "../src/package-root.js";
import { DEFAULT_IMAGE, ExportError, exportZ2jh, parseImage, type Endpoints, type ExportOptions } from "../src/z2jh/export.js";

export { parseImage };

/** The command line: the export's own options (passed through) and what the command does before and after. */
export interface ExportArgs
  extends Pick<ExportOptions, "storageCapacity" | "storageClass" | "memoryGuaranteeRatio" | "cpuGuaranteeRatio" | "letsencryptEmail" | "namespace" | "release" | "secretName" | "allowDev"> {
  config: string;
  output?: string;
  force: boolean;
  image?: string;
  offline: boolean;
  timeoutMs: number;
}

export interface ExportIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Asks on the terminal; undefined when there is none. */
  ask?: (question: string) => Promise<string>;
}

const Discovery = z.object({
  issuer: z.string().optional(),
  authorization_endpoint: z.string().url(),
  token_endpoint: z.string().url(),
  userinfo_endpoint: z.string().url().optional(),
});

/** The issuer's endpoints from its discovery document, or why not. */
export async function discover(issuer: string, timeoutMs: number): Promise<{ ok: true; endpoints: Endpoints } | { ok: false; reason: string }> {
  const url = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "error", headers: { accept: "application/json" } });
    if (!res.ok) return { ok: false, reason: `HTTP ${res.status}` };
    const parsed = Discovery.safeParse(await res.json());
    if (!parsed.success) return { ok: false, reason: "not a discovery document (authorization_endpoint and token_endpoint missing)" };
    const { authorization_endpoint, token_endpoint, userinfo_endpoint } = parsed.data;
    return { ok: true, endpoints: { authorization_endpoint, token_endpoint, ...(userinfo_endpoint ? { userinfo_endpoint } : {}) } };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { ok: false, reason: e.name === "TimeoutError" ? `no answer within ${timeoutMs / 1000} s` : (e.cause?.code ?? e.message) };
  }
}

/** Writes `text` to `path` through a temporary file beside it: the file is complete or absent. */
function writeAtomically(path: string, text: string, force: boolean): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  writeFileSync(tmp, text, { mode: 0o600, flag: "wx" });
  try {
    if (force) renameSync(tmp, path);
    else {
      linkSync(tmp, path); // fails with EEXIST rather than replace a file that appeared meanwhile
      unlinkSync(tmp);
    }
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw err;
  }
}

/** Runs the export; returns the exit status (0 written, 1 failed: nothing written). */
export async function runExport(args: ExportArgs, io: ExportIo): Promise<number> {
  const say = (line: string) => io.stderr(`${line}\n`);
  const loaded = loadConfigFile(args.config);
  if (!loaded.ok) {
    for (const e of loaded.errors) say(e);
    say(`slicehub export: ${args.config} is not a valid config (${loaded.errors.length} problem${loaded.errors.length === 1 ? "" : "s"}); nothing written`);
    return 1;
  }
  const cfg = loaded.config;
  const output = args.output === undefined || args.output === "-" ? undefined : resolve(args.output);
  if (output && existsSync(output) && !args.force) {
    say(`slicehub export: ${args.output} exists; pass --force to replace it`);
    return 1;
  }

  let image: ExportOptions["image"];
  if (args.image !== undefined) {
    const parsed = parseImage(args.image);
    if (!parsed) {
      say(`slicehub export: --image: not an image reference like quay.io/jupyter/scipy-notebook:2025-01-01 (${args.image})`);
      return 1;
    }
    image = { ...parsed, source: "option" };
  } else if (io.ask) {
    for (let attempt = 0; ; attempt++) {
      let answer: string;
      try {
        answer = (await io.ask(`Image for users' servers (a Jupyter Docker Stacks image; pin a dated tag) [${DEFAULT_IMAGE}]: `)).trim();
      } catch (err) {
        // Ctrl+D or Ctrl+C at the prompt: readline aborts the question.
        if ((err as Error).name !== "AbortError") throw err;
        say("\nslicehub export: cancelled; nothing written");
        return 1;
      }
      const parsed = parseImage(answer || DEFAULT_IMAGE);
      if (parsed) {
        image = { ...parsed, source: answer ? "prompt" : "default" };
        break;
      }
      say(`not an image reference: ${answer}`);
      if (attempt >= 2) return 1;
    }
  } else {
    image = { ...parseImage(DEFAULT_IMAGE)!, source: "default" };
    say(`slicehub export: no --image and no terminal to ask on: using ${DEFAULT_IMAGE} (pin a dated tag before installing)`);
  }

  let discovery: ExportOptions["discovery"];
  if (cfg.auth.kind === "oidc" && !isGoogleIssuer(cfg.auth.issuer) && !args.offline) {
    say(`reading ${cfg.auth.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration ...`);
    discovery = await discover(cfg.auth.issuer, args.timeoutMs);
  }

  let result;
  try {
    result = exportZ2jh(cfg, {
      configPath: resolve(args.config),
      slicehubVersion: packageVersion(),
      image,
      storageCapacity: args.storageCapacity,
      storageClass: args.storageClass,
      memoryGuaranteeRatio: args.memoryGuaranteeRatio,
      cpuGuaranteeRatio: args.cpuGuaranteeRatio,
      letsencryptEmail: args.letsencryptEmail,
      namespace: args.namespace,
      release: args.release,
      secretName: args.secretName,
      valuesFile: args.output && args.output !== "-" ? args.output : "values.yaml",
      discovery,
      allowDev: args.allowDev,
    });
  } catch (err) {
    if (!(err instanceof ExportError)) throw err;
    say(`slicehub export: ${err.message}`);
    return 1;
  }
  for (const w of result.warnings) say(`warning: ${w}`);
  if (!output) {
    io.stdout(result.text);
    return 0;
  }
  try {
    writeAtomically(output, result.text, args.force);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    say(`slicehub export: cannot write ${args.output}: ${e.code === "EEXIST" ? "it exists (pass --force to replace it)" : (e.code ?? e.message)}; nothing written`);
    return 1;
  }
  say(`wrote ${args.output} (mode 0600). Read its header comments, then run the helm command there.`);
  return 0;
}
