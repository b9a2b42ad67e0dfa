import assert from "node:assert/strict";
import { compareTuples, SortedSet, type Tuple } from "../storage/memory/sorted.ts";
import { seeded } from "./helpers.ts";

Deno.test("sorted set: random adds and deletes match a sorted array, ranges page correctly", () => {
  const random = seeded(7);
  const set = new SortedSet();
  const reference = new Map<string, Tuple>();
  for (let step = 0; step < 20_000; step++) {
    const key: Tuple = [
      Math.floor(random() * 50),
      Math.floor(random() * 1_000),
      `id${Math.floor(random() * 100)}`,
    ];
    if (random() < 0.6) {
      set.add(key);
      reference.set(JSON.stringify(key), key);
    } else {
      set.delete(key);
      reference.delete(JSON.stringify(key));
    }
  }
  const expected = [...reference.values()].sort(compareTuples);
  assert.equal(set.size, expected.length);
  assert.deepEqual(set.all(), expected);
  const forward: Tuple[] = [];
  let after: Tuple | undefined;
  for (;;) {
    const page = set.range({ after, limit: 97 });
    forward.push(...page);
    if (page.length < 97) break;
    after = page.at(-1);
  }
  assert.deepEqual(forward, expected);
  const backward: Tuple[] = [];
  after = undefined;
  for (;;) {
    const page = set.range({ after, limit: 89, reverse: true });
    backward.push(...page);
    if (page.length < 89) break;
    after = page.at(-1);
  }
  assert.deepEqual(backward, [...expected].reverse());
  const until: Tuple = [25, 0, ""];
  assert.deepEqual(
    set.range({ limit: 1e9, until }),
    expected.filter((k) => compareTuples(k, until) <= 0),
  );
});
