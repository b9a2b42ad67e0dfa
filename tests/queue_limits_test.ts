/**
 * @module
 * The pure limiter decisions: concurrency, the sliding rate window (with its boundaries),
 * partitions, round robin, release and rebuild.
 */

import assert from "node:assert/strict";
import { configText, type QueueConfig, rateText } from "../lib/queues/config.ts";
import {
  admit,
  emptyLimiter,
  type LimitedJob,
  type LimiterState,
  release,
} from "../lib/queues/limiter.ts";
import { chooseJobs, roundRobin } from "../lib/queues/fair.ts";
import { slotWidth, takeSlot } from "../lib/queues/rate.ts";

const mail: LimitedJob = { queue: "mail" };

/** Admits `n` jobs at `now`, failing the test if any is refused. */
function admitAll(config: QueueConfig, state: LimiterState, jobs: LimitedJob[], now: number) {
  for (const job of jobs) {
    const verdict = admit(config, state, job, now);
    assert.ok(verdict.ok, `refused at ${now}: ${verdict.ok ? "" : verdict.reason.text}`);
    state = verdict.state;
  }
  return state;
}

Deno.test("concurrency: admits up to the limit, then says why, and release frees one", () => {
  const config = { concurrency: 2 };
  let state = admitAll(config, emptyLimiter(), [mail, mail], 0);
  assert.equal(state.running, 2);
  const third = admit(config, state, mail, 0);
  assert.equal(third.ok, false);
  if (!third.ok) {
    assert.equal(third.reason.text, "queue mail at its concurrency limit 2");
    assert.deepEqual(third.reason, {
      queue: "mail",
      limit: "concurrency",
      max: 2,
      text: "queue mail at its concurrency limit 2",
    });
  }
  state = release(state, mail);
  assert.equal(state.running, 1);
  assert.ok(admit(config, state, mail, 0).ok);
  // A release repeated (reaper after outcome) never frees a slot that was not taken.
  assert.equal(release(release(release(state, mail), mail), mail).running, 0);
});

Deno.test("rate: the words say how long until the next slot", () => {
  const config = { rateLimit: { max: 100, perMs: 1_000 } };
  const state = admitAll(config, emptyLimiter(), Array(100).fill(mail), 0);
  const refused = admit(config, state, mail, 975);
  assert.equal(refused.ok, false);
  if (!refused.ok) {
    // The slot [0, 16) holds the starts at 0: it leaves the window when its last start does.
    assert.equal(slotWidth(config.rateLimit), 16);
    assert.equal(refused.reason.text, "rate limit 100/s: next slot in 25 ms");
    assert.equal(refused.reason.limit === "rate" && refused.reason.retryInMs, 25);
  }
  assert.equal(admit(config, state, mail, 999).ok, false);
  assert.ok(admit(config, state, mail, 1_000).ok);
});

Deno.test("rate: no double burst across a window boundary (unlike a fixed window)", () => {
  const config = { rateLimit: { max: 10, perMs: 1_000 } };
  // Ten starts at the end of one second...
  const state = admitAll(config, emptyLimiter(), Array(10).fill(mail), 999);
  // ...leave no room at the start of the next one, nor anywhere until they leave the window.
  for (const now of [1_000, 1_001, 1_500, 1_998]) {
    assert.equal(admit(config, state, mail, now).ok, false, `admitted at ${now}`);
  }
  // A burst waits exactly one window: its slot's last start is the burst's time.
  assert.equal(admit(config, state, mail, 1_998).ok, false);
  assert.ok(admit(config, state, mail, 1_999).ok);
});

Deno.test("rate: at most max starts in any window, and a start waits less than one slot", () => {
  // A seeded generator, so a failure replays.
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (const rate of [{ max: 1, perMs: 1 }, { max: 3, perMs: 100 }, { max: 50, perMs: 7_000 }]) {
    let window = undefined;
    const starts: number[] = [];
    let now = 0;
    for (let i = 0; i < 3_000; i++) {
      now += Math.floor(random() * (rate.perMs / rate.max) * 2);
      const verdict = takeSlot(window, rate, now);
      const inWindow = starts.filter((at) => at > now - rate.perMs).length;
      if (verdict.ok) {
        window = verdict.window;
        starts.push(now);
        assert.ok(inWindow < rate.max, `admitted a start over ${rate.max} at ${now}`);
      } else {
        // The exact window would free a slot when the max-th newest start leaves it.
        const exact = starts[starts.length - rate.max] + rate.perMs - now;
        assert.ok(verdict.retryInMs >= exact, `retry ${verdict.retryInMs} < ${exact}`);
        assert.ok(verdict.retryInMs < exact + slotWidth(rate), `retry ${verdict.retryInMs}`);
      }
      assert.ok((window?.slots.length ?? 0) <= 65, "the window record stays bounded");
    }
    assert.ok(starts.length > 100, `only ${starts.length} starts for ${JSON.stringify(rate)}`);
  }
});

Deno.test("rate: a changed window keeps recent starts counted", () => {
  const state = admitAll({ rateLimit: { max: 2, perMs: 1_000 } }, emptyLimiter(), [mail, mail], 0);
  const wider = { rateLimit: { max: 2, perMs: 60_000 } };
  assert.equal(admit(wider, state, mail, 30_000).ok, false);
  // The starts at 0 move to the wider slot [0, 938), counted until their last start leaves.
  assert.equal(admit(wider, state, mail, 59_999).ok, false);
  assert.ok(admit(wider, state, mail, 60_000).ok);
});

