/**
 * @module
 * The Redis backend: every group of transitions is one call of the append script (see
 * `lua/append.ts`), with each job's log in a Redis list and projections in hashes and sorted
 * sets (layout in `lua/layout.ts`). The script travels over a lean RESP connection of its own
 * (`resp.ts`); reads, tools and the wake-ups (pub/sub on `<prefix>:wake`) go through npm:ioredis.
 */

import { createHash } from "node:crypto";
import { Redis } from "npm:ioredis@5.11.1";
import {
  CorruptRecordError,
  InvalidOptionError,
  StorageUnavailableError,
  TaskFlowError,
} from "../errors.ts";
import type { JobEvent } from "../../lib/events.ts";
import type { JobRecord } from "../../lib/job.ts";
import type { Lease } from "../../lib/projection.ts";
import type { State } from "../../lib/states.ts";
import { decodeCursor, encodeCursor } from "../cursor.ts";
import { bucketStart, checkChange, zeroDurations, zeroStates, zeroTotals } from "../effects.ts";
import { APPEND, AppendCall } from "./lua/append.ts";
import { HEARTBEAT } from "./lua/heartbeat.ts";
import { globEscape, type Keys, keysOf, READY_ID_AT, STATE_ID_AT } from "./keys.ts";
import { PAGE } from "./lua/page.ts";
import { RECURRING } from "./lua/recurring.ts";
import { parseRedisUrl } from "./url.ts";
import { type Reply, ReplyError, RespConnection } from "./connection.ts";
import {
  type AppendResult,
  type BatchCounts,
  type Change,
  type ClaimBuilder,
  type ClaimQuery,
  type ClaimResult,
  type Commit,
  type Counts,
  type Derive,
  type Heartbeat,
  type ListQuery,
  type Notifier,
  type Page,
  type RebuildResult,
  type RecordStore,
  type RecurringRecord,
  type Resolution,
  RESOLUTIONS,
  type SearchQuery,
  type ServerInfo,
  type Storage,
  type TimelinePoint,
} from "../storage.ts";

/** Most arguments and characters sent in one append call; larger appends take several. */
const MAX_CALL_ARGS = 20_000;
const MAX_CALL_CHARS = 4 * 1024 * 1024;
/**
 * Most changes per append call: a larger append is split into calls that are pipelined, so
 * Redis runs one while the next is encoded (measured: enqueueMany of 1,000 jobs, see README).
 */
const PIPELINE_CHANGES = 250;
/** Longest wait for a connection, and for an answer (both connections). */
const CONNECT_TIMEOUT_MS = 5_000;
const COMMAND_TIMEOUT_MS = 30_000;
/** Most jobs one claim call takes (the worker calls again for more). */
const MAX_CLAIM = 500;
/** Jobs replayed per call by rebuild. */
const REBUILD_BATCH = 200;

/** Options of the Redis backend. */
export interface RedisStorageOptions {
  /** Key prefix (default `"taskflow"`); a `?prefix=` in the URL takes precedence. */
  prefix?: string;
}

type Script = (args: (string | number)[]) => Promise<unknown>;
type Scripts = Record<"tfPage" | "tfHeartbeat" | "tfRecurring", Script>;

/** SHA-1 of the append script, for EVALSHA. */
const APPEND_SHA = createHash("sha1").update(APPEND).digest("hex");

/**
 * Storage on a Redis server (6.2 or later). Not for Redis Cluster: scripts build per-job keys
 * from the prefix, so every key must live on one node.
 */
export class RedisStorage implements Storage {
  readonly limits = { args: 512 * 1024, result: 512 * 1024 };
  readonly notifier: Notifier;
  /** The address without credentials, e.g. `redis://127.0.0.1:6379/0`. */
  readonly address: string;
  /** The ioredis connection for commands (tests and tools may read keys through it). */
  readonly client: Redis;
  /** The key prefix (without its trailing colon). */
  readonly prefix: string;
  #keys: Keys;
  #scripts: Scripts;
  /** The connection of the append script (every transition and claim), see `resp.ts`. */
  #hot: RespConnection;
  #subscriber?: Redis;
  #listeners = new Set<() => void>();
  #lastError?: string;
  #closed = false;
  /** Per list of queues: the next ready jobs, as the last claim call saw them. */
  #candidates = new Map<string, JobRecord[]>();

