/**
 * @module
 * The KV append path: commits are checked against their stored versionstamps and packed into
 * as few atomic operations as KV's limits allow (writes are fsync-bound, so fewer atomics is
 * more jobs per second); a failed check drops only the changes that conflicted.
 */

import { checkChange, effectsOf } from "../effects.ts";
import { PayloadTooLargeError, StorageUnavailableError } from "../errors.ts";
import type { AppendResult, Change } from "../storage.ts";
import { message, unavailable } from "../unavailable.ts";
import type { KnownRecords } from "./known.ts";
import { count, type Key, type KeyOf, moveIndexes, Sums, u64 } from "./projections.ts";
import { nextRow, type RowEntry, rowEntry } from "./rows.ts";
import { claim, claimRefused, claimsOf, readClaims, type UniqueEntry } from "./unique.ts";
import { type KvWakeups, WAKE } from "./wakeups.ts";
import type { KvFeed } from "./feed.ts";
import { refsOf } from "../feed.ts";

// Limits of one atomic operation; we stay a little under each.
export const MAX_CHECKS = 100;
const MAX_MUTATIONS = 950;
export const MAX_BYTES = 700 * 1024;
const MAX_VALUE_CHARS = 60 * 1024;
const GET_MANY = 10; // kv.getMany takes at most 10 keys
const MAX_QUEUE_DELAY = 30 * 86_400_000; // kv.enqueue's longest delay
const LOCK_RETRIES = 200; // ~5 s of waiting for another process's write lock

/** Writes of one KV storage. */
export class KvWriter {
  #kv: Deno.Kv;
  #address: string;
  #key: KeyOf;
  #wakeups: KvWakeups;
  #known: KnownRecords;
  #feed: KvFeed;

  /** Writes to `kv` (named `address` in errors) under the keys of `key`. */
  constructor(
    kv: Deno.Kv,
    address: string,
    key: KeyOf,
    parts: { wakeups: KvWakeups; known: KnownRecords; feed: KvFeed },
  ) {
    this.#kv = kv;
    this.#address = address;
    this.#key = key;
    this.#wakeups = parts.wakeups;
    this.#known = parts.known;
    this.#feed = parts.feed;
  }

  /** The database's address, for messages. */
  get address(): string {
    return this.#address;
  }

  /** Appends `changes` (see the storage contract), packed into as few atomics as fit. */
  async append(changes: readonly Change[]): Promise<AppendResult[]> {
    // A malformed commit is refused before anything is written.
    changes.forEach(checkChange);
    const results: AppendResult[] = new Array(changes.length);
    // A job (or unique key) touched twice in one call: the later change waits for a later round.
    let pending: Item[] = changes.map((change, index) => ({ change, index }));
    while (pending.length) {
      const seen = new Set<string>();
      const round: typeof pending = [];
      const later: typeof pending = [];
      for (const item of pending) {
        const ids = item.change.commits.map((c) => c.id);
        for (const key of claimsOf(item.change)) ids.push(`\0unique\0${key}`);
        if (ids.some((id) => seen.has(id))) later.push(item);
        else {
          ids.forEach((id) => seen.add(id));
          round.push(item);
        }
      }
      await this.#appendRound(round, results);
      pending = later;
    }
    return results;
  }

