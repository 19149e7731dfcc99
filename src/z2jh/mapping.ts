// The one table of how slicehub's config keys carry over to the Zero to JupyterHub chart (z2jh 4.4.0, JupyterHub
// 5.5.0). `slicehub export z2jh` (src/z2jh/export.ts) takes the notes of unmappable keys from here, and
// docs/growing-past-one-host.md shows it: test/export/mapping.test.ts checks that the page's table is exactly
// `mappingTableMarkdown()` and that every key of the config's JSON Schema has a row (its own or an ancestor's),
// so a new config key cannot be left out of the export without a word.

export interface MappingRow {
  /** The config key: dotted, `[]` for the items of a list ("spawner.profiles[].memory"). A row covers its descendants. */
  key: string;
  /** The z2jh values paths it becomes; empty when there is no equivalent. */
  values: string[];
  /** What the export does, or, without an equivalent, what to do instead. One line. */
  note: string;
  /** Without an equivalent, listed in the output's header whenever the config has the key, also at its default (behaviour that is on by default). */
  always?: true;
}

const AUTH = "hub.config.<Authenticator>";
const PROFILE = "singleuser.profileList[]";
const OVERRIDE = `${PROFILE}.kubespawner_override`;

export const MAPPING: readonly MappingRow[] = [
  { key: "$schema", values: [], note: "An editor hint; nothing to carry over." },
  { key: "listen", values: ["proxy.service"], note: "Kubernetes gives the hub its address: the chart's proxy-public Service (a LoadBalancer by default)." },
  { key: "public_url", values: [`${AUTH}.oauth_callback_url`, "proxy.https.hosts"], note: "The callback is <public_url>/hub/oauth_callback; its host is the one HTTPS is set up for. Point DNS at proxy-public." },
  { key: "tls.cert_file", values: ["proxy.https.type", "proxy.https.secret.name"], note: "https public_url: a TLS Secret made from the certificate files (kubectl create secret tls), or Let's Encrypt with --letsencrypt-email." },
  { key: "tls.key_file", values: ["proxy.https.secret.name"], note: "The key goes into the same TLS Secret; it is never copied into the values." },
  { key: "tls.min_version", values: [], note: "Set TLS options in Traefik (proxy.traefik.extraDynamicConfig) or in your ingress controller." },
  { key: "tls.reload_check_s", values: [], note: "Not needed: Traefik reloads certificates itself; renew a TLS Secret by replacing it." },
  { key: "tls.redirect_http", values: ["proxy.https.enabled"], note: "With HTTPS on, the chart's proxy redirects http to https itself." },
  { key: "tls.internal_listen", values: [], note: "Not needed: servers reach the hub over the cluster network." },
  { key: "tls.acme_webroot", values: ["proxy.https.letsencrypt.contactEmail"], note: "Let's Encrypt is built into the chart (--letsencrypt-email)." },
  { key: "tls.hsts_max_age_s", values: ["proxy.traefik.hsts.maxAge"], note: "Written when the chart terminates HTTPS (Traefik); otherwise set HSTS where TLS ends." },
  { key: "tls.hsts_include_subdomains", values: ["proxy.traefik.hsts.includeSubdomains"], note: "As tls.hsts_max_age_s." },
  { key: "trusted_proxies", values: [], note: "The chart's proxy is the entry point; client addresses are your load balancer's or ingress controller's business." },
  { key: "subdomain_host", values: ["hub.config.JupyterHub.subdomain_host"], note: "Needs wildcard DNS and a wildcard certificate (a TLS Secret or an ingress with DNS-01; the chart's Let's Encrypt cannot issue one)." },
  { key: "state_dir", values: ["hub.db"], note: "JupyterHub keeps its own database on a PVC; users, tokens and servers start afresh there (people log in again)." },
  { key: "jupyterhub_version", values: [], note: "The chart runs JupyterHub 5.5.0; use an image whose jupyterhub-singleuser is 5.x." },
  { key: "log_level", values: ["debug.enabled"], note: "debug.enabled is true when log_level is debug." },
  { key: "run_as", values: [], note: "Not needed: the hub runs in its own pod as an unprivileged user (hub.containerSecurityContext)." },
  { key: "groups", values: ["hub.config.JupyterHub.load_groups"], note: "JupyterHub groups with the same members (created at hub start)." },
  { key: "auth.kind", values: ["hub.config.JupyterHub.authenticator_class"], note: "oidc: google or generic-oauth (OAuthenticator). dev is refused unless --allow-dev, which writes the dummy authenticator." },
  { key: "auth.issuer", values: ["hub.config.JupyterHub.authenticator_class", "hub.config.GenericOAuthenticator.authorize_url", "hub.config.GenericOAuthenticator.token_url", "hub.config.GenericOAuthenticator.userdata_url"], note: "Google: GoogleOAuthenticator. Any other issuer: GenericOAuthenticator with the endpoints of its discovery document (fetched; --offline writes guesses to check)." },
  { key: "auth.client_id", values: [`${AUTH}.client_id`], note: "Copied." },
  { key: "auth.client_secret_file", values: ["hub.extraEnv.OAUTH_CLIENT_SECRET"], note: "Never copied: a secretKeyRef to a Kubernetes Secret you make from the file (the command is in the output)." },
  { key: "auth.client_secret", values: ["hub.extraEnv.OAUTH_CLIENT_SECRET"], note: "Never copied: write it to a file and make the Kubernetes Secret from that." },
  { key: "auth.scopes", values: [`${AUTH}.scope`], note: "Copied." },
  { key: "auth.allowed_users", values: [`${AUTH}.allowed_users`, "custom.slicehub.login.allowed_users"], note: "Emails, checked at login by hub.extraConfig slicehub-login.py; also listed as hub user names." },
  { key: "auth.allowed_domains", values: [`${AUTH}.allow_all`, "custom.slicehub.login.allowed_domains"], note: "allow_all plus the domain check of slicehub-login.py (Google: the hd claim; others: the verified email's domain)." },
  { key: "auth.admin_users", values: [`${AUTH}.admin_users`, "custom.slicehub.login.admin_users"], note: "Emails; slicehub-login.py grants and removes admin at each login, as slicehub does; also listed as hub user names." },
  { key: "auth.blocked_users", values: [`${AUTH}.blocked_users`, "custom.slicehub.login.blocked_users"], note: "Emails, refused by slicehub-login.py; also listed as hub user names." },
  { key: "auth.username", values: [`${AUTH}.username_claim`], note: "slicehub-login.py makes the same user names as slicehub (email_local, email as name-at-domain, or a claim; normalised alike)." },
  { key: "auth.on_removal", values: [], note: "JupyterHub leaves servers running when someone loses access: stop them on the admin page or with the REST API." },
  { key: "spawner.kind", values: [], note: "KubeSpawner (the chart's): one pod per server." },
  { key: "spawner.cmd", values: ["singleuser.cmd"], note: "argv[0] is looked up on the image's PATH: a host path becomes its last part." },
  { key: "spawner.args", values: ["hub.config.KubeSpawner.args"], note: "Copied." },
  { key: "spawner.env", values: ["singleuser.extraEnv"], note: "Copied; $( is escaped as $$( so Kubernetes does not expand it." },
  { key: "spawner.start_timeout_s", values: ["singleuser.startTimeout"], note: "Always written (the chart's default is 300); image pulls count against it on Kubernetes." },
  { key: "spawner.stop_timeout_s", values: ["hub.config.KubeSpawner.delete_grace_period"], note: "The pod's grace period after SIGTERM." },
  { key: "spawner.named_servers.limit", values: ["hub.allowNamedServers", "hub.namedServerLimitPerUser"], note: "0 (slicehub: none) becomes allowNamedServers: false; in JupyterHub a limit of 0 would mean unlimited." },
  { key: "spawner.default_url", values: ["singleuser.defaultUrl"], note: "Copied." },
  { key: "spawner.profiles[].name", values: [`${PROFILE}.slug`], note: "The same name in the spawn API (user_options profile)." },
  { key: "spawner.profiles[].title", values: [`${PROFILE}.display_name`], note: "The first profile a user may use is the default (default: true)." },
  { key: "spawner.profiles[].description", values: [`${PROFILE}.description`], note: "Copied." },
  { key: "spawner.profiles[].memory", values: [`${OVERRIDE}.mem_limit`, `${OVERRIDE}.mem_guarantee`], note: "Same units (K/M/G/T are powers of 1024 in both); guarantee = limit × --memory-guarantee-ratio (default 1)." },
  { key: "spawner.profiles[].cpu", values: [`${OVERRIDE}.cpu_limit`, `${OVERRIDE}.cpu_guarantee`], note: "guarantee = limit × --cpu-guarantee-ratio (default 0.1)." },
  { key: "spawner.profiles[].tasks", values: [], note: "KubeSpawner has no per-pod process limit: the kubelet's podPidsLimit sets one per node." },
  { key: "spawner.profiles[].cmd", values: [`${OVERRIDE}.cmd`], note: "As spawner.cmd." },
  { key: "spawner.profiles[].args", values: [`${OVERRIDE}.args`], note: "Copied." },
  { key: "spawner.profiles[].env", values: [`${OVERRIDE}.environment`], note: "Merged with spawner.env (the profile's values win), as in slicehub." },
  { key: "spawner.profiles[].users", values: ["custom.slicehub.profile_access", "hub.extraConfig.slicehub-profiles.py"], note: "KubeSpawner has no per-profile access list: slicehub-profiles.py offers each user only the profiles they may use." },
  { key: "spawner.profiles[].groups", values: ["custom.slicehub.profile_access", "hub.extraConfig.slicehub-profiles.py"], note: "As users, with the groups of hub.config.JupyterHub.load_groups." },
  { key: "spawner.single_user_host", values: [], note: "Not needed: every user's server is its own pod." },
  { key: "spawner.hooks_dir", values: [], note: "Root hooks run on the host: use singleuser.initContainers (may run as root), singleuser.lifecycleHooks, or a pre_spawn_hook in hub.extraConfig.", always: true },
  { key: "spawner.hook_timeout_s", values: [], note: "Init containers have no timeout of their own: the whole start has singleuser.startTimeout." },
  { key: "spawner.unix_users", values: [], note: "No Unix accounts: servers run as the image's user (jovyan, singleuser.uid 1000) with the home on the user's PVC.", always: true },
  { key: "spawner.slice_limits", values: [], note: "Each user's servers share one systemd slice here: Kubernetes has no per-user total; a namespace ResourceQuota limits all servers together, profiles and named-server limits bound each user.", always: true },
  { key: "spawner.hardening", values: [], note: "Containers replace systemd sandboxing: the chart sets allowPrivilegeEscalation: false and network policies; add more with KubeSpawner.container_security_context.", always: true },
  { key: "spawner.properties", values: [], note: "No systemd units: the nearest is hub.config.KubeSpawner.extra_container_config / extra_pod_config." },
  { key: "session.idle_timeout_s", values: [], note: "JupyterHub has no idle timeout for browser sessions; cookie_max_age_days bounds their age.", always: true },
  { key: "session.max_age_s", values: ["hub.config.JupyterHub.cookie_max_age_days"], note: "In days." },
  { key: "proxy.activity_flush_s", values: ["hub.config.JupyterHub.last_activity_interval"], note: "Rounded up to whole seconds." },
  { key: "cull.enabled", values: ["cull.enabled"], note: "Always written: the chart culls by default, slicehub does not." },
  { key: "cull.idle_timeout_s", values: ["cull.timeout"], note: "Rounded up to whole seconds." },
  { key: "cull.max_age_s", values: ["cull.maxAge"], note: "Rounded up to whole seconds; 0 means none in both." },
  { key: "cull.every_s", values: ["cull.every"], note: "Always written (the chart checks every 600 s)." },
  { key: "cull.admins", values: ["cull.adminUsers"], note: "jupyterhub-idle-culler stops admins' servers too; adminUsers only decides whether admins are deleted with cull.users." },
  { key: "cull.users.enabled", values: ["cull.users"], note: "The chart's culler deletes users after cull.timeout (the servers' timeout): written true only when both timeouts are equal." },
  { key: "cull.users.idle_timeout_s", values: ["cull.users"], note: "As cull.users.enabled." },
  { key: "admin_access", values: ["hub.config.JupyterHub.admin_access"], note: "Always written (the chart's default is true). In JupyterHub it opens users' servers to admins, not only terminals." },
  { key: "terminal", values: [], note: "Use JupyterLab's terminal in the user's server (there is none while the server is stopped).", always: true },
  { key: "ssh", values: [], note: "The jupyterhub-ssh chart gives SSH and SFTP into users' servers, with JupyterHub API tokens as passwords." },
  { key: "metrics.enabled", values: ["hub.authenticatePrometheus"], note: "JupyterHub always serves /hub/metrics; written true, so a token (read:metrics) is needed, as in slicehub." },
  { key: "metrics.allowed_addresses", values: [], note: "Scrape with a token, or set authenticatePrometheus: false and limit who reaches the hub with hub.networkPolicy." },
  { key: "http", values: [], note: "Limits belong to the chart's proxy and your load balancer or ingress (e.g. body size and timeout annotations)." },
];

