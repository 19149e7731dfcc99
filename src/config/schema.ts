// The config file's shape. Every object is strict (an unknown key is an error, so typos do not silently
// fall back to defaults), and every field has a description that also ends up in the JSON Schema that
// `slicehub schema` prints for editors.
import { z } from "zod";
import { TlsSchema, TrustedProxiesSchema } from "./https.js";
import { MetricsSchema } from "./metrics.js";
import { envKeyProblem, secretEnvProblem } from "../jupyterhub-env.js";

const seconds = (what: string, def: number) =>
  z.number().positive().max(86_400 * 365).default(def).describe(what);

const listenUrl = z
  .string()
  .describe('Where the one listener binds, as a URL: "http://127.0.0.1:8000", "http://[::1]:8000", or "https://0.0.0.0:443" (with tls.cert_file and tls.key_file).')
  .superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: "custom", message: `not a URL (expected e.g. "http://127.0.0.1:8000")` });
      return;
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") ctx.addIssue({ code: "custom", message: "must be http:// or https:// (https needs tls.cert_file and tls.key_file)" });
    // URL drops a port equal to the scheme's default ("http://h:80" has port ""), so look at the text itself.
    const authority = s.slice(s.indexOf("//") + 2).split(/[/?#]/)[0] ?? "";
    if (!/:\d+$/.test(authority)) ctx.addIssue({ code: "custom", message: "needs an explicit port, e.g. http://127.0.0.1:8000" });
    if (u.username || u.password) ctx.addIssue({ code: "custom", message: "must not have a user name or password" });
    if (u.pathname !== "/" || u.search || u.hash) ctx.addIssue({ code: "custom", message: "must not have a path, query or fragment" });
  });

/** A URL hostname (IPv6 in brackets, as URL gives it) that only this machine can reach. */
export function isLoopbackHost(hostname: string): boolean {
  // *.localhost too (RFC 6761 §6.3: always loopback; Chromium resolves it so itself), so subdomain mode can run
  // on hub.localhost / alice.users.localhost with dev login.
  return hostname === "localhost" || hostname.endsWith(".localhost") || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** A URL's port, the scheme's default included (URL gives "" for "https://h:443"). */
function portOf(u: URL): number {
  return Number(u.port || (u.protocol === "https:" ? 443 : 80));
}

function isLoopbackListen(listen: string): boolean {
  return isLoopbackHost(new URL(listen).hostname);
}

const publicUrl = z
  .string()
  .describe("The URL people type into their browser (scheme, host and port only). Defaults to the listen URL.")
  .superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: "custom", message: `not a URL (expected e.g. "https://hub.example.org")` });
      return;
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") ctx.addIssue({ code: "custom", message: "must be http:// or https://" });
    if (u.pathname !== "/" || u.search || u.hash) ctx.addIssue({ code: "custom", message: "must not have a path, query or fragment (slicehub serves at /)" });
  });

/** One DNS label: letters, digits and '-', not at either end, at most 63. */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Room left for a server's label (up to 63) and its dot within a host name's 253 characters. */
const MAX_SUBDOMAIN_HOST = 253 - 64;

const subdomainHost = z
  .string()
  .describe(
    'Per-user origins (JupyterHub\'s subdomain_host): each server gets its own host name under this one, e.g. "https://users.example.org" puts alice\'s server at https://alice.users.example.org/user/alice/ (a named server foo at foo--alice.users.example.org). Scheme and host [and port] only, the same scheme as public_url, which it requires; the hub stays on public_url\'s host, which may be this host itself. Needs wildcard DNS (*.users.example.org), a wildcard certificate for https, and a reverse proxy that passes the Host header through. Needs a restart to change.',
  )
  .superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: "custom", message: `not a URL (expected e.g. "https://users.example.org")` });
      return;
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") ctx.addIssue({ code: "custom", message: "must be http:// or https://" });
    if (u.username || u.password) ctx.addIssue({ code: "custom", message: "must not have a user name or password" });
    if (u.pathname !== "/" || u.search || u.hash) ctx.addIssue({ code: "custom", message: "must not have a path, query or fragment (servers are at /user/<name>/ on their own host)" });
    const host = u.hostname;
    if (host.startsWith("[") || /^\d+\.\d+\.\d+\.\d+$/.test(host)) {
      ctx.addIssue({ code: "custom", message: `needs a DNS name, not an IP address (${host}): servers get host names under it` });
    } else if (!host.split(".").every((l) => DNS_LABEL.test(l))) {
      ctx.addIssue({ code: "custom", message: `${host} is not a DNS name (labels of letters, digits and '-')` });
    } else if (host.length > MAX_SUBDOMAIN_HOST) {
      ctx.addIssue({ code: "custom", message: `host name too long (at most ${MAX_SUBDOMAIN_HOST} characters, leaving room for a 63-character server label)` });
    }
  });

