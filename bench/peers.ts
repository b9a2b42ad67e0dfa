/**
 * @module
 * Runs a peer engine's benchmark (BullMQ on Redis, pg-boss on PostgreSQL, in Node) for one
 * scenario, so that each Redis or PostgreSQL row shows TaskFlow and its peer measured side by
 * side in the same invocation.
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

const PGBOSS = new URL("./peers/pgboss/", import.meta.url).pathname;

/** True when `bench/peers/pgboss` has its node_modules and Node is on PATH. */
export async function pgbossAvailable(): Promise<boolean> {
  try {
    await Deno.stat(`${PGBOSS}node_modules/pg-boss`);
    const node = await new Deno.Command("node", { args: ["--version"], stdout: "null" }).output();
    return node.success;
  } catch {
    return false;
  }
}

/** Runs pg-boss's `bench.mjs <scenario>` against `pgUrl`; its figure, or undefined on failure. */
export async function runPgboss(
  pgUrl: string,
  scenario: string,
  quick: boolean,
): Promise<{ value: number; extra?: Record<string, number> } | undefined> {
  const output = await new Deno.Command("node", {
    args: ["bench.mjs", scenario, ...(quick ? ["--quick"] : [])],
    cwd: PGBOSS,
    env: { PG_URL: pgUrl },
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
