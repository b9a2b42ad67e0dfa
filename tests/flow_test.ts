/**
 * @module
 * The flow-control suite on memory, KV (in memory and on a file, three handles) and Redis
 * (three connections on one prefix).
 */

import { KvStorage } from "../storage/kv/mod.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { RedisStorage } from "../storage/redis/mod.ts";
import { runFlowSuite } from "./flow_suite.ts";
import { openTestRedis, REDIS_URL, whenRedis } from "./redis_helpers.ts";
import { openTestPostgres, whenPostgres } from "./postgres_helpers.ts";
import { PostgresStorage } from "../storage/postgres/mod.ts";

runFlowSuite("memory", () => {
  const storage = new MemoryStorage();
  return Promise.resolve({ storages: [storage, storage, storage], cleanup: () => storage.close() });
});

runFlowSuite("kv file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-flow-" });
  const open = () => KvStorage.open(`${dir}/f.sqlite`, `kv:${dir}/f.sqlite`);
  const storages = [await open(), await open(), await open()] as const;
  return {
    storages: [...storages],
    cleanup: async () => {
      for (const storage of storages) await storage.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

await whenRedis("redis flow", () =>
  runFlowSuite("redis", async () => {
    const { storage, prefix, cleanup } = await openTestRedis("flow");
    const more = [
      await RedisStorage.open(`${REDIS_URL}?prefix=${prefix}`),
      await RedisStorage.open(`${REDIS_URL}?prefix=${prefix}`),
    ] as const;
    return {
      storages: [storage, ...more],
      cleanup: async () => {
        for (const other of more) await other.close();
        await cleanup();
      },
    };
  }));

await whenPostgres("postgres flow", () =>
  runFlowSuite("postgres", async () => {
    const { storage, url, cleanup } = await openTestPostgres("flow");
    const more = [await PostgresStorage.open(url), await PostgresStorage.open(url)] as const;
    return {
      storages: [storage, ...more],
      cleanup: async () => {
        for (const other of more) await other.close();
        await cleanup();
      },
    };
  }));
