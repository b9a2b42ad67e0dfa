/**
 * @module
 * The ARGV of one call of the append script (`lua/append.ts`): per commit its part, and the
 * call's index moves, record writes, leases and counters merged per key, computed with the
 * same `effectsOf` as the other backends.
 */

import type { JobRecord } from "../../lib/job.ts";
import { DURATION_BUCKETS_MS, effectsOf, isFinal } from "../effects.ts";
import {
  encodeEvent,
  encodeRecord,
  IMPLIED,
  impliedCreated,
  isImpliedCreated,
  sameImplied,
} from "../log_codec.ts";
import { type Change, type Commit, RESOLUTIONS } from "../storage.ts";
import { type Keys, placeOf } from "./keys.ts";

/** Largest record a wake-up carries (every subscribed worker receives it). */
const MAX_WAKE_RECORD = 8 * 1024;
/** Most arguments of one operation (the script passes them to `unpack`). */
const OP_ARGS = 1_000;

/**
 * Redis stores a small sorted set as a listpack, where every insert scans and shifts the whole
 * set, which made claim batches into the Processing index and the lease set the costliest index
 * moves. A member longer than `zset-max-listpack-value` (64 bytes) makes Redis use a skiplist,
 * and the set is never empty, so it stays one. The keepers are invisible: the Processing
 * keeper names no record (listings skip it) and the lease keeper is due never.
 */
export const PROCESSING_KEEPER = "0".repeat(16) +
  "~ keeps this sorted set a skiplist (see storage/lua/append.ts) ~";
/** The lease set's keeper (score +inf), see {@link PROCESSING_KEEPER}. */
export const LEASES_KEEPER = "~ keeps this sorted set a skiplist (see storage/lua/append.ts) ~~~";
/**
 * The same for the lease hash (job id → holder): a small hash is a listpack too, where every
 * HSET scans all fields. A field longer than `hash-max-listpack-value` (64 bytes) makes it a
 * hashtable for good. The keeper names no job, and no lease set member names it.
 */
export const LEASE_KEEPER =
  "~ keeps this hash a hashtable, not a listpack (see storage/lua/append.ts) ~";

/** A bucket hit the script counts with HINCRBY, setting the expiry when the field is new. */
interface BucketOp {
  increment: number;
  expiry: number;
}

/**
 * The writes of one append call, merged per key as if every commit of the call applies (the
 * script refuses the whole call otherwise): per commit its ARGV part, and for the call the
 * operations. A job appears in at most one change of a call ({@link AppendCall.holds}), so
 * no two operations touch the same member and their order does not matter.
 */
export class AppendCall {
  /** Per-commit ARGV parts, in order (see the script's header). */
  readonly commits: string[] = [];
  /** Changes in this call. */
  changes = 0;
  /** Per capped change: its number, its queue's Processing gauge field, its limit. */
  readonly caps: string[] = [];
  /** Per change writing a setting: its number, the setting's id, expected version, JSON. */
  readonly puts: string[] = [];
  /** Characters of ARGV so far (a bound on the call's size). */
  chars = 0;
  /** Whether a commit makes a job Enqueued or Scheduled (workers are woken). */
  wake = false;
  /**
   * Every change creates one job that is not final, with no cap or setting: the create script
   * (`lua/create.ts`) can write the call.
   */
  creates = true;
  /** The record JSON of the one job this call makes Enqueued, "" for none, null for several. */
  #enqueued: string | null = "";
  /** The number of the change holding that job. */
  #enqueuedIn = 0;
  #keys: Keys;
  #replay: boolean;
  #ids = new Set<string>();
  /** Per key: members to add (score, member, ...) and to remove. */
  #zsets = new Map<string, { add: string[]; remove: string[] }>();
  /** Per hash: fields to set (field, value, ...) and to delete. */
  #hashes = new Map<string, { add: string[]; remove: string[] }>();
  #counters = new Map<string, Map<string, number>>();
  #buckets = new Map<string, Map<string, BucketOp>>();
  #bucketKeys = new Map<string, Map<number, string>>();
  #statKeys = new Map<string, Map<number, string>>();
  /** Unique claims: change number (from 1), key, expected holder ("" for none), job id, ... */
  #claims: string[] = [];
  /** The keys claimed in this call (a second claim of one goes in the next call). */
  #claimed = new Set<string>();

