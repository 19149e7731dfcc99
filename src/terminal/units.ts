// The `systemd-run --pty` argv of one terminal: the user's login shell as their Unix account, in their slice,
// under the limits of their profile and the hardening of their servers. Pure, so it is tested without systemd.
import type { Hardening, Limits } from "../../spawners/systemd/units.js";
import { hardeningProperties, limitProperties, systemdEscape } from "../../spawners/systemd/units.js";

export const TERMINAL_ID = /^[0-9a-f]{16}$/;
/** Every terminal unit's name matches this (the helper stops leftovers of an earlier run by it). */
export const TERMINAL_UNIT_GLOB = "slicehub-terminal-*.service";

export function terminalUnit(user: string, id: string): string {
  if (!TERMINAL_ID.test(id)) throw new Error("not a terminal id");
  if (!user || user.includes("/")) throw new Error(`"${user}" cannot be part of a unit name`);
  return `slicehub-terminal-${systemdEscape(user)}-${id}.service`;
}

export interface TerminalUnitSpec {
  unit: string;
  slice: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  limits: Limits;
  hardening: Hardening;
  properties: Record<string, string>;
  description: string;
}

/**
 * `systemd-run --pty`: systemd gives the unit a pty of its own and systemd-run relays it to its own terminal
 * (the helper's node-pty), window size changes included. --wait keeps systemd-run until the shell ends, and
 * --collect unloads the unit even when the shell's last command failed.
 */
export function terminalRunArgv(spec: TerminalUnitSpec): string[] {
  if (!/^\/[^\s"'\\$]*$/.test(spec.home)) throw new Error(`home ${JSON.stringify(spec.home)} must be an absolute path without blanks, quotes, backslashes or $`);
  if (!/^\/[A-Za-z0-9._/+-]*$/.test(spec.shell)) throw new Error(`shell ${JSON.stringify(spec.shell)} is not a plain absolute path`);
  if (/[\n\r]/.test(spec.description)) throw new Error("the unit description must be one line");
  const argv = ["systemd-run", "--pty", "--quiet", "--collect", "--wait", "--unit", spec.unit, "--slice", spec.slice, "--description", spec.description];
  argv.push("--uid", String(spec.uid), "--gid", String(spec.gid), "--working-directory", spec.home);
  const props = [...Object.entries(spec.properties).map(([k, v]) => `${k}=${v}`), ...limitProperties(spec.limits), ...hardeningProperties(spec.hardening, spec.home)];
  for (const p of props) {
    if (/[\n\r]/.test(p)) throw new Error(`unit property ${JSON.stringify(p)} spans lines`);
    argv.push("-p", p);
  }
  argv.push("--setenv=TERM=xterm-256color", "--setenv=COLORTERM=truecolor", "--setenv=LANG=C.UTF-8");
  argv.push("--", spec.shell, "-l");
  return argv;
}

/** A login shell worth starting: not a placeholder like nologin or false. */
export function usableShell(shell: string | undefined): boolean {
  return !!shell && shell.startsWith("/") && !/\/(nologin|false)$/.test(shell);
}
