// The privileged helper as a child process of a test (as the hub forks it), ready when its first message
// arrives; its stdout and stderr go into `output` for failure messages.
import { fork, type ChildProcess } from "node:child_process";
import { CLI } from "../e2e/harness.js";

export async function forkHelper(configFile: string, output: string[]): Promise<ChildProcess> {
  const helper = fork(CLI, ["privileged-helper", "--config", configFile], { stdio: ["ignore", "pipe", "pipe", "ipc"], serialization: "json" });
  helper.stdout!.on("data", (d: Buffer) => output.push(d.toString()));
  helper.stderr!.on("data", (d: Buffer) => output.push(d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`helper not ready: ${output.join("")}`)), 15_000);
    helper.once("message", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return helper;
}
