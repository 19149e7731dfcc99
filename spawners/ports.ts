import net from "node:net";

/**
 * A port that was free a moment ago. Another process may still take it before the server binds it;
 * jupyterhub-singleuser then fails at once (it does not retry ports) and the start is reported as failed.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