/** The row for a config key: its own or its nearest ancestor's ("spawner.hardening" covers spawner.hardening.private_tmp). */
export function rowFor(key: string): MappingRow | undefined {
  for (let k = key; k; k = k.includes(".") ? k.slice(0, k.lastIndexOf(".")) : "") {
    const row = MAPPING.find((r) => r.key === k);
    if (row) return row;
  }
  return undefined;
}

function cell(s: string): string {
  return s.replaceAll("|", "\\|");
}

/** The table as docs/growing-past-one-host.md shows it. */
export function mappingTableMarkdown(): string {
  const lines = ["| slicehub key | z2jh values | what happens |", "| --- | --- | --- |"];
  for (const r of MAPPING) {
    const values = r.values.length ? r.values.map((v) => `\`${v}\``).join(", ") : "— (no equivalent)";
    lines.push(`| \`${r.key}\` | ${cell(values)} | ${cell(r.note)} |`);
  }
  return lines.join("\n");
}

/**
 * Chart defaults the export relies on: where slicehub's behaviour equals the chart's default, the key is left
 * out of the values. test/export/defaults.test.ts checks each against the chart's values.yaml.
 */
export const RELIED_CHART_DEFAULTS: readonly { path: string; value: unknown; why: string }[] = [
  { path: "singleuser.cmd", value: "jupyterhub-singleuser", why: "spawner.cmd at slicehub's default is left out" },
  { path: "singleuser.memory.limit", value: null, why: "without profiles slicehub sets no memory limit" },
  { path: "singleuser.cpu.limit", value: null, why: "without profiles slicehub sets no CPU limit" },
  { path: "singleuser.storage.homeMountPath", value: "/home/jovyan", why: "the Jupyter Docker Stacks images' home" },
  { path: "singleuser.uid", value: 1000, why: "jovyan's uid in the Jupyter Docker Stacks images" },
  { path: "cull.removeNamedServers", value: false, why: "slicehub's culler stops named servers, it does not delete them" },
  { path: "cull.concurrency", value: 10, why: "slicehub has no such setting" },
];

/**
 * Chart defaults that differ from slicehub's behaviour at slicehub's defaults, so the export always writes these
 * keys, also for `{}`-like configs. test/export/defaults.test.ts checks the chart really has these defaults.
 */
export const OVERRIDDEN_CHART_DEFAULTS: readonly { path: string; chart: unknown; slicehub: unknown }[] = [
  { path: "hub.config.JupyterHub.admin_access", chart: true, slicehub: false },
  { path: "hub.config.JupyterHub.authenticator_class", chart: "dummy", slicehub: "google" },
  { path: "cull.enabled", chart: true, slicehub: false },
  { path: "cull.every", chart: 600, slicehub: 60 },
  { path: "cull.adminUsers", chart: true, slicehub: false },
  { path: "singleuser.startTimeout", chart: 300, slicehub: 120 },
];
