// `slicehub export z2jh`: a slicehub config → Helm values for the Zero to JupyterHub chart 4.4.0 (JupyterHub
// 5.5.0), with comments. Pure: the CLI (main/export-z2jh.ts) reads the config, asks for the image, fetches the
// issuer's discovery document and writes the file. Which key becomes what is src/z2jh/mapping.ts, also shown in
// docs/growing-past-one-host.md. The OAuth client secret is never written, only a reference to a Kubernetes
// Secret the admin makes.
import { isDeepStrictEqual } from "node:util";
import { Document, isMap, isScalar, type Node, type Pair, type Scalar, type YAMLMap } from "yaml";
import { isGoogleIssuer, userNameForEmail } from "../../auth/decide.js";
import { ConfigSchema, type Config, type OidcAuthConfig } from "../config/schema.js";
import { MAPPING, type MappingRow } from "./mapping.js";
import { LOGIN_PY, PROFILES_PY } from "./python.js";

export const CHART_VERSION = "4.4.0";
export const JUPYTERHUB_VERSION = "5.5.0";
export const CHART_REPO = "https://hub.jupyter.org/helm-chart/";
/** Jupyter Docker Stacks' image with the scientific Python stack; the tag is for the admin to pin. */
export const DEFAULT_IMAGE = "quay.io/jupyter/scipy-notebook:latest";
export const SECRET_KEY = "client-secret";


export class ExportError extends Error {}

export interface Endpoints {
  authorization_endpoint: string;
  token_endpoint: string;
  userinfo_endpoint?: string;
}

export interface ExportOptions {
  /** The config file, as named in the header. */
  configPath: string;
  slicehubVersion: string;
  image: { name: string; tag: string; source: "option" | "prompt" | "default" };
  storageCapacity: string;
  storageClass?: string;
  memoryGuaranteeRatio: number;
  cpuGuaranteeRatio: number;
  letsencryptEmail?: string;
  namespace: string;
  release: string;
  /** The Kubernetes Secret holding the OAuth client secret (key "client-secret"). */
  secretName: string;
  /** The values file as the helm command names it. */
  valuesFile: string;
  /** Generic OIDC: the discovery document's endpoints, why they could not be read, or undefined (--offline). */
  discovery?: { ok: true; endpoints: Endpoints } | { ok: false; reason: string };
  allowDev: boolean;
}

export interface ExportResult {
  /** The YAML text, comments included. */
  text: string;
  /** The same values as data. */
  values: Record<string, unknown>;
  /** For stderr: what the admin must look at. */
  warnings: string[];
}

/** "repo/name:tag" → name and tag ("host:5000/name:tag" keeps the port in the name). Undefined if not that shape. */
export function parseImage(s: string): { name: string; tag: string } | undefined {
  const colon = s.lastIndexOf(":");
  const tagged = colon > s.lastIndexOf("/");
  const name = tagged ? s.slice(0, colon) : s;
  const tag = tagged ? s.slice(colon + 1) : "latest";
  // [registry[:port]/]path, lower case; the tag as Docker allows it. No digests (the chart joins name:tag).
  if (!/^([a-z0-9.-]+(:\d+)?\/)?[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(name)) return undefined;
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag) ? { name, tag } : undefined;
}

const UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** slicehub's size ("2G", "1.5G", "512M", bytes) as KubeSpawner takes it: the same string (K/M/G/T are powers of 1024 in both), or bytes. */
export function kubeSpawnerBytes(size: string, ratio = 1): string | number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/.exec(size);
  if (!m) throw new ExportError(`not a size: ${size}`);
  if (ratio === 1) return m[2] ? size : Number(m[1]);
  const mib = Math.max(1, Math.round((Number(m[1]) * UNITS[m[2]!]! * ratio) / 1024 ** 2));
  return `${mib}M`;
}

/** Kubernetes expands $(NAME) in env values; slicehub's values are literal. */
function literalEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replaceAll("$(", () => "$$(")]));
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

