// The host's OpenSSH, as slicehub configures it for the accounts it manages: the sshd drop-in and the
// AuthorizedKeysCommand wrapper `slicehub install` writes (and their removal), and the limits SSH sessions are
// held to. Text builders are pure; configureSshd/removeSshd do the file work (as root, from `slicehub install`).
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Config } from "../config/schema.js";
import { resolveProfile } from "../profiles.js";

/** sshd reads this: Debian's sshd_config starts with `Include /etc/ssh/sshd_config.d/*.conf`. */
export const SSHD_DROPIN = "/etc/ssh/sshd_config.d/slicehub.conf";
/**
 * The AuthorizedKeysCommand sshd runs. sshd refuses a command unless it and every directory above it are
 * root-owned and writable by nobody else, which the package's own files need not be (a checkout, an npm
 * prefix): so a root-owned wrapper here execs node on the package's entry.
 */
export const KEYS_COMMAND = "/usr/local/libexec/slicehub/authorized-keys";
export const SSHD = "/usr/sbin/sshd";
/** Where the helper writes each managed account's user-slice limits (the slice logind puts SSH sessions in). */
export const USER_SLICE_DIR = "/etc/systemd/system";

// Unix user name prefixes as the schema allows them: nothing sshd's pattern lists would read as a wildcard,
// negation or list separator.
const SAFE_PREFIX = /^[a-z_][a-z0-9_-]{0,15}$/;
const UNIX_NAME = /^[a-z_][a-z0-9_.-]*$/;

export interface SshdDropInOptions {
  /** spawner.unix_users.prefix: `Match User <prefix>*`. */
  prefix: string;
  /** run_as: the unprivileged user sshd runs the keys command as. */
  serviceUser: string;
  /** ssh.enabled: without it the block admits nobody. */
  enabled: boolean;
  keysCommand?: string;
  /** Accounts with the prefix that are not slicehub's (not made by it, adopt_existing off): left alone. */
  exclude?: string[];
}

/** The drop-in's text. */
export function sshdDropIn(o: SshdDropInOptions): string {
  if (!SAFE_PREFIX.test(o.prefix)) throw new Error(`unix_users.prefix ${JSON.stringify(o.prefix)} cannot be used in an sshd Match pattern`);
  if (!UNIX_NAME.test(o.serviceUser)) throw new Error(`run_as ${JSON.stringify(o.serviceUser)} is not a Unix user name`);
  const exclude = (o.exclude ?? []).filter((n) => n.startsWith(o.prefix));
  for (const n of exclude) if (!UNIX_NAME.test(n)) throw new Error(`cannot exclude ${JSON.stringify(n)} in an sshd Match pattern`);
  const command = o.keysCommand ?? KEYS_COMMAND;
  if (!/^\/[A-Za-z0-9._/-]+$/.test(command)) throw new Error(`AuthorizedKeysCommand path ${JSON.stringify(command)} has characters sshd would misread`);
  const keys = o.enabled
    ? [
        `# The keys hub users added on the hub (/hub/ssh-keys), asked for at every login: none for a blocked,`,
        `# removed or no-longer-allowed user, so their next login is refused.`,
        `AuthorizedKeysCommand ${command} %u`,
        `AuthorizedKeysCommandUser ${o.serviceUser}`,
      ]
    : [`# ssh.enabled is false: no key is accepted, so these accounts cannot log in over SSH at all.`];
  return [
    `# Written by \`slicehub install\`; it rewrites this file on every run and \`slicehub uninstall\` removes it.`,
    `# SSH for the Unix accounts slicehub manages (spawner.unix_users.prefix "${o.prefix}"), and for no one else:`,
    `# OpenSSH ends a Match block at the end of the file it is in, so the settings after sshd_config's Include`,
    `# still apply to everyone, and every other account logs in exactly as before (check: sshd -T -C user=...).`,
    `Match User ${[`${o.prefix}*`, ...exclude.map((n) => `!${n}`)].join(",")}`,
    ...[
      `# Public keys only, and only slicehub's: ~/.ssh/authorized_keys does not count, or a user could plant a`,
      `# key from their Jupyter and keep a way in after being blocked.`,
      `PubkeyAuthentication yes`,
      `AuthenticationMethods publickey`,
      `AuthorizedKeysFile none`,
      ...keys,
      `PasswordAuthentication no`,
      `KbdInteractiveAuthentication no`,
      `HostbasedAuthentication no`,
      `# Local forwarding (ssh -L/-D; VS Code Remote-SSH needs it) to this host's loopback ports only: the ports`,
      `# the user's own processes listen on, and whatever else a shell of theirs could reach there anyway.`,
      `# No remote forwarding (-R), no listening for others, no agent, X11 or tunnel devices.`,
      `AllowTcpForwarding local`,
      `PermitOpen localhost:* 127.0.0.1:* [::1]:*`,
      `AllowStreamLocalForwarding local`,
      `GatewayPorts no`,
      `PermitListen none`,
      `X11Forwarding no`,
      `AllowAgentForwarding no`,
      `PermitTunnel no`,
    ].map((l) => `    ${l}`),
    "",
  ].join("\n");
}

