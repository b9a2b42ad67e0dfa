/**
 * @module
 * PostgreSQL storage URLs: `postgres://[user:pass@]host[:port]/db[?schema=name&sslmode=...]`
 * (or `postgresql://`) → connection options, the schema the tables live in, and an address
 * safe to show (no credentials).
 */

import { InvalidOptionError, UnknownStorageError } from "../errors.ts";
import { redact } from "../redact.ts";

/** A schema name: lower-case, so that it needs no quoting rules beyond the plain ones. */
const SCHEMA = /^[a-z_][a-z0-9_]{0,39}$/;
const SSL_MODES = ["disable", "prefer", "require", "verify-full"];

/** Where a PostgreSQL URL points. */
export interface PostgresTarget {
  /** Options for the `pg` client. */
  connection: {
    host: string;
    port: number;
    database: string;
    user?: string;
    password?: string;
    ssl?: boolean | { rejectUnauthorized: boolean };
  };
  /** The URL without credentials, e.g. `postgres://127.0.0.1:5432/app?schema=jobs`. */
  address: string;
  /** The schema holding TaskFlow's tables (default `taskflow`). */
  schema: string;
}

/** Parses a `postgres://` or `postgresql://` URL; `schema` applies unless the URL names one. */
export function parsePostgresUrl(url: string, schema?: string): PostgresTarget {
  const safe = redact(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UnknownStorageError(safe, "the PostgreSQL URL is malformed");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new UnknownStorageError(safe, `unknown scheme "${parsed.protocol}"`);
  }
  if (!parsed.hostname) throw new UnknownStorageError(safe, "the PostgreSQL URL names no host");
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  if (database === "" || database.includes("/")) {
    throw new UnknownStorageError(safe, "the PostgreSQL URL names no database (…/dbname)");
  }
  for (const name of parsed.searchParams.keys()) {
    if (name !== "schema" && name !== "sslmode") {
      throw new UnknownStorageError(
        safe,
        `unknown parameter "${name}" (only schema and sslmode are known)`,
      );
    }
  }
  const chosen = parsed.searchParams.get("schema") ?? schema ?? "taskflow";
  if (!SCHEMA.test(chosen)) {
    throw new InvalidOptionError(
      "schema",
      chosen,
      "must be 1–40 lower-case letters, digits and _, not starting with a digit",
    );
  }
  const sslmode = parsed.searchParams.get("sslmode") ?? "disable";
  if (!SSL_MODES.includes(sslmode)) {
    throw new InvalidOptionError("sslmode", sslmode, `must be one of ${SSL_MODES.join(", ")}`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = parsed.port ? Number(parsed.port) : 5432;
  const connection: PostgresTarget["connection"] = { host, port, database };
  if (parsed.username) connection.user = decodeURIComponent(parsed.username);
  if (parsed.password) connection.password = decodeURIComponent(parsed.password);
  if (sslmode === "require" || sslmode === "prefer") connection.ssl = { rejectUnauthorized: false };
  if (sslmode === "verify-full") connection.ssl = true;
  const hostText = host.includes(":") ? `[${host}]` : host;
  const tail = chosen === "taskflow" ? "" : `?schema=${chosen}`;
  return {
    connection,
    address: `postgres://${hostText}:${port}/${encodeURIComponent(database)}${tail}`,
    schema: chosen,
  };
}
