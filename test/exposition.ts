// Reading Prometheus' text exposition format in tests (/hub/metrics).

/** The value of one sample line, e.g. `jupyterhub_total_users` or `x_bucket{le="+Inf",status="success"}`. */
export function sample(body: string, series: string): number | undefined {
  const line = body.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
