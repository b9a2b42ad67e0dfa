/**
 * @module
 * The contract cases of the statistics projections (second buckets, per-name outcomes and
 * durations, per-queue waits), run on every backend by `runStorageContract`. Rebuild and
 * removal keep them: see the rebuild case there and `history` in removal_contract.ts.
 */

import assert from "node:assert/strict";
import { appendCommit } from "../lib/changes.ts";
import type { TaskFlow } from "../lib/client.ts";
import { bucketStart } from "../storage/effects.ts";
import { RESOLUTIONS } from "../storage/storage.ts";
import type { StatPoint } from "../storage/stats.ts";
import { claimCommit, type TestClock } from "./helpers.ts";

type Case = (title: string, fn: (tf: TaskFlow, clock: TestClock) => Promise<void>) => void;

/** Claims every job of `ids` in one append, each a commit of its own change. */
async function claimAll(tf: TaskFlow, clock: TestClock, ids: string[]): Promise<void> {
  const records = await tf.storage.getMany(ids);
  const changes = records.map((r) => ({ commits: [claimCommit(r!, clock.t)] }));
  assert.ok((await tf.storage.append(changes)).every((r) => r.ok));
}

/** Ends the attempt of each Processing job of `ids` in `state`, in one append. */
async function endAll(
  tf: TaskFlow,
  clock: TestClock,
  ids: string[],
  state: "Succeeded" | "Failed" | "Scheduled",
  data: { durationMs?: number; retryOf?: number; runAt?: number } = {},
): Promise<void> {
  const records = await tf.storage.getMany(ids);
  const changes = records.map((r) => ({
    commits: [appendCommit(r!, [{ type: "state" as const, at: clock.t, state, data }])],
  }));
  assert.ok((await tf.storage.append(changes)).every((r) => r.ok));
}

const only = (points: StatPoint[]) => {
  assert.equal(points.length, 1, JSON.stringify(points));
  return points[0];
};

/** Registers the cases with the contract suite's `test`. */
export function statsCases(test: Case): void {
  test(
    "second buckets, attempt outcomes per name and waits per queue follow transitions",
    async (tf, clock) => {
      const mail = await tf.enqueueMany(
        Array.from(
          { length: 3 },
          (_, i) => ({ job: "mail.send", args: i, options: { queue: "mail" } }),
        ),
      );
      const [report] = await tf.enqueueMany([{ job: "report.build", args: 0 }]);
      clock.advance(2_000);
      await claimAll(tf, clock, [...mail, report]);
      clock.advance(40);
      await endAll(tf, clock, mail.slice(0, 2), "Succeeded", { durationMs: 40 });
      await endAll(tf, clock, [mail[2]], "Scheduled", {
        durationMs: 700,
        retryOf: 1,
        runAt: clock.t + 60_000,
      });
      await endAll(tf, clock, [report], "Failed", { durationMs: 3 });

      const [second] = await tf.storage.timeline("second", clock.t, clock.t);
      assert.deepEqual(second, { at: bucketStart("second", clock.t), succeeded: 2, failed: 1 });
      const totals = only(await tf.storage.stats({ resolution: "total" }));
      assert.deepEqual(totals, {
        at: 0,
        counts: {
          "job|mail.send|succeeded:3": 2,
          "job|mail.send|retried:7": 1,
          "job|mail.send|ms": 780,
          "job|report.build|failed:0": 1,
          "job|report.build|ms": 3,
          "wait|mail|8": 3,
          "wait|mail|ms": 6_000,
          "wait|default|8": 1,
          "wait|default|ms": 2_000,
        },
      });
      for (const resolution of ["minute", "hour"] as const) {
        const point = only(
          await tf.storage.stats({
            resolution,
            from: clock.t - 3_600_000,
            to: clock.t,
            prefix: "job|mail.send|",
          }),
        );
        assert.deepEqual(point, {
          at: bucketStart(resolution, clock.t),
          counts: { "job|mail.send|succeeded:3": 2, "job|mail.send|retried:7": 1 },
        });
      }
      const waits = only(await tf.storage.stats({ resolution: "minute", prefix: "wait|" }));
      assert.deepEqual(waits.counts, { "wait|mail|8": 3, "wait|default|8": 1 });
      assert.deepEqual(
        await tf.storage.stats({
          resolution: "minute",
          from: clock.t + 120_000,
          to: clock.t + 180_000,
        }),
        [],
      );
    },
  );

  test(
    "prune drops second and statistics buckets past their keep, never the totals",
    async (tf, clock) => {
      const ids = await tf.enqueueMany([{ job: "p", args: 1 }]);
      await claimAll(tf, clock, ids);
      await endAll(tf, clock, ids, "Succeeded", { durationMs: 10 });
      const minuteAt = bucketStart("minute", clock.t), hourAt = bucketStart("hour", clock.t);
      const minutes = () =>
        tf.storage.stats({ resolution: "minute", from: minuteAt, to: minuteAt });
      const hours = () => tf.storage.stats({ resolution: "hour", from: hourAt, to: hourAt });
      await tf.storage.prune(clock.t + 60_000);
      assert.equal((await tf.storage.timeline("second", clock.t, clock.t))[0].succeeded, 1);
      await tf.storage.prune(clock.t + RESOLUTIONS.second.keepMs + 60_000);
      assert.equal((await tf.storage.timeline("second", clock.t, clock.t))[0].succeeded, 0);
      assert.equal((await minutes()).length, 1);
      await tf.storage.prune(minuteAt + RESOLUTIONS.minute.keepMs + 3_600_000);
      assert.deepEqual(await minutes(), []);
      assert.equal((await hours()).length, 1);
      await tf.storage.prune(hourAt + RESOLUTIONS.hour.keepMs + 86_400_000);
      assert.deepEqual(await hours(), []);
      assert.equal(
        only(await tf.storage.stats({ resolution: "total" })).counts["job|p|succeeded:1"],
        1,
      );
    },
  );

  test("one append of many jobs of distinct names counts every name", async (tf, clock) => {
    const ids = await tf.enqueueMany(
      Array.from(
        { length: 150 },
        (_, i) => ({ job: `name.${i}`, args: i, options: { queue: `q${i}` } }),
      ),
    );
    await claimAll(tf, clock, ids);
    await endAll(tf, clock, ids, "Succeeded", { durationMs: 1 });
    const { counts } = only(await tf.storage.stats({ resolution: "total", prefix: "job|" }));
    assert.equal(Object.keys(counts).length, 300);
    assert.equal(counts["job|name.149|succeeded:0"], 1);
    const waits = only(await tf.storage.stats({ resolution: "minute", prefix: "wait|" }));
    assert.equal(Object.keys(waits.counts).length, 150);
  });
}
