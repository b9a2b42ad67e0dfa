/**
 * @module
 * The Redis connection: RESP2 over Deno's own TCP or TLS, requests pipelined in order, each
 * encoded into one shared buffer and written with those queued behind it (ioredis, through
 * node:net under Deno, was clearly slower on the append and claim path: bench/RESULTS.md, 2026-12-07).
 *
 * It connects on first use and again after a failure; while the server is down every call
 * fails at once (nothing is queued or replayed). A request without an answer after `timeoutMs`
 * fails, and the connection with it. Failures of the connection are {@link ConnectionError}s.
 */

import { concat, encodeText, frame, parse, type Reply, replyEnd, ReplyError } from "./protocol.ts";
import type { RedisTarget } from "./url.ts";

/** Why a connection failed. */
export type ConnectionFailure =
  | "refused"
  | "reset"
  | "closed"
  | "timeout"
  | "failed"
  /** The server answered the connection's setup (AUTH, SELECT) with an error: a configuration error. */
  | "rejected";

/** The connection to Redis failed (as opposed to a command, which rejects with a ReplyError). */
export class ConnectionError extends Error {
  override name = "ConnectionError";
  /** What happened to the connection. */
  readonly code: ConnectionFailure;

  /** An error of kind `code`; `cause` is the socket's own error, if any. */
  constructor(code: ConnectionFailure, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
}

/** Where and how to connect: a parsed URL's connection, time limits, and hooks. */
export type RespOptions = RedisTarget["connection"] & {
  /** Longest wait for a connection, in ms. */
  connectTimeoutMs: number;
  /** Longest wait for an answer, in ms. */
  timeoutMs: number;
  /** Receives pub/sub messages (`["message", channel, payload]`) instead of a request. */
  onPush?: (reply: Reply[]) => void;
  /** Called when an established connection is lost (not on close). */
  onDrop?: () => void;
};

interface Pending {
  resolve(reply: Reply): void;
  reject(error: unknown): void;
  at: number;
}

const encoder = new TextEncoder();
/** Bytes of requests encoded in place, to start with. */
const WRITE_SIZE = 256 * 1024;
/** Largest the write buffer grows to; a larger request gets bytes of its own. */
const MAX_WRITE_SIZE = 8 * 1024 * 1024;
/** Reply bytes kept in the read buffer before it is compacted. */
const READ_SIZE = 64 * 1024;

const closed = () => new ConnectionError("closed", "the connection is closed");

/** What a storage sends commands through: one connection, or the cluster-aware form (`cluster.ts`). */
export interface RedisConnection {
  /** Connects now (a call connects by itself; this surfaces a failure early). */
  connect(): Promise<void>;
  /** Sends a command (name and arguments) and resolves with its reply. */
  call(args: readonly string[]): Promise<Reply>;
  /** Sends a command given in parts (name and arguments, in order; not copied together). */
  callParts(parts: readonly (readonly string[])[]): Promise<Reply>;
  /** Sends commands back to back (nothing else between them, e.g. MULTI ... EXEC). */
  callMany(commands: readonly (readonly string[])[]): Promise<Reply[]>;
  /** Closes the connection; requests still waiting fail. */
  close(): void;
}

/** One Redis connection with pipelined requests. */
export class RespConnection implements RedisConnection {
  #options: RespOptions;
  #conn?: Deno.Conn;
  #connecting?: Promise<Deno.Conn>;
  #pending: (Pending | undefined)[] = [];
  #head = 0;
  #writes: Uint8Array[] = [];
  /** Where requests are encoded; `#used` bytes of it are queued or being written. */
  #out = new Uint8Array(WRITE_SIZE);
  #used = 0;
  #writing = false;
  #closed = false;
  #watchdog?: ReturnType<typeof setInterval>;

  constructor(options: RespOptions) {
    this.#options = options;
  }

