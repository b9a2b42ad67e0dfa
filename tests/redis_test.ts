/**
 * @module
 * The storage contract against Redis, each test under its own key prefix; and Redis URLs
 * (which need no server).
 */

import assert from "node:assert/strict";
import {
  InvalidOptionError,
  StorageUnavailableError,
  UnknownStorageError,
} from "../storage/errors.ts";
import { TaskFlow } from "../lib/client.ts";
import { appendCommit, createCommit } from "../lib/changes.ts";
import { doctor } from "../lib/doctor.ts";
import { scheduleRecurring } from "../lib/recurring.ts";
import { defineJob, type JobRecord } from "../lib/job.ts";
import { openStorage } from "../storage/open.ts";
import type { RedisStorage } from "../storage/redis/mod.ts";
import { parseRedisUrl } from "../storage/redis/url.ts";
import { keysOf, placeOf } from "../storage/redis/keys.ts";
import { Claims } from "../storage/redis/claim.ts";
import { SCRIPTS } from "../storage/redis/context.ts";
import { Script } from "../storage/redis/scripts.ts";
import { RespConnection } from "../storage/redis/connection.ts";
import { Subscriber } from "../storage/redis/subscriber.ts";
import { assertConsistent, claimCommit, eventually } from "./helpers.ts";
import {
  corruptRedis,
  openTestRedis,
  REDIS_URL,
  redisFootprint,
  scanPrefix,
  whenRedis,
} from "./redis_helpers.ts";
import { runStorageContract } from "./storage_contract.ts";

/** An events stream entry as XRANGE returns it: id, then field, value, ... */
type Entry = [string, string[]];

await whenRedis("redis contract", () =>
  runStorageContract("redis", async () => {
    const { storage, cleanup } = await openTestRedis("contract");
    return { storage, cleanup, corrupt: corruptRedis, footprint: () => redisFootprint(storage) };
  }));

Deno.test("redis URLs: credentials never reach the address or errors; ?prefix= wins", async () => {
  const target = parseRedisUrl("redis://ada:s3cret@127.0.0.1:6390/2?prefix=app", "other");
  assert.equal(target.address, "redis://127.0.0.1:6390/2?prefix=app");
  assert.equal(target.prefix, "app");
  assert.deepEqual(target.connection, {
    host: "127.0.0.1",
    port: 6390,
    db: 2,
    username: "ada",
    password: "s3cret",
  });
  assert.equal(
    parseRedisUrl("rediss://h.example", "jobs").address,
    "rediss://h.example:6379/0?prefix=jobs",
  );
  assert.throws(() => parseRedisUrl("redis://:s3cret@host/x"), (error: unknown) => {
    assert.ok(error instanceof UnknownStorageError);
    assert.doesNotMatch(error.message, /s3cret/);
    return true;
  });
  assert.throws(() => parseRedisUrl("redis://host?db=1"), UnknownStorageError);
  assert.throws(() => parseRedisUrl("redis://host?prefix=a b"), InvalidOptionError);
  // Nothing listens on port 1: the failure is typed, names the address, hides the password.
  const started = Date.now();
  await assert.rejects(openStorage("redis://ada:s3cret@127.0.0.1:1"), (error: unknown) => {
    assert.ok(error instanceof StorageUnavailableError);
    assert.match(error.message, /storage redis:\/\/127\.0\.0\.1:1\/0 unavailable: .*ECONNREFUSED/);
    assert.doesNotMatch(error.message, /s3cret/);
    return true;
  });
  assert.ok(Date.now() - started < 5_000, "fails fast");
});

/**
 * A Redis-only case on a storage under a fresh prefix, with a client on it (skipped with the
 * reason when Redis does not answer); closed and its keys deleted afterwards.
 */
async function redisCase(
  suite: string,
  title: string,
  label: string,
  fn: (storage: RedisStorage, tf: TaskFlow) => Promise<void>,
): Promise<void> {
  await whenRedis(suite, () =>
    Deno.test(title, async () => {
      const { storage, cleanup } = await openTestRedis(label);
      const tf = new TaskFlow(storage);
      try {
        await fn(storage, tf);
      } finally {
        await tf.close();
        await cleanup();
      }
    }));
}

