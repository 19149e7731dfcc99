import net from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "../../spawners/ports.js";

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
