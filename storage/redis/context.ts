/**
 * @module
 * What the parts of the Redis backend share: the connection, the key names and the scripts.
 */

import type { JobRecord } from "../../lib/job.ts";
import type { RedisConnection } from "./connection.ts";
import type { Keys } from "./keys.ts";
import { APPEND } from "./lua/append.ts";
import { CREATE } from "./lua/create.ts";
import { HEARTBEAT, LEASES } from "./lua/heartbeat.ts";
import { PAGE } from "./lua/page.ts";
import { RECURRING } from "./lua/recurring.ts";
import { REMOVE } from "./lua/remove.ts";
import type { Reply } from "./protocol.ts";
import { Script } from "./scripts.ts";

/** The scripts, each with the number of keys it takes. */
export const SCRIPTS = {
  append: new Script(APPEND, 4),
  create: new Script(CREATE, 4),
  page: new Script(PAGE, 3),
  heartbeat: new Script(HEARTBEAT, 4),
  leases: new Script(LEASES, 2),
  recurring: new Script(RECURRING, 1),
  remove: new Script(REMOVE, 1),
};

/** One Redis storage's connection and keys. */
export interface RedisDb {
  conn: RedisConnection;
  keys: Keys;
  /**
   * The done fields of the last page of finished jobs read (by id), with the records decoded
   * from them, which `remove` usually removes next: it need not read or decode them again (its
   * script checks every position anyway).
   */
  finished?: Map<string, { text: string; record: JobRecord }>;
}

/** Sends one command (numbers become their text). */
export function command(db: RedisDb, ...args: (string | number)[]): Promise<Reply> {
  return db.conn.call(args.map(String));
}

/** Runs a script with its keys and arguments (numbers become their text). */
export function script(
  db: RedisDb,
  name: keyof typeof SCRIPTS,
  args: (string | number)[],
): Promise<Reply> {
  return SCRIPTS[name].run(db.conn, [args.map(String)]);
}

/** A flat `[field, value, ...]` reply (HGETALL) as an object. */
export function fields(reply: Reply): Record<string, string> {
  const out: Record<string, string> = {};
  const flat = (reply ?? []) as string[];
  for (let i = 0; i < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}