function get(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const k of path.split(".")) v = v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** The values of a mapping row's key in a config: one, or one per profile for "spawner.profiles[]." keys. */
function valuesAt(cfg: unknown, key: string): unknown[] {
  const i = key.indexOf("[].");
  if (i < 0) return [get(cfg, key)];
  const list = get(cfg, key.slice(0, i));
  return Array.isArray(list) ? list.map((item) => get(item, key.slice(i + 3))) : [];
}

/** The config with only what `cfg`'s kinds require, parsed: slicehub's defaults for that shape. */
function defaultsLike(cfg: Config): unknown {
  const auth = cfg.auth.kind === "oidc" ? { kind: "oidc", client_id: "x" } : { kind: "dev" };
  const spawner = cfg.spawner.kind === "local" ? { kind: "local", single_user_host: cfg.auth.kind === "oidc" } : { kind: "systemd" };
  const r = ConfigSchema.safeParse({ auth, spawner });
  return r.success ? r.data : {};
}

function summary(key: string, v: unknown): string {
  if (/secret/i.test(key)) return "(set)";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 70 ? `${s.slice(0, 67)}...` : s;
}

/** The unmappable keys this config sets (differing from slicehub's default), each with what to do instead. */
export function unmappedSettings(cfg: Config): { set: { row: MappingRow; shown: string }[]; atDefault: string[] } {
  const defaults = defaultsLike(cfg);
  const set: { row: MappingRow; shown: string }[] = [];
  const atDefault: string[] = [];
  for (const row of MAPPING) {
    if (row.values.length > 0) continue;
    const mine = valuesAt(cfg, row.key);
    const theirs = row.key.includes("[]") ? mine.map(() => undefined) : valuesAt(defaults, row.key);
    const present = mine.some((v) => v !== undefined);
    if (!present && !row.key.includes("[]") && get(defaults, row.key) === undefined) continue; // not in this shape (e.g. hooks_dir with the local spawner)
    if (present && (row.always || !isDeepStrictEqual(mine, theirs))) {
      const shown = row.key.includes("[]") ? mine.filter((v) => v !== undefined).map((v) => summary(row.key, v)).join(", ") : summary(row.key, mine[0]);
      set.push({ row, shown });
    } else atDefault.push(row.key);
  }
  return { set, atDefault };
}

function basenameCmd(cmd: string[], where: string, notes: string[]): string[] {
  const first = cmd[0]!;
  if (!first.startsWith("/")) return cmd;
  const base = first.slice(first.lastIndexOf("/") + 1);
  notes.push(`${where}: ${first} is a path on this host; the image runs "${base}" from its PATH. Check the image has it.`);
  return [base, ...cmd.slice(1)];
}

interface Built {
  values: Record<string, unknown>;
  /** Comments before a key: "a.b.c" → lines. */
  comments: Map<string, string[]>;
  /** Lines of the header's "before you install" list. */
  steps: string[];
  /** Further "not carried over" lines (partial mappings). */
  partial: string[];
  warnings: string[];
}

function note(b: Built, path: string, ...lines: string[]): void {
  b.comments.set(path, [...(b.comments.get(path) ?? []), ...lines]);
}

