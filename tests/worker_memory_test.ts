import { MemoryStorage } from "../storage/memory/mod.ts";
import { runWorkerSuite } from "./worker_suite.ts";

runWorkerSuite(
  "memory",
  () => Promise.resolve({ storage: new MemoryStorage(), cleanup: () => Promise.resolve() }),
);
