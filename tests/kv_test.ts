import { KvStorage } from "../storage/kv.ts";
import type { Storage } from "../storage/storage.ts";
import { runStorageContract } from "./storage_contract.ts";

async function corrupt(storage: Storage, ids: string[]): Promise<void> {
  const kv = (storage as KvStorage).kv;
  await kv.delete(["taskflow", "job", ids[0]]);
  await kv.set(["taskflow", "total", "succeeded"], new Deno.KvU64(999n));
  for await (const entry of kv.list({ prefix: ["taskflow", "state", "Enqueued"] })) {
    await kv.delete(entry.key);
  }
  await kv.set(["taskflow", "job", ids[1]], { id: ids[1], state: "Failed", version: 99 });
}

runStorageContract("kv :memory:", async () => {
  const storage = await KvStorage.open(":memory:", "kv::memory:");
  return { storage, cleanup: () => storage.close(), corrupt };
});

runStorageContract("kv file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-kv-" });
  const storage = await KvStorage.open(`${dir}/test.sqlite`, `kv:${dir}/test.sqlite`);
  return {
    storage,
    cleanup: async () => {
      await storage.close();
      await Deno.remove(dir, { recursive: true });
    },
    corrupt,
  };
});
