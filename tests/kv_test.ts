import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import type { JobRecord } from "../lib/job.ts";
import { KvStorage } from "../storage/kv/mod.ts";
import { type Row, withRecord } from "../storage/kv/rows.ts";
import type { Storage } from "../storage/storage.ts";
import { eventually } from "./helpers.ts";
import { runStorageContract } from "./storage_contract.ts";

/** Damages records (a job's row keeps its log, which is the truth) and counters. */
async function corrupt(storage: Storage, ids: string[]): Promise<void> {
  const kv = (storage as KvStorage).kv;
  const replace = async (id: string, record: unknown) => {
    const { key, value } = await kv.get<Row>(["taskflow", "job", id]);
    await kv.set(key, withRecord(value!, record as JobRecord | null));
  };
  await replace(ids[0], null);
  await kv.set(["taskflow", "total", "succeeded"], new Deno.KvU64(999n));
  for await (const entry of kv.list({ prefix: ["taskflow", "state", "Enqueued"] })) {
    await kv.delete(entry.key);
  }
  await replace(ids[1], { id: ids[1], state: "Failed", version: 99 });
}

/**
 * Every key of the database under the storage's prefix, as text (values left out), but the
 * event feed's entries: a window of recent appends, like the Redis stream's entries.
 */
async function footprint(storage: KvStorage): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of storage.kv.list({ prefix: ["taskflow"] })) {
    if (entry.key[1] !== "feed") keys.push(JSON.stringify(entry.key));
  }
  return keys.sort();
}

runStorageContract("kv :memory:", async () => {
  const storage = await KvStorage.open(":memory:", "kv::memory:");
  return { storage, cleanup: () => storage.close(), corrupt, footprint: () => footprint(storage) };
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
    footprint: () => footprint(storage),
  };
});

Deno.test("kv file: writes wake other processes through <file>.wake/tick, never by watching the database", async () => {
  const dir = await Deno.makeTempDir({ prefix: "taskflow-kv-wake-" });
  const file = `${dir}/jobs.sqlite`;
  const listener = await KvStorage.open(file, `kv:${file}`);
  const writer = await KvStorage.open(file, `kv:${file}`);
  try {
    let woken = 0;
    const stop = listener.notifier.listen(() => woken++);
    const tf = new TaskFlow(writer);
    await tf.enqueue(defineJob("wake.me", () => {}), {});
    // The listener's own instance wrote nothing: only the tick file can have woken it.
    await eventually(() => assert.ok(woken > 0, "woken by the tick file"));
    assert.ok((await Deno.stat(`${file}.wake/tick`)).isFile);
    // Deno.watchFs opens each file it reports, which drops SQLite's locks in that process: the
    // wake-up directory must hold nothing of SQLite's.
    const names = [];
    for await (const entry of Deno.readDir(`${file}.wake`)) names.push(entry.name);
    assert.deepEqual(names, ["tick"]);
    stop();
  } finally {
    await writer.close();
    await listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
