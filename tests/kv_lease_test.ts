/**
 * @module
 * Leases on Deno KV live in the value of a Processing job's state entry. These tests read them
 * back through every reader (lease, leases, due, heartbeat), and through the fallback for a state
 * entry holding none (a transition that knew no lease): its record's holder.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { appendCommit } from "../lib/commits.ts";
import { defineJob } from "../lib/job.ts";
import type { Lease } from "../lib/projection.ts";
import { processingEvent } from "../lib/worker/claim_commits.ts";
import { KvStorage } from "../storage/kv/mod.ts";
import type { Heartbeat } from "../storage/storage.ts";

const noop = defineJob("kv-lease.noop", () => {});

function beat(serverId: string, leases: string[], leaseUntil: number): Heartbeat {
  const server = {
    id: serverId,
    hostname: "test",
    pid: 1,
    queues: ["default"],
    concurrency: 1,
    startedAt: 0,
    lastSeen: 0,
    inFlight: 1,
  };
  return { server, ttlMs: 60_000, leases, leaseUntil };
}

/** A KV storage with one job claimed by `serverId` under a lease until `until`. */
async function claimed(serverId: string, until: number) {
  const storage = await KvStorage.open(":memory:", "kv::memory:");
  const tf = new TaskFlow(storage);
  const id = await tf.enqueue(noop, {});
  const record = (await storage.get(id))!;
  const lease: Lease = { serverId, until };
  const [result] = await storage.append([{
    commits: [appendCommit(record, [processingEvent(Date.now(), lease)], lease)],
  }]);
  assert.equal(result.ok, true);
  return { storage, tf, id, lease };
}

Deno.test("kv leases: the claim's lease is read back, extended by a heartbeat, gone after", async () => {
  const { storage, tf, id, lease } = await claimed("s1", 1_000);
  try {
    assert.deepEqual(await storage.lease(id), lease);
    assert.deepEqual((await storage.leases({})).leases, [{ id, ...lease }]);
    const due = await storage.due({ state: "Processing", before: 1_000, limit: 10 });
    assert.deepEqual(due.map((job) => job.id), [id]);
    assert.equal((await storage.due({ state: "Processing", before: 999, limit: 10 })).length, 0);
    // Another server's heartbeat does not hold it; the holder's extends it.
    assert.deepEqual((await storage.heartbeat(beat("s2", [id], 5_000))).lost, [id]);
    assert.deepEqual((await storage.heartbeat(beat("s1", [id], 5_000))).lost, []);
    assert.deepEqual(await storage.lease(id), { serverId: "s1", until: 5_000 });
    // At or past its expiry already: moved 1 ms past it, so that it changes.
    await storage.heartbeat(beat("s1", [id], 5_000));
    assert.deepEqual(await storage.lease(id), { serverId: "s1", until: 5_001 });
    const record = (await storage.get(id))!;
    const [done] = await storage.append([{
      commits: [appendCommit(record, [{ type: "state", at: Date.now(), state: "Succeeded" }])],
    }]);
    assert.equal(done.ok, true);
    assert.equal(await storage.lease(id), null);
    assert.deepEqual((await storage.leases({})).leases, []);
    assert.deepEqual((await storage.heartbeat(beat("s1", [id], 9_000))).lost, [id]);
  } finally {
    await tf.close();
  }
});

Deno.test("kv leases: a state entry holding no lease reads as its record's holder", async () => {
  const { storage, tf, id } = await claimed("s1", 1_000);
  try {
    const record = (await storage.get(id))!;
    const entry = ["taskflow", "state", "Processing", record.stateAt, id];
    await storage.kv.set(entry, null);
    // The holder its record names, stable across reads.
    const fallback = await storage.lease(id);
    assert.equal(fallback?.serverId, "s1");
    assert.deepEqual(await storage.lease(id), fallback);
    assert.deepEqual((await storage.leases({})).leases, [{ id, ...fallback! }]);
    // The holder's heartbeat keeps it and writes the lease into the state entry.
    assert.deepEqual((await storage.heartbeat(beat("s2", [id], 5_000))).lost, [id]);
    assert.deepEqual((await storage.heartbeat(beat("s1", [id], 5_000))).lost, []);
    assert.deepEqual((await storage.kv.get(entry)).value, { serverId: "s1", until: 5_000 });
  } finally {
    await tf.close();
  }
});

Deno.test("kv leases: a job finishing while a heartbeat writes costs only its own lease, the others are extended", async () => {
  const storage = await KvStorage.open(":memory:", "kv::memory:");
  const tf = new TaskFlow(storage);
  try {
    const lease: Lease = { serverId: "s1", until: 1_000 };
    const ids = await tf.enqueueMany(Array.from({ length: 5 }, () => ({ job: noop, args: {} })));
    const records = (await storage.getMany(ids)).map((r) => r!);
    const claims = await storage.append(records.map((record) => ({
      commits: [appendCommit(record, [processingEvent(Date.now(), lease)], lease)],
    })));
    assert.ok(claims.every((r) => r.ok));
    const finish = async (id: string) => {
      const record = (await storage.get(id))!;
      const [done] = await storage.append([{
        commits: [appendCommit(record, [{ type: "state", at: Date.now(), state: "Succeeded" }])],
      }]);
      assert.equal(done.ok, true);
    };
    // The job ids[2] finishes between the beat's read of the state entries and its write.
    const getMany = storage.kv.getMany.bind(storage.kv);
    let reads = 0;
    storage.kv.getMany = (async (keys: Deno.KvKey[]) => {
      const entries = await getMany(keys);
      if (++reads === 2) await finish(ids[2]);
      return entries;
    }) as typeof storage.kv.getMany;
    const { lost } = await storage.heartbeat(beat("s1", ids, 5_000));
    storage.kv.getMany = getMany;
    assert.deepEqual(lost, [ids[2]]);
    for (const id of ids) {
      assert.deepEqual(
        await storage.lease(id),
        id === ids[2] ? null : { serverId: "s1", until: 5_000 },
      );
    }
    assert.equal((await storage.servers()).length, 1, "the server record is written too");
  } finally {
    await tf.close();
  }
});
