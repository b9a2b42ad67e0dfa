/**
 * @module
 * The browser side of live data: one EventSource per page, shared by every island through a
 * signal. Islands import it; the connection opens only after hydration, in the browser.
 */

import { signal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import type { Snapshot } from "../lib/dashboard/hub.ts";

/** The latest snapshot received (null until the first one). */
export const live = signal<Snapshot | null>(null);
/** Whether the live connection is up. */
export const connected = signal(false);

let source: EventSource | undefined;

function connect(): void {
  if (source) return;
  source = new EventSource("/api/live");
  source.addEventListener("open", () => connected.value = true);
  source.addEventListener("error", () => connected.value = false);
  source.addEventListener("message", (event) => {
    live.value = JSON.parse(event.data) as Snapshot;
  });
}

/** The live snapshot for an island; `initial` is the server-rendered one, so hydration matches. */
export function useLive(initial: Snapshot): Snapshot {
  useEffect(connect, []);
  return live.value ?? initial;
}
