/**
 * @module
 * `deno task bench` runs and reports: a smoke run (tenth size, two runs, a few scenarios) as JSON
 * and as the table. It asserts the report's shape, never a speed.
 */

import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;

async function bench(args: string[]): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/bench.ts", "--quick", "--runs", "2", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stderr: "null",
  }).output();
  assert.ok(output.success, "the benchmark exited with an error");
  return new TextDecoder().decode(output.stdout);
}

Deno.test("bench --json: one document with backend, scenario, value, unit, runs and spread", async () => {
  const report = JSON.parse(
    await bench([
      "--json",
      "--backends",
      "memory,kv-memory",
      "--only",
      "concurrency 50,idle",
    ]),
  );
  assert.match(report.machine, /cores, Deno .*load average/);
  assert.equal(report.load.length, 3);
  const rows = report.results as Array<Record<string, any>>;
  assert.deepEqual(
    rows.map((r) => `${r.backend} · ${r.scenario}`).sort(),
    [
      "kv :memory: · idle enqueue→start latency",
      "kv :memory: · process no-op, concurrency 50",
      "memory · idle enqueue→start latency",
      "memory · process no-op, concurrency 50",
    ],
  );
  for (const row of rows) {
    assert.equal(row.runs, 2);
    assert.ok(row.value > 0, `${row.scenario}: ${row.value}`);
    const [min, max] = row.spread;
    assert.ok(min <= row.value && row.value <= max, `${row.scenario}: median outside its spread`);
    assert.equal(row.unit, row.scenario.startsWith("idle") ? "ms p50" : "jobs/s");
    if (row.scenario.startsWith("idle")) assert.ok(row.extra.p99 >= row.extra.p95);
  }
});

Deno.test("bench prints a table with the load average", async () => {
  const table = await bench(["--backends", "memory", "--only", "concurrency 50"]);
  assert.match(table, /TaskFlow benchmark — \d+ cores, Deno .*, load average [\d.]+ [\d.]+ [\d.]+/);
  assert.match(table, /\| backend \| scenario \| median \| unit \| spread \(min–max\) \|/);
  assert.match(
    table,
    /\| memory \| process no-op, concurrency 50 \| [\d,]+ \| jobs\/s \| [\d,]+–[\d,]+ \|/,
  );
});

Deno.test("bench --child: one measurement in a process of its own, its figure as JSON", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/bench.ts", "--quick", "--child", "4", "--backend", "memory"],
    cwd: ROOT,
    stderr: "null",
  }).output();
  assert.ok(output.success);
  const figure = JSON.parse(new TextDecoder().decode(output.stdout).trim().split("\n").at(-1)!);
  assert.equal(figure.unit, "jobs/s");
  assert.ok(figure.value > 0);
  const unknown = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/bench.ts", "--quick", "--child", "99", "--backend", "memory"],
    cwd: ROOT,
    stdout: "null",
    stderr: "null",
  }).output();
  assert.equal(unknown.success, false, "an unknown scenario is an error, not a figure");
});

Deno.test("bench: issue 20's shapes report their figures (producers, realistic jobs, mixed load)", async () => {
  const report = JSON.parse(
    await bench(["--json", "--backends", "memory", "--only", "producers,realistic,mixed"]),
  );
  const rows = report.results as Array<Record<string, any>>;
  assert.deepEqual(rows.map((r) => r.scenario), [
    "concurrent producers (50 callers × 400 awaited enqueues)",
    "realistic jobs (2 KB args, 1 KB result, 5 ms await), c=100",
    "realistic jobs without payloads (5 ms await), c=100",
    "realistic jobs without the await (2 KB args, 1 KB result), c=100",
    "mixed: 5,000 jobs/s, 10% delayed 100 ms, 5% failing once, c=50",
  ]);
  for (const row of rows) {
    assert.ok(row.value > 0, `${row.scenario}: ${row.value}`);
    if (!row.scenario.startsWith("mixed")) assert.equal(row.unit, "jobs/s");
  }
  const mixed = rows.at(-1)!;
  assert.equal(mixed.unit, "ms p50");
  assert.ok(mixed.extra.p99 >= mixed.value && mixed.extra["jobs/s"] > 0);
});

Deno.test("bench: several worker processes share one KV file; memory has no such figure", async () => {
  const report = JSON.parse(
    await bench(["--json", "--backends", "memory,kv-disk", "--only", "2 worker processes"]),
  );
  const rows = report.results as Array<Record<string, any>>;
  const of = (backend: string) => rows.find((r) => r.backend === backend)!;
  assert.ok(of("kv disk").value > 0);
  assert.equal(of("memory").value, null, "no second process can open a memory store");
});
