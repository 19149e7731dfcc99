#!/usr/bin/env node
// The `slicehub` command.
import { parseArgs } from "node:util";
import { configJsonSchema, loadConfigFile } from "../src/config/load.js";
import { databasePath, loadConfigOrExit, runDaemon } from "./daemon.js";
import { USER_NAME } from "../src/names.js";
import { packageVersion } from "../src/package-root.js";
import { Store } from "../src/store/store.js";

const MAIN_HELP = `slicehub — log people in, start a Jupyter server for each, and proxy to it.

Usage:
  slicehub start [--config FILE]        run the hub (without --config: the embedded development default)
  slicehub check-config FILE            validate a config file; prints every problem as path: message (line:col)
  slicehub schema                       print the config file's JSON Schema (for editors)
  slicehub token USER [--config FILE]   print a new API token for USER
  slicehub install                      set up this host: system user, /etc/slicehub, the systemd unit
  slicehub help COMMAND                 help for one command

Options:
  -h, --help       show help
  -V, --version    print the version

Docs: README.md and docs/config.md in the source tree.
`;

const HELP: Record<string, string> = {
  start: `Usage: slicehub start [--config FILE]

Runs the hub: one listener serving /hub/ and proxying /user/<name>/ to each user's server.

Without --config it runs the embedded development default: listen on http://127.0.0.1:8000, development
login (any user name, loopback only), servers started as this user with jupyterhub-singleuser, state in
./.slicehub/. With --config it reads FILE and reloads it on SIGHUP or when the file changes.

Logs go to stdout as JSON lines with a journald priority prefix. SIGTERM or SIGINT stop the hub; user
servers keep running and are adopted again when it starts.

Options:
  -c, --config FILE   the JSON config file (comments and trailing commas allowed)
  -h, --help          show this help
`,
  "check-config": `Usage: slicehub check-config FILE

Validates FILE without starting anything. Exits 0 when it is valid, 1 with every problem listed as
"path: message (line:col)" when it is not.
`,
  schema: `Usage: slicehub schema

Prints the JSON Schema of the config file. Save it next to the config and point "$schema" at it:
  slicehub schema > /etc/slicehub/config.schema.json
`,
  install: `Usage: slicehub install [--config-dir DIR] [--unit-dir DIR] [--user NAME] [--state-dir DIR]

Sets up this host for the systemd spawner, as root. Creates only what is missing:
  - the system user the web-facing process drops to (default: slicehub)
  - DIR/config.json, a starter config (root:slicehub, mode 0640; never overwritten) and its JSON Schema
  - DIR/roothooks.d, empty (executables there run as root before each server starts)
  - the state directory (default /var/lib/slicehub), owned by that user
  - the service unit slicehub.service (hardened; see deploy/slicehub.service)
  - with the systemd spawner and openssh-server: /etc/ssh/sshd_config.d/slicehub.conf for the managed
    accounts (keys from the hub when ssh.enabled, else no SSH login for them) and, when enabled, its
    AuthorizedKeysCommand /usr/local/libexec/slicehub/authorized-keys; sshd is reloaded. Rewritten on every
    run: run install again after changing ssh.enabled, spawner.unix_users.prefix or run_as.
Then: systemctl daemon-reload && systemctl enable --now slicehub

Options:
  --config-dir DIR   default /etc/slicehub
  --unit-dir DIR     default /etc/systemd/system
  --user NAME        default slicehub
  --state-dir DIR    default /var/lib/slicehub
  -h, --help         show this help
`,
  token: `Usage: slicehub token USER [--config FILE] [--note TEXT] [--expires-in SECONDS] [--create]

Prints a new API token for USER on stdout, using the same state as "slicehub start" with the same
--config. The token carries the user's own rights ("inherit"). Only its hash is stored; it cannot be
shown again. Revoke it through the API (DELETE /hub/api/users/USER/tokens/ID).

Options:
  -c, --config FILE         the config whose state_dir holds the database (default: embedded default)
  --note TEXT               a note stored with the token
  --expires-in SECONDS      the token expires after this many seconds (default: never)
  --create                  create USER first if it does not exist
  -h, --help                show this help
`,
};

function fail(msg: string, command?: string): never {
  process.stderr.write(`slicehub: ${msg}\n${command ? `Run "slicehub ${command} --help" for usage.\n` : 'Run "slicehub --help" for usage.\n'}`);
  process.exit(2);
}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

