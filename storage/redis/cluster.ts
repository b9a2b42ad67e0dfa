/**
 * @module
 * The cluster-aware connection: a storage on a Redis Cluster. Every key of a storage carries
 * its prefix as a hash tag (`keys.ts`), so every command, script and transaction of the storage
 * goes to the one master owning that slot. The owner comes from `CLUSTER SLOTS` (which 6.2
 * answers too, unlike `CLUSTER SHARDS`) of any node that answers; `MOVED` switches to the node
 * it names, `ASK` (the slot is being migrated) sends `ASKING` and the command once to the node
 * it names. A master that cannot be reached fails only the storages whose slot it owns, with a
 * {@link ConnectionError}, which the storage reports as `STORAGE_UNAVAILABLE`.
 */

import {
  ConnectionError,
  type RedisConnection,
  RespConnection,
  type RespOptions,
} from "./connection.ts";
import { type Reply, ReplyError } from "./protocol.ts";

/** A node's address. */
export interface NodeAddress {
  host: string;
  port: number;
}

/** What every node's connection shares: credentials, TLS and time limits (not the address). */
export type NodeOptions = Omit<RespOptions, "host" | "port" | "onPush" | "onDrop">;

const SLOTS = 16384;
/** Redirections and retries for one command before its last error stands. */
const MAX_HOPS = 5;
/**
 * Least time between two reads of the slot map after failures: while a master is down, every
 * call of its storages fails, and must not make the other nodes answer CLUSTER SLOTS each time.
 */
const RELOCATE_MS = 1_000;
/** Pause before a command answered TRYAGAIN (its keys are halfway through a migration) runs again. */
const TRYAGAIN_MS = 50;

const encoder = new TextEncoder();

/** The hash slot of `key`: CRC16 (XMODEM) of its hash tag, or of the whole key without one. */
export function keySlot(key: string): number {
  const bytes = encoder.encode(key);
  let start = 0, end = bytes.length;
  const open = bytes.indexOf(0x7b);
  const close = open < 0 ? -1 : bytes.indexOf(0x7d, open + 1);
  // An empty tag (`{}`) is no tag: the whole key is hashed.
  if (close > open + 1) [start, end] = [open + 1, close];
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc ^= bytes[i] << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = (crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1) & 0xffff;
    }
  }
  return crc % SLOTS;
}