  /** A call on the keys of one prefix; `replay` (rebuild) writes no log, stream or wake-up. */
  constructor(keys: Keys, replay = false) {
    this.#keys = keys;
    this.#replay = replay;
  }

  /**
   * True when one of `commits`' jobs, or a unique key one claims, is already in this call (it
   * must go in the next one: the create script compares each key with its stored holder only).
   */
  holds(commits: readonly Commit[]): boolean {
    return commits.some((commit) =>
      this.#ids.has(commit.id) || (!!commit.unique && this.#claimed.has(commit.unique.key))
    );
  }

  /** Adds a change: its commits, each built on `before` (null for a new job), and its cap. */
  add(
    commits: readonly { commit: Commit; before: JobRecord | null }[],
    guards: Pick<Change, "cap" | "setting"> = {},
  ): void {
    this.changes++;
    const { cap, setting } = guards;
    if (cap || setting || commits.length !== 1 || commits[0].before || this.#replay) {
      this.creates = false;
    }
    if (setting) {
      const { record, expect } = setting;
      this.puts.push(String(this.changes), record.id, `${expect}`, JSON.stringify(record));
    }
    if (cap) {
      this.caps.push(String(this.changes), gaugeField(cap.queue, "Processing"), `${cap.max}`);
    }
    this.commits.push(String(commits.length));
    for (const { commit } of commits) {
      if (!commit.unique || this.#replay) continue;
      const { key, holder } = commit.unique;
      // The script sets the key to its job from this claim (it is not sent again to be set).
      this.#claims.push(String(this.changes), key, holder ?? "", commit.id);
      this.#claimed.add(key);
      this.chars += key.length;
    }
    for (const { commit, before } of commits) this.#commit(commit, before);
  }

  /**
   * The wake-up's message: the record of the one job this call makes Enqueued when it is small
   * (a waiting worker claims it without reading it first), else "1".
   */
  get wakeMessage(): string {
    const json = this.#enqueued;
    return json && json.length <= MAX_WAKE_RECORD ? json : "1";
  }

  /** The create script's wake-up message: "=<k>" stands for the k-th job's record. */
  get createdWakeMessage(): string {
    const message = this.wakeMessage;
    return message === "1" ? message : `=${this.#enqueuedIn}`;
  }

  /**
   * The jobs section of the create script's ARGV (see `lua/create.ts`): per job its id,
   * position, record and events, taken from the commit parts and the records to write.
   */
  created(): string[] {
    const out = [String(this.changes)];
    const parts = this.commits;
    const records = this.#hashes.get(this.#keys.jobs)!.add;
    // Each change is "1", then id, built, position, part, guess, implied, count, events; the
    // records are id, JSON, ... in the same order.
    for (let i = 0, j = 1; i < parts.length; j += 2) {
      const count = parts[i + 7], end = i + 8 + Number(count);
      out.push(parts[i + 1], parts[i + 3], records[j], count);
      for (let e = i + 8; e < end; e++) out.push(parts[e]);
      i = end;
    }
    return out;
  }

  /** Number of ARGV entries so far (commit parts; operations are a fraction of it). */
  get args(): number {
    return this.commits.length;
  }

  /** Adds one commit (checked by the caller with `checkCommit`). */
  #commit(commit: Commit, before: JobRecord | null): void {
    const k = this.#keys;
    const { id, record } = commit;
    this.#ids.add(id);
    const from = before ? placeOf(before) : undefined, to = placeOf(record);
    const base = commit.expect;
    const events = this.#replay ? [] : this.#lines(commit, base);
    const built = from?.position ?? "";
    // A job entering a final state collapses into one `done` field (record line and log, see
    // `../log_codec.ts`); one leaving it is a list again: the script needs the created event
    // the stored record implies, to expand the line standing for it. A log's created line
    // marked as implied becomes that line as it collapses, unless the record now implies
    // another (a damaged record; then the mark goes).
    const guess = before && !sameImplied(before, record) ? "" : IMPLIED;
    let part = "", implied = "", json = "";
    if (isFinal(record.state)) {
      this.creates = false;
      const n = commit.events.length;
      part = encodeRecord(record, n && base + n > 1 ? commit.events[n - 1] : undefined);
      this.#room(this.#hashes, k.jobs).remove.push(id);
      this.#room(this.#hashes, k.pos).remove.push(id);
    } else {
      json = JSON.stringify(record);
      this.chars += json.length;
      this.#room(this.#hashes, k.jobs).add.push(id, json);
    }
    if (before && isFinal(before.state)) {
      implied = IMPLIED + encodeEvent(impliedCreated(before), 0);
    }
    this.commits.push(id, built, to.position, part, guess, implied, String(events.length));
    for (const event of events) {
      this.commits.push(event);
      this.chars += event.length;
    }
    this.chars += id.length + built.length + to.position.length + part.length + guess.length +
      implied.length;

    const effects = effectsOf(before, commit);
    if (from && effects.removeState) {
      this.#room(this.#zsets, k.state(before!.state)).remove.push(from.stateMember);
      if (from.readyMember) {
        this.#room(this.#zsets, k.ready(before!.queue)).remove.push(from.readyMember);
      }
      if (from.dueScore) this.#room(this.#zsets, k.due).remove.push(id);
    }
    if (effects.addState) {
      this.#room(this.#zsets, k.state(record.state)).add.push("0", to.stateMember);
      if (to.readyMember) {
        this.#room(this.#zsets, k.ready(record.queue)).add.push("0", to.readyMember);
      }
      if (to.dueScore) this.#room(this.#zsets, k.due).add.push(to.dueScore, id);
      if (!this.#replay && (record.state === "Enqueued" || record.state === "Scheduled")) {
        this.wake = true;
      }
      if (record.state === "Enqueued") {
        this.#enqueued = this.#enqueued === "" ? json : null;
        this.#enqueuedIn = this.changes;
      }
    }
    if (effects.addName) {
      const { name, createdAt } = effects.addName;
      this.#room(this.#zsets, k.names).add.push("0", nameMember(name, createdAt, id));
    }
    if (commit.lease) {
      this.#room(this.#hashes, k.lease).add.push(id, commit.lease.serverId);
      this.#room(this.#zsets, k.leases).add.push(String(commit.lease.until), id);
    } else if (effects.dropLease) {
      this.#room(this.#hashes, k.lease).remove.push(id);
      this.#room(this.#zsets, k.leases).remove.push(id);
    }
    for (const { queue, state, delta } of effects.gauges) {
      this.#count(k.gauges, gaugeField(queue, state), delta);
    }
    for (const total of effects.totals) this.#count(k.totals, total, 1);
    if (effects.retrying) this.#count(k.totals, "retrying", effects.retrying);
    for (const { bucket, ms } of effects.durations) {
      this.#count(k.totals, DURATION_FIELDS[bucket], 1);
      this.#count(k.totals, "duration_ms", Math.max(0, Math.round(ms)));
    }
    if (effects.batch) {
      for (const { kind, delta } of effects.batch.deltas) {
        this.#count(k.batchCount(effects.batch.id), kind, delta);
      }
    }
    for (const hit of effects.buckets) {
      // Keyed by resolution and start first: the key's text is made once per bucket and call.
      let starts = this.#bucketKeys.get(hit.resolution);
      if (!starts) this.#bucketKeys.set(hit.resolution, starts = new Map());
      let key = starts.get(hit.at);
      if (key === undefined) starts.set(hit.at, key = k.bucket(hit.resolution, hit.at));
      let fields = this.#buckets.get(key);
      if (!fields) this.#buckets.set(key, fields = new Map());
      const op = fields.get(hit.kind);
      if (op) op.increment++;
      else {
        fields.set(hit.kind, {
          increment: 1,
          expiry: hit.at + RESOLUTIONS[hit.resolution].keepMs,
        });
      }
    }
    for (const { resolution, at, field, n } of effects.stats) {
      let starts = this.#statKeys.get(resolution);
      if (!starts) this.#statKeys.set(resolution, starts = new Map());
      let key = starts.get(at);
      if (key === undefined) starts.set(at, key = k.stat(resolution, at));
      if (resolution === "total") {
        this.#count(key, field, n);
        continue;
      }
      let fields = this.#buckets.get(key);
      if (!fields) this.#buckets.set(key, fields = new Map());
      const op = fields.get(field);
      if (op) op.increment += n;
      else fields.set(field, { increment: n, expiry: at + RESOLUTIONS[resolution].keepMs });
    }
  }

