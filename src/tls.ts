// The https listener's certificate (config `tls`): read as root before the privilege drop, checked, and
// reloaded without a restart whenever the files change (certbot renews by pointing the symlinks in
// /etc/letsencrypt/live/<name>/ at new files). A pair that does not work (unreadable, not PEM, a key that is
// not the certificate's, an expired certificate, a half-finished renewal) is logged and the one being served
// stays. Once the web process is unprivileged it may not read a root-only key: then the privileged helper
// (op tls-read, which reads the files named in its own copy of the config) hands the pair over.
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import http from "node:http";
import type https from "node:https";
import { createSecureContext } from "node:tls";
import type { Config } from "./config/schema.js";
import type { Logger } from "./log.js";

/** PEM text of a certificate chain and its key. */
export interface TlsPair {
  cert: string;
  key: string;
}

/** What is logged about a certificate (never anything of the key). */
export interface CertificateInfo {
  subject: string;
  issuer: string;
  serial: string;
  fingerprint256: string;
  valid_from: string;
  valid_to: string;
}

/** Largest certificate or key file read (a chain of a few certificates is a few KiB). */
export const MAX_PEM_BYTES = 1 << 20;

/** Reads the pair named in the config; throws with the path and the errno code (EACCES when not ours to read). */
export function readTlsFiles(tls: Config["tls"]): TlsPair {
  if (!tls.cert_file || !tls.key_file) throw new Error("tls.cert_file and tls.key_file are not set");
  const read = (path: string) => {
    const buf = readFileSync(path);
    if (buf.length > MAX_PEM_BYTES) throw new Error(`${path} is larger than ${MAX_PEM_BYTES} bytes; not a PEM certificate or key`);
    return buf.toString("utf8");
  };
  return { cert: read(tls.cert_file), key: read(tls.key_file) };
}

/** Server options of the https listener: modern defaults, HTTP/1.1 only (the proxy speaks HTTP/1.1 and websockets). */
export function tlsServerOptions(tls: Config["tls"], pair?: TlsPair): https.ServerOptions {
  return {
    minVersion: tls.min_version,
    // TLS 1.3 is preferred by the protocol itself whenever both sides have it; node's default cipher list
    // (forward-secret AEAD suites first) with our order, not the client's.
    honorCipherOrder: true,
    ALPNProtocols: ["http/1.1"],
    ...(pair ?? {}),
  };
}

/** Checks a pair as a listener would use it; returns the certificate's details, or throws saying what is wrong. */
export function checkPair(pair: TlsPair, now = Date.now()): CertificateInfo {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pair.cert);
  } catch (err) {
    throw new Error(`the certificate file holds no PEM certificate (${(err as Error).message})`);
  }
  let key;
  try {
    key = createPrivateKey(pair.key);
  } catch (err) {
    throw new Error(`the key file holds no PEM private key (${(err as Error).message})`);
  }
  if (!cert.checkPrivateKey(key)) throw new Error(`the key is not the key of the certificate ${cert.subject.replace(/\n/g, ", ")} (serial ${cert.serialNumber})`);
  if (Date.parse(cert.validTo) < now) throw new Error(`the certificate expired on ${cert.validTo}`);
  if (Date.parse(cert.validFrom) > now + 86_400_000) throw new Error(`the certificate is not valid before ${cert.validFrom}`);
  // What node itself would refuse (a chain it cannot parse, say).
  createSecureContext({ cert: pair.cert, key: pair.key });
  return {
    subject: cert.subject.replace(/\n/g, ", "),
    issuer: cert.issuer.replace(/\n/g, ", "),
    serial: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
    valid_from: cert.validFrom,
    valid_to: cert.validTo,
  };
}

const digest = (pair: TlsPair) => createHash("sha256").update(pair.cert).update("\0").update(pair.key).digest("hex");

/** How the pair is fetched: a direct read, or through the privileged helper when the files are root's. */
export type TlsSource = () => Promise<TlsPair>;

/**
 * A direct read while it works; after an EACCES/EPERM (the web process dropped root, or never had it) the
 * helper's tls-read, if there is a helper.
 */
export function tlsSource(config: () => Config, helperRead: (() => Promise<TlsPair>) | undefined, log?: Logger): TlsSource {
  let viaHelper = false;
  return async () => {
    if (!viaHelper) {
      try {
        return readTlsFiles(config().tls);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (!helperRead || (code !== "EACCES" && code !== "EPERM")) throw err;
        viaHelper = true;
        log?.info("the TLS files are not readable by this process; the privileged helper reads them from now on", { error_code: code });
      }
    }
    return helperRead!();
  };
}

export interface TlsReloaderOptions {
  server: https.Server;
  source: TlsSource;
  log: Logger;
  config: () => Config;
  /** The pair already in the server (read at start), if any. */
  current?: TlsPair;
}

/**
 * Polls the pair every tls.reload_check_s and swaps the listener's context when it changed and works; new
 * connections get it, open ones keep theirs. A bad pair is logged once (until it changes again).
 */
export class TlsReloader {
  #current: string | undefined;
  #refused: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #info: CertificateInfo | undefined;

  constructor(private readonly opts: TlsReloaderOptions) {
    if (opts.current) {
      this.#current = digest(opts.current);
      try {
        this.#info = checkPair(opts.current);
      } catch {
        // served anyway: it is what there is
      }
    }
  }

  /** The certificate being served. */
  get info(): CertificateInfo | undefined {
    return this.#info;
  }

