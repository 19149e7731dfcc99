// The daemon's proxy in a process of their own, so that memory.test.ts measures the hub's
// memory and not its own. argv[2] is the upstream for /user/alice. Reports its URL once listening, then
// answers "peak" with the largest RSS sampled since the previous "peak".
import { createProxy } from "../../proxy/proxy.js";
import { RouteTable } from "../../proxy/table.js";
import { log } from "../../src/log.js";

const table = new RouteTable();
table.set({ prefix: "/user/alice", target: process.argv[2]!, serverId: 1 });
const { server } = createProxy({
  log,
  table,
  stripCookies: [],
  activityFlushMs: 60_000,
  sinks: { hub: () => new Response("hub"), onActivity: () => undefined, onUpstreamDown: () => undefined },
});

let peak = 0;
const sample = () => (peak = Math.max(peak, process.memoryUsage.rss()));
setInterval(sample, 10);

process.on("message", (message) => {
  if (message !== "peak") return;
  sample();
  process.send!({ peak });
  peak = 0;
});
process.on("disconnect", () => process.exit(0));

server.listen(0, "127.0.0.1", () => {
  const address = server.address() as { port: number };
  process.send!({ url: `http://127.0.0.1:${address.port}` });
});
