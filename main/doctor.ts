// `slicehub doctor`: looks at what goes wrong on a new host (the config, cgroups, systemd, the single-user
// command, the OpenID provider, DNS, the certificate, the clock, disk space, sshd) and says how to fix each.
// Each check is a small function returning a typed result, so it can be tested with fakes; runDoctor() wires
// them to the real host, runs the network ones concurrently with a bounded timeout, and prints one line each.
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { lookup } from "node:dns/promises";
import { existsSync, readFileSync, statfsSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { dirname, join, resolve } from "node:path";
import { isIP } from "node:net";
import Database from "better-sqlite3";
import { parse as parseJsonc } from "jsonc-parser";
import { loadConfigFile } from "../src/config/load.js";
import { isLoopbackHost, type Config } from "../src/config/schema.js";
import { FALLBACK_JUPYTERHUB_VERSION, detectSingleuserVersion, type SingleuserVersion } from "../src/singleuser-version.js";
import { KEYS_COMMAND, SSHD, SSHD_DROPIN, sshdDropIn, sshdMissing } from "../src/ssh/sshd.js";
import { MIGRATIONS } from "../src/store/migrations.js";
import { lookupAccount } from "../spawners/accounts.js";
import { prefixAccounts } from "../spawners/privileged/ssh.js";

export type Status = "ok" | "warn" | "fail" | "skip";

export interface CheckResult {
  /** A short stable name ("cgroup", "oidc"), for --json and tests. */
  id: string;
  status: Status;
  /** What was found, one line. */
  message: string;
  /** What to do about it (warn and fail). */
  fix?: string;
  /** More lines: every config problem, every missing thing. */
  details?: string[];
}

const ok = (id: string, message: string, details?: string[]): CheckResult => ({ id, status: "ok", message, ...(details?.length ? { details } : {}) });
const warn = (id: string, message: string, fix: string, details?: string[]): CheckResult => ({ id, status: "warn", message, fix, ...(details?.length ? { details } : {}) });
const fail = (id: string, message: string, fix: string, details?: string[]): CheckResult => ({ id, status: "fail", message, fix, ...(details?.length ? { details } : {}) });
const skip = (id: string, message: string): CheckResult => ({ id, status: "skip", message });

/** The oldest systemd the systemd spawner works with, and why (features it uses, with the version each came in). */
export const MIN_SYSTEMD = 247;
const SYSTEMD_FEATURES = "LoadCredential= (247), ProtectKernelLogs= (244), OOMPolicy= (243), Type=exec (240), systemd-run --pty (235)";

// --- config -----------------------------------------------------------------------------------------------

export interface ConfigCheck {
  result: CheckResult;
  config?: Config;
  /** The file as JSON (comments allowed), for keys the schema may not know yet; undefined when unreadable. */
  raw?: Record<string, unknown>;
}

/** The same parse as `slicehub check-config`: every problem listed. */
export function checkConfig(path: string): ConfigCheck {
  const r = loadConfigFile(path);
  let raw: Record<string, unknown> | undefined;
  try {
    const v: unknown = parseJsonc(readFileSync(path, "utf8").replace(/^\uFEFF/, ""), [], { allowTrailingComma: true });
    if (v && typeof v === "object" && !Array.isArray(v)) raw = v as Record<string, unknown>;
  } catch {
    // reported by loadConfigFile
  }
  if (r.ok) return { result: ok("config", `${path} is valid`), config: r.config, raw };
  const unreadable = r.errors.length === 1 && r.errors[0]!.startsWith(`${path}: cannot read: `);
  if (unreadable) {
    const what = r.errors[0]!.slice(path.length + 2);
    const fix = /ENOENT/.test(what) ? "pass --config FILE, or run slicehub install (it writes /etc/slicehub/config.json)" : /EACCES|EPERM/.test(what) ? "run slicehub doctor as root (the config is readable by root and the service's group only)" : "pass the config file with --config FILE";
    return { result: fail("config", `${path}: ${what}`, fix) };
  }
  return {
    result: fail("config", `${path} has ${r.errors.length} problem${r.errors.length === 1 ? "" : "s"}`, `correct each (slicehub check-config ${path} lists them too)`, r.errors),
    raw,
  };
}

// --- cgroups and systemd ----------------------------------------------------------------------------------

export const CGROUP2_SUPER_MAGIC = 0x63677270;
const NEEDED_CONTROLLERS = ["memory", "cpu", "pids"];

function readWords(path: string): string[] | undefined {
  try {
    return readFileSync(path, "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {
    return undefined;
  }
}

/**
 * cgroup v2 at `root` with the memory, cpu and pids controllers, and (once it exists) slicehub.slice getting
 * them: what profile limits (MemoryMax, CPUQuota, TasksMax) and the per-server metrics need.
 */
export function checkCgroup(root: string, spawnerKind: string, fsType: (path: string) => number = (p) => Number(statfsSync(p).type)): CheckResult {
  const needed = spawnerKind === "systemd";
  const bad = (message: string, fix: string, details?: string[]) => (needed ? fail : warn)("cgroup", message, needed ? fix : `${fix} (the local spawner enforces no limits, so this matters only for the systemd spawner)`, details);
  const controllers = readWords(join(root, "cgroup.controllers"));
  let magic: number | undefined;
  try {
    magic = fsType(root);
  } catch {
    // no such mount point
  }
  if (!controllers || (magic !== undefined && magic !== CGROUP2_SUPER_MAGIC)) {
    return bad(
      `${root} is not a cgroup v2 (unified) hierarchy${existsSync(join(root, "memory")) ? ": this host uses cgroup v1 or the hybrid layout" : ""}`,
      "boot with the unified hierarchy (kernel command line systemd.unified_cgroup_hierarchy=1, the default since Debian 11), or in a container give it cgroup v2 (Docker: --cgroupns=private on a cgroup v2 host)",
    );
  }
  const missing = NEEDED_CONTROLLERS.filter((c) => !controllers.includes(c));
  if (missing.length) {
    return bad(
      `${root} lacks the ${missing.join(", ")} controller${missing.length > 1 ? "s" : ""} (it has: ${controllers.join(" ") || "none"})`,
      "in a container, have the container manager delegate them (systemd: Delegate=yes on the container's unit; LXC/Incus: a cgroup v2 host); on a host, check the kernel has them (cgroup_disable= on the command line)",
    );
  }
  const slice = join(root, "slicehub.slice");
  const sliceControllers = readWords(join(slice, "cgroup.controllers"));
  if (sliceControllers) {
    const notDelegated = NEEDED_CONTROLLERS.filter((c) => !sliceControllers.includes(c));
    if (notDelegated.length) {
      return bad(
        `slicehub.slice does not get the ${notDelegated.join(", ")} controller${notDelegated.length > 1 ? "s" : ""} (it has: ${sliceControllers.join(" ") || "none"})`,
        `enable them on the way down: echo +${notDelegated.join(" +")} > ${join(root, "cgroup.subtree_control")} (systemd does this itself for units with limits; something turned them off)`,
      );
    }
  }
  return ok("cgroup", `cgroup v2 at ${root} with ${NEEDED_CONTROLLERS.join(", ")}${sliceControllers ? ", and slicehub.slice gets them" : ""}`);
}

/** `systemctl --version`'s first line → the version number. */
export function parseSystemdVersion(output: string): number | undefined {
  const m = /^systemd (\d+)/m.exec(output);
  return m ? Number(m[1]) : undefined;
}

/** The systemd the spawner talks to: PID 1 is systemd, and at least MIN_SYSTEMD. */
export function checkSystemd(versionOutput: string | undefined, pid1IsSystemd: boolean, spawnerKind: string): CheckResult {
  if (spawnerKind !== "systemd") {
    const v = versionOutput ? parseSystemdVersion(versionOutput) : undefined;
    return skip("systemd", `not needed by the local spawner${v ? ` (systemd ${v} here)` : ""}`);
  }
  if (versionOutput === undefined) return fail("systemd", "systemctl is not installed or did not answer", "the systemd spawner needs systemd as the init system: apt install systemd");
  const v = parseSystemdVersion(versionOutput);
  if (v === undefined) return warn("systemd", `cannot read a version from systemctl --version: ${versionOutput.split("\n")[0]}`, `make sure it is systemd ${MIN_SYSTEMD} or newer`);
  if (v < MIN_SYSTEMD) return fail("systemd", `systemd ${v} is older than ${MIN_SYSTEMD}, which the spawner needs`, `upgrade the distribution (Debian 11 has 247, Debian 12 has 252); used: ${SYSTEMD_FEATURES}`);
  if (!pid1IsSystemd) return fail("systemd", `systemd ${v} is installed but is not running as the init system (no /run/systemd/system)`, "boot with systemd (in a container: run systemd as its PID 1)");
  return ok("systemd", `systemd ${v} (needs ${MIN_SYSTEMD}: ${SYSTEMD_FEATURES.split(" (")[0]})`);
}

// --- the single-user command ------------------------------------------------------------------------------

const majorMinor = (v: string) => v.split(".").slice(0, 2).join(".");

/** Every distinct server command (spawner.cmd and profiles' cmd), found on PATH, with its jupyterhub version. */
export async function checkSingleuser(config: Config, detect: (cmd0: string) => Promise<SingleuserVersion> = (c) => detectSingleuserVersion(c)): Promise<CheckResult[]> {
  const commands = [...new Set([config.spawner.cmd[0]!, ...config.spawner.profiles.flatMap((p) => (p.cmd ? [p.cmd[0]!] : []))])];
  const found = await Promise.all(commands.map(async (c) => [c, await detect(c)] as const));
  const results: CheckResult[] = [];
  const main = found[0]![1];
  const reported = config.jupyterhub_version ?? main.version ?? FALLBACK_JUPYTERHUB_VERSION;
  for (const [cmd0, f] of found) {
    const where = cmd0 === config.spawner.cmd[0] ? "spawner.cmd" : `profile ${config.spawner.profiles.filter((p) => p.cmd?.[0] === cmd0).map((p) => p.name).join(", ")}`;
    if (!f.command.startsWith("/") || f.problem === "not found on PATH" || f.problem === "no such executable file") {
      results.push(fail("singleuser", `${cmd0} (${where}): ${f.problem ?? "not found"}`, cmd0.includes("/") ? `install it there, or correct ${where}` : "apt install jupyterhub python3-notebook (or pip install jupyterhub jupyterlab), or give the full path in the config"));
      continue;
    }
    if (!f.version) {
      results.push(warn("singleuser", `${f.command} (${where}): jupyterhub version unknown (${f.problem})`, `the hub reports ${reported}; if this is jupyterhub-singleuser, set jupyterhub_version to its version`));
      continue;
    }
    const via = f.source === "--version" ? "its --version" : f.from;
    if (majorMinor(f.version) !== majorMinor(reported)) {
      results.push(
        warn(
          "singleuser",
          `${f.command} (${where}) is jupyterhub ${f.version} but the hub reports ${reported}${config.jupyterhub_version ? " (jupyterhub_version)" : ""}: the server warns about the mismatch at every start`,
          config.jupyterhub_version && cmd0 === config.spawner.cmd[0] ? `remove jupyterhub_version from the config (it is detected) or set it to "${f.version}"` : "use the same jupyterhub version for every profile's command",
        ),
      );
      continue;
    }
    results.push(ok("singleuser", `${f.command} (${where}): jupyterhub ${f.version} (from ${via}); the hub reports ${reported}${config.jupyterhub_version ? " (jupyterhub_version)" : " (detected)"}`));
  }
  return results;
}

// --- the OpenID provider, the clock -----------------------------------------------------------------------

export interface Discovery {
  url: string;
  ok: boolean;
  /** The provider's Date header, if it answered. */
  date?: string;
  /** When the answer arrived (ms since epoch), to compare with date. */
  receivedAt?: number;
  /** What went wrong, when !ok. */
  error?: string;
  doc?: Record<string, unknown>;
}

/** GETs `<issuer>/.well-known/openid-configuration`, giving up after timeoutMs. */
export async function fetchDiscovery(issuer: string, timeoutMs: number, fetchImpl: typeof fetch = fetch): Promise<Discovery> {
  const url = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
  try {
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "manual", headers: { accept: "application/json" } });
    const receivedAt = Date.now();
    const date = res.headers.get("date") ?? undefined;
    const base = { url, date, receivedAt };
    if (res.status !== 200) {
      await res.body?.cancel();
      return { ...base, ok: false, error: `HTTP ${res.status}${res.status >= 300 && res.status < 400 ? ` (a redirect to ${res.headers.get("location")})` : ""}` };
    }
    const text = await res.text();
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return { ...base, ok: false, error: "the answer is not JSON" };
    }
    if (!doc || typeof doc !== "object") return { ...base, ok: false, error: "the answer is not a JSON object" };
    return { ...base, ok: true, doc: doc as Record<string, unknown> };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === "TimeoutError" ? `no answer within ${timeoutMs / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { url, ok: false, error: why };
  }
}

/** The URL the provider must have registered for this hub (auth/oidc.tsx sends exactly this). */
export function redirectUri(config: Config): string {
  return new URL("/hub/oauth_callback", config.public_url ?? config.listen).href;
}

export function checkOidc(config: Config, d: Discovery): CheckResult[] {
  if (config.auth.kind !== "oidc") return [skip("oidc", "no OpenID provider (dev login)")];
  const issuer = config.auth.issuer;
  const register = ok("redirect-uri", `${redirectUri(config)} — register exactly this as an authorized redirect URI in your provider's console (client ${config.auth.client_id})`);
  if (!d.ok) {
    return [fail("oidc", `${d.url}: ${d.error}`, `check auth.issuer (${issuer}), DNS and that this host may reach it (a proxy or firewall for outgoing HTTPS)`), register];
  }
  const doc = d.doc!;
  const problems: string[] = [];
  if (doc.issuer !== issuer) problems.push(`it names issuer ${JSON.stringify(doc.issuer)}, not ${JSON.stringify(issuer)} (logins would be refused: set auth.issuer to exactly that)`);
  for (const key of ["authorization_endpoint", "token_endpoint", "jwks_uri"]) if (typeof doc[key] !== "string") problems.push(`no ${key}`);
  if (problems.length) return [fail("oidc", `${d.url} answers, but ${problems[0]}`, "auth.issuer must be the provider's issuer URL exactly as its discovery document says", problems.slice(1)), register];
  const uri = new URL(redirectUri(config));
  if (uri.protocol !== "https:" && !isLoopbackHost(uri.hostname)) {
    return [ok("oidc", `${d.url} answers`), warn("redirect-uri", `${uri.href} is plain http: Google and most providers only accept https redirect URIs (except for localhost)`, "serve https (listen https:// with tls, or a reverse proxy) and set public_url to the https URL")];
  }
  return [ok("oidc", `${d.url} answers (issuer ${issuer})`), register];
}

