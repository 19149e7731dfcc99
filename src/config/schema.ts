// The config file's shape. Every object is strict (an unknown key is an error, so typos do not silently
// fall back to defaults), and every field has a description that also ends up in the JSON Schema that
// `slicehub schema` prints for editors.
import { z } from "zod";

const seconds = (what: string, def: number) =>
  z.number().positive().max(86_400 * 365).default(def).describe(what);

const listenUrl = z
  .string()
  .describe('Where the one listener binds, as a URL: "http://127.0.0.1:8000" or "http://[::1]:8000".')
  .superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: "custom", message: `not a URL (expected e.g. "http://127.0.0.1:8000")` });
      return;
    }
    if (u.protocol !== "http:") ctx.addIssue({ code: "custom", message: "only http:// is supported for listen (terminate TLS in front, or set tls later)" });
    // URL drops a port equal to the scheme's default ("http://h:80" has port ""), so look at the text itself.
    const authority = s.slice(s.indexOf("//") + 2).split(/[/?#]/)[0] ?? "";
    if (!/:\d+$/.test(authority)) ctx.addIssue({ code: "custom", message: "needs an explicit port, e.g. http://127.0.0.1:8000" });
    if (u.username || u.password) ctx.addIssue({ code: "custom", message: "must not have a user name or password" });
    if (u.pathname !== "/" || u.search || u.hash) ctx.addIssue({ code: "custom", message: "must not have a path, query or fragment" });
  });

function isLoopbackListen(listen: string): boolean {
  const host = new URL(listen).hostname;
  return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
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

export const AuthSchema = z.discriminatedUnion("kind", [DevAuthSchema]).describe("How people log in.");

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not a valid environment variable name");

export const LocalSpawnerSchema = z
  .strictObject({
    kind: z.literal("local").describe("Run servers as the daemon's own user, in their own process group, on a free loopback port."),
    cmd: z
      .array(z.string().min(1))
      .min(1)
      .default(["jupyterhub-singleuser"])
      .describe("The server command (argv); argv[0] is looked up on PATH."),
    args: z.array(z.string()).default([]).describe("Extra arguments appended to cmd."),
    env: z
      .record(envName, z.string())
      .default({})
      .describe("Extra environment for the server. JUPYTERHUB_* variables set by the hub cannot be overridden."),
    start_timeout_s: seconds("How long a server may take from launch until it answers on its URL.", 120),
    stop_timeout_s: seconds("How long a server gets after SIGTERM before its whole process group is killed.", 10),
    named_servers: z
      .strictObject({
        limit: z.number().int().min(0).max(100).default(0).describe("Named servers a user may have besides the default one (0 disables them)."),
      })
      .prefault({})
      .describe("Named servers (/user/<name>/<server>/)."),
    default_url: z.string().startsWith("/").optional().describe('Passed as JUPYTERHUB_DEFAULT_URL, e.g. "/tree" or "/lab".'),
  })
  .describe("The local-process spawner.");

export const SpawnerSchema = z.discriminatedUnion("kind", [LocalSpawnerSchema]).describe("How user servers are started.");

export const ConfigSchema = z
  .strictObject({
    $schema: z.string().optional().describe("Path or URL of the JSON Schema, for editors. Ignored by slicehub."),
    listen: listenUrl.default("http://127.0.0.1:8000"),
    public_url: publicUrl.optional(),
    state_dir: z
      .string()
      .min(1)
      .default("./.slicehub")
      .describe("Directory for the SQLite database and server logs. Relative paths are resolved against the config file's directory."),
    jupyterhub_version: z
      .string()
      .regex(/^\d+\.\d+\.\d+$/, 'not a version like "3.0.0"')
      .default("3.0.0")
      .describe(
        "Version the hub reports as X-JupyterHub-Version. Match the major.minor of the jupyterhub package in user environments to avoid a warning in the single-user server.",
      ),
    log_level: z.enum(["debug", "info", "warn", "error"]).default("info").describe("Lowest log level written."),
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
  })
  .refine((c) => c.auth.kind !== "dev" || isLoopbackListen(c.listen), {
    path: ["auth", "kind"],
    message: 'dev login has no password, so it is only allowed when listen is a loopback address (127.0.0.1, [::1] or localhost)',
    // Runs even when unrelated keys are invalid, so an admin sees this along with every other problem at once.
    when: (payload) =>
      typeof payload.value === "object" &&
      payload.value !== null &&
      !Array.isArray(payload.value) &&
      payload.issues.every((i) => i.path?.[0] !== "listen" && i.path?.[0] !== "auth"),
  })
  .describe("slicehub configuration (/etc/slicehub/config.json).");

export type Config = z.infer<typeof ConfigSchema>;
export type AuthConfig = Config["auth"];
export type SpawnerConfig = Config["spawner"];
