/**
 * @module
 * Redis storage URLs: `redis://[user:pass@]host[:port][/db][?prefix=name]` and `rediss://` (TLS)
 * → connection options, a key prefix, and an address safe to show (no credentials).
 */

import { InvalidOptionError, UnknownStorageError } from "../errors.ts";
import { redact } from "../redact.ts";

const PREFIX = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/;

/** Where a Redis URL points. */
export interface RedisTarget {
  /** Options for the Redis client. */
  connection: {
    host: string;
    port: number;
    db: number;
    username?: string;
    password?: string;
    tls?: { servername: string };
  };
  /** The URL without credentials, e.g. `redis://127.0.0.1:6379/0`. */
  address: string;
  /** The key prefix (without its trailing colon). */
  prefix: string;
}

/** Parses a `redis://` or `rediss://` URL; `prefix` applies unless the URL names one. */
export function parseRedisUrl(url: string, prefix?: string): RedisTarget {
  // Named without the credentials, which must never appear in messages or logs.
  const safe = redact(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UnknownStorageError(safe, "the Redis URL is malformed");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new UnknownStorageError(safe, `unknown scheme "${parsed.protocol}"`);
  }
  if (!parsed.hostname) throw new UnknownStorageError(safe, "the Redis URL names no host");
  const path = parsed.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d{1,5}$/.test(path)) {
    throw new UnknownStorageError(safe, `the database "${path}" is not a number`);
  }
  for (const name of parsed.searchParams.keys()) {
    if (name !== "prefix") {
      throw new UnknownStorageError(safe, `unknown parameter "${name}" (only prefix is known)`);
    }
  }
  const chosen = parsed.searchParams.get("prefix") ?? prefix ?? "taskflow";
  if (!PREFIX.test(chosen)) {
    throw new InvalidOptionError(
      "prefix",
      chosen,
      "must be 1–64 letters, digits and _ . : -, not starting with punctuation other than _",
    );
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = parsed.port ? Number(parsed.port) : 6379;
  const db = path === "" ? 0 : Number(path);
  const connection: RedisTarget["connection"] = { host, port, db };
  if (parsed.username) connection.username = decodeURIComponent(parsed.username);
  if (parsed.password) connection.password = decodeURIComponent(parsed.password);
  if (parsed.protocol === "rediss:") connection.tls = { servername: host };
  const hostText = host.includes(":") ? `[${host}]` : host;
  const tail = chosen === "taskflow" ? "" : `?prefix=${chosen}`;
  return {
    connection,
    address: `${parsed.protocol}//${hostText}:${port}/${db}${tail}`,
    prefix: chosen,
  };
}