const userName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "not a valid user name (lower-case letters, digits, '.', '_', '-'; at most 64)");

export const DevAuthSchema = z
  .strictObject({
    kind: z.literal("dev").describe("Development login: a form asking for a user name. Only allowed when listening on a loopback address."),
    allowed_users: z.array(userName).optional().describe("If set, only these user names may log in."),
    admin_users: z.array(userName).default([]).describe("User names that are hub admins."),
  })
  .describe("Development login (no password). Refused unless `listen` is a loopback address.");

const email = z.string().max(320).regex(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, "not an email address").transform((e) => e.toLowerCase());
const domain = z
  .string()
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, "not a domain name like example.org")
  .transform((d) => d.toLowerCase());

export const OidcAuthSchema = z
  .strictObject({
    kind: z.literal("oidc").describe("OpenID Connect login (Google by default, or any issuer with discovery)."),
    issuer: z
      .string()
      .url()
      .default("https://accounts.google.com")
      .describe("The provider's issuer URL; its /.well-known/openid-configuration is read at start."),
    client_id: z.string().min(1).max(500).describe("The OAuth client id registered with the provider."),
    client_secret_file: z
      .string()
      .startsWith("/")
      .optional()
      .describe("File holding the client secret (read at start, as root when started as root). Else $CREDENTIALS_DIRECTORY/oidc-client-secret."),
    client_secret: z
      .string()
      .min(1)
      .optional()
      .describe("The client secret inline: only accepted when the config file is not readable by group or others (mode 0600)."),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, "not a scope")).default(["openid", "email", "profile"]).describe("Scopes asked for."),
    allowed_users: z.array(email).default([]).describe("Emails that may log in."),
    allowed_domains: z
      .array(domain)
      .default([])
      .describe("Domains whose users may log in: Google's hd claim for Google, else the verified email's domain; exact match, never a suffix."),
    admin_users: z.array(email).default([]).describe("Emails of hub admins (they may log in even if not otherwise allowed)."),
    blocked_users: z.array(email).default([]).describe("Emails that may never log in, whatever else says."),
    username: z
      .union([z.enum(["email_local", "email"]), z.strictObject({ claim: z.string().min(1).max(100) })])
      .default("email_local")
      .describe('How the hub user name is made: the email\'s local part, the whole email, or {"claim": "name"}; normalised to a safe name.'),
    on_removal: z
      .enum(["stop", "keep"])
      .default("stop")
      .describe("When a reload removes or blocks a user: stop their servers too (sessions and tokens always end)."),
  })
  .describe("OpenID Connect login.");

export const AuthSchema = z.discriminatedUnion("kind", [DevAuthSchema, OidcAuthSchema]).describe("How people log in.");

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not a valid environment variable name");

// A server's extra environment. JUPYTERHUB_* and JPY_* names are the hub's unless src/jupyterhub-env.ts lists
// them as the admin's: any other is refused here with the reason, not dropped without a word.
const serverEnvRecord = z.record(envName, z.string()).superRefine((env, ctx) => {
  for (const key of Object.keys(env)) {
    const problem = envKeyProblem(key);
    if (problem) ctx.addIssue({ code: "custom", path: [key], message: problem });
  }
});

const memorySize = z
  .string()
  .regex(/^\d+(\.\d+)?[KMGT]?$/, 'not a size like "512M", "2G" or "1.5G" (bytes, or K/M/G/T, powers of 1024)');
