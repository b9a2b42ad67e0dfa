/**
 * @module
 * Redis storage URLs: `redis://[user:pass@]host[:port][/db][?prefix=name]` and `rediss://` (TLS),
 * and for a Redis Cluster `redis+cluster://[user:pass@]host:port,host:port,.../[?prefix=name]`
 * (`rediss+cluster://` for TLS) → connection options, a key prefix, and an address safe to show
 * (no credentials).
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
  /** A cluster URL's seed nodes (`connection` names the first), absent for a single server. */
  nodes?: { host: string; port: number }[];
}

const CLUSTER = /^(rediss?)\+cluster:\/\/(?:(.*)@)?([^/?#@]*)(.*)$/is;

/**
 * Parses a `redis+cluster://` or `rediss+cluster://` URL: each node of its comma-separated list
 * is read as a single-server URL would be; a cluster has only database 0.
 */
function parseClusterUrl(url: string, prefix?: string): RedisTarget {
  const safe = redact(url);
  const [, scheme, user, list, rest] = CLUSTER.exec(url) ?? [];
  if (scheme === undefined) {
    throw new UnknownStorageError(safe, "the Redis Cluster URL is malformed");
  }
  if (list.trim() === "") {
    throw new UnknownStorageError(safe, "the Redis Cluster URL names no node");
  }
  const targets = list.split(",").map((node) => {
    if (node.trim() === "") {
      throw new UnknownStorageError(
        safe,
        "the Redis Cluster URL has an empty entry in its node list",
      );
    }
    return parseServer(`${scheme}://${user === undefined ? "" : `${user}@`}${node}${rest}`, {
      safe,
      prefix,
    });
  });
  const [first] = targets;
  if (first.connection.db !== 0) {
    throw new UnknownStorageError(
      safe,
      `a Redis Cluster has only database 0, not ${first.connection.db}`,
    );
  }
  const nodes = targets.map(({ connection: { host, port } }) => ({ host, port }));
  const shown = nodes.map(({ host, port }) => `${host.includes(":") ? `[${host}]` : host}:${port}`);
  const tail = first.prefix === "taskflow" ? "" : `?prefix=${first.prefix}`;
  return {
    connection: first.connection,
    address: `${scheme.toLowerCase()}+cluster://${shown.join(",")}/${tail}`,
    prefix: first.prefix,
    nodes,
  };
}

/** Parses a `redis://`, `rediss://` or `redis+cluster://` URL; `prefix` applies unless the URL names one. */
export function parseRedisUrl(url: string, prefix?: string): RedisTarget {
  if (/^rediss?\+cluster:/i.test(url)) return parseClusterUrl(url, prefix);
  // Named without the credentials, which must never appear in messages or logs.
  return parseServer(url, { safe: redact(url), prefix });
}

/** Parses a single server's URL; errors name `safe` (the URL the user wrote, redacted). */
function parseServer(
  url: string,
  { safe, prefix }: { safe: string; prefix?: string },
): RedisTarget {
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
