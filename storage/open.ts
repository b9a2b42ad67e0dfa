/**
 * @module
 * Storage URLs → backends. Adding a backend means a folder in `storage/` whose `mod.ts` exports
 * the class, and its scheme here.
 *
 * - `memory:`: in-process, for tests
 * - `kv:` alone: Deno's default database (on Deno Deploy, the project's KV)
 * - `kv:<path>`: a local SQLite file (its directory is created); `kv::memory:` in memory
 * - `kv:https://...`: a remote database through KV Connect (`DENO_KV_ACCESS_TOKEN`)
 * - `redis://[user:pass@]host[:port][/db][?prefix=name]`, `rediss://...` (TLS): a Redis server;
 *   its module is imported only when such a URL is opened
 * - `redis+cluster://host:port,host:port/[?prefix=name]`, `rediss+cluster://...`: a Redis Cluster
 *   (the nodes listed are where the slot map is first read from)
 * - `postgres://[user:pass@]host[:port]/db[?schema=name]` (or `postgresql://`): a PostgreSQL
 *   database, loaded lazily like Redis (a KV-only user never downloads a Postgres driver)
 */

import { StorageUnavailableError, UnknownStorageError } from "./errors.ts";
import { KvStorage } from "./kv/mod.ts";
import { MemoryStorage } from "./memory/mod.ts";
import { redact } from "./redact.ts";
import type { Storage } from "./storage.ts";

/** The storage used when no URL is given: a local KV file, or the project's KV on Deploy. */
export function defaultStorageUrl(): string {
  return onDenoDeploy() ? "kv:" : "kv:./data/taskflow.sqlite";
}

/** True when running on Deno Deploy. */
export function onDenoDeploy(): boolean {
  try {
    return Boolean(Deno.env.get("DENO_DEPLOYMENT_ID"));
  } catch {
    return false; // no env permission: not Deploy, where env is always readable
  }
}

/** Options for {@link openStorage}. */
export interface OpenStorageOptions {
  /** Key prefix for KV and Redis (default `"taskflow"`; a Redis URL's `?prefix=` wins). */
  prefix?: string;
  /** KV only: enqueue KV queue messages as worker wake-ups (default true, false on Deploy). */
  queueWakeups?: boolean;
}

/** The part of `./redis/mod.ts` this module uses (a type import would pull it into the graph). */
interface RedisModule {
  RedisStorage: { open(url: string, options: { prefix?: string }): Promise<Storage> };
}

/** The part of `./postgres/mod.ts` this module uses (see {@link RedisModule}). */
interface PostgresModule {
  PostgresStorage: { open(url: string): Promise<Storage> };
}

/** Opens the storage named by `url` (default {@link defaultStorageUrl}). */
export async function openStorage(
  url?: string,
  options: OpenStorageOptions = {},
): Promise<Storage> {
  const target = url ?? defaultStorageUrl();
  if (typeof target !== "string" || target.trim() === "") {
    throw new UnknownStorageError(redact(String(target)), "the URL is empty");
  }
  if (target === "memory:") return new MemoryStorage();
  // Messages and `storage.address` name the URL without credentials (KV Connect URLs too).
  const shown = redact(target);
  if (target.startsWith("kv:")) {
    const rest = target.slice(3);
    // KV queue messages wake workers only on Deno's default database, where nothing better
    // exists. A local file wakes other processes through <file>.wake/ at once (KV delivers
    // another process's messages only by a slow poll), so messages there would only cost a
    // mutation per write and a backlog for workers to drain later. Not on Deploy (no queues
    // there); :memory: and remote databases have nothing to wake.
    const kvOptions = {
      prefix: options.prefix,
      queueWakeups: options.queueWakeups ?? (rest === "" && !onDenoDeploy()),
    };
    if (rest === "") return await KvStorage.open(undefined, shown, kvOptions);
    if (rest === ":memory:" || /^https?:\/\//.test(rest)) {
      return await KvStorage.open(rest, shown, kvOptions);
    }
    if (rest.includes("\0")) throw new UnknownStorageError(shown, "the path contains a NUL byte");
    const dir = rest.replace(/[\\/][^\\/]*$/, "");
    if (dir !== rest && dir !== "") await makeDirectory(dir, shown);
    return await KvStorage.open(rest, shown, kvOptions);
  }
  if (/^rediss?(\+cluster)?:\/\//i.test(target)) {
    // Imported lazily so that a KV-only user never loads the Redis backend: Deno prefetches
    // dynamic imports whose specifier is a string literal; a computed one only when it runs.
    const module = new URL("./redis/mod.ts", import.meta.url).href;
    const { RedisStorage } = await import(module) as RedisModule;
    return await RedisStorage.open(target, { prefix: options.prefix });
  }
  if (/^postgres(ql)?:\/\//i.test(target)) {
    const module = new URL("./postgres/mod.ts", import.meta.url).href;
    const { PostgresStorage } = await import(module) as PostgresModule;
    return await PostgresStorage.open(target);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(target)?.[1];
  throw new UnknownStorageError(
    shown,
    scheme ? `unknown scheme "${scheme}:"` : "the URL has no scheme",
  );
}

/** Creates the directory of a KV file; a failure names the directory and the reason. */
async function makeDirectory(dir: string, address: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (error) {
    const reason = error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : error instanceof Deno.errors.NotFound
      ? "a parent does not exist or cannot hold files"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new StorageUnavailableError(
      address,
      `cannot create the directory ${JSON.stringify(dir)} for the database file: ${reason}`,
      error,
    );
  }
}