  async #appendRound(round: Item[], results: AppendResult[]): Promise<void> {
    const commits = round.flatMap(({ change }) => change.commits);
    const current = await this.#known.current(commits, (ids) => this.readRecords(ids));
    const claims = await readClaims(this.#kv, this.#key, commits);
    let batch: Item[] = [];
    const WAKEUPS = 2; // at most one immediate and one delayed queue message per atomic
    const FEED_HEAD = 1; // the event feed's head is checked in every atomic that appends
    let checks = FEED_HEAD, mutations = WAKEUPS, bytes = 0;
    const flush = async () => {
      if (batch.length) await this.#commitBatch(batch, { current, claims }, results);
      batch = [];
      bytes = 0;
      checks = FEED_HEAD;
      mutations = WAKEUPS;
    };
    for (const item of round) {
      const conflicts = item.change.commits
        .filter((c) =>
          (current.get(c.id)?.record?.version ?? 0) !== c.expect || claimRefused(c, claims)
        )
        .map((c) => c.id);
      if (conflicts.length) {
        results[item.index] = { ok: false, conflicts };
        continue;
      }
      item.rows = rowsOf(item.change, current);
      const size = measure(item.rows, claimsOf(item.change).length);
      if (item.change.cap) size.checks++; // its queue's gauge
      if (item.change.setting) size.checks++;
      // A handler's own writes (ctx.atomic) go in an atomic of their own: a failing check of
      // theirs must not refuse other jobs' outcomes.
      const alone = hasExtra(item.change);
      if (
        alone || checks + size.checks > MAX_CHECKS || mutations + size.mutations > MAX_MUTATIONS ||
        bytes + size.bytes > MAX_BYTES
      ) await flush();
      batch.push(item);
      checks += size.checks;
      mutations += size.mutations;
      bytes += size.bytes;
      if (alone) await flush();
    }
    await flush();
  }

