// The config's HTTPS part (src/config/https.ts, checked against listen in schema.ts).
import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { internalApiUrl, listenAddress } from "../../src/server-env.js";
import { hstsHeader } from "../../src/tls.js";

const parse = (obj: object) => parseConfigText(JSON.stringify(obj), "config.json", "/etc/slicehub");
const errors = (obj: object) => {
  const r = parse(obj);
  if (r.ok) throw new Error("expected the config to be rejected");
  return r.errors.map((e) => e.replace(/ \(\d+:\d+\)$/, ""));
};
const ok = (obj: object) => {
  const r = parse(obj);
  if (!r.ok) throw new Error(r.errors.join("\n"));
  return r.config;
};
const tls = { cert_file: "/etc/letsencrypt/live/hub/fullchain.pem", key_file: "/etc/letsencrypt/live/hub/privkey.pem" };

describe("config: listen https and tls", () => {
  it("accepts an https listen with a certificate, with defaults for the rest", () => {
    const c = ok({ listen: "https://127.0.0.1:8443", tls });
    expect(c.tls).toMatchObject({ ...tls, min_version: "TLSv1.2", reload_check_s: 5, hsts_max_age_s: 31_536_000, hsts_include_subdomains: false, internal_listen: "http://127.0.0.1:8081" });
    expect(c.trusted_proxies).toEqual([]);
    // Servers reach the API on the plain loopback listener, not the https one.
    expect(internalApiUrl(c)).toBe("http://127.0.0.1:8081/hub/api");
    expect(listenAddress({ ...c, listen: "https://0.0.0.0:443" })).toEqual({ host: "0.0.0.0", port: 443 });
  });

  it("refuses a certificate without https, and https without one", () => {
    expect(errors({ listen: "http://127.0.0.1:8000", tls })).toEqual([
      "tls.cert_file: only used when listen is https:// (it is http://127.0.0.1:8000); behind a TLS-terminating proxy leave it out",
      "tls.key_file: only used when listen is https:// (it is http://127.0.0.1:8000); behind a TLS-terminating proxy leave it out",
    ]);
    expect(errors({ listen: "https://127.0.0.1:8443", tls: { cert_file: tls.cert_file } })).toEqual([
      "tls.key_file: listen is https://127.0.0.1:8443, so the certificate needs tls.cert_file and tls.key_file",
    ]);
    expect(errors({ listen: "https://127.0.0.1:8443", tls: { ...tls, key_file: "privkey.pem" } })).toEqual(["tls.key_file: must be an absolute path"]);
  });

  it("checks redirect_http and internal_listen", () => {
    expect(ok({ listen: "https://127.0.0.1:8443", tls: { ...tls, redirect_http: "http://127.0.0.1:8080" } }).tls.redirect_http).toBe("http://127.0.0.1:8080");
    expect(errors({ listen: "https://127.0.0.1:443", tls: { ...tls, redirect_http: "http://0.0.0.0:443" } })).toEqual(["tls.redirect_http: uses the same port as listen (443)"]);
    expect(errors({ listen: "https://127.0.0.1:8443", tls: { ...tls, redirect_http: "https://127.0.0.1:80" } })).toEqual(["tls.redirect_http: must be http:// (it only redirects to https)"]);
    expect(errors({ listen: "http://127.0.0.1:8000", tls: { redirect_http: "http://127.0.0.1:80" } })).toEqual(["tls.redirect_http: redirects to the https listener, so listen must be https://"]);
    expect(errors({ listen: "https://127.0.0.1:8443", tls: { ...tls, internal_listen: "http://0.0.0.0:8081" } })).toEqual([
      "tls.internal_listen: must be a loopback address (127.0.0.1 or [::1]): it is plain HTTP",
    ]);
    expect(errors({ listen: "https://127.0.0.1:8081", tls })).toEqual(["tls.internal_listen: uses the same port as listen (8081); pick another, e.g. http://127.0.0.1:8081"]);
    expect(errors({ listen: "https://127.0.0.1:8443", tls: { ...tls, min_version: "TLSv1.1" } })[0]).toMatch(/^tls\.min_version: /);
    expect(errors({ listen: "https://127.0.0.1:8443", tls: { ...tls, acme_webroot: "/var/www/acme" } })).toEqual([
      "tls.acme_webroot: is served by the redirect listener: set tls.redirect_http too (without it, port 80 is free for certbot --standalone)",
    ]);
  });

  it("HSTS when public_url (or listen) is https, also behind a proxy; 0 turns it off", () => {
    expect(hstsHeader(ok({ listen: "https://127.0.0.1:8443", tls }))).toBe("max-age=31536000");
    expect(hstsHeader(ok({ listen: "http://127.0.0.1:8000", public_url: "https://localhost" }))).toBe("max-age=31536000");
    expect(hstsHeader(ok({ listen: "http://127.0.0.1:8000", public_url: "https://localhost", tls: { hsts_max_age_s: 600, hsts_include_subdomains: true } }))).toBe("max-age=600; includeSubDomains");
    expect(hstsHeader(ok({ listen: "http://127.0.0.1:8000", public_url: "https://localhost", tls: { hsts_max_age_s: 0 } }))).toBeUndefined();
    expect(hstsHeader(ok({ listen: "http://127.0.0.1:8000" }))).toBeUndefined();
    expect(hstsHeader(ok({ listen: "https://127.0.0.1:8443", public_url: "http://localhost:8443", tls }))).toBeUndefined();
  });
});
