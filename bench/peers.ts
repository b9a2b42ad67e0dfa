/**
 * @module
 * Runs a peer engine's benchmark (BullMQ on Redis, pg-boss on PostgreSQL, in Node) for one
 * scenario, so that each Redis or PostgreSQL row shows TaskFlow and its peer measured side by
 * side in the same invocation.
 */

/** A peer's folder under `bench/peers/`, the package its `npm ci` installs, its URL variable. */
interface Peer {
  dir: string;
  pkg: string;
  urlEnv: string;
}

const BULLMQ: Peer = { dir: "bullmq", pkg: "bullmq", urlEnv: "REDIS_URL" };
const PGBOSS: Peer = { dir: "pgboss", pkg: "pg-boss", urlEnv: "PG_URL" };

function folder(peer: Peer): string {
  return new URL(`./peers/${peer.dir}/`, import.meta.url).pathname;
}

/** True when the peer's folder has its node_modules and Node is on PATH. */
async function available(peer: Peer): Promise<boolean> {
  try {
    await Deno.stat(`${folder(peer)}node_modules/${peer.pkg}`);
    const node = await new Deno.Command("node", { args: ["--version"], stdout: "null" }).output();
    return node.success;
  } catch {
    return false;
  }
}

/** Runs the peer's `bench.mjs <scenario>` against `url`; its figure, or undefined on failure. */
async function run(
  peer: Peer,
  url: string,
  scenario: string,
  quick: boolean,
): Promise<{ value: number; extra?: Record<string, number> } | undefined> {
  const output = await new Deno.Command("node", {
    args: ["bench.mjs", scenario, ...(quick ? ["--quick"] : [])],
    cwd: folder(peer),
    env: { [peer.urlEnv]: url },
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

/** True when `bench/peers/bullmq` has its node_modules and Node is on PATH. */
export const bullmqAvailable = (): Promise<boolean> => available(BULLMQ);

/** Runs BullMQ's `bench.mjs <scenario>` against `redisUrl`; its figure, or undefined on failure. */
export const runBullmq = (redisUrl: string, scenario: string, quick: boolean) =>
  run(BULLMQ, redisUrl, scenario, quick);

/** True when `bench/peers/pgboss` has its node_modules and Node is on PATH. */
export const pgbossAvailable = (): Promise<boolean> => available(PGBOSS);

/** Runs pg-boss's `bench.mjs <scenario>` against `pgUrl`; its figure, or undefined on failure. */
export const runPgboss = (pgUrl: string, scenario: string, quick: boolean) =>
  run(PGBOSS, pgUrl, scenario, quick);
