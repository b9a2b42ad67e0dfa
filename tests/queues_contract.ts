/**
 * @module
 * Queue limits through the storage's settings store, run by the storage contract on every
 * backend.
 */

import assert from "node:assert/strict";
import type { TaskFlow } from "../lib/client.ts";
import { InvalidNameError, InvalidOptionError } from "../storage/errors.ts";
import type { TestClock } from "./helpers.ts";

type Case = (title: string, fn: (tf: TaskFlow, clock: TestClock) => Promise<void>) => void;

/** Registers the cases with the contract suite's `test`. */
export function queueCases(test: Case): void {
  test("queues.configure stores limits every client reads", async (tf, clock) => {
    assert.equal(await tf.queues.get("mail"), null);
    const stored = await tf.queues.configure("mail", {
      concurrency: 5,
      rateLimit: { max: 100, perMs: 1_000 },
      partition: { concurrency: 1 },
    });
    const expected = {
      name: "mail",
      concurrency: 5,
      rateLimit: { max: 100, perMs: 1_000 },
      partition: { concurrency: 1 },
      updatedAt: clock.t,
    };
    assert.deepEqual(stored, expected);
    assert.deepEqual(await tf.queues.get("mail"), expected);
    await tf.queues.configure("bulk", { rateLimit: { max: 5, perMs: 60_000 } });
    assert.deepEqual((await tf.queues.list()).map((q) => q.name), ["bulk", "mail"]);
    // The retention policy shares the settings store and is not a queue.
    assert.ok((await tf.queues.list()).every((q) => q.name !== "retention"));
  });

  test("queues.configure merges: given fields replace, null removes, absent ones stay", async (
    tf,
    clock,
  ) => {
    await tf.queues.configure("mail", {
      concurrency: 5,
      rateLimit: { max: 100, perMs: 1_000 },
      partition: { concurrency: 2, rateLimit: { max: 1, perMs: 10 } },
    });
    clock.advance(1_000);
    const after = await tf.queues.configure("mail", {
      rateLimit: null,
      partition: { concurrency: null },
    });
    assert.deepEqual(after, {
      name: "mail",
      concurrency: 5,
      partition: { rateLimit: { max: 1, perMs: 10 } },
      updatedAt: clock.t,
    });
    assert.deepEqual(await tf.queues.get("mail"), after);
    const cleared = await tf.queues.configure("mail", { concurrency: null, partition: null });
    assert.deepEqual(cleared, { name: "mail", updatedAt: clock.t });
    assert.equal(await tf.queues.get("mail"), null);
    assert.deepEqual(await tf.queues.list(), []);
  });

  test("queues.configure refuses bad limits and writes nothing", async (tf) => {
    const bad: [unknown, RegExp][] = [
      [{ concurrency: 0 }, /config\.concurrency 0: must be a whole number from 1/],
      [{ concurrency: -3 }, /config\.concurrency -3/],
      [{ concurrency: 1.5 }, /config\.concurrency 1\.5/],
      [{ rateLimit: { max: 0, perMs: 1000 } }, /config\.rateLimit\.max 0/],
      [{ rateLimit: { max: 10, perMs: 2.5 } }, /config\.rateLimit\.perMs 2\.5/],
      [{ rateLimit: { max: 10 } }, /config\.rateLimit .*must be \{ max, perMs \}/],
      [{ rateLimit: { max: 10, perMs: 1, burst: 3 } }, /config\.rateLimit\.burst/],
      [{ concurrrency: 3 }, /config\.concurrrency.*did you mean "concurrency"/],
      [{ partition: { concurrency: "2" } }, /config\.partition\.concurrency "2"/],
    ];
    for (const [config, message] of bad) {
      await assert.rejects(
        tf.queues.configure("mail", config as never),
        (error: unknown) => error instanceof InvalidOptionError && message.test(error.message),
        JSON.stringify(config),
      );
    }
    await assert.rejects(tf.queues.configure("-bad", { concurrency: 1 }), InvalidNameError);
    await assert.rejects(tf.queues.get("a b"), InvalidNameError);
    assert.deepEqual(await tf.queues.list(), []);
  });
}
