/**
 * @module
 * Native claims on Redis: each claim call applies lib's commits for the candidates the previous
 * call returned (compare-and-set at the head of the queues) and returns the next candidates.
 * Claims may overlap: each takes its candidates off the cache, and an answer's candidates leave
 * out those of the claims sent after it, so overlapping claims take different jobs.
 */

import type { JobRecord } from "../../lib/job.ts";
import type { ClaimBuilder, ClaimQuery, ClaimResult, Commit } from "../storage.ts";
import { append } from "./append.ts";
import type { RedisDb } from "./context.ts";

/** Most jobs one claim call takes (the worker calls again for more). */
const MAX_CLAIM = 500;

/** A claim call in flight: the jobs it takes, and when it has settled. */
interface InFlight {
  ids: string[];
  done: Promise<void>;
  settle(): void;
}

/** The candidates and the claims in flight of one storage, per list of queues. */
export class Claims {
  /** The next ready jobs' records (JSON), as the last claim call saw them. */
  #candidates = new Map<string, string[]>();
  /** The claims in flight, oldest first. */
  #inFlight = new Map<string, InFlight[]>();
  /** The lists of queues claimed from, by key. */
  #lists = new Map<string, readonly string[]>();

  /**
   * A job just made Enqueued (its record JSON, from a wake-up): the next candidate of every list
   * of queues that holds its queue and saw none ready, with no claim in flight. If other jobs
   * are ahead of it after all, its claim is refused and the one after it reads the queues.
   */
  offer(json: string): void {
    let queue: unknown;
    try {
      queue = (JSON.parse(json) as Partial<JobRecord>).queue;
    } catch {
      return; // not a record: a plain wake-up
    }
    for (const [key, queues] of this.#lists) {
      if (!queues.includes(queue as string) || this.#inFlight.has(key)) continue;
      if (!this.#candidates.get(key)?.length) this.#candidates.set(key, [json]);
    }
  }

  /** Claims up to `query.limit` ready jobs, building each commit with `build`. */
  async claim(db: RedisDb, query: ClaimQuery, build: ClaimBuilder): Promise<ClaimResult> {
    const key = query.queues.join("\n");
    if (!this.#lists.has(key)) this.#lists.set(key, [...query.queues]);
    const limit = Math.max(0, Math.min(query.limit, MAX_CLAIM));
    const peek = Math.max(limit, Math.min(query.peek ?? limit, MAX_CLAIM));
    let candidates = this.#candidates.get(key) ?? [];
    // The claim in flight brings fresh candidates: wait for them rather than peek again.
    const before = this.#inFlight.get(key)?.at(-1);
    if (!candidates.length && before) {
      await before.done;
      candidates = this.#candidates.get(key) ?? [];
    }
    if (!candidates.length) {
      const claim = { queues: query.queues, head: 0, peek, caps: query.caps };
      candidates = (await append(db, [], { claim })).records;
      if (!candidates.length) return { claimed: [], contended: false };
    }
    const considered = candidates.slice(0, limit).map((json) => JSON.parse(json) as JobRecord);
    this.#candidates.set(key, candidates.slice(limit));
    const commits = considered.map(build).filter((c): c is Commit => c !== null);
    const claim = { queues: query.queues, head: considered.length, peek, caps: query.caps };
    const caps = query.caps ?? {};
    const mine = this.#start(key, considered);
    try {
      const { results, records } = await append(
        db,
        commits.map((commit) => {
          // Only a claim takes a slot (an expired job's deletion does not).
          const max = commit.record.state === "Processing" ? caps[commit.record.queue] : undefined;
          return {
            commits: [commit],
            cap: max === undefined ? undefined : { queue: commit.record.queue, max },
          };
        }),
        { claim },
      );
      // Claims sent after this one (answered later) take some of these candidates first.
      const taken = new Set(this.#inFlight.get(key)!.flatMap((c) => c === mine ? [] : c.ids));
      this.#candidates.set(
        key,
        taken.size ? records.filter((json) => !taken.has(idOf(json))) : records,
      );
      const claimed = commits.filter((_, i) => results[i].ok);
      const raced = results.some((result) => !result.ok && !result.limited);
      return { claimed, contended: raced };
    } finally {
      mine.settle();
    }
  }

  /** Registers a claim of `considered` on the queues of `key` until it settles. */
  #start(key: string, considered: JobRecord[]): InFlight {
    const list = this.#inFlight.get(key) ?? [];
    this.#inFlight.set(key, list);
    const { promise, resolve } = Promise.withResolvers<void>();
    const claim: InFlight = {
      ids: considered.map((record) => record.id),
      done: promise,
      settle: () => {
        list.splice(list.indexOf(claim), 1);
        if (!list.length) this.#inFlight.delete(key);
        resolve();
      },
    };
    list.push(claim);
    return claim;
  }
}

/**
 * The id of a record's JSON: records are written with their id first, so it is read off the
 * start unless it holds an escape (then the record is parsed).
 */
function idOf(json: string): string {
  if (json.startsWith('{"id":"')) {
    const end = json.indexOf('"', 7);
    const id = json.slice(7, end);
    if (end > 7 && !id.includes("\\")) return id;
  }
  return (JSON.parse(json) as JobRecord).id;
}