/** The wrapper sshd runs as AuthorizedKeysCommand: execs the package's small keys entry with the config. */
export function keysCommandScript(o: { node: string; entry: string; configPath: string }): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  return [
    "#!/bin/sh",
    "# Written by `slicehub install`: sshd's AuthorizedKeysCommand for the accounts slicehub manages (see",
    `# ${SSHD_DROPIN}). It prints the public keys of the hub user behind the Unix account "$1".`,
    `exec ${q(o.node)} ${q(o.entry)} --config ${q(o.configPath)} "$1"`,
    "",
  ].join("\n");
}

/** Writes a file only when its content differs (atomically); returns whether it changed. */
function writeIfChanged(path: string, text: string, mode: number): boolean {
  let old: string | undefined;
  try {
    old = readFileSync(path, "utf8");
  } catch {
    old = undefined;
  }
  if (old === text) {
    chmodSync(path, mode);
    return false;
  }
  const tmp = `${path}.slicehub-new`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
  return true;
}

/** Whether this host has OpenSSH's server installed (the drop-in directory its sshd_config includes). */
export function sshdInstalled(): boolean {
  return existsSync(SSHD) && existsSync(dirname(SSHD_DROPIN));
}

/** `systemctl reload ssh` when sshd runs under systemd; new connections see the new config, open ones keep theirs. */
function reloadSshd(say: (line: string) => void): void {
  for (const unit of ["ssh.service", "sshd.service"]) {
    let active = false;
    try {
      execFileSync("systemctl", ["is-active", "--quiet", unit], { stdio: "ignore" });
      active = true;
    } catch {
      // not active (or no systemd)
    }
    if (active) {
      execFileSync("systemctl", ["reload", unit], { stdio: ["ignore", "ignore", "pipe"] });
      say(`reloaded ${unit}`);
      return;
    }
  }
  let socket = false;
  try {
    execFileSync("systemctl", ["is-active", "--quiet", "ssh.socket"], { stdio: "ignore" });
    socket = true;
  } catch {
    // no socket activation either
  }
  say(
    socket
      ? "ssh.socket starts sshd for each connection, which reads the drop-in then"
      : "sshd is not running under systemd (ssh.service); it reads the drop-in when it starts or gets SIGHUP",
  );
}

/**
 * The drop-in's key settings sshd does not apply to the managed accounts (empty: all applied). A main
 * sshd_config without Debian's `Include /etc/ssh/sshd_config.d/*.conf`, or an earlier file whose Match block
 * sets the same keys (the first value sshd obtains wins), would otherwise silently leave them as they were.
 */
export function sshdMissing(o: SshdDropInOptions, command: string): string[] {
  let out = "";
  try {
    out = execFileSync(SSHD, ["-T", "-C", `user=${o.prefix}slicehub-probe,host=localhost,addr=127.0.0.1`], { stdio: ["ignore", "pipe", "ignore"] }).toString();
  } catch {
    // Reported as everything missing.
  }
  const want = ["authorizedkeysfile none", "authenticationmethods publickey", "passwordauthentication no", "kbdinteractiveauthentication no"];
  if (o.enabled) want.push(`authorizedkeyscommand ${command} %u`, `authorizedkeyscommanduser ${o.serviceUser}`);
  const lines = new Set(out.split("\n").map((l) => l.trim()));
  return want.filter((w) => !lines.has(w));
}

function sshdCheck(): string | undefined {
  try {
    execFileSync(SSHD, ["-t"], { stdio: ["ignore", "ignore", "pipe"] });
    return undefined;
  } catch (err) {
    return ((err as { stderr?: Buffer }).stderr?.toString() ?? String(err)).trim();
  }
}

export interface ConfigureSshdOptions extends SshdDropInOptions {
  node: string;
  /** The package's dist/authorized-keys.js. */
  entry: string;
  configPath: string;
  dropIn?: string;
}

/**
 * Writes the wrapper (when SSH is enabled) and the drop-in, checks sshd accepts the result (else puts the old
 * drop-in back and throws), and reloads sshd. Idempotent: nothing is rewritten or reloaded when nothing changed.
 */