/** `host:port` (an IPv6 host in brackets). */
export function nodeText({ host, port }: NodeAddress): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** The node a `MOVED <slot> <host>:<port>` or `ASK ...` reply names (an empty host: `from`'s). */
function redirection(
  error: unknown,
  from: NodeAddress,
): { ask: boolean; to: NodeAddress } | undefined {
  if (!(error instanceof ReplyError) || (error.code !== "MOVED" && error.code !== "ASK")) {
    return undefined;
  }
  const target = error.message.split(" ")[2] ?? "";
  const colon = target.lastIndexOf(":");
  const port = Number(target.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port <= 0) return undefined;
  const host = target.slice(0, colon).replace(/^\[(.*)\]$/, "$1") || from.host;
  return { ask: error.code === "ASK", to: { host, port } };
}

/**
 * The master serving `slot` in a CLUSTER SLOTS reply (`[[start, end, [host, port, ...], ...]]`),
 * and every master it names; an empty or `?` host means the host of the node asked, `from`.
 */
function slotMap(
  reply: Reply,
  slot: number,
  from: NodeAddress,
): { owner?: NodeAddress; masters: NodeAddress[] } {
  const masters: NodeAddress[] = [];
  let owner: NodeAddress | undefined;
  for (const range of (Array.isArray(reply) ? reply : []) as Reply[][]) {
    const [start, end, master] = range as [number, number, Reply[]];
    if (!Array.isArray(master)) continue;
    const host = typeof master[0] === "string" && master[0] !== "?" && master[0] !== ""
      ? master[0]
      : from.host;
    const node = { host, port: Number(master[1]) };
    masters.push(node);
    if (slot >= Number(start) && slot <= Number(end)) owner = node;
  }
  return { owner, masters };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The commands of one storage, sent to the master owning its slot. */
export class ClusterConnection implements RedisConnection {
  readonly #slot: number;
  readonly #options: NodeOptions;
  /** Nodes to ask for the slot map: the URL's, then every master a map named. */
  #nodes = new Map<string, NodeAddress>();
  /** A connection per node commands went to (the owners, and the targets of ASK). */
  #conns = new Map<string, RespConnection>();
  #owner?: NodeAddress;
  #locating?: Promise<void>;
  /** A failure suggests the slot may have moved: read the map again before the next command. */
  #stale = false;
  #locatedAt = -Infinity;
  #closed = false;

  /** Commands for keys of hash slot `slot`, on the cluster that `seeds` belong to. */
  constructor(seeds: readonly NodeAddress[], slot: number, options: NodeOptions) {
    for (const seed of seeds) this.#nodes.set(nodeText(seed), seed);
    this.#slot = slot;
    this.#options = options;
  }

  /** The master owning the slot (reading the slot map first if none is known yet). */
  async owner(): Promise<NodeAddress> {
    return await this.#route();
  }

  async connect(): Promise<void> {
    await this.#connection(await this.#route()).connect();
  }

  call(args: readonly string[]): Promise<Reply> {
    return this.callParts([args]);
  }

  callParts(parts: readonly (readonly string[])[]): Promise<Reply> {
    return this.#send(
      (conn) => conn.callParts(parts),
      // ASKING covers the next command only; both go out back to back.
      async (conn) => (await Promise.all([conn.call(["ASKING"]), conn.callParts(parts)]))[1],
    );
  }

  callMany(commands: readonly (readonly string[])[]): Promise<Reply[]> {
    return this.#send((conn) => conn.callMany(commands));
  }

  close(): void {
    this.#closed = true;
    for (const conn of this.#conns.values()) conn.close();
    this.#conns.clear();
  }

  /**
   * Sends to the owner, following redirections: `ask` sends to the node an ASK names. Without
   * it (a transaction, which one ASKING cannot cover) the command waits for the migration to end.
   */
  async #send<T>(
    send: (conn: RespConnection) => Promise<T>,
    ask?: (conn: RespConnection) => Promise<T>,
  ): Promise<T> {
    for (let hop = 0;; hop++) {
      const owner = await this.#route();
      try {
        return await send(this.#connection(owner));
      } catch (error) {
        const code = error instanceof ReplyError ? error.code : undefined;
        if (error instanceof ConnectionError || code === "CLUSTERDOWN") this.#stale = true;
        if (hop >= MAX_HOPS) throw error;
        const redirect = redirection(error, owner);
        if (redirect && !redirect.ask) {
          this.#owner = redirect.to;
        } else if (redirect && ask) {
          return await ask(this.#connection(redirect.to));
        } else if (redirect || code === "TRYAGAIN") {
          await sleep(TRYAGAIN_MS);
        } else {
          throw error;
        }
      }
    }
  }

  #connection(node: NodeAddress): RespConnection {
    if (this.#closed) throw new ConnectionError("closed", "the connection is closed");
    const key = nodeText(node);
    let conn = this.#conns.get(key);
    if (!conn) this.#conns.set(key, conn = new RespConnection({ ...this.#options, ...node }));
    return conn;
  }

  /** The owner, after reading the map when none is known or (at most once a second) when stale. */
  async #route(): Promise<NodeAddress> {
    if (this.#closed) throw new ConnectionError("closed", "the connection is closed");
    const due = this.#stale && performance.now() - this.#locatedAt >= RELOCATE_MS;
    if (this.#owner && !due) return this.#owner;
    this.#locating ??= this.#locate().finally(() => this.#locating = undefined);
    try {
      await this.#locating;
    } catch (error) {
      // No node answered: the known owner's own failure says more than that.
      if (!this.#owner || (error instanceof ConnectionError && error.code === "rejected")) {
        throw error;
      }
    }
    return this.#owner!;
  }

  /** Asks the nodes in turn (the current owner last: it is likely the one that failed). */
  async #locate(): Promise<void> {
    this.#locatedAt = performance.now();
    const owner = this.#owner && nodeText(this.#owner);
    const candidates = [...this.#nodes].filter(([key]) => key !== owner).map(([, node]) => node);
    if (this.#owner) candidates.push(this.#owner);
    const failures: string[] = [];
    for (const node of candidates) {
      let reply: Reply;
      try {
        reply = await this.#slots(node);
      } catch (error) {
        if (error instanceof ConnectionError && error.code === "rejected") throw error;
        failures.push(`${nodeText(node)}: ${error instanceof Error ? error.message : error}`);
        continue;
      }
      const map = slotMap(reply, this.#slot, node);
      for (const master of map.masters) this.#nodes.set(nodeText(master), master);
      if (!map.owner) {
        failures.push(`${nodeText(node)}: no node serves slot ${this.#slot}`);
        continue;
      }
      this.#owner = map.owner;
      this.#stale = false;
      return;
    }
    throw new ConnectionError(
      "failed",
      `no node of the cluster named the owner of slot ${this.#slot} (${failures.join("; ")})`,
    );
  }

  /** CLUSTER SLOTS of `node`, on a connection of its own. */
  async #slots(node: NodeAddress): Promise<Reply> {
    const conn = new RespConnection({ ...this.#options, ...node });
    try {
      return await conn.call(["CLUSTER", "SLOTS"]);
    } catch (error) {
      // A server without cluster support will not grow it: a configuration error.
      if (!(error instanceof ReplyError)) throw error;
      throw new ConnectionError(
        "rejected",
        `the server ${nodeText(node)} rejected CLUSTER SLOTS: ${error.message}`,
        error,
      );
    } finally {
      conn.close();
    }
  }
}
