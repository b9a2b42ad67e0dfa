import { MemoryStorage } from "../storage/memory/mod.ts";
import { runStorageContract } from "./storage_contract.ts";

runStorageContract("memory", () => {
  const storage = new MemoryStorage();
  return Promise.resolve({
    storage,
    cleanup: () => Promise.resolve(),
    corrupt: (s, ids) => {
      const { jobs, totals, byState } = (s as MemoryStorage).internals;
      jobs.delete(ids[0]);
      totals.succeeded += 5;
      byState.get("Enqueued")?.clear();
      return Promise.resolve();
    },
  });
});