  start(): void {
    const tick = () => {
      this.#timer = setTimeout(() => void this.check().finally(tick), this.opts.config().tls.reload_check_s * 1000);
      this.#timer.unref();
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One check: true when a new pair is now served. */
  async check(): Promise<boolean> {
    if (this.#busy) return false;
    this.#busy = true;
    try {
      let pair: TlsPair;
      try {
        pair = await this.opts.source();
      } catch (err) {
        const why = `unreadable: ${(err as Error).message}`;
        if (this.#refused !== why) this.opts.log.error("cannot read the TLS certificate or key; still serving the current one", { error: why });
        this.#refused = why;
        return false;
      }
      const d = digest(pair);
      if (d === this.#current || d === this.#refused) return false;
      let info: CertificateInfo;
      try {
        info = checkPair(pair);
      } catch (err) {
        // certbot swaps the cert's and the key's symlinks one after the other: a check between them sees a
        // mismatch, and the next one the finished pair.
        this.opts.log.error("the changed TLS certificate or key does not work; still serving the current one", { error: (err as Error).message });
        this.#refused = d;
        return false;
      }
      this.opts.server.setSecureContext(tlsServerOptions(this.opts.config().tls, pair));
      this.#current = d;
      this.#refused = undefined;
      const previous = this.#info;
      this.#info = info;
      this.opts.log.info("serving a new TLS certificate", { ...info, previous_serial: previous?.serial });
      return true;
    } finally {
      this.#busy = false;
    }
  }
}

/** The value of Strict-Transport-Security for this config, or undefined when none is sent. */
export function hstsHeader(cfg: Config): string | undefined {
  const url = cfg.public_url ?? cfg.listen;
  if (!url.startsWith("https:") || cfg.tls.hsts_max_age_s === 0) return undefined;
  return `max-age=${cfg.tls.hsts_max_age_s}${cfg.tls.hsts_include_subdomains ? "; includeSubDomains" : ""}`;
}

const ACME_CHALLENGE = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]{1,200})$/;

/**
 * An ACME HTTP-01 token file from tls.acme_webroot (what certbot --webroot wrote), or undefined. The token is
 * one path segment of base64url characters: nothing else of the directory, and nothing outside it, is served.
 */
function acmeChallenge(cfg: Config, method: string | undefined, url: string | undefined): string | undefined {
  const root = cfg.tls.acme_webroot;
  if (!root || (method !== "GET" && method !== "HEAD")) return undefined;
  const m = ACME_CHALLENGE.exec(url ?? "");
  if (!m) return undefined;
  const file = join(root, ".well-known", "acme-challenge", m[1]!);
  try {
    if (!statSync(file).isFile() || statSync(file).size > 4096) return undefined;
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * The plain-HTTP listener of tls.redirect_http: every request gets a 308 to the same path and query at the https
 * address (public_url's, else listen's), nothing else (but ACME challenges from tls.acme_webroot). Host is not
 * used: a redirect never goes to a host the client named.
 */
export function createRedirectServer(config: () => Config): http.Server {
  const server = http.createServer({ headersTimeout: 10_000, requestTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
    const cfg = config();
    const challenge = acmeChallenge(cfg, req.method, req.url);
    if (challenge !== undefined) {
      res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(challenge), "Cache-Control": "no-store", Connection: "close" });
      res.end(req.method === "HEAD" ? undefined : challenge);
      return;
    }
    const base = new URL(cfg.public_url ?? cfg.listen);
    if (base.protocol !== "https:") base.protocol = "https:";
    if (base.hostname === "0.0.0.0" || base.hostname === "[::]") {
      res.writeHead(500, { "Content-Type": "text/plain; charset=UTF-8", Connection: "close" });
      res.end("Set public_url: the https address to redirect to is unknown.\n");
      return;
    }
    // Path and query set as such, never parsed against the base: "//evil.example" or "/\\evil.example" stay paths.
    const target = new URL(base.origin);
    const raw = req.url?.startsWith("/") ? req.url : "/";
    const q = raw.indexOf("?");
    target.pathname = q < 0 ? raw : raw.slice(0, q);
    if (q >= 0) target.search = raw.slice(q);
    const location = target.href;
    res.writeHead(308, { Location: location, "Content-Type": "text/plain; charset=UTF-8", "Cache-Control": "no-store", Connection: "close" });
    res.end(`Use ${location}\n`);
  });
  server.timeout = 15_000;
  server.maxConnections = 1024;
  return server;
}

/**
 * With an https listen, the servers on this host reach the hub API over plain HTTP on loopback
 * (tls.internal_listen, JUPYTERHUB_API_URL): only /hub/api answers there; it has no pages, no cookies to set
 * for a browser, and no proxy routes.
 */
export function createInternalApiServer(): { server: http.Server; attach(listener: http.RequestListener): void } {
  let hub: http.RequestListener | undefined;
  const server = http.createServer({ headersTimeout: 20_000, requestTimeout: 300_000, keepAliveTimeout: 65_000 }, (req, res) => {
    const url = req.url ?? "";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    if (path !== "/hub/api" && !path.startsWith("/hub/api/")) {
      res.writeHead(404, { "Content-Type": "text/plain; charset=UTF-8" });
      res.end("Only the hub API (/hub/api/) answers on this listener.\n");
    } else if (!hub) {
      res.writeHead(503, { "Content-Type": "text/plain; charset=UTF-8", "Retry-After": "1" });
      res.end("slicehub is starting; try again in a moment\n");
    } else void hub(req, res);
  });
  server.timeout = 300_000;
  return { server, attach: (listener) => void (hub = listener) };
}
