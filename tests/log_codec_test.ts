/**
 * @module
 * The compact log encoding (storage/log_codec.ts): every log and record round-trips exactly,
 * the shortcuts apply only when they hold, and broken text is a typed error.
 */

import assert from "node:assert/strict";
import type { CreatedEvent, JobEvent, NewEvent } from "../lib/events.ts";
import { createCommit } from "../lib/commits.ts";
import type { JobRecord } from "../lib/job.ts";
import { fold } from "../lib/projection.ts";
import { effectsOf, historyOf } from "../storage/effects.ts";
import { CorruptRecordError } from "../storage/errors.ts";
import {
  decodeCollapsed,
  decodeCollapsedRecord,
  decodeEvent,
  decodeHistoryEvents,
  encodeCollapsed,
  encodeEvent,
  IMPLIED,
  isImpliedCreated,
  sameImplied,
} from "../storage/log_codec.ts";

const T = 1_796_619_237_419;

/** A job that was created, run, failed once, retried and succeeded. */
function finishedLog(): JobEvent[] {
  const events = [
    {
      type: "created",
      at: T,
      name: "mail.send",
      queue: "mail",
      args: { to: "a@example.com", n: [1, 2] },
      priority: 3,
      options: { attempts: 2 },
      batchId: "b1",
    },
    { type: "state", at: T, state: "Enqueued" },
    { type: "state", at: T + 5, state: "Processing", data: { serverId: "s1", leaseUntil: T + 9 } },
    { type: "progress", at: T + 6, value: 40 },
    {
      type: "state",
      at: T + 7,
      state: "Scheduled",
      reason: "retry",
      data: { runAt: T + 100, retryOf: 1, error: { name: "Error", message: "no" }, durationMs: 2 },
    },
    { type: "state", at: T + 100, state: "Enqueued" },
    { type: "log", at: T + 101, message: "line\nbreak" },
    {
      type: "state",
      at: T + 102,
      state: "Processing",
      data: { serverId: "s2", leaseUntil: T + 9 },
    },
    {
      type: "state",
      at: T + 110,
      state: "Succeeded",
      data: { result: { ok: "\n" }, durationMs: 8 },
    },
  ];
  return events.map((event, i) => ({ ...event, seq: i + 1 })) as JobEvent[];
}

Deno.test("log codec: events round-trip, seq and the state tag left out when implied", () => {
  const events = finishedLog();
  events.forEach((event, i) => {
    const line = encodeEvent(event, i);
    assert.ok(!line.includes("\n"), "one line each");
    assert.ok(!line.includes('"seq"'), `seq ${event.seq} is the place in the log`);
    assert.deepEqual(decodeEvent("j", line, i), event);
  });
  assert.equal(encodeEvent(events[1], 1), `[${T},"Enqueued"]`);
  // A seq that is not its place, a state that looks like a type tag, data 0: kept as they are.
  const odd = [
    { type: "state", at: 1, state: "Enqueued", seq: 9 },
    { type: "state", at: 2, state: ".created", seq: 2 },
    { type: "state", at: 3, state: "Failed", data: 0, seq: 3 },
    { type: "state", at: 4, state: "Failed", reason: "r", seq: 4 },
  ] as unknown as JobEvent[];
  odd.forEach((event, i) => assert.deepEqual(decodeEvent("j", encodeEvent(event, i), i), event));
});

Deno.test("log codec: a finished job is its record line and log, the created event implied", () => {
  const events = finishedLog();
  const record = fold("j1", events);
  const text = encodeCollapsed(record, events);
  const lines = text.split("\n");
  assert.equal(lines.length, 1 + events.length);
  assert.equal(lines[1], IMPLIED, "the record carries the created event");
  assert.doesNotMatch(lines[0], /"result"|"id"|"Succeeded"/, "restored from the last event");
  assert.deepEqual(decodeCollapsed("j1", text), { record, events });
  assert.deepEqual(decodeCollapsedRecord("j1", text), record);
  assert.ok(text.length < JSON.stringify(record).length + JSON.stringify(events).length);
});

Deno.test("log codec: a record that does not match its log still round-trips exactly", () => {
  const events = finishedLog();
  const real = fold("j1", events);
  const records: JobRecord[] = [
    { ...real, queue: "elsewhere", state: "Failed", stateAt: 1 },
    { ...real, result: { ok: "other" } },
    (({ result: _, ...rest }) => rest as JobRecord)(real),
    { ...real, args: "changed", createdAt: 5 },
  ];
  for (const record of records) {
    const text = encodeCollapsed(record, events);
    assert.deepEqual(decodeCollapsed("j1", text), { record, events });
    assert.deepEqual(decodeCollapsedRecord("j1", text), record);
  }
  assert.notEqual(encodeCollapsed(records[3], events).split("\n")[1], IMPLIED);
  // A log of one event: nothing is implied from it.
  const first = events.slice(0, 1);
  assert.deepEqual(decodeCollapsed("j1", encodeCollapsed(real, first)), {
    record: real,
    events: first,
  });
  assert.deepEqual(decodeCollapsedRecord("j1", encodeCollapsed(real, first)), real);
});

