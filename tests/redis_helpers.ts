/**
 * @module
 * Redis test support: a connectivity probe run once at module top level, a fresh storage per
 * test under its own key prefix, and deleting every key of that prefix afterwards.
 */

import assert from "node:assert/strict";
import { RedisStorage } from "../storage/redis/mod.ts";
import type { Storage } from "../storage/storage.ts";
import { eventually } from "./helpers.ts";

/** The server the Redis tests use. */
export const REDIS_URL = Deno.env.get("TASKFLOW_TEST_REDIS_URL") ?? "redis://127.0.0.1:6379";

/** True when CI demands the Redis tests run (`TASKFLOW_TEST_REDIS=required`). */
export const REDIS_REQUIRED = Deno.env.get("TASKFLOW_TEST_REDIS") === "required";

/** Why the Redis tests cannot run here, or undefined when Redis answers PING. */
export async function redisUnreachable(
  url = REDIS_URL,
  timeoutMs = 1_000,
): Promise<string | undefined> {
  const { hostname, port } = new URL(url);
  const target = `${hostname}:${port || 6379}`;
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => conn?.close(), timeoutMs);
  try {
    conn = await Deno.connect({ hostname, port: Number(port || 6379) });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(64);
    const n = await conn.read(buffer);
    const reply = new TextDecoder().decode(buffer.subarray(0, n ?? 0));
    return reply.startsWith("+PONG")
      ? undefined
      : `Redis at ${target} answered ${JSON.stringify(reply.trim())}`;
  } catch (error) {
    return `Redis at ${target} is unreachable (${(error as Error).message})`;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // closed by the timer
    }
  }
}

/**
 * Registers the cases through `register` when Redis answers; otherwise prints the reason and
 * registers one ignored test naming it — unless `TASKFLOW_TEST_REDIS=required`, where the cases
 * run anyway and fail.
 */
export async function whenRedis(suite: string, register: () => void): Promise<void> {
  const reason = await redisUnreachable();
  if (!reason || REDIS_REQUIRED) {
    register();
    return;
  }
  console.log(`skipping ${suite}: ${reason} (set TASKFLOW_TEST_REDIS=required to fail instead)`);
  Deno.test({ name: `${suite}: skipped, ${reason}`, ignore: true, fn() {} });
}

/** A fresh storage under a unique key prefix, and the cleanup that deletes every key of it. */
export async function openTestRedis(
  label = "t",
): Promise<{ storage: RedisStorage; prefix: string; cleanup: () => Promise<void> }> {
  const prefix = `tftest-${label}-${crypto.randomUUID().slice(0, 12)}`;
  const storage = await RedisStorage.open(`${REDIS_URL}?prefix=${prefix}`);
  return {
    storage,
    prefix,
    cleanup: async () => {
      await storage.close();
      await deletePrefix(prefix);
    },
  };
}

/** Deletes every key under `prefix:` (SCAN + DEL) on a connection of its own. */
export async function deletePrefix(prefix: string, url = REDIS_URL): Promise<number> {
  const admin = await RedisStorage.open(`${url}?prefix=${prefix}`);
  try {
    return await admin.deleteAllKeys();
  } finally {
    await admin.close();
  }
}

/** Why `redis-server` cannot be started here, or undefined when it can. */
export async function redisServerMissing(): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command("redis-server", { args: ["--version"] }).output();
    return success ? undefined : "redis-server --version failed";
  } catch {
    return "redis-server is not on PATH";
  }
}

/** A TCP port nothing listens on (at the time of asking). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A redis-server subprocess of a test's own, on `port`, started with `args` besides. */
export class RedisServer {
  #child?: Deno.ChildProcess;
  constructor(readonly port: number, readonly args: string[] = []) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server and waits until it answers (a password-protected one answers NOAUTH). */
  async start(): Promise<void> {
    this.#child = new Deno.Command("redis-server", {
      args: ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", ...this.args],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await eventually(async () => {
      const reason = await redisUnreachable(this.url, 200);
      assert.ok(reason === undefined || reason.includes("NOAUTH"), reason);
    });
  }

  async kill(): Promise<void> {
    if (!this.#child) return;
    const child = this.#child;
    this.#child = undefined;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
  }
}

/** Every key under `storage`'s prefix, in the order SCAN returns them (a key may repeat). */
export async function scanPrefix(storage: RedisStorage): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, found] = await storage.command<[string, string[]]>(
      "SCAN",
      cursor,
      "MATCH",
      `${storage.keyPrefix}*`,
      "COUNT",
      1_000,
    );
    keys.push(...found);
    cursor = next;
  } while (cursor !== "0");
  return keys;
}

/** Damages projections behind the storage's back, as kv_test.ts does. */
export async function corruptRedis(storage: Storage, ids: string[]): Promise<void> {
  const redis = storage as RedisStorage;
  const p = redis.keyPrefix;
  await redis.command("HDEL", `${p}jobs`, ids[0]);
  await redis.command("HSET", `${p}totals`, "succeeded", 999);
  await redis.command("DEL", `${p}state:Enqueued`);
  await redis.command(
    "HSET",
    `${p}jobs`,
    ids[1],
    JSON.stringify({ id: ids[1], state: "Failed", version: 99 }),
  );
}

/**
 * Every key under the storage's prefix, with every field of a hash and member of a set or
 * sorted set, as text (values, list items and stream entries left out).
 */
export async function redisFootprint(storage: RedisStorage): Promise<string[]> {
  const out: string[] = [];
  const keys = new Set(await scanPrefix(storage));
  for (const key of keys) {
    const type = await storage.command<string>("TYPE", key);
    out.push(`${type} ${key}`);
    const items = type === "hash"
      ? await storage.command<string[]>("HKEYS", key)
      : type === "zset"
      ? await storage.command<string[]>("ZRANGE", key, 0, -1)
      : type === "set"
      ? await storage.command<string[]>("SMEMBERS", key)
      : [];
    for (const item of items) out.push(`${type} ${key} ${JSON.stringify(item)}`);
  }
  return out.sort();
}
