/**
 * @module
 * The event API suite on memory, KV (a file), Redis and PostgreSQL.
 */

import { KvStorage } from "../storage/kv/mod.ts";
import { MemoryStorage } from "../storage/memory/mod.ts";
import { runWatchSuite } from "./watch_suite.ts";
import { openTestRedis, whenRedis } from "./redis_helpers.ts";
import { openTestPostgres, whenPostgres } from "./postgres_helpers.ts";

runWatchSuite("memory", (feedWindow) => {
  const storage = new MemoryStorage({ feedWindow });
  return Promise.resolve({
    storage,
    shrink: () => Promise.resolve(),
    cleanup: () => storage.close(),
  });
});

runWatchSuite("kv file", async (feedWindow) => {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-watch-" });
  const storage = await KvStorage.open(`${dir}/w.sqlite`, `kv:${dir}/w.sqlite`, { feedWindow });
  return {
    storage,
    shrink: () => Promise.resolve(),
    cleanup: async () => {
      await storage.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

await whenRedis("redis watch", () =>
  runWatchSuite("redis", async () => {
    const { storage, cleanup } = await openTestRedis("watch");
    return {
      storage,
      // The append script trims by size; here the window moves on at once.
      shrink: async () => {
        await storage.command("XTRIM", `${storage.keyPrefix}feed`, "MAXLEN", 1);
      },
      cleanup,
    };
  }));

await whenPostgres("postgres watch", () =>
  runWatchSuite("postgres", async () => {
    const { storage, cleanup } = await openTestPostgres("watch");
    // The window is trimmed every thousand appends; here it moves on at once.
    return { storage, shrink: () => storage.feed.trim(1), cleanup };
  }));
