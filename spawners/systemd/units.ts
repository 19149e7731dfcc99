// Pure functions that turn a user's server into systemd names and a `systemd-run` argv. The privileged helper
// builds every argv it runs through here, so this file is where "no secret in a unit property" and "names cannot
// change the slice hierarchy" are enforced.
import type { SystemdSpawnerConfig } from "../../src/config/schema.js";
import { SECRET_ENV_NAME } from "../../src/jupyterhub-env.js";

/** Like `systemd-escape` without --path: the result is safe as one component of a unit name. */
export function systemdEscape(s: string): string {
  let out = "";
  for (const [i, byte] of [...Buffer.from(s, "utf8")].entries()) {
    const ch = String.fromCharCode(byte);
    if (ch === "/") out += "-";
    else if (/[A-Za-z0-9:_]/.test(ch) || (ch === "." && i > 0)) out += ch;
    else out += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

// systemd's limit on unit names (UNIT_NAME_MAX - 1).
const UNIT_NAME_MAX = 255;

/**
 * The user's slice and the server's unit. Escaping turns every `-` inside a name into `\x2d`, so the only
 * dashes left are ours: a slice is always a direct child of slicehub.slice, and (user, server) pairs map to
 * distinct units. `/` is refused because systemd-escape would turn it into a dash.
 */
export function unitNames(user: string, server: string): { slice: string; unit: string } {
  if (!user) throw new Error("unit names need a user name");
  for (const name of [user, server]) {
    if (name.includes("/")) throw new Error(`"${name}" cannot be part of a unit name: it contains "/"`);
  }
  const u = systemdEscape(user);
  const slice = `slicehub-${u}.slice`;
  const unit = server ? `slicehub-server-${u}-${systemdEscape(server)}.service` : `slicehub-server-${u}.service`;
  if (unit.length > UNIT_NAME_MAX) throw new Error(`unit name for ${user}/${server} is longer than ${UNIT_NAME_MAX} characters once escaped`);
  return { slice, unit };
}

/**
 * Of these unit names, the named servers' units of `user`. They all start with the user's default unit name
 * (without ".service") and "-"; no other user's unit does, because "-" inside a name is escaped as "\x2d".
 */
export function namedUnitsOf(user: string, units: readonly string[]): string[] {
  const prefix = `${unitNames(user, "").unit.slice(0, -".service".length)}-`;
  return units.filter((u) => u.startsWith(prefix) && u.endsWith(".service"));
}

/** CPUs as a CPUQuota= value: 1.5 → "150%" (systemd takes at most two decimals). */
export function cpuQuota(cpus: number): string {
  return `${Number((cpus * 100).toFixed(2))}%`;
}

export interface Limits {
  /** MemoryMax=, as in the config ("2G"; systemd reads K/M/G/T as powers of 1024, like the schema says). */
  memory?: string;
  /** CPUs; becomes CPUQuota=. */
  cpu?: number;
  /** TasksMax= */
  tasks?: number;
}

export function limitProperties(limits: Limits): string[] {
  const props: string[] = [];
  if (limits.memory !== undefined) props.push(`MemoryMax=${limits.memory}`);
  if (limits.cpu !== undefined) props.push(`CPUQuota=${cpuQuota(limits.cpu)}`);
  if (limits.tasks !== undefined) props.push(`TasksMax=${limits.tasks}`);
  return props;
}

export type Hardening = SystemdSpawnerConfig["hardening"];

export function hardeningProperties(h: Hardening, home: string): string[] {
  const props: string[] = [];
  if (h.no_new_privileges) props.push("NoNewPrivileges=yes");
  if (h.private_tmp) props.push("PrivateTmp=yes");
  if (h.private_devices) props.push("PrivateDevices=yes");
  if (h.protect_system !== "no") props.push(`ProtectSystem=${h.protect_system}`);
  // Only "strict" makes /home read-only; the server must still be able to write its own home.
  if (h.protect_system === "strict") props.push(`ReadWritePaths=${home}`);
  if (h.protect_kernel) props.push("ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes");
  if (h.protect_control_groups) props.push("ProtectControlGroups=yes");
  if (h.restrict_suid_sgid) props.push("RestrictSUIDSGID=yes");
  if (h.lock_personality) props.push("LockPersonality=yes");
  return props;
}

/** The credential name the wrapper reads; JupyterHub's own name for the token. */
export const TOKEN_CREDENTIAL = "jupyterhub-api-token";

export interface UnitSpec {
  unit: string;
  slice: string;
  uid: number;
  gid: number;
  home: string;
  /** The server command, run by the wrapper. */
  argv: string[];
  /** Not secret: every local user can read it with `systemctl show`. */
  env: Record<string, string>;
  /** Root-only file holding the API token; systemd copies it into the unit's credentials at start. */
  credentialPath: string;
  wrapperPath: string;
  limits: Limits;
  hardening: Hardening;
  /** Config `properties`; the schema already refuses the keys set here. */
  properties: Record<string, string>;
  description: string;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The `systemd-run` argv for one server. Without --no-block: with Type=exec, systemd-run returns once the
 * wrapper has been exec'd, so a bad uid, home, credential file or wrapper path fails the call itself with
 * systemd's message instead of surfacing later as a dead unit. Config properties come before everything
 * slicehub sets, because for a repeated property the last assignment wins.
 */
export function systemdRunArgv(spec: UnitSpec): string[] {
  // ReadWritePaths= is a space-separated list, so a home with blanks or quotes would be misread.
  if (!/^\/[^\s"'\\]*$/.test(spec.home)) throw new Error(`home ${JSON.stringify(spec.home)} must be an absolute path without blanks, quotes or backslashes`);
  if (/[\n\r]/.test(spec.description)) throw new Error("the unit description must be one line");
  // No --collect: a failed unit stays loaded until the spawner resets it, so its Result (oom-kill, exit
  // status) can still be read to tell the user why it died.
  const argv = ["systemd-run", "--unit", spec.unit, "--slice", spec.slice, "--description", spec.description];
  argv.push("--uid", String(spec.uid), "--gid", String(spec.gid), "--working-directory", spec.home);
  const props = [
    ...Object.entries(spec.properties).map(([k, v]) => `${k}=${v}`),
    "Type=exec",
    // One OOM-killed kernel must not take the whole server down with it.
    "OOMPolicy=continue",
    ...limitProperties(spec.limits),
    ...hardeningProperties(spec.hardening, spec.home),
    `LoadCredential=${TOKEN_CREDENTIAL}:${spec.credentialPath}`,
  ];
  for (const p of props) {
    if (/[\n\r]/.test(p)) throw new Error(`unit property ${JSON.stringify(p)} spans lines`);
    argv.push("-p", p);
  }
  for (const [k, v] of Object.entries(spec.env)) {
    if (!ENV_NAME.test(k)) throw new Error(`env: ${JSON.stringify(k)} is not a variable name`);
    if (SECRET_ENV_NAME.test(k)) throw new Error(`env.${k}: looks like a secret; secrets go through LoadCredential=, never Environment=`);
    if (/[\n\r\0]/.test(v)) throw new Error(`env.${k}: values cannot contain line breaks or NUL`);
    argv.push(`--setenv=${k}=${v}`);
  }
  // systemd expands $VAR and ${VAR} in the command line it executes; "$$" is a literal "$".
  argv.push("--", ...[spec.wrapperPath, ...spec.argv].map((a) => a.replaceAll("$", "$$$$")));
  return argv;
}

/** Applies limits to a live slice without a unit file; null when there is nothing to set. */
export function sliceSetPropertyArgv(slice: string, limits: Limits): string[] | null {
  const props = limitProperties(limits);
  return props.length ? ["systemctl", "set-property", "--runtime", slice, ...props] : null;
}