await redisCase(
  "redis capped claims",
  "redis: a claim that fills its queue's cap brings the next jobs back, so the next claim is one call",
  "capped-peek",
  async (storage, tf) => {
    // Counted script calls: a peek capped at the gauge found none after such a claim, and every
    // next claim of a worker at its cap cost an empty peek first (0.63x of no limit at c=50).
    const ids = await tf.enqueueMany([1, 2, 3, 4, 5, 6, 7, 8].map((n) => ({ job: "x", args: n })));
    const query = { queues: ["default"], limit: 3, caps: { default: 3 } };
    const build = (record: JobRecord) => claimCommit(record, Date.now());
    const script = SCRIPTS.append;
    let calls = 0;
    script.run = (conn, parts) => (calls++, Script.prototype.run.call(script, conn, parts));
    try {
      const first = await storage.claim!(query, build);
      assert.deepEqual(first.claimed.map((c) => c.id), ids.slice(0, 3));
      await storage.append(first.claimed.map((commit) => ({
        commits: [
          appendCommit(commit.record, [{ type: "state", at: Date.now(), state: "Succeeded" }]),
        ],
      })));
      calls = 0;
      const next = await storage.claim!(query, build);
      assert.deepEqual(next.claimed.map((c) => c.id), ids.slice(3, 6));
      assert.equal(calls, 1);
      // Its candidates past the cap are refused as limited (nothing written); the claim after
      // that took none, so it peeks none of the queue: one call each while the queue is full.
      calls = 0;
      assert.deepEqual(await storage.claim!(query, build), { claimed: [], contended: false });
      assert.deepEqual(await storage.claim!(query, build), { claimed: [], contended: false });
      assert.equal(calls, 2);
      assert.equal((await tf.counts()).queues.default.Processing, 3);
    } finally {
      delete (script as Partial<Script>).run;
    }
  },
);

await redisCase(
  "redis event feed",
  "redis event feed: one entry per append call, numbered densely, job id → the log positions it wrote; large appends pipelined",
  "stream",
  async (storage, tf) => {
    const noop = defineJob("noop", () => {});
    const single = await tf.enqueue(noop, { n: 0 });
    const many = await tf.enqueueMany([1, 2, 3].map((n) => ({ job: noop, args: { n } })));
    const redis = storage as RedisStorage;
    const entries = await redis.command<Entry[]>("XRANGE", `${redis.keyPrefix}feed`, "-", "+");
    assert.equal(entries.length, 2, "enqueue and enqueueMany: one call each");
    assert.deepEqual(entries.map(([id]) => id), ["0-1", "0-2"]);
    assert.deepEqual(entries[0][1], [single, "0 2"], "created and Enqueued, after version 0");
    assert.deepEqual(entries[1][1], many.flatMap((id) => [id, "0 2"]));
    await tf.delete(single);
    const [[, last]] = await redis.command<Entry[]>(
      "XREVRANGE",
      `${redis.keyPrefix}feed`,
      "+",
      "-",
    );
    assert.deepEqual(last, [single, "2 1"]);
    // A large append is split into pipelined calls of 250 changes: one entry each.
    const bulk = await tf.enqueueMany(
      Array.from({ length: 600 }, (_, n) => ({ job: noop, args: { n } })),
    );
    const more = (await redis.command<Entry[]>("XRANGE", `${redis.keyPrefix}feed`, "-", "+")).slice(
      -3,
    );
    assert.deepEqual(more.map(([id]) => id), ["0-4", "0-5", "0-6"]);
    assert.deepEqual(more.map(([, fields]) => fields.length / 2), [250, 250, 100]);
    assert.deepEqual(more.flatMap(([, fields]) => fields.filter((_, i) => i % 2 === 0)), bulk);
    assert.equal((await tf.counts()).states.Enqueued, 603);
  },
);

await redisCase(
  "redis event feed cap",
  "redis event feed: a window of about the last 256 KiB of references, not every job's history",
  "streamcap",
  async (storage, tf) => {
    for (let n = 0; n < 60; n += 1) {
      await tf.enqueueMany(Array.from({ length: 250 }, (_, i) => ({ job: "x", args: i })));
    }
    const stream = `${storage.keyPrefix}feed`;
    const entries = await storage.command<Entry[]>("XRANGE", stream, "-", "+");
    const bytes = entries.reduce(
      (sum, [, fields]) => sum + fields.reduce((n, field) => n + field.length + 1, 0),
      0,
    );
    // Trimming is approximate (whole stream nodes): 256 KiB to about twice that stays.
    assert.ok(bytes >= 256 * 1024 && bytes <= 600 * 1024, `kept ${bytes} bytes`);
    assert.ok(entries.length < 60, `kept ${entries.length} of 60 entries`);
    assert.equal((await tf.counts()).states.Enqueued, 15_000, "the logs keep every job");
  },
);

