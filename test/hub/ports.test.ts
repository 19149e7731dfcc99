import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, listenersOn, parseTcpListeners } from "../../src/ports.js";

const me = process.getuid!();

describe("freePort", () => {
  it("returns a port that can be bound right away", async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", resolve));
    await new Promise((resolve) => server.close(resolve));
  });

  it("rejects when the host cannot be bound", async () => {
    await expect(freePort("192.0.2.1")).rejects.toThrow(/EADDRNOTAVAIL/);
  });
});

// Lines copied from this machine's /proc/net/tcp and /proc/net/tcp6 (x86-64, little-endian), trailing
// blanks included, with node listening on each address and a connection to the 65534-owned listener.
const TCP = [
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     ",
  "   1: 0100007F:A02C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41236 1 00000000943e0f69 100 0 0 10 0                     ",
  "   2: 00000000:A02D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41237 1 00000000f45bdd9e 100 0 0 10 0                     ",
  "   1: 0100007F:A032 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 42588 1 00000000585a323b 100 0 0 10 0                     ",
  "   4: 0100007F:A032 0100007F:A4D0 01 00000000:00000000 00:00000000 00000000 65534        0 42592 1 00000000f455da1f 21 0 0 10 -1                     ",
  "  39: 0100007F:A4D0 0100007F:A032 01 00000000:00000000 00:00000000 00000000     0        0 42590 2 00000000b534beb6 21 0 0 10 -1                     ",
  "",
].join("\n");

const TCP6 = [
  "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 0000000000000000FFFF00000100007F:A02A 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 00000000f86116f7 100 0 0 10 0",
  "   1: 00000000000000000000000000000000:A029 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41233 1 00000000980f5a51 100 0 0 10 0",
  "   3: 00000000000000000000000001000000:A02B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41235 1 00000000028b7147 100 0 0 10 0",
  "",
].join("\n");

describe("parseTcpListeners", () => {
  it("reads the LISTEN sockets of /proc/net/tcp with address, port, owner uid and inode, and skips the rest", () => {
    expect(parseTcpListeners(TCP, "LE")).toEqual([
      { address: "127.0.0.1", port: 41004, uid: 0, inode: 41236 },
      { address: "0.0.0.0", port: 41005, uid: 0, inode: 41237 },
      { address: "127.0.0.1", port: 41010, uid: 65534, inode: 42588 },
    ]);
  });

  it("reads /proc/net/tcp6: IPv4-mapped, wildcard and loopback addresses", () => {
    expect(parseTcpListeners(TCP6, "LE")).toEqual([
      { address: "::ffff:127.0.0.1", port: 41002, uid: 0, inode: 41234 },
      { address: "::", port: 41001, uid: 0, inode: 41233 },
      { address: "::1", port: 41003, uid: 0, inode: 41235 },
    ]);
  });

  it("reads the words in the host's byte order, so big-endian machines get the same addresses", () => {
    const be = "   0: 7F000001:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 7 1 0000000000000000 100 0 0 10 0\n" +
      "   0: 00000000000000000000FFFF7F000001:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 8 1 0000000000000000 100 0 0 10 0";
    expect(parseTcpListeners(be, "BE").map((l) => `${l.address} ${l.port} ${l.uid}`)).toEqual(["127.0.0.1 8080 1000", "::ffff:127.0.0.1 8081 1000"]);
  });
});

describe("listenersOn", () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
  });
  const listen = async (host: string, port = 0, ipv6Only = false): Promise<number> => {
    const server = net.createServer();
    servers.push(server);
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen({ host, port, ipv6Only }, resolve));
    return (server.address() as net.AddressInfo).port;
  };

  it("finds our own listener on 127.0.0.1, owned by our uid", async () => {
    const port = await listen("127.0.0.1");
    expect(await listenersOn("127.0.0.1", port)).toEqual([{ address: "127.0.0.1", port, uid: me, inode: expect.any(Number) }]);
    expect(await listenersOn("127.0.0.1", await freePort())).toEqual([]);
  });

  it.each([
    ["0.0.0.0", "0.0.0.0"],
    ["::", "::"],
    ["::ffff:127.0.0.1", "::ffff:127.0.0.1"],
  ])("counts a listener on %s as reaching 127.0.0.1", async (host, address) => {
    const port = await listen(host);
    expect((await listenersOn("127.0.0.1", port)).map((l) => l.address)).toEqual([address]);
  });

  it("leaves out listeners that 127.0.0.1's connections cannot reach, but not for the address they are on", async () => {
    const port = await listen("::1");
    expect(await listenersOn("127.0.0.1", port)).toEqual([]);
    expect((await listenersOn("[::1]", port)).map((l) => l.address)).toEqual(["::1"]);
    // A host name could resolve to anything: every listener on the port counts.
    expect((await listenersOn("localhost", port)).map((l) => l.address)).toEqual(["::1"]);
  });

  it("counts an IPv6-only [::] listener, which /proc cannot tell from a dual-stack one", async () => {
    const port = await listen("::", 0, true);
    expect((await listenersOn("127.0.0.1", port)).map((l) => l.address)).toEqual(["::"]);
  });
});
