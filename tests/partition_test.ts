/**
 * @module
 * A job's partition key: `options.partition` on enqueue-like calls, or `defineJob(..., {
 * partition: (args) => key })`, stored in the created event's options.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import { defineJob } from "../lib/job.ts";
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

const send = defineJob("mail.send", (args: { tenant: string }) => args.tenant, {
  queue: "mail",
  partition: (args: { tenant: string }) => args.tenant,
});

Deno.test("partition: stored from the enqueue, else from the definition's function", async () => {
  await withClient(async (tf) => {
    const own = await tf.enqueue("mail.send", {}, { partition: "acme" });
    assert.equal((await tf.get(own))?.options.partition, "acme");
    const created = (await tf.events(own))[0];
    assert.equal(created.type === "created" && created.options.partition, "acme");
    const derived = await tf.enqueue(send, { tenant: "beta" });
    assert.equal((await tf.get(derived))?.options.partition, "beta");
    const overridden = await tf.enqueue(send, { tenant: "beta" }, { partition: "gamma" });
    assert.equal((await tf.get(overridden))?.options.partition, "gamma");
    const [many] = await tf.enqueueMany([{ job: send, args: { tenant: "delta" } }]);
    assert.equal((await tf.get(many))?.options.partition, "delta");
    const scheduled = await tf.schedule(send, { tenant: "eps" }, { delayMs: 1_000 });
    assert.equal((await tf.get(scheduled))?.options.partition, "eps");
    const none = await tf.enqueue("mail.send", {});
    assert.equal("partition" in (await tf.get(none))!.options, false);
  });
});

Deno.test("partition: bad keys and throwing functions get typed errors and write nothing", async () => {
  await withClient(async (tf) => {
    const bad: [unknown, RegExp][] = [
      ["", /invalid options\.partition "": must be a string of 1 to 128/],
      ["x".repeat(129), /options\.partition .*1 to 128/],
      [42, /options\.partition 42/],
      ["a\nb", /options\.partition "a\\nb"/],
      [(a: unknown) => String(a), /options\.partition "function": a function cannot be stored/],
    ];
    for (const [partition, message] of bad) {
      await assert.rejects(
        tf.enqueue("mail.send", {}, { partition } as never),
        (e: unknown) => e instanceof InvalidOptionError && message.test(e.message),
        String(partition),
      );
    }
    const throwing = defineJob("t", () => {}, {
      partition: () => {
        throw new Error("no tenant");
      },
    });
    await assert.rejects(
      tf.enqueue(throwing, {}),
      /invalid partition of job "t" "\(threw\)": its function threw: no tenant/,
    );
    const empty = defineJob("e", () => {}, { partition: () => "" });
    await assert.rejects(tf.enqueue(empty, {}), /invalid partition of job "e" "": must be/);
    await assert.rejects(
      tf.enqueueMany([{ job: send, args: { tenant: "ok" } }, { job: empty, args: {} }]),
      InvalidOptionError,
    );
    assert.equal((await tf.counts()).totals.created, 0);
  });
});

Deno.test("partition: defineJob checks a fixed key and takes a function", () => {
  assert.equal(defineJob("a", () => {}, { partition: "acme" }).defaults.partition, "acme");
  assert.throws(
    () => defineJob("a", () => {}, { partition: "" }),
    /invalid defaults\.partition "": must be a string/,
  );
  assert.throws(
    () => defineJob("a", () => {}, { partion: "x" } as never),
    /did you mean "partition"/,
  );
});