/** This host's clock against the provider's Date header (1 s resolution): ID tokens carry times. */
export function checkClock(date: string | undefined, receivedAt: number | undefined, what: string): CheckResult {
  if (!date || receivedAt === undefined) return skip("clock", `no time to compare with (${what} did not answer with a Date header)`);
  const theirs = Date.parse(date);
  if (Number.isNaN(theirs)) return skip("clock", `${what} sent an unreadable Date header`);
  // The header is truncated to the second: up to 1 s of difference is rounding.
  const skewS = (receivedAt - theirs) / 1000;
  const abs = Math.abs(skewS);
  const say = `this host's clock is ${abs.toFixed(0)} s ${skewS > 0 ? "ahead of" : "behind"} ${what}`;
  const fix = "run time synchronisation: timedatectl set-ntp true (systemd-timesyncd), or chrony";
  if (abs > 300) return fail("clock", say, `${fix}; OpenID logins fail when tokens seem issued in the future or already expired`);
  if (abs > 30) return warn("clock", say, fix);
  return ok("clock", `within ${Math.max(1, Math.ceil(abs))} s of ${what}`);
}

// --- public_url and DNS -----------------------------------------------------------------------------------

/** Every address of this host's interfaces. */
export function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

export async function resolveHost(host: string, timeoutMs: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: "ETIMEOUT" })), timeoutMs);
  });
  try {
    return (await Promise.race([lookup(host, { all: true }), timeout])).map((a) => a.address);
  } finally {
    clearTimeout(timer);
  }
}

