/**
 * @module
 * Recurring jobs against any backend, through {@link runRecurringSuite}.
 */

import assert from "node:assert/strict";
import { TaskFlow } from "../lib/client.ts";
import {
  InvalidCronError,
  InvalidOptionError,
  InvalidTimezoneError,
  JobNotFoundError,
  PayloadTooLargeError,
} from "../storage/errors.ts";
import { defineJob } from "../lib/job.ts";
import { occurrenceId, scheduleRecurring } from "../lib/recurring.ts";
import type { Storage } from "../storage/storage.ts";
import { TestClock } from "./helpers.ts";

/** A fresh storage and its disposal. */
export interface RecurringBackend {
  storage: Storage;
  cleanup(): Promise<void>;
}

/** Registers the recurring cases for backend `name`. */
export function runRecurringSuite(name: string, open: () => Promise<RecurringBackend>): void {
  const test = (title: string, fn: (tf: TaskFlow, clock: TestClock) => Promise<void>) =>
    Deno.test({
      name: `${name} recurring: ${title}`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const backend = await open();
        // 2026-01-05 08:59:00 UTC, a Monday.
        const clock = new TestClock(Date.UTC(2026, 0, 5, 8, 59, 0));
        const tf = new TaskFlow(backend.storage, { now: clock.now });
        try {
          await fn(tf, clock);
        } finally {
          await backend.cleanup();
        }
      },
    });

  test("bad cron, timezone, id or options are refused and nothing is stored", async (tf) => {
    await assert.rejects(
      tf.recurring.upsert("a", "61 * * * *", "x", {}),
      (e: unknown) =>
        e instanceof InvalidCronError && e.code === "INVALID_CRON" &&
        /invalid cron "61 \* \* \* \*": Invalid value for minute: 61/.test(e.message),
    );
    await assert.rejects(tf.recurring.upsert("a", "* * *", "x", {}), /exactly five, six, or seven/);
    await assert.rejects(
      tf.recurring.upsert("a", "0 9 * * MON-FRY", "x", {}),
      /illegal characters/,
    );
    await assert.rejects(
      tf.recurring.upsert("a", "0 9 * * *", "x", {}, { timezone: "Mars/Olympus" }),
      (e: unknown) =>
        e instanceof InvalidTimezoneError && e.code === "INVALID_TIMEZONE" &&
        /"Mars\/Olympus"/.test(e.message),
    );
    await assert.rejects(tf.recurring.upsert("bad id", "0 9 * * *", "x", {}), InvalidOptionError);
    await assert.rejects(
      tf.recurring.upsert("a", "0 9 * * *", "x", {}, { misfire: "twice" as "once" }),
      /misfire "twice"/,
    );
    await assert.rejects(
      tf.recurring.upsert("a", "0 9 * * *", "x", { f: () => 1 }),
      /args\.f is not plain JSON/,
    );
    await assert.rejects(
      tf.recurring.upsert("a", "0 9 * * *", "bad name!", {}),
      /invalid job name/,
    );
    assert.deepEqual(await tf.recurring.list(), []);
  });

  test("upsert stores the definition with its next run; 5 and 6 fields and aliases", async (tf) => {
    const job = defineJob("digest", () => {}, { queue: "mail", attempts: 3 });
    const digest = await tf.recurring.upsert("digest", "0 9 * * MON-FRI", job, { to: "all" }, {
      timezone: "Europe/Berlin",
    });
    assert.equal(
      digest.nextRun,
      Date.UTC(2026, 0, 6, 8, 0, 0),
      "09:00 in Berlin (UTC+1) on Tuesday",
    );
    assert.equal(digest.options.queue, "mail");
    assert.equal(digest.options.attempts, 3);
    const seconds = await tf.recurring.upsert("tick", "*/10 * * * * *", "tick", null);
    assert.equal(seconds.nextRun, Date.UTC(2026, 0, 5, 8, 59, 10));
    const daily = await tf.recurring.upsert("daily", "@daily", "daily", null);
    assert.equal(daily.nextRun, Date.UTC(2026, 0, 6));
    assert.deepEqual((await tf.recurring.list()).map((r) => r.id), ["daily", "digest", "tick"]);
    const changed = await tf.recurring.upsert("digest", "30 9 * * *", job, { to: "all" }, {
      timezone: "UTC",
    });
    assert.equal(changed.version, 2);
    assert.equal(changed.createdAt, digest.createdAt);
  });

  test(
    "each occurrence is enqueued once, with a deterministic id, however many schedulers run",
    async (tf, clock) => {
      const other = new TaskFlow(tf.storage, { now: clock.now });
      await tf.recurring.upsert("tick", "0 * * * * *", "tick", { n: 1 }, { queue: "ticks" });
      clock.advance(60_000); // 09:00:00 is due
      const results = await Promise.all([
        scheduleRecurring(tf),
        scheduleRecurring(other),
        scheduleRecurring(tf),
      ]);
      assert.equal(results.reduce((n, r) => n + r.enqueued, 0), 1);
      const at = Date.UTC(2026, 0, 5, 9, 0, 0);
      const job = await tf.get(occurrenceId("tick", at));
      assert.equal(job?.state, "Enqueued");
      assert.equal(job?.queue, "ticks");
      const definition = (await tf.recurring.get("tick"))!;
      assert.equal(definition.lastRun, at);
      assert.equal(definition.lastJobId, occurrenceId("tick", at));
      assert.equal(definition.nextRun, at + 60_000);
      assert.deepEqual(definition.history, [{
        at,
        jobId: occurrenceId("tick", at),
        by: "schedule",
      }]);
      assert.equal(results[0].nextDue, at + 60_000);
      assert.equal((await tf.counts()).totals.created, 1);
    },
  );

  test("misfire: once runs one catch-up, skip none, all each (bounded)", async (tf, clock) => {
    for (const misfire of ["once", "skip", "all"] as const) {
      await tf.recurring.upsert(misfire, "0 * * * * *", `job.${misfire}`, null, { misfire });
    }
    clock.advance(60_000 + 10 * 60_000 + 45_000); // ten minutes down, 45 s past the minute
    await scheduleRecurring(tf);
    const counts = await tf.counts();
    assert.equal(counts.totals.created, 1 + 0 + 11);
    assert.equal((await tf.recurring.get("all"))!.history.length, 11);
    assert.equal((await tf.recurring.get("skip"))!.lastRun, undefined);
    for (const id of ["once", "skip", "all"]) {
      assert.equal((await tf.recurring.get(id))!.nextRun, Date.UTC(2026, 0, 5, 9, 11, 0));
    }
    clock.advance(15_000); // 09:11:00: on time, so skip runs it too
    await scheduleRecurring(tf);
    assert.equal((await tf.recurring.get("skip"))!.lastRun, Date.UTC(2026, 0, 5, 9, 11, 0));
  });

  test("pause, resume, trigger and remove", async (tf, clock) => {
    await tf.recurring.upsert("r", "0 * * * * *", "r", null);
    const paused = await tf.recurring.pause("r");
    assert.equal(paused.paused, true);
    assert.equal(paused.nextRun, undefined);
    clock.advance(5 * 60_000);
    assert.equal((await scheduleRecurring(tf)).enqueued, 0);
    const id = await tf.recurring.trigger("r");
    assert.equal((await tf.get(id))!.state, "Enqueued");
    const afterTrigger = (await tf.recurring.get("r"))!;
    assert.equal(afterTrigger.lastJobId, id);
    assert.equal(afterTrigger.history[0].by, "trigger");
    const resumed = await tf.recurring.resume("r");
    assert.equal(resumed.paused, false);
    assert.equal(
      resumed.nextRun,
      Date.UTC(2026, 0, 5, 9, 5, 0),
      "missed occurrences are skipped on resume",
    );
    const replaced = await tf.recurring.upsert("r", "0 0 * * * *", "r", null);
    assert.equal(replaced.history.length, 1, "history survives a replace");
    await tf.recurring.remove("r");
    assert.equal(await tf.recurring.get("r"), null);
    await assert.rejects(tf.recurring.remove("r"), JobNotFoundError);
    await assert.rejects(tf.recurring.trigger("r"), JobNotFoundError);
    await assert.rejects(tf.recurring.pause("r"), JobNotFoundError);
  });

  test("args over the backend's limit and options upsert does not take are refused", async (tf) => {
    const limit = tf.storage.limits.args;
    await assert.rejects(
      tf.recurring.upsert("big", "* * * * *", "x", { blob: "x".repeat(limit) }),
      (e: unknown) =>
        e instanceof PayloadTooLargeError &&
        new RegExp(`args is ${limit + 11} bytes as JSON, over the limit of ${limit}`).test(
          e.message,
        ),
    );
    await assert.rejects(
      tf.recurring.upsert("a", "* * * * *", "x", {}, { timeoutMs: 1e300 }),
      /invalid options\.timeoutMs 1e\+300/,
    );
    await assert.rejects(
      tf.recurring.upsert("a", "* * * * *", "x", {}, { timezon: "UTC" } as never),
      /unknown option "timezon" \(did you mean "timezone"\?\)/,
    );
    assert.deepEqual(await tf.recurring.list(), []);
  });

  test("a broken definition is marked once, skipped, and the others go on", async (tf, clock) => {
    const good = await tf.recurring.upsert("z-good", "0 * * * * *", "tick", null);
    const { limit } = { limit: tf.storage.limits.args };
    // Written as an older version or a changed backend could have left them; they sort first.
    const broken: Record<string, Record<string, unknown>> = {
      "a-big": { args: { blob: "x".repeat(limit) } },
      "b-cron": { cron: "61 * * * *" },
      "c-corrupt": { cron: 42 },
      "d-name": { name: "bad name!" },
      "e-history": { history: "none" },
    };
    for (const [id, fields] of Object.entries(broken)) {
      assert.ok(await tf.storage.recurring.put({ ...good, id, version: 1, ...fields }, 0));
    }
    clock.advance(60_000);
    const [first, second] = await Promise.all([scheduleRecurring(tf), scheduleRecurring(tf)]);
    const reported = [...first.broken, ...second.broken].map((b) => b.id).sort();
    assert.deepEqual(reported, Object.keys(broken), "each marked, and reported by one scheduler");
    assert.equal(first.enqueued + second.enqueued, 1, "the good one ran");
    assert.equal((await tf.recurring.get("z-good"))!.history.length, 1);
    const codes = Object.fromEntries(
      (await tf.recurring.list()).map((r) => [r.id, r.lastError?.code]),
    );
    assert.deepEqual(codes, {
      "a-big": "PAYLOAD_TOO_LARGE",
      "b-cron": "INVALID_CRON",
      "c-corrupt": "CORRUPT_RECORD",
      "d-name": "INVALID_NAME",
      "e-history": "CORRUPT_RECORD",
      "z-good": undefined,
    });
    const big = (await tf.recurring.get("a-big"))!;
    assert.match(big.lastError!.message, /args is \d+ bytes as JSON, over the limit/);
    assert.equal(big.lastError!.at, clock.now());

    clock.advance(60_000);
    const later = await scheduleRecurring(tf);
    assert.deepEqual(later.broken, [], "skipped, not reported again");
    assert.equal(later.enqueued, 1);
    assert.equal((await tf.recurring.get("a-big"))!.version, big.version, "left alone");

    // Changing a definition clears its mark: upsert, resume, or a trigger that works.
    const fixed = await tf.recurring.upsert("a-big", "0 * * * * *", "tick", { small: true });
    assert.equal(fixed.lastError, undefined);
    const mark = { message: "earlier failure", at: 1 };
    assert.ok(
      await tf.storage.recurring.put({ ...good, id: "f-resume", version: 1, lastError: mark }, 0),
    );
    assert.ok(
      await tf.storage.recurring.put({ ...good, id: "g-trigger", version: 1, lastError: mark }, 0),
    );
    assert.equal((await tf.recurring.resume("f-resume")).lastError, undefined);
    await tf.recurring.trigger("g-trigger");
    assert.equal((await tf.recurring.get("g-trigger"))!.lastError, undefined);
    await assert.rejects(tf.recurring.trigger("d-name"), /invalid job name "bad name!"/);
    assert.ok((await tf.recurring.get("d-name"))!.lastError, "a failed trigger keeps the mark");
    clock.advance(60_000);
    const after = await scheduleRecurring(tf);
    assert.equal(after.enqueued, 4, "z-good, a-big fixed, f-resume, g-trigger; not d-name");
  });
}
