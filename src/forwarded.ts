// Who a request really comes from, and over what, behind reverse proxies (config `trusted_proxies`).
//
// A connection's peer is a fact; X-Forwarded-For/-Proto/-Host and RFC 7239's Forwarded are claims anyone can
// send. They are believed only from a peer in trusted_proxies, and then only as far back as the chain of
// trusted proxies goes: walking the For list from the right, the first address that is not a trusted proxy is
// the client (an address a client put at the front of its own X-Forwarded-For is never reached). From any other
// peer they are ignored, and the proxy replaces them (with X-Real-IP, X-Scheme and Forwarded, which servers such
// as tornado read too) before anything goes upstream.
import type { IncomingMessage } from "node:http";
import { BlockList, isIP } from "node:net";
import { parseAddressOrBlock } from "./config/https.js";

export interface ForwardedView {
  /** The client's address: the peer, or what trusted proxies say it was. */
  client: string;
  /** The scheme the client used. */
  proto: "http" | "https";
  /** The Host the client asked for (may be empty). */
  host: string;
  /** The For chain as believed, client first, the peer last (X-Forwarded-For for the upstream). */
  chain: string[];
  /** True when the peer is a trusted proxy (so the view may come from its headers). */
  viaTrustedProxy: boolean;
}

export type TrustCheck = (address: string) => boolean;

/** `::ffff:1.2.3.4` → `1.2.3.4`; lower case; brackets and a zone off. */
export function normalizeAddress(address: string): string {
  let a = address.trim().toLowerCase();
  if (a.startsWith("[") && a.includes("]")) a = a.slice(1, a.indexOf("]"));
  if (a.startsWith("::ffff:") && isIP(a.slice(7)) === 4) a = a.slice(7);
  const pct = a.indexOf("%");
  if (pct >= 0) a = a.slice(0, pct);
  return a;
}

/** A check for config `trusted_proxies`; none trusted when empty. */
export function trustCheck(entries: readonly string[]): TrustCheck {
  if (entries.length === 0) return () => false;
  const list = new BlockList();
  for (const e of entries) {
    const p = parseAddressOrBlock(e);
    if (!p) continue; // the schema refuses these
    list.addSubnet(normalizeAddress(p.address), p.prefix, p.family);
  }
  return (address) => {
    const a = normalizeAddress(address);
    const v = isIP(a);
    return v !== 0 && list.check(a, v === 4 ? "ipv4" : "ipv6");
  };
}

/** Caches one check per trusted_proxies array (the config object changes only on a reload). */
export function cachedTrustCheck(entries: () => readonly string[]): TrustCheck {
  let last: readonly string[] | undefined;
  let check: TrustCheck = () => false;
  return (address) => {
    const now = entries();
    if (now !== last) {
      last = now;
      check = trustCheck(now);
    }
    return check(address);
  };
}

const HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?$/;

function headerValues(req: IncomingMessage, name: string): string[] {
  const raw = req.headers[name];
  const joined = Array.isArray(raw) ? raw.join(",") : raw;
  if (!joined) return [];
  return joined.split(",").map((v) => v.trim());
}

/** RFC 7239 elements, each a map of lower-case parameter names to unquoted values. */
function parseForwarded(values: string[]): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const element of values) {
    const params: Record<string, string> = {};
    for (const pair of element.split(";")) {
      const eq = pair.indexOf("=");
      if (eq < 0) continue;
      const key = pair.slice(0, eq).trim().toLowerCase();
      let value = pair.slice(eq + 1).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1).replace(/\\(.)/g, "$1");
      params[key] = value;
    }
    out.push(params);
  }
  return out;
}

/** What the hub believes about a request: see the file's comment. */
export function forwardedView(req: IncomingMessage, trusted: TrustCheck): ForwardedView {
  const peer = normalizeAddress(req.socket.remoteAddress ?? "");
  const socketProto = (req.socket as { encrypted?: boolean }).encrypted === true ? "https" : "http";
  const host = req.headers.host ?? "";
  if (!peer || !trusted(peer)) return { client: peer, proto: socketProto, host, chain: [peer], viaTrustedProxy: false };

  // One hop per proxy: For[i] is who connected to proxy i, Proto[i] and Host[i] what that connection used.
  // X-Forwarded-* first: nginx, Caddy, Apache and HAProxy set them and pass a client's own Forwarded through
  // untouched (so a Forwarded next to an X-Forwarded-For is the client's). Forwarded only from a proxy that
  // sends no X-Forwarded-For, i.e. one that speaks RFC 7239 instead.
  let fors = headerValues(req, "x-forwarded-for");
  let protos = headerValues(req, "x-forwarded-proto");
  let hosts = headerValues(req, "x-forwarded-host");
  const forwarded = fors.length === 0 ? headerValues(req, "forwarded") : [];
  if (forwarded.length > 0) {
    const elements = parseForwarded(forwarded);
    fors = elements.map((e) => e.for ?? "");
    protos = elements.map((e) => e.proto ?? "");
    hosts = elements.map((e) => e.host ?? "");
  }
  // RFC 7239 nodes may carry a port ("192.0.2.1:4711", "[2001:db8::1]:4711").
  const addr = (node: string): string | undefined => {
    let n = node;
    const v6 = /^\[([^\]]+)\](:\d+)?$/.exec(n);
    if (v6) n = v6[1]!;
    else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(n)) n = n.slice(0, n.lastIndexOf(":"));
    n = normalizeAddress(n);
    return isIP(n) ? n : undefined;
  };
  // From the right: skip trusted proxies; the first other address is the client.
  let index = fors.length; // fors.length stands for the peer itself
  let client = peer;
  while (index > 0) {
    const a = addr(fors[index - 1]!);
    if (a === undefined) break; // "unknown", an obfuscated name, garbage: believe no further
    index -= 1;
    client = a;
    if (!trusted(a)) break;
  }
  const aligned = (list: string[]): string | undefined => (list.length === fors.length && index < fors.length ? list[index] : list[list.length - 1]);
  const p = aligned(protos)?.toLowerCase();
  const h = aligned(hosts);
  const chain = [...fors.slice(index).map((f) => addr(f) ?? f), peer];
  return {
    client,
    proto: p === "https" || p === "http" ? p : socketProto,
    host: h && HOST.test(h) ? h : host,
    chain,
    viaTrustedProxy: true,
  };
}

/** The client's address as the hub believes it, for log lines (a hub request's node request, if any). */
export function clientAddress(incoming: IncomingMessage | undefined, trustedProxies: readonly string[]): string | undefined {
  if (!incoming?.socket) return undefined;
  return forwardedView(incoming, trustCheck(trustedProxies)).client || undefined;
}