export async function checkPublicUrl(config: Config, resolveImpl: (host: string) => Promise<string[]>, local: string[]): Promise<CheckResult> {
  const url = new URL(config.public_url ?? config.listen);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const which = config.public_url ? "public_url" : "listen (no public_url)";
  if (isLoopbackHost(url.hostname)) return ok("public-url", `${url.origin} (${which}) is this machine only (loopback)`);
  if (host === "0.0.0.0" || host === "::") return warn("public-url", `no public_url, and listen (${url.origin}) is every address, not one people can type`, "set public_url to the URL people use, e.g. https://hub.example.org (links, OAuth redirects and cookies depend on it)");
  let addrs: string[];
  try {
    addrs = isIP(host) ? [host] : await resolveImpl(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return fail("public-url", `${host} (${which}) does not resolve: ${code}`, `add a DNS A/AAAA record for ${host} pointing at this host (or correct ${config.public_url ? "public_url" : "listen"})`);
  }
  const mine = addrs.filter((a) => local.includes(a));
  if (mine.length) return ok("public-url", `${host} resolves to ${mine.join(", ")}, an address of this host`);
  return warn(
    "public-url",
    `${host} resolves to ${addrs.join(", ")}, which is not an address of this host`,
    "fine behind NAT, a load balancer or a reverse proxy on another machine (forward to this host's listen address); otherwise correct the DNS record",
  );
}

// --- the certificate --------------------------------------------------------------------------------------

/** `tls.cert_file` (the https part's contract), read from the parsed config if it knows it, else from the file. */
export function tlsCertFile(config: Config | undefined, raw: Record<string, unknown> | undefined): string | undefined {
  for (const source of [config as unknown as Record<string, unknown> | undefined, raw]) {
    const tls = source?.tls;
    if (tls && typeof tls === "object" && typeof (tls as Record<string, unknown>).cert_file === "string") return (tls as Record<string, unknown>).cert_file as string;
  }
  return undefined;
}

export function checkCertificate(listen: string, certFile: string | undefined, publicHost: string | undefined, now: number, isRoot: boolean): CheckResult {
  if (!listen.startsWith("https:")) return skip("certificate", "listen is http (TLS, if any, ends in front of slicehub)");
  if (!certFile) return fail("certificate", "listen is https but there is no tls.cert_file", 'add "tls": { "cert_file": …, "key_file": … } (docs/https.md)');
  let pem: string;
  try {
    pem = readFileSync(certFile, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === "EACCES" || code === "EPERM") && !isRoot) return warn("certificate", `cannot read ${certFile} (${code}) as this user`, "run slicehub doctor as root to check it");
    return fail("certificate", `cannot read ${certFile}: ${code ?? (err as Error).message}`, "correct tls.cert_file, or get a certificate (certbot certonly --standalone -d <host>)");
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    return fail("certificate", `${certFile} is not a PEM certificate: ${(err as Error).message}`, "tls.cert_file must be the PEM certificate (with its chain: certbot's fullchain.pem)");
  }
  const to = Date.parse(cert.validTo);
  const from = Date.parse(cert.validFrom);
  const days = (to - now) / 86_400_000;
  const renew = "renew it (certbot renew; slicehub reloads a changed file by itself)";
  if (now < from) return fail("certificate", `${certFile} is not valid until ${new Date(from).toISOString()}`, "check this host's clock, or the certificate");
  if (days <= 0) return fail("certificate", `${certFile} expired on ${new Date(to).toISOString()}`, renew);
  const hostNote = publicHost && !isLoopbackHost(publicHost) && !cert.checkHost(publicHost) && !(isIP(publicHost) && cert.checkIP(publicHost)) ? `; it does not name ${publicHost}` : "";
  if (days < 21) return warn("certificate", `${certFile} expires in ${days.toFixed(1)} days (${new Date(to).toISOString()})${hostNote}`, renew);
  if (hostNote) return warn("certificate", `${certFile} is valid for ${Math.floor(days)} days${hostNote}`, "get a certificate for the host in public_url");
  return ok("certificate", `${certFile} is valid for ${Math.floor(days)} more days (until ${new Date(to).toISOString().slice(0, 10)})`);
}

