/**
 * @module
 * The worker suite against Redis, each test under its own key prefix.
 */

import { openTestRedis, whenRedis } from "./redis_helpers.ts";
import { runWorkerSuite } from "./worker_suite.ts";

await whenRedis("redis worker", () =>
  runWorkerSuite("redis", async () => {
    const { storage, cleanup } = await openTestRedis("worker");
    return { storage, cleanup };
  }));