  /** Connects now (a call connects by itself; this surfaces a failure early). */
  async connect(): Promise<void> {
    if (this.#closed) throw closed();
    if (!this.#conn) await this.#connect();
  }

  /** Sends a command (name and arguments) and resolves with its reply. */
  call(args: readonly string[]): Promise<Reply> {
    return this.callParts([args]);
  }

  /** Sends a command given in parts (name and arguments, in order; not copied together). */
  callParts(parts: readonly (readonly string[])[]): Promise<Reply> {
    if (this.#closed) return Promise.reject(closed());
    const conn = this.#conn;
    if (!conn) return this.#connect().then((conn) => this.#send(conn, parts));
    return this.#send(conn, parts);
  }

  /** Sends commands back to back (nothing else between them, e.g. MULTI ... EXEC). */
  async callMany(commands: readonly (readonly string[])[]): Promise<Reply[]> {
    if (this.#closed) throw closed();
    const conn = this.#conn ?? await this.#connect();
    return await Promise.all(commands.map((command) => this.#send(conn, [command])));
  }

  /** Closes the connection; requests still waiting fail. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#watchdog);
    if (this.#conn) this.#fail(this.#conn, closed());
  }

  #send(conn: Deno.Conn, parts: readonly (readonly string[])[]): Promise<Reply> {
    // Lost between connecting and sending: a request queued now would take a later reply.
    if (conn !== this.#conn) return Promise.reject(closed());
    const bytes = this.#encode(parts);
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.push({ resolve, reject, at: performance.now() });
      this.#writes.push(bytes);
      if (!this.#writing) void this.#flush(conn);
    });
  }

  /**
   * Encodes a request into the free end of the write buffer when it fits and is all ASCII (the
   * common case), else into bytes of its own. The buffer is reused once everything queued in it
   * is written: a fresh buffer per request was external memory that V8 counted towards its
   * garbage collections. A request that does not fit starts a larger buffer (up to a bound):
   * encoding into place is several times faster than into new bytes, and outcome calls of jobs
   * with kilobyte payloads are often larger than the first buffer.
   */
  #encode(parts: readonly (readonly string[])[]): Uint8Array {
    const text = frame(parts, false);
    if (text.length > this.#out.length - this.#used && text.length <= MAX_WRITE_SIZE / 2) {
      // Requests queued in the old buffer keep their views of it until written.
      let size = this.#out.length;
      while (size < 1.25 * text.length) size *= 2;
      this.#out = new Uint8Array(Math.min(size, MAX_WRITE_SIZE));
      this.#used = 0;
    }
    if (text.length <= this.#out.length - this.#used) {
      const room = this.#out.subarray(this.#used);
      const { read, written } = encoder.encodeInto(text, room);
      if (read === text.length && written === text.length) {
        this.#used += written;
        return room.subarray(0, written);
      }
    }
    return encodeText(text, parts);
  }

  /** Writes queued requests in order; requests queued meanwhile go out with the next write. */
  async #flush(conn: Deno.Conn): Promise<void> {
    this.#writing = true;
    try {
      while (this.#writes.length && conn === this.#conn) {
        const chunk = this.#writes.length === 1 ? this.#writes[0] : this.#joined(this.#writes);
        this.#writes = [];
        for (let at = 0; at < chunk.length;) at += await conn.write(chunk.subarray(at));
      }
      // Everything queued is written: the write buffer is free again.
      if (!this.#writes.length) this.#used = 0;
    } catch (error) {
      this.#fail(conn, error);
    } finally {
      this.#writing = false;
      // Requests queued for a newer connection while this one was failing.
      if (this.#writes.length && this.#conn && this.#conn !== conn) void this.#flush(this.#conn);
    }
  }

  /** Connects (once for every caller waiting), authenticates and selects the database. */
  #connect(): Promise<Deno.Conn> {
    this.#connecting ??= this.#open().finally(() => this.#connecting = undefined);
    return this.#connecting;
  }

  async #open(): Promise<Deno.Conn> {
    const conn = await this.#dial();
    if (this.#closed) {
      conn.close();
      throw closed();
    }
    if (!this.#options.tls) (conn as Deno.TcpConn).setNoDelay(true);
    this.#conn = conn;
    void this.#read(conn);
    if (!this.#watchdog) {
      this.#watchdog = setInterval(() => this.#checkTimeouts(), 1_000);
      Deno.unrefTimer(this.#watchdog);
    }
    const { username, password, db } = this.#options;
    const setup: Promise<Reply>[] = [];
    // Named without the password: the message reaches logs.
    const step = (label: string, command: string[]) =>
      this.#send(conn, [command]).catch((error) => {
        throw error instanceof ReplyError
          ? new ConnectionError("rejected", `the server rejected ${label}: ${error.message}`, error)
          : error;
      });
    if (password !== undefined) {
      setup.push(
        step(
          username ? `AUTH for user ${JSON.stringify(username)}` : "AUTH",
          username ? ["AUTH", username, password] : ["AUTH", password],
        ),
      );
    }
    if (db) setup.push(step(`SELECT ${db}`, ["SELECT", String(db)]));
    try {
      await Promise.all(setup);
    } catch (error) {
      this.#fail(conn, error);
      throw error;
    }
    return conn;
  }

  /** Opens the socket (TLS for `rediss:`) within the connect timeout. */
  async #dial(): Promise<Deno.Conn> {
    const { host, port, tls, connectTimeoutMs } = this.#options;
    const opening = tls
      ? Deno.connectTls({ hostname: host, port })
      : Deno.connect({ hostname: host, port });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new ConnectionError("timeout", `connect timed out after ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
    });
    try {
      return await Promise.race([opening, timeout]);
    } catch (error) {
      opening.then((late) => late.close(), () => {});
      throw describe(error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads replies and hands them to the waiting requests, in order (pushes to `onPush`). */
  async #read(conn: Deno.Conn): Promise<void> {
    let buffer = new Uint8Array(READ_SIZE), start = 0, end = 0;
    // A reply found incomplete is decoded again only once all of it is there: a large one
    // arriving over many reads is scanned for its length each time, not decoded.
    let partial = false;
    const onPush = this.#options.onPush;
    try {
      for (;;) {
        if (end === buffer.length) {
          if (start > 0) {
            buffer.copyWithin(0, start, end);
            end -= start;
            start = 0;
          } else {
            const bigger = new Uint8Array(buffer.length * 2);
            bigger.set(buffer);
            buffer = bigger;
          }
        }
        const n = await conn.read(buffer.subarray(end));
        // Dropped meanwhile: its late bytes must not answer another connection's requests.
        if (conn !== this.#conn) return;
        if (n === null) throw new ConnectionError("closed", "connection closed by the server");
        end += n;
        for (;;) {
          if (partial && replyEnd(buffer, start, end) === -1) break;
          const parsed = parse(buffer, start, end);
          partial = !parsed;
          if (!parsed) break;
          start = parsed.next;
          const value = parsed.value;
          if (onPush && Array.isArray(value) && value[0] === "message") {
            onPush(value);
            continue;
          }
          const pending = this.#take();
          if (!pending) throw new Error("a reply came that no request waited for");
          if (value instanceof ReplyError) pending.reject(value);
          else pending.resolve(value);
        }
        if (start === end) start = end = 0;
      }
    } catch (error) {
      this.#fail(conn, error);
    }
  }

  #take(): Pending | undefined {
    const pending = this.#pending[this.#head];
    if (!pending) return undefined;
    // The slot lets go of the request at once: a kept one would hold its promise and reply
    // (a claim's records) until the queue is next trimmed, and V8 would promote them.
    this.#pending[this.#head] = undefined;
    this.#head++;
    if (this.#head === this.#pending.length) {
      this.#pending = [];
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
    return pending;
  }

  #checkTimeouts(): void {
    const oldest = this.#pending[this.#head];
    const { timeoutMs } = this.#options;
    if (oldest && this.#conn && performance.now() - oldest.at > timeoutMs) {
      this.#fail(this.#conn, new ConnectionError("timeout", `no answer after ${timeoutMs} ms`));
    }
  }

  /** Requests queued together: one view when they lie side by side in the write buffer. */
  #joined(chunks: Uint8Array[]): Uint8Array {
    const start = chunks[0].byteOffset;
    let end = start;
    for (const chunk of chunks) {
      if (chunk.buffer !== this.#out.buffer || chunk.byteOffset !== end) return concat(chunks);
      end += chunk.length;
    }
    return this.#out.subarray(start, end);
  }

  /** Drops `conn` and fails every request still waiting on it. */
  #fail(conn: Deno.Conn, error: unknown): void {
    if (conn !== this.#conn) return;
    this.#conn = undefined;
    // A write may still hold views of the old buffer: the next requests get a new one.
    this.#out = new Uint8Array(WRITE_SIZE);
    this.#used = 0;
    try {
      conn.close();
    } catch {
      // already closed
    }
    const waiting = this.#pending.slice(this.#head);
    this.#pending = [];
    this.#head = 0;
    this.#writes = [];
    const reason = this.#closed ? closed() : describe(error);
    for (const pending of waiting) pending?.reject(reason);
    if (!this.#closed) this.#options.onDrop?.();
  }
}

/** A socket error as a {@link ConnectionError} of its kind (a reply error stays as it is). */
function describe(error: unknown): unknown {
  if (error instanceof ConnectionError || error instanceof ReplyError) return error;
  const text = error instanceof Error ? error.message : String(error);
  if (error instanceof Deno.errors.ConnectionRefused) {
    return new ConnectionError("refused", `connection refused (ECONNREFUSED): ${text}`, error);
  }
  if (
    error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionAborted
  ) {
    return new ConnectionError("reset", `connection reset: ${text}`, error);
  }
  if (
    error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.UnexpectedEof || error instanceof Deno.errors.NotConnected
  ) {
    return new ConnectionError("closed", `the connection is closed: ${text}`, error);
  }
  if (error instanceof Deno.errors.TimedOut) {
    return new ConnectionError("timeout", `timed out: ${text}`, error);
  }
  return new ConnectionError("failed", text, error);
}
