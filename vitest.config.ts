import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "test/**/*.test.tsx"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // e2e tests start real daemons and real jupyterhub-singleuser processes; two cores is all we have.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
