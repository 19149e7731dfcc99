// The `metrics` block of the config: /hub/metrics (src/metrics.ts). Its own file so the config loader does not
// pull in the metrics code.
import { z } from "zod";
import { parseAddressOrBlock } from "./https.js";

export const MetricsSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Serve /hub/metrics (Prometheus text format). Off: it is a 404."),
    allowed_addresses: z
      .array(z.string().max(64).refine((s) => parseAddressOrBlock(s) !== undefined, 'not an IP address or CIDR block (e.g. "127.0.0.1", "10.0.0.0/8", "::1")'))
      .max(1000)
      .default([])
      .describe(
        "TCP peers that may scrape /hub/metrics without a token (IPs or CIDR blocks). Default: none; a token with the scope read:metrics always may. A request that came through a reverse proxy (X-Forwarded-For or Forwarded set) never gets in by address. Users' servers run on this host: listing a loopback address lets them read the metrics.",
      ),
  })
  .prefault({})
  .describe("Prometheus metrics at /hub/metrics (JupyterHub's metric names) and who may read them.");

export type MetricsConfig = z.infer<typeof MetricsSchema>;