  /**
   * A commit's event lines. A new job's created event that its record implies is marked so
   * ({@link IMPLIED} before it): collapsing the log replaces it without comparing the two, and
   * the args are not encoded a second time for that.
   */
  #lines(commit: Commit, base: number): string[] {
    const { events, record } = commit;
    return events.map((event, i) => {
      const line = encodeEvent(event, base + i);
      return base + i === 0 && isImpliedCreated(event, record) ? IMPLIED + line : line;
    });
  }

  #room(
    rooms: Map<string, { add: string[]; remove: string[] }>,
    key: string,
  ): { add: string[]; remove: string[] } {
    let room = rooms.get(key);
    if (!room) rooms.set(key, room = { add: [], remove: [] });
    return room;
  }

  #count(key: string, field: string, delta: number): void {
    let fields = this.#counters.get(key);
    if (!fields) this.#counters.set(key, fields = new Map());
    fields.set(field, (fields.get(field) ?? 0) + delta);
  }

  /** The keeper (score, member) of a small, busy sorted set, added first with every insert. */
  #keeper(key: string): [string, string] | undefined {
    if (key === this.#keys.leases) return ["+inf", LEASES_KEEPER];
    if (key === this.#keys.state("Processing")) return ["0", PROCESSING_KEEPER];
    return undefined;
  }

  /** The append script's claims section of ARGV (see its header). */
  claims(): string[] {
    return [String(this.#claims.length / 4), ...this.#claims];
  }

  /** The create script's claims section (see `lua/create.ts`): per change its key and holder. */
  createClaims(): string[] {
    const claims = this.#claims;
    if (!claims.length) return ["0"];
    const out = [String(this.changes)];
    for (let c = 1, q = 0; c <= this.changes; c++) {
      if (claims[q] !== String(c)) out.push("", "");
      else out.push(claims[q + 1], claims[q + 2]), q += 4;
    }
    return out;
  }

  /**
   * The operations section of ARGV (see the script's header); `records: false` leaves out the
   * record writes (the create script takes them with the jobs).
   */
  operations(records = true): string[] {
    const out: string[] = [""];
    let count = 0;
    const op = (command: string, key: string, args: string[], width: number) => {
      const most = OP_ARGS - (OP_ARGS % width);
      for (let s = 0; s < args.length; s += most) {
        const part = args.length <= most ? args : args.slice(s, s + most);
        out.push(command, key, String(part.length));
        for (const arg of part) out.push(arg);
        count++;
      }
    };
    for (const [key, { add, remove }] of this.#hashes) {
      if (!records && key === this.#keys.jobs) continue;
      op("HDEL", key, remove, 1);
      const keeper = add.length && key === this.#keys.lease ? [LEASE_KEEPER, ""] : [];
      op("HSET", key, keeper.length ? [...keeper, ...add] : add, 2);
    }
    for (const [key, { add, remove }] of this.#zsets) {
      op("ZREM", key, remove, 1);
      const keeper = add.length ? this.#keeper(key) : undefined;
      op("ZADD", key, keeper ? [...keeper, ...add] : add, 2);
    }
    for (const [key, fields] of this.#counters) {
      for (const [field, delta] of fields) {
        if (delta !== 0) op("HINCRBY", key, [field, String(delta)], 2);
      }
    }
    for (const [key, fields] of this.#buckets) {
      for (const [field, { increment, expiry }] of fields) {
        op("BUCKET", key, [field, String(increment), String(expiry)], 3);
      }
    }
    out[0] = String(count);
    return out;
  }
}

/** The totals field of each duration bucket. */
export const DURATION_FIELDS = Array.from(
  { length: DURATION_BUCKETS_MS.length + 1 },
  (_, bucket) => `duration:${bucket}`,
);

/** Gauge fields (`queue|state`) by queue and state, made once (bounded: cleared when large). */
const gaugeFields = new Map<string, Map<string, string>>();

/** The gauges hash's field of a queue and state (`queue|state`), as every script writes it. */
export function gaugeField(queue: string, state: string): string {
  let states = gaugeFields.get(queue);
  if (!states) {
    if (gaugeFields.size >= 1_000) gaugeFields.clear();
    gaugeFields.set(queue, states = new Map());
  }
  let field = states.get(state);
  if (field === undefined) states.set(state, field = `${queue}|${state}`);
  return field;
}

/** Longest timestamp we order by, so that (MAX - createdAt) sorts newest first as text. */
const MAX_TIME = 9_999_999_999_999;

/** A name-index member: sorts by name, then newest first, then id (all in byte order). */
export function nameMember(name: string, createdAt: number, id: string): string {
  return `${name}\u0000${String(MAX_TIME - createdAt).padStart(13, "0")}\u0000${id}`;
}
