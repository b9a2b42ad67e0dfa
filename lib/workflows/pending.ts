/**
 * @module
 * A writer's outcomes that tell dependents, written together: many children of one parent
 * ending at once each write the parent (its pending count), and changes built on the same
 * stored version of it would all conflict but one, round after round (or, written one after
 * another, take a round trip each while their jobs' leases run out). Outcomes that arrive while
 * such a write is in flight go together in the next one: one change, one commit per dependent.
 */

import type { AppendResult, Change, Commit, Storage } from "../../storage/storage.ts";
import { backoff, MAX_TRIES, releaseCommits } from "../changes.ts";
import { FINAL_STATES } from "../states.ts";
import { CHANGE_BUDGET, dependentCommits } from "./release.ts";

/** Commits a change may spend on the outcomes themselves (the rest on what they release). */
const HEADS_BUDGET = CHANGE_BUDGET / 3;

interface Waiting {
  commit: Commit;
  tries: number;
  resolve: (stored: boolean) => void;
  reject: (error: unknown) => void;
}

/** Writes outcomes that tell dependents, coalescing those that arrive while one is written. */
export class DependentWrites {
  #storage: Pick<Storage, "getMany">;
  #submit: (change: Change) => Promise<AppendResult>;
  #clock: { now: () => number; random: () => number };
  #queue: Waiting[] = [];
  #writing = false;

  /** Writes through `submit` (a group committer), reading dependents from `storage`. */
  constructor(
    storage: Pick<Storage, "getMany">,
    submit: (change: Change) => Promise<AppendResult>,
    clock: { now: () => number; random: () => number },
  ) {
    this.#storage = storage;
    this.#submit = submit;
    this.#clock = clock;
  }

  /** Writes `commit` with what it releases; false when its own job moved (fenced). */
  write(commit: Commit): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ commit, tries: 0, resolve, reject });
      if (!this.#writing) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length) {
        const batch = this.#take();
        try {
          await this.#writeBatch(batch);
        } catch (error) {
          for (const w of batch) w.reject(error);
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  /** The next outcomes to write together, within the change budget. */
  #take(): Waiting[] {
    const batch: Waiting[] = [];
    let spent = 0;
    while (this.#queue.length) {
      const record = this.#queue[0].commit.record;
      const cost = 1 + (record.dependents?.length ?? 0) + record.continuations.length;
      if (batch.length && spent + cost > HEADS_BUDGET) break;
      spent += cost;
      batch.push(this.#queue.shift()!);
    }
    return batch;
  }

  async #writeBatch(batch: Waiting[]): Promise<void> {
    const at = this.#clock.now();
    const heads = batch.map((w) => w.commit);
    const released: Commit[] = [];
    for (const head of heads) {
      const parent = head.record;
      if (!parent.continuations.length || !FINAL_STATES.includes(parent.state)) continue;
      const children = await this.#storage.getMany(parent.continuations.map((c) => c.id));
      released.push(...releaseCommits(parent, children, at));
    }
    const told = await dependentCommits(this.#storage, [...heads, ...released], at);
    const result = await this.#submit({ commits: [...heads, ...released, ...told] });
    if (result.ok) return batch.forEach((w) => w.resolve(true));
    const again: Waiting[] = [];
    for (const w of batch) {
      if (result.conflicts.includes(w.commit.id)) w.resolve(false);
      else if (++w.tries >= MAX_TRIES) w.resolve(false);
      else again.push(w);
    }
    if (!again.length) return;
    // Only a dependent or continuation moved meanwhile (another writer): read them again.
    await backoff(again[0].tries, this.#clock.random);
    this.#queue.unshift(...again);
  }
}