const cpus = z.number().positive().max(1024);
const tasks = z.number().int().positive().max(1_000_000);

const ProfileSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "not a profile name (lower-case letters, digits, '_', '-'; at most 32)"),
    title: z.string().min(1).max(200).describe("What people see when they pick it, e.g. \"2 GB, 1 CPU\"."),
    description: z.string().max(1000).optional().describe("A longer explanation shown under the title."),
    memory: memorySize.optional().describe("Memory limit (systemd MemoryMax) for the server, e.g. \"2G\"."),
    cpu: cpus.optional().describe("CPU limit in CPUs (systemd CPUQuota: 1 = 100%)."),
    tasks: tasks.optional().describe("Limit on processes and threads (systemd TasksMax)."),
    cmd: z.array(z.string().min(1)).min(1).optional().describe("Overrides spawner.cmd for this profile."),
    args: z.array(z.string()).optional().describe("Overrides spawner.args for this profile."),
    env: serverEnvRecord.optional().describe("Added to spawner.env for this profile (its values win)."),
    users: z.array(userName).optional().describe("Only these hub users may use it (with `groups`: members of either)."),
    groups: z.array(z.string().min(1)).optional().describe("Only members of these groups (top-level `groups`) may use it."),
  })
  .describe("A choice of server people can pick when they start one.");

export type Profile = z.infer<typeof ProfileSchema>;