await redisCase(
  "redis finished jobs",
  "redis: a finished job is one done field (no record, position or log key of its own); leaving its final state expands it",
  "done",
  async (storage, tf) => {
    const p = storage.keyPrefix;
    const ids = await tf.enqueueMany([1, 2].map((n) => ({ job: "x", args: { n } })));
    const claims = ((await storage.getMany(ids)) as JobRecord[]).map((r) =>
      claimCommit(r, Date.now())
    );
    await storage.append(claims.map((commit) => ({ commits: [commit] })));
    const ends = ["Succeeded", "Failed"] as const;
    await storage.append(claims.map((claim, i) => ({
      commits: [appendCommit(claim.record, [{
        type: "state",
        at: Date.now(),
        state: ends[i],
        data: i ? { error: { name: "E", message: "no" } } : { result: { ok: i } },
      }])],
    })));
    const keys = (await scanPrefix(storage)).filter((key) => ids.some((id) => key.includes(id)));
    assert.deepEqual(keys, [], "no per-job key");
    for (const id of ids) {
      assert.equal(await storage.command("HEXISTS", `${p}jobs`, id), 0);
      assert.equal(await storage.command("HEXISTS", `${p}pos`, id), 0);
      const field = await storage.command<string>("HGET", `${p}done`, id);
      const record = (await tf.get(id))!;
      assert.equal(field.split("\n")[0], placeOf(record).position);
      assert.equal((await tf.events(id)).length, 4);
    }
    const [succeeded, failed] = (await storage.getMany(ids)) as JobRecord[];
    assert.deepEqual(succeeded.result, { ok: 0 });
    assert.equal(failed.error?.message, "no");
    // Leaving a final state: the log is a list again, and the events read the same.
    const before = await tf.events(ids[1]);
    await tf.requeue(ids[1]);
    assert.equal(await storage.command("HEXISTS", `${p}done`, ids[1]), 0);
    assert.equal(await storage.command("LLEN", `${p}log:${ids[1]}`), 5);
    assert.deepEqual((await tf.events(ids[1])).slice(0, 4), before);
    assert.equal((await tf.get(ids[1]))!.state, "Enqueued");
    // A finished job cannot be created again while it is kept.
    const again = createCommit(succeeded.id, {
      type: "created",
      at: Date.now(),
      name: "x",
      queue: "default",
      args: {},
      priority: 0,
      options: {},
    }, [{ type: "state", at: Date.now(), state: "Enqueued" }]);
    assert.deepEqual(await storage.append([{ commits: [again] }]), [
      { ok: false, conflicts: [ids[0]] },
    ]);
    await assertConsistent(storage);
  },
);

await redisCase(
  "redis append calls",
  "redis: a call with a stale change writes nothing, then the rest go again in one call",
  "refuse",
  async (storage, tf) => {
    const [a, b, c] = await tf.enqueueMany([1, 2, 3].map((n) => ({ job: "x", args: n })));
    const [ra, rb, rc] = (await storage.getMany([a, b, c])) as JobRecord[];
    await storage.append([{
      commits: [appendCommit(rb, [{ type: "log", at: 1, message: "moved on" }])],
    }]);
    const stream = `${storage.keyPrefix}feed`;
    const before = await storage.command<number>("XLEN", stream);
    const results = await storage.append([
      { commits: [appendCommit(ra, [{ type: "progress", at: 2, value: 10 }])] },
      { commits: [appendCommit(rb, [{ type: "progress", at: 2, value: 20 }])] },
      { commits: [appendCommit(rc, [{ type: "progress", at: 2, value: 30 }])] },
    ]);
    assert.deepEqual(results, [{ ok: true }, { ok: false, conflicts: [b] }, { ok: true }]);
    const entries = (await storage.command<Entry[]>("XRANGE", stream, "-", "+")).slice(before);
    assert.deepEqual(
      entries.map(([, fields]) => fields.filter((_, i) => i % 2 === 0)),
      [[a, c]],
      "the refused call left no entry; the resent one holds a and c",
    );
    assert.equal((await tf.get(b))!.progress, undefined);
    await assertConsistent(storage);
  },
);

