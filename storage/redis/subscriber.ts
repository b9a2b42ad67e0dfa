/**
 * @module
 * Wake-ups over Redis pub/sub, on a connection of their own (a subscribed connection sends
 * nothing else). A lost connection subscribes again after a pause; polling covers the gap.
 */

import { RespConnection, type RespOptions } from "./connection.ts";

/** Pause before subscribing again after a failure. */
const RETRY_MS = 1_000;

/** A subscription to one channel, calling `onMessage` with each message on it. */
export class Subscriber {
  #conn: RespConnection;
  #channel: string;
  #closed = false;
  #retry?: ReturnType<typeof setTimeout>;

  /** Subscribes to `channel` on a new connection of `options` (no answer timeout applies). */
  constructor(
    options: Omit<RespOptions, "onPush" | "onDrop">,
    channel: string,
    onMessage: (message: string) => void,
  ) {
    this.#channel = channel;
    this.#conn = new RespConnection({
      ...options,
      onPush: ([, from, message]) => {
        if (from === channel) onMessage(typeof message === "string" ? message : "");
      },
      onDrop: () => this.#again(),
    });
    this.#subscribe();
  }

  /** Unsubscribes and closes the connection. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#conn.close();
  }

  #subscribe(): void {
    if (this.#closed) return;
    this.#conn.call(["SUBSCRIBE", this.#channel]).catch(() => this.#again());
  }

  /** Subscribes again after a pause (once, however many failures report it). */
  #again(): void {
    if (this.#closed || this.#retry !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#subscribe();
    }, RETRY_MS);
    Deno.unrefTimer(this.#retry);
  }
}