// --- disk -------------------------------------------------------------------------------------------------

const GiB = 2 ** 30;

export interface Space {
  free: number;
  total: number;
}

function statSpace(path: string): Space {
  const s = statfsSync(path);
  return { free: Number(s.bavail) * Number(s.bsize), total: Number(s.blocks) * Number(s.bsize) };
}

/** The path itself or its nearest existing parent (a state_dir before the first start). */
function existingAncestor(path: string): string {
  let p = resolve(path);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

export function checkDisk(id: string, what: string, path: string, space: (p: string) => Space = statSpace): CheckResult {
  const at = existingAncestor(path);
  let s: Space;
  try {
    s = space(at);
  } catch (err) {
    return warn(id, `cannot see the free space of ${at} (${what}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, "run slicehub doctor as root");
  }
  const pct = s.total > 0 ? (100 * s.free) / s.total : 0;
  const say = `${(s.free / GiB).toFixed(1)} GiB (${pct.toFixed(0)} %) free in ${at} (${what})`;
  const fix = `free space there or grow the file system${id === "disk-homes" ? " (du -sh /home/* shows who uses it; profile or slice limits do not cap disk)" : ""}`;
  if (pct < 2) return fail(id, say, fix);
  if (pct < 10 || s.free < GiB) return warn(id, say, fix);
  return ok(id, say);
}

// --- sshd -------------------------------------------------------------------------------------------------

export interface SshdCheckOptions {
  dropIn?: string;
  sshd?: string;
  isRoot: boolean;
  /** Accounts with the prefix that are not slicehub's (install leaves them out). */
  exclude: () => Promise<string[]>;
  /** Runs sshd -t; undefined = passed, else sshd's complaint. */
  sshdTest?: () => Promise<string | undefined>;
  /** The drop-in's settings sshd -T does not show for a managed account (root only). */
  missing?: () => string[];
}

export async function checkSshd(config: Config, o: SshdCheckOptions): Promise<CheckResult> {
  if (!config.ssh.enabled) return skip("sshd", "ssh.enabled is false");
  if (config.spawner.kind !== "systemd") return fail("sshd", "ssh.enabled needs the systemd spawner (the local spawner has no accounts to log in to)", 'set spawner.kind to "systemd", or ssh.enabled to false');
  const dropIn = o.dropIn ?? SSHD_DROPIN;
  const sshd = o.sshd ?? SSHD;
  if (!existsSync(sshd)) return fail("sshd", `${sshd} is not installed`, "apt install openssh-server, then slicehub install");
  let text: string;
  try {
    text = readFileSync(dropIn, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return fail("sshd", `${dropIn} is missing`, "run slicehub install (it writes the drop-in and reloads sshd)");
    return fail("sshd", `cannot read ${dropIn}: ${code}`, "run slicehub doctor as root");
  }
  let want: string;
  try {
    want = sshdDropIn({ prefix: config.spawner.unix_users.prefix, serviceUser: config.run_as, enabled: true, exclude: await o.exclude() });
  } catch (err) {
    return fail("sshd", `the drop-in cannot be built from this config: ${(err as Error).message}`, "correct the config");
  }
  if (text !== want) return warn("sshd", `${dropIn} differs from what slicehub install writes for this config (ssh, prefix, run_as or the accounts changed)`, "run slicehub install again");
  if (!o.isRoot) return warn("sshd", `${dropIn} is up to date; sshd -t and sshd -T were not run (they need root to read the host keys)`, "run slicehub doctor as root to check that sshd accepts and applies it");
  const refused = await (o.sshdTest ?? (() => runSshdTest(sshd)))();
  if (refused) return fail("sshd", `sshd -t refuses the configuration: ${refused.split("\n")[0]}`, "correct /etc/ssh/sshd_config (or a file it includes); sshd keeps its old config until then, and fails to start after a reboot");
  const prefix = config.spawner.unix_users.prefix;
  const missing = (o.missing ?? (() => sshdMissing({ prefix, serviceUser: config.run_as, enabled: true }, KEYS_COMMAND)))();
  if (missing.length) {
    return fail("sshd", `sshd does not apply the drop-in to managed accounts (sshd -T lacks: ${missing.join("; ")})`, 'put "Include /etc/ssh/sshd_config.d/*.conf" first in /etc/ssh/sshd_config and remove earlier Match blocks that set these keys');
  }
  return ok("sshd", `${dropIn} is up to date, sshd -t passes and sshd applies it`);
}

function runSshdTest(sshd: string): Promise<string | undefined> {
  return new Promise((res) => {
    execFile(sshd, ["-t"], { timeout: 5000 }, (err, _out, stderr) => res(err ? (stderr.trim() || err.message) : undefined));
  });
}

// --- the service: its user, its unit, its database --------------------------------------------------------

export async function checkServiceUser(config: Config, find: (name: string) => Promise<{ uid: number } | undefined> = lookupAccount): Promise<CheckResult> {
  if (config.spawner.kind !== "systemd") return skip("service-user", "the local spawner runs as whoever starts it");
  const a = await find(config.run_as).catch(() => undefined);
  if (!a) return fail("service-user", `no Unix account ${config.run_as} (run_as) to drop privileges to`, "run slicehub install (it creates it)");
  if (a.uid === 0) return fail("service-user", `run_as ${config.run_as} is root`, "use an unprivileged system user (slicehub install creates slicehub)");
  return ok("service-user", `${config.run_as} exists (uid ${a.uid})`);
}

/** `systemctl show -p LoadState -p ActiveState UNIT…`'s output → each unit's two states, in order. */
export function parseUnitStates(output: string): { load: string; active: string }[] {
  return output
    .trim()
    .split(/\n\s*\n/)
    .filter((block) => block.trim())
    .map((block) => ({ load: /^LoadState=(.*)$/m.exec(block)?.[1] ?? "", active: /^ActiveState=(.*)$/m.exec(block)?.[1] ?? "" }));
}

/**
 * One unit's state → a result. slicehub.service is the hub; slicehub-helper.service is the privileged helper
 * when it runs as its own unit (newer installs; before, slicehub.service forked it, and it has no unit).
 */
export function checkUnit(unit: string, state: { load: string; active: string } | undefined, spawnerKind: string): CheckResult {
  const id = unit === "slicehub.service" ? "unit" : "helper-unit";
  if (!state) return skip(id, "no systemctl here");
  if (state.active === "active" || state.active === "reloading") return ok(id, `${unit} is ${state.active}`);
  if (state.load === "not-found") {
    if (id === "helper-unit") return skip(id, `${unit} is not installed (the hub forks its helper itself)`);
    return spawnerKind === "systemd" ? warn(id, `${unit} is not installed`, "run slicehub install, then systemctl daemon-reload && systemctl enable --now slicehub") : skip(id, `${unit} is not installed (run by hand with the local spawner?)`);
  }
  if (state.active === "failed") return fail(id, `${unit} has failed`, `journalctl -u ${unit} -e shows why; then systemctl restart ${unit}`);
  if (spawnerKind !== "systemd") return skip(id, `${unit} is ${state.active || "unknown"} (run by hand with the local spawner?)`);
  return warn(id, `${unit} is ${state.active || "unknown"}`, "systemctl enable --now slicehub");
}

/** Opens the database read-only: readable, and its schema the one this slicehub knows. */
export function checkDatabase(stateDir: string): CheckResult {
  const path = join(stateDir, "slicehub.sqlite");
  if (!existsSync(path)) return ok("database", `${path} does not exist yet (made at the first start)`);
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma("busy_timeout = 2000");
    const version = db.pragma("user_version", { simple: true }) as number;
    const integrity = db.pragma("quick_check", { simple: true }) as string;
    if (integrity !== "ok") return fail("database", `${path}: quick_check says ${integrity}`, "restore the last backup (slicehub restore FILE)");
    if (version > MIGRATIONS.length) return fail("database", `${path} has schema ${version}, newer than this slicehub knows (${MIGRATIONS.length})`, "run the slicehub that wrote it, or restore a backup made by this one");
    if (version < MIGRATIONS.length) return warn("database", `${path} has schema ${version} of ${MIGRATIONS.length}: the running hub is older than this slicehub`, "systemctl restart slicehub (the new schema is applied at start)");
    return ok("database", `${path} opens, schema ${version} is current`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return fail("database", `cannot open ${path}: ${(err as Error).message}`, code === "SQLITE_CANTOPEN" ? "run slicehub doctor as root or as the service user" : "restore the last backup (slicehub restore FILE)");
  } finally {
    db?.close();
  }
}

// --- the whole run ----------------------------------------------------------------------------------------

export interface DoctorOptions {
  configPath: string;
  timeoutMs: number;
  json: boolean;
  out: (text: string) => void;
  /** Where progress goes (stderr), and whether it is a terminal. */
  progress: { write: (text: string) => void; tty: boolean };
  color: boolean;
}

function run(cmd: string, args: string[], timeoutMs = 5000): Promise<{ code: number; stdout: string } | undefined> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout) => {
      if (err && (err as NodeJS.ErrnoException).code === "ENOENT") return res(undefined);
      res({ code: err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0, stdout });
    });
  });
}

/** The exit status: 0 all OK (skips included), 1 at least one FAIL, 3 only warnings (2 stays "usage error"). */
export function exitStatus(results: CheckResult[]): number {
  if (results.some((r) => r.status === "fail")) return 1;
  if (results.some((r) => r.status === "warn")) return 3;
  return 0;
}

const LABEL: Record<Status, string> = { ok: "OK  ", warn: "WARN", fail: "FAIL", skip: "--  " };
const COLOR: Record<Status, string> = { ok: "32", warn: "33", fail: "31", skip: "2" };

export function formatResult(r: CheckResult, color: boolean): string {
  const label = color ? `\x1b[${COLOR[r.status]}m${LABEL[r.status]}\x1b[0m` : LABEL[r.status];
  const lines = [`${label} ${r.id.padEnd(12)} ${r.message}${r.fix ? ` — fix: ${r.fix}` : ""}`];
  for (const d of r.details ?? []) lines.push(`     ${"".padEnd(12)} ${d}`);
  return lines.join("\n");
}

export async function runDoctor(o: DoctorOptions): Promise<number> {
  const isRoot = process.getuid?.() === 0;
  const results: CheckResult[] = [];
  let clearProgress = () => {};
  const show = (r: CheckResult) => {
    results.push(r);
    clearProgress();
    if (!o.json) o.out(`${formatResult(r, o.color)}\n`);
  };
  /** Waits for something slow, saying what (a line on a terminal, rewritten; one line otherwise). */
  const slow = async <T>(what: string, p: Promise<T>): Promise<T> => {
    if (o.json) return p;
    // Said only when it really is slow: most answers come well within this.
    const settled = await Promise.race([p.then(() => true, () => true), new Promise<false>((r) => setTimeout(r, 300, false).unref())]);
    if (settled) return p;
    if (o.progress.tty) {
      o.progress.write(`… ${what} (at most ${o.timeoutMs / 1000} s)`);
      clearProgress = () => {
        o.progress.write("\r\x1b[K");
        clearProgress = () => {};
      };
    } else o.progress.write(`waiting for ${what} (at most ${o.timeoutMs / 1000} s)\n`);
    try {
      return await p;
    } finally {
      clearProgress();
    }
  };

  const { result, config, raw } = checkConfig(o.configPath);
  show(result);
  const rawSpawner = (raw?.spawner as Record<string, unknown> | undefined)?.kind;
  const kind = config?.spawner.kind ?? (typeof rawSpawner === "string" ? rawSpawner : "local");

  // Network and processes first, all at once, each bounded; the answers are awaited in print order below.
  const discovery = config?.auth.kind === "oidc" ? fetchDiscovery(config.auth.issuer, o.timeoutMs) : undefined;
  const publicUrl = config ? checkPublicUrl(config, (h) => resolveHost(h, o.timeoutMs), localAddresses()) : undefined;
  const singleuser = config ? checkSingleuser(config, (c) => detectSingleuserVersion(c, { timeoutMs: o.timeoutMs })) : undefined;
  const systemctl = run("systemctl", ["--version"]);
  const units = ["slicehub.service", "slicehub-helper.service"];
  const unitStates = run("systemctl", ["show", "-p", "LoadState", "-p", "ActiveState", ...units]);

  show(checkCgroup("/sys/fs/cgroup", kind));
  const sv = await systemctl;
  show(checkSystemd(sv?.code === 0 ? sv.stdout : undefined, existsSync("/run/systemd/system"), kind));
  if (!config) {
    show(skip("others", "the other checks need a valid config"));
  } else {
    for (const r of await slow("the single-user command", singleuser!)) show(r);
    const d = discovery ? await slow(`the OpenID provider (${config.auth.kind === "oidc" ? config.auth.issuer : ""})`, discovery) : undefined;
    for (const r of checkOidc(config, d ?? { url: "", ok: false })) show(r);
    show(d ? checkClock(d.date, d.receivedAt, new URL(d.url).host) : skip("clock", "no OpenID provider to compare with (dev login)"));
    show(await slow("DNS", publicUrl!));
    const publicHost = new URL(config.public_url ?? config.listen).hostname.replace(/^\[|\]$/g, "");
    const certFile = tlsCertFile(config, raw);
    show(checkCertificate(config.listen, certFile ? resolve(dirname(resolve(o.configPath)), certFile) : undefined, publicHost, Date.now(), isRoot));
    show(checkDisk("disk-state", "state_dir", config.state_dir));
    if (config.spawner.kind === "systemd") show(checkDisk("disk-homes", "spawner.unix_users.home", config.spawner.unix_users.home));
    const sp = config.spawner;
    show(
      await checkSshd(config, {
        isRoot,
        exclude: async () => (sp.kind === "systemd" ? (await prefixAccounts(sp.unix_users)).filter((a) => a.hubUser === undefined).map((a) => a.name) : []),
      }),
    );
    show(await checkServiceUser(config));
    const us = await unitStates;
    const states = us?.code === 0 ? parseUnitStates(us.stdout) : [];
    if (!existsSync("/run/systemd/system")) show(skip("unit", "systemd is not running here"));
    else units.forEach((u, i) => show(checkUnit(u, states[i], kind)));
    show(checkDatabase(config.state_dir));
  }

  const status = exitStatus(results);
  const count = (s: Status) => results.filter((r) => r.status === s).length;
  if (o.json) {
    o.out(`${JSON.stringify({ config: o.configPath, exit: status, summary: { ok: count("ok"), warn: count("warn"), fail: count("fail"), skip: count("skip") }, checks: results }, null, 2)}\n`);
  } else {
    o.out(`\n${count("ok")} OK, ${count("warn")} WARN, ${count("fail")} FAIL, ${count("skip")} skipped: ${status === 0 ? "nothing to worry about" : status === 1 ? "fix the FAIL lines" : "look at the WARN lines"}\n`);
  }
  return status;
}