function buildAuth(cfg: Config, o: ExportOptions, b: Built, hub: Record<string, unknown>, hubConfig: Record<string, Record<string, unknown>>, custom: Record<string, unknown>): void {
  const auth = cfg.auth;
  if (auth.kind === "dev") {
    if (!o.allowDev) {
      throw new ExportError(
        'auth.kind is "dev": a development login (no password) is not a deployment, and the cluster would be open to anyone who can reach it. Set up OIDC login first (auth.kind "oidc"), or pass --allow-dev to export with JupyterHub\'s dummy authenticator for a throwaway test cluster.',
      );
    }
    hubConfig.JupyterHub!.authenticator_class = "dummy";
    const dummy: Record<string, unknown> = { admin_users: auth.admin_users };
    if (auth.allowed_users) dummy.allowed_users = auth.allowed_users;
    else dummy.allow_all = true;
    hubConfig.Authenticator = dummy;
    note(b, "hub.config.JupyterHub.authenticator_class", "WARNING (--allow-dev): the dummy authenticator lets anyone log in as any of these users", "without a password. For a throwaway test cluster only; never expose it.");
    b.warnings.push("--allow-dev: the values use the dummy authenticator (no password); for a throwaway test cluster only");
    return;
  }
  const google = isGoogleIssuer(auth.issuer);
  const cls = google ? "GoogleOAuthenticator" : "GenericOAuthenticator";
  hubConfig.JupyterHub!.authenticator_class = google ? "google" : "generic-oauth";
  const base = new URL(cfg.public_url ?? cfg.listen).origin;
  const callback = `${base}/hub/oauth_callback`;
  const a: Record<string, unknown> = { client_id: auth.client_id, oauth_callback_url: callback, scope: auth.scopes };
  if (!cfg.public_url) {
    note(b, `hub.config.${cls}.oauth_callback_url`, "CHANGE THIS: public_url is not set, so this is the listen address. Use <the hub's public URL>/hub/oauth_callback.");
    b.warnings.push("public_url is not set: oauth_callback_url uses listen; change it to the cluster's public URL");
  }
  if (!google) {
    a.login_service = new URL(auth.issuer).hostname;
    const issuer = auth.issuer.replace(/\/+$/, "");
    const d = o.discovery;
    if (d?.ok) {
      a.authorize_url = d.endpoints.authorization_endpoint;
      a.token_url = d.endpoints.token_endpoint;
      if (d.endpoints.userinfo_endpoint) a.userdata_url = d.endpoints.userinfo_endpoint;
      else {
        a.userdata_from_id_token = true;
        note(b, `hub.config.${cls}.userdata_from_id_token`, "The issuer's discovery document names no userinfo endpoint: user data comes from the ID token.");
      }
      note(b, `hub.config.${cls}.authorize_url`, `From ${issuer}/.well-known/openid-configuration.`);
    } else {
      a.authorize_url = `${issuer}/authorize`;
      a.token_url = `${issuer}/token`;
      a.userdata_url = `${issuer}/userinfo`;
      const why = d ? `could not read ${issuer}/.well-known/openid-configuration (${d.reason})` : "--offline";
      note(b, `hub.config.${cls}.authorize_url`, `CHECK THESE THREE URLS: guessed from the issuer (${why}). Take authorization_endpoint,`, `token_endpoint and userinfo_endpoint from ${issuer}/.well-known/openid-configuration.`);
      b.warnings.push(`generic OIDC endpoints are guesses (${why}): check authorize_url, token_url and userdata_url against the issuer's discovery document`);
    }
  }

  // Names: slicehub-login.py makes the same names slicehub does; the lists are also given as names, so the
  // hub's own checks agree (admin at start, blocked) and allow_all is needed only where names cannot be known.
  const rule = auth.username;
  const login: Record<string, unknown> = {
    google,
    username: rule,
    allowed_users: auth.allowed_users,
    admin_users: auth.admin_users,
    blocked_users: auth.blocked_users,
    allowed_domains: auth.allowed_domains,
  };
  custom.login = login;
  if (typeof rule === "string") {
    const names = (emails: string[]) => [...new Set(emails.map((e) => userNameForEmail(rule, e)).filter((n): n is string => !!n))];
    const allowedNames = names([...auth.allowed_users, ...auth.admin_users]);
    a.admin_users = names(auth.admin_users);
    if (auth.allowed_domains.length > 0) a.allow_all = true;
    else a.allowed_users = allowedNames;
    const blocked = names(auth.blocked_users).filter((n) => !allowedNames.includes(n));
    if (blocked.length) a.blocked_users = blocked;
    collisions(auth, rule, b);
    note(b, `hub.config.${cls}.admin_users`, `Hub user names (auth.username "${rule}"); the emails are in custom.slicehub.login, checked at each login.`);
  } else {
    a.allow_all = true;
    note(b, `hub.config.${cls}.allow_all`, `User names come from the claim "${rule.claim}", unknown until login: who may log in is decided by`, "the emails in custom.slicehub.login (hub.extraConfig slicehub-login.py). Keep the two together.");
  }
  if (a.allow_all === true && typeof rule === "string") {
    note(b, `hub.config.${cls}.allow_all`, "Domains are allowed (auth.allowed_domains): hub.extraConfig slicehub-login.py checks them. Keep the two together.");
  }
  hubConfig[cls] = a;
  const extraConfig = (hub.extraConfig ??= {}) as Record<string, string>;
  extraConfig["slicehub-login.py"] = LOGIN_PY;
  note(b, "hub.extraConfig", "Python the chart runs in jupyterhub_config.py (see docs/growing-past-one-host.md).");

  hub.extraEnv = { OAUTH_CLIENT_SECRET: { valueFrom: { secretKeyRef: { name: o.secretName, key: SECRET_KEY } } } };
  const source = auth.client_secret_file ?? (auth.client_secret !== undefined ? "FILE-HOLDING-THE-SECRET" : "/etc/slicehub/oidc-client-secret");
  const command = `kubectl create secret generic ${o.secretName} --namespace ${o.namespace} --from-file=${SECRET_KEY}=<(tr -d '\\r\\n' < ${source})`;
  note(b, "hub.extraEnv", "The OAuth client secret is not in this file. OAuthenticator reads OAUTH_CLIENT_SECRET from the Secret:", `  ${command}`);
  b.steps.push(
    `The OAuth client secret, as a Kubernetes Secret (bash; the value never appears on a command line):`,
    `   ${command}`,
    ...(auth.client_secret !== undefined && auth.client_secret_file === undefined ? ["   (the config has it inline: write it to a file readable only by you first, and delete that file afterwards)"] : []),
    ...(auth.client_secret_file === undefined && auth.client_secret === undefined ? ["   (slicehub reads $CREDENTIALS_DIRECTORY/oidc-client-secret: use the file that credential comes from)"] : []),
    `In the provider's console (${google ? "Google Cloud: APIs & Services, Credentials" : auth.issuer}), add the redirect URI ${callback}`,
  );
}