await redisCase(
  "redis skiplist keepers",
  "redis: the Processing index and lease set stay skiplists, the lease hash a hashtable; their keepers never show",
  "keepers",
  async (storage, tf) => {
    const ids = await tf.enqueueMany([1, 2, 3].map((n) => ({ job: "x", args: n })));
    const records = (await storage.getMany(ids)) as JobRecord[];
    const claims = records.map((record) => claimCommit(record, Date.now()));
    await storage.append(claims.map((commit) => ({ commits: [commit] })));
    const processing = `${storage.keyPrefix}state:Processing`,
      leases = `${storage.keyPrefix}leases`;
    for (const key of [processing, leases]) {
      assert.equal(await storage.command("OBJECT", "ENCODING", key), "skiplist", key);
    }
    const holders = `${storage.keyPrefix}lease`;
    assert.equal(await storage.command("OBJECT", "ENCODING", holders), "hashtable", holders);
    assert.equal((await storage.lease(ids[0]))?.serverId, claims[0].lease!.serverId);
    const listed = await storage.list({ state: "Processing", limit: 10 });
    assert.deepEqual(listed.jobs.map((job) => job.id).sort(), [...ids].sort());
    const due = await storage.due({
      state: "Processing",
      before: Date.now() + 3_600_000,
      limit: 10,
    });
    assert.deepEqual(due.map((job) => job.id).sort(), [...ids].sort());
    await storage.append(claims.map((claim) => ({
      commits: [
        appendCommit(claim.record, [{ type: "state", at: Date.now(), state: "Succeeded" }]),
      ],
    })));
    assert.deepEqual((await storage.list({ state: "Processing", limit: 10 })).jobs, []);
    assert.deepEqual(
      await storage.due({ state: "Processing", before: Number.MAX_SAFE_INTEGER, limit: 10 }),
      [],
    );
    assert.equal(await storage.command("ZCARD", processing), 1, "only the keeper is left");
    assert.equal(await storage.command("HLEN", holders), 1, "only the keeper is left");
    assert.equal((await tf.counts()).states.Processing, 0);
    const report = await doctor(storage);
    assert.deepEqual(report.findings, []);
    await assertConsistent(storage);
  },
);

await redisCase(
  "redis positions",
  "redis: positions are short (version:hash); a stale one is refused",
  "positions",
  async (storage, tf) => {
    // (A `queue` key on an item was silently ignored before issue 18; it is an error now.)
    const ids = await tf.enqueueMany(["default", "ünïcode", "三"].map((label, n) => ({
      job: "x",
      args: { n, label },
    })));
    const pos = `${storage.keyPrefix}pos`;
    const records = (await storage.getMany(ids)) as JobRecord[];
    for (const record of records) {
      const stored = await storage.command<string | null>("HGET", pos, record.id);
      assert.equal(stored, placeOf(record).position);
      assert.match(stored!, /^2:\d{1,10}$/);
    }
    assert.notEqual(
      placeOf(records[0]).position,
      placeOf({ ...records[0], queue: "elsewhere" }).position,
      "the hash covers the placement",
    );
    const stale = placeOf({ ...records[2], version: 7 }).position;
    await storage.command("HSET", pos, records[2].id, stale);
    const claims = records.map((record) => claimCommit(record, Date.now()));
    const results = await storage.append(claims.map((commit) => ({ commits: [commit] })));
    assert.deepEqual(results, [
      { ok: true },
      { ok: true },
      { ok: false, conflicts: [records[2].id] },
    ]);
    for (const claim of claims.slice(0, 2)) {
      assert.equal(await storage.command("HGET", pos, claim.id), placeOf(claim.record).position);
    }
    assert.deepEqual(
      (await storage.getMany(ids)).map((record) => record?.state),
      ["Processing", "Processing", "Enqueued"],
    );
  },
);

