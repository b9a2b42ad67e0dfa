/**
 * @module
 * The `unique` option's input rules (typed errors naming the value, nothing written) and its
 * defaults from `defineJob`; the storage side runs on every backend in unique_contract.ts.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
import type { Json } from "../lib/payload.ts";
import { canonicalJson, defaultKey } from "../lib/unique/options.ts";
import { InvalidOptionError } from "../storage/errors.ts";
import { TestClock } from "./helpers.ts";

async function withClient(fn: (tf: TaskFlow) => Promise<void>): Promise<void> {
  const tf = await TaskFlow.open("memory:", { now: new TestClock().now });
  try {
    await fn(tf);
  } finally {
    await tf.close();
  }
}

Deno.test("unique: bad options get typed errors naming the value and write nothing", async () => {
  await withClient(async (tf) => {
    const bad: [unknown, RegExp][] = [
      [{ key: "" }, /options\.unique\.key "": must be a string of 1 to 512 characters/],
      [{ key: "k".repeat(513) }, /options\.unique\.key .*1 to 512/],
      [{ key: "a\nb" }, /options\.unique\.key .*without control characters/],
      [{ key: 7 }, /options\.unique\.key 7/],
      [{ key: () => "k" }, /options\.unique\.key .*must be a string/],
      [{ ttlMs: 0 }, /options\.unique\.ttlMs 0: must be a positive integer/],
      [{ ttlMs: 1.5 }, /options\.unique\.ttlMs 1\.5/],
      [{ ttlMs: -5 }, /options\.unique\.ttlMs -5/],
      [{ states: ["Running"] }, /options\.unique\.states "Running": is not a state/],
      [{ states: "Enqueued" }, /options\.unique\.states "Enqueued": must be an array/],
      [{ states: [] }, /options\.unique\.states .*may be empty only with ttlMs/],
      [{ onDuplicate: "ignore" }, /options\.unique\.onDuplicate "ignore"/],
      [{ keys: "k" }, /unknown option "keys" \(did you mean "key"\?\)/],
      [null, /options\.unique null/],
      ["yes", /options\.unique "yes"/],
    ];
    for (const [unique, message] of bad) {
      await assert.rejects(
        tf.enqueue("a.job", {}, { unique } as never),
        (e: unknown) => e instanceof InvalidOptionError && message.test(e.message),
        `unique ${JSON.stringify(unique)}`,
      );
    }
    await assert.rejects(
      tf.enqueue("a.job", {}, { id: "mine", unique: {} }),
      /options\.unique .*cannot be combined with a custom id/,
    );
    await assert.rejects(
      tf.schedule("a.job", {}, { delayMs: 5, unique: { ttlMs: 0 } }),
      /options\.unique\.ttlMs 0/,
    );
    await assert.rejects(
      tf.enqueueMany([{ job: "a", args: {} }, {
        job: "a",
        args: {},
        options: { unique: { key: "" } },
      }]),
      /items\[1\]\.unique\.key ""/,
    );
    await assert.rejects(
      tf.batch([{ job: "a", args: {}, options: { unique: {} } }]),
      /items\[0\]\.unique .*batch cannot take it/,
    );
    await assert.rejects(
      tf.recurring.upsert("r", "* * * * *", "a", {}, { unique: {} } as never),
      /options\.unique .*recurring\.upsert cannot take it/,
    );
    assert.throws(
      () => defineJob("b", () => {}, { unique: { ttlMs: 0 } }),
      /defaults\.unique\.ttlMs 0/,
    );
    assert.equal((await tf.counts()).totals.created, 0);
  });
});

Deno.test("unique: defineJob sets the default, a key function of the arguments included", async () => {
  await withClient(async (tf) => {
    const job = defineJob("user.sync", (_: { user: number; at: number }) => {}, {
      unique: { key: (args: { user: number }) => `user:${args.user}`, ttlMs: 5_000 },
    });
    const id = await tf.enqueue(job, { user: 1, at: 1 });
    assert.equal(await tf.enqueue(job, { user: 1, at: 2 }), id);
    assert.deepEqual((await tf.get(id))!.options.unique, { key: "user:1", ttlMs: 5_000 });
    // The enqueue's own option replaces the definition's.
    const own = await tf.enqueue(job, { user: 1, at: 3 }, { unique: { key: "other" } });
    assert.notEqual(own, id);
    const throwing = defineJob("t", () => {}, {
      unique: {
        key: () => {
          throw new Error("no user");
        },
      },
    });
    await assert.rejects(tf.enqueue(throwing, {}), /unique key of job "t" .*threw: no user/);
    const long = defineJob("l", () => {}, { unique: { key: () => "" } });
    await assert.rejects(tf.enqueue(long, {}), /unique key of job "l" "": must be a string/);
    // Batch members ignore a definition's default: each is its own member.
    const { jobIds } = await tf.batch([{ job, args: { user: 1, at: 4 } }]);
    assert.equal((await tf.get(jobIds[0]))!.options.unique, undefined);
  });
});

Deno.test("unique: the default key is the name and canonical JSON, hashed when long", () => {
  assert.equal(
    canonicalJson({ b: [1, { d: 1, c: 2 }], a: null }),
    '{"a":null,"b":[1,{"c":2,"d":1}]}',
  );
  assert.equal(defaultKey("x", { b: 1, a: "s" }), 'x:{"a":"s","b":1}');
  const long = defaultKey("x", { text: "y".repeat(600) });
  assert.match(long, /^x:sha256:[0-9a-f]{64}$/);
  assert.notEqual(long, defaultKey("x", { text: "y".repeat(601) }));
});

Deno.test("unique: canonical JSON is the same text whatever the order of the keys", () => {
  // The text of sorted keys, made the slow way, to hold the shortcut for ordered keys to.
  const sorted = (value: Json): string => {
    if (typeof value !== "object" || value === null) return JSON.stringify(value);
    if (Array.isArray(value)) return `[${value.map(sorted).join(",")}]`;
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${sorted(value[k])}`).join(",")}}`;
  };
  let seed = 7;
  const random = (n: number) => (seed = (seed * 48_271) % 2_147_483_647) % n;
  const KEYS = ["a", "b", "B", "é", "10", "9", "0", "a b", "\u2028", "__proto_", "aa", "ab"];
  const make = (depth: number): Json => {
    const kind = random(depth > 2 ? 4 : 6);
    if (kind === 0) return random(1_000) / 7;
    if (kind === 1) return KEYS[random(KEYS.length)];
    if (kind === 2) return random(2) === 0 ? null : true;
    if (kind === 3) return [];
    if (kind === 4) return Array.from({ length: random(4) }, () => make(depth + 1));
    const object: Record<string, Json> = {};
    for (let i = random(5); i > 0; i--) object[KEYS[random(KEYS.length)]] = make(depth + 1);
    return object;
  };
  const shuffled = (value: Json): Json => {
    if (typeof value !== "object" || value === null) return value;
    if (Array.isArray(value)) return value.map(shuffled);
    const keys = Object.keys(value);
    const out: Record<string, Json> = {};
    while (keys.length) {
      const [key] = keys.splice(random(keys.length), 1);
      out[key] = shuffled(value[key]);
    }
    return out;
  };
  for (let i = 0; i < 2_000; i++) {
    const value = make(0);
    assert.equal(canonicalJson(value), sorted(value));
    assert.equal(canonicalJson(shuffled(value)), sorted(value));
  }
  assert.equal(canonicalJson({ 10: 1, 9: 2, a: 3 }), '{"10":1,"9":2,"a":3}');
});

Deno.test("debounce: bad options get typed errors naming the value and write nothing", async () => {
  await withClient(async (tf) => {
    const bad: [unknown, RegExp][] = [
      [{ delayMs: 5 }, /options\.debounce\.key undefined: must be a string of 1 to 512/],
      [{ key: "", delayMs: 5 }, /options\.debounce\.key ""/],
      [{ key: "k", delayMs: 0 }, /options\.debounce\.delayMs 0: must be a positive integer/],
      [{ key: "k" }, /options\.debounce\.delayMs undefined/],
      [{ key: "k", delayMs: 5, maxWaitMs: 1.5 }, /options\.debounce\.maxWaitMs 1\.5/],
      [{ key: "k", delayMs: 5, wait: 1 }, /unknown option "wait"/],
      ["k", /options\.debounce "k"/],
    ];
    for (const [debounce, message] of bad) {
      await assert.rejects(
        tf.enqueue("a.job", {}, { debounce } as never),
        (e: unknown) => e instanceof InvalidOptionError && message.test(e.message),
        `debounce ${JSON.stringify(debounce)}`,
      );
    }
    const debounce = { key: "k", delayMs: 5 };
    await assert.rejects(
      tf.enqueue("a.job", {}, { debounce, unique: {} }),
      /options\.debounce .*cannot be combined with unique/,
    );
    await assert.rejects(
      tf.enqueue("a.job", {}, { debounce, id: "mine" }),
      /options\.debounce .*cannot be combined with a custom id/,
    );
    await assert.rejects(
      tf.schedule("a.job", {}, { debounce, delayMs: 5 } as never),
      /options\.debounce .*cannot be scheduled/,
    );
    const parent = await tf.enqueue("parent", {});
    await assert.rejects(
      tf.continueWith(parent, "a.job", {}, { debounce } as never),
      /options\.debounce .*continueWith cannot take it/,
    );
    await assert.rejects(
      tf.continueWith(parent, "a.job", {}, { unique: {} } as never),
      /options\.unique .*continueWith cannot take it/,
    );
    assert.throws(
      () => defineJob("b", () => {}, { debounce: { key: "k", delayMs: -1 } }),
      /defaults\.debounce\.delayMs -1/,
    );
    assert.equal((await tf.counts()).totals.created, 1);
  });
});
