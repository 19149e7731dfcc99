import { readFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";

const FREE_PORT_TRIES = 20;

/**
 * A port that was free a moment ago. Another process may still take it before the server binds it;
 * jupyterhub-singleuser then fails at once (it does not retry ports) and the start is reported as failed.
 * A port the kernel offers but where some socket already listens in a way that takes connections to `host`
 * (an IPv6-only [::] listener does not stop a bind to 127.0.0.1) is passed over: the readiness check
 * would refuse it.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let i = 1; ; i++) {
    const port = await unboundPort(host);
    const held = await listenersOn(host, port);
    if (held.length === 0) return port;
    if (i === FREE_PORT_TRIES) {
      throw new Error(`no free port on ${host}: the last one offered, ${port}, has a listener on ${held[0]!.address} (uid ${held[0]!.uid})`);
    }
  }
}

function unboundPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A listening TCP socket as /proc/net/tcp and /proc/net/tcp6 show it. */
export interface TcpListener {
  /** As node:net writes addresses: 127.0.0.1, 0.0.0.0, ::, ::1, ::ffff:127.0.0.1 */
  address: string;
  port: number;
  /** The socket's owner: the effective uid of the process that created it. */
  uid: number;
  inode: number;
}

const TCP_LISTEN = "0A";
const LINE = /^\s*\d+:\s+([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})\s+\S+\s+([0-9A-Fa-f]{2})\s+\S+\s+\S+\s+\S+\s+(\d+)\s+\d+\s+(\d+)/;

/**
 * The LISTEN sockets in the text of /proc/net/tcp or /proc/net/tcp6. The kernel writes each address as
 * 32-bit words in the host's byte order (0100007F is 127.0.0.1 on little-endian machines), the port as a
 * plain hex number, and the owner's uid in decimal (as the reader's user namespace sees it).
 */
export function parseTcpListeners(text: string, endianness: "BE" | "LE" = os.endianness()): TcpListener[] {
  const out: TcpListener[] = [];
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m || m[3]!.toUpperCase() !== TCP_LISTEN) continue;
    out.push({ address: formatAddress(m[1]!, endianness), port: parseInt(m[2]!, 16), uid: Number(m[4]), inode: Number(m[5]) });
  }
  return out;
}

function formatAddress(hex: string, endianness: "BE" | "LE"): string {
  const bytes = Buffer.alloc(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 4) {
    const word = parseInt(hex.slice(i * 2, i * 2 + 8), 16);
    if (endianness === "LE") bytes.writeUInt32LE(word, i);
    else bytes.writeUInt32BE(word, i);
  }
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return canonical(groups.join(":"));
}

/** One spelling per address (::ffff:7f00:1 and ::ffff:127.0.0.1 are the same), as node:net writes them. */
function canonical(address: string): string {
  const family = net.isIPv4(address) ? "ipv4" : "ipv6";
  return new net.SocketAddress({ address, family }).address;
}

/**
 * The listening sockets on `port` that a connection to `host` may reach: those on `host` itself and on the
 * wildcard addresses, including [::] (from /proc the kernel does not say whether it is IPv6-only, so it
 * counts) and their IPv4-mapped forms. For a host name rather than an address, every listener on the port.
 * Read from /proc/net/tcp and /proc/net/tcp6, which any process may read.
 */
export async function listenersOn(host: string, port: number): Promise<TcpListener[]> {
  const reach = reachingAddresses(host.replace(/^\[(.*)\]$/, "$1"));
  const all = [...(await readProc("/proc/net/tcp", true)), ...(await readProc("/proc/net/tcp6", false))];
  return all.filter((l) => l.port === port && (reach === undefined || reach.has(l.address)));
}

/** undefined: any address may be it. */
function reachingAddresses(host: string): Set<string> | undefined {
  if (net.isIPv4(host)) {
    const ip = canonical(host);
    return new Set([ip, "0.0.0.0", `::ffff:${ip}`, "::ffff:0.0.0.0", "::"]);
  }
  if (net.isIPv6(host)) {
    const ip = canonical(host);
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip)?.[1];
    return mapped ? reachingAddresses(mapped) : new Set([ip, "::"]);
  }
  return undefined;
}

async function readProc(file: string, required: boolean): Promise<TcpListener[]> {
  try {
    return parseTcpListeners(await readFile(file, "utf8"));
  } catch (e) {
    // Without IPv6 in the kernel there is no tcp6, and no IPv6 listener either.
    if (!required && (e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}