function parse(command: string, argv: string[], options: OptionSpec): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (err) {
    fail((err as Error).message, command);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help") {
    process.stdout.write(MAIN_HELP);
    return;
  }
  if (command === "-V" || command === "--version") {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }
  if (command === "help") {
    const topic = rest[0];
    process.stdout.write(topic && HELP[topic] ? HELP[topic] : MAIN_HELP);
    return;
  }
  switch (command) {
    case "start": {
      const { values, positionals } = parse(command, rest, { config: { type: "string", short: "c" } });
      if (values.help) return void process.stdout.write(HELP.start!);
      if (positionals.length) fail(`unexpected argument: ${positionals[0]}`, command);
      await runDaemon(values.config as string | undefined);
      return;
    }
    case "check-config": {
      const { values, positionals } = parse(command, rest, {});
      if (values.help) return void process.stdout.write(HELP["check-config"]!);
      if (positionals.length !== 1) fail("check-config takes exactly one FILE", command);
      const r = loadConfigFile(positionals[0]!);
      if (r.ok) {
        process.stdout.write(`${positionals[0]}: ok\n`);
        return;
      }
      for (const e of r.errors) process.stdout.write(`${e}\n`);
      process.stderr.write(`${r.errors.length} problem${r.errors.length === 1 ? "" : "s"} found\n`);
      process.exit(1);
    }
    case "schema": {
      const { values, positionals } = parse(command, rest, {});
      if (values.help) return void process.stdout.write(HELP.schema!);
      if (positionals.length) fail(`unexpected argument: ${positionals[0]}`, command);
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return;
    }
    case "token": {
      const { values, positionals } = parse(command, rest, {
        config: { type: "string", short: "c" },
        note: { type: "string" },
        "expires-in": { type: "string" },
        create: { type: "boolean" },
      });
      if (values.help) return void process.stdout.write(HELP.token!);
      if (positionals.length !== 1) fail("token takes exactly one USER", command);
      const name = positionals[0]!;
      if (!USER_NAME.test(name)) fail(`not a valid user name: ${name}`, command);
      let expires: number | null = null;
      if (values["expires-in"] !== undefined) {
        expires = Number(values["expires-in"]);
        if (!Number.isInteger(expires) || expires <= 0) fail("--expires-in takes a whole number of seconds", command);
      }
      const cfg = loadConfigOrExit(values.config as string | undefined);
      const store = new Store(databasePath(cfg));
      try {
        let user = store.getUser(name);
        if (!user && values.create) user = store.ensureUser(name);
        if (!user) {
          process.stderr.write(`slicehub: no such user: ${name} (they appear after their first login; or pass --create)\n`);
          process.exit(1);
        }
        const { token } = store.createToken({
          userId: user.id,
          kind: "api",
          scopes: ["inherit"],
          note: (values.note as string | undefined) ?? "Created by slicehub token",
          expiresInS: expires,
        });
        process.stdout.write(`${token}\n`);
      } finally {
        store.close();
      }
      return;
    }
    case "install": {
      const { values, positionals } = parse(command, rest, {
        "config-dir": { type: "string" },
        "unit-dir": { type: "string" },
        user: { type: "string" },
        "state-dir": { type: "string" },
      });
      if (values.help) return void process.stdout.write(HELP.install!);
      if (positionals.length) fail(`unexpected argument: ${positionals[0]}`, command);
      const { install } = await import("./install.js");
      await install(
        {
          configDir: (values["config-dir"] as string | undefined) ?? "/etc/slicehub",
          unitDir: (values["unit-dir"] as string | undefined) ?? "/etc/systemd/system",
          user: (values.user as string | undefined) ?? "slicehub",
          stateDir: (values["state-dir"] as string | undefined) ?? "/var/lib/slicehub",
        },
        (line) => process.stdout.write(`${line}\n`),
      );
      return;
    }
    // Not for people: `slicehub start` forks this as the root half of itself (see spawners/privileged/).
    case "privileged-helper": {
      const { values } = parse(command, rest, { config: { type: "string", short: "c" } });
      if (typeof values.config !== "string") fail("privileged-helper needs --config", command);
      const { runHelper } = await import("../spawners/privileged/helper.js");
      await runHelper(values.config);
      return;
    }
    default:
      fail(`unknown command: ${command}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`slicehub: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
