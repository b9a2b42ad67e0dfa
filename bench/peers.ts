/**
 * @module
 * Runs a peer engine's benchmark (BullMQ, in Node) for one scenario, so that each Redis row can
 * show TaskFlow/BullMQ measured side by side in the same invocation.
 */

const PEER = new URL("./peers/bullmq/", import.meta.url).pathname;

/** True when `bench/peers/bullmq` has its node_modules and Node is on PATH. */
export async function bullmqAvailable(): Promise<boolean> {
  try {
    await Deno.stat(`${PEER}node_modules/bullmq`);
    const node = await new Deno.Command("node", { args: ["--version"], stdout: "null" }).output();
    return node.success;
  } catch {
    return false;
  }
}

/** Runs `bench.mjs <scenario>` against `redisUrl`; returns its figure, or undefined on failure. */
export async function runBullmq(
  redisUrl: string,
  scenario: string,
  quick: boolean,
): Promise<{ value: number } | undefined> {
  const output = await new Deno.Command("node", {
    args: ["bench.mjs", scenario, ...(quick ? ["--quick"] : [])],
    cwd: PEER,
    env: { REDIS_URL: redisUrl },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(output.stdout));
  } catch {
    return undefined;
  }
}
