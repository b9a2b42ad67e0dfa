/**
 * @module
 * Lua scripts on the connection: each runs by EVALSHA, and by EVAL when the server does not
 * have it (yet, or any more, after SCRIPT FLUSH or a restart), which also loads it.
 */

import { createHash } from "node:crypto";
import type { RedisConnection } from "./connection.ts";
import { type Reply, ReplyError } from "./protocol.ts";

/** One Lua script taking a fixed number of keys. */
export class Script {
  readonly #lua: string;
  readonly #sha: string;
  readonly #keys: string;

  /** The script `lua`, whose first `keys` arguments are keys. */
  constructor(lua: string, keys: number) {
    this.#lua = lua;
    this.#sha = createHash("sha1").update(lua).digest("hex");
    this.#keys = String(keys);
  }

  /** Runs the script with its keys and arguments, given in parts (not copied together). */
  async run(conn: RedisConnection, parts: readonly (readonly string[])[]): Promise<Reply> {
    try {
      return await conn.callParts([["EVALSHA", this.#sha, this.#keys], ...parts]);
    } catch (error) {
      if (!(error instanceof ReplyError) || error.code !== "NOSCRIPT") throw error;
      return await conn.callParts([["EVAL", this.#lua, this.#keys], ...parts]);
    }
  }
}