Deno.test("log codec: a created line marked as implied decodes as itself; only the record made from it implies it", () => {
  const events = finishedLog();
  const line = encodeEvent(events[0], 0);
  assert.deepEqual(decodeEvent("j1", IMPLIED + line, 0), events[0]);
  const record = fold("j1", events.slice(0, 2));
  assert.equal(isImpliedCreated(events[0], record), true);
  // A copy of the args (equal, not the same object) or a field the record does not carry:
  // written out, not implied.
  const copied = { ...record, args: structuredClone(record.args) };
  assert.equal(isImpliedCreated(events[0], copied), false);
  const flow = { ...events[0], flowId: "f1" } as JobEvent;
  assert.equal(isImpliedCreated(flow, fold("j1", [flow, events[1]])), false);
  assert.equal(isImpliedCreated(events[1], record), false);
  const later = fold("j1", events);
  assert.equal(sameImplied(record, later), true, "projecting keeps what the record implies");
  assert.equal(sameImplied(record, { ...later, queue: "elsewhere" }), false);
});

Deno.test("log codec: broken text is a CorruptRecordError naming the job", () => {
  for (const text of ['not json\n[1,"Enqueued"]', "{}\n{oops", "{}\n[1,2]", '[]\n[1,".log"]']) {
    assert.throws(() => decodeCollapsed("j9", text), (error: unknown) => {
      assert.ok(error instanceof CorruptRecordError);
      assert.match(error.message, /job "j9" is corrupt/);
      return true;
    });
  }
});

Deno.test("log codec: a collapsed job's log read for history counts what the whole log counts", () => {
  const events = finishedLog();
  const real = fold("j1", events);
  const odd = [
    { type: "state", at: T + 200, state: "Failed", data: 0 },
    { type: "state", at: T + 201, state: ".created" },
    { type: "state", at: T + 202, state: "Deleted", reason: "r", data: { durationMs: 3 } },
    { type: "state", at: T + 203, state: "Succeeded", data: { note: '"durationMs"' } },
    { type: "state", at: T + 204, state: "Succeeded", data: 7 },
    { type: "note", at: T + 205, text: "durationMs" },
    { type: "state", at: T + 206.5, state: "Failed", data: { durationMs: 1.5 }, seq: 40 },
  ].map((event, i) => ({ seq: events.length + i + 1, ...event })) as unknown as JobEvent[];
  const cases: Array<[JobRecord, JobEvent[]]> = [
    [real, events],
    [{ ...real, args: "changed" }, events],
    [real, [...events, ...odd]],
    [{ ...real, batchId: undefined }, events.slice(0, 1)],
  ];
  for (const [record, log] of cases) {
    const text = encodeCollapsed(record, log);
    const whole = historyOf(record, decodeCollapsed("j1", text).events);
    assert.deepEqual(historyOf(record, decodeHistoryEvents(record, text)), whole);
    // What the log adds when it is appended in one go, without the index entries.
    const appended = effectsOf(null, { id: "j1", expect: 0, events: log, record });
    assert.deepEqual(whole, {
      ...appended,
      addState: undefined,
      addName: undefined,
      gauges: [],
      retrying: 0,
    });
  }
  assert.ok(historyOf(real, events).durations.length === 2, "the retry's and the success's");
  assert.throws(
    () => decodeHistoryEvents(real, '{}\n=\n[1,"Succeeded",{"durationMs":oops}]'),
    CorruptRecordError,
  );
});

Deno.test("log codec: a traced job's created event is implied by its record too, whatever field order it was built in", () => {
  const [created, ...rest] = finishedLog();
  const { batchId: _, seq: __, ...head } = created as JobEvent & { batchId: string };
  const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  // Built as a call that adds its own fields after prepareJob's (a batch's id) would build it.
  const built = { ...head, traceparent, tracestate: "vendor=1", batchId: "b1" };
  const commit = createCommit("j2", built as Omit<CreatedEvent, "seq">, [
    rest[0] as unknown as NewEvent,
  ]);
  assert.deepEqual(Object.keys(commit.events[0]).slice(-3), ["traceparent", "tracestate", "seq"]);
  const events = [commit.events[0], ...rest];
  const record = fold("j2", events);
  assert.equal(record.traceparent, traceparent);
  assert.equal(record.tracestate, "vendor=1");
  const text = encodeCollapsed(record, events);
  assert.equal(text.split("\n")[1], IMPLIED, "no second copy of the trace context");
  assert.deepEqual(decodeCollapsed("j2", text), { record, events });
});
