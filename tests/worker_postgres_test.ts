/**
 * @module
 * The worker suite against PostgreSQL, each test in a schema of its own.
 */

import { openTestPostgres, whenPostgres } from "./postgres_helpers.ts";
import { runWorkerSuite } from "./worker_suite.ts";

await whenPostgres("postgres worker", () =>
  runWorkerSuite("postgres", async () => {
    const { storage, cleanup } = await openTestPostgres("worker");
    return { storage, cleanup };
  }));