  /** Commits a batch; on a failed check, drops the changes that conflicted and tries again. */
  async #commitBatch(
    batch: Item[],
    read: { current: Map<string, RowEntry>; claims: Map<string, UniqueEntry> },
    results: AppendResult[],
  ): Promise<void> {
    const { current } = read;
    let claims = read.claims;
    while (batch.length) {
      const atomic = this.#kv.atomic();
      batch = await this.#fitGuards(batch, atomic, { results, current });
      if (!batch.length || !addExtras(batch, atomic, results)) return;
      // Counters one batch moves many times are summed once per key.
      const sums = new Sums();
      let earliestDue = Infinity, ready = false;
      for (const { change, rows } of batch) {
        change.commits.forEach((commit, c) => {
          const entry = current.get(commit.id)!;
          const { row, own } = rows![c];
          atomic.check({ key: entry.key, versionstamp: entry.versionstamp });
          atomic.set(entry.key, row);
          claim(atomic, this.#key, commit, claims);
          for (const event of own) atomic.set(this.#key("ev", commit.id, event.seq), event);
          const effects = effectsOf(entry.record, commit);
          moveIndexes(atomic, this.#key, effects, commit.lease);
          count(sums, this.#key, effects);
          // A lease taken without a move (none is today) still lands in the state entry.
          if (commit.lease && !effects.addState && commit.record.state === "Processing") {
            const { stateAt, id } = commit.record;
            atomic.set(this.#key("state", "Processing", stateAt, id), commit.lease);
          }
          if (commit.record.state === "Enqueued") ready = true;
          if (commit.record.state === "Scheduled") {
            earliestDue = Math.min(earliestDue, commit.record.runAt ?? 0);
          }
        });
      }
      for (const { key, delta } of sums.values()) {
        if (delta !== 0) atomic.sum(key, u64(delta));
      }
      if (this.#wakeups.queue && ready) atomic.enqueue(WAKE);
      if (this.#wakeups.queue && earliestDue < Infinity) {
        const delay = Math.max(0, Math.min(earliestDue - Date.now(), MAX_QUEUE_DELAY));
        atomic.enqueue(WAKE, { delay });
      }
      const commits = batch.flatMap(({ change }) => change.commits);
      let outcome: Deno.KvCommitResult | Deno.KvCommitError = { ok: false };
      const turn = await this.#feed.turn();
      try {
        turn.write(atomic, refsOf(commits));
        outcome = await this.commit(atomic);
      } finally {
        turn.end(outcome.ok ? outcome.versionstamp : null);
      }
      if (outcome.ok) {
        for (const { index } of batch) results[index] = { ok: true };
        this.#known.remember(batch, outcome.versionstamp, (id) => this.#key("job", id));
        if (ready || earliestDue <= Date.now()) this.#wakeups.wake();
        if (ready || earliestDue < Infinity) this.#wakeups.touch();
        return;
      }
      // Someone else wrote one of these jobs since we read it: find which, and retry the rest.
      const fresh = await this.readRecords(commits.map((c) => c.id));
      claims = await readClaims(this.#kv, this.#key, commits, true);
      const survivors: typeof batch = [];
      for (const item of batch) {
        const conflicts = item.change.commits
          .filter((c) =>
            (fresh.get(c.id)?.record?.version ?? 0) !== c.expect || claimRefused(c, claims)
          )
          .map((c) => c.id);
        if (conflicts.length) results[item.index] = { ok: false, conflicts };
        else survivors.push(item);
      }
      // Alone in its atomic, with its jobs unchanged and the feed's head where it was: the
      // handler's own check failed.
      if (survivors.length === 1 && hasExtra(survivors[0].change) && !await turn.moved()) {
        const { change, index } = survivors.pop()!;
        results[index] = { ok: false, conflicts: change.commits.map((c) => `atomic:${c.id}`) };
      }
      for (const [id, entry] of fresh) current.set(id, entry);
      // Built again on what is there now (a rebuild may have rewritten a row at its version).
      for (const item of survivors) item.rows = rowsOf(item.change, current);
      batch = survivors;
    }
  }

  /**
   * The changes of `batch` whose caps and settings hold, the others refused; `atomic` checks
   * the Processing gauges and settings read (a claim elsewhere meanwhile fails it and the batch
   * is read again) and writes the settings. A job leaving Processing earlier in the batch frees
   * its place for the claims after it (a worker's outcome and the claim of the slot it freed
   * often share a group commit).
   */
  async #fitGuards(
    batch: Item[],
    atomic: Deno.AtomicOperation,
    { results, current }: { results: AppendResult[]; current: Map<string, RowEntry> },
  ): Promise<Item[]> {
    const queues = [...new Set(batch.flatMap(({ change }) => change.cap?.queue ?? []))];
    const settings = batch.flatMap(({ change }) => change.setting ?? []);
    if (!queues.length && !settings.length) return batch;
    const gaugeKeys = queues.map((queue) => this.#key("gauge", queue, "Processing"));
    const settingKeys = settings.map(({ record }) => this.#key("setting", record.id));
    const entries = await getMany<unknown>(this.#kv, [...gaugeKeys, ...settingKeys]);
    const used = new Map<string, number>();
    queues.forEach((queue, i) => {
      const value = (entries[i].value as Deno.KvU64 | null)?.value ?? 0n;
      used.set(queue, Number(BigInt.asIntN(64, value)));
    });
    const stored = new Map<string, number>();
    settings.forEach(({ record }, i) => {
      const value = entries[queues.length + i].value as { version?: number } | null;
      stored.set(record.id, value?.version ?? 0);
    });
    for (const entry of entries) atomic.check(entry);
    return batch.filter(({ change, index }) => {
      const { cap, setting } = change;
      // Only an unguarded change is sure to apply with the batch.
      if (!cap && !setting) {
        for (const commit of change.commits) {
          const was = current.get(commit.id)?.record;
          if (was?.state !== "Processing" || commit.record.state === "Processing") continue;
          if (used.has(was.queue)) used.set(was.queue, used.get(was.queue)! - 1);
        }
      }
      if (setting && stored.get(setting.record.id) !== setting.expect) {
        results[index] = { ok: false, conflicts: [`setting:${setting.record.id}`] };
        return false;
      }
      if (cap) {
        const after = used.get(cap.queue)! + change.commits.length;
        if (after > cap.max) {
          results[index] = { ok: false, conflicts: [], limited: true };
          return false;
        }
        used.set(cap.queue, after);
      }
      if (setting) {
        stored.set(setting.record.id, setting.record.version);
        atomic.set(this.#key("setting", setting.record.id), setting.record);
      }
      return true;
    });
  }

  /** Commits `atomic`, waiting out another process's write lock. */
  async commit(atomic: Deno.AtomicOperation): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    for (let attempt = 1;; attempt++) {
      try {
        return await atomic.commit();
      } catch (error) {
        const text = message(error);
        if (/too large/i.test(text)) {
          throw new PayloadTooLargeError("an atomic write to Deno KV", MAX_BYTES, MAX_BYTES);
        }
        // Another process holds SQLite's write lock; KV does not wait for it, so we do.
        if (/database is locked|busy/i.test(text) && attempt < LOCK_RETRIES) {
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 * attempt, 50)));
          continue;
        }
        throw unavailable(this.#address, error);
      }
    }
  }

  /** Commits an unchecked `atomic`; a refusal is an error. */
  async commitOrThrow(atomic: Deno.AtomicOperation): Promise<void> {
    const outcome = await this.commit(atomic);
    if (!outcome.ok) {
      throw new StorageUnavailableError(this.#address, "an unchecked write was refused");
    }
  }

  /** The stored rows of jobs `ids` (each once). */
  async readRecords(ids: readonly string[]): Promise<Map<string, RowEntry>> {
    const keys = [...new Set(ids)].map((id) => this.#key("job", id));
    const entries = await getMany<unknown>(this.#kv, keys);
    return new Map(entries.map((entry) => [entry.key[2] as string, rowEntry(entry)]));
  }
}

/**
 * Adds the handler's own writes of a batch's change (alone in its batch, see `#appendRound`);
 * false, with the change refused as `atomic:<id>`, when replaying them throws.
 */
function addExtras(batch: Item[], atomic: Deno.AtomicOperation, results: AppendResult[]): boolean {
  const [{ change, index }] = batch;
  if (batch.length !== 1 || !hasExtra(change)) return true;
  try {
    for (const { extra } of change.commits) extra?.(atomic);
    return true;
  } catch {
    results[index] = { ok: false, conflicts: change.commits.map((c) => `atomic:${c.id}`) };
    return false;
  }
}

/** True when a commit of `change` carries a handler's own writes. */
function hasExtra(change: Change): boolean {
  return change.commits.some((commit) => commit.extra !== undefined);
}

/** A change of an append call, with the rows its commits leave (built once it is checked). */
interface Item {
  change: Change;
  index: number;
  rows?: NewRow[];
}

type NewRow = ReturnType<typeof nextRow>;

/** The rows `change`'s commits leave, from the rows they found; a row over KV's limit is refused. */
function rowsOf(change: Change, current: Map<string, RowEntry>): NewRow[] {
  return change.commits.map((commit) => {
    const next = nextRow(current.get(commit.id)?.row ?? null, commit.record, commit.events);
    if (next.chars > MAX_VALUE_CHARS) {
      throw new PayloadTooLargeError(`job ${commit.id} record`, next.chars, MAX_VALUE_CHARS);
    }
    return next;
  });
}

/** What a change takes of an atomic: checks, mutations and (about) bytes. */
function measure(
  rows: readonly NewRow[],
  claims: number,
): { checks: number; mutations: number; bytes: number } {
  let mutations = claims, bytes = claims * 1_100;
  for (const { chars, own } of rows) {
    bytes += 2 * (chars + (own.length ? JSON.stringify(own).length : 0)) + 512;
    mutations += own.length + 16;
  }
  return { checks: rows.length + claims, mutations, bytes };
}

/** Entries of `keys`, read in parallel chunks of what one getMany takes. */
export async function getMany<T>(kv: Deno.Kv, keys: Key[]): Promise<Deno.KvEntryMaybe<T>[]> {
  const chunks: Promise<Deno.KvEntryMaybe<T>[]>[] = [];
  for (let i = 0; i < keys.length; i += GET_MANY) {
    chunks.push(kv.getMany<T[]>(keys.slice(i, i + GET_MANY)));
  }
  return (await Promise.all(chunks)).flat();
}
