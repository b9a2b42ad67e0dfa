/**
 * @module
 * Wake-ups over Redis pub/sub, on a connection of their own (a subscribed connection sends
 * nothing else). A lost connection subscribes again after a pause; polling covers the gap.
 */

import { RespConnection, type RespOptions } from "./connection.ts";

/** Pause before subscribing again after a failure. */
const RETRY_MS = 1_000;

/**
 * Where a subscriber connects. `locate`, when given, names the node before each attempt (on a
 * cluster, the master owning the storage's slot, which a failover moves); else `host`/`port`.
 */
export type SubscriberOptions = Omit<RespOptions, "onPush" | "onDrop"> & {
  locate?: () => Promise<{ host: string; port: number }>;
};

/** A subscription to one or more channels, calling `onMessage` with each message on them. */
export class Subscriber {
  #options: SubscriberOptions;
  #conn: RespConnection;
  #at: { host: string; port: number };
  #channels: readonly string[];
  #onMessage: (message: string) => void;
  #closed = false;
  #retry?: ReturnType<typeof setTimeout>;

  /** Subscribes to `channels` on a new connection of `options` (no answer timeout applies). */
  constructor(
    options: SubscriberOptions,
    channels: string | readonly string[],
    onMessage: (message: string) => void,
  ) {
    this.#options = options;
    this.#channels = typeof channels === "string" ? [channels] : channels;
    this.#onMessage = onMessage;
    this.#at = { host: options.host, port: options.port };
    this.#conn = this.#open();
    void this.#subscribe();
  }

  /** Unsubscribes and closes the connection. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#conn.close();
  }

  /** A connection to `#at` (it connects on its first command). */
  #open(): RespConnection {
    const { locate: _, ...options } = this.#options;
    return new RespConnection({
      ...options,
      ...this.#at,
      onPush: ([, from, message]) => {
        if (this.#channels.includes(from as string)) {
          this.#onMessage(typeof message === "string" ? message : "");
        }
      },
      onDrop: () => this.#again(),
    });
  }

  async #subscribe(): Promise<void> {
    if (this.#closed) return;
    try {
      const at = await this.#options.locate?.();
      if (this.#closed) return;
      if (at && (at.host !== this.#at.host || at.port !== this.#at.port)) {
        this.#conn.close();
        this.#at = { host: at.host, port: at.port };
        this.#conn = this.#open();
      }
      // One SUBSCRIBE per channel: each confirms with one reply, as the connection expects.
      await Promise.all(this.#channels.map((channel) => this.#conn.call(["SUBSCRIBE", channel])));
    } catch {
      this.#again();
    }
  }

  /** Subscribes again after a pause (once, however many failures report it). */
  #again(): void {
    if (this.#closed || this.#retry !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#subscribe();
    }, RETRY_MS);
    Deno.unrefTimer(this.#retry);
  }
}