export function configureSshd(o: ConfigureSshdOptions, say: (line: string) => void): void {
  const dropIn = o.dropIn ?? SSHD_DROPIN;
  const command = o.keysCommand ?? KEYS_COMMAND;
  let changed = false;
  if (o.enabled) {
    // Root-owned, 0755 all the way up, as sshd's StrictModes check for AuthorizedKeysCommand wants.
    mkdirSync(dirname(command), { recursive: true, mode: 0o755 });
    chmodSync(dirname(command), 0o755);
    if (writeIfChanged(command, keysCommandScript(o), 0o755)) {
      changed = true;
      say(`wrote ${command} (sshd's AuthorizedKeysCommand)`);
    } else say(`${command} is up to date`);
  } else if (existsSync(command)) {
    removeKeysCommand(command, say);
    changed = true;
  }
  const previous = existsSync(dropIn) ? readFileSync(dropIn, "utf8") : undefined;
  if (writeIfChanged(dropIn, sshdDropIn({ ...o, keysCommand: command }), 0o644)) {
    changed = true;
    const problem = sshdCheck();
    if (problem) {
      if (previous === undefined) rmSync(dropIn, { force: true });
      else writeFileSync(dropIn, previous, { mode: 0o644 });
      throw new Error(`sshd -t refused the config with ${dropIn} (put back as it was): ${problem}`);
    }
    say(`wrote ${dropIn} (${o.enabled ? `SSH with slicehub's keys for ${o.prefix}* accounts` : `no SSH login for ${o.prefix}* accounts: ssh.enabled is false`})`);
  } else say(`${dropIn} is up to date`);
  if (changed) reloadSshd(say);
  const missing = dropIn === SSHD_DROPIN ? sshdMissing(o, command) : [];
  if (missing.length) {
    throw new Error(
      `sshd does not apply ${dropIn} to ${o.prefix}* accounts (sshd -T for them lacks: ${missing.join("; ")}): ` +
        `it needs "Include /etc/ssh/sshd_config.d/*.conf" as the first line of /etc/ssh/sshd_config (Debian's default) ` +
        `and no earlier Match block setting these keys for those accounts; fix that, then run slicehub install again`,
    );
  }
}

function removeKeysCommand(command: string, say: (line: string) => void): void {
  rmSync(command, { force: true });
  try {
    rmdirSync(dirname(command));
  } catch {
    // Not empty or already gone.
  }
  say(`removed ${command}`);
}

/** Undoes configureSshd (for `slicehub uninstall`): removes the drop-in and the wrapper, then reloads sshd. */
export function removeSshd(say: (line: string) => void, paths: { dropIn?: string; keysCommand?: string } = {}): void {
  const dropIn = paths.dropIn ?? SSHD_DROPIN;
  const command = paths.keysCommand ?? KEYS_COMMAND;
  let changed = false;
  if (existsSync(dropIn)) {
    rmSync(dropIn);
    say(`removed ${dropIn}`);
    changed = true;
  }
  if (existsSync(command)) {
    removeKeysCommand(command, say);
    changed = true;
  }
  if (changed) reloadSshd(say);
}

// --- Limits -------------------------------------------------------------------------------------------------

export interface SshLimits {
  /** MemoryMax= in bytes. */
  memoryBytes?: number;
  /** CPUs (CPUQuota= 100% each). */
  cpu?: number;
  tasks?: number;
}

const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** A config size ("512M", "1.5G", "2048") in bytes, as systemd reads it (powers of 1024). */
export function sizeBytes(size: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/.exec(size);
  if (!m) throw new Error(`not a size: ${size}`);
  return Math.floor(Number(m[1]) * UNITS[m[2]!]!);
}

const smaller = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));

/**
 * What a user's SSH sessions are held to: the limits of their default server (the first profile open to them),
 * each capped by spawner.slice_limits (all of that user's servers together). A limit neither sets stays unset,
 * as it does for their servers.
 */
export function sshLimits(cfg: Config, hubUser: string): SshLimits {
  if (cfg.spawner.kind !== "systemd") return {};
  let profile: ReturnType<typeof resolveProfile>;
  try {
    profile = resolveProfile(cfg, hubUser, undefined);
  } catch {
    profile = undefined; // no profile open to them: the slice's limits alone
  }
  const slice = cfg.spawner.slice_limits;
  const mem = (s: string | undefined) => (s === undefined ? undefined : sizeBytes(s));
  return {
    memoryBytes: smaller(mem(profile?.memory), mem(slice.memory)),
    cpu: smaller(profile?.cpu, slice.cpu),
    tasks: smaller(profile?.tasks, slice.tasks),
  };
}

/** The slice logind puts a uid's sessions in (pam_systemd: user-<uid>.slice/session-N.scope). */
export function userSlice(uid: number): string {
  if (!Number.isInteger(uid) || uid < 0) throw new Error(`not a uid: ${uid}`);
  return `user-${uid}.slice`;
}

/**
 * The drop-in for that slice. A limit that is not set is left out, so the distribution's defaults for user
 * slices (Debian: TasksMax=33%) stay, as systemd's defaults do for servers without that limit.
 */
export function userSliceDropIn(limits: SshLimits, about: string): string {
  if (/[\n\r]/.test(about)) throw new Error("one line only");
  return [
    "# Written by slicehub: SSH sessions land in this slice (pam_systemd), and are held to the limits of the",
    `# account's hub user: ${about}.`,
    "[Slice]",
    ...(limits.memoryBytes === undefined ? [] : [`MemoryMax=${limits.memoryBytes}`]),
    ...(limits.cpu === undefined ? [] : [`CPUQuota=${Number((limits.cpu * 100).toFixed(2))}%`]),
    ...(limits.tasks === undefined ? [] : [`TasksMax=${limits.tasks}`]),
    "",
  ].join("\n");
}