  private constructor(client: Redis, hot: RespConnection, address: string, prefix: string) {
    this.client = client;
    this.#hot = hot;
    this.address = address;
    this.prefix = prefix;
    this.#keys = keysOf(prefix);
    // ioredis emits connection errors as events: without a listener they would be thrown.
    client.on("error", (error: Error) => this.#lastError = error.message);
    client.on("ready", () => this.#lastError = undefined);
    for (
      const [name, lua, numberOfKeys] of [
        ["tfPage", PAGE, 2],
        ["tfHeartbeat", HEARTBEAT, 4],
        ["tfRecurring", RECURRING, 1],
      ] as const
    ) client.defineCommand(name, { lua, numberOfKeys });
    this.#scripts = client as unknown as Scripts;
    this.notifier = {
      listen: (wake) => {
        this.#listeners.add(wake);
        this.#subscribe();
        return () => this.#listeners.delete(wake);
      },
    };
  }

  /**
   * Connects to `redis://[user:pass@]host[:port][/db][?prefix=name]` (or `rediss://` for TLS).
   * Fails with {@link StorageUnavailableError} when the server does not answer.
   */
  static async open(url: string, options: RedisStorageOptions = {}): Promise<RedisStorage> {
    const { connection, address, prefix } = parseRedisUrl(url, options.prefix);
    const client = new Redis({
      ...connection,
      lazyConnect: true,
      // Fail fast while disconnected (the worker backs off and retries) instead of queueing
      // commands or replaying them after a reconnect; ioredis reconnects by itself.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Commands sent in one tick are pipelined anyway; auto-pipelining only delays the write
      // (measured here: +50 µs per round trip under Deno), which every claim cycle pays.
      enableAutoPipelining: false,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
    });
    const hot = new RespConnection({
      ...connection,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      timeoutMs: COMMAND_TIMEOUT_MS,
    });
    const storage = new RedisStorage(client, hot, address, prefix);
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      throw storage.#unavailable(error);
    }
    return storage;
  }

  /** Subscribes to wake-ups on a second connection (a subscribed connection sends nothing else). */
  #subscribe(): void {
    if (this.#subscriber || this.#closed) return;
    const subscriber = this.client.duplicate({
      lazyConnect: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      enableAutoPipelining: false,
      commandTimeout: undefined,
    });
    subscriber.on("error", () => {/* reconnects by itself; polling covers the gap */});
    subscriber.on("message", (channel: string) => {
      if (channel !== this.#keys.wake) return;
      for (const listener of this.#listeners) listener();
    });
    subscriber.subscribe(this.#keys.wake).catch(() => {/* closed meanwhile */});
    this.#subscriber = subscriber;
  }

  /** Runs `work`, turning client errors into {@link StorageUnavailableError}. */
  async #run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StorageUnavailableError(this.address, "the storage was closed");
    try {
      return await work();
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  /** The typed error for a failed client call, naming the last connection error if any. */
  #unavailable(error: unknown): Error {
    if (error instanceof TaskFlowError) return error;
    let text = message(error);
    if (
      /writeable|Connection is closed|closed by the server|max retries per request|ECONN|EPIPE|connection reset|broken pipe/i
        .test(text)
    ) {
      text = `the connection is down${this.#lastError ? ` (${this.#lastError})` : ""}`;
    }
    return new StorageUnavailableError(this.address, text, error);
  }

  append(changes: readonly Change[]): Promise<AppendResult[]> {
    return this.#run(async () => (await this.#append(changes)).results);
  }

  /**
   * Sends `changes` in append calls of at most {@link PIPELINE_CHANGES} changes (and the size
   * bounds), in order and pipelined: Redis runs one call while the next is being encoded. A call
   * applies all its changes or none: the changes it refuses get their conflicts, and the rest
   * go again in a new call. With `claim`, one call (the caller keeps it small): commits apply
   * only to jobs among the first `head` ready jobs of `queues`, and the records of the next
   * `peek` ready jobs come back.
   */
  async #append(
    changes: readonly Change[],
    options: {
      replay?: boolean;
      claim?: { queues: readonly string[]; head: number; peek: number };
    } = {},
  ): Promise<{ results: AppendResult[]; records: JobRecord[] }> {
    const k = this.#keys;
    const { queues = [], head = 0, peek = 0 } = options.claim ?? {};
    const results: AppendResult[] = new Array(changes.length);
    const befores = await this.#befores(changes, results);
    let pending = changes.flatMap((_, i) => results[i] ? [] : [i]);
    let records: JobRecord[] = [];
    for (let round = 0;; round++) {
      const calls: Promise<number[]>[] = [];
      let call = new AppendCall(k, options.replay), sent: number[] = [];
      const send = () => {
        const indexes = sent;
        const header = ["EVALSHA", APPEND_SHA, "3", k.pos, k.events, k.jobs, k.prefix];
        header.push(call.wake ? k.wake : "", String(queues.length));
        for (const queue of queues) header.push(k.ready(queue));
        if (queues.length) header.push(String(head), String(peek), String(READY_ID_AT));
        header.push(String(call.changes));
        calls.push(
          (this.#evalAppend([header, call.commits, call.operations()]) as Promise<Reply[]>)
            .then((reply) => {
              // Refused: [per-change conflicts]; applied: the peeked records (see the script).
              if (reply.length === 1 && Array.isArray(reply[0])) {
                const again: number[] = [];
                (reply[0] as string[][]).forEach((conflicts, i) => {
                  if (conflicts.length) results[indexes[i]] = { ok: false, conflicts };
                  else again.push(indexes[i]);
                });
                records = [];
                return again;
              }
              for (const index of indexes) results[index] = { ok: true };
              records = (reply as (string | null)[]).flatMap((json) =>
                json === null ? [] : [JSON.parse(json) as JobRecord]
              );
              return [];
            }),
        );
        call = new AppendCall(k, options.replay);
        sent = [];
      };
      for (const index of pending) {
        const full = call.args > MAX_CALL_ARGS || call.chars > MAX_CALL_CHARS ||
          call.changes >= PIPELINE_CHANGES;
        if ((full || call.holds(changes[index].commits)) && !options.claim) send();
        call.add(
          changes[index].commits.map((commit) => ({ commit, before: befores.get(commit)! })),
        );
        sent.push(index);
      }
      if (sent.length || (options.claim && round === 0)) send();
      // Every call settles before this returns (none is left running unobserved); the first
      // failure is the one reported.
      const settled = await Promise.allSettled(calls);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed) throw failed.reason;
      pending = settled.flatMap((s) => (s as PromiseFulfilledResult<number[]>).value);
      if (!pending.length) return { results, records };
    }
  }

  /**
   * Runs `EVALSHA <append script> ...` on the hot connection, and the script itself (`EVAL`)
   * when the server does not have it (yet, or any more).
   */
  async #evalAppend(parts: string[][]): Promise<Reply> {
    try {
      return await this.#hot.callParts(parts);
    } catch (error) {
      if (!(error instanceof ReplyError) || !error.message.startsWith("NOSCRIPT")) throw error;
      return await this.#hot.callParts([["EVAL", APPEND, ...parts[0].slice(2)], ...parts.slice(1)]);
    }
  }

  /**
   * The record each commit was built on: its `before`, the record an earlier commit of the same
   * append leaves, or (for commits built without one) the stored record. A commit whose stored
   * job is not at its version is refused here, in `results`.
   */
  async #befores(
    changes: readonly Change[],
    results: AppendResult[],
  ): Promise<Map<Commit, JobRecord | null>> {
    const befores = new Map<Commit, JobRecord | null>();
    const latest = new Map<string, JobRecord>();
    const unknown: Commit[] = [];
    // A malformed commit is refused before anything is sent.
    changes.forEach(checkChange);
    for (const change of changes) {
      for (const commit of change.commits) {
        const known = commit.expect === 0 ? null : commit.before ??
          (latest.get(commit.id)?.version === commit.expect ? latest.get(commit.id) : undefined);
        if (known === undefined) unknown.push(commit);
        else befores.set(commit, known);
        latest.set(commit.id, commit.record);
      }
    }
    if (unknown.length) {
      const stored = await this.getMany([...new Set(unknown.map((commit) => commit.id))]);
      const byId = new Map(stored.flatMap((record) => record ? [[record.id, record]] : []));
      for (const commit of unknown) {
        const record = byId.get(commit.id);
        if (record?.version === commit.expect) befores.set(commit, record);
      }
      changes.forEach((change, i) => {
        const conflicts = change.commits.filter((commit) => !befores.has(commit)).map((c) => c.id);
        if (conflicts.length) results[i] = { ok: false, conflicts };
      });
    }
    return befores;
  }

  /**
   * Claims with one Lua call once warm: the previous call returned the records of the next ready
   * jobs, lib builds their claim commits, and the call applies those still at the head of the
   * queues (compare-and-set on each) and returns the next candidates. Cold (nothing cached) it
   * peeks first.
   */
  claim(query: ClaimQuery, build: ClaimBuilder): Promise<ClaimResult> {
    return this.#run(async () => {
      const key = query.queues.join("\n");
      const limit = Math.max(0, Math.min(query.limit, MAX_CLAIM));
      let candidates = this.#candidates.get(key) ?? [];
      this.#candidates.delete(key);
      if (!candidates.length) {
        const claim = { queues: query.queues, head: 0, peek: limit };
        candidates = (await this.#append([], { claim })).records;
        if (!candidates.length) return { claimed: [], contended: false };
      }
      const considered = candidates.slice(0, limit);
      const commits = considered.map(build).filter((c): c is Commit => c !== null);
      const claim = { queues: query.queues, head: considered.length, peek: limit };
      const { results, records } = await this.#append(
        commits.map((commit) => ({ commits: [commit] })),
        { claim },
      );
      this.#candidates.set(key, records);
      const claimed = commits.filter((_, i) => results[i].ok);
      return { claimed, contended: claimed.length < commits.length };
    });
  }

  get(id: string): Promise<JobRecord | null> {
    return this.#run(async () => checked(id, await this.client.hget(this.#keys.jobs, id)));
  }

  getMany(ids: readonly string[]): Promise<(JobRecord | null)[]> {
    return this.#run(async () => {
      const parts: Promise<(string | null)[]>[] = [];
      for (let i = 0; i < ids.length; i += 1_000) {
        parts.push(this.client.hmget(this.#keys.jobs, ...ids.slice(i, i + 1_000)));
      }
      return (await Promise.all(parts)).flat().map((json, i) => checked(ids[i], json));
    });
  }

  events(id: string): Promise<JobEvent[]> {
    return this.#run(async () => {
      const entries = await this.client.lrange(this.#keys.log(id), 0, -1);
      return entries.map((json) => JSON.parse(json) as JobEvent);
    });
  }