// What every spawner shares: the command, its environment, timeouts, named servers and profiles.
const spawnerCommon = {
  cmd: z
    .array(z.string().min(1))
    .min(1)
    .default(["jupyterhub-singleuser"])
    .describe("The server command (argv); argv[0] is looked up on PATH."),
  args: z.array(z.string()).default([]).describe("Extra arguments appended to cmd."),
  env: serverEnvRecord
    .default({})
    .describe(
      "Extra environment for the server. Of the JUPYTERHUB_* names only the admin's settings are accepted (JUPYTERHUB_ACTIVITY_INTERVAL, JUPYTERHUB_DEBUG, JUPYTERHUB_DEFAULT_URL, JUPYTERHUB_DISABLE_USER_CONFIG, JUPYTERHUB_ROOT_DIR, JUPYTERHUB_SINGLEUSER_APP, JUPYTERHUB_SINGLEUSER_EXTENSION, JUPYTERHUB_SINGLEUSER_LOAD_OTHER_EXTENSIONS); the hub's own (token, OAuth, URLs, user) and JPY_* are errors.",
    ),
  start_timeout_s: seconds("How long a server may take from launch until it answers on its URL.", 120),
  stop_timeout_s: seconds("How long a server gets after SIGTERM before all its processes are killed.", 10),
  named_servers: z
    .strictObject({
      limit: z.number().int().min(0).max(100).default(0).describe("Named servers a user may have besides the default one (0 disables them)."),
    })
    .prefault({})
    .describe("Named servers (/user/<name>/<server>/)."),
  default_url: z.string().startsWith("/").optional().describe('Passed as JUPYTERHUB_DEFAULT_URL, e.g. "/tree" or "/lab".'),
  profiles: z
    .array(ProfileSchema)
    .max(100)
    .default([])
    .superRefine((profiles, ctx) => {
      const seen = new Set<string>();
      profiles.forEach((p, i) => {
        if (seen.has(p.name)) ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate profile name "${p.name}"` });
        seen.add(p.name);
      });
    })
    .describe("Choices offered when a server starts; the first one a user may use is the default. Empty: no choice, no limits."),
};

export const LocalSpawnerSchema = z
  .strictObject({
    kind: z.literal("local").describe("Run servers as the daemon's own user, in their own process group, on a free loopback port."),
    ...spawnerCommon,
    single_user_host: z
      .boolean()
      .default(false)
      .describe(
        "Required (true) to use the local spawner with OIDC login: every user's server then runs as the hub's own Unix user and can read and change every other user's files and the hub's database. Set it only when the people who log in are one person or fully trust each other; otherwise use the systemd spawner.",
      ),
  })
  .describe("The local-process spawner (development, or hosts without root). Profile limits are not enforced by it.");

const HardeningSchema = z
  .strictObject({
    no_new_privileges: z.boolean().default(true).describe("NoNewPrivileges="),
    private_tmp: z.boolean().default(true).describe("PrivateTmp="),
    private_devices: z.boolean().default(true).describe("PrivateDevices="),
    protect_system: z.enum(["strict", "full", "yes", "no"]).default("strict").describe("ProtectSystem= (with strict the home stays writable through ReadWritePaths=)"),
    protect_kernel: z.boolean().default(true).describe("ProtectKernelTunables=, ProtectKernelModules=, ProtectKernelLogs="),
    protect_control_groups: z.boolean().default(true).describe("ProtectControlGroups="),
    restrict_suid_sgid: z.boolean().default(true).describe("RestrictSUIDSGID="),
    lock_personality: z.boolean().default(true).describe("LockPersonality="),
  })
  .describe("Sandboxing of every server unit; each setting can be turned off.");

// Properties that would let config change who the server runs as or what it runs; the spawner sets these.
const RESERVED_PROPERTIES = /^(User|Group|DynamicUser|SupplementaryGroups|ExecStart.*|ExecStop.*|Exec.*|LoadCredential.*|SetCredential.*|ImportCredential|Environment|EnvironmentFile|PassEnvironment|UnsetEnvironment|WorkingDirectory|RootDirectory|RootImage|Slice|Type|PAMName)$/;

export const SystemdSpawnerSchema = z
  .strictObject({
    kind: z
      .literal("systemd")
      .describe("Run each server as the user's own Unix account, in a transient systemd unit inside a per-user slice (needs root)."),
    ...spawnerCommon,
    hooks_dir: z.string().startsWith("/").default("/etc/slicehub/roothooks.d").describe("Executables run as root, in byte order of their names, before each server starts."),
    hook_timeout_s: seconds("How long one root hook may run before it is killed (its failure never blocks the start).", 60),
    unix_users: z
      .strictObject({
        prefix: z.string().regex(/^[a-z_][a-z0-9_-]{0,15}$/, "not a Unix user name prefix").default("jupyter-").describe("Unix account = prefix + hub user name."),
        create: z.boolean().default(true).describe("Create missing accounts with useradd."),
        home: z.string().startsWith("/").default("/home").describe("Parent directory of new accounts' homes."),
        shell: z.string().startsWith("/").default("/bin/bash").describe("Login shell of new accounts."),
        groups: z.array(z.string().regex(/^[a-z_][a-z0-9_-]*$/, "not a group name")).default([]).describe("Supplementary groups for new accounts."),
        adopt_existing: z
          .boolean()
          .default(false)
          .describe("Use an account that already exists but was not created by slicehub (otherwise such a user is refused)."),
      })
      .prefault({})
      .describe("How hub users map to Unix accounts."),
    slice_limits: z
      .strictObject({ memory: memorySize.optional(), cpu: cpus.optional(), tasks: tasks.optional() })
      .prefault({})
      .describe("Limits on each user's slice (all of that user's servers together)."),
    hardening: HardeningSchema.prefault({}),
    properties: z
      .record(
        z.string().regex(/^[A-Z][A-Za-z0-9]*$/, "not a systemd property name").refine((k) => !RESERVED_PROPERTIES.test(k), "is set by slicehub and cannot be configured"),
        z.string().regex(/^[^\n\r]*$/, "must be one line"),
      )
      .default({})
      .describe('Extra unit properties for every server, e.g. {"IOWeight": "50"}.'),
  })
  .describe("The systemd spawner.");

export const SpawnerSchema = z.discriminatedUnion("kind", [LocalSpawnerSchema, SystemdSpawnerSchema]).describe("How user servers are started.");

export const ConfigSchema = z
  .strictObject({
    $schema: z.string().optional().describe("Path or URL of the JSON Schema, for editors. Ignored by slicehub."),
    listen: listenUrl.default("http://127.0.0.1:8000"),
    public_url: publicUrl.optional(),
    tls: TlsSchema,
    trusted_proxies: TrustedProxiesSchema,
    subdomain_host: subdomainHost.optional(),
    state_dir: z
      .string()
      .min(1)
      .default("./.slicehub")
      .describe("Directory for the SQLite database and server logs. Relative paths are resolved against the config file's directory."),
    jupyterhub_version: z
      .string()
      .regex(/^\d+\.\d+\.\d+$/, 'not a version like "3.0.0"')
      .optional()
      .describe(
        "Version the hub reports as X-JupyterHub-Version. Default: the version of the jupyterhub package behind spawner.cmd (read from its files, so the single-user server does not warn about a major.minor mismatch), else 3.0.0. Set it when the servers' environments differ from what the hub sees.",
      ),
    log_level: z.enum(["debug", "info", "warn", "error"]).default("info").describe("Lowest log level written."),
    run_as: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "not a Unix user name")
      .default("slicehub")
      .describe("Started as root, the web-facing process drops to this system user; a privileged helper keeps root for spawning."),
    groups: z
      .record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "not a group name"), z.array(userName))
      .default({})
      .describe('Named groups of hub users, for profile access: {"lab": ["ada", "grace"]}.'),
    auth: AuthSchema.prefault({ kind: "dev" }),
    spawner: SpawnerSchema.prefault({ kind: "local" }),
    session: z
      .strictObject({
        idle_timeout_s: seconds("A browser session ends after this long without a request.", 14 * 86_400),
        max_age_s: seconds("A browser session ends this long after login, active or not.", 30 * 86_400),
      })
      .prefault({})
      .describe("Browser sessions."),
    proxy: z
      .strictObject({
        activity_flush_s: seconds("How often per-server activity seen by the proxy is written to the database.", 30),
      })
      .prefault({})
      .describe("The routing proxy."),
    cull: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe("Stop servers idle longer than idle_timeout_s (and older than max_age_s, if set). Off by default, as in JupyterHub."),
        idle_timeout_s: seconds(
          "A running server with no activity (requests through the proxy, the server's own activity reports, which include kernel activity) for this long is stopped.",
          3600,
        ),
        max_age_s: z
          .number()
          .min(0)
          .max(86_400 * 365)
          .default(0)
          .describe("A server running longer than this is stopped, active or not. 0: no maximum age."),
        every_s: z.number().min(1).max(3600).default(60).describe("How often servers (and users) are checked."),
        admins: z.boolean().default(false).describe("Cull admins' servers (and, with users.enabled, admins) too. Off: admins are exempt."),
        users: z
          .strictObject({
            enabled: z
              .boolean()
              .default(false)
              .describe(
                "Delete hub users with no server running and no activity (login, browser session, API token, SSH key use, server) for users.idle_timeout_s. Their Unix accounts and homes stay; blocked users are never deleted.",
              ),
            idle_timeout_s: seconds("How long a user must have been inactive, with no server running, to be deleted.", 90 * 86_400),
          })
          .prefault({})
          .describe("Deleting long-inactive users (jupyterhub-idle-culler's --cull-users)."),
      })
      .prefault({})
      .describe("Built-in idle culling of servers (and optionally users); off by default."),
    admin_access: z
      .boolean()
      .default(false)
      .describe("JupyterHub's name: hub admins may open other users' terminals (each use is logged). Off: a terminal is its owner's only."),
    terminal: z
      .strictObject({
        enabled: z.boolean().default(true).describe("Offer a terminal in the browser: a login shell as the user's Unix account, also when their server is stopped or failed."),
        max_per_user: z.number().int().min(1).max(50).default(3).describe("Terminals one user may have open at once."),
        detach_grace_s: seconds("A shell with no browser attached (a closed tab, a reload) keeps running this long, so a reload finds it again.", 300),
        idle_timeout_s: seconds("A terminal with no input and no output for this long is ended.", 3600),
        shell: z.string().startsWith("/").optional().describe("The shell to run (as a login shell, with -l). Default: the account's login shell."),
      })
      .prefault({})
      .describe("The browser terminal (/hub/terminal/<user>)."),
    ssh: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            "SSH for the managed Unix accounts with keys users add on /hub/ssh-keys (the host's OpenSSH asks slicehub for them). Needs the systemd spawner; run `slicehub install` again after changing it, which rewrites sshd's drop-in.",
          ),
        host: z
          .string()
          .regex(/^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$/, "not a host name or [IPv6] address")
          .optional()
          .describe("The host name users' ssh commands use, as shown on the keys page. Default: public_url's host (or listen's)."),
        port: z.number().int().min(1).max(65535).default(22).describe("The port the host's sshd listens on, as shown to users. slicehub does not change sshd's port."),
      })
      .prefault({})
      .describe("SSH access to users' own accounts (VS Code Remote-SSH, Cursor, a terminal)."),
    metrics: MetricsSchema,
    http: z
      .strictObject({
        max_body_kib: z
          .number()
          .int()
          .min(1)
          .max(16 * 1024)
          .default(64)
          .describe("Largest request body the hub's own routes accept, in KiB; larger ones get 413. Requests to users' servers are streamed and not limited."),
        headers_timeout_s: seconds("A connection must have sent a request's complete headers this long after it opened (or after its previous request); else 408 and it is closed. Covers silent and trickling clients.", 20),
        request_timeout_s: seconds("A request, headers and body, must arrive within this; then 408. Large uploads to users' servers need it long enough.", 300),
        keep_alive_timeout_s: seconds("An idle kept-alive connection between requests is closed after this.", 65),
        idle_timeout_s: seconds("A connection with no byte in either direction for this long is closed (upgraded websockets are exempt; event streams send keep-alives).", 300),
        max_connections: z
          .number()
          .int()
          .min(1)
          .max(1_000_000)
          .default(4096)
          .describe("Open connections the listener accepts at once, websockets included; more are closed on arrival. Each proxied connection also holds one to a server, so keep LimitNOFILE above twice this."),
      })
      .refine((h) => h.headers_timeout_s <= h.request_timeout_s, { path: ["headers_timeout_s"], message: "must not be longer than http.request_timeout_s" })
      .prefault({})
      .describe("Limits of the one HTTP listener."),
  })
  .superRefine((c, ctx) => {
    if (c.auth.kind === "dev") {
      if (!isLoopbackListen(c.listen)) {
        ctx.addIssue({
          code: "custom",
          path: ["auth", "kind"],
          message: "dev login has no password, so it is only allowed when listen is a loopback address (127.0.0.1, [::1] or localhost)",
        });
      } else if (c.public_url !== undefined && !isLoopbackHost(new URL(c.public_url).hostname)) {
        // A loopback listener behind a reverse proxy still faces the network.
        ctx.addIssue({
          code: "custom",
          path: ["auth", "kind"],
          message: `dev login has no password, so it is not allowed when public_url (${c.public_url}) is reachable from other machines; use "oidc"`,
        });
      }
    }
    {
      // HTTPS (src/config/https.ts): a certificate exactly when the listener is https.
      const https = new URL(c.listen).protocol === "https:";
      for (const key of ["cert_file", "key_file"] as const) {
        if (https && c.tls[key] === undefined) ctx.addIssue({ code: "custom", path: ["tls", key], message: `listen is ${c.listen}, so the certificate needs tls.cert_file and tls.key_file` });
        if (!https && c.tls[key] !== undefined) ctx.addIssue({ code: "custom", path: ["tls", key], message: `only used when listen is https:// (it is ${c.listen}); behind a TLS-terminating proxy leave it out` });
      }
      if (c.tls.redirect_http !== undefined) {
        const r = new URL(c.tls.redirect_http);
        const l = new URL(c.listen);
        if (!https) ctx.addIssue({ code: "custom", path: ["tls", "redirect_http"], message: "redirects to the https listener, so listen must be https://" });
        else if (portOf(r) === portOf(l) && (r.hostname === l.hostname || ["0.0.0.0", "[::]"].includes(r.hostname) || ["0.0.0.0", "[::]"].includes(l.hostname))) {
          ctx.addIssue({ code: "custom", path: ["tls", "redirect_http"], message: `uses the same port as listen (${portOf(l)})` });
        }
      }
      if (c.tls.acme_webroot !== undefined && c.tls.redirect_http === undefined) {
        ctx.addIssue({ code: "custom", path: ["tls", "acme_webroot"], message: "is served by the redirect listener: set tls.redirect_http too (without it, port 80 is free for certbot --standalone)" });
      }
      if (https) {
        const i = new URL(c.tls.internal_listen);
        const l = new URL(c.listen);
        if (portOf(i) === portOf(l) && (i.hostname === l.hostname || ["0.0.0.0", "[::]"].includes(l.hostname))) {
          ctx.addIssue({ code: "custom", path: ["tls", "internal_listen"], message: `uses the same port as listen (${portOf(l)}); pick another, e.g. http://127.0.0.1:8081` });
        }
      }
    }
    if (c.subdomain_host !== undefined) {
      const users = new URL(c.subdomain_host);
      if (c.public_url === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["subdomain_host"],
          message: "needs public_url: the hub's own address, which servers link back to and which must differ from their host names (e.g. \"https://hub.example.org\")",
        });
      } else {
        const hub = new URL(c.public_url);
        if (hub.protocol !== users.protocol) {
          ctx.addIssue({ code: "custom", path: ["subdomain_host"], message: `must use the same scheme as public_url (${hub.protocol}//), not ${users.protocol}//` });
        }
        // A hub host under subdomain_host would be some user's server host (www.users.example.org is user www's).
        if (hub.hostname.endsWith(`.${users.hostname}`)) {
          ctx.addIssue({
            code: "custom",
            path: ["subdomain_host"],
            message: `public_url's host ${hub.hostname} is under ${users.hostname}, where users' servers get their host names; put the hub on ${users.hostname} itself or outside it`,
          });
        }
      }
      if (c.auth.kind === "dev" && !isLoopbackHost(users.hostname)) {
        ctx.addIssue({
          code: "custom",
          path: ["auth", "kind"],
          message: `dev login has no password, so it is not allowed when subdomain_host (${c.subdomain_host}) is reachable from other machines; use a *.localhost name or "oidc"`,
        });
      }
    }
    if (c.ssh.enabled && c.spawner.kind !== "systemd") {
      ctx.addIssue({
        code: "custom",
        path: ["ssh", "enabled"],
        message:
          'SSH logs users in as their own Unix accounts, which only the systemd spawner has (spawner.unix_users); with the local spawner there is no account to give them, so set spawner.kind to "systemd" or ssh.enabled to false',
      });
    }
    if (c.spawner.kind === "systemd") {
      // The unit's Environment= is world-readable; the local spawner hands the environment to its child only.
      const envs: [(string | number)[], Record<string, string> | undefined][] = [
        [["spawner", "env"], c.spawner.env],
        ...c.spawner.profiles.map((p, i): [(string | number)[], Record<string, string> | undefined] => [["spawner", "profiles", i, "env"], p.env]),
      ];
      for (const [path, env] of envs) {
        for (const key of Object.keys(env ?? {})) {
          const problem = envKeyProblem(key) ? undefined : secretEnvProblem(key); // the hub's own names: refused above already
          if (problem) ctx.addIssue({ code: "custom", path: [...path, key], message: problem });
        }
      }
    }
    if (c.auth.kind === "oidc" && c.spawner.kind === "local" && !c.spawner.single_user_host) {
      ctx.addIssue({
        code: "custom",
        path: ["spawner", "kind"],
        message:
          "the local spawner runs every user's server as the hub's own Unix user, so users could read each other's files and the hub's database; use \"systemd\", or set spawner.single_user_host to true if everyone who can log in trusts each other",
      });
    }
  }, {
    // Runs even when unrelated keys are invalid, so an admin sees this along with every other problem at once.
    when: (payload) =>
      typeof payload.value === "object" &&
      payload.value !== null &&
      !Array.isArray(payload.value) &&
      payload.issues.every((i) => !["listen", "public_url", "subdomain_host", "auth", "spawner", "ssh", "tls"].includes(String(i.path?.[0]))),
  })
  .describe("slicehub configuration (/etc/slicehub/config.json).");

export type Config = z.infer<typeof ConfigSchema>;
export type AuthConfig = Config["auth"];
export type OidcAuthConfig = z.infer<typeof OidcAuthSchema>;
export type SpawnerConfig = Config["spawner"];
export type SystemdSpawnerConfig = z.infer<typeof SystemdSpawnerSchema>;
