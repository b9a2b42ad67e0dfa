import { KvStorage } from "../storage/kv.ts";
import { runWorkerSuite } from "./worker_suite.ts";

runWorkerSuite("kv :memory:", async () => {
  const storage = await KvStorage.open(":memory:", "kv::memory:");
  return { storage, cleanup: () => storage.close() };
});

runWorkerSuite("kv file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-worker-" });
  const storage = await KvStorage.open(`${dir}/w.sqlite`, `kv:${dir}/w.sqlite`);
  return {
    storage,
    cleanup: async () => {
      await storage.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});
