// The config's HTTPS part: the `tls` block (the listener's certificate, the redirect listener, HSTS) and
// `trusted_proxies` (whose X-Forwarded-*/Forwarded headers are believed). Kept apart from schema.ts, which
// imports these and checks them against `listen` and `public_url`.
import { isIP } from "node:net";
import { z } from "zod";

const absoluteFile = (what: string) =>
  z
    .string()
    .startsWith("/", "must be an absolute path")
    .max(4096)
    .regex(/^[^\0\n\r]*$/, "must be one line")
    .describe(what);

/** A plain-http listen-style URL for the redirect listener: scheme, host and an explicit port only. */
const redirectUrl = z
  .string()
  .describe('Also listen here, plain HTTP, and answer every request with a redirect to public_url (or listen) over https: e.g. "http://0.0.0.0:80".')
  .superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: "custom", message: 'not a URL (expected e.g. "http://0.0.0.0:80")' });
      return;
    }
    if (u.protocol !== "http:") ctx.addIssue({ code: "custom", message: "must be http:// (it only redirects to https)" });
    const authority = s.slice(s.indexOf("//") + 2).split(/[/?#]/)[0] ?? "";
    if (!/:\d+$/.test(authority)) ctx.addIssue({ code: "custom", message: "needs an explicit port, e.g. http://0.0.0.0:80" });
    if (u.username || u.password) ctx.addIssue({ code: "custom", message: "must not have a user name or password" });
    if (u.pathname !== "/" || u.search || u.hash) ctx.addIssue({ code: "custom", message: "must not have a path, query or fragment" });
  });

/** The loopback listener for servers' hub API calls while the public listener is https. */
const internalUrl = z
  .string()
  .describe(
    'With an https listen: where the hub API also listens, plain HTTP on loopback, for the servers on this host (JUPYTERHUB_API_URL; they could not verify the public certificate on 127.0.0.1). Only /hub/api/ answers there. Like JupyterHub\'s hub_bind_url.',
  )
  .superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: "custom", message: 'not a URL (expected e.g. "http://127.0.0.1:8081")' });
      return;
    }
    if (u.protocol !== "http:") ctx.addIssue({ code: "custom", message: "must be http://" });
    if (!(u.hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(u.hostname))) ctx.addIssue({ code: "custom", message: "must be a loopback address (127.0.0.1 or [::1]): it is plain HTTP" });
    const authority = s.slice(s.indexOf("//") + 2).split(/[/?#]/)[0] ?? "";
    if (!/:\d+$/.test(authority)) ctx.addIssue({ code: "custom", message: "needs an explicit port, e.g. http://127.0.0.1:8081" });
    if (u.username || u.password || u.pathname !== "/" || u.search || u.hash) ctx.addIssue({ code: "custom", message: "scheme, host and port only" });
  });

export const TlsSchema = z
  .strictObject({
    cert_file: absoluteFile(
      "PEM certificate chain, the server's certificate first (certbot: /etc/letsencrypt/live/<name>/fullchain.pem). Needed when listen is https://. Read as root at start, and again whenever it changes (no restart).",
    ).optional(),
    key_file: absoluteFile(
      "PEM private key of cert_file (certbot: /etc/letsencrypt/live/<name>/privkey.pem). May be readable by root only: after the privilege drop the privileged helper reads it.",
    ).optional(),
    min_version: z.enum(["TLSv1.2", "TLSv1.3"]).default("TLSv1.2").describe("Oldest TLS version accepted; TLS 1.3 is preferred whenever the client has it."),
    reload_check_s: z
      .number()
      .min(1)
      .max(3600)
      .default(5)
      .describe("How often the certificate and key files are checked for a change (a certbot renewal); a changed, valid pair is served from the next connection on."),
    redirect_http: redirectUrl.optional(),
    internal_listen: internalUrl.default("http://127.0.0.1:8081"),
    acme_webroot: absoluteFile(
      "With redirect_http: the redirect listener answers GET /.well-known/acme-challenge/<token> with that file from <acme_webroot>/.well-known/acme-challenge/ (certbot certonly --webroot -w <acme_webroot>), so certificates are issued and renewed while slicehub holds port 80.",
    ).optional(),
    hsts_max_age_s: z
      .number()
      .int()
      .min(0)
      .max(2 * 365 * 86_400)
      .default(365 * 86_400)
      .describe(
        "Strict-Transport-Security max-age sent while public_url (or, without it, listen) is https://, also behind a TLS-terminating proxy; 0 sends none. Browsers then refuse plain http for the host for that long.",
      ),
    hsts_include_subdomains: z.boolean().default(false).describe("Adds includeSubDomains to Strict-Transport-Security: only if every host under this one serves https."),
  })
  .prefault({})
  .describe("HTTPS: the listener's certificate when listen is https://, an optional plain-http listener that redirects to it, and HSTS.");

export type TlsConfig = z.infer<typeof TlsSchema>;

/** An IP address or a CIDR block, as net.BlockList takes them. */
export function parseAddressOrBlock(s: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  const slash = s.indexOf("/");
  const address = slash < 0 ? s : s.slice(0, slash);
  const v = isIP(address);
  if (v === 0) return undefined;
  const max = v === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return undefined;
    prefix = Number(p);
  }
  return { address, prefix, family: v === 4 ? "ipv4" : "ipv6" };
}

export const TrustedProxiesSchema = z
  .array(
    z
      .string()
      .max(64)
      .refine((s) => parseAddressOrBlock(s) !== undefined, 'not an IP address or CIDR block (e.g. "127.0.0.1", "::1" or "10.0.0.0/8")'),
  )
  .max(1000)
  .default([])
  .describe(
    'Addresses of reverse proxies in front of slicehub (IPs or CIDR blocks, e.g. ["127.0.0.1", "::1"]) whose X-Forwarded-For/-Proto/-Host and Forwarded headers are believed. Everyone else\'s are ignored and replaced. Default: none, not even loopback (users\' servers run on this host and can connect to it).',
  );