  list(query: ListQuery): Promise<Page> {
    return this.#run(async () => {
      const limit = query.limit ?? 50;
      const after = query.cursor === undefined ? undefined : memberOf(query.cursor);
      const byState = query.state !== undefined;
      const [members, records] = byState
        ? await this.#page(this.#keys.state(query.state), {
          start: after ? `(${after}` : "+",
          stop: "-",
          reverse: true,
          limit,
          idAt: STATE_ID_AT,
        })
        : await this.#page(this.#keys.ready(query.queue!), {
          start: after ? `(${after}` : "-",
          stop: "+",
          limit,
          idAt: READY_ID_AT,
        });
      const page: Page = { jobs: records.filter((r): r is JobRecord => r !== null) };
      if (members.length === limit) page.cursor = encodeCursor([members[members.length - 1]]);
      return page;
    });
  }

  /** One range of an index (lexicographic unless `byScore`) with the records it names. */
  async #page(
    index: string,
    range: {
      start: string;
      stop: string;
      limit: number;
      idAt: number;
      reverse?: boolean;
      byScore?: boolean;
      records?: string;
    },
  ): Promise<[string[], (JobRecord | null)[]]> {
    const [members, records] = await this.#scripts.tfPage([
      index,
      range.records ?? this.#keys.jobs,
      range.byScore ? "BYSCORE" : "BYLEX",
      range.start,
      range.stop,
      range.reverse ? "1" : "0",
      range.limit,
      range.idAt,
    ]) as [string[], (string | null)[]];
    const ids = members.map((m) => m.slice(range.idAt - 1));
    return [members, records.map((json, i) => checked(ids[i], json))];
  }

  counts(): Promise<Counts> {
    return this.#run(async () => {
      const replies = await this.client.multi().hgetall(this.#keys.gauges)
        .hgetall(this.#keys.totals).exec();
      const [gauges, totalsHash] = (replies ?? []).map(([error, value]) => {
        if (error) throw error;
        return value as Record<string, string>;
      });
      const states = zeroStates();
      const queues: Counts["queues"] = {};
      for (const [field, n] of Object.entries(gauges ?? {})) {
        const [queue, state] = field.split("|") as [string, State];
        (queues[queue] ??= zeroStates())[state] = Number(n);
        states[state] += Number(n);
      }
      const totals = zeroTotals();
      for (const name of Object.keys(totals) as (keyof Counts["totals"])[]) {
        totals[name] = Number(totalsHash?.[name] ?? 0);
      }
      const durations = zeroDurations();
      durations.sumMs = Number(totalsHash?.duration_ms ?? 0);
      for (const [field, n] of Object.entries(totalsHash ?? {})) {
        const bucket = /^duration:(\d+)$/.exec(field)?.[1];
        if (bucket !== undefined) durations.counts[Number(bucket)] = Number(n);
      }
      return { states, queues, totals, durations, retrying: Number(totalsHash?.retrying ?? 0) };
    });
  }

  search(query: SearchQuery): Promise<Page> {
    return this.#run(async () => {
      const limit = query.limit ?? 50;
      const prefix = query.namePrefix;
      const after = query.cursor === undefined ? undefined : nameCursor(query.cursor);
      const members = await this.client.zrange(
        this.#keys.names,
        after ? `(${after}` : `[${prefix}`,
        `(${prefix}\xff`,
        "BYLEX",
        "LIMIT",
        0,
        limit,
      );
      const ids = members.map((m) => m.slice(m.lastIndexOf("\u0000") + 1));
      const records = ids.length ? await this.client.hmget(this.#keys.jobs, ...ids) : [];
      const page: Page = {
        jobs: records.map((json, i) => checked(ids[i], json)).filter((r): r is JobRecord =>
          r !== null
        ),
      };
      if (members.length === limit) page.cursor = encodeCursor([members[members.length - 1]]);
      return page;
    });
  }

  pausedQueues(): Promise<string[]> {
    return this.#run(async () => (await this.client.smembers(this.#keys.paused)).sort());
  }

  pauseQueue(queue: string, paused: boolean): Promise<void> {
    return this.#run(async () => {
      if (paused) await this.client.sadd(this.#keys.paused, queue);
      else await this.client.srem(this.#keys.paused, queue);
    });
  }

  timeline(resolution: Resolution, from: number, to: number): Promise<TimelinePoint[]> {
    return this.#run(async () => {
      const points: TimelinePoint[] = [];
      for (let at = bucketStart(resolution, from); at <= to; at += RESOLUTIONS[resolution].ms) {
        points.push({ at, succeeded: 0, failed: 0 });
      }
      const replies = await Promise.all(
        points.map((point) =>
          this.client.hmget(this.#keys.bucket(resolution, point.at), "succeeded", "failed")
        ),
      );
      replies.forEach(([succeeded, failed], i) => {
        points[i].succeeded = Number(succeeded ?? 0);
        points[i].failed = Number(failed ?? 0);
      });
      return points;
    });
  }

  due(
    query: { state: "Scheduled" | "Processing"; before: number; limit: number },
  ): Promise<JobRecord[]> {
    return this.#run(async () => {
      const index = query.state === "Scheduled" ? this.#keys.due : this.#keys.leases;
      const [, records] = await this.#page(index, {
        start: "-inf",
        stop: String(query.before),
        limit: query.limit,
        idAt: 1,
        byScore: true,
      });
      return records.filter((r): r is JobRecord => r !== null);
    });
  }

  lease(id: string): Promise<Lease | null> {
    return this.#run(async () => {
      const replies = await this.client.multi().hget(this.#keys.lease, id)
        .zscore(this.#keys.leases, id).exec();
      const [[e1, serverId], [e2, until]] = replies ?? [[null, null], [null, null]];
      if (e1 || e2) throw e1 ?? e2;
      return serverId === null || until === null
        ? null
        : { serverId: serverId as string, until: Number(until) };
    });
  }

  heartbeat(beat: Heartbeat): Promise<{ lost: string[] }> {
    return this.#run(async () => {
      const k = this.#keys;
      const lost = await this.#scripts.tfHeartbeat([
        k.servers,
        k.serverExpiry,
        k.lease,
        k.leases,
        beat.server.id,
        JSON.stringify(beat.server),
        beat.server.lastSeen + beat.ttlMs,
        Date.now(),
        beat.leaseUntil,
        ...beat.leases,
      ]) as string[];
      return { lost };
    });
  }

  servers(): Promise<ServerInfo[]> {
    return this.#run(async () => {
      const [, servers] = await this.#scripts.tfPage([
        this.#keys.serverExpiry,
        this.#keys.servers,
        "BYSCORE",
        `(${Date.now()}`,
        "+inf",
        "0",
        10_000,
        1,
      ]) as [string[], (string | null)[]];
      return servers.flatMap((json) => json === null ? [] : [JSON.parse(json) as ServerInfo]);
    });
  }

  removeServer(id: string): Promise<void> {
    return this.#run(async () => {
      await this.client.multi().hdel(this.#keys.servers, id).zrem(this.#keys.serverExpiry, id)
        .exec();
    });
  }

  readonly recurring: RecordStore = this.#store(() => this.#keys.recurring);
  readonly batches: RecordStore = this.#store(() => this.#keys.batches);

  #store(hash: () => string): RecordStore {
    return {
      get: (id) =>
        this.#run(async () => {
          const json = await this.client.hget(hash(), id);
          return json === null ? null : JSON.parse(json) as RecurringRecord;
        }),
      list: () =>
        this.#run(async () => {
          const all = Object.values(await this.client.hgetall(hash()))
            .map((json) => JSON.parse(json) as RecurringRecord);
          return all.sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
        }),
      put: (record, expect) =>
        this.#run(async () => {
          const args = [hash(), record.id, expect, JSON.stringify(record)];
          return await this.#scripts.tfRecurring(args) === 1;
        }),
      delete: (id, expect) =>
        this.#run(async () => await this.#scripts.tfRecurring([hash(), id, expect, ""]) === 1),
    };
  }

  batchCounts(id: string): Promise<BatchCounts> {
    return this.#run(async () => {
      const hash = await this.client.hgetall(this.#keys.batchCount(id));
      return {
        succeeded: Number(hash.succeeded ?? 0),
        failed: Number(hash.failed ?? 0),
        deleted: Number(hash.deleted ?? 0),
      };
    });
  }

  rebuild(derive: Derive): Promise<RebuildResult> {
    return this.#run(async () => {
      const k = this.#keys;
      const [holders, expiries] = await Promise.all([
        this.client.hgetall(k.lease),
        this.client.zrange(k.leases, 0, -1, "WITHSCORES"),
      ]);
      const kept = new Map<string, Lease>();
      for (let i = 0; i < expiries.length; i += 2) {
        const serverId = holders[expiries[i]];
        if (serverId) kept.set(expiries[i], { serverId, until: Number(expiries[i + 1]) });
      }
      const stale = [k.jobs, k.pos, k.due, k.lease, k.leases, k.gauges, k.totals, k.names];
      for (const room of ["state", "ready", "bucket", "batchcount"]) {
        stale.push(...await this.#scan(`${globEscape(k.prefix)}${room}:*`));
      }
      for (let i = 0; i < stale.length; i += 1_000) {
        await this.client.del(...stale.slice(i, i + 1_000));
      }
      const logs = await this.#scan(`${globEscape(k.prefix)}log:*`);
      const ids = [...new Set(logs.map((key) => key.slice(k.prefix.length + 4)))];
      const skipped: string[] = [];
      for (let i = 0; i < ids.length; i += REBUILD_BATCH) {
        const batch = ids.slice(i, i + REBUILD_BATCH);
        const logsOfBatch = await Promise.all(
          batch.map((id) => this.client.lrange(k.log(id), 0, -1)),
        );
        const changes = batch.flatMap((id, j): Change[] => {
          const events = logsOfBatch[j].map((json) => JSON.parse(json) as JobEvent);
          const derived = derive(id, events);
          if (!derived) {
            skipped.push(id);
            return [];
          }
          const { record, lease } = derived;
          // A heartbeat may have extended the lease past the one recorded at claim time.
          const held = kept.get(id);
          const commit = { id, expect: 0, events, record };
          if (!lease) return [{ commits: [commit] }];
          return [{
            commits: [{ ...commit, lease: held?.serverId === lease.serverId ? held : lease }],
          }];
        });
        await this.#append(changes, { replay: true });
      }
      return { jobs: ids.length - skipped.length, skipped };
    });
  }

  prune(now: number): Promise<void> {
    return this.#run(async () => {
      const k = this.#keys;
      const old: string[] = [];
      for (const key of await this.#scan(`${globEscape(k.prefix)}bucket:*`)) {
        const [resolution, at] = key.slice(k.prefix.length + 7).split(":");
        const keep = RESOLUTIONS[resolution as Resolution]?.keepMs;
        if (keep !== undefined && Number(at) < now - keep) old.push(key);
      }
      for (let i = 0; i < old.length; i += 1_000) {
        await this.client.del(...old.slice(i, i + 1_000));
      }
    });
  }

  /** Every key matching `pattern` (SCAN may repeat keys; they are deduplicated). */
  async #scan(pattern: string): Promise<string[]> {
    const keys = new Set<string>();
    let cursor = "0";
    do {
      const [next, found] = await this.client.scan(cursor, "MATCH", pattern, "COUNT", 1_000);
      for (const key of found) keys.add(key);
      cursor = next;
    } while (cursor !== "0");
    return [...keys];
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#hot.close();
    await Promise.all([this.client, this.#subscriber].map(async (connection) => {
      if (!connection) return;
      try {
        await connection.quit();
      } catch {
        // not connected: nothing to flush
      } finally {
        connection.disconnect();
      }
    }));
  }
}

/** The index member a cursor made by `list` points after. */
function memberOf(cursor: string): string {
  const key = decodeCursor(cursor);
  if (key.length !== 1 || typeof key[0] !== "string" || !/^\d{16}/.test(key[0])) {
    throw new InvalidOptionError("cursor", cursor, "is not a cursor this storage returned");
  }
  return key[0];
}

function nameCursor(cursor: string): string {
  const key = decodeCursor(cursor);
  if (key.length !== 1 || typeof key[0] !== "string" || key[0].split("\u0000").length !== 3) {
    throw new InvalidOptionError("cursor", cursor, "is not a cursor this storage returned");
  }
  return key[0];
}

function checked(id: string, json: string | null): JobRecord | null {
  if (json === null) return null;
  let record: JobRecord;
  try {
    record = JSON.parse(json);
  } catch {
    throw new CorruptRecordError(id, "the stored record is not JSON");
  }
  if (typeof record !== "object" || record?.id !== id || typeof record.state !== "string") {
    throw new CorruptRecordError(id, "the stored record is not a job record");
  }
  return record;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
