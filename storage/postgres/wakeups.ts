/**
 * @module
 * Wake-ups over LISTEN/NOTIFY: the `append` function notifies the schema's channel when it makes
 * a job Enqueued or Scheduled (delivered at commit, so a rolled-back enqueue wakes no one). One
 * dedicated connection listens and reconnects with backoff when it drops; workers poll anyway,
 * so a lost notification only delays a claim to the next poll.
 */

import { pg } from "./db.ts";

/** Longest pause between reconnection attempts. */
const MAX_BACKOFF_MS = 5_000;

/** A LISTEN connection calling `wake` on every notification of `channel`. */
export class Listener {
  #config: pg.ClientConfig;
  #channel: string;
  #wake: () => void;
  #client?: pg.Client;
  #closed = false;
  #timer?: ReturnType<typeof setTimeout>;
  #failures = 0;

  constructor(config: pg.ClientConfig, channel: string, wake: () => void) {
    this.#config = config;
    this.#channel = channel;
    this.#wake = wake;
    this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client(this.#config);
    this.#client = client;
    let dropped = false;
    const drop = () => {
      if (dropped) return;
      dropped = true;
      client.end().catch(() => {});
      if (this.#closed) return;
      // Anything may have been enqueued while nobody listened.
      this.#wake();
      const pause = Math.min(MAX_BACKOFF_MS, 100 * 2 ** this.#failures++);
      this.#timer = setTimeout(() => this.#connect(), pause);
    };
    client.on("error", drop);
    client.on("end", drop);
    client.on("notification", () => this.#wake());
    try {
      await client.connect();
      await client.query(`listen "${this.#channel}"`);
      this.#failures = 0;
      if (this.#closed) await client.end();
    } catch {
      drop();
    }
  }

  /** Stops listening. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#client?.end().catch(() => {});
  }
}