await whenRedis(
  "redis recurring",
  () =>
    Deno.test("redis: a recurring record that is not JSON is marked broken; the others still run", async () => {
      const { storage, cleanup } = await openTestRedis("recurring-garbage");
      let t = Date.UTC(2026, 0, 1, 8, 59, 30);
      const tf = new TaskFlow(storage, { now: () => t });
      try {
        await tf.recurring.upsert("a-garbage", "* * * * *", "noop", {});
        await tf.recurring.upsert("b-good", "* * * * *", "noop", {});
        const redis = storage as RedisStorage;
        await redis.command("HSET", `${redis.keyPrefix}recurring`, "a-garbage", "{not json");

        t += 60_000;
        const step = await scheduleRecurring(tf);
        assert.deepEqual(step.broken.map((b) => b.id), ["a-garbage"]);
        assert.equal(step.enqueued, 1, "the good definition still runs");
        const listed = await tf.recurring.list();
        assert.deepEqual(listed.map((r) => r.id), ["a-garbage", "b-good"]);
        assert.equal(listed[0].lastError?.code, "CORRUPT_RECORD");
        // An upsert replaces the damaged record and clears the mark.
        await tf.recurring.upsert("a-garbage", "* * * * *", "noop", {});
        assert.equal((await tf.recurring.get("a-garbage"))?.lastError, undefined);
      } finally {
        await cleanup();
      }
    }),
);

await redisCase(
  "redis overlapping claims",
  "redis: claims sent while another is in flight take the next jobs, none twice and none refused, in queue order",
  "overlap",
  async (storage, tf) => {
    const ids = await tf.enqueueMany(
      Array.from({ length: 40 }, (_, n) => ({ job: "x", args: { n } })),
    );
    const build = (record: JobRecord) => claimCommit(record, Date.now());
    // Warm: the first claim peeks 20 jobs ahead.
    const first = await storage.claim({ queues: ["default"], limit: 5, peek: 20 }, build);
    // Three claims in flight at once: each takes candidates the others have not.
    const overlapping = await Promise.all(
      [5, 6, 7].map((limit) => storage.claim({ queues: ["default"], limit, peek: 20 }, build)),
    );
    const claims = [first, ...overlapping];
    assert.ok(claims.every((claim) => !claim.contended), "no claim was refused");
    const claimed = claims.flatMap((claim) => claim.claimed.map((commit) => commit.id));
    assert.deepEqual(claimed, ids.slice(0, 23), "the first 23 jobs, in order, once each");
    // The next claim, after all answered, goes on from there.
    const next = await storage.claim({ queues: ["default"], limit: 4 }, build);
    assert.deepEqual(next.claimed.map((commit) => commit.id), ids.slice(23, 27));
    assert.equal((await tf.counts()).states.Processing, 27);
  },
);

await redisCase(
  "redis wake-up records",
  "redis: the wake-up of a single new job carries its record, and a claim takes it without reading the queue first",
  "wakerecord",
  async (storage, tf) => {
    const connection = {
      ...parseRedisUrl(REDIS_URL).connection,
      connectTimeoutMs: 5_000,
      timeoutMs: 5_000,
    };
    const messages: string[] = [];
    const heard = new Subscriber(connection, `${storage.keyPrefix}wake`, (m) => messages.push(m));
    try {
      // Subscribed once the first message gets through.
      await eventually(async () => {
        await tf.enqueueMany([{ job: "x", args: { n: 0 } }, { job: "x", args: { n: 1 } }]);
        assert.ok(messages.length > 0);
      });
      assert.ok(messages.every((m) => m === "1"), "several jobs: a plain wake-up");
      messages.length = 0;
      const single = await tf.enqueue("x", { n: 2 });
      // A plain wake-up of the loop above may still be on its way: the record is the one other.
      const records = () => messages.filter((m) => m !== "1");
      await eventually(() => assert.equal(records().length, 1));
      assert.deepEqual(JSON.parse(records()[0]), await storage.get(single));
    } finally {
      heard.close();
    }
    // A claim on the storage's own cache: drained first, then offered the new job's record.
    const db = { conn: new RespConnection(connection), keys: keysOf(storage.prefix) };
    const calls: string[] = [];
    const call = db.conn.callParts.bind(db.conn);
    db.conn.callParts = (parts) => (calls.push(parts[0][0]), call(parts));
    try {
      const claims = new Claims();
      const build = (record: JobRecord) => claimCommit(record, Date.now());
      const ready = (await tf.counts()).states.Enqueued;
      const drained = await claims.claim(db, { queues: ["default"], limit: 50 }, build);
      assert.equal(drained.claimed.length, ready, "every ready job claimed: none left to peek");
      const id = await tf.enqueue("x", { n: 3 });
      claims.offer(JSON.stringify(await storage.get(id)));
      calls.length = 0;
      const next = await claims.claim(db, { queues: ["default"], limit: 10 }, build);
      assert.deepEqual(next.claimed.map((commit) => commit.id), [id]);
      assert.equal(calls.length, 1, "one call: the offered record needed no read");
    } finally {
      db.conn.close();
    }
  },
);
