/**
 * @module
 * A queue's limits on the Queues page: as words (with current use once limiter records
 * exist), and the form that changes them through `tf.queues.configure`.
 */

import type { LimiterUse, QueueConfig, QueueConfigUpdate } from "../lib/mod.ts";
import { InvalidOptionError } from "../lib/mod.ts";
import { configText, parseConcurrency, parseRate, rateText } from "../lib/queues/config.ts";
import { Csrf } from "./Jobs.tsx";

/** The form's fields: a blank one removes that limit. */
const FIELDS = ["concurrency", "rate", "partition-concurrency", "partition-rate"] as const;

/**
 * The change a submitted limits form asks for. The form shows every limit, so it replaces all
 * of them: a blank field (or `none`) removes that limit.
 */
export function readLimitsForm(form: FormData): QueueConfigUpdate {
  const text = (field: (typeof FIELDS)[number]) => {
    const value = form.get(field);
    if (value !== null && typeof value !== "string") {
      throw new InvalidOptionError(field, "(a file)", "must be text");
    }
    return value?.trim() || "none";
  };
  return {
    concurrency: parseConcurrency(text("concurrency"), "concurrency"),
    rateLimit: parseRate(text("rate"), "rate"),
    partition: {
      concurrency: parseConcurrency(text("partition-concurrency"), "partition concurrency"),
      rateLimit: parseRate(text("partition-rate"), "partition rate"),
    },
  };
}

/** The limits in words, and their current use when the limiter records give it. */
export function LimitsText({ limits, use }: { limits: QueueConfig; use?: LimiterUse }) {
  return (
    <span class="reason">
      {configText(limits)}
      {use && limits.concurrency !== undefined &&
        ` (${use.running} of ${limits.concurrency} running)`}
      {use && limits.rateLimit &&
        ` (${use.startsInWindow} of ${limits.rateLimit.max} starts in the window)`}
    </span>
  );
}

/** The form that sets a queue's limits (`queue` absent: a field names the queue). */
export function LimitsForm(
  { queue, limits, csrf, open }: {
    queue?: string;
    limits: QueueConfig;
    csrf: string;
    open?: boolean;
  },
) {
  const part = limits.partition ?? {};
  const value = (n: number | undefined) => n === undefined ? "" : String(n);
  return (
    <details open={open}>
      <summary>{queue ? "Change limits" : "Set limits"}</summary>
      <form method="post" action="/queues" class="limits">
        <Csrf token={csrf} />
        <input type="hidden" name="action" value="limits" />
        {queue === undefined
          ? (
            <label>
              Queue <input name="queue" required pattern="[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}" />
            </label>
          )
          : <input type="hidden" name="queue" value={queue} />}
        <label>
          Concurrency{" "}
          <input name="concurrency" inputMode="numeric" value={value(limits.concurrency)} />
        </label>
        <label>
          Rate (MAX/PERIOD){" "}
          <input
            name="rate"
            placeholder="100/1s"
            value={limits.rateLimit ? rateText(limits.rateLimit) : ""}
          />
        </label>
        <label>
          Per partition: concurrency{" "}
          <input name="partition-concurrency" inputMode="numeric" value={value(part.concurrency)} />
        </label>
        <label>
          rate{" "}
          <input
            name="partition-rate"
            placeholder="5/1m"
            value={part.rateLimit ? rateText(part.rateLimit) : ""}
          />
        </label>
        <button type="submit">Save limits</button>
        <small>
          A blank field means no limit. Every worker obeys the queue's limits saved here;
          per-partition limits apply to each partition key separately.
        </small>
      </form>
    </details>
  );
}