Deno.test("partitions: each key has its own limit; the queue's limit comes first", () => {
  const config: QueueConfig = { concurrency: 3, partition: { concurrency: 1 } };
  const acme = { queue: "mail", partition: "acme" };
  const beta = { queue: "mail", partition: "beta" };
  let state = admitAll(config, emptyLimiter(), [acme, beta], 0);
  assert.deepEqual(state.partitions, { acme: { running: 1 }, beta: { running: 1 } });
  const second = admit(config, state, acme, 0);
  assert.equal(
    !second.ok && second.reason.text,
    "partition acme at its limit: 1 running at once in queue mail",
  );
  state = admitAll(config, state, [mail], 0); // no key: only the queue's limits
  const full = admit(config, state, { queue: "mail", partition: "gamma" }, 0);
  assert.equal(!full.ok && full.reason.text, "queue mail at its concurrency limit 3");
  state = release(state, acme);
  assert.deepEqual(state.partitions, { beta: { running: 1 } });
  assert.ok(admit(config, state, acme, 0).ok);
});

Deno.test("partitions: a partition rate limit names the partition", () => {
  const config = { partition: { rateLimit: { max: 1, perMs: 60_000 } } };
  const acme = { queue: "mail", partition: "acme" };
  const state = admitAll(config, emptyLimiter(), [acme, { queue: "mail", partition: "b" }], 0);
  const refused = admit(config, state, acme, 1_000);
  assert.match(
    !refused.ok ? refused.reason.text : "",
    /^partition acme rate limit 1\/min: next slot in \d+ ms$/,
  );
  // Partitions whose starts left the window are dropped from the record.
  const idle = release(release(state, acme), { queue: "mail", partition: "b" });
  assert.deepEqual(Object.keys(idle.partitions).sort(), ["acme", "b"]); // starts still counted
  const later = admitAll(config, idle, [acme], 61_000);
  assert.deepEqual(Object.keys(later.partitions), ["acme"]);
});

Deno.test("round robin: partitions take turns, resuming after the last one served", () => {
  const jobs = ["a1", "a2", "a3", "b1", "c1", "c2"].map((id) => ({ id, partition: id[0] }));
  const ids = (list: { id: string }[]) => list.map((j) => j.id);
  assert.deepEqual(ids(roundRobin(jobs)), ["a1", "b1", "c1", "a2", "c2", "a3"]);
  assert.deepEqual(ids(roundRobin(jobs, "a")), ["b1", "c1", "a1", "c2", "a2", "a3"]);
  assert.deepEqual(ids(roundRobin(jobs, "c")), ["a1", "b1", "c1", "a2", "c2", "a3"]);
  const mixed = [{ id: "x" }, { id: "a1", partition: "a" }, { id: "y" }];
  assert.deepEqual(ids(roundRobin(mixed)), ["x", "a1", "y"]);
});

Deno.test("chooseJobs: skips full partitions, serves others, and says why the rest wait", () => {
  const config: QueueConfig = { partition: { concurrency: 1 } };
  const jobs = ["acme-1", "acme-2", "acme-3", "beta-1"].map((id) => ({
    id,
    queue: "mail",
    partition: id.split("-")[0],
  }));
  const choice = chooseJobs(config, emptyLimiter(), jobs, { now: 0, want: 10 });
  assert.deepEqual(choice.admitted.map((j) => j.id), ["acme-1", "beta-1"]);
  assert.deepEqual([...choice.waiting.keys()], ["acme-2", "acme-3"]);
  assert.equal(
    choice.waiting.get("acme-2")?.text,
    "partition acme at its limit: 1 running at once in queue mail",
  );
  assert.equal(choice.state.running, 2);
  assert.equal(choice.state.lastPartition, "beta");
  // The next claim starts after beta: acme first again, once its slot is released.
  const next = chooseJobs(config, release(choice.state, jobs[0]), jobs.slice(1), {
    now: 0,
    want: 1,
  });
  assert.deepEqual(next.admitted.map((j) => j.id), ["acme-2"]);
});

Deno.test("chooseJobs: stops at want and leaves the state alone when nothing fits", () => {
  const config = { concurrency: 1 };
  const jobs = [{ id: "1", queue: "q" }, { id: "2", queue: "q" }];
  assert.equal(chooseJobs(config, emptyLimiter(), jobs, { now: 0, want: 0 }).admitted.length, 0);
  const full = admitAll(config, emptyLimiter(), [{ queue: "q" }], 0);
  const choice = chooseJobs(config, full, jobs, { now: 0, want: 5 });
  assert.equal(choice.admitted.length, 0);
  assert.equal(choice.state, full);
  assert.equal(choice.waiting.size, 2);
});

Deno.test("rate and config words", () => {
  assert.equal(rateText({ max: 100, perMs: 1_000 }), "100/s");
  assert.equal(rateText({ max: 5, perMs: 60_000 }), "5/min");
  assert.equal(rateText({ max: 5, perMs: 120_000 }), "5/2min");
  assert.equal(rateText({ max: 5, perMs: 250 }), "5/250ms");
  assert.equal(rateText({ max: 1, perMs: 86_400_000 }), "1/d");
  assert.equal(configText({}), "no limits");
  assert.equal(
    configText({
      concurrency: 5,
      rateLimit: { max: 100, perMs: 1_000 },
      partition: { concurrency: 1 },
    }),
    "concurrency 5, rate 100/s, per partition: concurrency 1",
  );
});