function collisions(auth: OidcAuthConfig, rule: "email_local" | "email", b: Built): void {
  const byName = new Map<string, Set<string>>();
  for (const e of [...auth.allowed_users, ...auth.admin_users, ...auth.blocked_users]) {
    const n = userNameForEmail(rule, e);
    if (n) byName.set(n, (byName.get(n) ?? new Set()).add(e));
  }
  for (const [n, emails] of byName) {
    if (emails.size > 1) b.warnings.push(`${[...emails].join(" and ")} all get the user name "${n}" (auth.username "${rule}"): as in slicehub, the first to log in gets it`);
  }
}

function buildProfiles(cfg: Config, o: ExportOptions, b: Built, singleuser: Record<string, unknown>, hub: Record<string, unknown>, custom: Record<string, unknown>): void {
  const sp = cfg.spawner;
  if (sp.profiles.length === 0) {
    note(b, "singleuser.image", "No profiles: like slicehub, no limits. The chart still asks the scheduler for 1G of memory per server (singleuser.memory.guarantee).");
    return;
  }
  const cmdNotes: string[] = [];
  const access: Record<string, { users?: string[]; groups?: string[] }> = {};
  singleuser.profileList = sp.profiles.map((p, i) => {
    const override: Record<string, unknown> = {};
    if (p.memory) {
      override.mem_limit = kubeSpawnerBytes(p.memory);
      override.mem_guarantee = kubeSpawnerBytes(p.memory, o.memoryGuaranteeRatio);
    }
    if (p.cpu !== undefined) {
      override.cpu_limit = p.cpu;
      override.cpu_guarantee = round(p.cpu * o.cpuGuaranteeRatio);
    }
    if (p.cmd) override.cmd = basenameCmd(p.cmd, `spawner.profiles[${i}].cmd`, cmdNotes);
    if (p.args) override.args = p.args;
    if (p.env) override.environment = literalEnv({ ...sp.env, ...p.env });
    if (p.users || p.groups) access[p.name] = { ...(p.users ? { users: p.users } : {}), ...(p.groups ? { groups: p.groups } : {}) };
    return {
      display_name: p.title,
      slug: p.name,
      ...(p.description ? { description: p.description } : {}),
      ...(i === 0 ? { default: true } : {}),
      ...(Object.keys(override).length ? { kubespawner_override: override } : {}),
    };
  });
  note(
    b,
    "singleuser.profileList",
    `Limits as in slicehub; guarantees (what the scheduler reserves) are memory × ${o.memoryGuaranteeRatio} and CPU × ${o.cpuGuaranteeRatio}`,
    "(--memory-guarantee-ratio, --cpu-guarantee-ratio).",
    ...cmdNotes,
  );
  if (Object.keys(access).length) {
    custom.profile_access = access;
    const extraConfig = (hub.extraConfig ??= {}) as Record<string, string>;
    extraConfig["slicehub-profiles.py"] = PROFILES_PY;
    note(b, "custom.profile_access", "Profiles only some users or groups may use: hub.extraConfig slicehub-profiles.py offers each user theirs.");
  }
}

