#!/usr/bin/env node
// sshd's AuthorizedKeysCommand for the Unix accounts slicehub manages, built on its own into
// dist/authorized-keys.js (small and quick to start: no web server, no OIDC client). See
// main/authorized-keys-lookup.ts for who gets which keys.
import { parseArgs } from "node:util";
import { loadConfigFile } from "../src/config/load.js";
import { AuthorizedKeysError, authorizedKeysFor, KEY_OPTIONS } from "./authorized-keys-lookup.js";

const HELP = `Usage: node dist/authorized-keys.js --config FILE [--explain] UNIX_USER

sshd's AuthorizedKeysCommand for the accounts slicehub manages: prints the SSH public keys hub users added
on /hub/ssh-keys, in authorized_keys format, each with the options "${KEY_OPTIONS}".
It reads FILE and the hub's database (read-only) and changes nothing.

It prints nothing (exit 0) unless UNIX_USER is the Unix account of a hub user who is not blocked, is still
allowed by the config's allow-lists, and the config has the systemd spawner and ssh.enabled; root, system
accounts and accounts not made for that hub user get nothing. A config or database it cannot read is
exit 1, with the reason on stderr, and no keys.

sshd runs it as the unprivileged service user. slicehub install (with ssh.enabled) writes a root-owned
wrapper that execs this file with the config, and names it in /etc/ssh/sshd_config.d/slicehub.conf:
  AuthorizedKeysCommand /usr/local/libexec/slicehub/authorized-keys %u
  AuthorizedKeysCommandUser slicehub
To see what sshd would get for an account:
  sudo -u slicehub node dist/authorized-keys.js --config /etc/slicehub/config.json --explain jupyter-alice

Options:
  -c, --config FILE   the hub's config file (required)
      --explain       also say on stderr why the account gets the keys it gets (for admins)
  -h, --help          show this help
`;

async function main(argv: string[]): Promise<number> {
  const parse = () =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: "string", short: "c" }, explain: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    });
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (err) {
    process.stderr.write(`authorized-keys: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!args.values.config || args.positionals.length !== 1) {
    process.stderr.write(`authorized-keys: needs --config FILE and exactly one UNIX_USER\n\n${HELP}`);
    return 2;
  }
  const loaded = loadConfigFile(args.values.config);
  if (!loaded.ok) {
    process.stderr.write(`authorized-keys: the config is not valid; no keys given:\n${loaded.errors.map((e) => `  ${e}`).join("\n")}\n`);
    return 1;
  }
  const account = args.positionals[0]!;
  try {
    const found = await authorizedKeysFor(loaded.config, account);
    if (args.values.explain) process.stderr.write(`authorized-keys: ${account}: ${found.why}\n`);
    if (found.lines.length) process.stdout.write(`${found.lines.join("\n")}\n`);
    return 0;
  } catch (err) {
    const message = err instanceof AuthorizedKeysError ? err.message : `unexpected error: ${(err as Error).stack ?? String(err)}`;
    process.stderr.write(`authorized-keys: ${message}; no keys given\n`);
    return 1;
  }
}

// Output first, then the exit code: stdout to a pipe is asynchronous, and process.exit would cut it.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`authorized-keys: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