function build(cfg: Config, o: ExportOptions): Built {
  const b: Built = { values: {}, comments: new Map(), steps: [], partial: [], warnings: [] };
  const hubConfig: Record<string, Record<string, unknown>> = { JupyterHub: { admin_access: cfg.admin_access } };
  const hub: Record<string, unknown> = { config: hubConfig };
  const custom: Record<string, unknown> = {};
  const singleuser: Record<string, unknown> = {};
  const sp = cfg.spawner;

  buildAuth(cfg, o, b, hub, hubConfig, custom);
  note(b, "hub.config.JupyterHub.admin_access", "Written always: the chart's default is true, slicehub's false.");
  if (Object.keys(cfg.groups).length) {
    hubConfig.JupyterHub!.load_groups = Object.fromEntries(Object.entries(cfg.groups).map(([g, users]) => [g, { users }]));
  }
  if (cfg.subdomain_host) {
    hubConfig.JupyterHub!.subdomain_host = cfg.subdomain_host;
    note(b, "hub.config.JupyterHub.subdomain_host", "Needs wildcard DNS (*.host) to proxy-public and a wildcard certificate; the chart's Let's Encrypt cannot issue one.");
  }
  hubConfig.JupyterHub!.cookie_max_age_days = round(cfg.session.max_age_s / 86_400, 4);
  hubConfig.JupyterHub!.last_activity_interval = Math.ceil(cfg.proxy.activity_flush_s);
  const kubeSpawner: Record<string, unknown> = { delete_grace_period: Math.ceil(sp.stop_timeout_s) };
  if (sp.args.length) kubeSpawner.args = sp.args;
  hubConfig.KubeSpawner = kubeSpawner;

  const limit = sp.named_servers.limit;
  hub.allowNamedServers = limit > 0;
  if (limit > 0) hub.namedServerLimitPerUser = limit;
  hub.authenticatePrometheus = true;
  if (!cfg.metrics.enabled) b.partial.push("metrics.enabled = false: JupyterHub always serves /hub/metrics; authenticatePrometheus: true keeps it behind a token.");

  // The image, storage, command and environment of users' servers.
  singleuser.image = { name: o.image.name, tag: o.image.tag };
  if (o.image.source === "default") {
    note(b, "singleuser.image", `The default image (no --image given). Pin a dated tag instead of ${o.image.tag}: see the tags at https://quay.io/repository/jupyter/scipy-notebook?tab=tags`);
  } else if (o.image.tag === "latest") note(b, "singleuser.image", "Pin a dated tag rather than latest, so every server runs the same software.");
  // homeMountPath: the chart's /home/jovyan (RELIED_CHART_DEFAULTS), the Docker Stacks images' home.
  const storage: Record<string, unknown> = { type: "dynamic", capacity: o.storageCapacity };
  if (o.storageClass) storage.dynamic = { storageClass: o.storageClass };
  singleuser.storage = storage;
  note(b, "singleuser.storage", "One PVC per user, made at their first start, mounted as the home. Homes do not move by themselves:", "copy each user's files into their PVC (docs/growing-past-one-host.md, \"Copying homes\").");
  if (!isDeepStrictEqual(sp.cmd, ["jupyterhub-singleuser"])) {
    const cmdNotes: string[] = [];
    singleuser.cmd = basenameCmd(sp.cmd, "spawner.cmd", cmdNotes);
    if (cmdNotes.length) note(b, "singleuser.cmd", ...cmdNotes);
  }
  if (sp.default_url) singleuser.defaultUrl = sp.default_url;
  if (Object.keys(sp.env).length) singleuser.extraEnv = literalEnv(sp.env);
  singleuser.startTimeout = Math.ceil(sp.start_timeout_s);
  buildProfiles(cfg, o, b, singleuser, hub, custom);

  // HTTPS.
  const pub = cfg.public_url ? new URL(cfg.public_url) : undefined;
  const proxy: Record<string, unknown> = {};
  if (pub?.protocol === "https:") {
    const hsts = { maxAge: cfg.tls.hsts_max_age_s, includeSubdomains: cfg.tls.hsts_include_subdomains };
    if (o.letsencryptEmail) {
      proxy.https = { enabled: true, type: "letsencrypt", hosts: [pub.hostname], letsencrypt: { contactEmail: o.letsencryptEmail } };
      proxy.traefik = { hsts };
      note(b, "proxy.https", `Let's Encrypt for ${pub.hostname}: its DNS must point at proxy-public before the install.`);
    } else if (cfg.tls.cert_file) {
      const name = `${o.release}-tls`;
      proxy.https = { enabled: true, type: "secret", hosts: [pub.hostname], secret: { name } };
      proxy.traefik = { hsts };
      const cmd = `kubectl create secret tls ${name} --namespace ${o.namespace} --cert=${cfg.tls.cert_file} --key=${cfg.tls.key_file}`;
      note(b, "proxy.https", "This host's certificate, as a TLS Secret (renew it by replacing the Secret; or rerun with --letsencrypt-email):", `  ${cmd}`);
      b.steps.push("The TLS certificate, as a Kubernetes Secret:", `   ${cmd}`);
    } else {
      b.steps.push(`HTTPS: ${cfg.public_url} is https, and TLS ends in front of slicehub today. Rerun with --letsencrypt-email, or put TLS in front of the proxy-public service (an ingress: ingress.enabled, ingress.tls).`);
      b.warnings.push("public_url is https but no certificate is exported: rerun with --letsencrypt-email, or terminate TLS in an ingress");
    }
    if (pub.port && pub.port !== "443") b.partial.push(`public_url port ${pub.port}: the chart's proxy serves 80 and 443; use an ingress or change the port people use.`);
  } else if (pub) {
    b.warnings.push(`public_url is ${pub.protocol}//: OAuth providers want https for a public host; consider --letsencrypt-email with an https public_url`);
  }

  // Culling: always written (the chart culls by default, slicehub does not).
  const cull: Record<string, unknown> = {
    enabled: cfg.cull.enabled,
    timeout: Math.ceil(cfg.cull.idle_timeout_s),
    every: Math.ceil(cfg.cull.every_s),
    maxAge: Math.ceil(cfg.cull.max_age_s),
    adminUsers: cfg.cull.admins,
    users: false,
  };
  note(b, "cull", "Always written: the chart culls idle servers by default, slicehub only when cull.enabled.");
  if (cfg.cull.users.enabled) {
    if (cfg.cull.users.idle_timeout_s === cfg.cull.idle_timeout_s) cull.users = true;
    else {
      b.partial.push(
        `cull.users.enabled with idle_timeout_s ${cfg.cull.users.idle_timeout_s}: the chart's culler deletes users after cull.timeout (${cull.timeout} s, the servers' timeout), so cull.users is false; run jupyterhub-idle-culler --cull-users --timeout=${Math.ceil(cfg.cull.users.idle_timeout_s)} as a hub service (hub.services) for the same effect.`,
      );
    }
  }
  if (cfg.cull.enabled && !cfg.cull.admins) b.partial.push("cull.admins = false: jupyterhub-idle-culler stops admins' idle servers too (adminUsers: false only spares admins from deletion).");

  b.values = {
    hub,
    singleuser,
    ...(Object.keys(proxy).length ? { proxy } : {}),
    cull,
    debug: { enabled: cfg.log_level === "debug" },
    ...(Object.keys(custom).length ? { custom: { slicehub: custom } } : {}),
  };
  // custom.profile_access lives under custom.slicehub.
  const moved = b.comments.get("custom.profile_access");
  if (moved) {
    b.comments.delete("custom.profile_access");
    b.comments.set("custom.slicehub.profile_access", moved);
  }
  return b;
}

function commentLines(lines: string[]): string {
  return lines.map((l) => (l ? ` ${l}` : "")).join("\n");
}

/** Sets `lines` as the comment before `path`'s key (the value's comment when it is a list item's). */
function attach(doc: Document, path: string, lines: string[]): void {
  const keys = path.split(".");
  const parent = (keys.length === 1 ? doc.contents : doc.getIn(keys.slice(0, -1))) as Node | undefined;
  if (!isMap(parent)) throw new Error(`no map at ${keys.slice(0, -1).join(".")}`);
  const pair = (parent as YAMLMap).items.find((p: Pair) => isScalar(p.key) && (p.key as Scalar).value === keys.at(-1));
  if (!pair) throw new Error(`no key ${path}`);
  const key = pair.key as Scalar;
  key.commentBefore = [key.commentBefore, commentLines(lines)].filter(Boolean).join("\n");
}

export function exportZ2jh(cfg: Config, o: ExportOptions): ExportResult {
  const b = build(cfg, o);
  // YAML 1.1 quoting (as Helm's Go YAML reads it): a tag like 2025-03-10 or a value like "on" stays a string.
  const doc = new Document(b.values, { version: "1.1" });
  for (const [path, lines] of b.comments) attach(doc, path, lines);
  // Python as block literals, so the file reads as code.
  const extraConfig = doc.getIn(["hub", "extraConfig"]);
  if (isMap(extraConfig)) for (const p of extraConfig.items) if (isScalar(p.value)) p.value.type = "BLOCK_LITERAL";

  const { set, atDefault } = unmappedSettings(cfg);
  const helm = `helm upgrade --install ${o.release} jupyterhub --repo ${CHART_REPO} --version ${CHART_VERSION} --namespace ${o.namespace} --create-namespace --values ${o.valuesFile}`;
  const header = [
    `Helm values for the Zero to JupyterHub chart ${CHART_VERSION} (JupyterHub ${JUPYTERHUB_VERSION}),`,
    `written by slicehub ${o.slicehubVersion} ("slicehub export z2jh") from ${o.configPath}.`,
    "The mapping, and what to check: docs/growing-past-one-host.md in slicehub's source.",
    "",
    "Before installing:",
    `  - kubectl create namespace ${o.namespace}`,
    ...b.steps.map((s) => (s.startsWith("   ") ? ` ${s}` : `  - ${s}`)),
    `  - The image for users' servers: ${o.image.name}:${o.image.tag} (singleuser.image).`,
    "  - Storage: a default StorageClass in the cluster, or --storage-class.",
    `  - DNS: the hub's host name to the external address of the proxy-public service (kubectl get service proxy-public --namespace ${o.namespace}).`,
    "  - Copy homes into the users' PVCs; people log in again (sessions and API tokens do not move).",
    "Install or upgrade:",
    `  ${helm}`,
    "",
    "Not carried over (no z2jh equivalent); do this instead:",
    ...(set.length || b.partial.length ? [...set.map(({ row, shown }) => `  - ${row.key} = ${shown}: ${row.note}`), ...b.partial.map((p) => `  - ${p}`)] : ["  - nothing this config sets."]),
    ...(atDefault.length ? [`Also without an equivalent, but left at slicehub's defaults, so nothing is lost: ${atDefault.join(", ")}.`] : []),
  ];
  doc.commentBefore = commentLines(header.flatMap((l) => wrap(l)));
  const text = doc.toString({ lineWidth: 0 });
  return { text, values: b.values, warnings: b.warnings };
}

/** Wraps a comment line at about 116 characters, continuing indented. */
function wrap(line: string): string[] {
  const max = 116;
  if (line.length <= max || line.startsWith("  helm ") || line.includes("kubectl create secret")) return [line];
  const indent = /^(\s*(- )?)/.exec(line)![0].replace("- ", "  ");
  const out: string[] = [];
  let rest = line;
  while (rest.length > max) {
    let cut = rest.lastIndexOf(" ", max);
    if (cut <= indent.length) cut = rest.indexOf(" ", max);
    if (cut < 0) break;
    out.push(rest.slice(0, cut));
    rest = indent + rest.slice(cut + 1);
  }
  out.push(rest);
  return out;
}
